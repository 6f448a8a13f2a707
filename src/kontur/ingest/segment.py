"""The archived form of one GOP's raw bitstream ("KSEG1").

::

    b"KSEG1\\n" + header JSON + b"\\n"
    then per packet: uint32be length, int64be pts (or -1), uint8 flags (bit 0 = keyframe), bytes

The packets are the demuxer's, byte for byte (no re-encoding), so a later signature check
(ONVIF Media Signing) can run over exactly what the camera sent.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

__all__ = ["MAGIC", "SegmentPacket", "pack_segment", "unpack_segment"]

MAGIC = b"KSEG1\n"
_PKT = struct.Struct(">IqB")


@dataclass(frozen=True)
class SegmentPacket:
    """One demuxed packet."""

    data: bytes
    pts: int | None
    keyframe: bool


def pack_segment(header: dict[str, object], packets: list[SegmentPacket]) -> bytes:
    """Serialise a GOP: header then packets."""
    out = bytearray(MAGIC)
    out += json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    for p in packets:
        out += _PKT.pack(len(p.data), -1 if p.pts is None else p.pts, 1 if p.keyframe else 0)
        out += p.data
    return bytes(out)


def unpack_segment(data: bytes) -> tuple[dict[str, object], list[SegmentPacket]]:
    """Parse a segment; raises ValueError naming what was expected and found."""
    if not data.startswith(MAGIC):
        raise ValueError(f"expected segment magic {MAGIC!r}, got {data[:6]!r}")
    nl = data.find(b"\n", len(MAGIC))
    if nl < 0:
        raise ValueError("expected a header line, got none")
    header = json.loads(data[len(MAGIC) : nl])
    pos, packets = nl + 1, []
    while pos < len(data):
        if pos + _PKT.size > len(data):
            raise ValueError(f"expected a packet header at byte {pos}, got {len(data) - pos} bytes")
        n, pts, flags = _PKT.unpack_from(data, pos)
        pos += _PKT.size
        if pos + n > len(data):
            raise ValueError(f"expected {n} packet bytes at byte {pos}, got {len(data) - pos}")
        packets.append(
            SegmentPacket(data[pos : pos + n], None if pts < 0 else pts, bool(flags & 1))
        )
        pos += n
    return header, packets
