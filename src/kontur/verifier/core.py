"""The independent CPU verifier's pure core: a state machine fed frames and track results.

DESIGN.md §1 block 4 and the paper ("CPU-верификатор ... работает отдельным процессом и не
использует GPU/NPU-драйвер"): this core imports numpy, pydantic, the standard library and
kontur's own wire/config types, nothing else. It never reads a clock, a queue or shared
memory; its shell (``kontur.verifier.process``) does that and feeds it.

Order of steps, per camera:

1. ``observe_frame(camera_id, frame_index, pts_s, thumbnail, gop_index, picture)`` for every
   frame ingest publishes (``FrameReady``, analysed or not), in strictly increasing
   ``frame_index``. It runs :class:`~kontur.verifier.SceneLiveness` on the thumbnail and keeps
   the result, with the pts and GOP ingest stamped, for the last :data:`FRAME_RECORDS` frames;
   :meth:`stamp` gives them back, so the gate gets a frame's provenance from ingest, never from
   the worker. ``thumbnail=None`` (the slot was overwritten before the shell could read it)
   carries the last picture's verdict forward and disagrees once no picture was seen for
   ``frozen_seconds``. A ``picture`` (:func:`~kontur.verifier.foreground.make_picture`) feeds
   the camera's background model; its masks and the picture itself are kept for the last
   :data:`MASK_RECORDS` frames.
2. ``check(tracks)`` for every ``TrackFrame`` the worker sends, in strictly increasing
   ``frame_index``, after step 1 for that frame. It measures every box against the frame's
   masks (its support when the model judged that frame, its motion in any case), scores each
   watched track's content coherence against an earlier picture
   (:mod:`kontur.verifier.coherence`), runs the track checks on every tracked object
   against that track's bounded history, appends the new boxes, looks for unexplained
   person-sized foreground in the watched zones (:mod:`kontur.verifier.evasion`), forgets
   tracks unseen for :data:`FORGET_AFTER_FRAMES` frames, and returns a
   :class:`~kontur.wire.Finding`, with the tracks its own pixels carry in ``vouched``
   (:meth:`~kontur.verifier.checks.ForegroundSupport.carries`, ADR 0043).

A frame index from ingest that does not increase (step 1) is a caller's bug:
``RuntimeError``. Tracks for a frame at or before the last one checked (step 2) are the
worker's doing (a duplicate, a replay, out of order): a disagreeing finding, never an
exception.
Input no check can use (a thumbnail that is not 2-D uint8, a NaN pts) is a
:class:`~kontur.verifier.VerifierError`. Anything wrong with the *worker's* output, which is
untrusted, is a disagreeing finding, never an exception: a worker must not be able to crash
its own verifier. That includes tracks for a camera or a frame the verifier never observed:
it vouches only for pictures it saw itself.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kontur.config import VerifierConfig
from kontur.geometry import covered_share, well_formed
from kontur.verifier.blind import Blindness
from kontur.verifier.checks import (
    OWN_MOTION,
    ForegroundSupport,
    SceneLiveness,
    TrackCheck,
    WellFormedBox,
    default_track_checks,
    settled_run,
)
from kontur.verifier.coherence import (
    BASELINES_S,
    MIN_MOVE,
    Baseline,
    held,
    measure,
    moved,
    shift_between,
    spectrum,
)
from kontur.verifier.drift import CameraDrift
from kontur.verifier.errors import FrameStampError
from kontur.verifier.evasion import MAX_COVER, UnexplainedForeground
from kontur.verifier.foreground import (
    CAMERA_CHECK_FRACTION,
    BoxMeter,
    ForegroundModel,
    SceneMasks,
    ScenePicture,
    foot_band,
)
from kontur.verifier.history import ObservedBox, TrackHistory, extend_cover
from kontur.verifier.jumps import jumped
from kontur.verifier.renamed import Renamings
from kontur.verifier.stayed import StayedTracks
from kontur.verifier.thumbnail import validate_thumbnail
from kontur.verifier.vanished import SUPPORT_S, VanishedTracks
from kontur.verifier.watch import ClassGroups, Watch
from kontur.wire.messages import Finding, FrameStamp, TrackedObject, TrackFrame

__all__ = [
    "FORGET_AFTER_FRAMES",
    "FRAME_RECORDS",
    "MASK_RECORDS",
    "MAX_TRACKS",
    "Verifier",
    "VerifierStats",
]

#: A box is vouched for (ADR 0043) only while no other reported box covers more than this
#: share of it: moving foreground another box claims does not show which box follows it, and a
#: phantom riding a passer-by, leaving with a departing person or drawn inside a passing car's
#: box, would take it for its own. (Two boxes of one size cover 0.45 of each other at an IoU
#: of 0.3; a box inside another is covered whole, at any IoU; the larger box of a pair, an
#: adult beside a child, may still be alone.)
VOUCH_ALONE_COVER = 0.45
#: A carried box must show motion of its own (:data:`~kontur.verifier.checks.OWN_MOTION`) on
#: some judged frame at least this often (seconds), else carrying ends (ADR 0044, the fifth
#: review): still foreground carries a phantom parked on it (a suitcase, a parked car) as well
#: as a person, and a person breathes, shifts and turns. No carried track of the bench's
#: honest runs held still for more than 1.1 s; 3 s until ADR 0047, which a default 2 s dwell
#: on a parked phantom fitted under. A shorter dwell is :func:`_parked`'s (ADR 0048).
STILL_CARRY_S = 1.5
#: A box that stands still on foreground of which at least this share was foreground well
#: before the track came there is not carried (ADR 0048): it is parked on a still object.
OLDER_SHARE = 0.5
#: ...where "well before" is this long before the track's boxes came to cover it (seconds).
OLDER_BY_S = 1.0
#: A box stands (:func:`_standing`) when its foot point moved less than this share of its
#: height in the last ``STANDING_S`` seconds.
STANDING_MOVE = 0.1
STANDING_S = 0.5
#: A box's motion is its own (:func:`_moves_on_its_own`) only while it holds what it held at
#: each of these lags (seconds, shortest first; not multiples of each other: a stream whose
#: walkers repeat at one lag does not at the other)...
HOLD_LAGS_S = (0.5, 0.8)
#: ... as the normalised cross-correlation of the two (:func:`~kontur.verifier.coherence.
#: held`) tells: a person who stands and stirs holds themselves; a phantom that a stream of
#: others passes through holds each in turn (ADR 0050).
HOLD_NCC = 0.45
#: The pixels that carry a box (:func:`_carrying`): its foreground, grown by this many
#: picture pixels each way (its outline against the ground)...
CARRYING_HALO = 1
#: ... must hold what they held at the lags this well too (:func:`_carried_holds`). Less
#: than :data:`HOLD_NCC`: fewer pixels, and those that move, a figure's outline swaying
#: over the picture's sampling grid. The synthetic scenes of ADR 0050 put an honest
#: standing figure at 0.41 or more and a phantom on the walkers who stream through it at
#: 0.21 or less.
CARRIED_NCC = 0.3
#: A box in frame pixels (``x1, y1, x2, y2``).
Box = tuple[float, float, float, float]
#: Those pixels' bounding rectangle (frame pixels) and the picture's mask of them.
Carrying = tuple[Box, npt.NDArray[np.bool_]]
#: A track walks (content coherence judges it, not :func:`_moves_on_its_own`) when the median
#: of its last this many boxes moved :data:`~kontur.verifier.coherence.MIN_MOVE` at each lag...
WHERE_BOXES = 5
#: ... and lies this many times farther, the same way, at each longer lag (:func:`_walks`:
#: 0.8 / 0.5 = 1.6 times at a steady pace, more for one stopping, less for one just off).
WALK_FARTHER = 1.2
#: A track whose carry ended where it stood (``history.stood``) is vouched for again only once
#: its box lies this many widths or heights from there (:func:`~kontur.verifier.coherence.
#: moved`): it walked away, rather than jumped to and fro about the place (ADR 0050's ninth
#: review; half a width until then).
AWAY = 1.5
#: A carried box is looked at for motion of its own once this long (seconds) has passed since
#: it last showed some: :data:`STILL_CARRY_S` needs one look to pass, not one a frame.
HOLD_EVERY_S = 0.5
#: ... and, while it shows none, again this often (seconds): fewer looks, fewer chances for a
#: worker to time a box to pass one, and a bounded cost.
LOOK_EVERY_S = 0.2
#: A still box whose foreground's outline is less of an edge in the picture than this share
#: of what it is in the background stands on a ghost, and is not carried (ADR 0049).
GHOST_RATIO = 0.5
#: Pairs of boxes side by side (their columns overlap) beyond which no box of the frame is
#: vouched for anew: comparing them would cost a hostile frame quadratic time, and a crowd
#: that dense is no place to tell which box follows which foreground.
MAX_ALONE_PAIRS = 1024
#: A track not updated for this many frames is forgotten (its id may come back as new).
FORGET_AFTER_FRAMES = 300
#: Hard cap on tracks held per camera; the least recently seen go first beyond it.
MAX_TRACKS = 4096
#: Observed frames remembered per camera, so ``check`` can find the frame it is about.
FRAME_RECORDS = 300
#: Ingest's pts and the worker's stamp for the same frame may differ by no more than this.
PTS_TOLERANCE_S = 1e-6
#: Foreground masks remembered per camera (packed, ~5 KB a frame at 160×120): the worker's
#: tracks for a frame arrive at most a ring (16 frames) after the verifier saw it.
MASK_RECORDS = 64
#: A box within this many pixels of the frame's border is partly outside the picture.
BORDER_PX = 2.0


@dataclass(frozen=True, slots=True)
class VerifierStats:
    """How much state the verifier holds now; bounded whatever the worker sends."""

    cameras: int
    tracks: int
    observations: int
    frame_records: int
    digests: int


@dataclass(frozen=True, slots=True)
class _FrameRecord:
    pts_s: float
    scene: tuple[str, ...]
    gop_index: int
    blind: str | None = None
    """Why the camera was blind to the verifier on this frame (:mod:`.blind`), or None."""


@dataclass(frozen=True, slots=True)
class _Picture:
    """A judged-or-not grey picture kept for the content-coherence check."""

    pixels: npt.NDArray[np.uint8]
    stride: int
    still: bool
    """The camera stood still: the background model judged the frame, or (while it learns)
    too little of the picture moved for the camera to have (as the model itself decides)."""
    frame_width: int
    frame_height: int

    @property
    def view(self) -> tuple[npt.NDArray[np.uint8], int, int, int]:
        """(pixels, stride, frame width, frame height), as :mod:`.stayed` reads a picture."""
        return self.pixels, self.stride, self.frame_width, self.frame_height


#: Content coherence is measured at most once per track in each slot this long (seconds of
#: pts): every frame at 10 fps, one in three at 30.
COHERENCE_EVERY_S = 0.1
#: A dropped track is followed by :mod:`.stayed` only when the detector was sure of it this
#: recently before its last report (seconds of pts): a fade over longer passes (ADR 0025).
SURE_RECENT_S = 1.0
#: Camera shifts between two pictures remembered per camera (phase correlation is cached).
SHIFT_RECORDS = 256


@dataclass(slots=True)
class _Camera:
    liveness: SceneLiveness
    evasion: UnexplainedForeground
    vanished: VanishedTracks
    stayed: StayedTracks
    renamed: Renamings
    first_pts: float
    foreground: ForegroundModel = field(default_factory=ForegroundModel)
    blindness: Blindness = field(default_factory=Blindness)
    masks: dict[int, SceneMasks] = field(default_factory=dict)
    pictures: dict[int, _Picture] = field(default_factory=dict)
    shifts: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    spectra: dict[int, npt.NDArray[np.complex64]] = field(default_factory=dict)
    mask_order: deque[int] = field(default_factory=deque)
    cuts: deque[int] = field(default_factory=lambda: deque(maxlen=MASK_RECORDS))
    """Frames on which the whole picture changed at once (a cut): tracks start afresh."""
    picture_at: float | None = None
    picture_pts: float | None = None
    picture_scene: tuple[str, ...] = ()
    last_observed: int | None = None
    last_checked: int | None = None
    records: dict[int, _FrameRecord] = field(default_factory=dict)
    order: deque[int] = field(default_factory=deque)
    tracks: OrderedDict[int, TrackHistory] = field(default_factory=OrderedDict)
    drift: CameraDrift | None = None
    """Detection rate and class mix against a rolling baseline (:mod:`.drift`)."""
    reported: set[int] = field(default_factory=set)
    """Track ids of the last frame checked on a judged frame (for :mod:`.vanished`)."""
    present: set[int] = field(default_factory=set)
    """Track ids of the last frame checked (for :mod:`.stayed`)."""


def _shift(cam: _Camera, first: int, second: int) -> tuple[int, int]:
    """The camera's whole-pixel (dy, dx) between two held pictures: none where the background
    model judged both (it saw a still camera), else phase correlation, cached."""
    a, b = cam.pictures[first], cam.pictures[second]
    if a.still and b.still:
        return 0, 0
    shift = cam.shifts.get((first, second))
    if shift is None:
        fa, fb = _spectrum(cam, first), _spectrum(cam, second)
        shape = (a.pixels.shape[0], a.pixels.shape[1])
        shift = cam.shifts[(first, second)] = shift_between(fa, fb, shape)
    return shift


def _jumped(cam: _Camera, history: TrackHistory, box: ObservedBox) -> bool:
    """``box`` jumped (:func:`~kontur.verifier.jumps.jumped`, ADR 0053), judged over spans
    whose pictures the background model judged both still (a moving camera moves every
    box)."""

    def steady(first: int, second: int) -> bool:
        a, b = cam.pictures.get(first), cam.pictures.get(second)
        return a is not None and b is not None and a.still and b.still

    return jumped(history, box, steady)


def _inside_area(xyxy: tuple[float, float, float, float], width: int, height: int) -> float:
    """The share of a well-formed box's area inside a ``width`` × ``height`` picture."""
    x1, y1, x2, y2 = xyxy
    iw = max(0.0, min(x2, width) - max(x1, 0.0))
    ih = max(0.0, min(y2, height) - max(y1, 0.0))
    return iw * ih / ((x2 - x1) * (y2 - y1))


