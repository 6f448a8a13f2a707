"""The verifier's checks: small, independent and deliberately simpler than the detector.

DESIGN.md §1 block 4 and the paper (section on the model, "CPU-верификатор выполняет
независимые и более простые проверки") name them: trajectory continuity, plausible speed and
size, class stability, sudden confidence jumps and scene liveness. This is the "simple
checker watching a complex doer" of the Simplex architecture (DESIGN.md §4): each check
needs only geometry, time and arithmetic, so it shares no code, weights or failure modes with
the detector it watches (ADR 0006). Limits scale with time and box size, not frames and
pixels, and class changes are judged by the groups a small detector confuses and the classes
the policies watch (ADR 0025). Two checks read the verifier's own measure of the pixels under
each box (``ObservedBox.support`` and ``.motion``, :mod:`kontur.verifier.foreground`):
:class:`ForegroundSupport` (a moving box needs foreground of its own) and :class:`FrozenBox`.

Track checks follow the :class:`TrackCheck` protocol: ``check(track_id, history, current)``
returns None when ``current`` is plausible after ``history`` and otherwise one reason that
says what was expected and what was found. They hold only their thresholds and never change
the history they read. :class:`WellFormedBox` runs first; the other checks assume a box with
finite coordinates and positive width and height.

:class:`SceneLiveness` is the one frame-level check. It is stateful (it remembers the
previous thumbnail and a bounded set of thumbnail digests) and is fed one thumbnail per frame.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections import Counter, deque
from collections.abc import Callable
from typing import ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from kontur.config import VerifierConfig
from kontur.geometry import box_iou
from kontur.verifier.history import ObservedBox, TrackHistory
from kontur.verifier.thumbnail import validate_thumbnail
from kontur.verifier.watch import ClassGroups

__all__ = [
    "ClassStability",
    "ConfidenceJump",
    "ContentCoherence",
    "ForegroundSupport",
    "FrozenBox",
    "InsidePicture",
    "PersonStature",
    "PlausibleSizeChange",
    "PlausibleSpeed",
    "SceneLiveness",
    "TrackCheck",
    "TrajectoryContinuity",
    "WellFormedBox",
    "default_track_checks",
    "settled_run",
]


class TrackCheck(Protocol):
    """One plausibility check on a track's newest box, given what came before it."""

    name: ClassVar[str]
    """Short name used in summaries ("speed", "class", ...)."""

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """None when ``current`` is plausible, else a reason naming expected and found."""
        ...


class WellFormedBox:
    """A box must have finite coordinates and positive width and height."""

    name: ClassVar[str] = "box"

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Refuse NaN/inf coordinates and empty or inverted boxes."""
        if current.is_well_formed():
            return None
        shown = ", ".join(f"{v:.1f}" for v in current.xyxy)
        return f"track {track_id}: malformed box ({shown}), expected finite x1 < x2 and y1 < y2"


#: The interval jumps and size changes are measured against: one frame at 10 fps. A faster
#: camera gets the same allowance per observation (a detector's noise does not shrink with the
#: frame interval); a longer gap gets more, in proportion to the time elapsed.
JUMP_REFERENCE_S = 0.1
#: Speed is measured over at least this much pts (when the history reaches back that far), so
#: a pixel of jitter at 30 fps is not read as a sprint.
SPEED_BASELINE_S = 0.3
#: Box sizes of detector noise allowed in any speed measurement.
SPEED_JITTER = 0.25


def _periods(prev: ObservedBox, current: ObservedBox) -> float:
    """Reference intervals elapsed between two observations (at least one)."""
    return max((current.pts_s - prev.pts_s) / JUMP_REFERENCE_S, 1.0)


class TrajectoryContinuity:
    """The centre may jump at most ``max_jump_ratio`` box diagonals per 0.1 s of pts elapsed
    (and that much in any one observation, whatever the frame rate)."""

    name: ClassVar[str] = "continuity"

    def __init__(self, max_jump_ratio: float) -> None:
        self.max_jump_ratio = max_jump_ratio

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Compare the centre jump with the larger diagonal × reference intervals elapsed."""
        prev = history.last
        if prev is None or not current.pts_s > prev.pts_s:
            return None  # time that does not advance is the speed check's to report
        periods = _periods(prev, current)
        jump = current.distance_to(prev)
        allowed = self.max_jump_ratio * max(prev.diagonal, current.diagonal) * periods
        if jump <= allowed:
            return None
        elapsed = current.pts_s - prev.pts_s
        return (
            f"track {track_id}: trajectory discontinuity, centre jumped {jump:.1f} px in "
            f"{elapsed:.2f} s, expected at most {allowed:.1f} px "
            f"({self.max_jump_ratio:g} box diagonals per {JUMP_REFERENCE_S:g} s)"
        )


