"""PRADA over each principal's query stream (Juuti et al. 2019), as a pure core (ADR 0031).

Per principal, for each query's feature ``x`` (:func:`~kontur.extraction.images.query_features`,
cells / 255), in this order:

1. *Same picture again?* A query whose feature equals the *previous* query's is a **repeat**
   (a frozen feed, a stuttering one, a retry): counted, nothing else. One that equals an
   *older* kept query is a **revisit**: it asks nothing new either, so it never joins the
   distance set. A revisit is **in order** when the picture asked just before it is the one
   that preceded that picture last time (``pred[x] == previous``): a replay of a sequence
   (a looping clip, several frozen cameras in turn, a test set sent again in its order).
   Any other revisit is **out of order**: a search going back to a point it already asked,
   which is what a line search or a finite-difference attack does once its step falls below
   a grey level (its points collapse onto pictures it sent before).
2. Otherwise ``x`` is new: ``d`` = its minimum L2 distance to the kept earlier queries ``G``;
   ``log(max(d, DISTANCE_FLOOR))`` joins the distance set ``D`` and ``d / contrast(x)`` (the
   *novelty*: ``contrast`` is the L2 norm of ``x`` less its mean) joins ``N``, both the last
   ``max_distances``; ``x`` joins ``G`` (the last ``max_kept``: bounded memory). Unlike the
   paper's thresholded growth of ``G``, every distinct query joins it (ADR 0031).
3. *Line*: a new ``x`` lies on a line with two of its ``neighbours`` nearest kept queries
   ``a, b`` when the triangle ``x, a, b`` is flat (its two shorter sides add up to less than
   ``line_ratio`` times its longest) and not degenerate (its shortest side is at least
   ``line_split`` of its longest: a point next to one kept query is "on a line" with that
   query and any far one, which says nothing). Line searches (Tramèr et al. 2016) and ART's
   functionally-equivalent extraction (Jagielski et al. 2020) query such points.
4. Once ``|D| >= min_samples``: the Shapiro–Wilk ``W`` (``scipy.stats.shapiro``) of ``D``
   less its ``trim`` most extreme share at each end, and the spread (standard deviation) of
   ``D``.

An alarm is raised, once per stream, by the first of these tests to hold:

- **revisit**: ``revisit_alarm`` out-of-order revisits within the last ``revisit_window``
  queries;
- **shapiro**: ``W < delta`` (the paper's test: seeds plus small perturbations, as Papernot
  et al.'s Jacobian augmentation makes, are far from normal);
- **spread**: the spread is below ``spread_floor`` *and* the median novelty is at least
  ``novelty_floor``: every query as far from its nearest earlier one as from an unrelated
  picture, and all at one scale (random noise, which ``W`` cannot see). A static camera scene
  has the same flat spread at a novelty a hundred times lower: its pictures are one picture
  under sensor noise;
- **line**: ``line_alarm`` new queries on lines (a binary line search's distances are
  log-uniform, which ``W`` cannot see either).

The distances are taken in log space because benign surveillance streams are log-normal-ish,
not normal; the trimmed share keeps a few extreme ones (one near-duplicate frame, the first
frame of each of a few cameras) from deciding ``W``.

Memory is bounded: at most ``max_principals`` streams, the least recently used forgotten
first (a forgotten stream starts afresh; principals are users an admin created).
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from kontur.extraction.images import FEATURE_SIDE

__all__ = ["DISTANCE_FLOOR", "Prada", "PradaConfig", "PradaResult", "PradaTest", "QueryKind"]

#: Distances below this (one grey level on 1/64 of the cells) are taken as this in log space.
DISTANCE_FLOOR = 1e-3
_DIM = FEATURE_SIDE * FEATURE_SIDE
#: A feature with less contrast than this (a uniform picture) counts as this much.
_MIN_CONTRAST = 1e-3


class PradaTest(StrEnum):
    """Which test raised an alarm."""

    REVISIT = "revisit"
    SHAPIRO = "shapiro"
    SPREAD = "spread"
    LINE = "line"


class QueryKind(StrEnum):
    """What one query was to its principal's stream (step 1 of the module)."""

    NEW = "new"
    REPEAT = "repeat"
    """The same picture as the previous query."""
    REPLAY = "replay"
    """The same picture as an older query, asked in the order it was asked before."""
    REVISIT = "revisit"
    """The same picture as an older query, out of order."""


