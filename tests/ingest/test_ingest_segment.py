"""KSEG1 segments: the archived, byte-for-byte form of one GOP."""

from __future__ import annotations

import pytest

from kontur.ingest.segment import MAGIC, SegmentPacket, pack_segment, unpack_segment

HEADER: dict[str, object] = {"camera_id": "cam-1", "codec": "h264", "gop_index": 7}
PACKETS = [
    SegmentPacket(b"\x00\x00\x00\x01\x65key", 0, True),
    SegmentPacket(b"\x00\x00\x00\x01\x41p-frame", 3, False),
    SegmentPacket(b"", None, False),
    SegmentPacket(bytes(range(256)) * 4, 2**40, False),
]


def test_round_trip_keeps_header_and_packets() -> None:
    data = pack_segment(HEADER, PACKETS)
    assert data.startswith(MAGIC)
    header, packets = unpack_segment(data)
    assert header == HEADER
    assert packets == PACKETS


def test_round_trip_of_an_empty_gop() -> None:
    assert unpack_segment(pack_segment({}, [])) == ({}, [])


def test_pack_is_deterministic_whatever_the_header_key_order() -> None:
    reordered = dict(reversed(list(HEADER.items())))
    assert pack_segment(HEADER, PACKETS) == pack_segment(reordered, PACKETS)


def test_segment_with_bad_magic_is_refused() -> None:
    data = b"KSEG2\n" + pack_segment(HEADER, PACKETS)[len(MAGIC) :]
    with pytest.raises(ValueError, match=r"expected segment magic .*got b'KSEG2\\n'"):
        unpack_segment(data)


def test_segment_without_header_line_is_refused() -> None:
    with pytest.raises(ValueError, match="expected a header line, got none"):
        unpack_segment(MAGIC + b'{"camera_id":"cam-1"')


def test_segment_cut_inside_a_packet_header_is_refused() -> None:
    data = pack_segment(HEADER, PACKETS[:1])
    with pytest.raises(ValueError, match=r"expected a packet header at byte \d+, got 5 bytes"):
        unpack_segment(data + b"\x00" * 5)


@pytest.mark.parametrize("cut", [1, 10, 100])
def test_segment_truncated_inside_packet_bytes_is_refused(cut: int) -> None:
    data = pack_segment(HEADER, PACKETS)
    with pytest.raises(ValueError, match="expected 1024 packet bytes at byte"):
        unpack_segment(data[:-cut])
