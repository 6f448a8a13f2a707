"""The worker's release hand-over: the verified bytes on stdin, every part re-checked."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kontur.release.manifest import ReleaseFiles, preset
from kontur.worker.bundle import pack
from kontur.worker.detectors import HogPersonDetector
from kontur.worker.errors import ModelError, ModelIntegrityError
from kontur.worker.process import _read_release, build_detector
from kontur.worker.runners import ReleaseDetector

MODEL = b"\x08\x07model bytes as the supervisor verified them" * 10
MANIFEST = preset(
    "yolox",
    name="yolox-nano",
    version=4,
    files=ReleaseFiles(runtime="onnx", model="yolox_nano.onnx"),
).to_json()


def _stdin(monkeypatch: pytest.MonkeyPatch, payload: bytes) -> None:
    """What the supervisor writes to the worker's stdin: an 8-byte size, then the bytes."""
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(payload)))


def _framed(data: bytes, size: int | None = None) -> bytes:
    return (len(data) if size is None else size).to_bytes(8, "big") + data


def _spec(detector: str, model: bytes = MODEL) -> tuple[dict[str, Any], bytes]:
    worker = {"score_threshold": 0.4, "nms_threshold": 0.5, "intra_op_threads": 1}
    blob, index = pack(MANIFEST, {"yolox_nano.onnx": model})
    spec = {
        "detector": detector,
        "platform": "cpu",
        "worker": worker,
        "model_id": "yolox-nano@4",
        "bundle": [p.to_json() for p in index],
    }
    return spec, blob


def test_matching_digests_return_the_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    spec, blob = _spec("release")
    _stdin(monkeypatch, _framed(blob))
    assert _read_release(spec) == (MANIFEST, {"yolox_nano.onnx": MODEL})


def test_model_swapped_after_verification_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    spec, blob = _spec("release")
    _stdin(monkeypatch, _framed(blob.replace(b"verified", b"tampered")))
    with pytest.raises(ModelIntegrityError, match=r"part yolox_nano\.onnx: expected sha256 "):
        _read_release(spec)


def test_release_cut_short_on_stdin_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    spec, blob = _spec("release")
    _stdin(monkeypatch, _framed(blob[:100], size=len(blob)))
    with pytest.raises(ModelIntegrityError, match=rf"expected {len(blob)} bytes, got 100"):
        _read_release(spec)


def test_declared_size_other_than_the_index_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    spec, blob = _spec("release")
    _stdin(monkeypatch, _framed(blob + b"appended payload"))
    with pytest.raises(ModelIntegrityError, match=rf"expected {len(blob)} bytes, got "):
        _read_release(spec)


def test_integrity_error_is_a_model_error() -> None:
    assert issubclass(ModelIntegrityError, ModelError)


def test_build_hog_needs_no_model() -> None:
    import cv2

    before = cv2.getNumThreads()
    try:
        det = build_detector(_spec("hog")[0], None)
    finally:
        cv2.setNumThreads(before)  # (the pool is process-wide: leave this test process's alone)
    assert isinstance(det, HogPersonDetector)
    assert (det.score_threshold, det.nms_threshold) == (0.4, 0.5)


_HOG_THREADS = """
import sys, cv2
from kontur.worker.process import build_detector
spec = {"detector": "hog", "worker": {"score_threshold": 0.3, "nms_threshold": 0.45,
        "intra_op_threads": int(sys.argv[1])}}
print(cv2.getNumThreads(), end=" ")
build_detector(spec, None)
print(cv2.getNumThreads())
"""


@pytest.mark.parametrize("threads", [1, 2])
def test_the_hog_fallback_takes_the_workers_threads_not_every_core(threads: int) -> None:
    """OpenCV's pool defaults to every core; the worker's HOG takes ``intra_op_threads`` as
    ONNX Runtime does (ADR 0062). Its own interpreter: the pool is process-wide."""
    import subprocess

    r = subprocess.run(
        [sys.executable, "-c", _HOG_THREADS, str(threads)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    default, built = map(int, r.stdout.split())
    assert built == threads
    if threads == 1 and (os.cpu_count() or 1) > 1:
        assert default > 1  # what it would have taken: every core


def test_build_release_detector_from_the_verified_bytes(
    monkeypatch: pytest.MonkeyPatch, shared_file: Callable[[str], Path]
) -> None:
    model = shared_file("models/yolox_nano.onnx").read_bytes()
    spec, blob = _spec("release", model)
    _stdin(monkeypatch, _framed(blob))
    det = build_detector(spec, _read_release(spec))
    assert isinstance(det, ReleaseDetector)
    assert det.model_id == "yolox-nano@4"
    # the release's signed thresholds win over the worker config's (HOG-only) ones
    assert (det.score_threshold, det.nms_threshold) == (0.3, 0.45)