class PlausibleSpeed:
    """The centre may move at most ``max_heights_per_s`` box sizes per second of pts.

    A box's size is its larger side (a person's height, a car's length), averaged
    geometrically over the two ends of the measurement: an object far from the camera has a
    small box and moves few pixels, so the limit holds near and far alike (perspective).
    Speed is measured against the track's observation at least :data:`SPEED_BASELINE_S` earlier
    (or its oldest), with :data:`SPEED_JITTER` sizes allowed for the detector's noise.
    """

    name: ClassVar[str] = "speed"

    def __init__(self, max_heights_per_s: float) -> None:
        self.max_heights_per_s = max_heights_per_s

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Speed = centre distance / pts elapsed / box size, over the baseline."""
        prev = history.last
        if prev is None:
            return None
        if not current.pts_s > prev.pts_s:
            return (
                f"track {track_id}: time did not advance between frames {prev.frame_index} "
                f"and {current.frame_index} (pts {prev.pts_s:.3f} s -> {current.pts_s:.3f} s)"
            )
        base = prev
        for box in reversed(history):  # newest first: the newest one old enough wins
            base = box  # else the oldest
            if box.pts_s <= current.pts_s - SPEED_BASELINE_S + 1e-6:  # pts are floats
                break
        elapsed = current.pts_s - base.pts_s
        size = math.sqrt(base.size * current.size)
        distance = current.distance_to(base)
        if distance <= (self.max_heights_per_s * elapsed + SPEED_JITTER) * size:
            return None
        speed = distance / elapsed / size
        return (
            f"track {track_id}: speed {speed:.1f} box sizes/s over {elapsed:.2f} s exceeds "
            f"{self.max_heights_per_s:g}"
        )


class PlausibleSizeChange:
    """The box area may grow or shrink at most ``max_area_ratio`` times per 0.1 s of pts.

    Over a gap of *g* reference intervals the limit is ``1 + (max_area_ratio − 1) · g``:
    linear, not compound. Compounding 3× per interval would allow 59049× over ten, which is no
    check at all across a short occlusion. A box that touches the frame's border is exempt: the
    visible part of an object entering or leaving the picture changes size at any rate.
    """

    name: ClassVar[str] = "size"

    def __init__(self, max_area_ratio: float) -> None:
        self.max_area_ratio = max_area_ratio

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Compare max(new/old, old/new) area with the limit for the time elapsed."""
        prev = history.last
        if prev is None or prev.clipped or current.clipped or not current.pts_s > prev.pts_s:
            return None
        area, before = current.area, prev.area
        ratio = max(area / before, before / area)
        allowed = 1.0 + (self.max_area_ratio - 1.0) * _periods(prev, current)
        if ratio <= allowed:
            return None
        way = "grew" if area > before else "shrank"
        elapsed = current.pts_s - prev.pts_s
        return (
            f"track {track_id}: box area {way} {ratio:.1f}x in {elapsed:.2f} s, "
            f"expected at most {allowed:.1f}x"
        )


#: A track's class is judged once its history spans this long: a small detector often
#: takes a few frames to settle on a class for an object it has just found.
CLASS_SETTLE_S = 1.0
#: A run of one class group judged as settled: this long (seconds of pts), this many
#: observations, and this mean confidence (a small detector's guesses on an object it barely
#: sees stay well below it).
SETTLED_RUN_S = 0.25
SETTLED_OBSERVATIONS = 5
SETTLED_CONFIDENCE = 0.6
#: A box of the new class must overlap the settled run's last box this much (IoU) to be the
#: same object changing class, not a tracker handing the id to another object.
SAME_PLACE_IOU = 0.3