class _Alone:
    """Which boxes of a frame no other reported box covers beyond :data:`VOUCH_ALONE_COVER`
    of; worked out once, and only when a box is about to be vouched for
    (rarely). On a frame of more than :data:`MAX_ALONE_PAIRS` side-by-side pairs, none is."""

    def __init__(self, objects: tuple[TrackedObject, ...]) -> None:
        self._objects = objects
        self._crowded: set[int] | None = None
        self._done = False

    def __call__(self, track_id: int) -> bool:
        if not self._done:
            self._done, self._crowded = True, self._overlapping()
        return self._crowded is not None and track_id not in self._crowded

    def _overlapping(self) -> set[int] | None:
        boxes = sorted((o.xyxy, o.track_id) for o in self._objects if well_formed(o.xyxy))
        out: set[int] = set()
        pairs = 0
        for i, (box_a, a) in enumerate(boxes):  # sorted by left edge: a sweep
            for j in range(i + 1, len(boxes)):  # (no slice: a copy a box would cost O(n²))
                box_b, b = boxes[j]
                if box_b[0] >= box_a[2]:
                    break
                pairs += 1
                if pairs > MAX_ALONE_PAIRS:
                    return None
                if covered_share(box_a, box_b) > VOUCH_ALONE_COVER:
                    out.add(a)
                if covered_share(box_b, box_a) > VOUCH_ALONE_COVER:
                    out.add(b)
        return out


