"""A box that jumps: it lands farther from where its track's own motion was taking it than a
person's motion can change in that time (ADR 0053).

A tracker that hands an id to another object (an identity switch in a crowd), or a worker
that moves a box from one passer-by to the next (ADR 0050's tenth review: a phantom that
rides each walker for a second and jumps back onto the one behind), makes one track of
several objects. Every step between the jumps may look like a walker's, and content
coherence averages one jump a second away; the track's dwell is nobody's. The verifier
reports the jump (``Finding.jumped``), and the gate does not ALLOW a dwell whose window holds
one, as it does not for a dwell that spanned several ids (ADR 0042).

Where the track was going is a constant velocity, measured over :data:`VELOCITY_S` of its
boxes. The new box is judged twice:

- *a step*: from the track's last box, with the velocity of the :data:`VELOCITY_S` before
  it, it may land at most :data:`JUMP_SIZES` (the detector's jitter, a box that grows to a
  whole body) beyond what :data:`ACCELERATION` allows in the time (half of it times the
  time squared);
- *going back*: from the track's box :data:`VELOCITY_S` before the last, with the velocity
  of the :data:`VELOCITY_S` before that one, it may go at most :data:`BACK_SIZES` back
  against the way the track was going, beyond what :data:`ACCELERATION` allows: a jump
  spread over a few steps, each too small to tell (a worker that glides its box back over
  two or three frames), goes back; a walker who stops does not, and one who turns round
  goes back only as fast as a person can.

After a gap in the track's reports longer than :data:`MAX_STEP_S`, acceleration would allow
anything, and a worker that leaves its box out for a moment could bring it back on the walker
behind. The box must then land within :data:`JUMP_SIZES` of the path between where the track
was and where its velocity would have taken it: a person hidden for a moment kept going, or
stopped (or stood, when the velocity is not known). Across a gap the velocity may be taken
over as long as the gap: a worker that reports the track once a second is judged on its
previous step.

Distances are in box sizes, as :func:`~kontur.verifier.coherence.moved` measures them:
widths across, heights up and down, of the larger of the two boxes compared (the distance
from a path, straight in those units). Not judged: a velocity over more than
:data:`MAX_STEP_S` (a worker that reports the track now and then), a step of a track too
young to have a velocity, going back across a gap or for a track slower than :data:`GOING`
(it stood: no way to go back against), and any span over which the camera did not stand
still (``steady``: the caller's background model judged both frames; a moving camera's
boxes move with it).

Pure: the track's history, its new box and whether the camera stood still between two
frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from kontur.verifier.history import ObservedBox, TrackHistory

__all__ = [
    "ACCELERATION",
    "BACK_SIZES",
    "GOING",
    "JUMP_SIZES",
    "MAX_STEP_S",
    "VELOCITY_S",
    "Steady",
    "jumped",
    "offsets",
]

Steady = Callable[[int, int], bool]
"""Whether the camera stood still from one frame (by index) to another."""

#: Box sizes a box may land, in one step, from where its track's motion took it, besides
#: what :data:`ACCELERATION` allows: the detector's jitter on one person is a tenth or two of
#: the box, a box that grows from a half-hidden person to the whole body moves its centre by
#: a quarter of its height; a box handed to the walker behind, one body and a gap away,
#: lands a width and more off.
JUMP_SIZES = 0.6
#: Box sizes a box may go back against the way its track was going (see the module), besides
#: what :data:`ACCELERATION` allows.
BACK_SIZES = 0.5
#: Box sizes per second squared by which a track's motion may change: a walker who stops or
#: turns round changes their speed by two or three widths a second within a second or so.
#: At 10 frames a second it allows 0.04 sizes in a step; over 0.4 s, 0.64.
ACCELERATION = 8.0
#: The track's velocity is taken over this long (seconds; from its newest box at least so
#: much older): a few frames, so that one box's jitter does not make it.
VELOCITY_S = 0.3
#: A track going this many box sizes a second or more has a way to go back against; one
#: slower stood (its jitter has no direction).
GOING = 0.5
#: Spans and velocities over longer than this (seconds) are not judged.
MAX_STEP_S = 0.5


def _steady(first: int, second: int) -> bool:
    """A camera that never moves."""
    return True


def jumped(history: TrackHistory, current: ObservedBox, steady: Steady = _steady) -> bool:
    """``current`` jumped (ADR 0053): a step, or a landing after a gap, :data:`JUMP_SIZES`
    or more off, or going back :data:`BACK_SIZES` or more (:func:`offsets`)."""
    step, back = offsets(history, current, steady)
    return (step is not None and step >= JUMP_SIZES) or (back is not None and back >= BACK_SIZES)


def offsets(
    history: TrackHistory, current: ObservedBox, steady: Steady = _steady
) -> tuple[float | None, float | None]:
    """The step (or the landing after a gap) and the going back of ``current`` after
    ``history`` (the module's judgements), in box sizes; each None when not judged."""
    prev = history.last
    if prev is None or not current.pts_s > prev.pts_s:
        return None, None
    anchors = [prev]  # the last box, the one VELOCITY_S before it, and the one before that
    for box in reversed(history):
        if box.pts_s <= anchors[-1].pts_s - VELOCITY_S + 1e-6:
            anchors.append(box)
            if len(anchors) == 3:
                break
    if current.pts_s - prev.pts_s > MAX_STEP_S:  # a gap: off the path, going back untold
        return _off_path(prev, anchors[1] if len(anchors) > 1 else prev, current, steady), None
    step = back = None
    if len(anchors) > 1:
        step = _off(anchors[0], anchors[1], current, steady, back=False)
    if len(anchors) > 2:
        back = _off(anchors[1], anchors[2], current, steady, back=True)
    return step, back


def _off(
    start: ObservedBox, before: ObservedBox, current: ObservedBox, steady: Steady, back: bool
) -> float | None:
    """From ``start`` to ``current``, with the velocity from ``before`` to ``start``: how far
    off that velocity (``back``: how far back against it) ``current`` landed, less what
    :data:`ACCELERATION` allows; None when not judged."""
    moves = _moves(start, before, current, steady)
    if moves is None or moves[1] is None:
        return None
    (dx, dy), (vx, vy), t = moves[0], moves[1], moves[2]
    allowed = ACCELERATION * t * t / 2
    if not back:
        return max(abs(dx - vx * t), abs(dy - vy * t)) - allowed
    speed = math.hypot(vx, vy)
    return None if speed < GOING else -(dx * vx + dy * vy) / speed - allowed


def _off_path(
    start: ObservedBox, before: ObservedBox, current: ObservedBox, steady: Steady
) -> float | None:
    """After a gap in the track's reports: how far ``current`` landed from the path between
    ``start`` and where the velocity from ``before`` to ``start`` took it (a person hidden
    for a moment kept going, or stopped: :data:`ACCELERATION` allows no more, as over a gap
    it would allow anything); standing still when that velocity is not known."""
    moves = _moves(start, before, current, steady, gap=True)
    if moves is None:
        return None
    (dx, dy), velocity, t = moves
    px, py = (0.0, 0.0) if velocity is None else (velocity[0] * t, velocity[1] * t)
    length = px * px + py * py
    along = 0.0 if length == 0 else min(1.0, max(0.0, (dx * px + dy * py) / length))
    return math.hypot(dx - along * px, dy - along * py)


def _moves(
    start: ObservedBox, before: ObservedBox, current: ObservedBox, steady: Steady, gap: bool = False
) -> tuple[tuple[float, float], tuple[float, float] | None, float] | None:
    """From ``start`` to ``current``: the move and the track's velocity from ``before`` to
    ``start`` (box sizes, and sizes a second: widths across, heights up and down, of the
    larger of ``start`` and ``current``; the velocity None when not known: no older box, or
    over more than :data:`MAX_STEP_S`, or than the gap when a ``gap`` is judged), and the
    time. None when not judged: the camera moved, or the move takes more than
    :data:`MAX_STEP_S` (unless a ``gap`` is judged)."""
    t, span = current.pts_s - start.pts_s, start.pts_s - before.pts_s
    if t <= 0 or (t > MAX_STEP_S and not gap):
        return None
    if not steady(start.frame_index, current.frame_index):
        return None
    (sx1, sy1, sx2, sy2), (bx1, by1, bx2, by2) = start.xyxy, before.xyxy
    cx1, cy1, cx2, cy2 = current.xyxy
    width, height = max(sx2 - sx1, cx2 - cx1), max(sy2 - sy1, cy2 - cy1)
    move = (cx1 + cx2 - sx1 - sx2) / 2 / width, (cy1 + cy2 - sy1 - sy2) / 2 / height
    if not 0 < span <= (max(MAX_STEP_S, t) if gap else MAX_STEP_S):
        return move, None, t  # (across a gap, a velocity over up to as long: a sparse reporter)
    velocity = (
        (sx1 + sx2 - bx1 - bx2) / 2 / span / width,
        (sy1 + sy2 - by1 - by2) / 2 / span / height,
    )
    return move, velocity, t
