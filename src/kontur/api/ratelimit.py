"""Rate limits: token buckets per principal, and a login throttle per name and per remote.

Pure cores fed an injected :class:`~kontur.clock.Clock` (monotonic time); the HTTP layer asks
them and answers 429 with ``Retry-After``. Memory is bounded: at most ``max_keys`` keys are
kept, the least recently used one is forgotten first (a forgotten bucket is a full one, a
forgotten throttle a clean slate: an attacker needs ``max_keys`` fresh keys to get there,
and the per-remote bucket still holds).

- :class:`TokenBuckets` (issue 11 §7): every route, keyed by the principal's name, or by the
  remote address for unauthenticated calls and failed authentication. ``burst`` calls at
  once, then ``rate_per_s``.
- :class:`LoginThrottle` (issue 11 §3): after ``free`` failures of one key (a user name, a
  remote address), each further attempt must wait ``base_s * 2**(failures - free)`` seconds
  after the last failure, at most ``max_s``. It refuses before the password is hashed, so a
  flood of logins costs no Argon2 work. A success clears the name's count; the account
  lockout itself lives in the user store.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

from kontur.clock import Clock

__all__ = ["LoginThrottle", "TokenBuckets", "retry_after"]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """Token buckets by key; :meth:`take` spends one token or says how long to wait."""

    def __init__(self, rate_per_s: float, burst: int, clock: Clock, max_keys: int = 10_000):
        if not rate_per_s > 0 or burst < 1 or max_keys < 1:
            raise ValueError(
                f"expected rate_per_s > 0, burst >= 1, max_keys >= 1, "
                f"got {rate_per_s}, {burst}, {max_keys}"
            )
        self._rate = rate_per_s
        self._burst = float(burst)
        self._clock = clock
        self._max = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """Spend one token of ``key``: None if allowed, else the seconds until one is back."""
        now = self._clock.monotonic()
        with self._lock:
            b = self._buckets.pop(key, None) or _Bucket(self._burst, now)
            b.tokens = min(self._burst, b.tokens + max(0.0, now - b.stamp) * self._rate)
            b.stamp = now
            self._buckets[key] = b
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return None
            return (1.0 - b.tokens) / self._rate


@dataclass(slots=True)
class _Failures:
    count: int
    last: float


class LoginThrottle:
    """Exponential back-off after failed logins, per key (see the module)."""

    def __init__(
        self,
        clock: Clock,
        *,
        free: int,
        base_s: float = 1.0,
        max_s: float = 60.0,
        max_keys: int = 10_000,
    ) -> None:
        if free < 0 or not base_s > 0 or not max_s >= base_s:
            raise ValueError(
                f"expected free >= 0 and 0 < base_s <= max_s, got {free}, {base_s}, {max_s}"
            )
        self._clock = clock
        self._free = free
        self._base = base_s
        self._max_s = max_s
        self._max_keys = max_keys
        self._seen: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, key: str) -> float | None:
        """None if ``key`` may try now, else the seconds it must still wait."""
        with self._lock:
            f = self._seen.get(key)
        if f is None or f.count < self._free:
            return None
        delay = min(self._max_s, self._base * 2.0 ** (f.count - self._free))
        left = f.last + delay - self._clock.monotonic()
        if left > 0:
            return left
        if left < -self._max_s * 10:  # quiet for long: forget the history
            self.clear(key)
        return None

    def failed(self, key: str) -> None:
        """Count one failure of ``key``."""
        now = self._clock.monotonic()
        with self._lock:
            f = self._seen.pop(key, None) or _Failures(0, now)
            f.count, f.last = f.count + 1, now
            self._seen[key] = f
            while len(self._seen) > self._max_keys:
                self._seen.popitem(last=False)

    def clear(self, key: str) -> None:
        """Forget ``key``'s failures (a successful login)."""
        with self._lock:
            self._seen.pop(key, None)


def retry_after(seconds: float) -> str:
    """The ``Retry-After`` header value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
