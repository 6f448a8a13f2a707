"""The loopback relay between FFmpeg's RTSP client and the camera (ADR 0037).

FFmpeg never connects to a camera itself: kontur opens the connection (plain TCP for
``rtsp://``; for ``rtsps://`` its own TLS, :func:`kontur.ingest.tls.connect_tls`: the site CA
or the pinned fingerprint, the client certificate) and hands FFmpeg
``rtsp://127.0.0.1:PORT/…``. With ``rtsp_transport=tcp`` every RTSP request and every
interleaved RTP/RTCP packet rides the one connection FFmpeg opens. FFmpeg follows a 3xx
reply to any host and port its ``Location`` names (plain TCP, the camera's credentials
offered on a 401) and has no option to refuse; so the relay frames what the camera sends
just enough to see each reply's first line (:class:`ReplyFraming`) and refuses a redirect
before FFmpeg reads it. Order of its life:

1. :class:`RtspRelay` listens on an ephemeral port of 127.0.0.1 (never another address);
2. it accepts exactly one connection, and only from a socket of *this* process (checked in
   ``/proc/self/net/tcp`` against ``/proc/self/fd``); any other local peer is closed and
   counted, and the listener is closed once FFmpeg is in;
3. it pumps bytes both ways until either side ends, then closes both; FFmpeg's bytes pass
   unread, the camera's through :class:`ReplyFraming`;
4. a reply FFmpeg must not see (a redirect, a header over 64 KiB) closes both sides and
   :attr:`RtspRelay.refusal` says why in one line; when the camera ends the session with an
   error, or before it answered at all, :attr:`RtspRelay.failure` says so (read by
   ``open_rtsp``, as FFmpeg's own error then reads only "Invalid data found").
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit, urlunsplit

from kontur.redact import redact_url

__all__ = ["ReplyFraming", "RtspRelay"]

_CHUNK = 65536


class RtspRelay:
    """One connection to a camera (TLS or plain TCP), exposed to FFmpeg as plain RTSP on
    loopback, with the camera's redirects refused."""

    def __init__(self, camera: socket.socket, accept_timeout_s: float) -> None:
        """Start relaying ``camera`` (connected; for TLS, established and verified)."""
        self._camera = camera
        self._tls = isinstance(camera, ssl.SSLSocket)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        self.port: int = self._listener.getsockname()[1]
        self._accept_timeout_s = accept_timeout_s
        self._framing = ReplyFraming()
        self.failure: str | None = None
        """Why the camera's side ended abnormally, in one line; None while it has not."""
        self.answered = False
        """Whether the camera has sent any byte of RTSP."""
        self.foreign_peers = 0
        """Connections from other processes that were refused."""
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtsp-relay", daemon=True)
        self._thread.start()

    @property
    def refusal(self) -> str | None:
        """Why the relay cut the camera off (a redirect, an oversized header); else None."""
        return self._framing.refusal

    def url_for(self, source: str) -> str:
        """``source`` (``rtsp[s]://[userinfo@]host[:port]/path?query``) aimed at the relay."""
        parts = urlsplit(source)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(("rtsp", netloc, parts.path, parts.query, ""))

    def close(self) -> None:
        """Stop relaying and close both sides (idempotent)."""
        self._closed.set()
        for sock in (self._listener, self._camera):
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        plain: socket.socket | None = None
        try:
            plain = self._accept()
            if plain is not None:
                self._pump(plain)
        except (OSError, ValueError):
            pass  # closed under us (close()), or a peer that vanished: both end the relay
        finally:
            for sock in (plain, self._listener, self._camera):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()

    def _accept(self) -> socket.socket | None:
        """The first connection that comes from this process; others are closed."""
        deadline = time.monotonic() + self._accept_timeout_s
        while not self._closed.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                self.failure = "FFmpeg did not connect to the relay"
                return None
            self._listener.settimeout(left)
            try:
                conn, peer = self._listener.accept()
            except TimeoutError:
                continue  # the deadline check above says why
            if _ours(peer[1], self.port):
                self._listener.close()
                conn.settimeout(None)
                return conn
            self.foreign_peers += 1
            conn.close()
        return None

    def _pump(self, plain: socket.socket) -> None:
        """Bytes both ways until one side ends."""
        self._camera.setblocking(False)
        while not self._closed.is_set():
            ready: list[socket.socket]
            if self._tls and self._camera.pending():  # type: ignore[attr-defined]
                ready = [self._camera]
            else:
                ready, _, _ = select.select([plain, self._camera], [], [], 0.5)
            for sock in ready:
                if sock is plain:
                    data = plain.recv(_CHUNK)
                    if not data:
                        return  # FFmpeg closed the session (container closed)
                    self._framing.note_request(data)
                    if not self._send_camera(data):
                        return
                elif not self._from_camera(plain):
                    return

    def _from_camera(self, plain: socket.socket) -> bool:
        """Forward what the camera sent, as far as the framing lets it; False at the end."""
        try:
            data = self._camera.recv(_CHUNK)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return True  # a TLS record in progress, or a post-handshake message
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            data = b""
        except ssl.SSLError as exc:
            reason = (exc.reason or "TLS error").replace("_", " ").lower()
            self.failure = f"the camera ended the TLS session with an alert ({reason})"
            return False
        if not data:
            if not self.answered:
                self.failure = f"the camera closed the {self._what} before answering any request"
            return False
        self.answered = True
        out = self._framing.feed(data)
        if out:
            plain.sendall(out)
        return not self._framing.finished

    @property
    def _what(self) -> str:
        return "TLS session" if self._tls else "connection"

    def _send_camera(self, data: bytes) -> bool:
        """Send FFmpeg's bytes to the camera; False when the camera's side has ended."""
        view = memoryview(data)
        while view:
            try:
                sent = self._camera.send(view)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                select.select([self._camera], [self._camera], [], 0.5)
                continue
            except (ssl.SSLError, OSError) as exc:
                if not self.answered:
                    why = getattr(exc, "reason", None)  # an OpenSSL reason such as an alert
                    self.failure = (
                        f"the camera closed the {self._what} before answering any request"
                        + (f" ({why.replace('_', ' ').lower()})" if isinstance(why, str) else "")
                    )
                return False
            view = view[sent:]
        return True


