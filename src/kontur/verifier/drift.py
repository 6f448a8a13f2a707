"""Drift: a camera's detection rate and class mix against a rolling baseline (issue 13 §3).

The paper counts "anomalous results" among the triggers of safe degradation and asks for
"drift monitoring, and refusing an automatic decision when quality is low". The worker's
results are hostile input, so drift is measured here, in the independent verifier, on the
very tracks the gate will decide on; nothing the worker says about itself is asked.

**What is counted.** A camera's results are summarised by *detected objects*: a track the
worker reported for at least ``min_track_s``, counted once when it gets there, in the class
group it showed most (the verifier's ``class_groups`` — person-like, vehicle-like — and one
group for every other class). Arrivals of objects in a scene are close to a Poisson process;
frame counts are not (a person standing for a minute is one object, not 600 detections, and
gives one object's worth of evidence).

**When the tests run.** Observed stream time (pts, gaps over 2 s not counted) is cut into
windows of ``step_s``. When one closes, the last ``window_s`` of windows (the *recent* block)
is compared with the *baseline*: the last ``baseline_s`` of *accepted* windows, which end
``guard_s`` before the recent block. Nothing is tested until the baseline is full; that first
baseline is kept as the *anchor*.

**The tests** (two-sided, exact, each at level α; the counts divided by the dispersion φ):

- rate: the recent and baseline object counts, given their sum, against the binomial of the
  two observed durations (two Poisson rates compared, Przyborowski and Wilenski);
- class mix: for each group, Fisher's exact test of "this group or another" × "recent or
  baseline" (it does not move when the whole scene gets busier or quieter);
- the same tests, baseline against anchor, unless ``unsafe_follow_slow_drift``.

φ ≥ 1 is the Pearson dispersion of the baseline's counts over blocks of ``window_s``: groups
walking together and a tracker that splits a person in two make counts burstier than
Poisson. α comes from ``false_alarms_per_day``: one test every ``step_s`` of stream is
86400 / ``step_s`` evaluations a day, of ``2 (1 + groups)`` tests each, so
α = ``false_alarms_per_day`` · ``step_s`` / 86400 / tests (a union bound: the expected number
of false alarms a day is at most ``false_alarms_per_day`` while φ holds). No level is tuned
to a clip.

**Open and close.** An alarm opens when a test falls below α and closes once every test of
the recent block is back above ``quarantine_p``. While it is open, :meth:`CameraDrift.observe`
returns its reason, and the verifier disagrees with every frame of the camera.

**A slow poisoning.** A baseline that learns everything follows a shift made slowly enough.
Three things stop that: (1) a window joins the baseline only after the guard, and only if
every test of the recent blocks it belonged to stayed above ``quarantine_p`` and no alarm was
open, so a shift the tests merely suspect is never learnt and the baseline keeps the world
before it; (2) what remains learnable is a change too small to reach ``quarantine_p`` within
``guard_s + (window_s + baseline_s) / 2``, the lag between baseline and recent block; (3) the
baseline is itself tested against the anchor, so such steps add up to an alarm once their sum
is significant, however slowly they came. (3) also fires on a scene that legitimately
changes over the day; ``unsafe_follow_slow_drift`` turns it off, with the consequence said.

**Known limits.** The anchor is learnt from the worker's first ``baseline_s`` of a run: a
worker that lies from its start sets its own baseline (the pixel checks of ADR 0025 are the
guard there). A cut in the picture (the verifier's own view) starts the learning afresh: a
camera that is moved is the tamper monitor's event, and comparing two scenes is meaningless.
Few objects mean little evidence: a scene with one arrival a minute needs many minutes. A
camera whose baseline held next to nothing (a car park at night) alarms when a crowd arrives
within a minute: a shift, statistically, and one the operator sees explained at once.

The core is pure: it is fed pts and the worker's objects, and reads no clock.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from kontur.config import DriftConfig

__all__ = [
    "DRIFT_REASON",
    "MAX_GAP_S",
    "MAX_OBJECTS",
    "CameraDrift",
    "DriftTest",
    "binomial_two_sided",
    "dispersion",
    "fisher_two_sided",
]

#: Every drift reason starts with this (the supervisor raises ``anomalous_results`` on it).
DRIFT_REASON = "drift:"
#: A pts step longer than this is a gap (analysis off, source stalled): not observed time.
MAX_GAP_S = 2.0
#: Tracks remembered per camera; the least recently seen go first beyond it.
MAX_OBJECTS = 4096
#: A track unseen for this long is forgotten; its id coming back is a new object.
FORGET_S = 30.0
OTHER = "other"


# ---- exact tests ----------------------------------------------------------------------------
def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _two_sided(log_pmf: Callable[[int], float], k: int, lo: int, hi: int, mean: float) -> float:
    """Twice the smaller tail at ``k`` of a unimodal distribution on ``lo..hi`` (capped at 1).

    The tail on ``k``'s side of the mean is summed outwards, stopping once the terms no longer
    count; the other side is one minus it.
    """
    step, end = (-1, lo) if k <= mean else (1, hi)
    tail, x = 0.0, k
    while True:
        term = math.exp(log_pmf(x))
        tail += term
        if x == end or term <= tail * 1e-17:
            break
        x += step
    other = 1.0 - tail + math.exp(log_pmf(k))
    return max(0.0, min(1.0, 2.0 * min(tail, other)))


def binomial_two_sided(k: int, n: int, p: float) -> float:
    """Two-sided exact p-value of ``k`` successes in ``n`` trials of probability ``p``."""
    if n <= 0 or p <= 0.0 or p >= 1.0:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    return _two_sided(
        lambda x: _log_choose(n, x) + x * lp + (n - x) * lq, min(max(k, 0), n), 0, n, n * p
    )


def fisher_two_sided(a: int, b: int, c: int, d: int) -> float:
    """Fisher's exact test of the 2×2 table ``[[a, b], [c, d]]`` (rows: recent, baseline)."""
    row, col, total = a + b, a + c, a + b + c + d
    lo, hi = max(0, row + col - total), min(row, col)
    if hi <= lo:
        return 1.0
    norm = _log_choose(total, row)
    return _two_sided(
        lambda x: _log_choose(col, x) + _log_choose(total - col, row - x) - norm,
        a,
        lo,
        hi,
        row * col / total,
    )


