"""Neighbouring cameras: sustained disagreement between two zones that see the same place.

An ``overlaps`` pairing names a zone of one camera and a zone of another that cover the same
ground. If one camera sees activity there (a foreground fraction, or a count of people) and
the other keeps seeing none, or their counts keep differing, one of them is not showing the
scene: a covered or replayed camera, or a worker that hides or invents people. The paper's
protection complex lists "the agreement of neighbouring cameras" among the tamper cues.

:class:`OverlapMonitor` is a pure state machine, fed each camera's latest reading with its
time (no clock read): a disagreement held for ``min_disagreement_s`` starts a finding that
names both cameras; agreement held for ``clear_s`` ends it. Readings further apart in time
than ``max_skew_s`` are not compared (the cameras' clocks and frame rates differ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from kontur.tamper.errors import TamperConfigError, TamperInputError, TamperOrderError
from kontur.tamper.model import Transition

__all__ = ["Overlap", "OverlapChange", "OverlapConfig", "OverlapFinding", "OverlapMonitor"]


@dataclass(frozen=True)
class Overlap:
    """Zone ``zone_a`` of ``camera_a`` and zone ``zone_b`` of ``camera_b`` see the same place."""

    camera_a: str
    zone_a: str
    camera_b: str
    zone_b: str

    def __post_init__(self) -> None:
        for name in ("camera_a", "zone_a", "camera_b", "zone_b"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise TamperConfigError(
                    f"overlaps.{name}: expected a non-empty string, got {value!r}"
                )
        if self.camera_a == self.camera_b:
            raise TamperConfigError(
                f"overlaps: expected two different cameras, got {self.camera_a!r} twice"
            )

    @property
    def name(self) -> str:
        """``camera_a/zone_a~camera_b/zone_b``."""
        return f"{self.camera_a}/{self.zone_a}~{self.camera_b}/{self.zone_b}"


@dataclass(frozen=True)
class OverlapConfig:
    """When two paired zones disagree, and for how long before it is a finding."""

    active: float = 0.02
    """A foreground fraction at or above this is activity; below a quarter of it, none."""
    count_tolerance: int = 1
    """Counts (when both cameras give them) may differ by this much and still agree."""
    min_disagreement_s: float = 5.0
    """A disagreement must hold this long to become a finding (people cross zone edges)."""
    clear_s: float = 3.0
    """A finding ends once the zones agreed again for this long."""
    max_skew_s: float = 1.0
    """The two readings compared may be at most this far apart in time."""

    def __post_init__(self) -> None:
        for name in ("active", "min_disagreement_s", "clear_s", "max_skew_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TamperConfigError(f"overlaps.{name}: expected a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise TamperConfigError(f"overlaps.{name}: expected a number > 0, got {value}")
        if not 0 < self.active <= 1:
            raise TamperConfigError(f"overlaps.active: expected a fraction, got {self.active}")
        tol = self.count_tolerance
        if isinstance(tol, bool) or not isinstance(tol, int) or tol < 0:
            raise TamperConfigError(f"overlaps.count_tolerance: expected an int >= 0, got {tol!r}")


@dataclass(frozen=True, slots=True)
class OverlapFinding:
    """Two paired zones disagreed from ``start_s`` (to ``end_s``; None while it lasts)."""

    overlap: Overlap
    start_s: float
    end_s: float | None
    reason: str

    @property
    def cameras(self) -> tuple[str, str]:
        """Both cameras: the finding is for each of them."""
        return (self.overlap.camera_a, self.overlap.camera_b)

    def to_json(self) -> dict[str, Any]:
        """``{overlap, cameras, start_s, end_s, reason}``."""
        return {
            "overlap": self.overlap.name,
            "cameras": list(self.cameras),
            "start_s": round(self.start_s, 3),
            "end_s": None if self.end_s is None else round(self.end_s, 3),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class OverlapChange:
    """A finding started or ended; ``at_s`` is when the monitor decided it."""

    transition: Transition
    at_s: float
    finding: OverlapFinding

    def to_json(self) -> dict[str, Any]:
        """``{transition, at_s, finding}``."""
        return {"transition": self.transition.value, "at_s": round(self.at_s, 3),
                "finding": self.finding.to_json()}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Reading:
    t: float
    activity: float
    count: int | None


class OverlapMonitor:
    """Compares the activity of one :class:`Overlap`'s two zones over time."""

    def __init__(self, overlap: Overlap, config: OverlapConfig | None = None) -> None:
        self.overlap = overlap
        self.config = config or OverlapConfig()
        self._latest: dict[str, _Reading] = {}
        self._since: float | None = None
        self._agree_since: float | None = None
        self._finding: OverlapFinding | None = None

    @property
    def finding(self) -> OverlapFinding | None:
        """The open finding, if any."""
        return self._finding

    def observe(
        self, camera_id: str, t: float, activity: float, count: int | None = None
    ) -> list[OverlapChange]:
        """Record ``camera_id``'s reading of its zone at ``t``; returns start/end changes.

        ``activity`` is the zone's foreground fraction (0..1); ``count`` optionally the
        number of objects the camera's analytics see there.
        """
        reading = self._check(camera_id, t, activity, count)
        self._latest[camera_id] = reading
        a = self._latest.get(self.overlap.camera_a)
        b = self._latest.get(self.overlap.camera_b)
        if a is None or b is None or abs(a.t - b.t) > self.config.max_skew_s:
            return []
        why = self._disagreement(a, b)
        return self._step(why, t)

    def _check(self, camera_id: str, t: float, activity: float, count: int | None) -> _Reading:
        if camera_id not in (self.overlap.camera_a, self.overlap.camera_b):
            raise TamperInputError(
                f"camera_id: expected {self.overlap.camera_a!r} or {self.overlap.camera_b!r}, "
                f"got {camera_id!r}"
            )
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
            raise TamperInputError(f"t: expected a finite time in seconds, got {t!r}")
        last = self._latest.get(camera_id)
        if last is not None and t < last.t:
            raise TamperOrderError(f"t: expected {camera_id} at or after {last.t} s, got {t} s")
        ok = not isinstance(activity, bool) and isinstance(activity, int | float)
        if not (ok and math.isfinite(activity) and 0 <= activity <= 1):
            raise TamperInputError(f"activity: expected a fraction 0..1, got {activity!r}")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                                  or count < 0):  # fmt: skip
            raise TamperInputError(f"count: expected an int >= 0 or None, got {count!r}")
        return _Reading(float(t), float(activity), count)

    def _disagreement(self, a: _Reading, b: _Reading) -> str | None:
        c, o = self.config, self.overlap
        if a.count is not None and b.count is not None:
            if abs(a.count - b.count) > c.count_tolerance:
                return (f"{o.camera_a}/{o.zone_a} counts {a.count}, "
                        f"{o.camera_b}/{o.zone_b} counts {b.count}")  # fmt: skip
            return None
        for x, y, cx, cy in ((a, b, o.camera_a, o.camera_b), (b, a, o.camera_b, o.camera_a)):
            if x.activity >= c.active and y.activity < c.active / 4:
                return (f"{cx} sees activity {100 * x.activity:.1f}% where {cy} sees "
                        f"{100 * y.activity:.1f}%")  # fmt: skip
        return None

    def _step(self, why: str | None, t: float) -> list[OverlapChange]:
        c = self.config
        if self._finding is None:
            if why is None:
                self._since = None
                return []
            if self._since is None:
                self._since = t
            if t - self._since < c.min_disagreement_s:
                return []
            self._finding = OverlapFinding(self.overlap, self._since, None, why)
            self._agree_since = None
            return [OverlapChange(Transition.START, t, self._finding)]
        if why is not None:
            self._agree_since = None
            return []
        if self._agree_since is None:
            self._agree_since = t
        if t - self._agree_since < c.clear_s:
            return []
        ended = replace(self._finding, end_s=self._agree_since)
        self._finding, self._since, self._agree_since = None, None, None
        return [OverlapChange(Transition.END, t, ended)]
