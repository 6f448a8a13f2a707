"""Multi-object tracking: ByteTrack from the ``trackers`` package (no home-made tracker).

One tracker per camera. Unconfirmed tracks (``tracker_id == -1``) are not reported.
"""

from __future__ import annotations

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from kontur.wire import TrackedObject

__all__ = ["CameraTracker"]


class CameraTracker:
    """ByteTrack for one camera, turning detections into typed tracked objects."""

    def __init__(self, fps: float, class_names: tuple[str, ...]) -> None:
        self._tracker = ByteTrackTracker(frame_rate=fps)
        self._names = class_names

    def update(self, detections: sv.Detections) -> tuple[TrackedObject, ...]:
        """Advance the tracker by one frame; returns the confirmed tracks."""
        out = self._tracker.update(detections)
        if out.tracker_id is None or out.confidence is None or out.class_id is None:
            return ()
        objs = []
        for box, conf, cls, tid in zip(
            out.xyxy, out.confidence, out.class_id, out.tracker_id, strict=True
        ):
            if tid < 0:
                continue
            c = int(cls)
            objs.append(
                TrackedObject(
                    track_id=int(tid),
                    class_id=c,
                    class_name=self._names[c] if c < len(self._names) else str(c),
                    confidence=float(np.clip(conf, 0.0, 1.0)),
                    xyxy=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                )
            )
        return tuple(objs)
