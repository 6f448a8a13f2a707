"""The worker's model hand-over: bytes on stdin checked against the verified digest."""

from __future__ import annotations

import hashlib
import io
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kontur.worker.detectors import HogPersonDetector, YoloxOnnxDetector
from kontur.worker.errors import ModelError, ModelIntegrityError
from kontur.worker.process import _read_model_bytes, build_detector

MODEL = b"\x08\x07model bytes as the supervisor verified them" * 10


def _stdin(monkeypatch: pytest.MonkeyPatch, payload: bytes) -> None:
    """What the supervisor writes to the worker's stdin: an 8-byte size, then the bytes."""
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(payload)))


def _framed(data: bytes, size: int | None = None) -> bytes:
    return (len(data) if size is None else size).to_bytes(8, "big") + data


def _spec(detector: str) -> dict[str, Any]:
    worker = {"score_threshold": 0.4, "nms_threshold": 0.5, "intra_op_threads": 1}
    return {"detector": detector, "platform": "cpu", "worker": worker}


def test_matching_digest_returns_the_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    _stdin(monkeypatch, _framed(MODEL))
    assert _read_model_bytes(hashlib.sha256(MODEL).hexdigest()) == MODEL


def test_model_swapped_after_verification_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    swapped = MODEL.replace(b"verified", b"tampered")
    expected = hashlib.sha256(MODEL).hexdigest()
    _stdin(monkeypatch, _framed(swapped))
    with pytest.raises(ModelIntegrityError, match=f"expected sha256 {expected}, got "):
        _read_model_bytes(expected)


def test_model_cut_short_on_stdin_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = hashlib.sha256(MODEL).hexdigest()
    _stdin(monkeypatch, _framed(MODEL[:100], size=len(MODEL)))
    got = hashlib.sha256(MODEL[:100]).hexdigest()
    with pytest.raises(ModelIntegrityError, match=f"expected sha256 {expected}, got {got}"):
        _read_model_bytes(expected)


def test_model_with_trailing_bytes_reads_only_the_declared_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _stdin(monkeypatch, _framed(MODEL) + b"appended payload")
    assert _read_model_bytes(hashlib.sha256(MODEL).hexdigest()) == MODEL


def test_integrity_error_is_a_model_error() -> None:
    assert issubclass(ModelIntegrityError, ModelError)


def test_build_hog_needs_no_model() -> None:
    det = build_detector(_spec("hog"), None)
    assert isinstance(det, HogPersonDetector)
    assert (det.score_threshold, det.nms_threshold) == (0.4, 0.5)


def test_build_yolox_from_the_verified_bytes(
    monkeypatch: pytest.MonkeyPatch, shared_file: Callable[[str], Path]
) -> None:
    model = shared_file("models/yolox_nano.onnx").read_bytes()
    digest = hashlib.sha256(model).hexdigest()
    _stdin(monkeypatch, _framed(model))
    det = build_detector(_spec("yolox"), _read_model_bytes(digest))
    assert isinstance(det, YoloxOnnxDetector)
    assert det.model_id == "sha256:" + digest
    assert (det.score_threshold, det.nms_threshold) == (0.4, 0.5)
