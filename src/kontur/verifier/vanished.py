"""A track that vanished while its object, as the verifier sees it, kept moving there.

The evasion check (:mod:`kontur.verifier.evasion`) looks for unexplained foreground of a
person's *shape and size* anywhere in a zone. That misses a hidden person whose foreground
does not make such a window: a small or distant one, one between vehicles whose widened boxes
explain most of its pixels, one partly merged with its neighbours (the car clip's
motorcyclist). This check needs no shape: the worker itself said where the object was.

When a track of a watched class group that the verifier's own foreground carried (its last
box supported, part of it moving, wholly inside the frame) is missing from the worker's next
frame, the verifier keeps a *ghost* of its last box and follows it on the following judged
frames:

- a reported box (any class, not larger than :data:`~kontur.verifier.evasion.MAX_COVER` of the
  frame) covering :data:`COVERED` of the ghost explains it (the same object under a new id, an
  occluder's box): the ghost is dropped;
- otherwise the ghost's box is tried at its place and a few nearby (a quarter of its width
  sideways, an eighth of its height up or down: a walker moves about that in 0.1 s) and moved
  to the best-supported one; it *hits* when that one is supported (foreground fit at least
  ``min_support``) and part of it moved (:data:`OWN_MOTION`);
- a ghost that touches the border (the object left), misses for :data:`MAX_GAP_S`, or is
  older than :data:`MAX_AGE_S` is dropped.

A ghost that hit in at least :data:`PERSIST` of the frames since the track vanished, the
newest too, for ``vanish_seconds``, gives its zone a scene reason, like evasion: the worker
stopped reporting an object that is still there and still moving, so "nothing there" is
unverified. A real tracker drops a track when its object leaves (the border), stops (no
motion), is hidden (no foreground of its own, or an occluder's box) or gets a new id (a box
over it); what is left is a detector missing a moving object in plain view for half a
second, which is a true miss (ADR 0025). Cost: a handful of O(1) integral-image sums per
ghost and frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from kontur.geometry import Box, covered_share, foot_point
from kontur.verifier.checks import OWN_MOTION
from kontur.verifier.evasion import MAX_COVER
from kontur.verifier.foreground import BoxMeter
from kontur.verifier.history import ObservedBox
from kontur.verifier.watch import WatchedZone

__all__ = [
    "COVERED",
    "KEEP",
    "MAX_AGE_S",
    "MAX_GAP_S",
    "PERSIST",
    "SUPPORT_S",
    "VanishedTracks",
    "covered",
    "oldest_held",
]


#: A reported box covering this fraction of a ghost explains it.
COVERED = 0.3
#: A ghost that did not hit for this long is dropped (seconds of pts).
MAX_GAP_S = 0.25
#: Ghosts are followed at most this long after their track vanished (seconds of pts).
MAX_AGE_S = 2.0
#: Share of the judged frames since the track vanished on which the ghost must have hit.
PERSIST = 0.65
#: A hit needs at least this share of the support the track had over its last
#: :data:`SUPPORT_S` (as visible as while it was tracked: a detector loses a track honestly when
#: its object fades, half hidden behind a post or another walker; a suppression drops one in
#: plain view).
KEEP = 0.8
#: The track's support before it vanished is its mean over this long (seconds of pts).
SUPPORT_S = 0.5
#: Ghosts followed per camera at most (bounds the work whatever the worker drops).
MAX_GHOSTS = 32
#: A box this close to the frame's border (pixels) is partly outside: its object may leave.
BORDER_PX = 2.0
#: Offsets tried around a ghost: fractions of its width (sideways) and height (up, down).
_STEPS = ((0.0, 0.0), (-0.25, 0.0), (0.25, 0.0), (0.0, -0.125), (0.0, 0.125))


@dataclass(slots=True)
class _Ghost:
    track_id: int
    label: str
    xyxy: Box
    lost_at: float
    last_hit: float
    need: float
    """The fit a hit needs: :data:`KEEP` of the track's own support before it vanished."""
    frames: int = 0
    hits: int = 0


