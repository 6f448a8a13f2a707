"""Per-kind scores of one frame against the camera's own rolling baseline.

A score is 1.0 exactly at its kind's onset threshold, larger the further past it (0 when the
kind cannot be judged, e.g. ``frozen`` on a camera that never moves). The temporal machine in
:mod:`kontur.tamper.monitor` turns sustained scores into events. Everything here is relative
to :class:`Baseline`, the camera's recent past, so the same rules hold on a dark night camera
and a sunny street (ADR 0024).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from kontur.tamper._features import Features
from kontur.tamper.config import TamperConfig
from kontur.tamper.model import TamperKind

__all__ = ["HEAVY_EVERY_S", "Baseline", "Scorer", "Scores"]

F32 = npt.NDArray[np.float32]

#: A cell whose least texture (mean |Laplacian|) is below this has too little to lose.
_LAP_FLOOR = 2.0
#: ... or whose baseline thumbnail structure (std, grey levels) is below this.
_STD_FLOOR = 2.0
#: Cell layout correlation with the reference: kept at or above, lost below.
_NCC_KEPT, _NCC_LOST = 0.6, 0.5
#: A covered cell lost this much of its texture, relative to the cells that kept their layout.
_BLANK = 0.4
#: A baseline sharpness (mean |Laplacian| over contrast) below this: nothing to defocus.
_SHARP_FLOOR = 0.02
#: Fewer textured cells than this: covering cannot be judged (a featureless view).
_MIN_CELLS = 4
#: Seconds of shift estimates whose median is the view's shift; seconds of brightness history
#: for flicker.
_SHIFT_WINDOW_S, _FLICKER_WINDOW_S = 0.5, 1.2
#: The phase correlation and the spectrum run at most this often (s): 10 Hz is plenty for a
#: 2 s detection window and saves two thirds of their cost at 30 fps.
HEAVY_EVERY_S = 0.095
#: Time constant (s) of the spectrum average the moiré peak is looked for in.
_MOIRE_SMOOTH_S = 0.3
#: How much a new periodic spectral peak (moiré, in units of ``screen_moire``) adds to
#: the screen score, whose main evidence is refresh flicker.
_MOIRE_WEIGHT = 0.3
#: A cell of the static background is steady when its pixels' variance around the reference
#: (traffic) is below this fraction of its structure; the view did not move when this
#: fraction of the steady cells still match the reference where they were.
_STEADY, _STAYED = 0.25, 0.5
#: A covering stays: a cell whose thumbnail block changed by more than this many grey levels
#: (mean absolute) over the last ``_STILL_LAG_S`` is passing traffic, not a covering.
_STILL, _STILL_LAG_S = 4.0, 0.2
#: Whole-picture flicker below this fraction is never a screen (sensor and encoder jitter,
#: an encoder's brightness steps), and the lag the flicker's changes are taken over.
_FLICKER_FLOOR, _FLICKER_LAG_S = 0.005, 0.1
#: The most a moiré peak adds to the screen score (in units of ``_MOIRE_WEIGHT``): a passing
#: grille or a magnified lane marking makes as strong a peak, so it never passes alone.
_MOIRE_CAP = 1.0


@dataclass
class Baseline:
    """The camera's own recent past, and its reference view (mutable: updated in place)."""

    brightness: float
    contrast: float
    black: float
    sat_frac: float
    sharpness: float
    diff: float
    moving: float
    flicker: float
    cell_mean: F32
    cell_std: F32
    cell_lap: F32
    thumb: F32
    shift_thumb: F32
    spectrum: F32
    lap_floor: F32
    """Per cell, the low (10 %) quantile of its texture: what it shows with nothing passing."""
    shift_var: F32
    """Per pixel of the shift thumbnail, how much it varies (traffic) around the reference."""

    _SCALARS = ("brightness", "contrast", "black", "sat_frac", "sharpness", "diff", "moving")
    _ARRAYS = ("cell_mean", "cell_std", "cell_lap", "thumb", "shift_thumb", "spectrum")

    @classmethod
    def from_warmup(cls, frames: list[Features], times: list[float]) -> Baseline:
        """Medians over the warm-up frames (moving objects fall out of the reference view)."""

        def med(name: str) -> float:
            values = [getattr(f, name) for f in frames]
            finite = [v for v in values if math.isfinite(v)]
            return float(np.median(finite)) if finite else 0.0

        arrays = {
            n: np.median(np.stack([getattr(f, n) for f in frames]), axis=0).astype(np.float32)
            for n in cls._ARRAYS
        }
        scalars = {n: med(n) for n in cls._SCALARS}
        levels, level, prev = [], 0.0, None
        for f, t in zip(frames, times, strict=True):
            level += _step(f, prev)
            levels.append((t, level))
            prev = f.cell_mean
        flickers = []
        for i in range(len(levels)):
            window = [x for x in levels[: i + 1] if x[0] >= levels[i][0] - _FLICKER_WINDOW_S]
            flickers.append(_flicker(window))
        finite = [x for x in flickers if math.isfinite(x)]
        flicker = float(np.median(finite)) if finite else 0.0
        laps = np.stack([f.cell_lap for f in frames])
        lap_floor = np.percentile(laps, 10, axis=0).astype(np.float32)
        dev = np.stack([f.shift_thumb for f in frames]) - arrays["shift_thumb"]
        shift_var = np.median(dev * dev, axis=0).astype(np.float32)
        return cls(
            scalars["brightness"], scalars["contrast"], scalars["black"], scalars["sat_frac"],
            scalars["sharpness"], scalars["diff"], scalars["moving"], flicker,
            arrays["cell_mean"], arrays["cell_std"], arrays["cell_lap"], arrays["thumb"],
            arrays["shift_thumb"], arrays["spectrum"], lap_floor, shift_var,
        )  # fmt: skip

    def update(self, f: Features, flicker: float, alpha: float) -> None:
        """Move every figure a fraction ``alpha`` of the way towards frame ``f``."""
        for name in self._SCALARS:
            value = getattr(f, name)
            if math.isfinite(value):
                old = getattr(self, name)
                setattr(self, name, old + alpha * (value - old))
        if math.isfinite(flicker):
            self.flicker += alpha * (flicker - self.flicker)
        dev = f.shift_thumb - self.shift_thumb
        self.shift_var += alpha * (dev * dev - self.shift_var)
        for name in self._ARRAYS:
            arr = getattr(self, name)
            arr += alpha * (getattr(f, name) - arr)
        # A stochastic 10 % quantile: down nine times as fast as up.
        below = f.cell_lap < self.lap_floor
        step = np.where(below, min(1.0, 9 * alpha), alpha).astype(np.float32)
        self.lap_floor += step * (f.cell_lap - self.lap_floor)


