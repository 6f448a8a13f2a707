"""Issue 8 part 6: the probe and the placement bench run in the worker's sandbox, and what
they answer is parsed as an untrusted claim."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import shared

from kontur.config import load_config
from kontur.runtime.prepare import PrepareFailed, _measurements, _read_result, prepare_sources
from kontur.runtime.scratch import make_scratch
from kontur.runtime.supervisor import Supervisor
from kontur.worker.prepare import SYNTHETIC


def _m(platform: str, **kw: Any) -> dict[str, Any]:
    base = {
        "platform": platform, "latency_ms": 10.0, "throughput_fps": 50.0, "accuracy": 1.0,
        "accuracy_basis": "reference platform", "frames": 12, "measured_at": 1.0,
    }  # fmt: skip
    return {**base, **kw}


@pytest.mark.parametrize(
    ("claim", "why"),
    [
        ({"gpu": _m("gpu")}, "expected a CPU measurement"),
        ({"cpu": _m("gpu")}, "a measurement of another platform filed as cpu"),
        ({"cpu": _m("cpu"), "tpu": _m("cpu")}, "expected platforms cpu, gpu, npu, got 'tpu'"),
        ({"cpu": _m("cpu", latency_ms=float("nan"))}, "bench of cpu: expected a finite"),
        ({"cpu": _m("cpu", accuracy=7.0)}, "bench of cpu: expected accuracy in [0, 1]"),
        ({"cpu": {"platform": "cpu"}}, "bench of cpu: expected a mapping with keys"),
    ],
    ids=["no_cpu", "mislabelled", "unknown_platform", "nan", "accuracy_7", "missing_keys"],
)
def test_a_bench_claim_that_does_not_parse_is_refused(claim: dict[str, Any], why: str) -> None:
    with pytest.raises(PrepareFailed, match=why.replace("[", r"\[").replace("]", r"\]")):
        _measurements(claim)


def test_probe_and_bench_in_the_sandbox_on_real_footage(tmp_path: Path) -> None:
    """Also whether the demo camera may sign each clip (ADR 0046): an unsigned H.264 clip, yes;
    a camera-signed one, no."""
    video = shared("video", "pets09_s2l1_480x360.avi")
    signed = shared("oms", "streams", "car_h264_default.mp4")
    cfg = load_config(None)
    scratch = make_scratch()
    try:
        prepared = prepare_sources(
            Supervisor(tmp_path / "run"), cfg, tmp_path, scratch, {"detector": "hog"}, None,
            {"cam1": str(video), "cam2": str(signed)}, {"cam1": False, "cam2": False}, None,
        )  # fmt: skip
        log = (scratch / "prepare.log").read_text()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    p = prepared.profiles["cam1"]
    assert (p.codec, p.width, p.height) == ("h264", 480, 360)
    cpu = prepared.measurements["cpu"]
    assert cpu is not None and cpu.frames == cfg.placement.bench_frames and cpu.accuracy == 1.0
    assert SYNTHETIC not in cpu.accuracy_basis
    assert prepared.signable == {"cam1": True, "cam2": False}
    assert "Traceback" not in log


def test_a_strict_camera_is_benched_on_synthetic_frames(tmp_path: Path) -> None:
    """Strict mode: not one byte of unverified video is decoded for the bench."""
    video = shared("video", "pets09_s2l1_480x360.avi")
    scratch = make_scratch()
    try:
        prepared = prepare_sources(
            Supervisor(tmp_path / "run"), load_config(None), tmp_path, scratch,
            {"detector": "hog"}, None, {"cam1": str(video)}, {"cam1": True}, None,
        )  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    cpu = prepared.measurements["cpu"]
    assert cpu is not None and SYNTHETIC in cpu.accuracy_basis


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (
            "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)",
            "it was killed by SIGSEGV (exit -11)",
        ),
        ("import sys; sys.exit(3)", "it exited with code 3"),
    ],
)
def test_a_probe_that_dies_without_a_word_is_named_by_how_it_ended(code: str, said: str) -> None:
    """A native crash in the sandboxed probe (OpenCV's HOG on a 64x48 camera) read "got 0
    bytes that do not parse ... exit None": how it ended is the news."""
    r, w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=w)
    os.close(w)
    try:
        with pytest.raises(PrepareFailed) as info:
            _read_result(r, proc)
    finally:
        os.close(r)
    assert (
        str(info.value)
        == f"probe and bench (sandboxed): expected one result line, got none; {said}"
    )