def _ours(peer_port: int, relay_port: int) -> bool:
    """Whether the loopback socket 127.0.0.1:peer_port → relay_port is one of our own fds."""
    want_local = f"0100007F:{peer_port:04X}"
    want_remote = f"0100007F:{relay_port:04X}"
    try:
        with open("/proc/self/net/tcp", encoding="ascii") as table:
            rows = [line.split() for line in table.readlines()[1:]]
        inodes = {r[9] for r in rows if r[1] == want_local and r[2] == want_remote}
        if not inodes:
            return False
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/self/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return True
    except OSError:
        return False  # no /proc: fail closed, FFmpeg's connection is refused too
    return False


# ---------------------------------------------------------------- the framing core

_LINE, _FRAME_HEAD, _FRAME, _BODY, _REFUSED = range(5)
_MAX_HEADER = 64 * 1024
_FFMPEG_LINE = 4095  # ff_rtsp_read_reply keeps a line in char buf[4096]
_FFMPEG_WORD = 1023  # get_word copies a word into char buf1[1024]
_C_SPACE = b" \t\n\v\f\r"  # isspace(): what atoi and strtol skip
_WORD_SPACE = b" \t\r\n"  # SPACE_CHARS: what get_word skips and stops at
_WORDS = re.compile(rb"[ \t\r\n]*[^ \t\r\n]*[ \t\r\n]*([^ \t\r\n]*)")
_METHOD = re.compile(rb"([A-Z_]{2,20}) ")
_NO_REDIRECT = "expected no redirect (a camera may not send kontur elsewhere)"