# ---- counts ---------------------------------------------------------------------------------
@dataclass(slots=True)
class _Window:
    """Objects counted per group over ``seconds`` of observed stream time."""

    seconds: float = 0.0
    objects: Counter[str] = field(default_factory=Counter)
    worst_p: float = 1.0
    """The lowest p of any test this window took part in as part of the recent block."""


@dataclass(frozen=True, slots=True)
class _Block:
    seconds: float
    objects: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.objects.values())

    @classmethod
    def of(cls, windows: Iterable[_Window]) -> _Block:
        seconds, objects = 0.0, Counter[str]()
        for w in windows:
            seconds += w.seconds
            objects.update(w.objects)
        return cls(seconds, objects)


@dataclass(frozen=True, slots=True)
class DriftTest:
    """The lowest p among one comparison's tests, and the reason it would give."""

    p: float
    reason: str


def _rate_reason(label: str, recent: _Block, base: _Block, p: float) -> str:
    return (
        f"{label}: {recent.total} objects in {recent.seconds:.0f} s "
        f"({recent.total / recent.seconds:.3f}/s), expected "
        f"{base.total / base.seconds:.3f}/s from {base.total} in {base.seconds:.0f} s "
        f"(rate test p={p:.1e})"
    )


def _mix_reason(label: str, group: str, recent: _Block, base: _Block, p: float) -> str:
    share = recent.objects[group] / max(recent.total, 1)
    expected = base.objects[group] / max(base.total, 1)
    return (
        f"{label}: {group} {share:.0%} of {recent.total} objects in {recent.seconds:.0f} s, "
        f"expected {expected:.0%} of {base.total} (class mix test p={p:.1e})"
    )


