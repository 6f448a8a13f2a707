"""Trigger rules: turn tracks into :class:`~kontur.gate.request.ActionRequest` values.

The only trigger today is the dwell (config ``policies[].when.type: dwell``). A
:class:`DwellRule` follows every (camera, track) pair and measures how long the track's foot
point has been continuously inside the zone's polygon:

1. The foot point is the bottom centre of the box, ``((x1 + x2) / 2, y2)``, divided by the
   frame's width and height and clamped to ``[0, 1]`` (zones are normalised). TrackFrame carries
   no frame size, so the caller passes it (the :class:`~kontur.gate.Gate` gets it from
   ``set_frame_size`` or the camera's profile).
2. Time is the stream's presentation time as *ingest* stamped the frame
   (``Evidence.frame.pts_s``), so a replayed clip gives the same answer and the gate needs no
   clock for it. The frame's index, time and GOP come from ingest's stamp, which the verifier
   forwards; the worker's own ``TrackFrame`` stamps are never used (it may lie, issue 8).
3. Inside the polygon and of one of the rule's classes: the dwell goes on. Seen outside it (or
   with another class): the dwell resets. Not seen for more than ``max_gap_s`` of stream time:
   it resets too (a brief tracker dropout does not).
   The dwell follows the *object*, not the worker's id: a new id inside the zone near where
   an object with an unfired dwell was last seen, on a frame that does not report that
   object, takes its dwell over (ADR 0042). A tracker that loses an id behind a pillar, or a
   worker that changes every id each frame to keep a dwell from ever reaching
   ``min_seconds``, does not reset it. The request then names the earlier ids, and
   :class:`~kontur.gate.policy.VerifierAgrees` never ALLOWs it: a renamed box was never judged
   whole by the verifier's track checks, which read one id's history. The current id's own
   dwell, from when it took over, goes on and fires as it did before ADR 0042, judged as any.
4. When a dwell first reaches ``min_seconds``, the rule fires exactly one request, carrying
   the frames, GOPs and verifier findings of the window from entering to firing. It fires
   again for that track only after a reset and a new full dwell (or, for a dwell taken over,
   once the current id's own dwell reaches ``min_seconds``: item 3).
5. Time going backwards or a frame index that does not advance (a restarted or replayed
   stream) resets every dwell on that camera.

Memory is bounded: a window keeps frames and findings only until it fires, windows of tracks
unseen for ``max_gap_s`` are dropped, and at most :data:`MAX_OPEN_WINDOWS` are kept per camera.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from kontur.config import Config
from kontur.gate.request import ActionRequest
from kontur.geometry import foot_point, point_in_polygon
from kontur.wire import Evidence, Finding, TrackedObject

__all__ = ["MAX_OPEN_WINDOWS", "DwellRule", "foot_point", "point_in_polygon", "rules_from_config"]

#: Per rule and camera; beyond it the windows seen least recently are dropped.
MAX_OPEN_WINDOWS = 4096

#: A new id takes over the unfired dwell of an object not reported on its frame when its foot
#: point is within this many of that object's heights of where it was last seen...
TAKE_OVER_HEIGHTS = 0.5
#: ... plus this many per second the object went unseen (a walker covers about one height
#: a second).
TAKE_OVER_HEIGHTS_PER_S = 1.0
#: Unreported windows (the longest dwells first) and new ids (in the worker's order)
#: considered per frame at most: bounds the work whatever a worker reports (64 × 1024 foot
#: point distances). A worker that floods a frame beyond, to hide a renaming, is flagged by
#: the verifier, which gives every new track a reason past 64 × 64 pairs (ADR 0042).
MAX_TAKE_OVER = 64
MAX_FRESH = 1024

#: Stream times are floats (frame / fps): 4.6 - 2.6 < 2.0 in binary, so compare with slack.
_TIME_SLACK_S = 1e-6


@dataclass
class _Window:
    """One track's dwell in the zone."""

    entered_pts: float
    last_pts: float
    foot: tuple[float, float] = (0.0, 0.0)
    """The foot point (normalised) and box height (a fraction of the frame's height) where
    the object was last seen: a new id found near it takes the window over."""
    height: float = 0.0
    renamed_pts: float | None = None
    """When the current id took the dwell over (None: it entered with it)..."""
    renamed_at: int = 0
    """... and how many of ``frames`` came before."""
    earlier: dict[int, None] = field(default_factory=dict)
    """Ids the worker gave the object before its current one, in order, each once: all of
    them (no more than the window's frames), since the verifier's reasons on any of them
    count against the request."""
    fired: bool = False
    frames: list[int] = field(default_factory=list)
    gops: list[int] = field(default_factory=list)
    """The GOP of each of ``frames``."""
    findings: list[Finding] = field(default_factory=list)


