"""Unexplained person-sized foreground in a policy zone: possible evasion by suppression.

A compromised worker that leaves a real person out of its tracks (the evasion attack, the
paper's [21]) passes every track check: there is no track to check. The verifier's own
background model (:mod:`kontur.verifier.foreground`) still sees the person. Per analysed frame:

1. *unexplained* pixels are foreground pixels that no reported box covers (every box, of any
   class, widened by half a box each side and a quarter above and below, but none larger than
   :data:`MAX_COVER` of the frame: a class game is class stability's business), less thin
   lines (an edge or a pole shaken by the wind: an erosion by the four neighbours);
2. person-sized windows are tried at every position (on blocks of :data:`CELL` pixels), 0.4
   as wide as high, heights from ``min_person_height`` of the picture to :data:`MAX_HEIGHT`,
   or, once the camera's :class:`PersonScale` has learnt how tall a person is at each foot
   position (perspective, from person boxes its own foreground verified), the heights near
   that. A window *hits* when at least :data:`MIN_FILL` of it is unexplained foreground, at
   least :data:`MIN_MOTION` of it moved in the last ~0.1 s (a ghost of a parked car or of a
   person who left stands still), and each band beside it holds at most half as much
   foreground, explained or not (the edge of a car partly covered by its neighbours' boxes, or
   of any wide blob, is not a person);
3. hits are followed as blobs: a hit near where a blob was last seen (within
   :data:`FOLLOW_HEIGHTS_PER_S` of its heights per second) continues its streak. A zone whose
   polygon holds a blob followed for ``evasion_seconds`` (gaps of up to :data:`MAX_GAP_S`
   allowed, and hit in at least :data:`PERSIST` of the analysed frames since) gets a reason:
   "nothing there" is unverified there. Noise that hits here and there never builds a
   streak.

The reason is a scene reason of the finding. The gate treats it like any scene reason: no
critical ALLOW on that camera's frames while it lasts (ADR 0025 on what the gate still lacks).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kontur.verifier.foreground import SceneMasks
from kontur.verifier.watch import WatchedZone

__all__ = [
    "MAX_GAP_S",
    "MAX_HEIGHT",
    "MIN_FILL",
    "MIN_MOTION",
    "PersonScale",
    "UnexplainedForeground",
]

#: Tallest person window, as a fraction of the picture's height.
MAX_HEIGHT = 0.6
#: Window heights grow by this factor from the smallest to the tallest.
HEIGHT_STEP = 1.4
#: Person width / height.
ASPECT = 0.4
#: Fraction of a window that must be unexplained foreground...
MIN_FILL = 0.45
#: ... and fraction that must have moved in the last ~0.1 s.
MIN_MOTION = 0.15
#: Searches without a hit for this long break a zone's streak (seconds; one search in between
#: may miss).
MAX_GAP_S = 0.45
#: The windows are searched at most this often (seconds of pts; every other frame at 10 fps,
#: every fifth at 30): a person does not appear and vanish faster, and the search is the
#: verifier's largest cost per frame. Frames in between carry the last search's reasons.
SEARCH_EVERY_S = 0.15
#: A box larger than this fraction of the frame covers nothing: a worker must not hide the
#: people it left out under one huge box of some unwatched class.
MAX_COVER = 0.25
#: Windows are searched on blocks of CELL × CELL picture pixels (a quarter of the work).
CELL = 2
#: Hits per frame looked at beyond which the rest are ignored (bounds the CPU per frame).
MAX_HITS = 64


@dataclass(slots=True)
class _Streak:
    """One unexplained blob followed over frames: when first and last seen, and where."""

    since: float
    last: float
    x: float
    y: float
    h: float
    frames: int = 1
    """Analysed frames since the streak began..."""
    hits: int = 1
    """... and how many of them had a hit on the blob."""


#: A blob seen again within this many of its heights per second of pts continues its streak.
FOLLOW_HEIGHTS_PER_S = 3.0
#: A streak raises its reason only while its blob was hit in at least this share of the
#: analysed frames since it began: a walking person is a persistent blob, the fragments of a
#: partly hidden car or of a cloud's shadow come and go.
PERSIST = 0.65
#: Streaks followed per zone at most (bounds memory and time whatever the picture).
MAX_STREAKS = 16


#: Person observations remembered per camera for the perspective model.
SCALE_SAMPLES = 256
#: The model is used once it holds this many observations spread over this much of the
#: frame's height; until then every height from ``min_person_height`` up is tried.
SCALE_MIN_SAMPLES = 30
SCALE_MIN_SPREAD = 0.1
#: Once fitted, the line is refitted every this many new observations.
SCALE_REFIT = 64
#: Windows from this fraction to this multiple of the modelled height are tried.
SCALE_LOW, SCALE_HIGH = 0.6, 1.6


class PersonScale:
    """How tall a person is where the foot is: a line fitted to verified person boxes.

    Fed only boxes the verifier's own foreground supports (a worker cannot teach it a scale
    with boxes over empty ground); bounded, and clamped to ``[lo, MAX_HEIGHT]`` (windows from
    0.6 of that are tried; until it is fitted, every height from ``lo`` up).
    """

    def __init__(self, lo: float) -> None:
        self.lo = lo
        self._samples: deque[tuple[float, float]] = deque(maxlen=SCALE_SAMPLES)
        self._fit: tuple[float, float] | None = None
        self._fresh = 0

    def add(self, foot_y: float, height: float) -> None:
        """One verified person: foot y and height, both as fractions of the frame's height."""
        self._samples.append((foot_y, height))
        self._fresh += 1
        every = SCALE_MIN_SAMPLES if self._fit is None else SCALE_REFIT
        if self._fresh < every or len(self._samples) < SCALE_MIN_SAMPLES:
            return
        self._fresh = 0
        ys = [p[0] for p in self._samples]
        if max(ys) - min(ys) < SCALE_MIN_SPREAD:
            return
        n = len(ys)
        my = sum(ys) / n
        mh = sum(p[1] for p in self._samples) / n
        syy = sum((y - my) ** 2 for y in ys)
        syh = sum((y - my) * (h - mh) for y, h in self._samples)
        slope = syh / syy  # least squares; syy > 0 since the ys are spread
        self._fit = slope, mh - slope * my

    def height_at(self, foot_y: float) -> float | None:
        """The modelled person height at ``foot_y`` (fractions of the frame's height), or None
        while the model is not fitted or its line is not a perspective: a camera above the
        ground sees a person taller the lower their foot is in the picture, so a line that
        does not rise with ``foot_y`` was learnt from too few or too odd boxes to judge by."""
        if self._fit is None or self._fit[0] <= 0:
            return None
        slope, icept = self._fit
        return min(max(slope * foot_y + icept, self.lo), MAX_HEIGHT)

    def span(self) -> tuple[float, float]:
        """The lowest and highest person height to try anywhere (fractions of the frame)."""
        if self._fit is None:
            return self.lo, MAX_HEIGHT
        lo, hi = self.bounds(np.array([0.0, 1.0]))
        return float(lo.min()), float(hi.max())

    def bounds(self, foot_y: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], ...]:
        """(lowest, highest) person height to try at each foot y (fractions of the frame)."""
        if self._fit is None:
            return np.full_like(foot_y, self.lo), np.full_like(foot_y, MAX_HEIGHT)
        slope, icept = self._fit
        h = np.clip(slope * foot_y + icept, self.lo, MAX_HEIGHT)
        return h * SCALE_LOW, h * SCALE_HIGH


