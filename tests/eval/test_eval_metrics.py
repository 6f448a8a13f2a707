"""MOT metrics on tiny synthetic sequences whose answers were worked out by hand.

The tracker stage is replaced by a scripted one (it replays given hypotheses) so that the
figures depend only on the scoring; one test runs the project's real ByteTrack.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
import supervision as sv

from kontur.eval._metrics import MotAccumulator
from kontur.eval.errors import EvalError, FrameCountError
from kontur.eval.gt import parse_gt
from kontur.eval.mot import MotResult, evaluate
from kontur.wire import TrackedObject
from kontur.worker.tracking import CameraTracker

Box = tuple[float, float, float, float]  # x, y, w, h
Hyps = list[list[tuple[int, Box]]]  # per frame: (track id, box)


class NoDetector:
    """The detector stage when the tracker is scripted: finds nothing."""

    name, model_id, class_names = "none", "none", ("person",)

    def infer(self, frame: np.ndarray) -> sv.Detections:
        return sv.Detections.empty()


class ScriptedDetector:
    """Returns the given (x, y, w, h) boxes, one list per call, as person detections."""

    name, model_id, class_names = "scripted", "scripted", ("person",)

    def __init__(self, frames: list[list[Box]], conf: float = 0.9) -> None:
        self._frames, self._conf, self._i = frames, conf, 0

    def infer(self, frame: np.ndarray) -> sv.Detections:
        boxes = np.asarray(self._frames[self._i], dtype=np.float32).reshape(-1, 4)
        self._i += 1
        boxes[:, 2:] += boxes[:, :2]
        return sv.Detections(
            xyxy=boxes,
            confidence=np.full(len(boxes), self._conf, dtype=np.float32),
            class_id=np.zeros(len(boxes), dtype=int),
        )


class ScriptedTracker:
    """Replays per-frame hypotheses."""

    def __init__(self, hyps: Hyps) -> None:
        self._hyps, self._i = hyps, 0

    def update(self, detections: sv.Detections) -> Sequence[TrackedObject]:
        out = [
            TrackedObject(
                track_id=tid,
                class_id=0,
                class_name="person",
                confidence=0.9,
                xyxy=(x, y, x + w, y + h),
            )
            for tid, (x, y, w, h) in self._hyps[self._i]
        ]
        self._i += 1
        return out


def _gt(rows: list[tuple[int, int, Box]]) -> str:
    return "".join(f"{f},{i},{x},{y},{w},{h},1,-1,-1,-1\n" for f, i, (x, y, w, h) in rows)


def _frames(n: int) -> list[np.ndarray]:
    return [np.zeros((100, 100, 3), dtype=np.uint8) for _ in range(n)]


def _score(gt_text: str, hyps: Hyps) -> MotResult:
    gt = parse_gt(gt_text)
    return evaluate(_frames(len(hyps)), gt, NoDetector(), lambda: ScriptedTracker(hyps))


A: Box = (10.0, 10.0, 10.0, 20.0)
B: Box = (50.0, 40.0, 12.0, 24.0)


def test_perfect_tracker_scores_one() -> None:
    rows = [(f, i, box) for f in range(1, 6) for i, box in ((1, A), (2, B))]
    r = _score(_gt(rows), [[(10, A), (20, B)] for _ in range(5)])
    assert (r.mota, r.idf1, r.precision, r.recall) == (1.0, 1.0, 1.0, 1.0)
    assert (r.id_switches, r.mostly_tracked, r.mostly_lost, r.frames) == (0, 2, 0, 5)
    assert r.hota is not None and r.hota.hota == pytest.approx(1.0)


def test_one_id_switch() -> None:
    # Object 1 is hypothesis 10 in frames 1-2 and hypothesis 30 in frames 3-4.
    rows = [(f, i, box) for f in range(1, 5) for i, box in ((1, A), (2, B))]
    hyps: Hyps = [[(10 if f < 3 else 30, A), (20, B)] for f in range(1, 5)]
    r = _score(_gt(rows), hyps)
    assert r.id_switches == 1
    assert r.mota == pytest.approx(1 - 1 / 8)  # 8 gt boxes, one switch
    assert r.idf1 == pytest.approx(2 * 6 / (8 + 8))  # IDTP: 2 (obj 1) + 4 (obj 2)
    assert (r.precision, r.recall) == (1.0, 1.0)
    # DetA = 1; AssA = mean over 8 TPs of (0.5 x4, 1 x4) = 0.75; HOTA = sqrt(DetA * AssA)
    assert r.hota is not None and r.hota.hota == pytest.approx(math.sqrt(0.75))


def test_miss_false_positive_and_iou_below_half() -> None:
    rows = [(f, 1, (0.0, 0.0, 10.0, 10.0)) for f in range(1, 5)]
    exact: Box = (0.0, 0.0, 10.0, 10.0)
    shifted: Box = (6.0, 0.0, 10.0, 10.0)  # IoU 40/160 = 0.25: may not match
    far: Box = (80.0, 80.0, 10.0, 10.0)
    hyps: Hyps = [[(10, exact)], [], [(10, shifted)], [(10, exact), (99, far)]]
    r = _score(_gt(rows), hyps)
    assert (r.misses, r.false_positives, r.id_switches) == (2, 2, 0)
    assert r.mota == pytest.approx(0.0)  # 1 - (2 FN + 2 FP) / 4
    assert (r.precision, r.recall) == (0.5, 0.5)
    assert r.idf1 == pytest.approx(2 * 2 / (4 + 4))
    assert (r.mostly_tracked, r.partially_tracked, r.mostly_lost) == (0, 1, 0)


def test_real_bytetrack_on_a_clean_walker() -> None:
    walker: list[Box] = [(10.0 + 5 * i, 20.0, 10.0, 30.0) for i in range(10)]
    gt = parse_gt(_gt([(i + 1, 1, b) for i, b in enumerate(walker)]))
    det = ScriptedDetector([[b] for b in walker])
    r = evaluate(_frames(10), gt, det, lambda: CameraTracker(10.0, det.class_names))
    # ByteTrack confirms a track on its 2nd frame: frame 1 is a miss, the rest match.
    assert (r.misses, r.false_positives, r.id_switches) == (1, 0, 0)
    assert r.mota == pytest.approx(0.9) and r.recall == pytest.approx(0.9)
    assert r.idf1 == pytest.approx(2 * 9 / (10 + 9))
    assert (r.detector_calls, r.pixels_seen, r.analysed_ratio) == (10, 10 * 100 * 100, 1.0)


def test_result_serialises() -> None:
    r = _score(_gt([(1, 1, A)]), [[(1, A)]])
    doc = r.to_json()
    assert doc["label"] == "full-frame" and doc["mota"] == 1.0
    assert doc["hota"]["implementation"] in ("trackeval", "trackers.eval")
    assert doc["analysed_ratio"] == 1.0 and doc["fps"] > 0


def test_fewer_frames_than_gt_is_refused() -> None:
    gt = parse_gt(_gt([(4, 1, A)]), source="gt.txt")
    with pytest.raises(FrameCountError, match=r"gt\.txt: expected a video of 4 frames, got 3"):
        evaluate(_frames(3), gt, NoDetector(), lambda: ScriptedTracker([[]] * 4))


def test_more_frames_than_gt_is_refused() -> None:
    gt = parse_gt(_gt([(2, 1, A)]), source="gt.txt")
    with pytest.raises(FrameCountError, match="expected a video of 2 frames, got more"):
        evaluate(_frames(3), gt, NoDetector(), lambda: ScriptedTracker([[]] * 3))


def test_gt_outside_the_frame_means_a_wrong_scale() -> None:
    gt = parse_gt(_gt([(1, 1, (150.0, 150.0, 10.0, 10.0))]), source="gt.txt")
    with pytest.raises(EvalError, match=r"100x100 video \(check --scale\), got 100% of box"):
        evaluate(_frames(1), gt, NoDetector(), lambda: ScriptedTracker([[]]))


def test_detector_without_the_evaluated_class_is_refused() -> None:
    class CarsOnly(NoDetector):
        class_names = ("car",)

    gt = parse_gt(_gt([(1, 1, A)]))
    with pytest.raises(EvalError, match=r"expected a class among \['person'\], got 1 others"):
        evaluate(_frames(1), gt, CarsOnly(), lambda: ScriptedTracker([[]]))


def test_hota_implementations_agree() -> None:
    pytest.importorskip("trackeval")
    rng = np.random.default_rng(7)
    acc = MotAccumulator()
    for f in range(30):
        gt_xywh = np.asarray([[10 + 2 * f, 10, 20, 40], [60, 5 + f, 25, 50], [5, 60, 15, 30]])
        noise = rng.normal(0, 2.5, gt_xywh.shape)
        keep = rng.random(3) > 0.15
        hyp_ids = np.asarray([1, 2 if f < 15 else 7, 3])[keep]
        acc.update(np.asarray([1, 2, 3]), gt_xywh, hyp_ids, (gt_xywh + noise)[keep])
    ref, port = acc.hota("trackeval"), acc.hota("trackers.eval")
    assert ref.implementation == "trackeval" and port.implementation == "trackers.eval"
    assert 0.3 < ref.hota < 1.0
    for field in ("hota", "deta", "assa", "loca"):
        assert getattr(port, field) == pytest.approx(getattr(ref, field), abs=1e-9)
