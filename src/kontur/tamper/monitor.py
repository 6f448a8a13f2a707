"""One camera's tamper monitor: a pure state machine fed frames and their times.

Order of steps in :meth:`TamperMonitor.observe` (``t`` in seconds, strictly increasing; the
pts of the frame, never a clock read here):

1. check the frame (a uint8 BGR or grey image) and ``t``; a pause longer than ``max_gap_s``
   forgets the short histories (frame difference, flicker, shift window), not the baseline;
2. compute the frame's features (:mod:`kontur.tamper._features`);
3. during the first ``warmup_s`` seconds, only collect them: their medians become the
   rolling baseline and the enrolled reference view (:class:`~kontur.tamper._signals.Baseline`);
4. afterwards, score every kind against the baseline (:mod:`kontur.tamper._signals`);
5. per kind: a score >= 1 held for ``onset_s`` (a miss shorter than ``gap_s`` forgiven)
   starts an event, dated from when the score first crossed; a started event ends once the
   score stayed below ``clear_ratio`` for ``clear_s`` (hysteresis), dated from when it fell;
6. when no kind is pending or open, the frame moves the baseline (time constant
   ``baseline_tau_s``): the camera's own slow changes (dusk, weather) become its normal,
   while a tampered picture never does. :meth:`TamperMonitor.enrol` accepts a new view
   explicitly (an operator re-pointed the camera).

A ``t`` earlier than or equal to the last one is a caller's bug in the order of frames:
:class:`~kontur.tamper.TamperOrderError`; a frame no check can use is a
:class:`~kontur.tamper.TamperInputError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from kontur.tamper._features import FeatureExtractor, Features
from kontur.tamper._signals import HEAVY_EVERY_S, Baseline, Scorer
from kontur.tamper.config import TamperConfig
from kontur.tamper.errors import TamperInputError, TamperOrderError
from kontur.tamper.model import Quality, TamperChange, TamperEvent, TamperKind, Transition

__all__ = ["TamperMonitor"]

#: The coarse grid of cells (columns, rows) a partial covering is looked for in.
GRID = (8, 6)
#: Smallest frame side the monitor accepts.
MIN_SIDE = 32


@dataclass
class _KindState:
    """Where one kind stands: idle, pending since ``since``, or open as ``event``."""

    since: float | None = None
    last_on: float = -math.inf
    peak: float = 0.0
    reason: str = ""
    event: TamperEvent | None = None
    clear_since: float | None = None


class TamperMonitor:
    """Watches one camera for covering, defocus, glare, low light, shift, freeze and screens.

    ``observe(frame, t)`` returns the events that started or ended with this frame;
    :attr:`active` holds the open ones and :attr:`quality` says whether decisions on this
    camera should be refused ("refuse to decide at low quality").
    """

    def __init__(self, camera_id: str, config: TamperConfig | None = None) -> None:
        if not isinstance(camera_id, str) or not camera_id:
            raise TamperInputError(f"camera_id: expected a non-empty string, got {camera_id!r}")
        self.camera_id = camera_id
        self.config = config or TamperConfig()
        self._features = FeatureExtractor(self.config.width, GRID)
        self._scorer = Scorer(self.config, GRID)
        self._states = {k: _KindState() for k in TamperKind}
        self._last_t: float | None = None
        self._heavy_t: float | None = None
        self._calm_s = 0.0
        self._last: Features | None = None
        self._scores: dict[TamperKind, float] = {}
        self._reasons: dict[TamperKind, str] = {}
        self._enrol()

    def _enrol(self) -> None:
        self._warm: list[Features] = []
        self._warm_t: list[float] = []
        self._baseline: Baseline | None = None
        self._features.reset()
        self._scorer.reset()

    # ------------------------------------------------------------------ public surface

    @property
    def warming_up(self) -> bool:
        """True until the first ``warmup_s`` seconds of picture made the baseline."""
        return self._baseline is None

    @property
    def active(self) -> tuple[TamperEvent, ...]:
        """The open events, in kind order."""
        return tuple(s.event for s in self._states.values() if s.event is not None)

    @property
    def scores(self) -> MappingProxyType[TamperKind, float]:
        """The last frame's score per kind (1.0 at the onset threshold; for diagnostics)."""
        return MappingProxyType(self._scores)

    @property
    def reasons(self) -> MappingProxyType[TamperKind, str]:
        """The last frame's one-line reason per kind (for diagnostics)."""
        return MappingProxyType(self._reasons)

    @property
    def quality(self) -> Quality:
        """Whether to decide on this camera now, and why not (one line per reason)."""
        c, f = self.config, self._last
        reasons: list[str] = []
        if self.warming_up:
            reasons.append("warming up: no baseline of this camera yet")
        if f is not None:
            if f.brightness < c.min_brightness:
                reasons.append(f"too dark: mean grey {f.brightness:.0f} < {c.min_brightness:g}")
            if f.contrast < c.min_contrast:
                reasons.append(f"too flat: grey std {f.contrast:.1f} < {c.min_contrast:g}")
            if f.sat_frac > c.max_saturated:
                reasons.append(
                    f"too saturated: {100 * f.sat_frac:.0f}% > {100 * c.max_saturated:.0f}%"
                )
        reasons += [f"tamper: {e.kind.value} since {e.start_s:.2f} s ({e.reason})"
                    for e in self.active]  # fmt: skip
        return Quality(not reasons, tuple(reasons))

    @property
    def quality_ok(self) -> bool:
        """Shorthand for ``quality.ok``."""
        return self.quality.ok

    def enrol(self, t: float) -> list[TamperChange]:
        """Accept the view from the next frame on as the new reference (an operator's act).

        Open events end at ``t``; the next ``warmup_s`` seconds make a new baseline.
        """
        t = self._check_time(t, allow_equal=True)
        changes = [self._end(k, t, t) for k, s in self._states.items() if s.event is not None]
        self._states = {k: _KindState() for k in TamperKind}
        self._enrol()
        return changes

    def observe(self, frame: Any, t: float) -> list[TamperChange]:
        """Feed the next frame (BGR or grey uint8) shown at ``t`` seconds; returns changes."""
        t = self._check_time(t)
        _check_frame(frame)
        dt = 0.0 if self._last_t is None else t - self._last_t
        if dt > self.config.max_gap_s:
            self._features.reset()
            self._scorer.reset()
        self._last_t = t
        heavy = self._heavy_t is None or t - self._heavy_t >= HEAVY_EVERY_S
        if heavy:
            self._heavy_t = t
        f = self._features.extract(frame, spectrum=heavy)
        self._last = f
        if self._baseline is None:
            self._scorer.flicker(f, t)  # keeps the brightness history continuous
            self._collect(f, t)
            return []
        flicker = self._scorer.flicker(f, t)
        scores = self._scorer.score(f, self._baseline, t, flicker)
        self._scores, self._reasons = scores.score, scores.reason
        changes: list[TamperChange] = []
        for kind in TamperKind:
            if kind in self.config.kinds:
                change = self._step(kind, scores.score[kind], scores.reason[kind], t)
                if change is not None:
                    changes.append(change)
        if all(s.since is None and s.event is None for s in self._states.values()):
            # Calm: this frame joins the baseline, at most every HEAVY_EVERY_S (the weight
            # follows the time since the last update, so the time constant holds at any rate).
            self._calm_s += min(dt, 1.0)
            if heavy:
                alpha = 1.0 - math.exp(-self._calm_s / self.config.baseline_tau_s)
                self._baseline.update(f, flicker, alpha)
                self._calm_s = 0.0
        else:
            self._calm_s = 0.0
        return changes

    # ------------------------------------------------------------------ internals

    def _check_time(self, t: float, *, allow_equal: bool = False) -> float:
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
            raise TamperInputError(f"t: expected a finite time in seconds, got {t!r}")
        last = self._last_t
        if last is not None and (t < last or (t == last and not allow_equal)):
            raise TamperOrderError(f"t: expected a time after {last:.6f} s, got {t:.6f} s")
        return float(t)

    def _collect(self, f: Features, t: float) -> None:
        self._warm.append(f)
        self._warm_t.append(t)
        if t - self._warm_t[0] >= self.config.warmup_s and len(self._warm) >= 5:
            self._baseline = Baseline.from_warmup(self._warm, self._warm_t)
            self._warm, self._warm_t = [], []

    def _step(self, kind: TamperKind, score: float, reason: str, t: float) -> TamperChange | None:
        c, s = self.config, self._states[kind]
        on = score >= 1.0
        if s.event is None:
            if on:
                if s.since is None:
                    s.since, s.peak = t, 0.0
                s.last_on = t
                if score >= s.peak:
                    s.peak, s.reason = score, reason
                onset = {TamperKind.FROZEN: c.frozen_onset_s,
                         TamperKind.SCREEN: c.screen_onset_s}.get(kind, c.onset_s)  # fmt: skip
                if t - s.since >= onset:
                    s.event = TamperEvent(self.camera_id, kind, s.peak, s.since, None, s.reason)
                    return TamperChange(Transition.START, t, s.event)
            elif s.since is not None and t - s.last_on > c.gap_s:
                s.since = None
            return None
        if score > s.peak:
            s.peak = score
        if score >= c.clear_ratio:
            s.clear_since = None
            return None
        if s.clear_since is None:
            s.clear_since = t
        if t - s.clear_since >= c.clear_s:
            return self._end(kind, s.clear_since, t)
        return None

    def _end(self, kind: TamperKind, end_s: float, at_s: float) -> TamperChange:
        s = self._states[kind]
        assert s.event is not None
        event = replace(s.event, score=s.peak, end_s=max(end_s, s.event.start_s))
        self._states[kind] = _KindState()
        return TamperChange(Transition.END, at_s, event)


def _check_frame(frame: Any) -> None:
    if not isinstance(frame, np.ndarray):
        raise TamperInputError(f"frame: expected a numpy image, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise TamperInputError(f"frame: expected dtype uint8, got {frame.dtype}")
    ok_shape = frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)
    if not ok_shape:
        raise TamperInputError(f"frame: expected HxW or HxWx3, got shape {frame.shape}")
    if min(frame.shape[:2]) < MIN_SIDE:
        raise TamperInputError(
            f"frame: expected sides of at least {MIN_SIDE} px, "
            f"got {frame.shape[1]}x{frame.shape[0]}"
        )