@dataclass(frozen=True, slots=True)
class Scores:
    """One frame's score and one-line reason per kind (``score >= 1``: past the threshold)."""

    score: dict[TamperKind, float]
    reason: dict[TamperKind, str]


def _median(values: npt.NDArray[np.floating[Any]]) -> float:
    """The median of a small array (np.median's overhead is ten times the sort's here)."""
    a = np.sort(values, axis=None)
    n = a.size
    if n == 0:
        return float("nan")
    return float(0.5 * (a[(n - 1) // 2] + a[n // 2]))


def _step(f: Features, prev_cell_mean: F32 | None) -> float:
    """The whole picture's log brightness change since the previous frame.

    The median over lit cells of their ratio to the previous frame's: a person or a car
    changes a few cells and does not move it; a screen's refresh flicker scales every cell
    at once and does.
    """
    if prev_cell_mean is None:
        return 0.0
    lit = prev_cell_mean > 20.0
    if not lit.any():
        return 0.0
    return math.log(max(_median(f.cell_mean[lit] / prev_cell_mean[lit]), 1e-3))


def _flicker(levels: Iterable[tuple[float, float]]) -> float:
    """How much (time, level) pairs waver: the median absolute 0.1 s change, trend removed.

    Changes are taken over ``_FLICKER_LAG_S`` whatever the frame rate, so a slow flicker
    weighs the same at 10 and 30 fps. A step (a light switched, an attack's onset) or a ramp
    (exposure control, a camera pushed over half a second) fills a few of them and leaves
    the median alone; a refresh flicker moves them all. NaN for fewer than 5 pairs.
    """
    arr = np.asarray(list(levels), dtype=np.float64)
    if len(arr) < 5:
        return float("nan")
    ts, ys = arr[:, 0], arr[:, 1]
    back = np.searchsorted(ts, ts - _FLICKER_LAG_S, side="right") - 1
    ok = back >= 0
    if int(ok.sum()) < 3:
        return float("nan")
    steps = ys[ok] - ys[back[ok]]
    return _median(np.abs(steps - _median(steps)))


def _explained(done: dict[TamperKind, float], kinds: tuple[TamperKind, ...]) -> str:
    """Which of ``kinds`` are past their threshold (they explain what another kind sees).

    A covered, darkened or glared picture stands still: that is those kinds, not a freeze.
    A darkened or glared picture is noisy or clipped in brightness: not a screen's flicker.
    """
    return " and ".join(k.value for k in kinds if done.get(k, 0.0) >= 1.0)


def _cell_ncc(cur: F32, ref: F32, grid: tuple[int, int]) -> F32:
    """Zero-mean normalised correlation of each cell's 4x4 block of the thumbnails.

    Block sums come from INTER_AREA resizes of the products (exact for 4x4 blocks); the
    constant in the denominator keeps flat, noise-only blocks near 0.
    """
    size = grid  # (columns, rows)

    def mean(x: F32) -> F32:
        return np.asarray(cv2.resize(x, size, interpolation=cv2.INTER_AREA), np.float32)

    mc, mr = mean(cur), mean(ref)
    cov = mean(cur * ref) - mc * mr
    vc = np.maximum(mean(cur * cur) - mc * mc, 0.0)
    vr = np.maximum(mean(ref * ref) - mr * mr, 0.0)
    return np.asarray(cov / (np.sqrt(vc * vr) + 1.0), np.float32)


def _block(x: F32, grid: tuple[int, int]) -> F32:
    return np.asarray(cv2.resize(x, grid, interpolation=cv2.INTER_AREA), np.float32)


def _stayed(ref: F32, var: F32, cur: F32, shift: tuple[float, float],
            grid: tuple[int, int]) -> float:  # fmt: skip
    """Fraction of the static background's cells that still match ``ref`` where they were.

    Static background: textured cells whose pixels varied around the reference (``var``,
    traffic) much less than their structure. A cell stayed when it correlates with the
    reference unmoved, and better than with the reference moved by ``shift`` (dx, dy pixels):
    a moved camera moves every such cell (rotation and zoom too), while a vehicle that steers
    the shift estimate leaves the background in place. 0.0 when too few cells can tell.
    """
    dx, dy = shift
    h, w = ref.shape
    m = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    moved = np.asarray(cv2.warpAffine(ref, m, (w, h), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REPLICATE), np.float32)  # fmt: skip
    before, after = _cell_ncc(cur, ref, grid), _cell_ncc(cur, moved, grid)
    ref_var = np.maximum(_block(ref * ref, grid) - _block(ref, grid) ** 2, 0.0)
    cells = (ref_var >= _STD_FLOOR**2) & (_block(var, grid) < _STEADY * ref_var)
    n = int(cells.sum())
    if n < _MIN_CELLS:
        return 0.0
    stayed = before >= _NCC_KEPT
    if math.hypot(dx, dy) >= 1.0:
        stayed &= before > after + 0.05
    return float((stayed & cells).sum()) / n


#: The cell state before the first frame is scored: no textured cells.
_NO_CELLS = (np.zeros((1, 1), bool), np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32),
             1.0)  # fmt: skip


class Scorer:
    """Scores successive frames of one camera against a :class:`Baseline`."""

    def __init__(self, config: TamperConfig, grid: tuple[int, int]) -> None:
        self._cfg = config
        self._grid = grid
        self._shifts: deque[tuple[float, float, float]] = deque()
        self._levels: deque[tuple[float, float]] = deque()
        self._level = 0.0
        self._prev_cells: F32 | None = None
        self._spectrum: F32 | None = None
        self._spectrum_t: float | None = None
        self._window: F32 | None = None
        self._cell_state: tuple[npt.NDArray[np.bool_], F32, F32, float] = _NO_CELLS
        self._thumbs: deque[tuple[float, F32]] = deque()

    def reset(self) -> None:
        """Forget the short histories (shift estimates, brightness, recent spectrum)."""
        self._shifts.clear()
        self._levels.clear()
        self._level, self._prev_cells = 0.0, None
        self._spectrum = None
        self._spectrum_t = None
        self._thumbs.clear()

    def flicker(self, f: Features, t: float) -> float:
        """How much the whole picture's brightness wavers over the last second (a fraction)."""
        self._level += _step(f, self._prev_cells)
        self._prev_cells = f.cell_mean
        levels = self._levels
        levels.append((t, self._level))
        while levels and levels[0][0] < t - _FLICKER_WINDOW_S:
            levels.popleft()
        return _flicker(levels)

    def score(self, f: Features, b: Baseline, t: float, flicker: float) -> Scores:
        """Every kind's score for frame ``f`` at ``t``."""
        score: dict[TamperKind, float] = {}
        reason: dict[TamperKind, str] = {}
        self._cell_state = self._cells(f, b, self._moving_cells(f, t))
        for kind, fn in (
            (TamperKind.LOW_LIGHT, self._low_light),
            (TamperKind.GLARE, self._glare),
            (TamperKind.COVERED, self._covered),
            (TamperKind.DEFOCUS, self._defocus),
            (TamperKind.SHIFTED, self._shifted),
            (TamperKind.FROZEN, self._frozen),
            (TamperKind.SCREEN, self._screen),
        ):
            score[kind], reason[kind] = fn(f, b, t, flicker, score)
        return Scores(score, reason)

    # ------------------------------------------------------------------ kinds

    def _low_light(self, f: Features, b: Baseline, *_: object) -> tuple[float, str]:
        c = self._cfg
        br = f.brightness / max(b.brightness, 1.0)
        cr = f.contrast / max(b.contrast, 1.0)
        # A baseline already below the quality floors has nothing left to lose: that camera
        # is refused on quality (Quality), not flagged as tampered against itself.
        s_b = c.low_light_ratio / max(br, 1e-3) if b.brightness >= c.min_brightness else 0.0
        s_c = c.low_contrast_ratio / max(cr, 1e-3) if b.contrast >= c.min_contrast else 0.0
        if s_b >= s_c:
            why = f"brightness {f.brightness:.0f} is {br:.2f}x the camera's own {b.brightness:.0f}"
        else:
            why = f"contrast {f.contrast:.1f} is {cr:.2f}x the camera's own {b.contrast:.1f}"
        return max(s_b, s_c), why

    def _glare(self, f: Features, b: Baseline, *_: object) -> tuple[float, str]:
        c = self._cfg
        excess = f.sat_frac - b.sat_frac
        s_sat = excess / (c.glare_excess + 0.5 * b.sat_frac)
        wash = (f.brightness - b.brightness) / max(255.0 - b.brightness, 1.0)
        s_wash = wash / c.glare_wash
        if s_sat >= s_wash:
            why = (f"{100 * f.sat_frac:.1f}% of the frame saturated "
                   f"(baseline {100 * b.sat_frac:.1f}%)")  # fmt: skip
        else:
            why = (f"brightness {f.brightness:.0f} washed out from the camera's own "
                   f"{b.brightness:.0f}")  # fmt: skip
        return max(s_sat, s_wash, 0.0), why

    def _moving_cells(self, f: Features, t: float) -> npt.NDArray[np.bool_]:
        """Cells whose picture changed over the last ``_STILL_LAG_S`` (passing traffic)."""
        thumbs = self._thumbs
        thumbs.append((t, f.thumb))
        while len(thumbs) > 1 and thumbs[1][0] <= t - _STILL_LAG_S:
            thumbs.popleft()
        then = thumbs[0][1]
        if then.shape != f.thumb.shape:
            thumbs.clear()
            thumbs.append((t, f.thumb))
            then = f.thumb
        return _block(np.abs(f.thumb - then), self._grid) > _STILL

    def _cells(
        self, f: Features, b: Baseline, moving: npt.NDArray[np.bool_]
    ) -> tuple[npt.NDArray[np.bool_], F32, F32, float]:
        """Textured cells, their layout correlation, covered (still) cells, texture gain."""
        info = (b.lap_floor >= _LAP_FLOOR) & (b.cell_std >= _STD_FLOOR)
        ncc = _cell_ncc(f.thumb, b.thumb, self._grid)
        # Texture against the least the cell normally shows, so that a road whose texture
        # mostly comes from passing cars is not "blank" whenever it is empty.
        lapr = f.cell_lap / np.maximum(b.lap_floor, 1e-3)
        stdr = f.cell_std / np.maximum(b.cell_std, 1e-3)
        kept = info & (ncc >= _NCC_KEPT)
        # The gain of the cells that kept their layout: a global darkening or blur scales
        # every cell alike, a covering only some. When few kept it (a full covering, where
        # a few cells match by chance), there is no gain to trust: 1.
        if int(kept.sum()) >= max(3, 0.3 * int(info.sum())):
            gain = np.float32(_median(lapr[kept])), np.float32(_median(stdr[kept]))
        else:
            gain = np.float32(1.0), np.float32(1.0)
        blank = lapr < _BLANK * min(float(gain[0]), 1.0)
        changed = (ncc < _NCC_LOST) | (stdr < 0.35 * min(float(gain[1]), 1.0))
        # A cell washed out to near white is glare's, not a covering's.
        washed = (f.cell_mean > 220.0) & (f.cell_mean - b.cell_mean > 40.0)
        covered = blank & changed & ~washed & ~moving
        return info, ncc, covered.astype(np.float32), float(gain[0])

    def _covered(self, f: Features, b: Baseline, *_: object) -> tuple[float, str]:
        info, _ncc, covered, _gain = self._cell_state
        n = int(info.sum())
        if n < _MIN_CELLS:
            return 0.0, "too little texture in the view to judge covering"
        frac = float(covered[info].sum()) / n
        why = f"{100 * frac:.0f}% of the textured view lost its texture and layout"
        return frac / self._cfg.covered_fraction, why

    def _defocus(
        self, f: Features, b: Baseline, _t: float, _fl: float, done: dict[TamperKind, float]
    ) -> tuple[float, str]:
        ratio = f.sharpness / max(b.sharpness, 1e-6)
        why = f"sharpness {ratio:.2f}x the camera's own, layout kept"
        if b.sharpness < _SHARP_FLOOR or b.contrast < self._cfg.min_contrast:
            return 0.0, "too little detail in the view to judge focus"
        # Saturation and a covering also remove texture; they are those kinds, not blur.
        if done[TamperKind.GLARE] >= 0.5 or done[TamperKind.COVERED] >= 1.0:
            return 0.0, why
        return self._cfg.defocus_ratio / max(ratio, 1e-3), why

    def _shifted(self, f: Features, b: Baseline, t: float, *_: object) -> tuple[float, str]:
        ref, cur = b.shift_thumb, f.shift_thumb
        window = self._window
        if window is None or window.shape != ref.shape:
            window = np.asarray(cv2.createHanningWindow(ref.shape[::-1], cv2.CV_32F), np.float32)
            self._window = window
        # phaseCorrelate with its own window argument writes into its inputs (OpenCV 4.x),
        # so the window goes into fresh products here instead.
        if not self._shifts or t - self._shifts[-1][0] >= HEAVY_EVERY_S:
            # The mean is kept on purpose: with the window it anchors a still view at zero.
            (dx, dy), _resp = cv2.phaseCorrelate(ref * window, cur * window)
            w = float(ref.shape[1])
            self._shifts.append((t, dx / w, dy / w))
        while self._shifts and self._shifts[0][0] < t - _SHIFT_WINDOW_S:
            self._shifts.popleft()
        arr = np.asarray(self._shifts)
        mx, my = _median(arr[:, 1]), _median(arr[:, 2])
        # A moved camera gives the same estimate frame after frame; traffic does not.
        spread = _median(np.hypot(arr[:, 1] - mx, arr[:, 2] - my))
        shift = math.hypot(mx, my) if spread < 0.5 * math.hypot(mx, my) + 0.005 else 0.0
        s_shift = shift / self._cfg.shift_fraction
        info, ncc, covered, _gain = self._cell_state
        n = int(info.sum())
        lost = float(((ncc < 0.3) & info).sum()) / n if n >= _MIN_CELLS else 0.0
        # A view that lost its layout *and* its texture is covered, not redirected.
        blank = float(covered[info].sum()) / n if n >= _MIN_CELLS else 0.0
        s_lost = lost / self._cfg.redirect_fraction if blank < 0.5 else 0.0
        stayed = 0.0
        if max(s_shift, s_lost) >= self._cfg.clear_ratio:
            # A vehicle standing in the enrolled view, or traffic over the only texture,
            # can steer the estimate; the static background then still matches where it was.
            w = float(ref.shape[1])
            stayed = _stayed(ref, b.shift_var, cur, (mx * w, my * w), self._grid)
            if stayed >= _STAYED:
                s_shift, s_lost = min(s_shift, 0.5), min(s_lost, 0.5)
        kept = f", but {100 * stayed:.0f}% of the static background stayed" if stayed else ""
        if s_shift >= s_lost:
            return s_shift, (
                f"view moved {100 * shift:.1f}% of the width (dx {100 * mx:+.1f}%, "
                f"dy {100 * my:+.1f}%) from the reference{kept}"
            )
        return s_lost, (
            f"{100 * lost:.0f}% of the textured view no longer matches the reference{kept}"
        )

    def _frozen(
        self, f: Features, b: Baseline, _t: float, _fl: float, done: dict[TamperKind, float]
    ) -> tuple[float, str]:
        c = self._cfg
        explained = _explained(done, (TamperKind.COVERED, TamperKind.LOW_LIGHT, TamperKind.GLARE))
        if explained:
            return 0.0, f"not judged while {explained}"
        if not (math.isfinite(f.moving) and math.isfinite(f.diff)):
            return 0.0, "no previous frame"
        if b.moving < c.frozen_min_motion:
            return 0.0, "the camera's own picture hardly moves: a freeze cannot be told"
        why = (
            f"{100 * f.moving:.2f}% of the picture moving against the camera's usual "
            f"{100 * b.moving:.1f}%"
        )
        if f.diff > 0.5 * b.diff:
            return 0.0, why
        return (c.frozen_motion_ratio * b.moving + 1e-4) / (f.moving + 1e-4), why

    def _screen(
        self, f: Features, b: Baseline, t: float, flicker: float, done: dict[TamperKind, float]
    ) -> tuple[float, str]:
        c = self._cfg
        explained = _explained(done, (TamperKind.LOW_LIGHT, TamperKind.GLARE))
        # The spectrum is averaged over a few frames: a moiré pattern stays put while the
        # scene's own spectrum merely jitters, so averaging lowers the jitter, not the peak.
        spec = f.spectrum
        avg = self._spectrum
        dt = t - self._spectrum_t if self._spectrum_t is not None else 1.0
        self._spectrum_t = t
        a = 1.0 - math.exp(-max(dt, 0.0) / _MOIRE_SMOOTH_S)
        self._spectrum = spec.copy() if avg is None else avg + a * (spec - avg)
        ratio = self._spectrum / (b.spectrum + 0.25 * float(b.spectrum.mean()) + 1e-3)
        peak = float(ratio.max())
        if explained:
            return 0.0, f"not judged while {explained}"
        s_m = min(peak / c.screen_moire, _MOIRE_CAP)
        fl = flicker if math.isfinite(flicker) else 0.0
        s_f = fl / max(c.screen_flicker * b.flicker, _FLICKER_FLOOR)
        # Moiré only supports flicker: on real footage a striped shirt or a fence walking
        # into view makes as strong a new periodic peak as a screen does (ADR 0024).
        score = s_f + _MOIRE_WEIGHT * s_m
        return score, (
            f"the whole picture flickers by {100 * fl:.2f}% (the camera's own "
            f"{100 * b.flicker:.2f}%), periodic pattern {peak:.1f}x its own spectrum"
        )
