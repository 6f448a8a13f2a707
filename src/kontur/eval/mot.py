"""Tracking quality on MOTChallenge sequences: detector + the worker's tracker vs ground truth.

The core, :func:`evaluate` / :func:`evaluate_variants`, is fed decoded frames, a parsed
:class:`~kontur.eval.gt.GroundTruth`, a detector (anything with ``infer(frame) ->
sv.Detections``) and a tracker factory; it reads no files. Per frame, in order:

1. the detector runs on the frame (wrapped in a :class:`~kontur.worker.motion.MotionGate`
   for a motion-gated variant); only the evaluated classes (``person``) are kept;
2. the tracker advances; its confirmed tracks are the hypotheses;
3. hypotheses are matched to the gt of that frame (gt frame ``i + 1`` for decoded frame ``i``)
   by IoU distance, IoU < 0.5 never matching (the MOTChallenge rule), and accumulated.

Only steps 1-2 are timed (``fps``). The video must have exactly as many frames as the gt
sequence; a mismatch is a :class:`~kontur.eval.errors.FrameCountError`.

:func:`run_mot` is the I/O shell: it reads the gt file and decodes the video with PyAV.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import supervision as sv

from kontur.config import MotionConfig
from kontur.eval._metrics import HotaFigures, MotAccumulator
from kontur.eval.errors import (
    EvalError,
    EvalInputError,
    FrameCountError,
    GroundTruthError,
    VideoDecodeError,
)
from kontur.eval.gt import GroundTruth, GtFormat, load_gt
from kontur.wire import TrackedObject
from kontur.worker.detectors import Detector
from kontur.worker.motion import MotionGate, select

__all__ = [
    "FULL_FRAME",
    "MOTION_GATED",
    "MotResult",
    "Tracker",
    "TrackerFactory",
    "VideoInfo",
    "evaluate",
    "evaluate_variants",
    "open_video",
    "run_mot",
]

FULL_FRAME = "full-frame"
MOTION_GATED = "motion-gated"
#: More gt box centres than this outside the frame means a wrong ``--scale``.
_MAX_OUTSIDE = 0.10


class Tracker(Protocol):
    """The tracker stage: one update per frame, returning the confirmed tracks."""

    def update(self, detections: sv.Detections) -> Sequence[TrackedObject]:
        """Advance by one frame."""
        ...


TrackerFactory = Callable[[], Tracker]


@dataclass(frozen=True)
class MotResult:
    """The figures of one evaluated run (one detector variant over one sequence)."""

    label: str
    detector: str
    model_id: str
    frames: int
    mota: float
    motp: float
    idf1: float
    precision: float
    recall: float
    id_switches: int
    fragmentations: int
    false_positives: int
    misses: int
    gt_boxes: int
    hyp_boxes: int
    gt_ids: int
    mostly_tracked: int
    partially_tracked: int
    mostly_lost: int
    hota: HotaFigures | None
    seconds: float
    detector_calls: int
    pixels_seen: int
    pixels_analysed: int

    @property
    def fps(self) -> float:
        """Frames per second of detection + tracking (decode and scoring excluded)."""
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    @property
    def analysed_ratio(self) -> float:
        """Pixels handed to the detector over pixels decoded (1.0 for full-frame)."""
        return self.pixels_analysed / self.pixels_seen if self.pixels_seen else 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``fps`` and ``analysed_ratio`` included)."""
        out = asdict(self)
        out["fps"] = round(self.fps, 3)
        out["analysed_ratio"] = round(self.analysed_ratio, 4)
        return out


