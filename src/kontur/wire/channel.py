"""Newline-delimited JSON messages over OS pipes, between kontur's processes.

Why lines and not pickles or length prefixes (ADR 0002): a line can be parsed by a reader
that does not trust the writer, and a writer killed in the middle of a message (``kill -9``
of a worker) only spoils that one line: the reader drops it as a :class:`WireError` and
resynchronises at the next newline.

Each :class:`Inbox` holds its row of the edge table (:mod:`kontur.wire.edges`): a message of
a type its sender may not send, or about a camera the sender does not serve, is dropped and
kept as a :class:`~kontur.wire.edges.Violation` for the owner to archive, like a line that
does not parse. Only a line cut short by the writer's death (at EOF) is merely counted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
from collections import deque
from collections.abc import Iterable, Iterator

from kontur.wire.edges import Edge, Violation, camera_of
from kontur.wire.messages import (
    MAX_MESSAGE_BYTES,
    Message,
    ProtocolViolation,
    WireError,
    _Msg,
    decode,
    encode,
)

__all__ = ["MAX_VIOLATIONS_KEPT", "Inbox", "Outbox", "forward_violations", "wait_readable"]

#: Violations an inbox keeps until its owner takes them (the count goes on beyond it).
MAX_VIOLATIONS_KEPT = 256


class Outbox:
    """Writes messages to a pipe's write end."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.broken = False
        self._lock = threading.Lock()

    def send(self, msg: _Msg) -> bool:
        """Write one message; returns False (and stays quiet) once the reader is gone.

        Safe from several threads: a message longer than the pipe's atomic size is written
        in pieces, which another thread's message must not split."""
        data = encode(msg) + b"\n"
        view = memoryview(data)
        with self._lock:
            if self.broken:
                return False
            try:
                while view:
                    n = os.write(self.fd, view)
                    view = view[n:]
            except BrokenPipeError:
                self.broken = True
                return False
        return True

    def close(self) -> None:
        """Close the write end."""
        with contextlib.suppress(OSError):
            os.close(self.fd)


class Inbox:
    """Reads messages from a pipe's read end; tolerates garbage from an untrusted writer.

    With an ``edge``, only the types of that row pass; with ``cameras``, only messages about
    those cameras (or about none). Everything else becomes a violation (see the module).
    """

    def __init__(
        self,
        fd: int,
        name: str = "pipe",
        *,
        edge: Edge | None = None,
        cameras: Iterable[str] | None = None,
    ) -> None:
        self.fd = fd
        self.name = name
        self.edge = edge
        self.cameras = None if cameras is None else frozenset(cameras)
        self._buf = bytearray()
        self.eof = False
        self.rejected = 0
        self.last_error: str | None = None
        self.violation_count = 0
        self._violations: deque[Violation] = deque(maxlen=MAX_VIOLATIONS_KEPT)

    def fileno(self) -> int:
        """For :func:`select.select`."""
        return self.fd

    def _fill(self) -> None:
        try:
            chunk = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno in (errno.EBADF, errno.EIO):
                self.eof = True
                return
            raise
        if not chunk:
            self.eof = True
        self._buf += chunk

    def drain(self) -> Iterator[Message]:
        """Read what is available now (one read) and yield every complete, allowed message."""
        self._fill()
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if self.eof and self._buf:
                    # the writer died mid-line (kill -9): one spoilt line, not a violation
                    self._reject(f"expected a complete line before EOF, got {len(self._buf)} bytes")
                    self._buf.clear()
                elif len(self._buf) > MAX_MESSAGE_BYTES:
                    self._violate("?", f"expected a line of at most {MAX_MESSAGE_BYTES} bytes")
                    self._buf.clear()
                return
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            if not line:
                continue
            try:
                msg = decode(line)
            except WireError as exc:
                self._violate("?", str(exc))
                continue
            if self._allowed(msg):
                yield msg

    def _allowed(self, msg: Message) -> bool:
        e = self.edge
        if e is not None and msg.type not in e.types:
            self._violate(
                msg.type,
                f"expected one of {sorted(e.types)} from {e.sender} to {e.receiver}, "
                f"got {msg.type!r}",
            )
            return False
        cam = camera_of(msg)
        if self.cameras is not None and cam is not None and cam not in self.cameras:
            self._violate(msg.type, f"expected a camera among {sorted(self.cameras)}, got {cam!r}")
            return False
        return True

    def _reject(self, why: str) -> None:
        self.rejected += 1
        self.last_error = f"{self.name}: {why}"

    def _violate(self, message_type: str, detail: str) -> None:
        self._reject(detail)
        self.violation_count += 1
        sender = self.edge.sender if self.edge is not None else self.name
        receiver = self.edge.receiver if self.edge is not None else "?"
        self._violations.append(Violation(self.name or sender, receiver, message_type, detail))

    def take_violations(self) -> list[Violation]:
        """The violations seen since the last call (at most :data:`MAX_VIOLATIONS_KEPT`)."""
        out = list(self._violations)
        self._violations.clear()
        return out


def forward_violations(inbox: Inbox, receiver: str, out: Outbox) -> None:
    """Report ``inbox``'s violations to the supervisor (a block that cannot archive)."""
    for v in inbox.take_violations():
        out.send(
            ProtocolViolation(
                sender=v.sender, receiver=receiver, message_type=v.message_type, detail=v.detail
            )
        )


def wait_readable(inboxes: list[Inbox], timeout: float) -> list[Inbox]:
    """The inboxes with data (or EOF) ready within ``timeout`` seconds."""
    live = [i for i in inboxes if not i.eof]
    if not live:
        return []
    ready, _, _ = select.select(live, [], [], timeout)
    return list(ready)
