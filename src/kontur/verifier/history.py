"""What the verifier remembers about one track: a bounded history of observed boxes.

The track checks (:mod:`kontur.verifier.checks`) compare a track's newest box with what came
before it. They read a :class:`TrackHistory` and never change it; only
:class:`~kontur.verifier.Verifier` appends to it, after the checks ran (DESIGN.md §1,
block 4).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable, Iterator, KeysView
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kontur.geometry import well_formed
from kontur.verifier.coherence import Baseline
from kontur.verifier.foreground import Rows
from kontur.wire.messages import TrackedObject

__all__ = ["COVER_STAGES", "HISTORY_LENGTH", "ObservedBox", "TrackHistory", "extend_cover"]

#: Observations kept per track; older ones fall off (memory stays bounded on long tracks).
HISTORY_LENGTH = 64
#: Nested rectangles kept by :func:`extend_cover`; beyond it the two closest in time merge
#: (the inner one's pixels count as covered only since the outer one's: the strict side).
COVER_STAGES = 8
#: A box is taken a picture pixel wider each side for cover: a box that jitters by a pixel
#: does not break it.
COVER_SLACK = 1


def extend_cover(
    cover: list[tuple[Rows, float]], rows: Rows, pts_s: float
) -> list[tuple[Rows, float]]:
    """Since when a track's boxes covered which picture pixels without a break (ADR 0048),
    after its box ``rows`` (``(y0, x0, y1, x1)``) at ``pts_s``: nested rectangles with the pts
    since which each was covered, newest (largest) first. A pixel's time is that of the
    innermost rectangle holding it. The intersection of rectangles is a rectangle, so each
    step costs O(stages), however long the track."""
    y0, x0 = rows[0] - COVER_SLACK, rows[1] - COVER_SLACK
    y1, x1 = rows[2] + COVER_SLACK, rows[3] + COVER_SLACK
    if cover and cover[0][0] == (y0, x0, y1, x1):
        return cover  # the same pixels as the newest stage: nothing changes
    out: list[tuple[Rows, float]] = [((y0, x0, y1, x1), pts_s)]
    for (a0, b0, a1, b1), since in cover:
        r = (max(a0, y0), max(b0, x0), min(a1, y1), min(b1, x1))
        if r[0] >= r[2] or r[1] >= r[3]:
            break  # the older rectangles lie inside this one: empty too
        if r == out[-1][0]:
            out[-1] = (r, since)  # the same pixels, covered since earlier
        else:
            out.append((r, since))
    if len(out) > COVER_STAGES:  # merge the two stages closest in time, the inner on a tie
        k = 1
        for j in range(2, len(out)):
            if out[j - 1][1] - out[j][1] <= out[k - 1][1] - out[k][1]:
                k = j
        del out[k]
    return out


@dataclass(frozen=True, slots=True)
class ObservedBox:
    """One track's box in one frame, as the worker reported it, with the frame's pts.

    ``support`` and ``motion`` are the verifier's own measure of the pixels under the box
    (:meth:`kontur.verifier.foreground.BoxMeter.support`), None when the frame was not judged;
    ``clipped`` says the box touches the frame's border (the object is partly outside).
    ``coherence`` is filled in by the verifier once the track's history is known.
    """

    frame_index: int
    pts_s: float
    xyxy: tuple[float, float, float, float]
    class_id: int
    confidence: float
    class_name: str = ""
    support: float | None = None
    motion: float | None = None
    clipped: bool = False
    outside: float = 0.0
    """The share of the box's area outside the picture the verifier saw (0 when not
    measured)."""
    stature: float | None = None
    """The box's height over the height the verifier's perspective model
    (:class:`kontur.verifier.evasion.PersonScale`) expects of a person standing at its foot
    point; None when the model is not fitted, the frame not judged or the box clipped."""
    coherence: float | None = None
    """The verifier's content-coherence score of this step
    (:func:`kontur.verifier.coherence.measure`): negative when the box left its old content
    behind; None when the step was not judged."""
    foot: float | None = None
    """The foreground density where the box's object stands, its lowest rows around its foot
    point (:meth:`kontur.verifier.foreground.BoxMeter.foot`); None when the frame was not
    judged or the box not measured."""
    foot_motion: float | None = None
    """``motion`` over those rows only (:meth:`kontur.verifier.foreground.BoxMeter.feet`):
    whether the box moves where it stands; None as ``foot``."""
    covered: bool = False
    """Another object's box lay over this one's pixels when it was measured, and they were
    left out (:meth:`kontur.verifier.foreground.BoxMeter.covers`: a car passing in front)."""
    free: npt.NDArray[np.bool_] | None = field(default=None, compare=False, repr=False)
    """When ``covered``: the picture's pixels the cover left free on its frame
    (:attr:`kontur.verifier.foreground.BoxMeter.free`, shared by the frame's boxes)."""

    @classmethod
    def from_object(
        cls,
        obj: TrackedObject,
        frame_index: int,
        pts_s: float,
        *,
        support: tuple[float, float] | None = None,
        clipped: bool = False,
    ) -> ObservedBox:
        """The box of ``obj`` as seen in frame ``frame_index`` at ``pts_s`` seconds."""
        fit, moved = (None, None) if support is None else support
        return cls(
            frame_index,
            pts_s,
            obj.xyxy,
            obj.class_id,
            obj.confidence,
            obj.class_name,
            fit,
            moved,
            clipped,
        )

    def scored(
        self, *, stature: float | None = None, coherence: float | None = None
    ) -> ObservedBox:
        """This box with its ``stature`` or ``coherence`` set (the verifier's scores, known
        once the track's history is): ``dataclasses.replace``, at half its cost."""
        return ObservedBox(
            self.frame_index, self.pts_s, self.xyxy, self.class_id, self.confidence,
            self.class_name, self.support, self.motion, self.clipped, self.outside,
            self.stature if stature is None else stature,
            self.coherence if coherence is None else coherence, self.foot, self.foot_motion,
            self.covered, self.free,
        )  # fmt: skip

    @property
    def label(self) -> str:
        """The class name, or the class id as text when the name is not known."""
        return self.class_name or str(self.class_id)

    @property
    def width(self) -> float:
        """x2 − x1 in pixels (negative for an inverted box)."""
        return self.xyxy[2] - self.xyxy[0]

    @property
    def height(self) -> float:
        """y2 − y1 in pixels (negative for an inverted box)."""
        return self.xyxy[3] - self.xyxy[1]

    @property
    def area(self) -> float:
        """width × height in square pixels."""
        x1, y1, x2, y2 = self.xyxy  # as width and height are (the properties cost more)
        return (x2 - x1) * (y2 - y1)

    @property
    def size(self) -> float:
        """The box's larger side in pixels: a person's height, a car's length."""
        x1, y1, x2, y2 = self.xyxy
        return max(x2 - x1, y2 - y1)

    @property
    def diagonal(self) -> float:
        """Length of the box's diagonal in pixels."""
        x1, y1, x2, y2 = self.xyxy
        return math.hypot(x2 - x1, y2 - y1)

    @property
    def centre(self) -> tuple[float, float]:
        """The box's centre (x, y) in pixels."""
        x1, y1, x2, y2 = self.xyxy
        return (x1 + x2) / 2.0, (y1 + y2) / 2.0

    def is_well_formed(self) -> bool:
        """True when the box is finite with a positive width, height and area
        (:func:`kontur.geometry.well_formed`)."""
        return well_formed(self.xyxy)

    def distance_to(self, other: ObservedBox) -> float:
        """Distance in pixels between this box's centre and ``other``'s."""
        x1, y1, x2, y2 = self.xyxy
        u1, v1, u2, v2 = other.xyxy  # the centres as ``centre`` computes them
        return math.hypot((x1 + x2) / 2.0 - (u1 + u2) / 2.0, (y1 + y2) / 2.0 - (v1 + v2) / 2.0)


class TrackHistory:
    """The last :data:`HISTORY_LENGTH` well-formed observations of one track, oldest first."""

    def __init__(self, maxlen: int = HISTORY_LENGTH) -> None:
        if maxlen < 1:
            raise ValueError(f"expected a history length of at least 1, got {maxlen}")
        self._boxes: deque[ObservedBox] = deque(maxlen=maxlen)
        self._names: Counter[str] = Counter()
        self.last: ObservedBox | None = None
        """The most recent observation, or None for a track not seen before (kept by
        :meth:`append`: the checks read it for every box)."""
        self.carried = False
        """The verifier's pixels carry the track (ADR 0043): it moved with foreground of its
        own, and every judged box since held foreground."""
        self.still_since: float | None = None
        """The pts at which the carried track last showed motion of its own (ADR 0044, 0050;
        its carry's first box at first); None while it is not carried."""
        self.own: Baseline | None = None
        """Its box, with its picture, when it last stood uncovered and held what it held at
        both look lags (ADR 0050: what it is compared with while a car is in front); None
        while not carried."""
        self.looked_at = -math.inf
        """The pts of the last look for motion of its own (ADR 0050)."""
        self.stood: tuple[float, float, float, float] | None = None
        """Where a carry of the track ended because it stood on what was not its own (no
        motion of its own, or foreground older than it, ADR 0050); None once it has moved
        away from there and been vouched for again."""
        self.measured_since: float | None = None
        """The pts from which every box of the track was measured on a judged frame (ADR
        0044); None while the last one was not."""
        self.cover: list[tuple[Rows, float]] = []
        """Since when its carried boxes covered which picture pixels (:func:`extend_cover`);
        empty while it is not carried (ADR 0048: a box that sat uncarried over a still object
        proves nothing)."""

    def __len__(self) -> int:
        return len(self._boxes)

    def __iter__(self) -> Iterator[ObservedBox]:
        return iter(self._boxes)

    def __reversed__(self) -> Iterator[ObservedBox]:
        return reversed(self._boxes)

    def labels(self) -> KeysView[str]:
        """The class labels held (a view: no copy)."""
        return self._names.keys()

    @property
    def full(self) -> bool:
        """As many observations as it keeps: the oldest ones are falling off."""
        return len(self._boxes) == self._boxes.maxlen

    def append(self, box: ObservedBox) -> None:
        """Record ``box``; its frame must come after the last one (else a caller's bug)."""
        last = self.last
        if last is not None and box.frame_index <= last.frame_index:
            raise RuntimeError(
                f"expected an observation after frame {last.frame_index}, got frame "
                f"{box.frame_index}"
            )
        if self.full:
            gone = self._boxes[0].label
            self._names[gone] -= 1
            if not self._names[gone]:
                del self._names[gone]
        self._boxes.append(box)
        self._names[box.label] += 1
        self.last = box

    def class_names(self) -> Counter[str]:
        """How many observations held carry each class label (kept as boxes come and go)."""
        return Counter(self._names)

    def since(self, pts_s: float) -> list[ObservedBox]:
        """The observations at or after ``pts_s``, oldest first."""
        out: list[ObservedBox] = []
        for box in reversed(self._boxes):
            if box.pts_s < pts_s:
                break
            out.append(box)
        out.reverse()
        return out

    def majority(self, key: Callable[[ObservedBox], str]) -> tuple[str, int] | None:
        """(key, count) of the most frequent ``key(box)`` held, first seen wins a tie; or None."""
        if not self._boxes:
            return None
        return Counter(key(b) for b in self._boxes).most_common(1)[0]

    def majority_class(self) -> tuple[int, int] | None:
        """(class_id, count) of the most frequent class held, first seen wins a tie; or None."""
        if not self._boxes:
            return None
        return Counter(b.class_id for b in self._boxes).most_common(1)[0]