class _Run:
    """One variant's detector, tracker, accumulator and counters."""

    def __init__(
        self, label: str, detector: Detector, tracker: Tracker, classes: Sequence[str]
    ) -> None:
        self.label, self.detector, self.tracker = label, detector, tracker
        self.keep = np.asarray([i for i, n in enumerate(detector.class_names) if n in classes])
        if not len(self.keep):
            raise EvalError(
                f"detector {detector.name}: expected a class among {list(classes)}, "
                f"got {len(detector.class_names)} others"
            )
        self.acc = MotAccumulator()
        self.seconds = 0.0
        self.frames = 0
        self.pixels = 0

    def step(
        self, frame: np.ndarray, gt: tuple[np.ndarray, np.ndarray], clock: Callable[[], float]
    ) -> None:
        t0 = clock()
        dets = self.detector.infer(frame)
        if len(dets) and dets.class_id is not None:
            dets = select(dets, np.isin(dets.class_id, self.keep))
        tracks = self.tracker.update(dets)
        self.seconds += clock() - t0
        self.frames += 1
        self.pixels += frame.shape[0] * frame.shape[1]
        hyp = np.asarray([t.xyxy for t in tracks], dtype=np.float64).reshape(-1, 4)
        hyp[:, 2:] -= hyp[:, :2]
        self.acc.update(gt[0], gt[1], np.asarray([t.track_id for t in tracks]), hyp)

    def result(self, hota: bool) -> MotResult:
        m = self.acc.clear()
        stats = self.detector.stats if isinstance(self.detector, MotionGate) else None
        return MotResult(
            label=self.label,
            detector=self.detector.name,
            model_id=self.detector.model_id,
            frames=self.frames,
            mota=m["mota"],
            motp=m["motp"],
            idf1=m["idf1"],
            precision=m["precision"],
            recall=m["recall"],
            id_switches=int(m["num_switches"]),
            fragmentations=int(m["num_fragmentations"]),
            false_positives=int(m["num_false_positives"]),
            misses=int(m["num_misses"]),
            gt_boxes=int(m["num_objects"]),
            hyp_boxes=int(m["num_predictions"]),
            gt_ids=int(m["num_unique_objects"]),
            mostly_tracked=int(m["mostly_tracked"]),
            partially_tracked=int(m["partially_tracked"]),
            mostly_lost=int(m["mostly_lost"]),
            hota=self.acc.hota() if hota else None,
            seconds=self.seconds,
            detector_calls=stats.detector_calls if stats else self.frames,
            pixels_seen=self.pixels,
            pixels_analysed=stats.pixels_analysed if stats else self.pixels,
        )


def check_scale(gt: GroundTruth, shape: tuple[int, ...], scale: float | None = None) -> None:
    """Refuse gt whose box centres fall outside a frame of ``shape`` (H, W, ...) more than
    rarely: the sign of a wrong ``--scale`` (named in the message when given)."""
    h, w = shape[:2]
    cx = gt.xywh[:, 0] + gt.xywh[:, 2] / 2
    cy = gt.xywh[:, 1] + gt.xywh[:, 3] / 2
    outside = float(np.mean((cx < 0) | (cx > w) | (cy < 0) | (cy > h)))
    if outside > _MAX_OUTSIDE:
        now = "" if scale is None else f", now {scale:g}"
        raise GroundTruthError(
            f"{gt.source}: expected gt boxes inside the {w}x{h} video (check --scale{now}), "
            f"got {outside:.0%} of box centres outside"
        )


def evaluate_variants(
    frames: Iterable[np.ndarray],
    gt: GroundTruth,
    detectors: Mapping[str, Detector],
    tracker_factory: TrackerFactory,
    *,
    classes: Sequence[str] = ("person",),
    hota: bool = True,
    clock: Callable[[], float] = time.perf_counter,
    on_frame: Callable[[int, int], None] | None = None,
) -> dict[str, MotResult]:
    """Evaluate several detectors (e.g. full-frame and motion-gated) on the same frames.

    Each variant gets its own tracker; the frames are decoded once and fed to every variant
    in turn, so their timings are taken under the same conditions.
    """
    runs = [_Run(label, d, tracker_factory(), classes) for label, d in detectors.items()]
    count = 0
    for i, frame in enumerate(frames):
        if i >= gt.num_frames:
            raise FrameCountError(
                f"{gt.source}: expected a video of {gt.num_frames} frames, got more"
            )
        if i == 0:
            check_scale(gt, frame.shape)
        truth = gt.at(i)
        for run in runs:
            run.step(frame, truth, clock)
        count = i + 1
        if on_frame is not None:
            on_frame(count, gt.num_frames)
    if count != gt.num_frames:
        raise FrameCountError(
            f"{gt.source}: expected a video of {gt.num_frames} frames, got {count}"
        )
    return {run.label: run.result(hota) for run in runs}