def _compare(
    label: str, recent: _Block, base: _Block, groups: Sequence[str], phi: float
) -> DriftTest:
    """Rate and class-mix tests of ``recent`` against ``base``; the lowest p and its reason."""

    def scaled(n: int) -> int:
        return round(n / phi)

    share = recent.seconds / (recent.seconds + base.seconds)
    n = scaled(recent.total + base.total)
    p = binomial_two_sided(min(scaled(recent.total), n), n, share)
    worst = DriftTest(p, _rate_reason(label, recent, base, p))
    for g in groups:
        a, c = recent.objects[g], base.objects[g]
        b, d = recent.total - a, base.total - c
        p = fisher_two_sided(scaled(a), scaled(b), scaled(c), scaled(d))
        if p < worst.p:
            worst = DriftTest(p, _mix_reason(label, g, recent, base, p))
    return worst


def dispersion(windows: Sequence[_Window], per_block: int) -> float:
    """Pearson dispersion (≥ 1) of the object counts over consecutive blocks of windows."""
    blocks = [_Block.of(windows[i : i + per_block]) for i in range(0, len(windows), per_block)]
    blocks = [b for b in blocks if b.seconds > 0]
    whole = _Block.of(windows)
    if len(blocks) < 3 or whole.total == 0:
        return 1.0
    rate = whole.total / whole.seconds
    chi2 = math.fsum((b.total - rate * b.seconds) ** 2 / (rate * b.seconds) for b in blocks)
    return max(1.0, chi2 / (len(blocks) - 1))


# ---- one camera -----------------------------------------------------------------------------
@dataclass(slots=True)
class _Track:
    first_pts: float
    last_pts: float
    groups: Counter[str] = field(default_factory=Counter)
    counted: bool = False


def _windows(seconds: float, step_s: float, least: int) -> int:
    return max(least, round(seconds / step_s))


