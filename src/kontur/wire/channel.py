"""Newline-delimited JSON messages over OS pipes, between kontur's processes.

Why lines and not pickles or length prefixes (ADR 0002): a line can be parsed by a reader
that does not trust the writer, and a writer killed in the middle of a message (``kill -9``
of a worker) only spoils that one line: the reader drops it as a :class:`WireError` and
resynchronises at the next newline.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
from collections.abc import Iterator

from kontur.wire.messages import MAX_MESSAGE_BYTES, Message, WireError, _Msg, decode, encode

__all__ = ["Inbox", "Outbox", "wait_readable"]


class Outbox:
    """Writes messages to a pipe's write end."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.broken = False

    def send(self, msg: _Msg) -> bool:
        """Write one message; returns False (and stays quiet) once the reader is gone."""
        if self.broken:
            return False
        data = encode(msg) + b"\n"
        view = memoryview(data)
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
    """Reads messages from a pipe's read end; tolerates garbage from an untrusted writer."""

    def __init__(self, fd: int, name: str = "pipe") -> None:
        self.fd = fd
        self.name = name
        self._buf = bytearray()
        self.eof = False
        self.rejected = 0
        self.last_error: str | None = None

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
        """Read what is available now (one read) and yield every complete, valid message."""
        self._fill()
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if self.eof and self._buf:
                    self._reject(f"expected a complete line before EOF, got {len(self._buf)} bytes")
                    self._buf.clear()
                elif len(self._buf) > MAX_MESSAGE_BYTES:
                    self._reject(f"expected a line of at most {MAX_MESSAGE_BYTES} bytes")
                    self._buf.clear()
                return
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            if not line:
                continue
            try:
                yield decode(line)
            except WireError as exc:
                self._reject(str(exc))

    def _reject(self, why: str) -> None:
        self.rejected += 1
        self.last_error = f"{self.name}: {why}"


def wait_readable(inboxes: list[Inbox], timeout: float) -> list[Inbox]:
    """The inboxes with data (or EOF) ready within ``timeout`` seconds."""
    live = [i for i in inboxes if not i.eof]
    if not live:
        return []
    ready, _, _ = select.select(live, [], [], timeout)
    return list(ready)