@dataclass(frozen=True, slots=True)
class PradaConfig:
    """PRADA's parameters; the defaults are chosen from ``benchmarks/prada_bench.py`` (ADR 0031)."""

    delta: float = 0.75
    """Alarm when the Shapiro–Wilk W of the (trimmed) log distances falls below this."""
    min_samples: int = 150
    """Distances needed before W and the spread are tested."""
    trim: float = 0.01
    """Share of the distances dropped at each end (rounded up) before W is taken."""
    spread_floor: float = 0.2
    """Alarm when the log distances' standard deviation falls below this ..."""
    novelty_floor: float = 0.5
    """... while the median novelty (distance / the picture's contrast) is at least this."""
    line_ratio: float = 1.005
    """A query is on a line with ``a, b`` when the two shorter sides of the triangle sum to
    less than this times the longest ..."""
    line_split: float = 0.1
    """... and the shortest side is at least this share of the longest."""
    line_alarm: int = 8
    """Alarm at this many queries on lines."""
    neighbours: int = 8
    """Nearest kept queries among which lines are looked for."""
    revisit_alarm: int = 16
    """Alarm at this many out-of-order revisits ..."""
    revisit_window: int = 256
    """... within this many queries (repeats included)."""
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
        for name, low, high in (("trim", 0.0, 0.25), ("line_split", 0.0, 0.5)):
            value = getattr(self, name)
            if not low <= value < high:
                raise ValueError(
                    f"prada.{name}: expected {low:g} <= {name} < {high:g}, got {value}"
                )
        if self.novelty_floor < 0:
            raise ValueError(f"prada.novelty_floor: expected >= 0, got {self.novelty_floor}")
        counts = ("line_alarm", "neighbours", "revisit_alarm", "revisit_window", "max_kept")
        for name in (*counts, "max_principals"):
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
    kind: QueryKind
    samples: int
    """Distances in the tested set."""
    w: float | None
    """Shapiro–Wilk W of the trimmed log distances, once ``samples >= min_samples``."""
    spread: float | None
    novelty: float | None
    """Median novelty of the tested set, once ``samples >= min_samples``."""
    lines: int
    """New queries so far that lay on a line with two kept ones."""
    revisits: int
    """Out-of-order revisits within the last ``revisit_window`` queries."""
    alarm: PradaTest | None = None
    """The test that raised the stream's alarm at *this* query (at most once per stream)."""
    alarmed: bool = False
    """The stream has alarmed, at this query or before."""

    @property
    def repeat(self) -> bool:
        """The same picture as this principal's previous query."""
        return self.kind is QueryKind.REPEAT

    def reason(self, config: PradaConfig) -> str:
        """One line for the audit record: which test, its figure and the query number."""
        if self.alarm is PradaTest.REVISIT:
            what = (
                f"{self.revisits} out-of-order revisits in {config.revisit_window} queries "
                f">= {config.revisit_alarm}"
            )
        elif self.alarm is PradaTest.SHAPIRO:
            what = f"Shapiro-Wilk W {self.w:.3f} < delta {config.delta:g}"
        elif self.alarm is PradaTest.SPREAD:
            what = (
                f"log-distance spread {self.spread:.3f} < floor {config.spread_floor:g} "
                f"at novelty {self.novelty:.2f}"
            )
        elif self.alarm is PradaTest.LINE:
            what = f"{self.lines} queries on lines >= {config.line_alarm}"
        else:
            return f"no alarm at query {self.query}"
        return f"PRADA {self.alarm}: {what} at query {self.query} ({self.samples} distances)"


