"""End to end (issue 15 §3): ``kontur demo`` starts on real footage in one data dir.

Each start archives its run manifest before ingest reads a frame, every decision record names
the digest of its own start's manifest, the second start's changes (here: the config, which
adds a ``placement.allowlist`` approving the installed ONNX Runtime) are a record, ``kontur
archive manifest --json -`` prints it, and ``kontur archive verify`` stays OK.

A third start models ``runtime_swapped_under_site``: a second ONNX Runtime build's metadata
(``onnxruntime-gpu`` 1.99.0, shipping the CUDA provider library) appears on the interpreter's
path between two starts, not listed in the allow-list. The change record names it unapproved
and the start raises ``driver_unapproved`` (SAFE) before any frame. ``kontur run`` (the site
service) starts the same way.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from tests.conftest import KONTUR, run_kontur, shared, wait_for

from kontur.archive import Archive, canonical_json

pytestmark = pytest.mark.e2e

ORT = importlib.metadata.version("onnxruntime")


def _demo(data_dir: Path, out: Path, *extra: str, path: Path | None = None) -> dict:
    args = [
        "demo", "--source", str(shared("video", "pets09_s2l1_480x360.avi")),
        "--model", str(shared("models", "yolox_nano.onnx")), "--data-dir", str(data_dir),
        "--no-sign", "--seconds", "6", "--json", str(out), *extra,
    ]  # fmt: skip
    if path is None:
        r = run_kontur(*args)
    else:  # the swapped runtime's metadata on the interpreter's path
        paths = [str(path), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = dict(os.environ, COLUMNS="200", PYTHONPATH=os.pathsep.join(paths))
        r = subprocess.run([str(KONTUR), *args], capture_output=True, text=True, timeout=300,
                           env=env, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary: dict = json.loads(out.read_text())
    return summary


@pytest.fixture(scope="module")
def starts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    tmp = tmp_path_factory.mktemp("manifest")
    data = tmp / "data"
    cfg = tmp / "kontur.yaml"
    cfg.write_text(f"placement:\n  allowlist:\n    runtimes:\n      onnxruntime: ['{ORT}']\n")
    first = _demo(data, tmp / "s1.json")
    second = _demo(data, tmp / "s2.json", "--config", str(cfg))
    third = _demo(data, tmp / "s3.json", "--config", str(cfg), path=_swapped_runtime(tmp))
    return data, [first, second, third]


def _swapped_runtime(tmp: Path) -> Path:
    """A site-packages dir holding only ``onnxruntime-gpu`` 1.99.0's metadata."""
    info = tmp / "swapped" / "onnxruntime_gpu-1.99.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: onnxruntime-gpu\nVersion: 1.99.0\n"
    )
    (info / "top_level.txt").write_text("onnxruntime\n")
    (info / "RECORD").write_text("onnxruntime/capi/libonnxruntime_providers_cuda.so,,\n")
    return info.parent


def _records(data: Path, kind: str | tuple[str, ...]) -> list:
    with Archive.open_readonly(data) as arc:
        return list(arc.iter_records(kind=kind))


def test_each_start_archives_a_manifest_before_any_frame(starts: tuple[Path, list]) -> None:
    data, _ = starts
    manifests = _records(data, "manifest")
    assert len(manifests) == 3
    segments = [r.index for r in _records(data, "segment")]
    configs = [r.index for r in _records(data, "config")]
    for start, m in enumerate(manifests):
        body = m.payload["manifest"]
        assert m.payload["sha256"] == hashlib.sha256(canonical_json(body)).hexdigest()
        assert configs[start] < m.index < min(s for s in segments if s > configs[start])
        assert body["inference"]["onnxruntime"]["onnxruntime"] == ORT
        assert body["ffmpeg"]["libraries"]["libavcodec"].count(".") == 2
        assert body["sandbox"]["level"] == "full" and body["sandbox"]["missing"] == []
        assert body["host"]["kernel"] and body["release"]["runtime"] == "onnx"
        assert body["release"]["digest"].startswith("sha256:")


def test_every_decision_names_its_starts_manifest(starts: tuple[Path, list]) -> None:
    data, summaries = starts
    manifests = _records(data, "manifest")
    decisions = _records(data, "decision")
    assert all(sum(s["cameras"][0]["decisions"].values()) > 0 for s in summaries)
    for d in decisions:
        own = max((m for m in manifests if m.index < d.index), key=lambda m: m.index)
        assert d.payload["manifest_sha256"] == own.payload["sha256"]
    assert {d.payload["manifest_sha256"] for d in decisions} == {
        m.payload["sha256"] for m in manifests
    }


