"""What the API sends to the supervisor, and the pipe it travels on (ADR 0014's edge table).

The API block's only channel is ``api -> supervisor: audit, operator_verdict, export_request,
incident_request``
(:mod:`kontur.wire.edges`): newline-delimited JSON (:func:`kontur.wire.encode`), read by the
supervisor's :class:`~kontur.wire.channel.Inbox`, which enforces that row. Nothing is ever
sent to the API.

:class:`PipeOutbox` writes whole lines under a lock (request handlers run on several
threads, and a line longer than ``PIPE_BUF`` is not written atomically). Its end of the pipe
is non-blocking: a supervisor that stops reading makes :meth:`PipeOutbox.send` raise
:class:`~kontur.api.errors.OutboxClosed` after ``timeout_s``, never hang a request. What
cannot be audited is not done: callers refuse the request (503) when the send fails.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from typing import Protocol

from kontur.api.errors import OutboxClosed
from kontur.wire.messages import (
    AuditEvent,
    ExportRequest,
    IncidentRequest,
    OperatorVerdict,
    encode,
)

__all__ = ["Outbox", "PipeOutbox"]


class Outbox(Protocol):
    """Where the API's messages to the supervisor go."""

    def send(self, msg: AuditEvent | OperatorVerdict | ExportRequest | IncidentRequest) -> None:
        """Deliver one message, or raise OutboxClosed."""
        ...


class PipeOutbox:
    """Writes messages as JSON lines to the write end ``fd`` of the pipe to the supervisor."""

    def __init__(self, fd: int, timeout_s: float = 2.0) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._broken: str | None = None

    def send(self, msg: AuditEvent | OperatorVerdict | ExportRequest | IncidentRequest) -> None:
        """Write one line; OutboxClosed if the reader is gone or does not read in time."""
        data = memoryview(encode(msg) + b"\n")
        with self._lock:
            if self._broken is not None:
                raise OutboxClosed(self._broken)
            deadline = time.monotonic() + self._timeout_s
            while data:
                try:
                    n = os.write(self._fd, data)
                except BlockingIOError:
                    if not self._wait(deadline):
                        self._broken = (
                            f"expected the supervisor to read the API's pipe, got no read for "
                            f"{self._timeout_s:g} s"
                        )
                        raise OutboxClosed(self._broken) from None
                    continue
                except OSError as exc:  # EPIPE: the supervisor is gone
                    self._broken = f"expected the supervisor's pipe open, got {exc.strerror}"
                    raise OutboxClosed(self._broken) from None
                data = data[n:]

    def _wait(self, deadline: float) -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        _, ready, _ = select.select([], [self._fd], [], left)
        return bool(ready)

    def close(self) -> None:
        """Close the write end (the supervisor's inbox then sees EOF)."""
        with self._lock:
            if self._broken is None:
                self._broken = "expected an open outbox, got a closed one"
            with contextlib.suppress(OSError):
                os.close(self._fd)
