"""Packets for FFmpeg's decoders, with the zeroed padding they may read past the end.

``av.Packet(data)`` wraps the bytes as they are, without the ``AV_INPUT_BUFFER_PADDING_SIZE``
zero bytes FFmpeg's bitstream readers are allowed to read beyond a packet's end. An MPEG-4
Part 2 decoder then reads whatever memory follows, and the same packets decode to different
pictures from one run to the next (measured on TUD-Campus: frames differ from the 14th to
the 61st on, run to run). ``av.Packet(size)`` allocates the padding zeroed; the bytes are
copied in through the packet's buffer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["DecodeFailed", "DecoderLost", "PacketDecoder", "RawFrame", "padded_packet"]


class DecodeFailed(Exception):
    """A packet was not decoded: FFmpeg refused it, or the decoder was lost on it."""


class DecoderLost(DecodeFailed):
    """The decoder was lost on a packet (crashed, hung, broke the protocol) or is given up:
    a fresh one holds none of the GOP's reference frames, so the rest of the GOP cannot
    decode; its packets are not sent (they count as frames not decoded)."""


@dataclass(frozen=True)
class RawFrame:
    """A decoded frame: its packet's ``pts`` (the container's time base), the image (BGR
    ``numpy`` array, read-only, valid until the next frame is asked for) and FFmpeg's
    corrupt flag."""

    pts: int | None
    image: Any
    corrupt: bool


class PacketDecoder(Protocol):
    """Decodes one stream's packets out of process
    (:class:`~kontur.decoder.client.SandboxedDecoder`)."""

    def open(self, codec: str, extradata: bytes) -> None:
        """Decode ``codec`` (FFmpeg's name) with ``extradata`` from now on."""

    def decode(self, data: bytes | None, pts: int | None) -> Iterator[RawFrame]:
        """The frames of one packet (``data`` None: drain, then reset for the next GOP);
        raises :class:`DecodeFailed` when the packet was not decoded."""
        ...


def padded_packet(data: bytes, pts: int | None = None) -> Any:
    """An ``av.Packet`` holding ``data`` (with zeroed padding) and ``pts``."""
    import av

    packet = av.Packet(len(data))
    memoryview(packet)[:] = data
    packet.pts = pts
    return packet
