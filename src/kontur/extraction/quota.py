"""A daily query quota per principal, as a pure core on an injected clock.

A day is a UTC day of the clock's wall time (``floor(wall / 86400)``): at midnight UTC every
principal's count starts again from zero. :meth:`DailyQuota.take` spends one query or says
how many seconds remain until the day turns (the ``Retry-After`` of the 429). Memory is
bounded: at most ``max_keys`` principals are counted, the least recently seen forgotten
first (principals are users an admin created; a forgotten count is lost for that day).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from kontur.clock import Clock

__all__ = ["DAY_S", "DailyQuota", "QuotaVerdict"]

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class QuotaVerdict:
    """One :meth:`DailyQuota.take`: allowed or not, and for how long not."""

    allowed: bool
    used: int
    """Queries counted today, this one included when allowed."""
    limit: int
    retry_after_s: float | None
    """Seconds until the day turns, when refused."""
    first_refusal: bool
    """The first refusal of this principal today (audit it; later ones are covered)."""


@dataclass(slots=True)
class _Count:
    day: int
    used: int = 0
    refused: int = 0


class DailyQuota:
    """Per-principal daily counts (see the module); thread-safe."""

    def __init__(self, per_day: int, clock: Clock, max_keys: int = 10_000) -> None:
        if per_day < 1 or max_keys < 1:
            raise ValueError(
                f"quota: expected per_day >= 1 and max_keys >= 1, got {per_day}, {max_keys}"
            )
        self.per_day = per_day
        self._clock = clock
        self._max = max_keys
        self._counts: OrderedDict[str, _Count] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, principal: str) -> QuotaVerdict:
        """Spend one query of ``principal`` today, or refuse it until the day turns."""
        now = self._clock.wall()
        day = int(now // DAY_S)
        with self._lock:
            count = self._counts.pop(principal, None)
            if count is None or count.day != day:
                count = _Count(day)
            self._counts[principal] = count
            while len(self._counts) > self._max:
                self._counts.popitem(last=False)
            if count.used < self.per_day:
                count.used += 1
                return QuotaVerdict(True, count.used, self.per_day, None, False)
            count.refused += 1
            wait = (day + 1) * DAY_S - now
            return QuotaVerdict(False, count.used, self.per_day, wait, count.refused == 1)