def test_the_second_starts_changes_are_a_record(starts: tuple[Path, list]) -> None:
    data, summaries = starts
    manifests = _records(data, "manifest")
    change = _records(data, "manifest_change")[0]
    p = change.payload
    assert p["manifest_index"] == manifests[1].index and change.index > manifests[1].index
    assert p["previous"] == {"run": 1, "index": manifests[0].index,
                             "sha256": manifests[0].payload["sha256"]}  # fmt: skip
    changed = {c["component"] for c in p["changes"]}
    assert "config" in changed and not any(c["stack"] for c in p["changes"])
    assert p["unapproved"] == []  # an allow-list is configured, the stack did not change
    assert summaries[1]["degradation"]["state"] == "NORMAL"


def test_a_runtime_swapped_between_starts_is_unapproved(starts: tuple[Path, list]) -> None:
    data, summaries = starts
    manifests = _records(data, "manifest")
    third = manifests[2].payload["manifest"]["inference"]
    assert third["onnxruntime"] == {"onnxruntime": ORT, "onnxruntime-gpu": "1.99.0"}
    assert "CUDAExecutionProvider" in third["execution_providers"]
    change = _records(data, "manifest_change")[-1].payload
    assert change["manifest_index"] == manifests[2].index
    assert change["baseline"]["run"] == 2
    (reason,) = change["unapproved"]
    assert reason.startswith(
        "runtime onnxruntime-gpu: changed from nothing to 1.99.0 since the last approved start; "
        "expected it listed in placement.allowlist.runtimes, got no entry"
    )
    s = summaries[2]
    assert s["degradation"]["state"] == "SAFE"
    first = s["degradation"]["transitions"][0]
    assert first["trigger"] == "driver_unapproved" and "onnxruntime-gpu" in first["detail"]
    states = _records(data, "state")
    segments = [r.index for r in _records(data, "segment") if r.index > manifests[2].index]
    raised = [r for r in states if r.index > manifests[2].index]
    assert raised and raised[0].index < min(segments)  # SAFE before the first frame


def test_archive_manifest_prints_it_and_the_archive_verifies(starts: tuple[Path, list]) -> None:
    data, _ = starts
    r = run_kontur("archive", "manifest", str(data), "--json", "-")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    latest = _records(data, "manifest")[-1]
    assert out["run"] == 3 and out["index"] == latest.index
    assert out["sha256"] == latest.payload["sha256"]
    assert out["manifest"] == latest.payload["manifest"]
    assert "runtime:onnxruntime" in r.stderr  # the table, on stderr
    v = run_kontur("archive", "verify", str(data), "--json", "-")
    assert v.returncode == 0, v.stderr
    assert json.loads(v.stdout)["ok"] is True


def _decisions_so_far(data: Path) -> int:
    try:
        with sqlite3.connect(f"file:{data / 'archive.sqlite'}?mode=ro", uri=True) as db:
            return int(
                db.execute("SELECT count(*) FROM records WHERE kind = 'decision'").fetchone()[0]
            )
    except sqlite3.Error:
        return 0  # not created yet


def test_kontur_run_archives_the_manifest_too(tmp_path: Path) -> None:
    """The site service's start is the same start: manifest first, decisions name it."""
    site = tmp_path / "site.yaml"
    video = shared("video", "pets09_s2l1_480x360.avi")
    site.write_text(f"site: e2e-manifest\ncameras:\n  - id: cam1\n    source: {video}\n")
    data, log = tmp_path / "data", (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [str(KONTUR), "run", "--config", str(site), "--data-dir", str(data), "--no-api",
         "--model", str(shared("models", "yolox_nano.onnx"))],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for("a decision of kontur run", lambda: _decisions_so_far(data), 240)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        log.close()
    (manifest,) = _records(data, "manifest")
    first_segment = _records(data, "segment")[0]
    assert manifest.index < first_segment.index
    decisions = _records(data, "decision")
    assert decisions and {d.payload["manifest_sha256"] for d in decisions} == {
        manifest.payload["sha256"]
    }
    v = run_kontur("archive", "verify", str(data))
    assert v.returncode == 0, v.stdout + v.stderr
