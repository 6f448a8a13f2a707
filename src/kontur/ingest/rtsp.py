"""RTSP sources: open over TCP with timeouts, reconnect with backoff, never leak credentials.

A camera stream that drops is not the end of the source: :func:`reconnect` tries again with
exponential backoff and jitter, bounded by :class:`RtspPolicy` (attempts and total time),
and raises :class:`SourceUnreachable` (a :class:`SourceError`) with a one-line message when
the stream does not come back. The caller (:func:`kontur.ingest.source.read_gops`) closes
the current GOP at every reconnect and notes the gap on the next one.

Every message names the source through :func:`redact`: ``rtsp://user:pass@host/`` is shown
as ``rtsp://***@host/``. PyAV's own messages are never passed on whole (they contain the
URL); only their ``strerror``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import av

from kontur.ingest.errors import SourceError
from kontur.redact import redact_url

__all__ = [
    "RtspPolicy",
    "SourceUnreachable",
    "describe_loss",
    "is_rtsp",
    "open_rtsp",
    "reconnect",
    "redact",
]


class SourceUnreachable(SourceError):
    """A network source that does not answer, or does not come back within the policy.

    (A leaf of ``SourceError``; ``kontur.ingest.errors`` should list it in its tree.)
    """


@dataclass(frozen=True)
class RtspPolicy:
    """Timeouts and the reconnect budget of one RTSP source."""

    open_timeout_s: float = 5.0
    """Longest wait for the server to answer DESCRIBE/SETUP/PLAY and the first packets."""
    read_timeout_s: float = 5.0
    """Longest silence mid-stream before the session counts as lost."""
    max_attempts: int = 8
    """Reconnect attempts after a loss before giving up."""
    max_total_s: float = 60.0
    """Longest time spent reconnecting after one loss before giving up."""
    backoff_initial_s: float = 0.5
    """Wait before the first reconnect attempt; doubles with each further attempt."""
    backoff_max_s: float = 10.0
    """Cap on one wait."""
    jitter: float = 0.2
    """Each wait is scaled by a random factor in [1 - jitter, 1 + jitter]."""

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before reconnect attempt ``attempt`` (1-based)."""
        base = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** (attempt - 1))
        return max(0.0, base * (1.0 + self.jitter * (2.0 * rng.random() - 1.0)))


def redact(source: str) -> str:
    """``source`` with any ``user:password@`` of a URL replaced by ``***@`` (and secret query
    values by ``***``): :func:`kontur.redact.redact_url`, the one rule for every record."""
    return redact_url(source)


def is_rtsp(source: str) -> bool:
    """True for ``rtsp://`` and ``rtsps://`` URLs."""
    return source.lower().startswith(("rtsp://", "rtsps://"))


def describe_loss(exc: Exception, policy: RtspPolicy) -> str:
    """Why a session ended, in words (PyAV's timeout surfaces as an "exit requested")."""
    if isinstance(exc, av.error.ExitError):
        return f"no data for {policy.read_timeout_s:g} s (read timeout)"
    return getattr(exc, "strerror", None) or type(exc).__name__


def open_rtsp(source: str, policy: RtspPolicy) -> Any:
    """Open an RTSP URL over TCP with the policy's timeouts; raises SourceUnreachable."""
    options = {
        "rtsp_transport": "tcp",
        "timeout": str(int(policy.read_timeout_s * 1_000_000)),  # socket I/O, microseconds
    }
    start = time.monotonic()
    try:
        return av.open(
            source, options=options, timeout=(policy.open_timeout_s, policy.read_timeout_s)
        )
    except av.error.FFmpegError as exc:
        why = exc.strerror or type(exc).__name__
        if time.monotonic() - start >= policy.open_timeout_s:
            why = f"no answer within {policy.open_timeout_s:g} s (open timeout: {why})"
        raise SourceUnreachable(
            f"source {redact(source)}: expected an RTSP server streaming video, got {why}"
        ) from None


def reconnect(
    source: str, policy: RtspPolicy, cause: str, rng: random.Random | None = None
) -> tuple[Any, int]:
    """Reopen ``source`` with backoff; returns the container and the attempts it took.

    Raises :class:`SourceUnreachable` after ``max_attempts`` attempts or ``max_total_s``.
    """
    rng = rng or random.Random()
    start = time.monotonic()
    last, tried = cause, 0
    for attempt in range(1, policy.max_attempts + 1):
        wait = policy.delay(attempt, rng)
        if time.monotonic() - start + wait > policy.max_total_s:
            break
        time.sleep(wait)
        tried = attempt
        try:
            return open_rtsp(source, policy), attempt
        except SourceUnreachable as exc:
            last = str(exc).partition("streaming video, got ")[2]
    raise SourceUnreachable(
        f"source {redact(source)}: expected the stream back after it was lost ({cause}), "
        f"got {last} on every reconnect attempt ({tried} in "
        f"{time.monotonic() - start:.1f} s)"
    )
