"""NAL framing, emulation prevention, header classification and extradata."""

from __future__ import annotations

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import shared

from kontur.ingest.oms.errors import NalParseError, OmsLimitExceeded
from kontur.ingest.oms.limits import MAX_NALS_PER_ACCESS_UNIT
from kontur.ingest.oms.nal import (
    Codec,
    NalKind,
    add_emulation_prevention,
    is_annexb,
    parse_extradata,
    parse_nal_header,
    remove_emulation_prevention,
    split_annexb,
    split_length_prefixed,
    split_length_prefixed_views,
    split_packet,
    strip_trailing_zeros,
)

IDR = bytes([0x65, 0x88]) + b"idr-payload"
P_SLICE = bytes([0x41, 0x9A]) + b"p-payload"
SPS = bytes([0x67, 0x64, 0x00, 0x15])


def _avcc(*nals: bytes, size: int = 4) -> bytes:
    return b"".join(len(n).to_bytes(size, "big") + n for n in nals)


def test_split_length_prefixed_all_sizes() -> None:
    for size in (1, 2, 4):
        assert split_length_prefixed(_avcc(SPS, IDR, size=size), size) == [SPS, IDR]


def test_split_length_prefixed_views_share_the_buffer() -> None:
    data = _avcc(SPS, IDR, P_SLICE)
    views = split_length_prefixed_views(data)
    assert views == [SPS, IDR, P_SLICE]
    assert all(isinstance(v, memoryview) and v.readonly and v.obj is data for v in views)
    for bad in (b"\x00\x00", b"\x00\x00\x00\x09ab", b"\x00\x00\x00\x00"):
        with pytest.raises(NalParseError):
            split_length_prefixed_views(bad)


def test_split_length_prefixed_errors() -> None:
    with pytest.raises(NalParseError, match="expected a NAL length size of 1, 2 or 4, got 3"):
        split_length_prefixed(b"", 3)
    with pytest.raises(NalParseError, match="truncated NAL length prefix at offset 0"):
        split_length_prefixed(b"\x00\x00", 4)
    with pytest.raises(NalParseError, match="claims 9 bytes, only 2 left"):
        split_length_prefixed(b"\x00\x00\x00\x09ab", 4)
    with pytest.raises(NalParseError, match="expected a non-empty NAL unit at offset 4"):
        split_length_prefixed(b"\x00\x00\x00\x00", 4)


def test_split_length_prefixed_nal_count_limit() -> None:
    data = _avcc(*([b"\x09\x10"] * (MAX_NALS_PER_ACCESS_UNIT + 1)))
    with pytest.raises(OmsLimitExceeded, match=f"more than {MAX_NALS_PER_ACCESS_UNIT} NAL units"):
        split_length_prefixed(data)


def test_split_annexb_three_and_four_byte_start_codes() -> None:
    stream = (
        b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x01" + IDR + b"\x00\x00" + b"\x00\x00\x01" + P_SLICE
    )
    assert split_annexb(stream) == [SPS, IDR, P_SLICE]


def test_split_annexb_requires_start_code() -> None:
    with pytest.raises(NalParseError, match=r"expected an Annex-B start code \(00 00 01\)"):
        split_annexb(b"\x12\x00\x00\x01" + IDR)
    with pytest.raises(NalParseError, match="expected an Annex-B start code"):
        split_annexb(IDR)


def test_framing_detection_handles_length_that_looks_like_a_start_code() -> None:
    # a 4-byte length of 256..511 begins 00 00 01: still length-prefixed
    big = bytes([0x41, 0x9A]) + bytes(range(256)) * 1 + b"x" * 40
    packet = _avcc(big)
    assert packet[:3] == b"\x00\x00\x01"
    assert not is_annexb(packet)
    assert split_packet(packet) == [big]
    annexb = b"\x00\x00\x00\x01" + IDR
    assert is_annexb(annexb)
    assert split_packet(annexb) == [IDR]


