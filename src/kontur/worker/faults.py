"""A compromised worker, simulated: rewrite the worker's own results on real footage.

``kontur demo --inject-fault worker-…`` (and ``benchmarks/verifier_bench.py``) test the
independent verifier against a worker that lies (issue 13 §2). The lie is told where a real
compromised worker would tell it: inside the worker process, on each :class:`TrackFrame`
just before it is sent to the verifier (ADR 0025). Nothing else changes: ingest, the ring,
the verifier and the gate run as in production.

:class:`WorkerFault` is deterministic (seeded) and pure apart from its own memory of earlier
frames; it needs no numpy, so the worker imports it before entering its sandbox. From
``start_s`` of stream time on, each fault rewrites every frame:

- ``worker-phantom``: adds a person (track :data:`PHANTOM_TRACK_ID`) 30% of the frame high,
  walking smoothly across the zone (towards the far side) at 0.7 box heights per second with
  a pixel of jitter, turning back at the frame's edge;
- ``worker-suppress``: removes every person, bicycle and motorcycle whose foot point is in the
  zone;
- ``worker-teleport``: every track jumps a third of the frame sideways, and back, every
  :data:`TELEPORT_PERIOD_S`;
- ``worker-class-flip``: tracks seen before the onset change group: people become cars,
  vehicles become people;
- ``worker-replay``: the tracks of ``replay_delay_s`` earlier (or of the oldest frame held,
  when the stream is younger) are replayed, as time goes on;
- ``worker-freeze``: the boxes of the last frame before the onset are sent again and again;
- ``worker-churn``: every object gets a new track id on every frame (from
  :data:`CHURN_TRACK_BASE` up), its box unchanged: a dwell keyed on the worker's ids would
  never reach its duration (ADR 0042).

The ``drift-…`` faults are a worker whose results drift (a poisoned or broken model, an EP
gone wrong): each honest frame is left alone, but objects the worker had not shown before
the onset change, so the drift test of the verifier (:mod:`kontur.verifier.drift`) has
something to find while every other check sees plausible tracks:

- ``drift-classes``: every new person, bicycle or motorcycle is reported as a dog;
- ``drift-recall``: 70% of the new objects (a fixed draw per track id) are never reported.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from kontur.geometry import foot_point, point_in_polygon
from kontur.wire import TrackedObject, TrackFrame

__all__ = [
    "CHURN_TRACK_BASE",
    "DRIFT_FAULTS",
    "DRIFT_RECALL_LOST",
    "PHANTOM_TRACK_ID",
    "TELEPORT_PERIOD_S",
    "WORKER_FAULTS",
    "FaultPlan",
    "WorkerFault",
]

WORKER_FAULTS = (
    "worker-phantom",
    "worker-suppress",
    "worker-teleport",
    "worker-class-flip",
    "worker-replay",
    "worker-freeze",
    "worker-churn",
)
#: Faults of a worker whose results drift (see the module); armed like the others.
DRIFT_FAULTS = ("drift-classes", "drift-recall")
#: Share of new objects a ``drift-recall`` worker never reports.
DRIFT_RECALL_LOST = 0.7
#: The track id the phantom walks under (a real tracker's ids start at 0 or 1).
PHANTOM_TRACK_ID = 1_000_001
#: The first track id a renaming worker hands out (then one more for each object and frame).
CHURN_TRACK_BASE = 2_000_000
#: Teleported boxes switch between their place and a third of the frame away this often.
TELEPORT_PERIOD_S = 0.5
#: Frames a replaying worker remembers (a minute at 25 fps, bounded whatever the stream).
REPLAY_FRAMES = 1500
_PERSONS = frozenset({"person", "bicycle", "motorcycle"})
_VEHICLES = frozenset({"car", "truck", "bus", "train"})
_WHOLE_FRAME = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Which fault, from which stream time, in which zone (normalised polygon)."""

    kind: str
    start_s: float
    zone: tuple[tuple[float, float], ...] = _WHOLE_FRAME
    seed: int = 0
    replay_delay_s: float = 60.0

    def __post_init__(self) -> None:
        if self.kind not in (*WORKER_FAULTS, *DRIFT_FAULTS):
            known = (*WORKER_FAULTS, *DRIFT_FAULTS)
            raise ValueError(f"expected a fault among {known}, got {self.kind!r}")
        if not (math.isfinite(self.start_s) and self.start_s >= 0 and len(self.zone) >= 3):
            raise ValueError(
                f"expected a start >= 0 s and a zone of 3 points or more, got {self.start_s} s "
                f"and {len(self.zone)} points"
            )

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON for a worker spec."""
        return {
            "kind": self.kind,
            "start_s": self.start_s,
            "zone": [list(p) for p in self.zone],
            "seed": self.seed,
            "replay_delay_s": self.replay_delay_s,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FaultPlan:
        """The plan :meth:`to_json` wrote."""
        zone = tuple((float(x), float(y)) for x, y in obj.get("zone", _WHOLE_FRAME))
        return cls(
            kind=str(obj["kind"]),
            start_s=float(obj["start_s"]),
            zone=zone,
            seed=int(obj.get("seed", 0)),
            replay_delay_s=float(obj.get("replay_delay_s", 60.0)),
        )


def _moved(obj: TrackedObject, dx: float) -> TrackedObject:
    x1, y1, x2, y2 = obj.xyxy
    return obj.model_copy(update={"xyxy": (x1 + dx, y1, x2 + dx, y2)})


@dataclass
class WorkerFault:
    """Rewrites each :class:`TrackFrame` as the planned compromised worker would."""

    plan: FaultPlan
    _rng: random.Random = field(init=False)
    _seen: set[int] = field(default_factory=set)
    _past: deque[tuple[float, tuple[TrackedObject, ...]]] = field(
        default_factory=lambda: deque(maxlen=REPLAY_FRAMES)
    )
    _frozen: tuple[TrackedObject, ...] | None = None
    _replay_lag: float | None = None
    _phantom: tuple[float, float, float] | None = None
    _names: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.plan.seed)

    def active(self, pts_s: float) -> bool:
        """True from the onset on."""
        return pts_s >= self.plan.start_s

    def apply(self, tracks: TrackFrame, width: int, height: int) -> TrackFrame:
        """The frame as the compromised worker sends it (``width``×``height``: the frame's size)."""
        t = tracks.pts_s
        self._past.append((t, tracks.objects))  # what the worker really saw, for a replay
        if not self.active(t):
            self._seen.update(o.track_id for o in tracks.objects)
            self._frozen = tracks.objects
            return tracks
        kind = self.plan.kind
        if kind == "worker-phantom":
            objects = (*tracks.objects, self._phantom_at(t, width, height))
        elif kind == "worker-suppress":
            objects = tuple(o for o in tracks.objects if not self._suppressed(o, width, height))
        elif kind == "worker-teleport":
            objects = self._teleported(tracks, width)
        elif kind == "worker-class-flip":
            objects = tuple(self._flipped(o) for o in tracks.objects)
        elif kind == "worker-replay":
            objects = self._replayed(tracks)
        elif kind == "worker-churn":
            objects = self._renamed(tracks.objects)
        elif kind in DRIFT_FAULTS:
            objects = self._drifted(tracks.objects)
        else:  # worker-freeze
            objects = self._frozen if self._frozen is not None else tracks.objects
        return tracks.model_copy(update={"objects": objects})

    def _renamed(self, objects: tuple[TrackedObject, ...]) -> tuple[TrackedObject, ...]:
        out = []
        for obj in objects:
            out.append(obj.model_copy(update={"track_id": CHURN_TRACK_BASE + self._names}))
            self._names += 1
        return tuple(out)

    def _suppressed(self, obj: TrackedObject, width: int, height: int) -> bool:
        return obj.class_name in _PERSONS and point_in_polygon(
            *foot_point(obj.xyxy, width, height), self.plan.zone
        )

    def _phantom_at(self, t: float, width: int, height: int) -> TrackedObject:
        h = 0.3 * height
        w = 0.4 * h
        if self._phantom is None:
            x, y = 0.5, 0.8
            for _ in range(100):  # a start whose foot point is in the zone
                x, y = self._rng.uniform(0.1, 0.9), self._rng.uniform(0.45, 0.95)
                if point_in_polygon(x, y, self.plan.zone):
                    break
            self._phantom = (x * width, y * height, 1.0 if x < 0.5 else -1.0)  # across
        x0, foot, way = self._phantom
        span = max(width - w, 1.0)
        travelled = (x0 - w / 2) + way * 0.7 * h * (t - self.plan.start_s)
        pos = travelled % (2 * span)
        left = pos if pos <= span else 2 * span - pos  # walks back and forth, never jumps
        jx, jy = self._rng.gauss(0.0, 0.7), self._rng.gauss(0.0, 0.7)
        conf = min(max(0.8 + self._rng.gauss(0.0, 0.02), 0.0), 1.0)
        return TrackedObject(
            track_id=PHANTOM_TRACK_ID,
            class_id=0,
            class_name="person",
            confidence=conf,
            xyxy=(left + jx, foot - h + jy, left + w + jx, foot + jy),
        )

    def _drifted(self, objects: tuple[TrackedObject, ...]) -> tuple[TrackedObject, ...]:
        new = [o for o in objects if o.track_id not in self._seen]
        if self.plan.kind == "drift-classes":
            dog = {"class_id": 16, "class_name": "dog"}
            relabel = {o.track_id for o in new if o.class_name in _PERSONS}
            return tuple(o.model_copy(update=dog) if o.track_id in relabel else o for o in objects)
        lost = {o.track_id for o in new if self._draw(o.track_id) < DRIFT_RECALL_LOST}
        return tuple(o for o in objects if o.track_id not in lost)

    def _draw(self, track_id: int) -> float:
        """A fixed draw in [0, 1) per track id (and seed): the same track is always lost."""
        return random.Random(self.plan.seed * 1_000_003 + track_id).random()

    def _teleported(self, tracks: TrackFrame, width: int) -> tuple[TrackedObject, ...]:
        phase = int((tracks.pts_s - self.plan.start_s) / TELEPORT_PERIOD_S)
        if phase % 2:
            return tracks.objects
        out = []
        for o in tracks.objects:
            cx = (o.xyxy[0] + o.xyxy[2]) / 2
            dx = width / 3 if cx + width / 3 < width else -width / 3
            out.append(_moved(o, dx))
        return tuple(out)

    def _flipped(self, obj: TrackedObject) -> TrackedObject:
        if obj.track_id not in self._seen:
            return obj
        if obj.class_name in _PERSONS:
            return obj.model_copy(update={"class_id": 2, "class_name": "car"})
        if obj.class_name in _VEHICLES:
            return obj.model_copy(update={"class_id": 0, "class_name": "person"})
        return obj

    def _replayed(self, tracks: TrackFrame) -> tuple[TrackedObject, ...]:
        if not self._past:
            return tracks.objects
        t = tracks.pts_s
        if self._replay_lag is None:
            self._replay_lag = min(self.plan.replay_delay_s, t - self._past[0][0])
        want = t - self._replay_lag
        best = self._past[0][1]
        for pts, objects in self._past:
            if pts > want + 1e-9:
                break
            best = objects
        return best
