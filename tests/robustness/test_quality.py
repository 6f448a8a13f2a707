"""Detection quality: greedy matching, P/R at the release threshold, AP50, and real footage."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest
import supervision as sv
from tests.conftest import shared

from kontur.release import ReleaseFiles, preset
from kontur.release.manifest import Thresholds
from kontur.robustness.corruptions import corrupt
from kontur.robustness.errors import NoPersonClass
from kontur.robustness.frames import AuditFrame, load_audit_frames
from kontur.robustness.quality import (
    DetectionQuality,
    average_precision,
    box_iou,
    detection_quality,
    person_detections,
)
from kontur.worker.detectors import Detector
from kontur.worker.runners import build_detector

A = [0, 0, 10, 20]
B = [50, 50, 60, 70]
C = [100, 0, 120, 40]
FAR = [200, 200, 210, 220]


def _arr(*boxes: Sequence[float]) -> np.ndarray:
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


def test_box_iou() -> None:
    iou = box_iou(_arr([0, 0, 10, 10], [20, 20, 30, 30]), _arr([5, 0, 15, 10], [0, 0, 10, 10]))
    np.testing.assert_allclose(iou, [[1 / 3, 1.0], [0.0, 0.0]])
    assert box_iou(_arr(), _arr(A)).shape == (0, 1)


def test_hand_built_counts_and_ap() -> None:
    frames = [
        # gt A and B; a hit on A, a duplicate of A, and a low-scoring miss
        (_arr(A, [0, 0, 10, 19], FAR), np.array([0.9, 0.8, 0.2]), _arr(A, B)),
        (_arr(), np.zeros(0), _arr(C)),  # C is never detected
    ]
    q = detection_quality(iter(frames), score_threshold=0.5)
    assert (q.tp, q.fp, q.fn, q.gt, q.frames) == (1, 1, 2, 3, 2)
    assert q.precision == pytest.approx(0.5)
    assert q.recall == pytest.approx(1 / 3)
    assert q.ap50 == pytest.approx(1 / 3)  # recall 1/3 reached at precision 1, never more
    low = detection_quality(frames, score_threshold=0.1)
    assert (low.tp, low.fp, low.fn) == (1, 2, 2)
    assert low.ap50 == q.ap50  # AP does not depend on the threshold


def test_ap_is_voc_all_point_interpolated() -> None:
    # ranked hits T F T F T over 3 gt: interpolated precision 1, 2/3, 3/5 at recall 1/3, 2/3, 1
    frames = [
        (_arr(A, FAR), np.array([0.9, 0.8]), _arr(A)),
        (_arr(B, FAR), np.array([0.7, 0.6]), _arr(B)),
        (_arr(C), np.array([0.5]), _arr(C)),
    ]
    expected = (1 + 2 / 3 + 3 / 5) / 3
    assert detection_quality(frames, score_threshold=0.05).ap50 == pytest.approx(expected)
    hits = np.array([True, False, True, False, True])
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.6, 0.5]), hits, 3) == pytest.approx(
        expected
    )
    # the same detections in another order rank the same
    shuffled = np.array([0.5, 0.8, 0.9, 0.6, 0.7])
    assert average_precision(shuffled, hits[[4, 1, 0, 3, 2]], 3) == pytest.approx(expected)


def test_higher_score_matches_first_even_with_lower_iou() -> None:
    gt = _arr([0, 0, 10, 10])
    loose, tight = [0, 0, 10, 16], [0, 0, 10, 11]  # IoU 0.625 and 0.909
    q = detection_quality([(_arr(tight, loose), np.array([0.4, 0.9]), gt)], score_threshold=0.5)
    assert (q.tp, q.fp) == (1, 0)  # the loose high-scoring box took the gt
    q = detection_quality([(_arr(tight, loose), np.array([0.4, 0.9]), gt)], score_threshold=0.3)
    assert (q.tp, q.fp) == (1, 1)  # the tight low-scoring one is a duplicate


def test_a_detection_takes_the_free_gt_it_overlaps_most() -> None:
    gts = _arr([0, 0, 10, 10], [2, 0, 12, 10])
    dets = _arr([2, 0, 12, 10], [0, 0, 10, 10])
    q = detection_quality([(dets, np.array([0.9, 0.8]), gts)], score_threshold=0.5)
    assert (q.tp, q.fp, q.fn) == (2, 0, 0)


def test_iou_threshold_is_inclusive() -> None:
    gt, det = _arr([0, 0, 10, 10]), _arr([0, 0, 10, 20])  # IoU exactly 0.5
    assert detection_quality([(det, np.array([1.0]), gt)], score_threshold=0.5).tp == 1
    q = detection_quality([(det, np.array([1.0]), gt)], score_threshold=0.5, iou=0.6)
    assert (q.tp, q.fp, q.fn) == (0, 1, 1)


def test_perfect_and_empty() -> None:
    gt = _arr(A, B, C)
    q = detection_quality([(gt, np.array([0.9, 0.8, 0.7]), gt)], score_threshold=0.5)
    assert (q.precision, q.recall, q.ap50) == (1.0, 1.0, 1.0)
    q = detection_quality([], score_threshold=0.5)
    assert (q.precision, q.recall, q.ap50, q.frames, q.gt) == (0.0, 0.0, 0.0, 0, 0)
    assert q.to_json()["score_threshold"] == 0.5


def test_malformed_input() -> None:
    with pytest.raises(ValueError, match=r"frame 0: expected \(n, 4\) detections"):
        detection_quality([(np.zeros((2, 5)), np.zeros(2), _arr(A))], score_threshold=0.5)
    with pytest.raises(ValueError, match="frame 0: expected"):
        detection_quality([(_arr(A, B), np.zeros(3), _arr(A))], score_threshold=0.5)


def test_person_detections() -> None:
    dets = sv.Detections(
        xyxy=_arr(A, B, C).astype(np.float32),
        confidence=np.array([0.9, 0.8, 0.7], dtype=np.float32),
        class_id=np.array([0, 2, 0]),
    )
    xyxy, scores = person_detections(dets, ("person", "bicycle", "car"))
    np.testing.assert_allclose(xyxy, _arr(A, C))
    np.testing.assert_allclose(scores, [0.9, 0.7], rtol=1e-6)
    xyxy, scores = person_detections(sv.Detections.empty(), ("person",))
    assert xyxy.shape == (0, 4) and scores.shape == (0,)
    with pytest.raises(NoPersonClass, match="expected one named 'person', got"):
        person_detections(dets, ("background", "pedestrian"))


# --- real footage ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def yolox() -> Detector:
    """YOLOX-Nano keeping detections down to 0.05 (for AP), one inference thread."""
    data = shared("models", "yolox_nano.onnx").read_bytes()
    manifest = preset(
        "yolox",
        name="test",
        version=1,
        files=ReleaseFiles(runtime="onnx", model="model.onnx"),
        thresholds=Thresholds(score=0.05, nms_iou=0.45),
    )
    model_id = "sha256:" + hashlib.sha256(data).hexdigest()
    return build_detector(manifest, {"model.onnx": data}, model_id=model_id, intra_op_threads=1)


def _quality(det: Detector, frames: list[AuditFrame] | tuple[AuditFrame, ...]) -> DetectionQuality:
    pairs = [(*person_detections(det.infer(f.image), det.class_names), f.boxes) for f in frames]
    return detection_quality(pairs, score_threshold=0.3)


def test_tud_campus_matches_the_manifest_figures(yolox: Detector) -> None:
    # ../shared/data/MANIFEST.md: YOLOX-Nano at 0.3 on all 71 TUD-Campus frames, P 0.65 / R 0.77
    # (motmetrics on unclipped gt); here the gt is clipped to the picture.
    frames = load_audit_frames(
        shared("mot15", "TUD-Campus", "TUD-Campus.mp4"),
        shared("mot15", "TUD-Campus", "gt", "gt.txt"),
        count=71,
    )
    q = _quality(yolox, frames)
    assert q.frames == 71 and q.gt == 359
    assert q.precision == pytest.approx(0.65, abs=0.02)
    assert q.recall == pytest.approx(0.77, abs=0.02)
    assert q.ap50 == pytest.approx(0.76, abs=0.02)  # measured here: 0.762, VOC all-point


def test_pets09_recall_falls_under_severe_noise(yolox: Detector) -> None:
    frames = load_audit_frames(
        shared("video", "pets09_s2l1_480x360.avi"),
        shared("mot15", "PETS09-S2L1", "gt", "gt.txt"),
        scale=0.625,
        count=8,
        min_persons=4,
    )
    clean = _quality(yolox, frames)
    rng = np.random.default_rng(0)
    noisy = _quality(yolox, [corrupt(f, "gaussian_noise", 5, rng) for f in frames])
    assert clean.recall >= 0.8 and clean.ap50 >= 0.75
    assert noisy.recall < clean.recall - 0.4
    assert noisy.ap50 < clean.ap50 - 0.4