def test_emulation_prevention_reference_semantics() -> None:
    # the inserted 03 starts a new zero count: five zeros -> 00 00 03 00 00 03 00
    assert add_emulation_prevention(b"\x00" * 5) == b"\x00\x00\x03\x00\x00\x03\x00"
    assert add_emulation_prevention(b"\x00\x00\x04") == b"\x00\x00\x04"
    assert add_emulation_prevention(b"\x00\x00\x03\x01") == b"\x00\x00\x03\x03\x01"
    assert add_emulation_prevention(b"\x00\x00") == b"\x00\x00"
    assert remove_emulation_prevention(b"\x00\x00\x03\x00\x00\x03\x00") == b"\x00" * 5
    assert remove_emulation_prevention(b"\x00\x00\x03\x03") == b"\x00\x00\x03"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_emulation_prevention_round_trip(data: bytes) -> None:
    escaped = add_emulation_prevention(data)
    assert remove_emulation_prevention(escaped) == data
    assert b"\x00\x00\x00" not in escaped and b"\x00\x00\x01" not in escaped
    assert b"\x00\x00\x02" not in escaped


def test_strip_trailing_zeros() -> None:
    for data in (b"", b"\x00", b"ab\x00\x00", b"a" * 100 + b"\x00" * 3, b"\x00" * 70, b"abc"):
        assert bytes(strip_trailing_zeros(data)) == data.rstrip(b"\x00")
        assert bytes(strip_trailing_zeros(memoryview(data))) == data.rstrip(b"\x00")
    plain = b"ends-in-one\x01"
    assert strip_trailing_zeros(plain) is plain  # the common case: no copy, no view


@pytest.mark.parametrize(
    ("nal", "kind", "primary", "valid"),
    [
        (IDR, NalKind.SLICE_IRAP, True, True),
        (P_SLICE, NalKind.SLICE, True, True),
        (bytes([0x41, 0x1A]), NalKind.SLICE, False, True),
        (SPS, NalKind.PARAMETER_SET, False, True),
        (bytes([0x68, 0xEB]), NalKind.PARAMETER_SET, True, True),
        (bytes([0x06, 0x05]), NalKind.SEI, False, True),
        (bytes([0x26, 0x05]), NalKind.SEI, False, False),  # SEI with nal_ref_idc != 0
        (bytes([0x09, 0x10]), NalKind.AUD, False, True),
        (bytes([0x05, 0x88]), NalKind.SLICE_IRAP, True, False),  # IDR with nal_ref_idc 0
        (bytes([0xE5, 0x88]), NalKind.SLICE_IRAP, True, False),  # forbidden bit
        (bytes([0x0C]), NalKind.OTHER, False, True),
        (bytes([0x18]), NalKind.UNDEFINED, False, False),
    ],
)
def test_h264_header(nal: bytes, kind: NalKind, primary: bool, valid: bool) -> None:
    info = parse_nal_header(nal, Codec.H264)
    assert (info.kind, info.is_primary_slice, info.header_valid) == (kind, primary, valid)


@pytest.mark.parametrize(
    ("nal", "kind", "valid"),
    [
        (bytes([0x26, 0x01, 0xAF]), NalKind.SLICE_IRAP, True),  # IDR_W_RADL
        (bytes([0x02, 0x01, 0xD0]), NalKind.SLICE, True),  # TRAIL_R
        (bytes([0x40, 0x01, 0x0C]), NalKind.PARAMETER_SET, True),  # VPS
        (bytes([0x42, 0x01, 0x01]), NalKind.PARAMETER_SET, True),  # SPS
        (bytes([0x44, 0x01, 0xC1]), NalKind.PARAMETER_SET, True),  # PPS
        (bytes([0x4E, 0x01, 0x05]), NalKind.SEI, True),
        (bytes([0x50, 0x01, 0x05]), NalKind.SEI, True),  # suffix SEI
        (bytes([0x46, 0x01, 0x10]), NalKind.AUD, True),
        (bytes([0x10, 0x01, 0x80]), NalKind.OTHER, False),  # RASL with temporal id 0
        (bytes([0x26, 0x00, 0x80]), NalKind.SLICE_IRAP, False),  # temporal_id_plus1 = 0
        (bytes([0x60, 0x01]), NalKind.UNDEFINED, False),
    ],
)
def test_h265_header(nal: bytes, kind: NalKind, valid: bool) -> None:
    info = parse_nal_header(nal, Codec.H265)
    assert (info.kind, info.header_valid) == (kind, valid)


def test_header_too_short() -> None:
    with pytest.raises(NalParseError, match="expected a NAL unit of at least 2 bytes, got 1"):
        parse_nal_header(b"\x26", Codec.H265)


def test_labels() -> None:
    assert parse_nal_header(SPS, Codec.H264).label == "SPS"
    assert parse_nal_header(bytes([0x40, 0x01]), Codec.H265).label == "VPS"
    assert parse_nal_header(P_SLICE, Codec.H264).label == "P slice"


