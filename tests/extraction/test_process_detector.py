"""The API block's side of the site's model (``kontur.api.process.query_detector``): the
verified bundle read from stdin with the worker's framing, every digest re-checked before the
query worker gets it; a bundle that fails its digests leaves the query path without a model
(503) rather than the API down; a site without a release answers with its built-in detector."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import cv2
import pytest
from tests.conftest import shared

from kontur.api.process import query_detector
from kontur.config import load_config
from kontur.extraction import SandboxedDetector
from kontur.runtime.apiblock import QueryModel


def _entry(tmp_path: Path, entries: dict[str, Any]) -> dict[str, Any]:
    """The spec entry the supervisor writes (``QueryModel.spec``), for ``entries``."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    spec: dict[str, Any] = QueryModel(entries, None, tmp_path / "scratch").spec(
        load_config(None), data_dir
    )
    return spec


def _stdin(blob: bytes) -> io.BytesIO:
    return io.BytesIO(len(blob).to_bytes(8, "big") + blob)


def test_the_verified_bundle_runs_in_the_query_worker(
    tmp_path: Path, yolox_release: tuple[dict[str, Any], bytes]
) -> None:
    entries, blob = yolox_release
    entry = _entry(tmp_path, {"detector": "release", **entries})
    detector = query_detector(entry, _stdin(blob), tmp_path / "data")
    assert isinstance(detector, SandboxedDetector)
    try:
        answer = detector.detect(cv2.imread(str(shared("images", "bus.jpg"))), timeout_s=60)
        assert answer.model_id == entries["model_id"]
        assert sum(answer.class_names[d.class_id] == "person" for d in answer.detections) >= 3
        assert detector.isolation is not None and detector.isolation["source"] == "supervisor"
    finally:
        detector.close()


@pytest.mark.parametrize("damage", ["a flipped byte", "a short read"])
def test_a_bundle_that_fails_its_digests_leaves_the_query_path_without_a_model(
    tmp_path: Path,
    yolox_release: tuple[dict[str, Any], bytes],
    damage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entries, blob = yolox_release
    entry = _entry(tmp_path, {"detector": "release", **entries})
    if damage == "a flipped byte":
        stdin = _stdin(blob[:100] + bytes([blob[100] ^ 1]) + blob[101:])
        fragment = "release bundle part release.json: expected sha256 "
    else:
        stdin = io.BytesIO(len(blob[:-1]).to_bytes(8, "big") + blob[:-1])
        fragment = f"release bundle: expected {len(blob)} bytes, got {len(blob) - 1}"
    with caplog.at_level(logging.ERROR, logger="kontur.api"):
        assert query_detector(entry, stdin, tmp_path / "data") is None
    assert f"query path without a model: {fragment}" in caplog.text


def test_a_site_without_a_release_answers_with_its_built_in_detector(tmp_path: Path) -> None:
    entry = _entry(tmp_path, {"detector": "hog"})
    detector = query_detector(entry, io.BytesIO(b""), tmp_path / "data")
    assert isinstance(detector, SandboxedDetector)
    try:
        answer = detector.detect(cv2.imread(str(shared("images", "bus.jpg"))), timeout_s=60)
        assert answer.model_id.startswith("builtin:opencv-hog") and answer.class_names == (
            "person",
        )
        assert answer.detections  # HOG finds at least one of the people
    finally:
        detector.close()


def test_without_a_query_worker_there_is_no_detector(tmp_path: Path) -> None:
    assert query_detector(None, io.BytesIO(b""), tmp_path) is None
