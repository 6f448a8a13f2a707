"""Simulators for the verifier's tests: walking people and a stream fed the way the shell does.

:class:`StreamSim` stands in for the verifier's process shell (not for the verifier): per
frame it calls ``observe_frame`` with a thumbnail, then ``check`` with the worker's
``TrackFrame``. :class:`Walker` makes a realistic pedestrian track: a 40×100 px box walking
at a given speed in box heights per second, with a pixel of detector jitter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kontur.verifier import Verifier
from kontur.wire import Finding, TrackedObject, TrackFrame

#: Real third-party test data, outside the repository (DESIGN.md §5).
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def track_frame(
    frame_index: int,
    pts_s: float,
    objects: Iterable[TrackedObject],
    camera_id: str = "cam-1",
) -> TrackFrame:
    """A worker result for one frame, stamped like the worker stamps it."""
    objs = tuple(objects)
    return TrackFrame(
        camera_id=camera_id,
        frame_index=frame_index,
        pts_s=pts_s,
        model_id="yolox-nano@test",
        config_id="cfg@test",
        platform="cpu",
        objects=objs,
        detections=len(objs),
    )


def person(
    track_id: int,
    xyxy: tuple[float, float, float, float],
    confidence: float = 0.85,
    class_id: int = 0,
) -> TrackedObject:
    """One tracked object (a person unless ``class_id`` says otherwise)."""
    names = {0: "person", 2: "car"}
    return TrackedObject(
        track_id=track_id,
        class_id=class_id,
        class_name=names.get(class_id, f"class{class_id}"),
        confidence=confidence,
        xyxy=xyxy,
    )


@dataclass
class Walker:
    """A pedestrian walking right at ``speed_h`` box heights per second."""

    track_id: int
    x: float = 60.0
    y: float = 120.0
    w: float = 40.0
    h: float = 100.0
    speed_h: float = 1.0
    confidence: float = 0.85
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))

    def at(self, t: float) -> TrackedObject:
        """The walker's tracked box at time ``t`` seconds, with detector jitter."""
        jx, jy, jw, jh = self.rng.normal(0.0, 0.7, 4)
        cx = self.x + self.speed_h * self.h * t + jx
        cy = self.y + jy
        w, h = self.w + jw, self.h + jh
        conf = float(np.clip(self.confidence + self.rng.normal(0.0, 0.02), 0.0, 1.0))
        return person(self.track_id, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), conf)


class StreamSim:
    """Feeds a :class:`Verifier` frame by frame: ``observe_frame`` then ``check``."""

    def __init__(
        self,
        verifier: Verifier,
        camera_id: str = "cam-1",
        fps: float = 10.0,
        seed: int = 0,
    ) -> None:
        self.verifier = verifier
        self.camera_id = camera_id
        self.fps = fps
        self.index = 0
        self.rng = np.random.default_rng(seed)

    @property
    def pts(self) -> float:
        """The pts of the next frame (index / fps, exact for whole-second boundaries)."""
        return self.index / self.fps

    def noise(self) -> np.ndarray:
        """A fresh 48×64 noise thumbnail: a scene that is clearly alive."""
        return self.rng.integers(0, 256, (48, 64), dtype=np.uint8)

    def observe(self, thumbnail: np.ndarray | str | None = "noise") -> None:
        """Step 1 only, for the next frame (then the index moves on)."""
        thumb = self.noise() if isinstance(thumbnail, str) else thumbnail
        self.verifier.observe_frame(self.camera_id, self.index, self.pts, thumb)
        self.index += 1

    def frame(
        self,
        objects: Iterable[TrackedObject] = (),
        thumbnail: np.ndarray | str | None = "noise",
    ) -> Finding:
        """Both steps for the next frame; returns the verifier's finding."""
        index, pts = self.index, self.pts
        self.observe(thumbnail)
        return self.verifier.check(track_frame(index, pts, objects, self.camera_id))

    def walk(self, walkers: list[Walker], frames: int) -> list[Finding]:
        """``frames`` frames of ``walkers`` walking over a live (noise) scene."""
        return [self.frame(w.at(self.pts) for w in walkers) for _ in range(frames)]