@pytest.mark.parametrize(
    ("rel", "codec", "names"),
    [
        ("oms/streams/pets_h264_default.mp4", Codec.H264, [7, 8]),
        ("oms/streams/pets_h265_default.mp4", Codec.H265, [32, 33, 34]),
    ],
)
def test_extradata_of_real_files(rel: str, codec: Codec, names: list[int]) -> None:
    with av.open(str(shared(*rel.split("/")))) as container:
        extradata = container.streams.video[0].codec_context.extradata
    length_size, nals = parse_extradata(extradata, codec)
    assert length_size == 4
    assert [parse_nal_header(n, codec).nal_type for n in nals] == names
    assert all(parse_nal_header(n, codec).is_parameter_set for n in nals)


def _hvcc(*arrays: tuple[int, list[bytes]]) -> bytes:
    """A minimal hvcC: 22 header bytes (4-byte lengths), then the NAL unit arrays."""
    out = bytearray(b"\x01" + bytes(20) + b"\x03" + bytes([len(arrays)]))
    for nal_type, nals in arrays:
        out += bytes([0x80 | nal_type]) + len(nals).to_bytes(2, "big")
        for nal in nals:
            out += len(nal).to_bytes(2, "big") + nal
    return bytes(out)


def test_extradata_sei_arrays_are_no_parameter_sets() -> None:
    # libx265 puts its settings SEI in an hvcC array: not a parameter set (issue 9, 5b)
    vps, sps, pps = b"\x40\x01\x0c", b"\x42\x01\x01", b"\x44\x01\xc1"
    sei = b"\x4e\x01\x05x265 (build 199)"
    hvcc = _hvcc((32, [vps]), (33, [sps]), (34, [pps]), (39, [sei]))
    assert parse_extradata(hvcc, Codec.H265) == (4, [vps, sps, pps])
    # the NAL header decides, not the array's type byte
    assert parse_extradata(_hvcc((34, [pps, sei])), Codec.H265) == (4, [pps])
    annexb = b"".join(b"\x00\x00\x00\x01" + n for n in (vps, sps, pps, sei))
    assert parse_extradata(annexb, Codec.H265) == (4, [vps, sps, pps])
    h264_sei = bytes([0x06, 0x05, 0x01, 0x80])
    assert parse_extradata(b"\x00\x00\x01" + SPS + b"\x00\x00\x01" + h264_sei, Codec.H264) == (
        4,
        [SPS],
    )


def test_extradata_errors() -> None:
    assert parse_extradata(None, Codec.H264) == (4, [])
    assert parse_extradata(b"\x00\x00\x00\x01" + SPS, Codec.H264) == (4, [SPS])
    with pytest.raises(NalParseError, match="expected avcC configurationVersion 1, got 2"):
        parse_extradata(b"\x02\x64\x00\x15\xff\xe1", Codec.H264)
    with pytest.raises(NalParseError, match="truncated avcC extradata"):
        parse_extradata(b"\x01\x64\x00\x15\xff", Codec.H264)
    with pytest.raises(NalParseError, match="runs past the extradata end"):
        parse_extradata(b"\x01\x64\x00\x15\xff\xe1\x00\x40\x67", Codec.H264)
    with pytest.raises(NalParseError, match="expected hvcC configurationVersion 1, got 0"):
        parse_extradata(bytes(23), Codec.H265)
    with pytest.raises(NalParseError, match="truncated hvcC extradata"):
        parse_extradata(b"\x01" + bytes(10), Codec.H265)


def test_annexb_split_keeps_an_unescaped_oms_sei_whole() -> None:
    # The reference writes OMS SEIs without emulation prevention; a GOP counter of 1 alone puts
    # 00 00 01 in the payload. With the codec, the split follows the SEI's declared size.
    from kontur.ingest.oms.nal import Codec, split_annexb

    payload = bytes.fromhex("005bc93f2d715e95ada4796f90877a6f") + b"\x00\x01\x00\x00\x01\x07"
    sei = b"\x06\x05" + bytes([len(payload)]) + payload + b"\x80"
    slice_ = b"\x41\x9a\x00\x11"
    stream = b"\x00\x00\x00\x01" + sei + b"\x00\x00\x00\x01" + slice_
    assert split_annexb(stream, Codec.H264) == [sei, slice_]
    cut = split_annexb(stream)  # without the codec: a plain start-code scan cuts the SEI
    assert cut[0] != sei and len(cut) == 3
