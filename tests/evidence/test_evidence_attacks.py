"""Each attack on an evidence bundle is named by its own reason (issue 10 part 5).

Every bundle here is a real export of an archive the perimeter wrote (``conftest.py``),
tampered with the way an attacker holding the file would: the manifest's file hashes are
brought in line with the change (the manifest is not signed), so only what is signed or
hashed into the log can give the tampering away.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import av
import pytest
from tests.evidence.conftest import (
    DemoArchive,
    Members,
    edit_manifest,
    export,
    mid_span,
    tamper,
    verify,
)

from kontur.archive import Archive
from kontur.ingest.segment import MAGIC

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def bundles(
    demo_archive: DemoArchive, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, Path]:
    """(data dir, the GOP 2 bundle, a bundle of the whole run from the same archive)."""
    tmp = tmp_path_factory.mktemp("attacks")
    data = demo_archive.copy(tmp / "d")
    start, end = mid_span(demo_archive, 2)
    export(data, tmp / "gop2.zip", start, end)
    first, last = demo_archive.records[0].at, demo_archive.records[-1].at
    export(data, tmp / "all.zip", first, last)
    return data, tmp / "gop2.zip", tmp / "all.zip"


def _assert_named(bundle: Path, reason: str, fragment: str, *extra: str) -> dict:
    rc, report = verify(bundle, *extra)
    assert rc == 1 and not report["ok"]
    assert report["reason"] == reason, report["failures"]
    assert any(fragment in f["detail"] for f in report["failures"] if f["reason"] == reason), (
        report["failures"]
    )
    return report


def _flip_in_clip(members: Members) -> None:
    """Flip one byte inside a P-frame of the clip's first GOP."""
    data = bytearray(members["clip.mp4"])
    with av.open(io.BytesIO(bytes(data))) as c:
        packet = [p for p, _ in zip(c.demux(c.streams.video[0]), range(11), strict=False)][10]
        pos, size = int(packet.pos), int(packet.size)
    assert not packet.is_keyframe
    data[pos + size // 2] ^= 0x01
    members["clip.mp4"] = bytes(data)


def _flip_in_segment(members: Members, manifest: dict) -> None:
    """Flip one byte inside the 11th packet of GOP 2's segment."""
    sha = manifest["gops"][0]["segments"][0]["sha256"]
    name = f"segments/{sha}.kseg"
    data = bytearray(members[name])
    pos = data.index(b"\n", len(MAGIC)) + 1
    for _ in range(10):
        pos += 13 + int.from_bytes(data[pos : pos + 4], "big")
    size = int.from_bytes(data[pos : pos + 4], "big")
    data[pos + 13 + size // 2] ^= 0x01
    members[name] = bytes(data)


@pytest.mark.parametrize("where", ["clip", "segment"])
def test_changed_frame(bundles: tuple[Path, Path, Path], tmp_path: Path, where: str) -> None:
    _, bundle, _ = bundles

    def edit(m: Members) -> None:
        if where == "clip":
            _flip_in_clip(m)
        else:
            _flip_in_segment(m, json.loads(m["manifest.json"]))

    bad = tamper(bundle, tmp_path / "bad.zip", edit)
    fragment = "clip.mp4 GOP 2" if where == "clip" else "segment of GOP 2"
    report = _assert_named(bad, "frame_changed", fragment)
    assert "expected Media Signing authentic as logged, got not_authentic" in json.dumps(report)


def test_removed_decision(bundles: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, bundle, _ = bundles
    removed: list[int] = []

    def edit(m: Members) -> None:
        lines = m["records.jsonl"].decode().splitlines(keepends=True)
        victim = next(line for line in lines if json.loads(line)["kind"] == "decision")
        removed.append(json.loads(victim)["index"])
        m["records.jsonl"] = "".join(line for line in lines if line != victim).encode()
        edit_manifest(
            m, lambda x: x.update(records=[r for r in x["records"] if r["index"] != removed[0]])
        )

    bad = tamper(bundle, tmp_path / "bad.zip", edit)
    _assert_named(bad, "record_removed", f"got none at {removed[0]}")


def test_removed_tail_of_the_span(bundles: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """Cutting the range short (the last decisions and everything after) shows at its edge."""
    _, bundle, _ = bundles

    def edit(m: Members) -> None:
        manifest = json.loads(m["manifest.json"])
        decisions = [r["index"] for r in manifest["records"] if r["kind"] == "decision"]
        cut = decisions[-1] - 1
        lines = m["records.jsonl"].decode().splitlines(keepends=True)
        m["records.jsonl"] = "".join(x for x in lines if json.loads(x)["index"] <= cut).encode()

        def shrink(x: dict) -> None:
            x["records"] = [r for r in x["records"] if r["index"] <= cut]
            x["span"]["last_index"] = cut

        edit_manifest(m, shrink)

    bad = tamper(bundle, tmp_path / "bad.zip", edit)
    _assert_named(bad, "record_removed", "which the clip needs")


def test_swapped_clip(bundles: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """The camera's own, validly signed video of another time, in place of the span's."""
    _, bundle, other = bundles
    rc, _ = verify(other)
    assert rc == 0  # the other clip is genuine: only the swap is wrong
    with zipfile.ZipFile(other) as zf:
        other_clip = zf.read("clip.mp4")
    bad = tamper(bundle, tmp_path / "bad.zip", lambda m: m.update({"clip.mp4": other_clip}))
    report = _assert_named(bad, "clip_swapped", "clip.mp4 GOP 2")
    assert "frame_changed" not in {f["reason"] for f in report["failures"]}


def test_forged_checkpoint(bundles: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """Another root (say, of a tree with a record changed) under the original signature."""
    _, bundle, _ = bundles
    forged_root = bytes(32)

    def edit(m: Members) -> None:
        origin, size, _root, *rest = m["checkpoint.txt"].decode().split("\n")
        root = base64.b64encode(forged_root).decode()
        m["checkpoint.txt"] = "\n".join([origin, size, root, *rest]).encode()
        edit_manifest(m, lambda x: x["checkpoint"].update(root=forged_root.hex()))

    bad = tamper(bundle, tmp_path / "bad.zip", edit)
    report = _assert_named(bad, "checkpoint_forged", "expected a valid signature by archive key")
    assert report["checkpoint_size"] is None  # nothing after a forged checkpoint is believed


def test_proof_for_another_tree(bundles: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """A record's genuine audit path, but in an older tree than the signed checkpoint's."""
    data, bundle, _ = bundles
    index: list[int] = []

    def edit(m: Members) -> None:
        manifest = json.loads(m["manifest.json"])
        entry = next(r for r in manifest["records"] if r["kind"] == "decision")
        index.append(entry["index"])
        with Archive.open_readonly(data) as arc:
            older = arc.inclusion_proof(entry["index"], entry["index"] + 1)
        entry["proof"] = [h.hex() for h in older]
        m["manifest.json"] = json.dumps(manifest).encode()

    bad = tamper(bundle, tmp_path / "bad.zip", edit)
    _assert_named(bad, "proof_other_tree", f"record {index[0]} (decision)")


@pytest.fixture(scope="module")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The verifier key of another archive."""
    with Archive.open(tmp_path_factory.mktemp("other") / "d") as arc:
        return str(arc.verifier_key)


def test_other_archive_key_pinned(
    bundles: tuple[Path, Path, Path], other_key: str, demo_archive: DemoArchive
) -> None:
    """An intact bundle, but of another archive than the one the recipient pinned."""
    _, bundle, _ = bundles
    assert verify(bundle, "--pin-key", demo_archive.key)[0] == 0
    _assert_named(bundle, "other_archive_key", "expected archive key", "--pin-key", other_key)


def test_other_archive_key_in_the_manifest(
    bundles: tuple[Path, Path, Path], other_key: str, tmp_path: Path
) -> None:
    """The manifest names another archive's key than the one that signed the checkpoint."""
    _, bundle, _ = bundles

    def edit(m: Members) -> None:
        m["archive-key.txt"] = f"{other_key}\n".encode()
        edit_manifest(m, lambda x: x.update(key=other_key, origin=other_key.split("+")[0]))

    bad = tamper(bundle, tmp_path / "bad.zip", edit)
    _assert_named(bad, "other_archive_key", "checkpoint.txt: expected a signature by")


def test_each_attack_has_its_own_reason() -> None:
    from kontur.evidence import Reason

    named = {
        "frame_changed",
        "record_removed",
        "clip_swapped",
        "checkpoint_forged",
        "proof_other_tree",
        "other_archive_key",
    }
    assert named <= {r.value for r in Reason} and len(named) == 6