def evaluate(
    frames: Iterable[np.ndarray],
    gt: GroundTruth,
    detector: Detector,
    tracker_factory: TrackerFactory,
    *,
    motion_gate: MotionConfig | None = None,
    classes: Sequence[str] = ("person",),
    hota: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> MotResult:
    """Evaluate one detector + tracker; ``motion_gate`` wraps the detector in a MotionGate."""
    det: Detector
    if motion_gate is not None:
        label, det = MOTION_GATED, MotionGate(detector, motion_gate)
    else:
        label, det = FULL_FRAME, detector
    return evaluate_variants(
        frames, gt, {label: det}, tracker_factory, classes=classes, hota=hota, clock=clock
    )[label]


@dataclass(frozen=True)
class VideoInfo:
    """What the container header says (``frames`` is 0 when the header does not say)."""

    path: Path
    frames: int
    fps: float
    width: int
    height: int


def _frames(container: Any, path: Path) -> Iterator[np.ndarray]:
    import av

    try:
        with container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="bgr24")
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(f"--video {path}: expected a decodable video, got {exc}") from None


def open_video(path: Path) -> tuple[VideoInfo, Iterator[np.ndarray]]:
    """Open a video with PyAV: its header figures and a generator of BGR frames."""
    import av

    if not path.is_file():
        raise EvalInputError(f"--video {path}: expected a video file, found nothing")
    try:
        container = av.open(str(path))
        stream = container.streams.video[0]
    except (av.error.FFmpegError, IndexError) as exc:
        why = "no video stream" if isinstance(exc, IndexError) else str(exc)
        raise VideoDecodeError(f"--video {path}: expected a video, got {why}") from None
    rate = stream.average_rate or stream.guessed_rate
    info = VideoInfo(
        path, int(stream.frames or 0), float(rate or 25.0), stream.width, stream.height
    )
    return info, _frames(container, path)


def run_mot(
    video: Path,
    gt_path: Path,
    detector: Detector,
    *,
    scale: float = 1.0,
    frames: int | None = None,
    variants: Sequence[str] = (FULL_FRAME,),
    motion: MotionConfig | None = None,
    gt_format: GtFormat = "mot15",
    hota: bool = True,
    on_frame: Callable[[int, int], None] | None = None,
) -> dict[str, MotResult]:
    """Read ``gt_path``, decode ``video`` and evaluate ``detector`` with the worker's tracker.

    ``variants`` names :data:`FULL_FRAME` and/or :data:`MOTION_GATED`; ``frames`` limits the
    run to the first N frames of both.
    """
    from kontur.worker.tracking import CameraTracker

    gt = load_gt(gt_path, scale=scale, fmt=gt_format)
    info, stream = open_video(video)
    if info.frames and info.frames != gt.num_frames:
        raise FrameCountError(
            f"--video {video}: expected {gt.num_frames} frames (as {gt_path}), "
            f"got {info.frames} in the container header"
        )
    if frames is not None:
        if not 1 <= frames <= gt.num_frames:
            raise EvalInputError(f"--frames: expected 1..{gt.num_frames}, got {frames}")
        gt, stream = gt.head(frames), islice(stream, frames)
    table: dict[str, Detector] = {}
    for v in variants:
        table[v] = MotionGate(detector, motion) if v == MOTION_GATED else detector
    return evaluate_variants(
        stream,
        gt,
        table,
        lambda: CameraTracker(info.fps, detector.class_names),
        hota=hota,
        on_frame=on_frame,
    )
