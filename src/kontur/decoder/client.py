"""Ingest's side of the sandboxed decoder (ADR 0038).

:class:`SandboxedDecoder` starts ``python -m kontur.decoder._child`` with a memfd frame
buffer it inherits, sends it the sandbox to enter, *measures* the sandbox from
``/proc`` (:func:`kontur.worker.sandbox.measure`; the child's own report is only a claim),
then hands it packets and reads back frames.

Everything the child says is checked against what was asked: a frame for a packet it was
not given, more frames than a packet can yield, a size beyond the buffer or the wire, a
line that does not parse, a silence past ``timeout_s``, or its death is a *lost* decoder:
it is killed, the packet counts as not decoded (the caller's verdict says so), the loss is
reported through ``on_event``, and the next packet starts a fresh child. Past
``max_restarts`` losses it is not restarted: every later packet is not decoded, and
recording, which never passes through the decoder, goes on.

A frame is handed to the caller as a read-only view of a slot of the buffer, valid until
the caller asks for the next one. The child writes a slot again only after the parent's
:class:`FrameTaken` for it, which rides with the next packet (or goes at once when the
child holds no free slot), so a packet costs one round trip, not one per frame.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
from pydantic import ValidationError

from kontur._private import printable
from kontur.decoder.messages import (
    MAX_FRAMES_PER_PACKET,
    MAX_LINE_BYTES,
    MAX_PACKET_BYTES,
    MAX_PTS,
    DecoderFailure,
    DecoderOpen,
    DecoderReady,
    DecoderStart,
    FrameOut,
    FrameTaken,
    PacketDone,
    PacketIn,
    decode_child,
)
from kontur.decoder.packets import DecodeFailed, DecoderLost, RawFrame
from kontur.worker.sandbox import IsolationReport, SandboxPolicy, measure

__all__ = [
    "DecodeFailed",
    "DecoderEventKind",
    "DecoderLost",
    "DecoderSettings",
    "RawFrame",
    "SandboxedDecoder",
]

_log = logging.getLogger(__name__)

DecoderEventKind = Literal["started", "crashed", "hung", "violation", "given_up"]
#: The child's command line (a test may name a stand-in that misbehaves).
CHILD = (sys.executable, "-m", "kontur.decoder._child")
#: Frames a decoder may return beyond the pictures sent since its drain (an MPEG-4 Part 2
#: packed B-frame carries two pictures in one packet).
FRAME_SLACK = 2
#: Imported inside the sandbox, before the drop to uid 65534 (see :mod:`kontur.worker.sandbox`).
PRELOAD = ("numpy", "av")
_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV")


@dataclass(frozen=True)
class DecoderSettings:
    """How ingest runs its decoder."""

    sandbox: dict[str, Any]
    """The sandbox policy (:class:`SandboxPolicy` JSON); its ``scratch_dir`` is a directory
    of its own (each start gets a fresh sub-directory)."""
    slot_bytes: int
    """The largest frame (BGR bytes) it may return."""
    slots: int = 4
    """Frames the buffer holds at once."""
    timeout_s: float = 10.0
    """The longest the child may take to answer (a hung decoder is a lost one)."""
    start_timeout_s: float = 60.0
    max_restarts: int = 5
    threads: int = 0
    command: Sequence[str] = CHILD


class _Lost(Exception):
    def __init__(self, kind: DecoderEventKind, why: str) -> None:
        super().__init__(why)
        self.kind, self.why = kind, why


class _Sent:
    """What the child was sent since its last drain: how many pictures, and their times.

    A decoder returns each picture it was sent once, in presentation order, holding some
    back (reordering, frame threads) until the drain. More frames than pictures (a slack of
    :data:`FRAME_SLACK` for packed B-frames), or a time outside the ones sent, is a decoder
    that lies: a forged time would move frames in the stream (and pace a paced source by it).
    """

    def __init__(self) -> None:
        self.pictures = 0
        self.frames = 0
        self.low: int | None = None
        self.high: int | None = None

    def note_packet(self, picture: bool, pts: int | None) -> None:
        if picture:
            self.pictures += 1
        if pts is not None:
            self.low = pts if self.low is None else min(self.low, pts)
            self.high = pts if self.high is None else max(self.high, pts)

    def refuses(self, pts: int | None) -> str | None:
        """Why a frame with ``pts`` cannot be one of these pictures, or None."""
        self.frames += 1
        if self.frames > self.pictures + FRAME_SLACK:
            return f"expected at most {self.pictures} frame(s) for the pictures sent, got more"
        if pts is None:
            return None
        if self.low is None or self.high is None:
            return f"expected no time (none was sent), got {pts}"
        if not self.low <= pts <= self.high:
            return f"expected a time within {self.low}..{self.high} (as sent), got {pts}"
        return None


class _Child:
    """One running child: its process, pipes, and buffered output lines."""

    def __init__(self, settings: DecoderSettings, buffer_fd: int, scratch: Path) -> None:
        self.settings, self.buf = settings, b""
        env = {k: os.environ[k] for k in _ENV_KEYS if k in os.environ}
        env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1")
        self.log = scratch.parent / f"{scratch.name}.log"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                [*settings.command],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                pass_fds=(buffer_fd,),
                start_new_session=True,
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.in_fd = self.stdin.fileno()
        os.set_blocking(self.in_fd, False)  # a child that stops reading cannot block ingest
        self.fd = self.proc.stdout.fileno()

    def send(self, *msgs: Any, payload: bytes = b"", deadline: float) -> None:
        """Messages in one write (``payload`` after the last one), done by ``deadline``."""
        out = bytearray()
        for msg in msgs:
            body = msg.model_dump_json().encode()
            out += len(body).to_bytes(4, "big") + body
        view = memoryview(bytes(out) + payload)
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self.in_fd], [], left)[1]:
                raise _Lost("hung", "expected it to read its input in time, got a full pipe")
            try:
                view = view[os.write(self.in_fd, view) :]
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                raise _Lost("crashed", self._exit("its input closed")) from None

    def receive(self, deadline: float) -> Any:
        """The child's next message by ``deadline`` (checked for shape only)."""
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE_BYTES:
                raise _Lost("violation", f"expected a line <= {MAX_LINE_BYTES} bytes, got more")
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                timeout = self.settings.timeout_s
                raise _Lost("hung", f"expected an answer within {timeout:g} s, got none")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise _Lost("crashed", self._exit("its output ended"))
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        try:
            msg = decode_child(line)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise _Lost("violation", f"expected a decoder message, got {err['msg']}") from None
        if isinstance(msg, DecoderFailure):
            raise _Lost("crashed", f"it failed: {printable(msg.error[:300])}")
        return msg

    def _exit(self, what: str) -> str:
        """Why the child is gone. A child that exited is named by its exit alone: which pipe
        saw it first (``what``) is a race, and an operator needs one reason per cause."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=1)
        code = self.proc.poll()
        tail = ""
        with contextlib.suppress(OSError):
            tail = self.log.read_bytes()[-300:].decode("utf-8", "replace").strip()
        tail = printable(tail.splitlines()[-1]) if tail else ""
        why = f"it exited (exit {code})" if code is not None else f"{what}, still running"
        return f"{why}{': ' + tail if tail else ''}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


class SandboxedDecoder:
    """Decodes packets in a sandboxed child process (see the module doc)."""

    def __init__(
        self,
        settings: DecoderSettings,
        on_event: Callable[[DecoderEventKind, str, IsolationReport | None], None],
    ) -> None:
        self.settings, self.on_event = settings, on_event
        self.policy = SandboxPolicy.from_json(
            settings.sandbox, default_scratch=Path(str(settings.sandbox["scratch_dir"]))
        )
        size = settings.slots * settings.slot_bytes
        self._fd = os.memfd_create("kontur-decoder", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.ftruncate(self._fd, size)
        # its size is fixed: a child that shrank it would fault ingest's reads (SIGBUS)
        fcntl.fcntl(
            self._fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
        )
        self._mm = mmap.mmap(self._fd, size, prot=mmap.PROT_READ)
        self._returning: list[int] = []
        """Slots the caller is done with that the child has not been told of yet."""
        self._held: set[int] = set()
        """Slots the child wrote that the parent has not handed back."""
        self._child: _Child | None = None
        self._codec: DecoderOpen | None = None
        self._seq = 0
        self._deadline = 0.0
        self._sent = _Sent()
        self.starts = 0
        self.losses = 0
        self.given_up = False
        self.isolation: IsolationReport | None = None

    def open(self, codec: str, extradata: bytes) -> None:
        """Decode ``codec`` from now on (a fresh child when it or its extradata change)."""
        want = DecoderOpen(
            codec=codec,
            extradata_hex=extradata.hex(),
            threads=self.settings.threads,
            slots=self.settings.slots,
            slot_bytes=self.settings.slot_bytes,
        )
        if want != self._codec and self._child is not None:
            self._stop()
        self._codec = want

    def decode(self, data: bytes | None, pts: int | None) -> Iterator[RawFrame]:
        """The frames of one packet (``data`` None: drain the decoder, then reset it).

        Raises :class:`DecodeFailed` when the packet was not decoded (:class:`DecoderLost`
        when the decoder was lost on it). The child has ``timeout_s`` for the packet, the
        time the caller spends on each frame not counted."""
        if self.given_up:
            raise DecoderLost(f"decoder not restarted after {self.losses} losses")
        if data is not None and len(data) > MAX_PACKET_BYTES:
            raise DecodeFailed(f"packet of {len(data)} bytes over {MAX_PACKET_BYTES}: not sent")
        if pts is not None and not -MAX_PTS <= pts <= MAX_PTS:
            pts = None  # a time no frame can carry back: the frame is timed by its place
        self._seq += 1
        try:
            child = self._running()
            self._deadline = time.monotonic() + self.settings.timeout_s
            packet = PacketIn(seq=self._seq, size=len(data or b""), pts=pts)
            child.send(*self._hand_back(), packet, payload=data or b"", deadline=self._deadline)
            self._sent.note_packet(data is not None, pts)
            yield from self._frames(child, self._seq)
        except _Lost as lost:
            self._lose(lost)
            raise DecoderLost(f"decoder {lost.kind}: {lost.why}") from None
        except GeneratorExit:
            self._stop()  # abandoned mid-packet: the protocol cannot go on with this child
            raise
        if data is None:
            self._sent = _Sent()  # drained: nothing is held back any more

    def _frames(self, child: _Child, seq: int) -> Iterator[RawFrame]:
        count = 0
        while True:
            msg = child.receive(self._deadline)
            if isinstance(msg, PacketDone):
                if msg.seq != seq or msg.frames != count:
                    raise _Lost("violation", f"expected packet {seq} done after {count} "
                                f"frame(s), got packet {msg.seq} with {msg.frames}")  # fmt: skip
                if msg.error is not None:
                    raise DecodeFailed(printable(msg.error))
                return
            if not isinstance(msg, FrameOut):
                raise _Lost("violation", f"expected a frame or done, got {msg.type}")
            count += 1
            frame = self._frame(msg, seq, count)
            paused = time.monotonic()
            yield frame
            self._deadline += time.monotonic() - paused  # the caller's time is not the child's
            self._returning.append(msg.slot)
            if len(self._returning) == self.settings.slots:  # the child may wait for one
                child.send(*self._hand_back(), deadline=self._deadline)

    def _hand_back(self) -> list[FrameTaken]:
        """:class:`FrameTaken` for every slot the caller is done with."""
        out = [FrameTaken(slot=s) for s in self._returning]
        self._held.difference_update(self._returning)
        self._returning.clear()
        return out

    def _frame(self, msg: FrameOut, seq: int, count: int) -> RawFrame:
        slots, limit = self.settings.slots, self.settings.slot_bytes
        if msg.seq != seq:
            raise _Lost("violation", f"expected frames of packet {seq}, got one of {msg.seq}")
        if count > MAX_FRAMES_PER_PACKET:
            raise _Lost("violation", f"expected at most {MAX_FRAMES_PER_PACKET} frames "
                        f"for one packet, got more")  # fmt: skip
        if msg.slot >= slots or msg.slot in self._held:
            raise _Lost("violation", f"expected a free slot of {slots}, got slot {msg.slot}")
        if why := self._sent.refuses(msg.pts):
            raise _Lost("violation", why)
        size = msg.width * msg.height * 3
        if size > limit:
            raise _Lost("violation", f"expected a frame within {limit} bytes, "
                        f"got {msg.width}x{msg.height}")  # fmt: skip
        self._held.add(msg.slot)
        view = np.frombuffer(self._mm, np.uint8, count=size, offset=msg.slot * limit)
        return RawFrame(msg.pts, view.reshape(msg.height, msg.width, 3), msg.corrupt)

    def _running(self) -> _Child:
        if self._child is not None:
            return self._child
        if self._codec is None:
            raise RuntimeError("SandboxedDecoder: open() before decode()")
        self.starts += 1
        root = Path(str(self.settings.sandbox["scratch_dir"]))
        scratch = root / f"start-{os.getpid()}-{self.starts}"
        try:
            sandbox = self.sandbox_for(scratch)
            child = _Child(self.settings, self._fd, scratch)
        except OSError as exc:  # no process, no descriptor, no scratch: a lost start
            raise _Lost("crashed", f"expected to start it, got {exc}") from None
        self._child = child
        deadline = time.monotonic() + self.settings.start_timeout_s
        child.send(DecoderStart(sandbox=sandbox, buffer_fd=self._fd), deadline=deadline)
        ready = child.receive(deadline)
        if not isinstance(ready, DecoderReady):
            raise _Lost("violation", f"expected ready, got {ready.type}")
        policy = SandboxPolicy.from_json(sandbox, default_scratch=scratch)
        try:
            self.isolation = measure(child.proc.pid, policy, claimed=ready.isolation)
        except OSError as exc:
            raise _Lost("crashed", f"expected to measure its sandbox, got {exc}") from None
        self.on_event("started", f"start {self.starts}, pid {child.proc.pid}", self.isolation)
        child.send(self._codec, deadline=deadline)
        return child

    def sandbox_for(self, scratch: Path) -> dict[str, Any]:
        """The sandbox a child with scratch dir ``scratch`` enters (the settings' policy,
        PyAV and numpy preloaded); creates the scratch's parent, traversable by its uid."""
        extra = [m for m in self.settings.sandbox.get("preload", []) if m not in PRELOAD]
        scratch.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(scratch.parent, 0o711)  # uid 65534 must traverse it to reach its scratch
        return dict(self.settings.sandbox, scratch_dir=str(scratch), preload=[*PRELOAD, *extra])

    @property
    def pid(self) -> int | None:
        """The running child's pid, None when none runs."""
        return None if self._child is None else self._child.proc.pid

    def _lose(self, lost: _Lost) -> None:
        self._stop()
        self.losses += 1
        self.on_event(lost.kind, lost.why, None)
        if self.losses > self.settings.max_restarts:
            self.given_up = True
            self.on_event("given_up", f"not restarted after {self.losses} losses", None)

    def _stop(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child = None
        self._held.clear()  # a fresh child starts with every slot free
        self._returning.clear()
        self._sent = _Sent()

    def inject_crash(self) -> bool:
        """SIGKILL the running child (``kontur demo --inject-fault decoder-crash``); False
        when none runs."""
        if self._child is None or self._child.proc.poll() is not None:
            return False
        self._child.proc.kill()
        return True

    def close(self) -> None:
        """Stop the child and release the buffer."""
        self._stop()
        with contextlib.suppress(BufferError, ValueError):
            self._mm.close()
        with contextlib.suppress(OSError):
            os.close(self._fd)
