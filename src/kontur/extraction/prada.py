"""PRADA over each principal's query stream (Juuti et al. 2019), as a pure core (ADR 0031).

Per principal, for each query's feature ``x`` (:func:`~kontur.extraction.images.query_features`,
cells / 255), in this order:

1. ``d`` = the minimum L2 distance from ``x`` to that principal's kept earlier queries ``G``.
   The same picture as the *previous* query is a *repeat* (a frozen feed, a retry): it is
   counted but joins neither ``G`` nor the distance set. The same picture as an *older*
   query is a *revisit* (ART's functionally-equivalent extraction asks points again): its
   ``d`` is 0 and it joins the distance set, at the floor, but not ``G``.
2. ``log(max(d, DISTANCE_FLOOR))`` joins the distance set ``D`` (the last ``max_distances``);
   ``x`` joins ``G`` (the last ``max_kept``: bounded memory, ``max_kept`` KiB a principal).
   Unlike the paper's thresholded growth of ``G``, every distinct query joins it: measured
   better on surveillance streams (ADR 0031).
3. *Line*: ``x`` lies on a line with two of its ``neighbours`` nearest kept queries ``a, b``
   when the triangle ``x, a, b`` is flat: its two shorter sides add up to less than
   ``line_ratio`` times its longest. Line searches (Tramèr et al. 2016) and ART's
   functionally-equivalent extraction (Jagielski et al. 2020) query such points.
4. Once ``|D| >= min_samples``: the Shapiro–Wilk ``W`` of ``D`` (``scipy.stats.shapiro``) and
   its spread (standard deviation of the log distances).

An alarm is raised, once per stream, when ``W < delta`` (the paper's test: seeds plus small
perturbations, as Papernot et al.'s Jacobian augmentation makes, are far from normal), when
the spread is below ``spread_floor`` (every distance at one scale: random noise, which PRADA's
``W`` cannot see), or when ``line_alarm`` queries were on lines (a binary line search's
distances are log-uniform, which ``W`` cannot see either). The distances are
taken in log space because benign surveillance streams are log-normal-ish, not normal.

Memory is bounded: at most ``max_principals`` streams, the least recently used forgotten
first (a forgotten stream starts afresh; principals are users an admin created).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from kontur.extraction.images import FEATURE_SIDE

__all__ = ["DISTANCE_FLOOR", "Prada", "PradaConfig", "PradaResult", "PradaTest"]

#: Distances below this (one grey level on 1/64 of the cells) are taken as this in log space.
DISTANCE_FLOOR = 1e-3
_DIM = FEATURE_SIDE * FEATURE_SIDE


class PradaTest(StrEnum):
    """Which test raised an alarm."""

    SHAPIRO = "shapiro"
    SPREAD = "spread"
    LINE = "line"


@dataclass(frozen=True, slots=True)
class PradaConfig:
    """PRADA's parameters; the defaults are chosen from ``benchmarks/prada_bench.py`` (ADR 0031)."""

    delta: float = 0.75
    """Alarm when the Shapiro–Wilk W of the log distances falls below this."""
    min_samples: int = 150
    """Distances needed before W and the spread are tested."""
    spread_floor: float = 0.2
    """Alarm when the log distances' standard deviation falls below this."""
    line_ratio: float = 1.005
    """A query is on a line with ``a, b`` when the two shorter sides of the triangle sum to
    less than this times the longest."""
    line_alarm: int = 8
    """Alarm at this many queries on lines."""
    neighbours: int = 8
    """Nearest kept queries among which lines are looked for."""
    max_kept: int = 1024
    """Features kept per principal (1 KiB each)."""
    max_distances: int = 5000
    """Distances kept per principal (Shapiro–Wilk's W is exact up to 5000)."""
    max_principals: int = 128
    """Streams kept at once."""

    def __post_init__(self) -> None:
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"prada.delta: expected 0 < delta < 1, got {self.delta}")
        if not 3 <= self.min_samples <= self.max_distances <= 5000:
            raise ValueError(
                "prada: expected 3 <= min_samples <= max_distances <= 5000, "
                f"got {self.min_samples}, {self.max_distances}"
            )
        if self.spread_floor < 0 or self.line_ratio < 1.0:
            raise ValueError(
                "prada: expected spread_floor >= 0 and line_ratio >= 1, "
                f"got {self.spread_floor}, {self.line_ratio}"
            )
        for name in ("line_alarm", "neighbours", "max_kept", "max_principals"):
            if getattr(self, name) < (2 if name == "neighbours" else 1):
                raise ValueError(
                    f"prada.{name}: expected a positive count, got {getattr(self, name)}"
                )