@dataclass(slots=True)
class _Stream:
    kept: np.ndarray
    slot_key: list[bytes | None]
    """The digest of the feature in each slot of ``kept``."""
    logs: deque[float]
    novelty: deque[float]
    size: int = 0
    head: int = 0
    queries: int = 0
    lines: int = 0
    alarmed: bool = False
    last: bytes | None = None
    """The digest of the previous query's feature."""
    where: dict[bytes, int] = field(default_factory=dict)
    """Kept features by digest: their slot."""
    pred: dict[bytes, bytes | None] = field(default_factory=dict)
    """Kept features by digest: the picture asked just before them, last time."""
    revisits: deque[int] = field(default_factory=deque)
    """Query numbers of the out-of-order revisits in the window."""
    stats: tuple[float | None, float | None, float | None] = (None, None, None)
    """(W, spread, median novelty) of the distance set as it stands (step 4)."""

    def add(self, key: bytes, x: np.ndarray) -> None:
        old = self.slot_key[self.head]
        if old is not None:
            del self.where[old]
            del self.pred[old]
        self.kept[self.head], self.slot_key[self.head] = x, key
        self.where[key], self.pred[key] = self.head, self.last
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
        key = hashlib.blake2b(features.tobytes(), digest_size=16).digest()
        with self._lock:
            stream = self._stream(principal)
            stream.queries += 1
            window_start = stream.queries - self.config.revisit_window
            while stream.revisits and stream.revisits[0] <= window_start:
                stream.revisits.popleft()
            if key == stream.last:
                return self._result(principal, stream, 0.0, QueryKind.REPEAT)
            if key in stream.where:
                return self._revisit(principal, stream, key)
            d = self._new(stream, key, features)
            return self._result(principal, stream, d, QueryKind.NEW)

    def _revisit(self, principal: str, stream: _Stream, key: bytes) -> PradaResult:
        """Step 1 for a picture already kept: a replay in order, or a revisit."""
        in_order = stream.pred[key] == stream.last
        stream.pred[key], stream.last = stream.last, key
        if in_order:
            return self._result(principal, stream, 0.0, QueryKind.REPLAY)
        stream.revisits.append(stream.queries)
        return self._result(principal, stream, 0.0, QueryKind.REVISIT)

    def _new(self, stream: _Stream, key: bytes, features: np.ndarray) -> float | None:
        """Steps 2-3 for a new picture: its distance (None for the stream's first)."""
        x = features.astype(np.float32) / 255.0
        d = None
        if stream.size > 0:
            kept = stream.kept[: stream.size].astype(np.float32) / 255.0
            dist = np.sqrt(np.maximum(((kept - x) ** 2).sum(axis=1), 0.0))
            d = float(dist.min())
            contrast = max(float(np.linalg.norm(x - x.mean())), _MIN_CONTRAST)
            stream.logs.append(math.log(max(d, DISTANCE_FLOOR)))
            stream.novelty.append(d / contrast)
            if self._collinear(kept, dist):
                stream.lines += 1
            stream.stats = self._statistics(stream)
        stream.add(key, features)
        stream.last = key
        return d

    def _stream(self, principal: str) -> _Stream:
        stream = self._streams.pop(principal, None)
        if stream is None:
            c = self.config
            stream = _Stream(
                np.zeros((c.max_kept, _DIM), np.uint8),
                [None] * c.max_kept,
                deque(maxlen=c.max_distances),
                deque(maxlen=c.max_distances),
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
        ok = sides.min(axis=1) > np.maximum(DISTANCE_FLOOR, self.config.line_split * longest)
        if not ok.any():
            return False
        ratio = (sides.sum(axis=1) - longest)[ok] / longest[ok]
        return bool(ratio.min() < self.config.line_ratio)

    def _statistics(self, stream: _Stream) -> tuple[float | None, float | None, float | None]:
        """Step 4: (W, spread, median novelty) once the distance set is large enough."""
        from scipy.stats import shapiro

        c, n = self.config, len(stream.logs)
        if n < c.min_samples:
            return None, None, None
        logs = np.fromiter(stream.logs, np.float64, n)
        spread = float(logs.std())
        cut = math.ceil(c.trim * n)
        tested = np.sort(logs)[cut : n - cut]
        w = 1.0 if float(tested.std()) == 0.0 else float(shapiro(tested).statistic)
        return w, spread, float(np.median(np.fromiter(stream.novelty, np.float64, n)))

    def _result(
        self, principal: str, stream: _Stream, d: float | None, kind: QueryKind
    ) -> PradaResult:
        c = self.config
        w, spread, novelty = stream.stats
        alarm = None
        if not stream.alarmed and kind is not QueryKind.REPEAT:
            if len(stream.revisits) >= c.revisit_alarm:
                alarm = PradaTest.REVISIT
            elif w is not None and w < c.delta:
                alarm = PradaTest.SHAPIRO
            elif (
                spread is not None
                and novelty is not None
                and spread < c.spread_floor
                and novelty >= c.novelty_floor
            ):
                alarm = PradaTest.SPREAD
            elif stream.lines >= c.line_alarm:
                alarm = PradaTest.LINE
            stream.alarmed = alarm is not None
        return PradaResult(
            principal, stream.queries, d, kind, len(stream.logs), w, spread, novelty,
            stream.lines, len(stream.revisits), alarm, stream.alarmed,
        )  # fmt: skip
