"""Where decisions go: the always-on JSON-lines log, and an optional signed webhook.

Sinks are the gate's I/O edge; the pure :class:`~kontur.gate.Gate` never calls them. The
process shell hands each decision to every sink built by :func:`build_sinks`.

- :class:`LogSink` appends one JSON line per decision (every outcome) and flushes it. A log
  that cannot be written raises: the audit trail must not be lost silently.
- :class:`WebhookSink` POSTs ALLOW and RESTRICT decisions (the receiver acts on
  ``executed``) from a background thread with a bounded queue, so a dead or slow webhook can
  never stall the gate. It signs the body with HMAC-SHA256 when ``secret_env`` is set, follows
  no redirects, and never raises on a network failure: it logs it and keeps it in
  :attr:`WebhookSink.failures`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import queue
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Final, Protocol

from kontur.config import SinksConfig, WebhookConfig
from kontur.gate.errors import SinkConfigError
from kontur.wire import Decision, Outcome, encode

__all__ = [
    "POSTED_OUTCOMES",
    "SIGNATURE_HEADER",
    "LogSink",
    "Sink",
    "WebhookSink",
    "build_sinks",
    "sign",
]

_log = logging.getLogger(__name__)

#: The header carrying ``sha256=<hex HMAC-SHA256 of the body>``.
SIGNATURE_HEADER: Final = "X-Kontur-Signature"
#: The outcomes a webhook is told about: those that execute something automatically.
POSTED_OUTCOMES: Final = frozenset({Outcome.ALLOW, Outcome.RESTRICT})
_FAILURES_KEPT = 100


class Sink(Protocol):
    """Somewhere a decision is delivered."""

    def emit(self, decision: Decision) -> None:
        """Deliver ``decision``."""
        ...

    def close(self) -> None:
        """Release what the sink holds (files, threads)."""
        ...


class LogSink:
    """Appends one JSON line per decision to ``path`` and flushes it (no fsync per line)."""

    def __init__(self, path: Path) -> None:
        """Open ``path`` for appending, creating its folder."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = self.path.open("a", encoding="utf-8")

    def emit(self, decision: Decision) -> None:
        """Append ``decision`` as one line of JSON."""
        self._fh.write(encode(decision).decode() + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def sign(body: bytes, key: bytes) -> str:
    """The ``X-Kontur-Signature`` value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook answer that redirects is a failure, never followed (no scheme or host hop)."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        """Refuse every redirect: urllib then raises HTTPError with the 3xx status."""
        return None


def _shown(url: str) -> str:
    """``url`` without credentials or query, for logs."""
    u = urllib.parse.urlsplit(url)
    return f"{u.scheme}://{u.hostname}{f':{u.port}' if u.port else ''}{u.path}"


def _checked_url(url: str) -> str:
    u = urllib.parse.urlsplit(url)
    if u.scheme.lower() not in ("http", "https") or not u.hostname:
        raise SinkConfigError(f"webhook: expected an http(s) URL with a host, got {_shown(url)!r}")
    return url


def _secret(name: str | None, environ: Mapping[str, str]) -> bytes | None:
    if name is None:
        return None
    value = environ.get(name)
    if not value:
        raise SinkConfigError(
            f"webhook: expected environment variable {name} to hold the HMAC key, found it unset"
        )
    return value.encode()


class WebhookSink:
    """POSTs ALLOW and RESTRICT decisions as JSON to ``config.url``, signed when configured.

    :meth:`emit` only queues (it never blocks and never raises); a daemon thread posts. Use
    :meth:`send` to post synchronously and get the failure back, :meth:`drain` to wait for the
    queue, and :meth:`close` to stop the thread.
    """

    def __init__(
        self,
        config: WebhookConfig,
        *,
        environ: Mapping[str, str] | None = None,
        queue_size: int = 256,
    ) -> None:
        """Refuses a non-http(s) URL, or a ``secret_env`` naming an unset variable."""
        self.url = _checked_url(config.url)
        self.timeout_s = config.timeout_s
        self._key = _secret(config.secret_env, os.environ if environ is None else environ)
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._queue: queue.Queue[Decision | None] = queue.Queue(maxsize=queue_size)
        self._failures: deque[str] = deque(maxlen=_FAILURES_KEPT)
        self._idle = threading.Condition()
        self._busy = 0
        self.delivered = 0
        """Decisions the webhook accepted (2xx)."""
        self._thread = threading.Thread(target=self._run, name="kontur-webhook", daemon=True)
        self._thread.start()

    @property
    def failures(self) -> tuple[str, ...]:
        """The most recent delivery failures (at most 100), oldest first."""
        return tuple(self._failures)

    def _fail(self, decision: Decision, why: str) -> str:
        msg = (
            f"webhook {_shown(self.url)} failed for {decision.rule}/{decision.action} "
            f"({decision.camera_id} frame {decision.frame_index}): {why}"
        )
        self._failures.append(msg)
        _log.warning("%s", msg)
        return msg

    def request_for(self, decision: Decision) -> urllib.request.Request:
        """The POST request for ``decision``: JSON body, signature header when keyed."""
        body = encode(decision)
        headers = {"Content-Type": "application/json", "User-Agent": "kontur-gate"}
        if self._key is not None:
            headers[SIGNATURE_HEADER] = sign(body, self._key)
        return urllib.request.Request(self.url, data=body, headers=headers, method="POST")

    def send(self, decision: Decision) -> str | None:
        """POST ``decision`` now; None when accepted, else the failure (also recorded)."""
        try:
            with self._opener.open(self.request_for(decision), timeout=self.timeout_s) as resp:
                status = int(resp.status)
        except urllib.error.HTTPError as exc:
            return self._fail(decision, f"expected a 2xx answer, got HTTP {exc.code}")
        except Exception as exc:  # a dead webhook must never take the gate down with it
            return self._fail(decision, f"{type(exc).__name__}: {exc}")
        if not 200 <= status < 300:
            return self._fail(decision, f"expected a 2xx answer, got HTTP {status}")
        self.delivered += 1
        return None

    def emit(self, decision: Decision) -> None:
        """Queue ``decision`` for posting if its outcome executes something; never blocks."""
        if decision.outcome not in POSTED_OUTCOMES:
            return
        with self._idle:
            try:
                self._queue.put_nowait(decision)
            except queue.Full:
                self._fail(decision, f"queue full ({self._queue.maxsize}), decision dropped")
                return
            self._busy += 1

    def _run(self) -> None:
        while (decision := self._queue.get()) is not None:
            self.send(decision)
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until every queued decision was posted or failed; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Post what is queued (waiting at most ``timeout``), then stop the thread."""
        self.drain(timeout)
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            return  # the daemon thread dies with the process
        self._thread.join(timeout)


def build_sinks(config: SinksConfig, data_dir: Path) -> list[Sink]:
    """The log sink (always, at ``data_dir / config.log``) and the webhook when configured."""
    sinks: list[Sink] = [LogSink(Path(data_dir) / config.log)]
    if config.webhook is not None:
        sinks.append(WebhookSink(config.webhook))
    return sinks