class ReplyFraming:
    """What the camera sends, framed as FFmpeg frames it while it waits for a reply
    (``ff_rtsp_read_reply`` with ``return_on_interleaved_data=0``, libavformat/rtsp.c):
    fed in order, :meth:`feed` returns the bytes that may go on to FFmpeg now.

    Only this is read: line ends (``\\n``; FFmpeg drops ``\\r`` anywhere in a line, a NUL
    ends the line as a C string, 4095 bytes are kept), ``$`` where a line is still empty (an
    interleaved frame: channel, 16-bit length, payload, passed on unread, after which FFmpeg
    goes on with the same line), an empty line (the end of the header block, then the body of
    the last ``Content-Length:``) and the first line's second word (the status, read by
    ``atoi`` into an ``int`` as FFmpeg reads it). Each line is held back until it is
    complete; a first line whose status is 3xx never goes on (:attr:`refusal`: FFmpeg would
    follow it to another host), and what follows it is kept only to name its ``Location``.
    A line or a header block over 64 KiB is refused. Frames and bodies pass through unread.
    """

    def __init__(self) -> None:
        self.refusal: str | None = None
        """Why the camera's bytes were cut off, in one line; None while they were not."""
        self.finished = False
        """Whether the refusal is complete: nothing more is read or passed on."""
        self.method = ""
        """The request FFmpeg sent last (only for the refusal's wording)."""
        self._state = _LINE
        self._line = bytearray()  # the current line as received, held back
        self._started = False  # the line has a byte other than "\r" (FFmpeg's q != buf)
        self._line_no = 0
        self._header = 0  # bytes of the current header block
        self._length = 0  # the message's Content-Length, as FFmpeg's int
        self._need = 0  # bytes left of a frame header, a frame or a body
        self._frame = bytearray()
        self._status = 0

    def feed(self, data: bytes) -> bytes:
        """The part of ``data`` (the camera's next bytes) that may go to FFmpeg now."""
        out = bytearray()
        i = 0
        while i < len(data) and not self.finished:
            if self._state == _LINE:
                i = self._feed_line(data, i, out)
            elif self._state == _REFUSED:
                i = self._feed_refused(data, i)
            else:
                i = self._feed_counted(data, i, out)
        return bytes(out)

    def _feed_counted(self, data: bytes, i: int, out: bytearray) -> int:
        """A frame's channel and length, its payload, or a body: passed on unread."""
        take = data[i : i + self._need]
        out += take
        self._need -= len(take)
        if self._state == _FRAME_HEAD:
            self._frame += take
        if self._need > 0:
            return i + len(take)
        if self._state == _FRAME_HEAD:
            self._state, self._need = _FRAME, int.from_bytes(self._frame[1:3], "big")
            if self._need > 0:
                return i + len(take)
        if self._state == _BODY:
            self._line_no = self._header = self._length = 0
        self._state = _LINE
        return i + len(take)

    def _feed_line(self, data: bytes, i: int, out: bytearray) -> int:
        """Bytes of a line, held back; at its end, :meth:`_end_of_line` decides."""
        while not self._started and i < len(data) and data[i] in b"\r$":
            if data[i] == 0x24:  # "$" while FFmpeg's line is still empty: a frame
                out += self._line + b"$"  # the line so far is "\r"s only
                self._line = bytearray()
                self._state, self._need, self._frame = _FRAME_HEAD, 3, bytearray()
                return i + 1
            self._line.append(0x0D)
            i += 1
        if i == len(data):
            return i
        self._started = True
        end = data.find(b"\n", i)
        stop = len(data) if end < 0 else end + 1
        self._line += data[i:stop]
        if self._header + len(self._line) > _MAX_HEADER:
            self._refuse("expected RTSP header lines under 64 KiB, got more")
        elif end >= 0:
            self._end_of_line(out)
        return stop

    def _end_of_line(self, out: bytearray) -> None:
        """A complete line: the end of a header block, a first line or a header."""
        line, text = bytes(self._line), _c_line(self._line)
        self._line, self._started = bytearray(), False
        if not text:  # the end of the header block (FFmpeg: buf[0] == '\0')
            out += line
            if self._length > 0:
                self._state, self._need = _BODY, self._length
            else:
                self._line_no = self._header = 0
            return
        if self._line_no == 0:
            self._status = _atoi(_second_word(text))
            if 300 <= self._status < 400:
                self._state, self._frame = _REFUSED, bytearray()
                self.refusal = self._redirect("(no Location)")
                return
        elif text[:15].lower() == b"content-length:":
            self._length = _c_int(_strtol(text[15:]))
        self._line_no += 1
        self._header += len(line)
        out += line

    def _feed_refused(self, data: bytes, i: int) -> int:
        """After a 3xx first line: read on (up to 64 KiB) only to name its Location."""
        self._frame += data[i:]
        lines = bytes(self._frame).split(b"\n")
        for raw in lines[:-1]:
            text = _c_line(raw)
            if not text:
                self.finished = True
                break
            if text[:9].lower() == b"location:":
                where = redact_url(text[9:].strip(_WORD_SPACE).decode("latin-1"))
                where = "".join(c if c.isprintable() else "?" for c in where)[:200]
                self.refusal = self._redirect(f"to {where}")
        if len(self._frame) > _MAX_HEADER:
            self.finished = True
        return len(data)

    def _redirect(self, where: str) -> str:
        asked = self.method or "a request"
        return f"camera answered {asked} with {self._status} {where}: {_NO_REDIRECT}"

    def _refuse(self, why: str) -> None:
        self.refusal, self.finished, self._state = why, True, _REFUSED

    def note_request(self, data: bytes) -> None:
        """Remember the method of a request FFmpeg sends (for the refusal's wording)."""
        match = _METHOD.match(data)
        if match is not None:
            self.method = match[1].decode("ascii")


def _c_line(raw: bytes | bytearray) -> bytes:
    """A line as FFmpeg's C string: no "\\r", no "\\n", cut at a NUL, at most 4095 bytes."""
    return bytes(raw).replace(b"\r", b"").rstrip(b"\n")[:_FFMPEG_LINE].partition(b"\0")[0]


def _second_word(text: bytes) -> bytes:
    """The second of FFmpeg's ``get_word`` words (they end at " \\t\\r\\n" only)."""
    match = _WORDS.match(text)
    return match[1] if match is not None else b""


def _strtol(text: bytes) -> int:
    """C's ``strtol(text, NULL, 10)`` on a 64-bit ``long``: saturates, never fails."""
    text = text.lstrip(_C_SPACE)
    sign = -1 if text[:1] == b"-" else 1
    if text[:1] in (b"-", b"+"):
        text = text[1:]
    digits = len(text) - len(text.lstrip(b"0123456789"))
    value = sign * int(text[:digits] or b"0")
    return max(-(2**63), min(2**63 - 1, value))


def _c_int(value: int) -> int:
    """A ``long`` stored in a C ``int`` (two's complement, 32 bits)."""
    return (value + 2**31) % 2**32 - 2**31


def _atoi(word: bytes) -> int:
    """C's ``atoi`` on a word as FFmpeg's ``get_word`` copies it (1023 bytes at most)."""
    return _c_int(_strtol(word[:_FFMPEG_WORD]))