class CameraDrift:
    """One camera's drift tests (see the module): fed each checked frame's pts and objects."""

    def __init__(self, config: DriftConfig, class_groups: Sequence[Sequence[str]]) -> None:
        self._c = config
        self._group_of = {name: g[0] for g in class_groups if g for name in g}
        self.groups: tuple[str, ...] = (*dict.fromkeys(self._group_of.values()), OTHER)
        self._k_recent = _windows(config.window_s, config.step_s, 1)
        self._k_guard = _windows(config.guard_s, config.step_s, 0)
        self._k_base = _windows(config.baseline_s, config.step_s, 3 * self._k_recent)
        scales = [self._k_recent]
        while 2 * scales[-1] <= self._k_base:
            scales.append(2 * scales[-1])
        self.scales: tuple[int, ...] = tuple(scales)
        """Recent blocks tested, in windows: ``window_s`` doubled while it fits in the
        baseline, so a shift too small to show in ``window_s`` shows once it lasted longer."""
        comparisons = len(scales) + (0 if config.unsafe_follow_slow_drift else 1)
        self.tests_per_evaluation = comparisons * (1 + len(self.groups))
        self.alpha = (
            config.false_alarms_per_day * config.step_s / 86400.0 / self.tests_per_evaluation
        )
        """The level of every test (see the module: a union bound over a day's tests)."""
        self.evaluations = 0
        self.alarms = 0
        self.quarantined = 0
        self.lowest_p = 1.0
        """The lowest p of any evaluation so far (for benchmarks: how close to an alarm)."""
        self.reset()

    def reset(self) -> None:
        """Forget everything and learn afresh (a cut in the picture: another scene)."""
        self._tracks: OrderedDict[int, _Track] = OrderedDict()
        self._current = _Window()
        self._pending: deque[_Window] = deque()
        self._baseline: deque[_Window] = deque(maxlen=self._k_base)
        self._anchor: _Block | None = None
        self._anchor_phi = 1.0
        self._last_pts: float | None = None
        self._alarm: str | None = None
        self._alarm_since: float | None = None

    @property
    def learning(self) -> bool:
        """True until the first baseline is full (nothing is tested before)."""
        return self._anchor is None

    @property
    def alarm(self) -> str | None:
        """The open alarm's reason, or None."""
        if self._alarm is None:
            return None
        return f"{DRIFT_REASON} {self._alarm} (since {self._alarm_since:.1f} s)"

    def observe(self, pts_s: float, objects: Iterable[tuple[int, str]]) -> str | None:
        """Count one checked frame; returns the open alarm's reason, or None."""
        if not math.isfinite(pts_s):
            return self.alarm
        if self._last_pts is not None:
            step = pts_s - self._last_pts
            if 0.0 < step <= MAX_GAP_S:
                self._current.seconds += step
        if self._last_pts is None or pts_s > self._last_pts:
            self._last_pts = pts_s
        for track_id, class_name in objects:
            self._see(track_id, class_name, pts_s)
        self._forget(pts_s)
        if self._current.seconds >= self._c.step_s:
            self._close(pts_s)
        return self.alarm

    def _see(self, track_id: int, class_name: str, pts_s: float) -> None:
        track = self._tracks.get(track_id)
        if track is None or pts_s - track.last_pts > FORGET_S or pts_s < track.first_pts:
            track = self._tracks[track_id] = _Track(pts_s, pts_s)
        track.last_pts = max(track.last_pts, pts_s)
        track.groups[self._group_of.get(class_name, OTHER)] += 1
        self._tracks.move_to_end(track_id)
        if not track.counted and track.last_pts - track.first_pts >= self._c.min_track_s:
            track.counted = True
            self._current.objects[track.groups.most_common(1)[0][0]] += 1

    def _forget(self, pts_s: float) -> None:
        tracks = self._tracks
        while tracks:
            oldest = next(iter(tracks.values()))
            if pts_s - oldest.last_pts <= FORGET_S and len(tracks) <= MAX_OBJECTS:
                break
            tracks.popitem(last=False)

    def _close(self, pts_s: float) -> None:
        window, self._current = self._current, _Window()
        if self._anchor is None:
            self._baseline.append(window)
            if len(self._baseline) == self._k_base:
                self._anchor = _Block.of(self._baseline)
                self._anchor_phi = dispersion(list(self._baseline), self._k_recent)
            return
        self._pending.append(window)
        if len(self._pending) >= self._k_recent:
            self._evaluate(pts_s)
        while len(self._pending) > self.scales[-1] + self._k_guard:
            old = self._pending.popleft()
            if old.worst_p >= self._c.quarantine_p:
                self._baseline.append(old)
            else:
                self.quarantined += 1

    def _evaluate(self, pts_s: float) -> None:
        assert self._anchor is not None
        base = _Block.of(self._baseline)
        phi = dispersion(list(self._baseline), self._k_recent)
        worst = DriftTest(1.0, "")
        pending = list(self._pending)
        for k in self.scales:
            if k > len(pending):
                break
            recent = _Block.of(pending[-k:])
            label = f"the last {recent.seconds:.0f} s against the baseline"
            test = _compare(label, recent, base, self.groups, phi)
            for w in pending[-k:]:
                w.worst_p = min(w.worst_p, test.p * self.tests_per_evaluation)
            worst = test if test.p < worst.p else worst
        if not self._c.unsafe_follow_slow_drift:
            label = "the baseline against the first one learnt"
            anchored = _compare(label, base, self._anchor, self.groups, max(phi, self._anchor_phi))
            worst = anchored if anchored.p < worst.p else worst
        self._judge(worst, pts_s)

    def _judge(self, worst: DriftTest, pts_s: float) -> None:
        self.evaluations += 1
        self.lowest_p = min(self.lowest_p, worst.p)
        if worst.p < self.alpha:
            if self._alarm is None:
                self.alarms += 1
                self._alarm_since = pts_s
            self._alarm = f"{worst.reason} < {self.alpha:.1e}"
        elif (
            self._alarm is not None and worst.p * self.tests_per_evaluation >= self._c.quarantine_p
        ):
            self._alarm = self._alarm_since = None