@dataclass
class _Camera:
    last_pts: float
    last_frame: int
    windows: dict[int, _Window] = field(default_factory=dict)


class DwellRule:
    """Fires one request when a track of ``classes`` has dwelt ``min_seconds`` in ``polygon``.

    ``camera`` is the zone's camera (``"*"`` for every camera). See the module docstring for
    the exact semantics.
    """

    def __init__(
        self,
        rule: str,
        polygon: Sequence[tuple[float, float]],
        classes: Sequence[str],
        min_seconds: float,
        action: str,
        *,
        camera: str = "*",
        max_gap_s: float = 1.0,
    ) -> None:
        """Refuses a polygon under 3 points, no classes, or a non-positive duration."""
        if len(polygon) < 3:
            raise ValueError(
                f"rule {rule!r}: expected a polygon of at least 3 points, got {len(polygon)}"
            )
        if not classes:
            raise ValueError(f"rule {rule!r}: expected at least one class, got none")
        if min_seconds <= 0 or max_gap_s <= 0:
            raise ValueError(
                f"rule {rule!r}: expected positive min_seconds and max_gap_s, "
                f"got {min_seconds} and {max_gap_s}"
            )
        self.rule = rule
        self.polygon: tuple[tuple[float, float], ...] = tuple(
            (float(x), float(y)) for x, y in polygon
        )
        self.classes = frozenset(classes)
        self.min_seconds = float(min_seconds)
        self.action = action
        self.camera = camera
        self.max_gap_s = float(max_gap_s)
        self._cams: dict[str, _Camera] = {}

    def applies_to(self, camera_id: str) -> bool:
        """True when this rule watches ``camera_id``."""
        return self.camera in ("*", camera_id)

    @property
    def open_windows(self) -> int:
        """How many dwell windows the rule holds, over all cameras."""
        return sum(len(c.windows) for c in self._cams.values())

    def forget(self, camera_id: str) -> None:
        """Drop every dwell on ``camera_id`` (its source ended)."""
        self._cams.pop(camera_id, None)

    def _inside(self, obj: TrackedObject, size: tuple[int, int]) -> bool:
        if obj.class_name not in self.classes:
            return False
        return point_in_polygon(*foot_point(obj.xyxy, *size), self.polygon)

    def _camera(self, ev: Evidence) -> _Camera:
        t = ev.frame
        cam = self._cams.get(t.camera_id)
        if cam is None or t.pts_s < cam.last_pts or t.frame_index <= cam.last_frame:
            cam = _Camera(last_pts=t.pts_s, last_frame=t.frame_index)
            self._cams[t.camera_id] = cam
        return cam

    def observe(self, evidence: Evidence, frame_size: tuple[int, int]) -> list[ActionRequest]:
        """Feed one frame's evidence (frame size ``(width, height)``); the requests it fires."""
        t = evidence.frame  # ingest's stamp: camera, frame, GOP and time
        if not self.applies_to(t.camera_id):
            return []
        cam = self._camera(evidence)
        fired: list[ActionRequest] = []
        objects = evidence.tracks.objects
        inside = [self._inside(o, frame_size) for o in objects]  # once per object
        fresh = [
            o
            for o, is_in in zip(objects, inside, strict=True)
            if is_in and not self._open(cam.windows.get(o.track_id), t.pts_s)
        ]
        if fresh:
            self._take_over(cam, fresh, {o.track_id for o in objects}, t.pts_s, frame_size)
        for obj, is_in in zip(objects, inside, strict=True):
            if not is_in:
                cam.windows.pop(obj.track_id, None)
                continue
            w = cam.windows.get(obj.track_id)
            if w is None or not self._open(w, t.pts_s):
                w = _Window(entered_pts=t.pts_s, last_pts=t.pts_s)
                cam.windows[obj.track_id] = w
            w.last_pts = t.pts_s
            w.foot = foot_point(obj.xyxy, *frame_size)
            w.height = _height(obj.xyxy, frame_size[1])
            if w.fired:
                continue
            w.frames.append(t.frame_index)
            w.gops.append(t.gop_index)
            w.findings.append(evidence.finding)
            if t.pts_s - w.entered_pts >= self.min_seconds - _TIME_SLACK_S:
                fired.append(self._fire(evidence, obj, w))
        self._prune(cam, t.pts_s)
        cam.last_pts, cam.last_frame = t.pts_s, t.frame_index
        return fired

    def _open(self, w: _Window | None, pts: float) -> bool:
        """``w`` is a dwell still going on at ``pts`` (seen within ``max_gap_s``)."""
        return w is not None and pts - w.last_pts <= self.max_gap_s + _TIME_SLACK_S

    def _take_over(
        self,
        cam: _Camera,
        fresh: list[TrackedObject],
        reported: set[int],
        pts: float,
        size: tuple[int, int],
    ) -> None:
        """Hand the open, unfired windows of objects not reported on this frame to new ids
        found near where those objects were last seen (nearest first; ADR 0042): the dwell
        follows the object, so a worker that changes its ids cannot keep it from firing.
        An object may move :data:`TAKE_OVER_HEIGHTS` of its height, plus
        :data:`TAKE_OVER_HEIGHTS_PER_S` per second it was unseen."""
        orphans = sorted(
            (
                (tid, w)
                for tid, w in cam.windows.items()
                if tid not in reported and not w.fired and self._open(w, pts)
            ),
            key=lambda o: o[1].entered_pts,
        )[:MAX_TAKE_OVER]  # the longest dwells first: the ones a renaming would cost most
        pairs = []
        for obj in fresh[:MAX_FRESH]:
            fx, fy = foot_point(obj.xyxy, *size)
            for tid, w in orphans:
                unseen = pts - w.last_pts
                reach = w.height * (TAKE_OVER_HEIGHTS + TAKE_OVER_HEIGHTS_PER_S * unseen)
                d = math.hypot((fx - w.foot[0]) * size[0] / size[1], fy - w.foot[1])
                if d <= reach:
                    pairs.append((d, obj.track_id, tid))
        taken: set[int] = set()
        for _, new, old in sorted(pairs):
            if new in taken or old not in cam.windows:
                continue
            w = cam.windows.pop(old)
            w.earlier[old] = None
            w.renamed_pts, w.renamed_at = pts, len(w.frames)
            cam.windows[new] = w
            taken.add(new)

    def _fire(self, ev: Evidence, obj: TrackedObject, w: _Window) -> ActionRequest:
        req = ActionRequest(
            rule=self.rule,
            action=self.action,
            camera_id=ev.frame.camera_id,
            track_id=obj.track_id,
            box=obj.xyxy,
            frame_index=ev.frame.frame_index,
            frames=tuple(w.frames),
            gops=tuple(sorted(set(w.gops))),
            findings=tuple(w.findings),
            earlier_track_ids=tuple(t for t in w.earlier if t != obj.track_id),
        )
        if w.renamed_pts is None:
            w.fired = True
            w.frames, w.gops, w.findings = [], [], []
        else:  # the current id's own dwell goes on, as if it had entered when it took over
            k = w.renamed_at
            w.entered_pts, w.renamed_pts, w.earlier = w.renamed_pts, None, {}
            w.frames, w.gops, w.findings = w.frames[k:], w.gops[k:], w.findings[k:]
        return req

    def _prune(self, cam: _Camera, pts: float) -> None:
        gap = self.max_gap_s + _TIME_SLACK_S
        stale = [tid for tid, w in cam.windows.items() if pts - w.last_pts > gap]
        for tid in stale:
            del cam.windows[tid]
        if len(cam.windows) > MAX_OPEN_WINDOWS:
            keep = sorted(cam.windows.items(), key=lambda kv: kv[1].last_pts)[-MAX_OPEN_WINDOWS:]
            cam.windows = dict(keep)


def _height(xyxy: tuple[float, float, float, float], frame_height: int) -> float:
    """The box's height as a fraction of the frame's, within [0, 1] (the wire refuses NaN
    and infinities; a huge finite box gives 1)."""
    return min(max((xyxy[3] - xyxy[1]) / frame_height, 0.0), 1.0)


def rules_from_config(config: Config) -> tuple[DwellRule, ...]:
    """One :class:`DwellRule` per configured policy, on its zone's polygon and camera."""
    zones = {z.id: z for z in config.zones}
    rules = []
    for p in config.policies:
        zone = zones[p.when.zone]  # Config already refused a policy naming an unknown zone.
        rules.append(
            DwellRule(
                p.rule,
                zone.polygon,
                p.when.classes,
                p.when.min_seconds,
                p.action,
                camera=zone.camera,
            )
        )
    return tuple(rules)
