"""The audit's frames: decoded images with the ground-truth person boxes they show.

:func:`load_audit_frames` is the I/O shell. In order, it:

1. reads the MOTChallenge ``gt.txt`` with :func:`kontur.eval.gt.load_gt` (boxes times
   ``scale``: gt coordinates to video pixels);
2. picks the frames: those with at least ``min_persons`` gt boxes, ``count`` of them evenly
   spaced over the clip (all of them when there are fewer);
3. checks the gt fits the video: as many frames in the container header as in the gt, and the
   gt box centres inside the picture (else ``--scale`` is wrong);
4. decodes the whole video with :func:`kontur.eval.mot.open_video`, keeping the picked frames,
   and checks the decoded frame count against the gt.

Gt boxes are clipped to the picture: a person half out of view is scored on the half the
detector can see. Boxes left thinner than :data:`MIN_SIDE` pixels are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kontur.eval.errors import FrameCountError
from kontur.eval.gt import GroundTruth, load_gt
from kontur.eval.mot import check_scale, open_video
from kontur.robustness.errors import AuditFramesError

__all__ = ["MIN_SIDE", "AuditFrame", "clip_boxes", "load_audit_frames", "pick_frames"]

#: Boxes narrower or shorter than this many pixels (after clipping) are not a person to find.
MIN_SIDE = 2.0
#: More gt box centres than this outside the picture means a wrong ``--scale``.


@dataclass(frozen=True, eq=False)
class AuditFrame:
    """One frame under audit.

    ``image`` is BGR uint8 (H, W, 3); ``boxes`` is float64 (n, 4) xyxy in that image's
    pixels: the ground-truth persons. ``index`` is the 0-based decoded frame number.
    """

    index: int
    image: np.ndarray
    boxes: np.ndarray

    def __post_init__(self) -> None:
        if self.image.dtype != np.uint8 or self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(
                f"frame {self.index}: expected a BGR uint8 (H, W, 3) image, "
                f"got {self.image.dtype} {self.image.shape}"
            )
        if self.boxes.ndim != 2 or self.boxes.shape[1] != 4:
            raise ValueError(f"frame {self.index}: expected (n, 4) boxes, got {self.boxes.shape}")


def clip_boxes(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """``xyxy`` clipped to a ``width`` x ``height`` picture, boxes thinner than MIN_SIDE dropped."""
    out = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4).copy()
    np.clip(out[:, 0::2], 0.0, float(width), out=out[:, 0::2])
    np.clip(out[:, 1::2], 0.0, float(height), out=out[:, 1::2])
    keep = ((out[:, 2] - out[:, 0]) >= MIN_SIDE) & ((out[:, 3] - out[:, 1]) >= MIN_SIDE)
    return out[keep]


def pick_frames(gt: GroundTruth, *, count: int, min_persons: int = 0) -> np.ndarray:
    """The 0-based frame indices to audit: ``count`` evenly spaced over the eligible frames.

    A frame is eligible when the gt has at least ``min_persons`` boxes in it. Indices are
    sorted and distinct; all eligible frames are returned when there are no more than
    ``count``.
    """
    if count < 1:
        raise AuditFramesError(f"--frames: expected at least 1 frame, got {count}")
    if min_persons < 0:
        raise AuditFramesError(f"--min-persons: expected 0 or more, got {min_persons}")
    per_frame = np.bincount(gt.frame - 1, minlength=gt.num_frames)[: gt.num_frames]
    eligible = np.flatnonzero(per_frame >= min_persons)
    if not len(eligible):
        raise AuditFramesError(
            f"{gt.source}: expected a frame with at least {min_persons} gt persons, "
            f"got at most {int(per_frame.max())}"
        )
    if len(eligible) <= count:
        return eligible
    at = np.round(np.linspace(0, len(eligible) - 1, count)).astype(np.int64)
    return eligible[at]


def _gt_xyxy(gt: GroundTruth, index: int, width: int, height: int) -> np.ndarray:
    xywh = gt.at(index)[1]
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return clip_boxes(xyxy, width, height)


def load_audit_frames(
    video: Path, gt: Path, *, scale: float = 1.0, count: int = 200, min_persons: int = 0
) -> tuple[AuditFrame, ...]:
    """Decode ``video`` and return ``count`` evenly spaced frames with their gt persons.

    ``gt`` is a MOTChallenge ``gt.txt`` lined up frame for frame with ``video``; ``scale``
    multiplies its boxes (0.625 for PETS09-S2L1 at 480x360, whose gt is in 768x576 pixels).
    Only frames with at least ``min_persons`` gt boxes are candidates.
    """
    truth = load_gt(gt, scale=scale)
    wanted = pick_frames(truth, count=count, min_persons=min_persons)
    info, stream = open_video(video)
    if info.frames and info.frames != truth.num_frames:
        raise FrameCountError(
            f"--video {video}: expected {truth.num_frames} frames (as {gt}), "
            f"got {info.frames} in the container header"
        )
    check_scale(truth, (info.height, info.width), scale)
    keep = set(wanted.tolist())
    frames: list[AuditFrame] = []
    decoded = 0
    for i, image in enumerate(stream):
        decoded = i + 1
        if i in keep:
            h, w = image.shape[:2]
            frames.append(AuditFrame(i, image, _gt_xyxy(truth, i, w, h)))
    if decoded != truth.num_frames:
        raise FrameCountError(
            f"--video {video}: expected {truth.num_frames} frames (as {gt}), decoded {decoded}"
        )
    return tuple(frames)
