"""Regression guard: tracking quality of the real models on real MOT15 footage.

Floors are the figures measured when this guard was written minus a small tolerance (see
``MEASURED``); a change that makes tracking worse than that fails here. No timing is asserted
(performance goals live in the benchmarks); motion gating is judged by the share of pixels
handed to the detector and by what it costs in recall.

PETS09-S2L1 (795 frames, both variants in one pass) takes about 20 s on one core.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kontur.config import MotionConfig
from kontur.eval.mot import FULL_FRAME, MOTION_GATED, MotResult, run_mot
from kontur.worker.detectors import Detector, YoloxOnnxDetector

Shared = Callable[[str], Path]

#: Measured on the 2-core dev machine, ONNX Runtime CPU, 1 intra-op thread:
#: (MOTA, IDF1, precision, recall, ID switches).
MEASURED = {
    ("yolox", "pets", FULL_FRAME): (0.6378, 0.6225, 0.7855, 0.8863, 29),
    ("yolox", "pets", MOTION_GATED): (0.7717, 0.6375, 0.8884, 0.8894, 27),
    ("yolox", "tud", FULL_FRAME): (0.6379, 0.7239, 0.9078, 0.7131, 1),
    ("yolov8", "tud", FULL_FRAME): (0.6546, 0.6875, 0.9126, 0.7298, 2),
}
TOLERANCE = 0.02  # absolute, on each ratio
IDSW_SLACK = 4
#: Motion-gated recall may be at most this far below full-frame recall (same run).
RECALL_COST_MAX = 0.02
#: Motion gating must hand the detector at most this share of PETS09's pixels.
PIXEL_RATIO_MAX = 0.80


def _check(result: MotResult, key: tuple[str, str, str]) -> None:
    mota, idf1, precision, recall, idsw = MEASURED[key]
    got = (result.mota, result.idf1, result.precision, result.recall)
    floors = (mota, idf1, precision, recall)
    for name, value, floor in zip(
        ("MOTA", "IDF1", "precision", "recall"), got, floors, strict=True
    ):
        assert value >= floor - TOLERANCE, f"{key}: {name} {value:.4f} < {floor} - {TOLERANCE}"
    assert result.id_switches <= idsw + IDSW_SLACK, f"{key}: {result.id_switches} ID switches"


@pytest.fixture(scope="module")
def yolox(shared_file: Shared) -> YoloxOnnxDetector:
    model = shared_file("models/yolox_nano.onnx").read_bytes()
    return YoloxOnnxDetector(model, intra_op_threads=1)


@pytest.fixture(scope="module")
def pets(shared_file: Shared, yolox: YoloxOnnxDetector) -> dict[str, MotResult]:
    return run_mot(
        shared_file("video/pets09_s2l1_480x360.avi"),
        shared_file("mot15/PETS09-S2L1/gt/gt.txt"),
        yolox,
        scale=0.625,
        variants=(FULL_FRAME, MOTION_GATED),
        motion=MotionConfig(),
    )


def _tud(shared_file: Shared, detector: Detector) -> MotResult:
    return run_mot(
        shared_file("mot15/TUD-Campus/TUD-Campus.mp4"),
        shared_file("mot15/TUD-Campus/gt/gt.txt"),
        detector,
    )[FULL_FRAME]


def test_yolox_pets09_full_frame(pets: dict[str, MotResult]) -> None:
    r = pets[FULL_FRAME]
    assert (r.frames, r.gt_ids, r.gt_boxes) == (795, 19, 4476)
    _check(r, ("yolox", "pets", FULL_FRAME))
    assert r.hota is not None and r.hota.hota >= 0.472 - TOLERANCE


def test_yolox_pets09_motion_gated(pets: dict[str, MotResult]) -> None:
    _check(pets[MOTION_GATED], ("yolox", "pets", MOTION_GATED))


def test_motion_gating_on_pets09_saves_pixels_not_recall(pets: dict[str, MotResult]) -> None:
    full, gated = pets[FULL_FRAME], pets[MOTION_GATED]
    assert gated.recall >= full.recall - RECALL_COST_MAX
    assert full.analysed_ratio == 1.0
    assert gated.analysed_ratio <= PIXEL_RATIO_MAX
    # max_regions=1 (the default): never more than one detector call per frame.
    assert gated.detector_calls <= full.detector_calls == 795


def test_yolox_tud_campus(shared_file: Shared, yolox: YoloxOnnxDetector) -> None:
    r = _tud(shared_file, yolox)
    assert (r.frames, r.gt_ids, r.gt_boxes) == (71, 8, 359)
    _check(r, ("yolox", "tud", FULL_FRAME))
    assert r.hota is not None and r.hota.hota >= 0.519 - TOLERANCE


def test_yolov8_tud_campus_through_the_release_runner(shared_file: Shared) -> None:
    runners = pytest.importorskip("kontur.worker.runners")
    from kontur.release import ReleaseFiles, preset

    files = ReleaseFiles(runtime="onnx", model="yolov8n_int8.onnx")
    manifest = preset("yolov8", name="yolov8n", version=1, files=files)
    data = shared_file("models/yolov8n_int8.onnx").read_bytes()
    det = runners.build_detector(manifest, {files.model: data}, model_id="test", intra_op_threads=1)
    _check(_tud(shared_file, det), ("yolov8", "tud", FULL_FRAME))
