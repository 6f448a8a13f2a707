"""The sandboxed decoder: ``python -m kontur.decoder._child`` (protocol on stdio, ADR 0038).

Order of steps: read :class:`DecoderStart` from stdin and map the frame buffer (the memfd the
parent made and names in it), both before the sandbox; enter the sandbox it names
(:func:`kontur.worker.sandbox.enter`: no network, no file but its scratch, seccomp with no
new process, limits, uid 65534; before numpy or PyAV is imported, which the policy's
``preload`` then imports); send :class:`DecoderReady` with the isolation claim; then serve
:class:`DecoderOpen` and :class:`PacketIn` until stdin ends. Each decoded frame is
converted to BGR, written into a free slot of the buffer and announced with
:class:`FrameOut`; a slot is free again once the parent's :class:`FrameTaken` for it has
been read (the child waits for one only when every slot is taken). A packet FFmpeg refuses is a
:class:`PacketDone` with its error; anything else that fails is one :class:`DecoderFailure`
line and exit status 3.

This module imports nothing that starts a thread (the sandbox needs one thread at enter).
"""

from __future__ import annotations

import mmap
import os
import sys
from pathlib import Path
from typing import Any, BinaryIO

from kontur._private import read_exact
from kontur.decoder.messages import (
    MAX_FRAMES_PER_PACKET,
    MAX_SIDE,
    DecoderFailure,
    DecoderOpen,
    DecoderReady,
    DecoderStart,
    FrameOut,
    FrameTaken,
    PacketDone,
    PacketIn,
    decode_parent,
)
from kontur.decoder.packets import padded_packet
from kontur.worker.sandbox import SandboxPolicy, enter

__all__ = ["main"]

_MAX_MESSAGE = 1 << 21


def _receive(stdin: BinaryIO) -> Any:
    """The parent's next message, or None at the end of its input."""
    head = stdin.read(4)
    if not head:
        return None
    size = int.from_bytes(head + read_exact(stdin, 4 - len(head)), "big")
    if size > _MAX_MESSAGE:
        raise ValueError(f"expected a message <= {_MAX_MESSAGE} bytes, got {size}")
    return decode_parent(read_exact(stdin, size))


def _send(msg: DecoderReady | FrameOut | PacketDone | DecoderFailure, flush: bool = True) -> None:
    """One line to the parent; a packet's frames go out in one write with its done."""
    out = sys.stdout.buffer
    out.write(msg.model_dump_json().encode() + b"\n")
    if flush:
        out.flush()


class _Decoder:
    """An FFmpeg decoder built from a codec name and extradata only, writing its frames into
    the shared buffer one at a time."""

    def __init__(self, buffer: mmap.mmap, stdin: BinaryIO) -> None:
        self.buffer, self.stdin = buffer, stdin
        self.ctx: Any = None
        self.limit = 0
        self.free: set[int] = set()

    def open(self, msg: DecoderOpen) -> None:
        import av

        if msg.slots * msg.slot_bytes > len(self.buffer):
            raise ValueError(
                f"expected a buffer of {msg.slots} x {msg.slot_bytes} bytes, got {len(self.buffer)}"
            )
        ctx = av.CodecContext.create(msg.codec, "r")
        if msg.extradata_hex:
            ctx.extradata = bytes.fromhex(msg.extradata_hex)
        ctx.thread_type = "AUTO"
        ctx.thread_count = msg.threads
        self.ctx, self.limit, self.free = ctx, msg.slot_bytes, set(range(msg.slots))

    def taken(self, msg: FrameTaken) -> None:
        """The parent is done with a slot."""
        self.free.add(msg.slot)

    def _slot(self) -> int:
        """A free slot; waits for the parent's :class:`FrameTaken` when none is."""
        while not self.free:
            sys.stdout.buffer.flush()  # the parent hands slots back for frames it has seen
            msg = _receive(self.stdin)
            if not isinstance(msg, FrameTaken):
                raise ValueError(f"expected the parent to hand a slot back, got {msg!r}")
            self.taken(msg)
        return min(self.free)

    def packet(self, msg: PacketIn) -> None:
        import av

        if self.ctx is None:
            raise ValueError("expected an open message before the first packet")
        data = read_exact(self.stdin, msg.size) if msg.size else None
        packet = None if data is None else padded_packet(data, msg.pts)
        try:
            frames = self.ctx.decode(packet)
        except (av.error.FFmpegError, EOFError) as exc:
            _send(PacketDone(seq=msg.seq, frames=0, error=_why(exc)))
            return
        finally:
            if packet is None:
                self.ctx.flush_buffers()  # drained: ready for the next (closed) GOP
        self._emit(msg.seq, frames)

    def _emit(self, seq: int, frames: list[Any]) -> None:
        import numpy as np

        sent = 0
        for f in frames[:MAX_FRAMES_PER_PACKET]:
            image = f.to_ndarray(format="bgr24")
            h, w = image.shape[:2]
            if image.nbytes > self.limit or max(w, h) > MAX_SIDE:
                _send(PacketDone(seq=seq, frames=sent, error=f"frame {w}x{h} over the buffer"))
                return
            slot = self._slot()
            self.free.discard(slot)
            at = slot * self.limit
            view = np.frombuffer(self.buffer, np.uint8, count=image.nbytes, offset=at)
            view.reshape(h, w, 3)[:] = image
            corrupt = bool(f.is_corrupt)
            frame = FrameOut(seq=seq, slot=slot, width=w, height=h, pts=f.pts, corrupt=corrupt)
            _send(frame, flush=False)
            sent += 1
        _send(PacketDone(seq=seq, frames=sent))


def _why(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def _run(stdin: BinaryIO) -> None:
    start = _receive(stdin)
    if not isinstance(start, DecoderStart):
        raise ValueError(f"expected a start message, got {type(start).__name__}")
    size = os.fstat(start.buffer_fd).st_size
    buffer = mmap.mmap(start.buffer_fd, size, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(start.buffer_fd)
    scratch = Path(str(start.sandbox.get("scratch_dir", "")))
    isolation = enter(SandboxPolicy.from_json(start.sandbox, default_scratch=scratch))
    _send(DecoderReady(isolation=isolation.to_json()))
    decoder = _Decoder(buffer, stdin)
    while (msg := _receive(stdin)) is not None:
        if isinstance(msg, DecoderOpen):
            decoder.open(msg)
        elif isinstance(msg, PacketIn):
            decoder.packet(msg)
        elif isinstance(msg, FrameTaken):
            decoder.taken(msg)
        else:
            raise ValueError(f"expected an open or a packet message, got {msg.type}")


def main() -> int:
    """Entry point (steps in the module doc)."""
    try:
        _run(sys.stdin.buffer)
    except Exception as exc:  # any failure of the untrusted work is one failure line
        _send(DecoderFailure(error=_why(exc)[:2000]))
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
