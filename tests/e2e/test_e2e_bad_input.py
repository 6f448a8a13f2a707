"""Bad input: one line saying what was expected and found, a non-zero exit, no traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import numpy as np
import pytest
from tests.conftest import run_kontur, shared


def _one_line_error(r, fragment: str, code: int = 2) -> None:  # type: ignore[no-untyped-def]
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("kontur: error:")]
    assert len(lines) == 1, r.stderr
    assert fragment in lines[0], lines[0]


def test_missing_source(tmp_path: Path) -> None:
    r = run_kontur(
        "demo", "--source", str(tmp_path / "nope.mp4"), "--data-dir", str(tmp_path / "d")
    )
    _one_line_error(r, "expected a readable video file, found nothing")


def test_corrupt_source(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(np.random.default_rng(1).bytes(200_000))
    r = run_kontur("demo", "--source", str(bad), "--data-dir", str(tmp_path / "d"))
    _one_line_error(r, "expected a video container")


def test_unsupported_codec(tmp_path: Path) -> None:
    path = tmp_path / "ffv1.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), i * 40, np.uint8), format="rgb24"
            )
            for pkt in s.encode(frame):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    r = run_kontur("demo", "--source", str(path), "--data-dir", str(tmp_path / "d"))
    _one_line_error(r, "got ffv1")


def test_truncated_file_archives_what_arrived(tmp_path: Path) -> None:
    video = shared("video", "pets09_s2l1_480x360.avi")
    model = shared("models", "yolox_nano.onnx")
    cut = tmp_path / "truncated.avi"
    cut.write_bytes(video.read_bytes()[:1_500_000])
    r = run_kontur(
        "demo", "--source", str(cut), "--model", str(model), "--data-dir", str(tmp_path / "d")
    )
    _one_line_error(r, "(truncated)", code=1)
    assert "expected the last packet whole" in r.stderr  # the bitstream, not the header count
    v = run_kontur("archive", "verify", str(tmp_path / "d"))
    assert v.returncode == 0, v.stdout  # what was archived before the failure stays verifiable


def test_unreadable_model(tmp_path: Path) -> None:
    r = run_kontur(
        "demo", "--model", str(tmp_path / "none.onnx"), "--data-dir", str(tmp_path / "d")
    )
    _one_line_error(r, "expected a readable model file, found nothing")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model" * 100)
    r = run_kontur("demo", "--model", str(junk), "--data-dir", str(tmp_path / "d2"))
    _one_line_error(r, "expected an ONNX model")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("site: [unclosed\n", "expected valid YAML, found a syntax error"),
        ("- just\n- a list\n", "expected a mapping at top level, got list"),
        (
            "site: s\ncameras: [{id: c}]\nactions: {}\nplacement: {sla: {latency_ms_max: -1, "
            "throughput_fps_min: 1, accuracy_min: 0.5}}\n",
            "key placement.sla.latency_ms_max",
        ),
        (
            "site: s\ncameras: [{id: c}]\nactions: {}\npolicies: [{rule: r, when: {type: dwell, "
            "zone: nowhere, classes: [person], min_seconds: 1}, action: alarm}]\nplacement: {sla: "
            "{latency_ms_max: 1, throughput_fps_min: 1, accuracy_min: 0.5}}\n",
            "expected a zone among",
        ),
        (
            "site: s\ncameras: [{id: c}]\nactions: {}\nplacement: {sla: {latency_ms_max: 1, "
            "throughput_fps_min: 1, accuracy_min: 0.5}}\nbogus_key: 1\n",
            "key bogus_key",
        ),
    ],
    ids=["yaml_syntax", "not_a_mapping", "negative_latency", "unknown_zone", "unknown_key"],
)
def test_malformed_config(tmp_path: Path, text: str, fragment: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    r = run_kontur("demo", "--config", str(cfg), "--data-dir", str(tmp_path / "d"))
    _one_line_error(r, fragment)


def test_unknown_fault_and_missing_archive(tmp_path: Path) -> None:
    _one_line_error(run_kontur("demo", "--inject-fault", "meteor"), "expected one of model-tamper")
    _one_line_error(
        run_kontur("archive", "verify", str(tmp_path / "nothing")), "expected archive.sqlite"
    )


def test_a_witness_that_cannot_be_written(tmp_path: Path) -> None:
    """A witness path kontur cannot append to is refused at start, before any data dir is
    made; one that fails mid-run (a full disk) never stops recording, and the summary and
    ``archive verify --witness`` say so. It used to be skipped without a word."""
    from tests.e2e.pets_clip import pets09_h264

    clip = pets09_h264(tmp_path / "pets.mp4", 20)
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"archive:\n  witness: {tmp_path / 'no-such-dir' / 'witness'}\n")
    data = tmp_path / "d"
    r = run_kontur("demo", "--source", str(clip), "--config", str(bad), "--data-dir", str(data))
    _one_line_error(r, "/no-such-dir/witness: expected a file kontur can append to, got No such")
    assert not data.exists()
    full = tmp_path / "full.yaml"
    full.write_text("archive:\n  witness: /dev/full\n  checkpoint_every_records: 5\n")
    out = tmp_path / "s.json"
    r = run_kontur("demo", "--source", str(clip), "--config", str(full), "--data-dir", str(data),
                   "--json", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads(out.read_text())
    assert summary["cameras"][0]["frames"] == 20  # recording went on
    said = "archive: a checkpoint was not witnessed: witness /dev/full: No space left on device"
    assert said in summary["notes"] and said in " ".join(r.stdout.split())
    empty = tmp_path / "witness"
    empty.write_bytes(b"")
    os.utime(empty, (1.6e9, 1.6e9))  # as if configured long before the run, never written
    verify = run_kontur("archive", "verify", str(data), "--witness", str(empty))
    assert verify.returncode == 1
    assert "got none: the witness was not written" in " ".join(verify.stdout.split())


def test_an_ingest_that_fails_at_start_says_why(tmp_path: Path) -> None:
    """Ingest refused a corrupt replay store (it keeps the GOP hashes seen) and exited: the
    one error line named only the exit code, the reason was in its log alone."""
    from tests.e2e.pets_clip import pets09_h264

    clip = pets09_h264(tmp_path / "pets.mp4", 20)
    data = tmp_path / "d"
    data.mkdir()
    (data / "freshness.sqlite").write_bytes(np.random.default_rng(7).bytes(4096))
    r = run_kontur("demo", "--source", str(clip), "--data-dir", str(data))
    _one_line_error(r, "ingest:cam1 exited with code 1 before its source ended (its log ends: ", 1)
    assert (
        f"InventoryCorrupt: {data / 'freshness.sqlite'}: expected a kontur store, got " in r.stderr
    )
    assert run_kontur("archive", "verify", str(data)).returncode == 0