class ClassStability:
    """The class must stay in the group of the track's majority, where a policy cares.

    Groups (:class:`~kontur.verifier.watch.ClassGroups`) hold the classes a small detector
    confuses: person, bicycle, motorcycle; car, truck, bus. A change within a group is no
    change. A change between groups matters only when one of them holds a class a policy
    watches (``watched``; None: every class): a change *into* a watched group disagrees at
    once (a car that becomes a person could start a dwell), a change *out of* one disagrees
    once it has lasted ``flip_seconds`` (a person seen for one frame as a fire hydrant only
    resets a dwell, which is safe). A track younger than :data:`CLASS_SETTLE_S` is not judged
    against its majority.

    A young track, or one whose new class has already outlasted the old in its history, is
    judged against the run just before its change instead: a group held for
    :data:`SETTLED_RUN_S` at a confidence of :data:`SETTLED_CONFIDENCE` or more is what the
    detector was sure of, and a detector that is sure of a person does not see a car in the
    same place the next moment (the picture was not cut: a cut starts the track afresh).
    """

    name: ClassVar[str] = "class"

    def __init__(
        self,
        groups: ClassGroups | None = None,
        watched: frozenset[str] | None = None,
        flip_seconds: float = 0.0,
    ) -> None:
        self.groups = groups or ClassGroups(())
        self.watched = watched
        self.flip_seconds = flip_seconds

    def _majority(self, history: TrackHistory) -> tuple[str, int] | None:
        """(group key, count) of the most frequent group held; the first seen wins a tie."""
        if not len(history):
            return None
        counts: Counter[str] = Counter()
        for name, n in history.class_names().items():
            counts[self.groups.key(name)] += n
        best = max(counts.values())
        tied = {k for k, n in counts.items() if n == best}
        if len(tied) == 1:
            return tied.pop(), best
        first = next(k for b in history if (k := self.groups.key(b.label)) in tied)
        return first, best

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Compare ``current``'s class group with the majority group of ``history``, or with
        the settled run just before the change."""
        labels = history.labels()
        if len(labels) == 1 and current.label in labels:
            return None  # the usual case: every box held is of the current class
        groups = self.groups
        now = groups.key(current.label)
        if all(groups.key(name) == now for name in labels):
            return None  # every class held is in the current one's group
        majority = self._majority(history)
        first = next(iter(history))
        if (
            majority is not None
            and majority[0] != now
            and current.pts_s - first.pts_s >= CLASS_SETTLE_S
        ):
            major, count = majority
            was = next(b.label for b in history if groups.key(b.label) == major)
            what = f"majority class {was} ({count} of {len(history)} observations"
            return self._judge(track_id, history, current, was, what)
        settled = self._settled_before(history, current, now)
        if settled is None:
            return None  # a young track's class is still the detector's guess
        was, run = settled
        what = f"settled class {was} ({len(run)} observations over {_span(run):.1f} s"
        return self._judge(track_id, history, current, was, what)

    def _settled_before(
        self, history: TrackHistory, current: ObservedBox, now: str
    ) -> tuple[str, list[ObservedBox]] | None:
        """The class and run of the group held just before the current group's run, when
        the detector had settled on it and a box of the new class came in the same place;
        None otherwise."""
        boxes = list(history)
        end = len(boxes)
        while end and self.groups.key(boxes[end - 1].label) == now:
            end -= 1
        run = settled_run(boxes[:end], self.groups)
        if run is None:
            return None
        changed = [*boxes[end:], current]
        if max(box_iou(run[-1].xyxy, b.xyxy) for b in changed) < SAME_PLACE_IOU:
            return None  # the tracker gave the id to another object: not a change of class
        return run[-1].label, run

    def _judge(
        self,
        track_id: int,
        history: TrackHistory,
        current: ObservedBox,
        was: str,
        what: str,
    ) -> str | None:
        """The reason when a change from ``was`` to ``current``'s class matters to a policy
        (see the class's docstring), else None."""
        groups = self.groups
        into = groups.watched(current.label, self.watched)
        if not into and not groups.watched(was, self.watched):
            return None  # neither class is one a policy watches: no decision changes
        lasted = 0.0
        if not into:
            major = groups.key(was)
            start = current.pts_s
            for box in reversed(list(history)):
                if groups.key(box.label) == major:
                    break
                start = box.pts_s
            lasted = current.pts_s - start
            if lasted + 1e-9 < self.flip_seconds:
                return None
        how = "into a watched class" if into else f"out of a watched class for {lasted:.1f} s"
        return f"track {track_id}: class {current.label} differs from the track's {what}; {how})"


def _span(run: list[ObservedBox]) -> float:
    return run[-1].pts_s - run[0].pts_s


def settled_run(
    boxes: list[ObservedBox],
    groups: ClassGroups,
    keep: Callable[[str], bool] | None = None,
) -> list[ObservedBox] | None:
    """What the detector was sure of: a run of ``boxes`` (oldest first) in one class group,
    up to the end of its newest window of :data:`SETTLED_OBSERVATIONS` boxes at a mean
    confidence of :data:`SETTLED_CONFIDENCE` or more, when that part spans
    :data:`SETTLED_RUN_S`. ``keep`` None: the newest run only; else the newest settled run of a
    class ``keep`` accepts, older ones too (a worker that fades its confidence, or relabels for
    a frame, before it drops an object does not unsettle what it was sure of). None if none."""
    end = len(boxes)
    while end:
        key = groups.key(boxes[end - 1].label)
        start = end - 1
        while start and groups.key(boxes[start - 1].label) == key:
            start -= 1
        if keep is None or keep(boxes[end - 1].label):
            run = _sure(boxes[start:end])
            if run is not None or keep is None:
                return run
        end = start
    return None


def _sure(run: list[ObservedBox]) -> list[ObservedBox] | None:
    """``run`` up to the end of its newest sure window (see :func:`settled_run`), or None."""
    n = SETTLED_OBSERVATIONS
    for end in range(len(run), n - 1, -1):
        if sum(b.confidence for b in run[end - n : end]) / n >= SETTLED_CONFIDENCE:
            head = run[:end]
            return head if _span(head) + 1e-9 >= SETTLED_RUN_S else None
    return None


class ConfidenceJump:
    """Confidence may change by at most ``max_jump`` between consecutive observations."""

    name: ClassVar[str] = "confidence"

    def __init__(self, max_jump: float) -> None:
        self.max_jump = max_jump

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Compare |Δconfidence| with the previous observation against ``max_jump``."""
        prev = history.last
        if prev is None:
            return None
        delta = abs(current.confidence - prev.confidence)
        if delta <= self.max_jump:
            return None
        return (
            f"track {track_id}: confidence jumped {prev.confidence:.2f} -> "
            f"{current.confidence:.2f} (|Δ| {delta:.2f} exceeds {self.max_jump:g})"
        )


#: A box that moved this many box sizes since it last had foreground under it (or since it
#: was first judged), with none under it now, is a phantom.
PHANTOM_MOVE = 0.4
#: A track judged fewer than 3 times in ``phantom_seconds`` (a worker reporting it on one
#: frame in five, say) is judged on its last 3 judged boxes, when they span at most this long
#: (seconds): a dwell survives gaps of up to a second (``max_gap_s``), so a phantom that keeps
#: one going is reported more often than that.
SPARSE_S = 2.5
#: A box may be supported in at most this share of the window's judged frames and still be
#: called unsupported (one frame of a passing car does not vouch for it).
SUPPORTED_SHARE = 0.25
#: A supported box counts towards a moving track's window only when at least this fraction
#: of its pixels changed in the last ~0.1 s.
OWN_MOTION = 0.03
#: Left behind: the box moved at least this many sizes in the second before the window, with
#: at least :data:`STRONG_SUPPORT` under it, then stood still (under :data:`STILL`) over none.
LEFT_MOVE = 0.3
STRONG_SUPPORT = 0.3
STILL = 0.15
#: The verifier vouches for a track (``Finding.vouched``, ADR 0043) when its box held moving
#: foreground of its own in at least this share of a judged window of 3 or more frames, the
#: current one included (a phantom riding a passer-by for a frame or two is not carried)...
VOUCH_SHARE = 0.5
#: ...and moved at least this many box sizes over that window: a box standing where people
#: walk through it holds moving foreground without following any of it.
VOUCH_MOVE = 0.1
#: Where a carried box's object stands (``ObservedBox.foot``: its lowest rows around its foot
#: point) must hold at least this foreground density: the gate places an object by its box's
#: foot point, and a box stretched below its object's feet, or widened past its side, into a
#: zone the object never entered, has bare ground there.
FOOT_MIN = 0.1


class ForegroundSupport:
    """A moving track needs foreground under it; a box must follow the object it had.

    Reads ``ObservedBox.support`` (the verifier's own background model: how much more
    foreground the box holds than its surroundings, :mod:`kontur.verifier.foreground`). Over the
    last ``phantom_seconds`` of judged frames (the track must have been judged that long; a
    track the worker reports sparsely, on its last 3 judged boxes within :data:`SPARSE_S`):

    - *phantom*: supported (``support >= min_support``) in at most :data:`SUPPORTED_SHARE` of
      them, after moving :data:`PHANTOM_MOVE` box sizes since it last was (or since it was
      first judged);
    - *left behind*: supported in none of them while standing still, after moving with strong
      support in the second before (the worker kept a box where its object was).

    A box that never moved and never had support (a car parked since before the background was
    learnt) is neither: background subtraction cannot tell it from a static phantom (ADR 0025).
    Only tracks of a watched class group are judged: no policy acts on the others.
    """

    name: ClassVar[str] = "foreground"

    def __init__(
        self,
        phantom_seconds: float,
        min_support: float,
        groups: ClassGroups | None = None,
        watched: frozenset[str] | None = None,
    ) -> None:
        self.phantom_seconds = phantom_seconds
        self.min_support = min_support
        self.groups = groups or ClassGroups(())
        self.watched = watched

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Judge the window of the last ``phantom_seconds`` ending at ``current``."""
        if current.support is None:
            return None
        if not self.groups.watched(current.label, self.watched):
            return None  # no policy acts on it (a bag carried inside a person's box)
        if self._supported(history, current):
            return None  # the usual case, counted without building the window
        window, start, sparse = self._window(history, current)
        supported = sum(1 for b in window if self._moving_support(b))
        if len(window) < 3 or supported > SUPPORTED_SHARE * len(window):
            return None  # supported (the usual case), or not judged for a whole window yet
        older = [b for b in history if b.pts_s < start and b.support is not None]
        if not older and not sparse:
            return None  # not judged for a whole window yet
        best = max(b.support or 0.0 for b in window)
        held = [b for b in older if self._moving_support(b)]
        moved = _sizes(held[-1] if held else (older or window)[0], current)
        if moved >= PHANTOM_MOVE:
            return (
                f"track {track_id}: moved {moved:.1f} box sizes with foreground under it in "
                f"{supported} of the last {len(window)} frames (best {best:.2f}), expected a "
                "moving object's own foreground (a phantom?)"
            )
        if supported == 0 and self._left(older, window, start):
            return (
                f"track {track_id}: box stopped over no foreground for {self.phantom_seconds:g} "
                "s right after moving with its object: expected the box to follow it (a "
                "frozen box?)"
            )
        return None

    def _supported(self, history: TrackHistory, current: ObservedBox) -> bool:
        """:meth:`check`'s first test, on a window of 3 judged boxes or more (not a sparse
        one): more than :data:`SUPPORTED_SHARE` of it has moving support of its own. The same
        count as :meth:`_window` and :meth:`_moving_support`, in one pass over the history
        (called for every watched box on every frame)."""
        start, floor = current.pts_s - self.phantom_seconds, self.min_support
        judged = supported = 0
        for b in itertools.chain((current,), reversed(history)):
            if b.pts_s < start:
                break
            if b.support is not None:
                judged += 1
                supported += b.support >= floor and (b.motion is None or b.motion >= OWN_MOTION)
        return judged >= 3 and supported > SUPPORTED_SHARE * judged

    def carries(self, history: TrackHistory, current: ObservedBox) -> bool:
        """The verifier's own pixels carry the track at ``current`` (ADR 0043): ``current``
        :meth:`holds` its foreground, and the track was carried before or :meth:`vouches`
        for it now. When carrying ends (any reason on the track, a box that lost its
        foreground, a frame the model could not judge, the place a carried track was left out
        at losing it) is the caller's part (:mod:`kontur.verifier.core`)."""
        return self.holds(current) is True and (history.carried or self.vouches(history, current))

    def holds(self, box: ObservedBox) -> bool | None:
        """``box`` holds foreground, under it (``support >= min_support``: a person who
        stopped too) and where it stands (:data:`FOOT_MIN`): True; a measured value falls
        short: False; not measured (an unjudged frame, a box covered by another's): None."""
        measured = ((box.support, self.min_support), (box.foot, FOOT_MIN))
        if any(v is not None and v < floor for v, floor in measured):
            return False
        return None if any(v is None for v, _ in measured) else True

    def vouches(self, history: TrackHistory, current: ObservedBox) -> bool:
        """``current`` holds moving foreground of its own, and so did at least
        :data:`VOUCH_SHARE` of the judged window :meth:`check` takes (3 boxes or more), over
        which the box moved :data:`VOUCH_MOVE` sizes or more: it followed an object the
        verifier saw move. False whenever the model abstains or the box stands still."""
        if current.support is None or not self._moving_support(current):
            return False
        window, _, _ = self._window(history, current)
        moving = sum(1 for b in window if self._moving_support(b))
        return (
            len(window) >= 3
            and moving >= VOUCH_SHARE * len(window)
            and _sizes(window[0], current) >= VOUCH_MOVE
        )

    def _window(
        self, history: TrackHistory, current: ObservedBox
    ) -> tuple[list[ObservedBox], float, bool]:
        """The judged boxes of the last ``phantom_seconds`` ending at ``current``, where it
        starts, and False; or, for a track judged fewer than 3 times in it but 3 times over
        at least that long within :data:`SPARSE_S` (a worker reporting it on one frame in
        five, say), those 3, where they start, and True."""
        start = current.pts_s - self.phantom_seconds
        window = [b for b in (*history.since(start), current) if b.support is not None]
        if len(window) >= 3:
            return window, start, False
        recent = (*history.since(current.pts_s - SPARSE_S), current)
        last = [b for b in recent if b.support is not None][-3:]
        if len(last) == 3 and current.pts_s - last[0].pts_s >= self.phantom_seconds - 1e-6:
            return last, last[0].pts_s, True
        return window, start, False

    def _moving_support(self, box: ObservedBox) -> bool:
        """Foreground of its own under the box, part of which moved in the last ~0.1 s: a
        box sliding over a still patch of foreground (a shadow, a change of light the
        background has not absorbed yet) is not carried by it."""
        if (box.support or 0.0) < self.min_support:
            return False
        return box.motion is None or box.motion >= OWN_MOTION

    @staticmethod
    def _left(older: list[ObservedBox], window: list[ObservedBox], start: float) -> bool:
        """The box stands still now after moving, with strong support, in the second before."""
        before = [b for b in older if b.pts_s >= start - 1.0]
        return (
            bool(before)
            and _sizes(window[0], window[-1]) < STILL
            and _sizes(before[0], before[-1]) >= LEFT_MOVE
            and max(b.support or 0.0 for b in before) >= STRONG_SUPPORT
        )


def _sizes(a: ObservedBox, b: ObservedBox) -> float:
    """Centre distance between two observations in box sizes (geometric mean of both)."""
    return a.distance_to(b) / math.sqrt(a.size * b.size)


#: Steps whose mean score (:func:`~kontur.verifier.coherence.measure`) is at most minus this
#: left their content behind: the old content correlates that much better with its old place.
INCOHERENT = 0.3
#: Window over which the judged steps are averaged (seconds of pts) ...
COHERENCE_WINDOW_S = 0.6
#: ... at least this many of them, spanning at least this long (seconds).
INCOHERENT_STEPS = 3
INCOHERENT_SPAN_S = 0.15


class ContentCoherence:
    """A box must carry its content along: the pixels it held must not stay behind.

    Reads ``ObservedBox.coherence`` (:mod:`kontur.verifier.coherence`: the verifier's own grey
    pictures, no background model, so it judges a moving camera and busy traffic too). Over
    the last :data:`COHERENCE_WINDOW_S`, a track with at least :data:`INCOHERENT_STEPS` judged
    steps spanning :data:`INCOHERENT_SPAN_S` whose mean score is at most −:data:`INCOHERENT`
    (its box left its old content behind), the newest among them too, is not following a real
    object: a phantom, a replayed or teleported box, a box frozen on a moving camera. The
    verifier measures only tracks of a watched class group.
    """

    name: ClassVar[str] = "coherence"

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Average the judged steps of the window ending at ``current``."""
        if current.coherence is None or current.coherence > -INCOHERENT:
            return None  # only a judged, incoherent step raises the alarm
        recent = (*history.since(current.pts_s - COHERENCE_WINDOW_S), current)
        judged = [(b.pts_s, c) for b in recent if (c := b.coherence) is not None]
        if len(judged) < INCOHERENT_STEPS:
            return None
        if current.pts_s - judged[0][0] + 1e-9 < INCOHERENT_SPAN_S:
            return None
        mean = sum(c for _, c in judged) / len(judged)
        if mean > -INCOHERENT:
            return None
        window = judged
        return (
            f"track {track_id}: box left its content behind over {len(window)} judged steps "
            f"in {COHERENCE_WINDOW_S:g} s (mean {mean:.2f}, now {current.coherence:.2f}), "
            "expected the pixels under it to move with it (a phantom or replayed box?)"
        )


#: A box with more than this share of its area outside the picture was not found in it.
OUTSIDE = 0.1


class InsidePicture:
    """A detector finds boxes in the picture it is given: the product's runner clips them to
    it, and a tracker's smoothing overshoots the border by a pixel or two, not by a tenth of the
    box. Reads ``ObservedBox.outside`` (the verifier's own frame size, from the picture it
    saw); only tracks of a watched class group are judged."""

    name: ClassVar[str] = "picture"

    def __init__(self, groups: ClassGroups | None = None, watched: frozenset[str] | None = None):
        self.groups = groups or ClassGroups(())
        self.watched = watched

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Flag a box more than :data:`OUTSIDE` outside the picture."""
        if current.outside <= OUTSIDE or not self.groups.watched(current.label, self.watched):
            return None
        shown = ", ".join(f"{v:.0f}" for v in current.xyxy)
        return (
            f"track {track_id}: box ({shown}) lies {current.outside:.0%} outside the picture, "
            f"expected at most {OUTSIDE:.0%}: a detector finds boxes in the picture it sees"
        )


#: A person's box taller than this multiple of the modelled height at its foot point is
#: implausible (the top of the band of person heights the evasion search tries,
#: :data:`kontur.verifier.evasion.SCALE_HIGH`).
TOO_TALL = 1.6
#: Measured boxes needed in the window (spanning at least half of it).
STATURE_OBSERVATIONS = 3


class PersonStature:
    """A person stands on the ground: a box far taller than a person at its foot point is not
    one.

    Reads ``ObservedBox.stature`` (box height over the height the camera's perspective model
    expects at the box's foot point: a line fitted to person boxes the verifier's own
    foreground supports, :class:`kontur.verifier.evasion.PersonScale`). Over the last
    ``phantom_seconds``, a track of a watched class group whose every measured box (at least
    three, spanning half the window) is more than :data:`TOO_TALL` times the modelled height
    is flagged: a phantom drawn at a size no person has there. Too *short* is never flagged (legs
    hidden behind a bench, a child, a crouching person). Clipped boxes are not measured (their
    foot is outside the picture).
    """

    name: ClassVar[str] = "stature"

    def __init__(
        self,
        phantom_seconds: float,
        groups: ClassGroups | None = None,
        watched: frozenset[str] | None = None,
    ) -> None:
        self.phantom_seconds = phantom_seconds
        self.groups = groups or ClassGroups(())
        self.watched = watched

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Judge the window of the last ``phantom_seconds`` ending at ``current``."""
        if current.stature is None or current.stature <= TOO_TALL:
            return None
        if not self.groups.watched(current.label, self.watched):
            return None
        start = current.pts_s - self.phantom_seconds
        window = [b for b in (*history.since(start), current) if b.stature is not None]
        if len(window) < STATURE_OBSERVATIONS:
            return None
        if current.pts_s - window[0].pts_s + 1e-9 < self.phantom_seconds / 2:
            return None
        if any(b.stature is not None and b.stature <= TOO_TALL for b in window):
            return None
        least = min(b.stature or 0.0 for b in window)
        return (
            f"track {track_id}: box {least:.1f}× or more the height of a person standing at "
            f"its foot point for {current.pts_s - window[0].pts_s:.1f} s (the camera's "
            f"perspective, learnt from verified people), expected at most {TOO_TALL:g}× (a "
            "phantom?)"
        )


#: Identical boxes in this many consecutive observations...
FROZEN_OBSERVATIONS = 3
#: ... while at least this fraction of the pixels under them moved, each time.
FROZEN_MOTION = 0.05


class FrozenBox:
    """A detector's box never repeats to the last bit while the picture under it changes."""

    name: ClassVar[str] = "frozen"

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Flag :data:`FROZEN_OBSERVATIONS` bit-identical boxes over moving pixels."""
        if len(history) < FROZEN_OBSERVATIONS - 1:
            return None
        last = history.last
        if last is not None and last.xyxy != current.xyxy:
            return None  # the usual case: the box moved since the last observation
        run = [*list(history)[-(FROZEN_OBSERVATIONS - 1) :], current]
        if any(b.xyxy != current.xyxy for b in run):
            return None
        if any(b.motion is None or b.motion < FROZEN_MOTION for b in run[1:]):
            return None  # a still picture gives a still box
        return (
            f"track {track_id}: box identical to the pixel in {len(run)} frames while the "
            "picture under it moved: expected a detector's box to follow (a frozen box?)"
        )


def default_track_checks(
    config: VerifierConfig, watched: frozenset[str] | None = None
) -> tuple[TrackCheck, ...]:
    """The track checks of DESIGN.md §1 block 4 and issue 13 §2 with ``config``'s thresholds.

    ``watched``: the classes the policies name (None: every class). :class:`WellFormedBox` is
    not among the checks: the verifier runs it first, on its own.
    """
    groups = ClassGroups(config.class_groups)
    return (
        TrajectoryContinuity(config.max_jump_ratio),
        PlausibleSpeed(config.max_speed_heights_per_s),
        PlausibleSizeChange(config.max_area_ratio),
        ClassStability(groups, watched, config.class_flip_seconds),
        ConfidenceJump(config.max_confidence_jump),
        ForegroundSupport(config.phantom_seconds, config.min_support, groups, watched),
        FrozenBox(),
        ContentCoherence(),
        PersonStature(config.phantom_seconds, groups, watched),
        InsidePicture(groups, watched),
    )


#: Thumbnail digests remembered for loop detection.
REPEAT_WINDOW = 300
#: A digest that recurs at most this many frames later is a still scene, not a loop.
MIN_REPEAT_GAP = 5


class SceneLiveness:
    """Is the picture alive? Flags a frozen scene and an exact replay of earlier pictures.

    Frozen: the mean absolute difference (MAD, grey levels) between consecutive thumbnails
    has stayed below ``frozen_mad_threshold`` (or at exactly 0) for longer than
    ``frozen_seconds`` of pts. Replayed: the thumbnail's digest equals that of a thumbnail
    seen more than ``min_repeat_gap`` frames ago, among the last ``window`` thumbnails, while
    the scene is not frozen.

    Limits: a truly static scene (an empty corridor at night, a skipped-block H.264 stream)
    looks frozen by design, and a loop that was re-encoded or slightly perturbed has new
    digests and is not recognised as a replay. This is a liveness *signal*; the gate decides
    what it means for an action (ADR 0006).
    """

    name: ClassVar[str] = "liveness"

    def __init__(
        self,
        frozen_seconds: float,
        frozen_mad_threshold: float,
        *,
        window: int = REPEAT_WINDOW,
        min_repeat_gap: int = MIN_REPEAT_GAP,
    ) -> None:
        if window < 1 or min_repeat_gap < 1:
            raise ValueError(
                f"expected window and min_repeat_gap of at least 1, got {window} and "
                f"{min_repeat_gap}"
            )
        self.frozen_seconds = frozen_seconds
        self.frozen_mad_threshold = frozen_mad_threshold
        self.min_repeat_gap = min_repeat_gap
        self._prev: npt.NDArray[np.uint8] | None = None
        self._prev_pts = 0.0
        self._last_index: int | None = None
        self._still_since: float | None = None
        self._order: deque[tuple[int, bytes]] = deque(maxlen=window)
        self._seen: dict[bytes, int] = {}

    @property
    def digests_held(self) -> int:
        """How many thumbnail digests are remembered (at most ``window``)."""
        return len(self._seen)

    def observe(
        self, frame_index: int, pts_s: float, thumbnail: npt.NDArray[np.uint8]
    ) -> str | None:
        """Feed the next frame's thumbnail; None when the scene looks alive, else the reason."""
        thumb = validate_thumbnail(thumbnail).copy()  # never alias the caller's buffer
        if self._last_index is not None and frame_index <= self._last_index:
            raise RuntimeError(
                f"expected a frame after {self._last_index}, got frame {frame_index}"
            )
        self._last_index = frame_index
        frozen = self._frozen(pts_s, thumb)
        repeat = self._repeat(frame_index, thumb)
        self._prev, self._prev_pts = thumb, pts_s
        return frozen if frozen is not None else repeat

    def _frozen(self, pts_s: float, thumb: npt.NDArray[np.uint8]) -> str | None:
        prev = self._prev
        if prev is None or prev.shape != thumb.shape:
            self._still_since = None
            return None
        step = np.abs(thumb.astype(np.int16) - prev.astype(np.int16))
        mad = int(step.sum()) / step.size  # exactly float(step.mean()): an exact sum, one division
        if not (mad < self.frozen_mad_threshold or mad == 0.0):
            self._still_since = None
            return None
        if self._still_since is None:
            self._still_since = self._prev_pts
        still = pts_s - self._still_since
        if still <= self.frozen_seconds:
            return None
        if self.frozen_mad_threshold > 0:
            why = f"mean abs diff {mad:.2f} < {self.frozen_mad_threshold:g}"
        else:
            why = "identical pictures"
        return f"scene frozen for {still:.1f} s ({why})"

    def _repeat(self, frame_index: int, thumb: npt.NDArray[np.uint8]) -> str | None:
        digest = hashlib.blake2b(
            f"{thumb.shape}".encode() + thumb.tobytes(), digest_size=16
        ).digest()
        earlier = self._seen.get(digest)
        if len(self._order) == self._order.maxlen:
            old_index, old_digest = self._order[0]
            if self._seen.get(old_digest) == old_index:
                del self._seen[old_digest]
        self._order.append((frame_index, digest))
        self._seen[digest] = frame_index
        if earlier is None or self._still_since is not None:
            return None
        gap = frame_index - earlier
        if gap <= self.min_repeat_gap:
            return None
        return f"picture repeats frame {earlier} seen {gap} frames ago (replay or loop)"
