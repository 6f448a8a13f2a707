"""Packets for FFmpeg's decoders, with the zeroed padding they may read past the end.

``av.Packet(data)`` wraps the bytes as they are, without the ``AV_INPUT_BUFFER_PADDING_SIZE``
zero bytes FFmpeg's bitstream readers are allowed to read beyond a packet's end. An MPEG-4
Part 2 decoder then reads whatever memory follows, and the same packets decode to different
pictures from one run to the next (measured on TUD-Campus: frames differ from the 14th to
the 61st on, run to run). ``av.Packet(size)`` allocates the padding zeroed; the bytes are
copied in through the packet's buffer.
"""

from __future__ import annotations

from typing import Any

__all__ = ["padded_packet"]


def padded_packet(data: bytes, pts: int | None = None) -> Any:
    """An ``av.Packet`` holding ``data`` (with zeroed padding) and ``pts``."""
    import av

    packet = av.Packet(len(data))
    memoryview(packet)[:] = data
    packet.pts = pts
    return packet