@dataclass(slots=True)
class VanishedTracks:
    """Per camera: ghosts of tracks that vanished over their own moving foreground."""

    zones: tuple[WatchedZone, ...]
    vanish_seconds: float
    min_support: float
    _ghosts: list[_Ghost] = field(default_factory=list)

    def reset(self) -> None:
        """Forget every ghost (the background was relearnt, or the picture was cut)."""
        self._ghosts.clear()

    def lost(self, track_id: int, last: ObservedBox, support: float) -> None:
        """Track ``track_id``, last seen as ``last``, is missing from the newest frame: keep
        a ghost of it if the verifier's own foreground carried it there, whole and moving
        (``support``: its mean support over its last judged observations)."""
        if last.clipped or last.support is None or last.support < self.min_support:
            return
        if last.motion is None or last.motion < OWN_MOTION or len(self._ghosts) >= MAX_GHOSTS:
            return
        need = max(self.min_support, KEEP * support)
        self._ghosts.append(_Ghost(track_id, last.label, last.xyxy, last.pts_s, last.pts_s, need))

    def observe(self, meter: BoxMeter, boxes: list[Box], pts_s: float) -> list[str]:
        """Follow every ghost on one judged frame (``boxes``: every box reported for it);
        the zones' reasons."""
        m = meter.masks
        kept = []
        for g in self._ghosts:
            fw, fh = m.frame_width, m.frame_height
            if pts_s - g.lost_at > MAX_AGE_S or covered(g.xyxy, boxes, fw, fh):
                continue
            if self._step(g, meter, pts_s) and not _at_border(g.xyxy, fw, fh):
                kept.append(g)
        self._ghosts = kept
        return self._reasons(pts_s, m.frame_width, m.frame_height)

    def _step(self, g: _Ghost, meter: BoxMeter, pts_s: float) -> bool:
        """Move ``g`` to its best-supported nearby place; False once it is to be dropped."""
        w, h = g.xyxy[2] - g.xyxy[0], g.xyxy[3] - g.xyxy[1]
        best: tuple[float, Box] | None = None
        for fx, fy in _STEPS:
            dx, dy = fx * w, fy * h
            box = (g.xyxy[0] + dx, g.xyxy[1] + dy, g.xyxy[2] + dx, g.xyxy[3] + dy)
            s = meter.support(box)
            if s is not None and s[1] >= OWN_MOTION and (best is None or s[0] > best[0]):
                best = (s[0], box)
        g.frames += 1
        if best is not None and best[0] >= g.need:
            g.hits += 1
            g.last_hit, g.xyxy = pts_s, best[1]
            return True
        return pts_s - g.last_hit <= MAX_GAP_S

    def _reasons(self, pts_s: float, fw: int, fh: int) -> list[str]:
        reasons = []
        for zone in self.zones:
            g = oldest_held(zone, self._ghosts, pts_s, self.vanish_seconds, fw, fh)
            if g is None:
                continue
            reasons.append(
                f"zone {zone.zone_id}: track {g.track_id} ({g.label}) vanished "
                f"{pts_s - g.lost_at:.1f} s ago while its object kept moving there (the "
                f"verifier's own foreground, {g.hits} of {g.frames} frames); expected the "
                "track: nothing-there is unverified (possible evasion)"
            )
        return reasons


class Held(Protocol):
    """What :func:`oldest_held` reads of a dropped track followed on the pictures (a ghost
    here, a patch in :mod:`kontur.verifier.stayed`)."""

    xyxy: Box
    lost_at: float
    last_hit: float
    frames: int
    hits: int


H = TypeVar("H", bound=Held)


def oldest_held(
    zone: WatchedZone, held: list[H], pts_s: float, seconds: float, fw: int, fh: int
) -> H | None:
    """The longest-dropped of ``held`` whose foot point is in ``zone`` and that was found on
    this frame (``pts_s``), for ``seconds`` since its track vanished, on at least
    :data:`PERSIST` of the frames since; None if none."""
    found = [
        g
        for g in held
        if g.last_hit == pts_s
        and pts_s - g.lost_at + 1e-6 >= seconds
        and g.hits >= PERSIST * g.frames
        and zone.contains(*foot_point(g.xyxy, fw, fh))
    ]
    return min(found, key=lambda k: k.lost_at) if found else None


def covered(ghost: Box, boxes: list[Box], fw: int, fh: int) -> bool:
    """A reported box (not an umbrella over the zone) covers :data:`COVERED` of ``ghost``."""
    return any(
        (b[2] - b[0]) * (b[3] - b[1]) <= MAX_COVER * fw * fh and covered_share(ghost, b) >= COVERED
        for b in boxes
    )


def _at_border(box: Box, fw: int, fh: int) -> bool:
    return (
        box[0] <= BORDER_PX
        or box[1] <= BORDER_PX
        or box[2] >= fw - BORDER_PX
        or box[3] >= fh - BORDER_PX
    )
