"""A real archive for the evidence tests, and a tool to tamper with a bundle.

The archive comes from the real perimeter: ``kontur demo`` on the PETS09 clip with YOLOX-nano,
signed on the fly by the demo camera (ONVIF Media Signing, a key enrolled in the data dir),
so it holds segments, verdicts, detections, verifier findings and ALLOW decisions. Tests
that need it skip when ``../shared/data`` is absent.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import built_once, run_kontur, shared

from kontur.archive import Archive, Record
from kontur.evidence.plan import camera_of, gops_of


@dataclass(frozen=True)
class DemoArchive:
    """A data dir the perimeter wrote, its records and its verifier key."""

    data_dir: Path
    records: tuple[Record, ...]
    key: str

    def segment(self, gop: int) -> Record:
        """The (first) segment record of a GOP."""
        return next(
            r for r in self.records if r.kind == "segment" and r.payload["gop_index"] == gop
        )

    def copy(self, dest: Path) -> Path:
        """A copy of the data dir (an export appends to it)."""
        shutil.copytree(self.data_dir, dest, symlinks=True)
        return dest


@pytest.fixture(scope="session")
def demo_archive(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> DemoArchive:
    """Run the perimeter once on signed real footage (once per run:
    :func:`~tests.conftest.built_once`)."""
    data = built_once(tmp_path_factory, worker_id, "evidence-demo", _demo) / "d"
    with Archive.open_readonly(data) as arc:
        records = tuple(arc.iter_records())
        key = str(arc.verifier_key)
    assert sum(r.kind == "decision" for r in records) > 0, "the clip should yield decisions"
    return DemoArchive(data, records, key)


def _demo(tmp: Path) -> None:
    video = shared("video", "pets09_s2l1_480x360.avi")
    model = shared("models", "yolox_nano.onnx")
    # the tamper monitor off: ingest then hands the gate each verdict at once, so decisions
    # land in the archive where these tests' spans expect them (with it on, a decision comes
    # up to ~1.9 s later and an export's closure rule pulls in the earlier GOPs it names)
    cfg = tmp / "c.yaml"
    cfg.write_text("tamper:\n  enabled: false\n")
    r = run_kontur(
        "demo", "--source", str(video), "--model", str(model), "--data-dir", str(tmp / "d"),
        "--config", str(cfg),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]


def mid_span(archive: DemoArchive, gop: int) -> tuple[float, float]:
    """A span holding GOP ``gop`` only: after every record naming an earlier GOP, before the
    GOP's own segment record (whose interval reaches back to the previous one)."""
    earlier = [
        r.at
        for r in archive.records
        if camera_of(r) == "cam1" and gops_of(r) and min(gops_of(r)) < gop
    ]
    return max(earlier) + 0.001, archive.segment(gop).at - 0.001


def export(data_dir: Path, out: Path, start: float, end: float, *extra: str) -> dict:
    """``kontur archive export`` → its JSON result."""
    r = run_kontur(
        "archive", "export", str(data_dir), "--camera", "cam1", "--from", repr(start),
        "--to", repr(end), "--out", str(out), "--by", "evidence-test", "--json", "-", *extra,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def verify(bundle: Path, *extra: str) -> tuple[int, dict]:
    """``kontur archive verify-export`` → exit code and JSON report."""
    r = run_kontur("archive", "verify-export", str(bundle), "--json", "-", *extra)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


Members = dict[str, bytes]


def tamper(
    bundle: Path, out: Path, edit: Callable[[Members], None], *, rehash: bool = True
) -> Path:
    """Rewrite ``bundle`` into ``out`` after ``edit`` changed its members; with ``rehash``
    the manifest's file hashes are brought in line, as a careful attacker would."""
    with zipfile.ZipFile(bundle) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    before = dict(members)
    edit(members)
    if rehash:
        manifest = json.loads(members["manifest.json"])
        for entry in manifest["files"]:
            data = members.get(entry["name"])
            if data is not None and data != before.get(entry["name"]):
                entry["sha256"], entry["size"] = hashlib.sha256(data).hexdigest(), len(data)
        members["manifest.json"] = json.dumps(manifest, indent=1).encode()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


def edit_manifest(members: Members, change: Callable[[dict], None]) -> None:
    """Apply ``change`` to the parsed manifest and store it back."""
    manifest = json.loads(members["manifest.json"])
    change(manifest)
    members["manifest.json"] = json.dumps(manifest, indent=1).encode()