@dataclass(slots=True)
class UnexplainedForeground:
    """Per camera: streaks of unexplained person-sized moving foreground, per watched zone."""

    zones: tuple[WatchedZone, ...]
    evasion_seconds: float
    min_person_height: float
    _streaks: dict[str, list[_Streak]] = field(default_factory=dict)
    _searched: tuple[float, list[str]] | None = None
    """When the windows were last searched, and the reasons found then."""
    scale: PersonScale = field(init=False)

    def __post_init__(self) -> None:
        self.scale = PersonScale(self.min_person_height)

    def reset(self) -> None:
        """Forget every streak (the background was relearnt)."""
        self._streaks.clear()
        self._searched = None

    def observe(
        self, masks: SceneMasks, boxes: list[tuple[float, float, float, float]]
    ) -> list[str]:
        """One analysed frame's judged masks and every box reported for it; reasons per zone."""
        last = self._searched
        if last is not None and 0 <= masks.pts_s - last[0] < SEARCH_EVERY_S - 1e-6:
            return list(last[1])  # searched moments ago: the streaks stand as they were
        reasons = self._search(masks, boxes)
        self._searched = masks.pts_s, reasons
        return list(reasons)

    def _search(
        self, masks: SceneMasks, boxes: list[tuple[float, float, float, float]]
    ) -> list[str]:
        """Search the frame's windows and follow the streaks (every :data:`SEARCH_EVERY_S`)."""
        hits = self._hits(masks, boxes)
        fw, fh = masks.frame_width, masks.frame_height
        reasons = []
        for zone in self.zones:
            inside = [(x * fw, y * fh, h * fh) for x, y, h in hits if zone.contains(x, y)]
            streaks = self._follow(self._streaks.get(zone.zone_id, []), inside, masks.pts_s)
            self._streaks[zone.zone_id] = streaks
            now = masks.pts_s
            found = [
                k
                for k in streaks
                if k.last == now
                and now - k.since + 1e-6 >= self.evasion_seconds
                and k.hits >= PERSIST * k.frames
            ]
            longest = min(found, key=lambda k: k.since, default=None)
            if longest is not None:
                lasted = now - longest.since
                reasons.append(
                    f"zone {zone.zone_id}: person-sized foreground moving for {lasted:.1f} s "
                    f"with no track over it (foot at x={longest.x / fw:.2f}, "
                    f"y={longest.y / fh:.2f}, {longest.h / fh:.0%} of the frame high); "
                    "expected a track there: nothing-there is unverified (possible evasion)"
                )
        return reasons

    @staticmethod
    def _follow(
        streaks: list[_Streak], hits: list[tuple[float, float, float]], now: float
    ) -> list[_Streak]:
        """Continue each streak with the nearest hit close enough; new hits start streaks."""
        kept = [k for k in streaks if now - k.last <= MAX_GAP_S]
        free = list(hits)
        for k in kept:
            k.frames += 1
            reach = k.h * (0.5 + FOLLOW_HEIGHTS_PER_S * (now - k.last))
            near = [(math.hypot(x - k.x, y - k.y), i) for i, (x, y, _) in enumerate(free)]
            near = [d for d in near if d[0] <= reach]
            if not near:
                continue
            _, i = min(near)
            k.x, k.y, k.h = free.pop(i)
            k.last = now
            k.hits += 1
            free = [p for p in free if math.hypot(p[0] - k.x, p[1] - k.y) > k.h / 2]
        while free and len(kept) < MAX_STREAKS:
            x, y, h = free[0]  # hits come best first
            kept.append(_Streak(now, now, x, y, h))
            free = [p for p in free if math.hypot(p[0] - x, p[1] - y) > h / 2]
        return kept

    def _hits(
        self, masks: SceneMasks, boxes: list[tuple[float, float, float, float]]
    ) -> list[tuple[float, float, float]]:
        """Foot points (normalised x, y) and heights of windows that hit, at most MAX_HITS."""
        fg, moved = masks.foreground(), masks.motion()
        covered = np.zeros(fg.shape, bool)
        frame_area = masks.frame_width * masks.frame_height
        for x1, y1, x2, y2 in boxes:
            bw, bh = x2 - x1, y2 - y1
            if bw * bh > MAX_COVER * frame_area:
                continue  # an "umbrella" box over the zone explains nothing
            y0, x0, yb, xb = masks.to_picture((x1 - bw / 2, y1 - bh / 4, x2 + bw / 2, y2 + bh / 4))
            covered[y0:yb, x0:xb] = True
        solid = _eroded(fg)
        unexplained = solid & ~covered
        if not unexplained.any():
            return []
        pooled = tuple(_pooled(m) for m in (unexplained, moved & unexplained, solid))
        totals = int(pooled[0].sum()), int(pooled[1].sum())
        sums: tuple[npt.NDArray[np.int32], ...] | None = None
        cells = fg.shape[0] // CELL
        found: list[tuple[float, float, float]] = []
        lo, hi = self.scale.span()
        hc = max(2.0, lo * masks.frame_height / masks.stride / CELL)
        while hc <= hi * masks.frame_height / masks.stride / CELL and hc < cells:
            if len(found) >= MAX_HITS:
                break
            if _may_hit(round(hc), *totals):
                sums = sums or tuple(_integral(m) for m in pooled)
                found += _windows(sums, round(hc), masks, self.scale, MAX_HITS - len(found))
            hc *= HEIGHT_STEP
        return found


