"""Injectable clocks.

Verification cores never read the system clock themselves; they receive a :class:`Clock`
(or an explicit ``reference_time``). Tests use :class:`ManualClock`; fault injection
(``--inject-fault clock-jump``) uses :class:`OffsetClock`.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "OffsetClock", "SystemClock"]


class Clock(Protocol):
    """A source of wall time (seconds since the epoch) and monotonic time (seconds)."""

    def wall(self) -> float:
        """Seconds since the Unix epoch, as the receiver believes it."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...


class SystemClock:
    """The machine's clocks."""

    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that only moves when told to; for tests."""

    def __init__(self, wall: float = 1_700_000_000.0, monotonic: float = 1000.0) -> None:
        self._wall = wall
        self._mono = monotonic

    def wall(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward together."""
        if seconds < 0:
            raise ValueError(f"expected a non-negative advance, got {seconds}")
        self._wall += seconds
        self._mono += seconds

    def jump_wall(self, seconds: float) -> None:
        """Move only the wall clock (a clock step, as NTP loss or an attacker causes)."""
        self._wall += seconds


class OffsetClock:
    """Wraps another clock and lets a fault injector step its wall time."""

    def __init__(self, inner: Clock) -> None:
        self._inner = inner
        self._offset = 0.0
        self._lock = threading.Lock()

    def wall(self) -> float:
        with self._lock:
            return self._inner.wall() + self._offset

    def monotonic(self) -> float:
        return self._inner.monotonic()

    def jump_wall(self, seconds: float) -> None:
        """Step the wall clock by ``seconds`` (positive or negative)."""
        with self._lock:
            self._offset += seconds