def _moves_on_its_own(cam: _Camera, history: TrackHistory, box: ObservedBox) -> bool:
    """``box`` shows motion of its own (ADR 0050): :data:`~kontur.verifier.checks.OWN_MOTION`,
    and it holds what the track's box held :data:`HOLD_LAGS_S` before, at each lag the track
    is old enough for (:data:`HOLD_NCC`), and so do the pixels that carry it
    (:func:`_carried_holds`). Walkers streaming through a box that stands bring
    their motion, and their content replaces what it held, whether the worker reports them
    or not; a box that rides them for a moment and goes back does not hold at two lags, nor
    does a box moved for the frame it is looked at. When another object's box (a car
    passing in front, ADR 0044's cover) lay over it then or now, it is compared with where
    it last stood and held itself (:func:`_holds_what_it_was`). Not when the shortest lag
    cannot tell (a patch partly outside the picture, flat or gone; a longer lag that cannot
    tell has no say, and then the box is not where a car in front is compared with); the
    motion alone while the track is younger than the shortest lag (never when its full
    history is younger: a frame rate too high for it fails closed), or walks
    (:func:`_walks`). Where the track was at a lag is the median of its boxes around it
    (:func:`_around`), not the lag's box alone. A box that stood uncovered and held itself
    at both lags becomes the track's ``history.own``."""
    if box.motion is None or box.motion < OWN_MOTION:
        return False
    past = list(history)
    at = _aged(past, box.pts_s, HOLD_LAGS_S)
    bases = [None if k is None else past[k] for k in at]
    if bases[0] is None:
        # younger than the shortest lag: its vouch saw it move. A full history that does not
        # reach back so far (over HISTORY_LENGTH / 0.5 s frames a second) cannot tell.
        return not history.full
    where = _where(history, box)  # medians: a box moved for a frame or two is not where
    lags = [None if k is None else (past[k].frame_index, _around(past, k)) for k in at]
    if _walks(where, lags):
        return True  # it walks: content coherence judges where its content goes
    if box.covered or any(b is not None and b.covered for b in bases):
        return _holds_what_it_was(cam, history, box, bases)
    first = _held(cam, lags[0], box)
    if first is None or first < HOLD_NCC:
        return False  # the shortest lag must tell, and hold
    scores = [_held(cam, lag, box) for lag in lags[1:]]
    if not all(score is None or score >= HOLD_NCC for score in scores):  # (flat: no say)
        return False
    told = [lag for lag, score in zip(lags[1:], scores, strict=True) if score is not None]
    if not _carried_holds(cam, box, [lags[0], *told]):
        return False  # its still ground holds, and what carries it does not
    picture = cam.pictures.get(box.frame_index)
    if None not in scores and picture is not None:  # it stood and held itself at both lags:
        history.own = Baseline(picture.pixels, picture.stride, box.xyxy)  # (a car in front)
    return True


def _aged(past: list[ObservedBox], now: float, ages: tuple[float, ...]) -> list[int | None]:
    """For each of ``ages`` (seconds, shortest first), the index in ``past`` (oldest first)
    of its newest box at least that much older than ``now``, or None: one scan back."""
    at: list[int | None] = []
    k = len(past) - 1
    for age in ages:
        while k >= 0 and past[k].pts_s > now - age:
            k -= 1
        at.append(k if k >= 0 else None)
    return at


def _walks(where: Box, lags: list[tuple[int, Box] | None]) -> bool:
    """The track walks at a look: where it was at each lag (shortest first) lies
    :data:`~kontur.verifier.coherence.MIN_MOVE` or more from ``where`` it is now, and each
    longer lag farther along the same way, as a walker's path does. A box that jumps to and
    fro about one place (ADR 0050's ninth review) lies as far at both lags, or the other
    way; it is looked at as a box that stands."""
    if any(lag is None or moved(lag[1], where, (0.0, 0.0)) < MIN_MOVE for lag in lags):
        return False
    cx, cy = (where[0] + where[2]) / 2, (where[1] + where[3]) / 2
    steps = [((b[0] + b[2]) / 2 - cx, (b[1] + b[3]) / 2 - cy) for _, b in filter(None, lags)]
    return all(
        a[0] * b[0] + a[1] * b[1] > 0 and math.hypot(*b) > math.hypot(*a) * WALK_FARTHER
        for a, b in itertools.pairwise(steps)
    )


def _holds_what_it_was(
    cam: _Camera, history: TrackHistory, box: ObservedBox, bases: list[ObservedBox | None]
) -> bool:
    """A car in front, now or at a lag: ``box`` and the track's boxes at both lags hold, each
    on the pixels its cover left free, what the track held the last time it stood uncovered
    and held itself at both lags (``history.own``); every one must tell. Not the box where
    it last moved: a phantom that rode a walker there holds the next walker who looks the
    same. Not now alone: passers-by who look like the one who stood there hold one at a
    time, not at three times 0.5 s and 0.8 s apart. And a worker that covers a lag (a box
    stretched for a frame) only makes it fail. A track never seen to stand and hold itself
    has nothing to hold."""
    own = history.own
    if own is None:
        return False
    for then in (box, *bases):
        score = None if then is None else _holds(cam, own, then, then.free)
        if score is None or score < HOLD_NCC:
            return False
    return True


def _where(history: TrackHistory, box: ObservedBox) -> Box:
    """Where the track is now, robust to a box moved for a frame or two: the median, side by
    side, of ``box`` and the track's :data:`WHERE_BOXES` − 1 boxes before it."""
    boxes = [box.xyxy]
    for b in reversed(history):
        if len(boxes) == WHERE_BOXES:
            break
        boxes.append(b.xyxy)
    return _median_box(boxes)


def _around(past: list[ObservedBox], k: int) -> Box:
    """Where the track was at its box ``past[k]`` (a look's lag), robust to a box moved or
    resized for that frame or two (ADR 0050's eighth review: a lag box drawn on the walker
    who moved along, or off where the track stands, or against the picture's border so that
    the lag has no say): the median, side by side, of the :data:`WHERE_BOXES` boxes of
    ``past`` centred on it (fewer at its ends)."""
    half = WHERE_BOXES // 2
    return _median_box([b.xyxy for b in past[max(0, k - half) : k + half + 1]])


def _median_box(boxes: list[Box]) -> Box:
    """The median of ``boxes``, coordinate by coordinate (the upper one of an even count)."""
    mid = len(boxes) // 2
    x1, y1, x2, y2 = map(sorted, zip(*boxes, strict=True))
    return x1[mid], y1[mid], x2[mid], y2[mid]


def _held(
    cam: _Camera, then: tuple[int, Box] | None, box: ObservedBox, part: Carrying | None = None
) -> float | None:
    """How well ``box`` holds what the track held at ``then`` (a lag's frame, and where the
    track was there: :func:`_around`; :func:`~kontur.verifier.coherence.held`): over the
    pixels that carry it now (``part``, :func:`_carrying`), when given, against the same
    pixels then, moved only as the box's centre moved (a person who shuffles on carries
    their pixels along); else over the whole box. None when that cannot be told: no
    ``then``, a picture gone or taken while the camera moved, or
    :func:`~kontur.verifier.coherence.held` has no say."""
    a = None if then is None else cam.pictures.get(then[0])
    if then is None or a is None or not a.still:
        return None
    if part is None:
        return _holds(cam, Baseline(a.pixels, a.stride, then[1]), box)
    (x1, y1, x2, y2), mask = part
    (tx1, ty1, tx2, ty2), (bx1, by1, bx2, by2) = then[1], box.xyxy
    dx, dy = (tx1 + tx2 - bx1 - bx2) / 2, (ty1 + ty2 - by1 - by2) / 2
    base = Baseline(a.pixels, a.stride, (x1 + dx, y1 + dy, x2 + dx, y2 + dy))
    return _holds(cam, base, box, mask, (x1, y1, x2, y2), CARRIED_NCC)