def _may_hit(h: int, unexplained: int, moving: int) -> bool:
    """False when no window ``h`` cells high can hit, since the whole picture holds too
    little unexplained (or unexplained and moving) foreground for one (as :func:`_windows`
    sizes and judges it): its search is skipped."""
    area = h * max(1, round(ASPECT * h)) * CELL * CELL
    return unexplained >= MIN_FILL * area and moving >= MIN_MOTION * area


def _eroded(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """``mask`` less every pixel whose four neighbours are not all set: lines one or two
    pixels wide (an edge or a pole shaken by the wind) vanish, a body does not."""
    out = mask.copy()
    out[1:, :] &= mask[:-1, :]
    out[:-1, :] &= mask[1:, :]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    return out


def _pooled(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int16]:
    """Pixels set in each :data:`CELL` × :data:`CELL` block (windows are searched on cells)."""
    h, w = mask.shape[0] // CELL * CELL, mask.shape[1] // CELL * CELL
    m = mask[:h, :w].astype(np.int16)
    out: npt.NDArray[np.int16] = m[0::2, 0::2] + m[1::2, 0::2] + m[0::2, 1::2] + m[1::2, 1::2]
    return out


def _integral(counts: npt.NDArray[np.int16]) -> npt.NDArray[np.int32]:
    ii = np.zeros((counts.shape[0] + 1, counts.shape[1] + 1), np.int32)
    np.cumsum(np.cumsum(counts, axis=0, dtype=np.int32), axis=1, out=ii[1:, 1:])
    return ii


def _box_sums(
    ii: npt.NDArray[np.int32], h: int, w: int, rows: tuple[int, int]
) -> npt.NDArray[np.int32]:
    """Sums over the h×w windows whose top row is in ``rows`` (start, stop): element [y, x] is
    the window with top-left (start + y, x)."""
    y0, y1 = rows
    top, bottom = ii[y0:y1], ii[y0 + h : y1 + h]
    out: npt.NDArray[np.int32] = bottom[:, w:] - top[:, w:] - bottom[:, :-w] + top[:, :-w]
    return out


def _windows(
    sums: tuple[npt.NDArray[np.int32], ...],
    h: int,
    masks: SceneMasks,
    scale: PersonScale,
    limit: int,
) -> list[tuple[float, float, float]]:
    """Hits among the windows ``h`` cells high (``sums``: integrals of the unexplained, moving
    and solid foreground, counted per cell)."""
    iu, im, isolid = sums
    ph, pw = iu.shape[0] - 1, iu.shape[1] - 1
    w = max(1, round(ASPECT * h))
    band = max(1, math.ceil(w / 2))
    if h >= ph or w + 2 * band >= pw:
        return []
    px = masks.stride * CELL  # frame pixels per cell
    fw, fh = masks.frame_width, masks.frame_height
    lo, hi = scale.bounds((np.arange(ph - h + 1) + h) * px / fh)
    tall = (lo <= h * px / fh) & (h * px / fh <= hi)  # a person's height there
    fits = np.flatnonzero(tall)
    if len(fits) == 0:
        return []
    rows = int(fits[0]), int(fits[-1]) + 1  # only the windows with a foot row that fits
    area = h * w * CELL * CELL
    fill = _box_sums(iu, h, w, rows)[:, band : pw - w - band + 1]
    motion = _box_sums(im, h, w, rows)[:, band : pw - w - band + 1]
    sides = _box_sums(isolid, h, band, rows)
    beside = np.maximum(sides[:, : pw - w - 2 * band + 1], sides[:, w + band :])
    ok = (fill >= MIN_FILL * area) & (motion >= MIN_MOTION * area)
    ok &= beside * (area / (band * h * CELL * CELL)) <= fill / 2
    ok &= tall[rows[0] : rows[1], None]
    ys, xs = np.nonzero(ok)
    if len(ys) == 0:
        return []
    order = np.argsort(-fill[ys, xs])[:limit]
    return [
        (
            min((xs[i] + band + w / 2) * px / fw, 1.0),
            min((ys[i] + rows[0] + h) * px / fh, 1.0),
            h * px / fh,
        )
        for i in order
    ]