@dataclass(frozen=True, slots=True)
class PradaResult:
    """What one query did to its principal's stream."""

    principal: str
    query: int
    """This principal's query number, 1-based (repeats count)."""
    distance: float | None
    """Minimum distance to the kept earlier queries (None for the first query)."""
    repeat: bool
    """The same picture as this principal's previous query (not counted in the tests)."""
    samples: int
    """Distances in the tested set."""
    w: float | None
    """Shapiro–Wilk W of the log distances, once ``samples >= min_samples``."""
    spread: float | None
    lines: int
    """Queries so far that lay on a line with two kept ones."""
    alarm: PradaTest | None = None
    """The test that raised the stream's alarm at *this* query (at most once per stream)."""
    alarmed: bool = False
    """The stream has alarmed, at this query or before."""

    def reason(self, config: PradaConfig) -> str:
        """One line for the audit record: which test, its figure and the query number."""
        if self.alarm is PradaTest.SHAPIRO:
            what = f"Shapiro-Wilk W {self.w:.3f} < delta {config.delta:g}"
        elif self.alarm is PradaTest.SPREAD:
            what = f"log-distance spread {self.spread:.3f} < floor {config.spread_floor:g}"
        elif self.alarm is PradaTest.LINE:
            what = f"{self.lines} queries on lines >= {config.line_alarm}"
        else:
            return f"no alarm at query {self.query}"
        return f"PRADA {self.alarm}: {what} at query {self.query} ({self.samples} distances)"


@dataclass(slots=True)
class _Stream:
    kept: np.ndarray
    size: int = 0
    head: int = 0
    queries: int = 0
    logs: deque[float] = field(default_factory=deque)
    lines: int = 0
    alarmed: bool = False
    last: np.ndarray | None = None
    """The previous query's feature (a repeat of it is not counted)."""

    def add(self, x: np.ndarray) -> None:
        self.kept[self.head] = x
        self.head = (self.head + 1) % len(self.kept)
        self.size = min(self.size + 1, len(self.kept))


class Prada:
    """Per-principal PRADA streams (see the module); thread-safe."""

    def __init__(self, config: PradaConfig = PradaConfig()) -> None:
        self.config = config
        self._streams: OrderedDict[str, _Stream] = OrderedDict()
        self._lock = threading.Lock()

    def forget(self, principal: str) -> None:
        """Drop ``principal``'s stream (an admin lifted its block: it starts afresh)."""
        with self._lock:
            self._streams.pop(principal, None)

    def observe(self, principal: str, features: np.ndarray) -> PradaResult:
        """Steps 1-4 of the module for one query of ``principal``."""
        if features.shape != (_DIM,) or features.dtype != np.uint8:
            raise ValueError(
                f"expected ({_DIM},) uint8 features, got {features.shape} {features.dtype}"
            )
        with self._lock:
            stream = self._stream(principal)
            stream.queries += 1
            x = features.astype(np.float32) / 255.0
            last, stream.last = stream.last, features
            if stream.size == 0:
                stream.add(features)
                return self._result(principal, stream, None, repeat=False)
            kept = stream.kept[: stream.size].astype(np.float32) / 255.0
            dist = np.sqrt(np.maximum(((kept - x) ** 2).sum(axis=1), 0.0))
            d = float(dist.min())
            if d == 0.0 and last is not None and np.array_equal(last, features):
                return self._result(principal, stream, d, repeat=True)
            stream.logs.append(math.log(max(d, DISTANCE_FLOOR)))
            if d == 0.0:  # a revisit: in the distance set, already in G
                return self._result(principal, stream, d, repeat=False)
            if self._collinear(kept, dist):
                stream.lines += 1
            stream.add(features)
            return self._result(principal, stream, d, repeat=False)

    def _stream(self, principal: str) -> _Stream:
        stream = self._streams.pop(principal, None)
        if stream is None:
            c = self.config
            stream = _Stream(
                np.zeros((c.max_kept, _DIM), np.uint8), logs=deque(maxlen=c.max_distances)
            )
        self._streams[principal] = stream
        while len(self._streams) > self.config.max_principals:
            self._streams.popitem(last=False)
        return stream

    def _collinear(self, kept: np.ndarray, dist: np.ndarray) -> bool:
        """Step 3: is the query on a line with two of its nearest kept queries?"""
        k = min(self.config.neighbours, len(dist))
        if k < 2:
            return False
        near = np.argpartition(dist, k - 1)[:k] if k < len(dist) else np.arange(k)
        pts, d = kept[near], dist[near]
        gaps = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2))
        rows, cols = np.triu_indices(k, 1)
        sides = np.stack([d[rows], d[cols], gaps[rows, cols]], axis=1)
        longest = sides.max(axis=1)
        ok = sides.min(axis=1) > DISTANCE_FLOOR
        if not ok.any():
            return False
        ratio = (sides.sum(axis=1) - longest)[ok] / longest[ok]
        return bool(ratio.min() < self.config.line_ratio)

    def _result(
        self, principal: str, stream: _Stream, d: float | None, *, repeat: bool
    ) -> PradaResult:
        from scipy.stats import shapiro

        c, n = self.config, len(stream.logs)
        w = spread = None
        if n >= c.min_samples:
            logs = np.fromiter(stream.logs, np.float64, n)
            spread = float(logs.std())
            w = 1.0 if spread == 0.0 else float(shapiro(logs).statistic)
        alarm = None
        if not stream.alarmed and not repeat:
            if w is not None and w < c.delta:
                alarm = PradaTest.SHAPIRO
            elif spread is not None and spread < c.spread_floor:
                alarm = PradaTest.SPREAD
            elif stream.lines >= c.line_alarm:
                alarm = PradaTest.LINE
            stream.alarmed = alarm is not None
        return PradaResult(
            principal, stream.queries, d, repeat, n, w, spread, stream.lines,
            alarm, stream.alarmed,
        )  # fmt: skip