def _carried_holds(cam: _Camera, box: ObservedBox, lags: list[tuple[int, Box] | None]) -> bool:
    """The pixels that carry ``box`` (:func:`_carrying`) hold what they held at each of
    ``lags`` (those where the whole box held and told), to :data:`CARRIED_NCC`, and the
    shortest lag tells: a box whose still ground holds while the walkers who carry it and
    give it its motion do not is not standing (ADR 0050's sixth review). True when its
    frame's masks cannot say which pixels carry it."""
    part = _carrying(cam, box.frame_index, box.xyxy)
    if part is None:
        return True
    for k, then in enumerate(lags):
        score = _held(cam, then, box, part)
        if (score is None and k == 0) or (score is not None and score < CARRIED_NCC):
            return False
    return True


def _carrying(cam: _Camera, frame_index: int, xyxy: Box) -> Carrying | None:
    """The pixels that carry the box ``xyxy`` on frame ``frame_index``: its own foreground
    inside it, with a halo of :data:`CARRYING_HALO` picture pixels (a figure's outline
    against the ground, which a flat figure's inside lacks, even where the box fits it), and
    the rectangle (frame pixels) that bounds them. What holds must be what carries the box
    and gives it its motion: a box drawn tall over walkers in a stream, with still ground
    above their heads, holds the ground and moves with the walkers (ADR 0050's sixth
    review); the walkers hold nothing, and neither does the ground between two lanes of
    them, which is not theirs. Pixels, not a share of the box: a worker that resizes the
    box between looks does not move them (:func:`_held` moves them only as the box's centre
    moved). None (the whole box) when the frame's masks are gone or not judged, or the box
    has no foreground (its motion then was not measured on foreground)."""
    masks = cam.masks.get(frame_index)
    if masks is None or not masks.judged:
        return None
    y0, x0, y1, x1 = masks.to_picture(xyxy)
    fg = masks.foreground()
    own = fg[y0:y1, x0:x1]
    rows = np.flatnonzero(own.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(own.any(axis=0))
    # the rectangle (picture rows and columns): the foreground's, h more each way, and not
    # into the picture's outer pixels (what :func:`held` compares stays off them)
    h, (height, width) = CARRYING_HALO, fg.shape
    top, bottom = max(y0 + int(rows[0]) - h, 1), min(y0 + int(rows[-1]) + h + 1, height - 1)
    left, right = max(x0 + int(cols[0]) - h, 1), min(x0 + int(cols[-1]) + h + 1, width - 1)
    n, m = max(bottom - top, 0), max(right - left, 0)  # (none left: nothing to compare)
    near = np.zeros((n + 2 * h, m + 2 * h), bool)  # the box's foreground, h round the rectangle
    ny0, nx0 = max(y0, top - h), max(x0, left - h)
    ny1, nx1 = min(y1, top + n + h), min(x1, left + m + h)
    if ny1 > ny0 and nx1 > nx0:
        near[ny0 - top + h : ny1 - top + h, nx0 - left + h : nx1 - left + h] = fg[ny0:ny1, nx0:nx1]
    column = near[0:n].copy()
    for d in range(1, 2 * h + 1):  # the halo, a square: up to h rows each way...
        column |= near[d : d + n]
    grown = column[:, 0:m].copy()
    for d in range(1, 2 * h + 1):  # ...then up to h columns
        grown |= column[:, d : d + m]
    mask = np.zeros_like(fg)
    mask[top : top + n, left : left + m] = grown
    s = float(masks.stride)
    return (left * s, top * s, (left + m) * s, (top + n) * s), mask


def _holds(
    cam: _Camera,
    base: Baseline,
    box: ObservedBox,
    free: npt.NDArray[np.bool_] | None = None,
    at: Box | None = None,
    enough: float = HOLD_NCC,
) -> float | None:
    """:func:`~kontur.verifier.coherence.held` of ``base`` by ``box`` (or the rectangle
    ``at`` instead) on its frame's picture (on the pixels ``free`` marks, when given; the
    search stops at ``enough``, the caller's threshold); None when that picture is gone, was
    taken while the camera moved, or is of another stride, or ``held`` has no say."""
    b = cam.pictures.get(box.frame_index)
    if b is None or not b.still or b.stride != base.stride:
        return None
    return held(base, b.pixels, box.xyxy if at is None else at, enough, free)


def _still_too_long(cam: _Camera, history: TrackHistory, box: ObservedBox) -> bool:
    """ADR 0044: the carried ``box`` and the track's boxes since it was last seen to move on
    its own (:func:`_moves_on_its_own`, looked at once :data:`HOLD_EVERY_S` has passed since,
    then every :data:`LOOK_EVERY_S` until it does; the carry's first box counts, it moved to
    be vouched for) showed no motion of their own for :data:`STILL_CARRY_S` (a box covered
    or left out meanwhile does not break the run; only its own motion does)."""
    since, now = history.still_since, box.pts_s
    if since is not None:  # (the carry's first box moved to be vouched for)
        due = now - since >= HOLD_EVERY_S - 1e-6 and now - history.looked_at >= LOOK_EVERY_S - 1e-6
        if due:
            history.looked_at = now
        if not (due and _moves_on_its_own(cam, history, box)):
            return now - since >= STILL_CARRY_S - 1e-6
    history.still_since = now
    return False


def _still_too_long_unwatched(history: TrackHistory, box: ObservedBox) -> bool:
    """ADR 0044 for a class no policy watches (a car: a cover for the watched, ADR 0044's
    fifth review): any motion of the box counts as its own, and the clock runs from the
    first box without (None while it moves)."""
    if box.motion is not None and box.motion >= OWN_MOTION:
        history.still_since = None
        return False
    if history.still_since is None:
        history.still_since = box.pts_s
    return box.pts_s - history.still_since >= STILL_CARRY_S - 1e-6


def _extend_cover(cam: _Camera, history: TrackHistory, box: ObservedBox, carried: bool) -> None:
    """On a judged frame, the carried ``box`` extends the track's cover (:func:`~kontur.
    verifier.history.extend_cover`); a carry that ends drops it (ADR 0048): a box that sat
    uncarried over a still object, or over the place one was set down meanwhile, proves
    nothing about it."""
    if carried:
        masks = cam.masks.get(box.frame_index)
        if masks is not None and masks.judged:
            history.cover = extend_cover(history.cover, masks.to_picture(box.xyxy), box.pts_s)


def _standing(history: TrackHistory, box: ObservedBox) -> bool:
    """The track's foot point moved less than :data:`STANDING_MOVE` of ``box``'s height (or 2
    pixels) since :data:`STANDING_S` before it (False while the track is younger)."""
    then = next((b for b in reversed(history) if b.pts_s <= box.pts_s - STANDING_S), None)
    if then is None:
        return False
    (x1, _, x2, y2), (u1, _, u2, v2) = box.xyxy, then.xyxy
    moved = math.hypot((x1 + x2 - u1 - u2) / 2, y2 - v2)
    return moved < max(2.0, STANDING_MOVE * box.height)


def _object_pixels(
    cam: _Camera, box: ObservedBox, picture: _Picture
) -> npt.NDArray[np.bool_] | None:
    """The foreground mask of ``box``'s frame, for :mod:`.stayed` to compare only the
    object's pixels under a box whose pixels moved (ADR 0054); None (the whole box) when the
    background model did not judge that frame, or the verifier's own measure of the box
    saw less than :data:`~kontur.verifier.checks.OWN_MOTION` of it move: an object that
    stood may have become background. Judged on the pixels, not on where the worker drew
    the box: a box jittered over a person who stands moves no pixel."""
    masks = cam.masks.get(box.frame_index)
    if masks is None or not masks.judged or masks.shape != picture.pixels.shape:
        return None
    moved = box.motion is not None and box.motion >= OWN_MOTION
    return masks.foreground() if moved else None


def _parked(cam: _Camera, history: TrackHistory, box: ObservedBox) -> bool:
    """True when the carried ``box`` shows no motion of its own where it stands (its foot
    band; passers-by over the top of a box that stands do not count) and stands on
    foreground that is not its own: at least :data:`OLDER_SHARE` of the foreground of its
    foot band was foreground :data:`OLDER_BY_S` before the track's carried boxes came to
    cover it (ADR 0048, :meth:`~kontur.verifier.foreground.ForegroundModel.foreign_share`: a
    still object), or the outline of its foreground, or of its feet's, is an edge of the
    background rather than of the picture (ADR 0049, :meth:`~kontur.verifier.foreground.
    ForegroundModel.ghost_ratio`: the ghost a long-standing object left).
    :func:`_still_too_long` would end such a carry only after :data:`STILL_CARRY_S`. A person
    who walks in and stops brought their foreground, and their outline is theirs. Both are
    judged on the box's own frame, its masks and picture (ADR 0051): a late report on what
    that frame showed, not on what came after."""
    masks = cam.masks.get(box.frame_index)
    stirs = box.motion if box.foot_motion is None else box.foot_motion
    if stirs is None or masks is None or not masks.judged:
        return False
    box_moves = box.motion is not None and box.motion >= OWN_MOTION
    if stirs >= OWN_MOTION or (box_moves and not _standing(history, box)):
        return False  # it moves (passers-by over the top of a box that stands do not count)
    feet = masks.to_picture(foot_band(box.xyxy))
    share = cam.foreground.foreign_share(masks, feet, history.cover, OLDER_BY_S)
    if share is None:  # too little foreground at its feet to tell whose: not carried
        return cam.foreground.running  # (a sign's pole under a small phantom's feet)
    if share >= OLDER_SHARE:
        return True
    picture = cam.pictures[box.frame_index].pixels  # kept with the masks
    ratios = (cam.foreground.ghost_ratio(r, picture) for r in (masks.to_picture(box.xyxy), feet))
    return any(r is not None and r < GHOST_RATIO for r in ratios)  # the feet alone, too


def _cut(cam: _Camera, first: int, last: int) -> bool:
    """The picture was cut after frame ``first`` and by frame ``last``."""
    return any(first < c <= last for c in cam.cuts)


def _slot(pts_s: float) -> int:
    """The :data:`COHERENCE_EVERY_S` slot of a pts (a track is measured once per slot)."""
    return math.floor(pts_s / COHERENCE_EVERY_S + 1e-6)


def _spectrum(cam: _Camera, frame_index: int) -> npt.NDArray[np.complex64]:
    """A held picture's spectrum, computed once."""
    found = cam.spectra.get(frame_index)
    if found is None:
        found = cam.spectra[frame_index] = spectrum(cam.pictures[frame_index].pixels)
    return found


def _refused(tracks: TrackFrame, reason: str) -> Finding:
    """A disagreeing finding on tracks the verifier cannot check at all."""
    return Finding(
        camera_id=tracks.camera_id, frame_index=tracks.frame_index, agree=False, reasons=(reason,)
    )


class Verifier:
    """Checks the worker's tracks and the scene's liveness, camera by camera.

    See the module docstring for the order in which the two steps must be fed.
    """

    def __init__(self, config: VerifierConfig, watch: Watch | None = None) -> None:
        """``watch``: the zones and classes the policies name (None: everything, strictest)."""
        self._config = config
        self._watch = watch or Watch.everything()
        self._box = WellFormedBox()
        self._checks: tuple[TrackCheck, ...] = default_track_checks(config, self._watch.classes)
        self._support = ForegroundSupport(config.phantom_seconds, config.min_support)
        self._groups = ClassGroups(config.class_groups)
        self._persons = self._groups.members("person")
        self._cameras: dict[str, _Camera] = {}
        self.disagreements: Counter[str] = Counter()
        """Findings that disagreed, per check name (a finding counts once per check)."""

    def stats(self) -> VerifierStats:
        """The amount of state held, for health monitoring and memory-bound tests."""
        cams = self._cameras.values()
        return VerifierStats(
            cameras=len(self._cameras),
            tracks=sum(len(c.tracks) for c in cams),
            observations=sum(len(h) for c in cams for h in c.tracks.values()),
            frame_records=sum(len(c.records) for c in cams),
            digests=sum(c.liveness.digests_held for c in cams),
        )

    def observe_frame(
        self,
        camera_id: str,
        frame_index: int,
        pts_s: float,
        thumbnail: npt.NDArray[np.uint8] | None,
        gop_index: int = 0,
        picture: ScenePicture | None = None,
    ) -> None:
        """Step 1: look at frame ``frame_index``'s picture (a 2-D uint8 grey thumbnail, and
        optionally the larger grey picture the background model watches)."""
        if frame_index < 0 or not math.isfinite(pts_s):
            raise FrameStampError(
                f"expected a frame index >= 0 and a finite pts, got {frame_index} and {pts_s}"
            )
        thumb = None if thumbnail is None else validate_thumbnail(thumbnail)
        cam = self._cameras.get(camera_id)
        if cam is None:
            cam = self._cameras[camera_id] = self._new_camera(camera_id, pts_s)
        if cam.last_observed is not None and frame_index <= cam.last_observed:
            raise RuntimeError(
                f"camera {camera_id!r}: expected a frame after {cam.last_observed}, "
                f"got frame {frame_index}"
            )
        cam.last_observed = frame_index
        if thumb is not None:
            reason = cam.liveness.observe(frame_index, pts_s, thumb)
            cam.picture_pts, cam.picture_scene = pts_s, () if reason is None else (reason,)
        blind = None
        if picture is not None:
            blind = self._observe_picture(cam, frame_index, pts_s, picture)
        record = _FrameRecord(pts_s, self._scene_now(cam, pts_s), gop_index, blind)
        self._record(cam, frame_index, record)

    def _new_camera(self, camera_id: str, pts_s: float) -> _Camera:
        c = self._config
        evasion = UnexplainedForeground(
            self._watch.zones_for(camera_id), c.evasion_seconds, c.min_person_height
        )
        liveness = SceneLiveness(c.frozen_seconds, c.frozen_mad_threshold)
        drift = CameraDrift(c.drift, c.class_groups) if c.drift.enabled else None
        zones = self._watch.zones_for(camera_id)
        return _Camera(
            liveness=liveness,
            evasion=evasion,
            vanished=VanishedTracks(zones, c.evasion_seconds, c.min_support),
            stayed=StayedTracks(zones, c.evasion_seconds, self._groups.key),
            renamed=Renamings(self._groups.key),
            first_pts=pts_s,
            drift=drift,
        )

    @staticmethod
    def _observe_picture(
        cam: _Camera, frame_index: int, pts_s: float, picture: ScenePicture
    ) -> str | None:
        """Feed the background model; keep the frame's masks for :meth:`check`. Returns why
        the camera is blind to the verifier now (:mod:`.blind`), or None."""
        if cam.picture_at is not None and pts_s <= cam.picture_at:
            return None  # a pts that does not advance: no motion to measure on this frame
        cam.picture_at = pts_s
        masks = cam.foreground.observe(pts_s, picture)
        if not masks.judged:
            cam.evasion.reset()
            cam.vanished.reset()
        if masks.cut:
            cam.cuts.append(frame_index)
        cam.masks[frame_index] = masks
        still = masks.judged or (
            not masks.cut and float(masks.motion().mean()) <= CAMERA_CHECK_FRACTION
        )
        cam.pictures[frame_index] = _Picture(
            picture.pixels, picture.stride, still, picture.frame_width, picture.frame_height
        )
        cam.mask_order.append(frame_index)
        while len(cam.mask_order) > MASK_RECORDS:
            gone = cam.mask_order.popleft()
            del cam.masks[gone]
            del cam.pictures[gone]
            cam.spectra.pop(gone, None)
        if len(cam.shifts) > SHIFT_RECORDS:
            cam.shifts.clear()
        return cam.blindness.observe(pts_s, masks.judged, masks.note)

    def stamp(self, camera_id: str, frame_index: int) -> FrameStamp | None:
        """Ingest's stamp of an observed frame (its pts and GOP); None if not observed/held."""
        cam = self._cameras.get(camera_id)
        record = None if cam is None else cam.records.get(frame_index)
        if record is None:
            return None
        return FrameStamp(
            camera_id=camera_id,
            frame_index=frame_index,
            gop_index=record.gop_index,
            pts_s=record.pts_s,
        )

    def repeats(self, camera_id: str, frame_index: int) -> bool:
        """True when tracks for ``frame_index`` would not come after the last ones checked
        (a duplicate or a reorder: the worker's doing; :meth:`check` disagrees with them)."""
        cam = self._cameras.get(camera_id)
        last = None if cam is None else cam.last_checked
        return last is not None and frame_index <= last

    def forget_camera(self, camera_id: str) -> None:
        """Drop everything held for ``camera_id`` (its ingest restarted: a new stream)."""
        self._cameras.pop(camera_id, None)

    def _scene_now(self, cam: _Camera, pts_s: float) -> tuple[str, ...]:
        since = cam.first_pts if cam.picture_pts is None else cam.picture_pts
        blind = pts_s - since
        if blind <= self._config.frozen_seconds:
            return cam.picture_scene
        return (*cam.picture_scene, f"no picture seen for {blind:.1f} s; scene liveness unchecked")

    @staticmethod
    def _record(cam: _Camera, frame_index: int, record: _FrameRecord) -> None:
        cam.records[frame_index] = record
        cam.order.append(frame_index)
        while len(cam.order) > FRAME_RECORDS:
            del cam.records[cam.order.popleft()]

    def check(self, tracks: TrackFrame) -> Finding:
        """Step 2: the verifier's finding on the worker's tracks for one frame."""
        cam = self._cameras.get(tracks.camera_id)
        if cam is None:
            self.disagreements["unobserved"] += 1
            return _refused(
                tracks,
                f"camera {tracks.camera_id!r}: expected an observed camera, found none; "
                "the verifier vouches only for pictures it saw",
            )
        if cam.last_checked is not None and tracks.frame_index <= cam.last_checked:
            self.disagreements["order"] += 1
            return _refused(
                tracks,
                f"camera {tracks.camera_id!r}: expected tracks for a frame after "
                f"{cam.last_checked}, got frame {tracks.frame_index} (repeated or out of "
                "order: the worker's doing)",
            )
        previous, cam.last_checked = cam.last_checked, tracks.frame_index
        scene, pts_s, flagged = self._scene_for(cam, tracks)
        masks = cam.masks.get(tracks.frame_index)
        any_meter = BoxMeter(masks) if masks is not None else None
        meter = any_meter if masks is not None and masks.judged else None
        per_track, names, vouched, measured, jumped = self._check_tracks(
            cam, tracks.frame_index, pts_s, tracks, any_meter
        )
        self._renamed(cam, previous, tracks, pts_s, per_track, names)
        self._end_carrying(cam, tracks, meter, per_track)
        reasons = list(scene)
        for name, found in self._scene_checks(cam, previous, tracks, meter, pts_s):
            reasons += found
            flagged |= {name} if found else set()
        flagged |= {n for ns in names.values() for n in ns}
        self.disagreements.update(flagged)
        if per_track:
            listed = "; ".join(f"track {tid} ({', '.join(names[tid])})" for tid in per_track)
            reasons.append(
                f"{len(per_track)} of {len(tracks.objects)} tracked object(s) disagree: {listed}"
            )
        return Finding(
            camera_id=tracks.camera_id,
            frame_index=tracks.frame_index,
            agree=not reasons,
            reasons=tuple(reasons),
            track_reasons={tid: tuple(r) for tid, r in per_track.items()},
            vouched=tuple(t for t in vouched if t not in per_track),
            measured=tuple(measured),
            jumped=tuple(jumped),
        )

    def _scene_checks(
        self,
        cam: _Camera,
        previous: int | None,
        tracks: TrackFrame,
        meter: BoxMeter | None,
        pts_s: float,
    ) -> list[tuple[str, list[str]]]:
        """The checks on the zones rather than on one track, each with its reasons: evasion
        and vanished on judged frames (and the scale evasion learns), stayed and drift on
        every frame; then the camera's tracks unseen for too long are forgotten."""
        out: list[tuple[str, list[str]]] = []
        if meter is not None:
            self._learn_scale(cam, tracks, meter.masks)
            boxes = [o.xyxy for o in tracks.objects if all(map(math.isfinite, o.xyxy))]
            out.append(("evasion", list(cam.evasion.observe(meter.masks, boxes))))
            out.append(("vanished", self._vanished(cam, previous, tracks, meter, boxes, pts_s)))
        out.append(("stayed", self._stayed(cam, previous, tracks, pts_s)))
        self._forget(cam, tracks.frame_index)
        out.append(("drift", self._drift(cam, previous, pts_s, tracks)))
        return out

    def _end_carrying(
        self,
        cam: _Camera,
        tracks: TrackFrame,
        meter: BoxMeter | None,
        per_track: dict[int, list[str]],
    ) -> None:
        """ADR 0043: any reason on a track ends its carrying, and so does losing the
        foreground where a carried track the worker left out was last reported."""
        self._left_out(cam, tracks, meter)
        for tid in per_track:
            if (history := cam.tracks.get(tid)) is not None:
                history.carried = False

    def _left_out(self, cam: _Camera, tracks: TrackFrame, meter: BoxMeter | None) -> None:
        """ADR 0043: a carried track the worker left out of this frame stays carried only
        while the place it was last reported still holds foreground, under the box and at its
        feet (the object is still there, hidden by the detector); on a frame the model could
        not judge, it does not."""
        reported = {o.track_id for o in tracks.objects}
        for tid, history in cam.tracks.items():
            last = history.last
            if not history.carried or tid in reported or last is None:
                continue
            if meter is None:
                history.carried = False  # an unjudged frame: nobody looked
                continue
            measured = meter.support(last.xyxy)
            if measured is None:
                continue  # covered by another object's box: as it was
            there = dataclasses.replace(last, support=measured[0], foot=meter.foot(last.xyxy))
            history.carried = self._support.holds(there) is not False

    @staticmethod
    def _renamed(
        cam: _Camera,
        previous: int | None,
        tracks: TrackFrame,
        pts_s: float,
        per_track: dict[int, list[str]],
        names: dict[int, list[str]],
    ) -> None:
        """Add a reason to each track the worker renamed too often
        (:mod:`kontur.verifier.renamed`); a cut since the previous frame checked starts afresh."""
        if previous is not None and _cut(cam, previous, tracks.frame_index):
            cam.renamed.reset()
        boxes = [o for o in tracks.objects if well_formed(o.xyxy)]
        for tid, reason in cam.renamed.observe(boxes, pts_s).items():
            per_track.setdefault(tid, []).append(reason)
            names.setdefault(tid, []).append("renamed")

    def _vanished(
        self,
        cam: _Camera,
        previous: int | None,
        tracks: TrackFrame,
        meter: BoxMeter,
        boxes: list[tuple[float, float, float, float]],
        pts_s: float,
    ) -> list[str]:
        """Ghosts for the watched tracks of the previous frame checked that this one lacks
        (:mod:`kontur.verifier.vanished`), followed on this judged frame; the zones' reasons."""
        here = {o.track_id for o in tracks.objects}
        gone, cam.reported = cam.reported - here, here
        if previous is not None:
            for tid in gone:
                history = cam.tracks.get(tid)
                last = None if history is None else history.last
                if history is None or last is None or last.frame_index != previous:
                    continue
                if self._groups.watched(last.label, self._watch.classes):
                    held = history.since(last.pts_s - SUPPORT_S)  # ends with ``last``
                    fits = [b.support for b in held if b.support is not None]
                    cam.vanished.lost(tid, last, sum(fits) / len(fits) if fits else 0.0)
        return cam.vanished.observe(meter, boxes, pts_s)

    def _stayed(
        self, cam: _Camera, previous: int | None, tracks: TrackFrame, pts_s: float
    ) -> list[str]:
        """Patches of the watched tracks of the previous frame checked that this one lacks,
        taken where the detector was last sure of them (:mod:`kontur.verifier.stayed`),
        followed on this frame's picture; the zones' reasons. A cut drops them all."""
        here = {o.track_id for o in tracks.objects}
        before, cam.present = cam.present, here
        now = cam.pictures.get(tracks.frame_index)
        if previous is None or now is None or _cut(cam, previous, tracks.frame_index):
            cam.stayed.reset()
            return []
        watched = functools.partial(self._groups.watched, classes=self._watch.classes)
        for tid in before - here:
            history = cam.tracks.get(tid)
            boxes = [] if history is None else list(history)
            run = settled_run(boxes, self._groups, watched) if boxes else None
            if run is None or boxes[-1].pts_s - run[-1].pts_s > SURE_RECENT_S:
                continue  # nothing it was sure of lately: a detector's low guess can blink out
            then = cam.pictures.get(run[-1].frame_index)
            if then is None or then.stride != now.stride:
                continue  # its picture is no longer held
            if _cut(cam, run[-1].frame_index, tracks.frame_index):
                continue
            others = frozenset(before - {tid})
            fg = _object_pixels(cam, run[-1], then)
            cam.stayed.lost(tid, run, then.view, boxes[-1].pts_s, others, fg)
        reported = {
            o.track_id: (o.xyxy, o.class_name)
            for o in tracks.objects
            if all(map(math.isfinite, o.xyxy))
        }
        return cam.stayed.observe(now.view, reported, pts_s)

    @staticmethod
    def _drift(cam: _Camera, previous: int | None, pts_s: float, tracks: TrackFrame) -> list[str]:
        """The camera's open drift alarm, after counting this frame's objects (a cut since the
        previous frame checked starts the learning afresh: another scene)."""
        if cam.drift is None:
            return []
        if previous is not None and _cut(cam, previous, tracks.frame_index):
            cam.drift.reset()
        alarm = cam.drift.observe(pts_s, ((o.track_id, o.class_name) for o in tracks.objects))
        return [] if alarm is None else [alarm]

    @staticmethod
    def _scene_for(cam: _Camera, tracks: TrackFrame) -> tuple[tuple[str, ...], float, set[str]]:
        """The scene reasons recorded for the frame, the pts to use for its tracks, and the
        names of the checks those reasons come from."""
        record = cam.records.get(tracks.frame_index)
        k = tracks.frame_index
        if record is None:
            held = f"{cam.order[0]}..{cam.order[-1]}" if cam.order else "none"
            return (
                (
                    f"frame {k}: expected a frame the verifier observed (held {held}), found "
                    "none; scene liveness unchecked",
                ),
                tracks.pts_s,
                {"unobserved"},
            )
        names = {"liveness"} if record.scene else set()
        scene = record.scene
        if record.blind is not None:
            scene, names = (*scene, record.blind), names | {"blind"}
        if math.isclose(record.pts_s, tracks.pts_s, rel_tol=0.0, abs_tol=PTS_TOLERANCE_S):
            return scene, record.pts_s, names
        stamp = (
            f"frame {k}: tracks stamped pts {tracks.pts_s:.6f} s, expected {record.pts_s:.6f} s "
            "as ingest saw it"
        )
        return (*scene, stamp), record.pts_s, names | {"stamp"}

    def _check_tracks(
        self,
        cam: _Camera,
        frame_index: int,
        pts_s: float,
        tracks: TrackFrame,
        meter: BoxMeter | None,
    ) -> tuple[dict[int, list[str]], dict[int, list[str]], list[int], list[int], list[int]]:
        """Run every track check; returns reasons and check names keyed by track id, the
        tracks the verifier's own pixels carry (ADR 0043), those it measured (ADR 0044), and
        those whose box jumped (ADR 0053)."""
        reasons: dict[int, list[str]] = {}
        names: dict[int, list[str]] = {}
        vouched: list[int] = []
        measured: list[int] = []
        jumped: list[int] = []
        seen: set[int] = set()
        own = self._own_meters(cam, meter, tracks)
        judged = meter is not None and meter.masks.judged
        alone = _Alone(tracks.objects)
        for obj in tracks.objects:
            tid = obj.track_id
            if tid in seen:
                reasons.setdefault(tid, []).append(
                    f"track {tid}: reported more than once in frame {frame_index}, expected once"
                )
                names.setdefault(tid, []).append("duplicate")
                continue
            seen.add(tid)
            mine = own.get(self._groups.key(obj.class_name), meter)
            box = self._stature(cam, self._observed(cam, obj, frame_index, pts_s, mine), meter)
            found, carried, looked, jumps = self._check_one(cam, tid, box, judged, alone)
            for name, reason in found:
                reasons.setdefault(tid, []).append(reason)
                names.setdefault(tid, []).append(name)
            for flag, out in ((carried, vouched), (looked, measured), (jumps, jumped)):
                if flag:
                    out.append(tid)
        return reasons, names, vouched, measured, jumped

    def _stature(self, cam: _Camera, box: ObservedBox, meter: BoxMeter | None) -> ObservedBox:
        """``box`` with its height over the camera's modelled person height at its foot point
        (:class:`~kontur.verifier.checks.PersonStature`): a person-group box, measured on a
        judged frame, wholly inside the picture, once the perspective model is fitted."""
        if meter is None or box.support is None or box.clipped or box.label not in self._persons:
            return box
        fh = meter.masks.frame_height
        expected = cam.evasion.scale.height_at(box.xyxy[3] / fh)
        if expected is None:
            return box
        return box.scored(stature=box.height / fh / expected)

    def _own_meters(
        self, cam: _Camera, meter: BoxMeter | None, tracks: TrackFrame
    ) -> dict[str, BoxMeter]:
        """Per watched class group, a meter that leaves out the pixels of the other groups'
        boxes the verifier's own foreground carries (:class:`~kontur.verifier.foreground.
        BoxMeter`'s cover: a person's box is measured on its own pixels, not a passing car's).
        A cover box must hold foreground now and belong to a track the verifier carried (it
        saw it move; ADR 0044, the fifth review: a decoy box over a still bag would hide a
        phantom from being measured). Only on judged frames, only for groups that have such
        cover; others use ``meter``."""
        key = self._groups.key
        groups = {key(o.class_name): o.class_name for o in tracks.objects}
        if meter is None or not meter.masks.judged or len(groups) < 2:
            return {}  # the usual case at a crowd: one group, nothing of another's to leave out
        judged = {g for g, c in groups.items() if self._groups.watched(c, self._watch.classes)}
        m = meter.masks
        limit = MAX_COVER * m.frame_width * m.frame_height
        carried: dict[str, list[tuple[float, float, float, float]]] = {}
        for o in tracks.objects:
            g, (x1, y1, x2, y2) = key(o.class_name), o.xyxy
            if judged <= {g} or not all(map(math.isfinite, o.xyxy)):
                continue  # no watched group but its own to cover, or malformed
            if not (x2 > x1 and y2 > y1 and (x2 - x1) * (y2 - y1) <= limit):
                continue  # malformed, or an umbrella over the scene
            history = cam.tracks.get(o.track_id)
            if history is None or not history.carried:
                continue  # not seen to move as an object of its own: no cover
            fit = meter.support(o.xyxy)
            if fit is not None and fit[0] >= self._config.min_support:
                carried.setdefault(g, []).append(o.xyxy)
        out = {}
        for g in judged:
            cover = tuple(b for k, boxes in carried.items() if k != g for b in boxes)
            if cover:
                out[g] = BoxMeter(m, cover)
        return out

    def _learn_scale(self, cam: _Camera, tracks: TrackFrame, masks: SceneMasks) -> None:
        """Teach the evasion check how tall people are, from boxes the foreground supports."""
        fh = masks.frame_height
        for obj in tracks.objects:
            history = cam.tracks.get(obj.track_id)
            box = None if history is None else history.last
            if box is None or box.frame_index != tracks.frame_index or box.support is None:
                continue  # not recorded this frame: malformed, or reported twice
            if box.support >= self._config.min_support and obj.class_name in self._persons:
                cam.evasion.scale.add(box.xyxy[3] / fh, box.height / fh)

    @staticmethod
    def _observed(
        cam: _Camera, obj: TrackedObject, frame_index: int, pts_s: float, meter: BoxMeter | None
    ) -> ObservedBox:
        """``obj`` as an observation, measured against the frame's masks: its support and
        motion when the model judged the frame, its motion alone when not (what moved in the
        last ~0.1 s needs no background: the frozen-box check then still sees a moving
        camera's pictures change under a box that does not)."""
        masks = meter.masks if meter is not None else cam.masks.get(frame_index)
        if masks is None or not well_formed(obj.xyxy):
            return ObservedBox.from_object(obj, frame_index, pts_s)  # nothing to measure
        x1, y1, x2, y2 = obj.xyxy
        clipped = (
            x1 <= BORDER_PX
            or y1 <= BORDER_PX
            or x2 >= masks.frame_width - BORDER_PX
            or y2 >= masks.frame_height - BORDER_PX
        )
        outside = 1.0 - _inside_area(obj.xyxy, masks.frame_width, masks.frame_height)
        support = meter.support(obj.xyxy) if meter is not None else None
        fit, moved = (None, None) if support is None else support
        if support is not None and not masks.judged:
            fit = None  # an unjudged frame: its motion alone
        elif not outside > 0:
            outside = 0.0
        foot = stirs = None
        covered = meter is not None and meter.covers(obj.xyxy)  # too covered to measure too
        if meter is not None and fit is not None:
            foot, stirs = meter.feet(obj.xyxy)
        return ObservedBox(
            frame_index, pts_s, obj.xyxy, obj.class_id, obj.confidence, obj.class_name,
            fit, moved, clipped, outside, foot=foot, foot_motion=stirs, covered=covered,
            free=meter.free if covered and meter is not None else None,
        )  # fmt: skip

    def _check_one(
        self,
        cam: _Camera,
        tid: int,
        box: ObservedBox,
        judged: bool,
        alone: _Alone,
    ) -> tuple[list[tuple[str, str]], bool, bool, bool]:
        """(check name, reason) for each check ``box`` fails, whether the verifier's pixels
        carry it (:meth:`~kontur.verifier.checks.ForegroundSupport.carries`; a reason ends
        it; on a ``judged`` frame where the box, or where it stands, was not measured,
        covered by another object's box, it is not carried now and stays as it was; only a
        box ``alone`` on the frame is vouched for anew), whether it was measured (ADR
        0044: judged and not covered, for ``phantom_seconds`` running), and whether it
        jumped (:func:`_jumped`, a watched track's only); records it when well formed.
        ``judged``: whether the background model judged the frame."""
        history = cam.tracks.get(tid)
        last = None if history is None else history.last
        if last is not None and _cut(cam, last.frame_index, box.frame_index):
            history = None  # the picture was cut since: whatever the worker says, a new track
        if history is None:
            history = TrackHistory()
        malformed = self._box.check(tid, history, box)
        if malformed is not None:
            history.carried, history.measured_since = False, None
            return [(self._box.name, malformed)], False, False, False
        watched = self._watched(box)
        if watched:
            coherence = self._coherence(cam, history, box)
            if coherence is not None:  # None: the box's own, as measured
                box = box.scored(coherence=coherence)
        found = [(c.name, r) for c in self._checks if (r := c.check(tid, history, box))]
        jumps = watched and _jumped(cam, history, box)
        carried = not found and self._carries(cam, (tid, history), box, alone)
        _extend_cover(cam, history, box, carried)
        if carried and _parked(cam, history, box):
            carried = False  # standing on foreground that was there before it came
            history.stood = box.xyxy
        holds = self._support.holds(box) if judged else None
        if found or not judged or holds is not None:
            history.carried = carried
        if not history.carried:
            history.still_since, history.own, history.cover = None, None, []
        looked = self._looked(history, box, holds) or carried  # it looked, if it carried
        history.append(box)
        cam.tracks[tid] = history
        cam.tracks.move_to_end(tid)
        return found, carried, looked, jumps

    def _carries(
        self,
        cam: _Camera,
        track: tuple[int, TrackHistory],
        box: ObservedBox,
        alone: _Alone,
    ) -> bool:
        """The verifier's pixels carry the track at ``box`` (ADR 0043): its support carries
        it; a new vouch only for a box ``alone`` on the frame, and not where a carry of the
        track ended because it stood on what was not its own (``history.stood``: until it
        has moved :data:`AWAY` from there, ADR 0050: a stream through a standing phantom
        would vouch for it again at once, and one that jumps to and fro about it at the next
        jump); and it showed motion of its own within :data:`STILL_CARRY_S`
        (:func:`_still_too_long`; for a class no policy watches,
        :func:`_still_too_long_unwatched`)."""
        tid, history = track
        if not self._support.carries(history, box):
            return False
        if not history.carried:
            if not alone(tid):
                return False  # a new vouch, on foreground another box claims too
            if history.stood is not None and moved(history.stood, box.xyxy, (0.0, 0.0)) < AWAY:
                return False  # not again where it stood, until it has walked away
            history.stood = None
        if self._groups.watched(box.label, self._watch.classes):
            still = _still_too_long(cam, history, box)
        else:  # what no policy acts on is only a cover: ADR 0044 as it was
            still = _still_too_long_unwatched(history, box)
        if still:
            history.stood = box.xyxy  # carried by still foreground alone: a bag, not a person
            return False
        return True

    def _looked(self, history: TrackHistory, box: ObservedBox, holds: bool | None) -> bool:
        """ADR 0044: ``box`` was measured on a judged frame (``holds`` not None), and so was
        every box of the track for at least ``phantom_seconds`` before it, the time a vouch
        needs; a box not measured starts that time again."""
        if holds is None:
            history.measured_since = None
            return False
        if history.measured_since is None:
            history.measured_since = box.pts_s
        return box.pts_s - history.measured_since >= self._config.phantom_seconds - 1e-6

    def _watched(self, box: ObservedBox) -> bool:
        """``box`` is of a watched class group: content coherence is measured, and jumps
        judged, for those only (no policy acts on the others)."""
        return self._groups.watched(box.label, self._watch.classes)

    @staticmethod
    def _coherence(cam: _Camera, history: TrackHistory, box: ObservedBox) -> float | None:
        """The content-coherence score of ``box`` against the newest baseline of
        :data:`~kontur.verifier.coherence.BASELINES_S` it moved far enough from."""
        now = cam.pictures.get(box.frame_index)
        last = history.last
        if now is None or (last is not None and _slot(last.pts_s) == _slot(box.pts_s)):
            return None  # measured once per COHERENCE_EVERY_S: the cost stays per second
        tried: set[int] = set()
        past = list(history)
        for k in _aged(past, box.pts_s, BASELINES_S):
            base = None if k is None else past[k]
            then = None if base is None else cam.pictures.get(base.frame_index)
            if base is None or then is None or then.stride != now.stride:
                return None  # older baselines are older still, or gone
            if base.frame_index in tried:
                continue
            tried.add(base.frame_index)
            shift = _shift(cam, base.frame_index, box.frame_index)
            s = float(now.stride)
            if moved(base.xyxy, box.xyxy, (shift[0] * s, shift[1] * s)) < MIN_MOVE:
                continue
            baseline = Baseline(then.pixels, then.stride, base.xyxy)
            return measure(baseline, now.pixels, box.xyxy, shift)
        return None

    @staticmethod
    def _forget(cam: _Camera, frame_index: int) -> None:
        """Drop tracks unseen for too long, and the least recently seen beyond the cap."""
        tracks = cam.tracks
        while tracks:
            tid, history = next(iter(tracks.items()))
            last = history.last
            stale = last is None or frame_index - last.frame_index > FORGET_AFTER_FRAMES
            if not stale and len(tracks) <= MAX_TRACKS:
                break
            del tracks[tid]
