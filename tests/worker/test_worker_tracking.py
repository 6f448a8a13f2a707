"""CameraTracker over the real ByteTrack: stable ids, and no unconfirmed tracks reported."""

from __future__ import annotations

import numpy as np
import supervision as sv

from kontur.wire import TrackedObject
from kontur.worker.detectors import COCO_CLASSES
from kontur.worker.tracking import CameraTracker


def _dets(boxes: list[list[float]], conf: float = 0.9, cls: int = 0) -> sv.Detections:
    return sv.Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        confidence=np.full(len(boxes), conf, dtype=np.float32),
        class_id=np.full(len(boxes), cls, dtype=int),
    )


def _walker(i: int, x0: float = 100.0, y0: float = 100.0) -> list[float]:
    """A 40x100 box walking right by 5 px per frame."""
    return [x0 + 5 * i, y0, x0 + 5 * i + 40, y0 + 100]


def test_moving_box_keeps_one_track_id() -> None:
    tracker = CameraTracker(10.0, COCO_CLASSES)
    reported: list[tuple[TrackedObject, ...]] = [
        tracker.update(_dets([_walker(i)])) for i in range(10)
    ]
    ids = {o.track_id for frame in reported for o in frame}
    assert len(ids) == 1
    assert all(len(frame) == 1 for frame in reported[1:])
    last = reported[-1][0]
    assert last.class_name == "person" and last.class_id == 0
    assert last.xyxy == (145.0, 100.0, 185.0, 200.0)
    assert 0.0 <= last.confidence <= 1.0


def test_unconfirmed_track_is_not_reported() -> None:
    tracker = CameraTracker(10.0, COCO_CLASSES)
    # the first sighting is a tentative track (tracker_id -1 inside ByteTrack)
    assert tracker.update(_dets([_walker(0)])) == ()
    assert len(tracker.update(_dets([_walker(1)]))) == 1


def test_low_confidence_flicker_never_becomes_a_track() -> None:
    tracker = CameraTracker(10.0, COCO_CLASSES)
    for i in range(10):
        assert tracker.update(_dets([_walker(i)], conf=0.3)) == ()


def test_two_walkers_get_two_ids() -> None:
    tracker = CameraTracker(10.0, COCO_CLASSES)
    out = ()
    for i in range(6):
        out = tracker.update(_dets([_walker(i), _walker(i, x0=400, y0=50)]))
    assert len({o.track_id for o in out}) == 2


def test_empty_frame_reports_nothing() -> None:
    assert CameraTracker(10.0, COCO_CLASSES).update(sv.Detections.empty()) == ()


def test_class_outside_the_name_table_is_named_by_number() -> None:
    tracker = CameraTracker(10.0, ("person",))
    out = ()
    for i in range(3):
        out = tracker.update(_dets([_walker(i)], cls=7))
    assert len(out) == 1
    assert (out[0].class_id, out[0].class_name) == (7, "7")
