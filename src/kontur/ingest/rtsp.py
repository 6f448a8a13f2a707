"""RTSP sources: open over TCP with timeouts, reconnect with backoff, never leak credentials.

A camera stream that drops is not the end of the source: :func:`reconnect` tries again with
exponential backoff and jitter, bounded by :class:`RtspPolicy` (attempts and total time),
and raises :class:`SourceUnreachable` (a :class:`SourceError`) with a one-line message when
the stream does not come back. The caller (:func:`kontur.ingest.source.read_gops`) closes
the current GOP at every reconnect and notes the gap on the next one.

Every message names the source through :func:`redact`: ``rtsp://user:pass@host/`` is shown
as ``rtsp://***@host/``. PyAV's own messages are never passed on whole (they contain the
URL); only their ``strerror``.

FFmpeg never connects to a camera itself (ADR 0037): kontur opens the connection and gives
FFmpeg a plain RTSP URL on a loopback relay (:mod:`kontur.ingest._rtsps_relay`), which
refuses a camera's redirect (a 3xx reply) before FFmpeg could follow it to another host:
:class:`ReplyRefused`, never retried. For ``rtsps://`` kontur terminates TLS itself
(:mod:`kontur.ingest.tls`: the camera's certificate checked against the site CA or a pinned
SHA-256 fingerprint, kontur's client certificate presented where the camera demands one). An
``rtsps://`` source without :attr:`RtspPolicy.tls` is refused, never opened unverified. With
:attr:`RtspPolicy.encryption_required` a plain ``rtsp://`` source is refused.
"""

from __future__ import annotations

import random
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av

from kontur.ingest._rtsps_relay import RtspRelay
from kontur.ingest.errors import SourceError
from kontur.ingest.tls import (
    EncryptionRequired,
    RtspsTrust,
    TlsNotConfigured,
    TlsRefused,
    connect_tls,
)
from kontur.redact import redact_url

__all__ = [
    "ReplyRefused",
    "RtspPolicy",
    "SourceUnreachable",
    "camera_policy",
    "check_encryption",
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


class ReplyRefused(SourceError):
    """A camera reply kontur does not let FFmpeg read: a redirect to another place (3xx),
    or a header line or block over 64 KiB (ADR 0037). Not retried: it is the camera's answer.

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
    tls: RtspsTrust | None = None
    """How an ``rtsps://`` camera is verified and what kontur presents; None refuses rtsps."""
    encryption_required: bool = False
    """Refuse any source but ``rtsps://`` (the camera's ``encryption_required: true``)."""

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


def check_encryption(source: str, policy: RtspPolicy) -> None:
    """EncryptionRequired when the policy demands TLS and ``source`` is not ``rtsps://``."""
    if policy.encryption_required and not source.lower().startswith("rtsps://"):
        scheme = source.partition("://")[0] + "://" if "://" in source else "a local file"
        raise EncryptionRequired(
            f"source {redact(source)}: expected rtsps:// (encryption_required: true), got {scheme}"
        )


def open_rtsp(source: str, policy: RtspPolicy) -> Any:
    """Open an RTSP URL over TCP with the policy's timeouts; raises SourceUnreachable.

    FFmpeg reads the camera through kontur's relay (see the module): ReplyRefused when the
    camera redirects. ``rtsps://`` goes through kontur's own TLS: TlsRefused when the
    camera's certificate does not verify or the camera refuses ours, TlsNotConfigured without
    ``policy.tls``; EncryptionRequired for a plain source the policy forbids.
    """
    check_encryption(source, policy)
    start = time.monotonic()
    tls = source.lower().startswith("rtsps://")
    if tls and policy.tls is None:
        raise TlsNotConfigured(
            f"source {redact(source)}: expected the camera's TLS trust (the site CA or a pinned "
            "fingerprint: kontur camera init-ca, enroll --tls-pin), got none"
        )
    host, port = _address(source, 322 if tls else 554)
    try:
        if policy.tls is not None and tls:
            camera: socket.socket = connect_tls(host, port, policy.tls, policy.open_timeout_s)
        else:
            camera = socket.create_connection((host, port), timeout=policy.open_timeout_s)
    except TlsRefused as exc:
        raise TlsRefused(f"source {redact(source)}: {exc}") from None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError):
            why = f"no answer within {policy.open_timeout_s:g} s (open timeout: {why})"
        raise SourceUnreachable(
            f"source {redact(source)}: expected an RTSP{'S' if tls else ''} server streaming "
            f"video, got {why}"
        ) from None
    relay = RtspRelay(camera, accept_timeout_s=policy.open_timeout_s)
    return _av_open(source, policy, relay, start)


def _address(source: str, default_port: int) -> tuple[str, int]:
    """The camera's host and port from ``source``; SourceUnreachable for a URL without."""
    try:
        url = urlsplit(source)
        host, port = url.hostname or "", url.port or default_port
    except ValueError as exc:
        why = str(exc)
    else:
        if host:
            return host, port
        why = "no host"
    raise SourceUnreachable(
        f"source {redact(source)}: expected a valid {source.partition('://')[0]}:// URL, got {why}"
    )


def _av_open(source: str, policy: RtspPolicy, relay: RtspRelay, start: float) -> Any:
    """``av.open`` on the relay for ``source``; a failure is one line naming the redacted
    source: the relay's refusal first, then the camera's TLS refusal, then FFmpeg's error."""
    options = {
        "rtsp_transport": "tcp",
        "timeout": str(int(policy.read_timeout_s * 1_000_000)),  # socket I/O, microseconds
    }
    url = relay.url_for(source)
    try:
        return av.open(url, options=options, timeout=(policy.open_timeout_s, policy.read_timeout_s))
    except av.error.FFmpegError as exc:
        why = exc.strerror or type(exc).__name__
        relay.close()
        if relay.refusal is not None:
            raise ReplyRefused(f"source {redact(source)}: {relay.refusal}") from None
        if relay.failure is not None and source.lower().startswith("rtsps://"):
            raise _refused(source, policy, relay.failure) from None
        if time.monotonic() - start >= policy.open_timeout_s:
            why = f"no answer within {policy.open_timeout_s:g} s (open timeout: {why})"
        raise SourceUnreachable(
            f"source {redact(source)}: expected an RTSP server streaming video, got {why}"
        ) from None


def _refused(source: str, policy: RtspPolicy, failure: str) -> TlsRefused:
    """The camera ended our TLS session: most often, it wants a client certificate."""
    assert policy.tls is not None
    ours = (
        "with kontur's client certificate"
        if policy.tls.client_cert is not None
        else "(kontur has no client certificate for this camera: enroll --tls-client)"
    )
    return TlsRefused(
        f"source {redact(source)}: expected the camera to accept the TLS session {ours}, "
        f"got: {failure}"
    )


def camera_policy(
    data_dir: Path,
    camera_id: str,
    *,
    encryption_required: bool = False,
    base: RtspPolicy | None = None,
) -> RtspPolicy:
    """``base`` (default timeouts) with this camera's TLS trust from the data dir's inventory
    (site CA, pin, client certificate) and its ``encryption_required``."""
    from kontur.ingest.inventory import Inventory

    with Inventory.open(data_dir) as inventory:
        trust = inventory.rtsps_trust(camera_id)
    return replace(base or RtspPolicy(), tls=trust, encryption_required=encryption_required)


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
