"""NAL units of H.264 and H.265: framing, emulation prevention, header classification.

Pure functions over bytes. Two framings are understood:

* length-prefixed (AVCC/HVCC, as in MP4/MKV samples): each NAL unit is preceded by a
  big-endian length of ``length_size`` bytes (1, 2 or 4; from the extradata, default 4);
* Annex-B byte streams: NAL units separated by ``00 00 01`` / ``00 00 00 01`` start codes.

Emulation prevention is removed and inserted exactly as the ONVIF reference does it
(``read_byte``/``write_byte`` in ``oms_tlv.c``): a ``0x03`` following two zero bytes is
dropped on reading; on writing, ``0x03`` is inserted before any byte ``<= 0x03`` that follows
two zero bytes (the inserted byte then starts a new zero count). Both are done with
``bytes.replace``/``re`` rather than per-byte loops.

Classification follows ``parse_h264_nalu_header``/``parse_h265_nalu_header`` of the
reference: slices (IDR/IRAP = ``I``, other = ``P``), parameter sets, SEI, AUD, other.
H.264 types 1 and 5 and H.265 types 0-1 and 16-21 are slices; H.265 TSA/STSA/RADL/RASL
(2-9) are "other", as in the reference.

:func:`split_length_prefixed_views` splits without copying (read-only memoryviews into the
packet); :func:`sps_picture_size` reads the picture size from an SPS without decoding.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass, field

from kontur.ingest.oms.errors import NalParseError, OmsLimitExceeded
from kontur.ingest.oms.limits import MAX_NAL_BYTES, MAX_NALS_PER_ACCESS_UNIT

__all__ = [
    "Codec",
    "NalInfo",
    "NalKind",
    "add_emulation_prevention",
    "is_annexb",
    "parse_extradata",
    "parse_nal_header",
    "remove_emulation_prevention",
    "split_annexb",
    "split_length_prefixed",
    "split_length_prefixed_views",
    "split_packet",
    "sps_picture_size",
    "strip_trailing_zeros",
]


class Codec(enum.Enum):
    """Video codec of a signed stream."""

    H264 = "h264"
    H265 = "h265"

    @property
    def header_size(self) -> int:
        """Bytes of the NAL unit header (1 for H.264, 2 for H.265)."""
        return 1 if self is Codec.H264 else 2


class NalKind(enum.Enum):
    """Classification of a NAL unit, as the reference validator sees it."""

    SLICE_IRAP = "I"  # IDR (H.264 type 5) / IRAP (H.265 16-21)
    SLICE = "P"  # non-IDR slice (P or B)
    PARAMETER_SET = "v"  # SPS / PPS / VPS / SPS extension / subset SPS
    SEI = "z"
    AUD = "_"
    OTHER = "o"
    UNDEFINED = "U"


_H264_KIND = {
    1: NalKind.SLICE,
    2: NalKind.OTHER,
    3: NalKind.OTHER,
    4: NalKind.OTHER,
    5: NalKind.SLICE_IRAP,
    6: NalKind.SEI,
    7: NalKind.PARAMETER_SET,
    8: NalKind.PARAMETER_SET,
    13: NalKind.PARAMETER_SET,
    15: NalKind.PARAMETER_SET,
    9: NalKind.AUD,
    10: NalKind.OTHER,
    11: NalKind.OTHER,
    12: NalKind.OTHER,
}

_H265_KIND = {
    **{t: NalKind.SLICE for t in (0, 1)},
    **{t: NalKind.OTHER for t in range(2, 10)},
    **{t: NalKind.SLICE_IRAP for t in range(16, 22)},
    32: NalKind.PARAMETER_SET,
    33: NalKind.PARAMETER_SET,
    34: NalKind.PARAMETER_SET,
    35: NalKind.AUD,
    36: NalKind.OTHER,
    37: NalKind.OTHER,
    38: NalKind.OTHER,
    39: NalKind.SEI,
    40: NalKind.SEI,
}


#: NAL unit types of the parameter sets a decoder needs: SPS/PPS, VPS/SPS/PPS.
_CORE_PARAMETER_SETS = {Codec.H264: frozenset({7, 8}), Codec.H265: frozenset({32, 33, 34})}


@dataclass(frozen=True)
class NalInfo:
    """What the NAL unit header says.

    ``is_primary_slice`` is the first bit after the header (``first_mb_in_slice == 0`` /
    ``first_slice_segment_in_pic_flag``), meaningful for slices only. ``header_valid`` is
    the reference's header check (forbidden bit, nal_ref_idc / temporal id rules).
    """

    codec: Codec
    nal_type: int
    kind: NalKind
    is_primary_slice: bool
    header_valid: bool
    #: A picture slice (I or P/B), the NAL units the reference hashes.
    is_slice: bool = field(init=False)
    #: The primary slice of an IDR/IRAP picture: the reference's GOP start.
    starts_gop: bool = field(init=False)
    #: A parameter set as the reference classifies it (SPS, PPS, VPS; H.264 also the SPS
    #: extension and subset SPS).
    is_parameter_set: bool = field(init=False)
    #: SPS or PPS (H.264 types 7, 8), VPS, SPS or PPS (H.265 types 32-34): the sets kontur's
    #: parameter-set claim covers, whatever the container (see
    #: :mod:`kontur.ingest.oms.hashing`).
    is_core_parameter_set: bool = field(init=False)
    #: A sequence parameter set proper (H.264 type 7, H.265 type 33): it carries the size.
    is_sps: bool = field(init=False)
    #: An SEI NAL unit (OMS or other).
    is_sei: bool = field(init=False)
    #: The reference's character for this unit in a NAL-unit string (``I``/``i``, ``P``/``p``
    #: for primary/secondary slices, ``v``, ``z``, ``_``, ``o``, ``U``).
    mark: str = field(init=False)

    def __post_init__(self) -> None:
        """Derive the flags once (instances are cached per header, see parse_nal_header)."""
        irap = self.kind is NalKind.SLICE_IRAP
        is_slice = irap or self.kind is NalKind.SLICE
        object.__setattr__(self, "is_slice", is_slice)
        object.__setattr__(self, "starts_gop", irap and self.is_primary_slice)
        object.__setattr__(self, "is_parameter_set", self.kind is NalKind.PARAMETER_SET)
        core = self.nal_type in _CORE_PARAMETER_SETS[self.codec]
        object.__setattr__(self, "is_core_parameter_set", self.is_parameter_set and core)
        sps_type = 7 if self.codec is Codec.H264 else 33
        object.__setattr__(self, "is_sps", self.is_parameter_set and self.nal_type == sps_type)
        object.__setattr__(self, "is_sei", self.kind is NalKind.SEI)
        mark = self.kind.value
        object.__setattr__(
            self, "mark", mark.lower() if is_slice and not self.is_primary_slice else mark
        )

    @property
    def label(self) -> str:
        """A short human name ("I slice", "P slice", "SPS", ...), for reasons."""
        if self.kind is NalKind.PARAMETER_SET:
            names = (
                {7: "SPS", 8: "PPS", 13: "SPS extension", 15: "subset SPS"}
                if self.codec is Codec.H264
                else {32: "VPS", 33: "SPS", 34: "PPS"}
            )
            return names.get(self.nal_type, "parameter set")
        return {
            NalKind.SLICE_IRAP: "I slice",
            NalKind.SLICE: "P slice",
            NalKind.SEI: "SEI",
            NalKind.AUD: "AUD",
            NalKind.OTHER: "other NAL",
            NalKind.UNDEFINED: "undefined NAL",
        }[self.kind]


def parse_nal_header(nal: bytes | memoryview, codec: Codec) -> NalInfo:
    """Classify ``nal`` (no start code / length prefix) like the reference does.

    Raises :class:`NalParseError` when the unit is shorter than its header.
    """
    need = codec.header_size
    if len(nal) < need:
        raise NalParseError(f"expected a NAL unit of at least {need} bytes, got {len(nal)}")
    primary = len(nal) > need and bool(nal[need] & 0x80)
    key = (codec, nal[0], nal[1] if need == 2 else 0, primary)
    info = _HEADER_CACHE.get(key)
    if info is None:  # at most 2 x 65536 distinct headers per codec: bounded
        info = _HEADER_CACHE[key] = _parse_header(nal, codec, primary)
    return info


_HEADER_CACHE: dict[tuple[Codec, int, int, bool], NalInfo] = {}


def _parse_header(nal: bytes | memoryview, codec: Codec, primary: bool) -> NalInfo:
    first = nal[0]
    forbidden = bool(first & 0x80)
    if codec is Codec.H264:
        nal_type = first & 0x1F
        ref_idc = first & 0x60
        kind = _H264_KIND.get(nal_type, NalKind.UNDEFINED)
        valid = _h264_header_valid(nal_type, ref_idc)
    else:
        nal_type = (first & 0x7E) >> 1
        layer = ((first & 0x01) << 5) | ((nal[1] & 0xF8) >> 3)
        tid_plus1 = nal[1] & 0x07
        kind = _H265_KIND.get(nal_type, NalKind.UNDEFINED)
        valid = tid_plus1 != 0 and _h265_header_valid(nal_type, layer, tid_plus1 - 1)
    return NalInfo(codec, nal_type, kind, primary, valid and not forbidden)


def _h264_header_valid(nal_type: int, ref_idc: int) -> bool:
    if nal_type in (1, 2, 3, 4, 9):
        return True
    if nal_type in (5, 7, 8, 13, 15):
        return ref_idc > 0
    if nal_type in (6, 10, 11, 12):
        return ref_idc == 0
    return False


def _h265_header_valid(nal_type: int, layer: int, tid: int) -> bool:
    if nal_type in (0, 1, 34, 35, 38, 39, 40):
        return True
    if nal_type in (2, 3) or 6 <= nal_type <= 9:
        return tid != 0
    if nal_type in (4, 5):
        return tid != 0 if layer == 0 else True
    if 16 <= nal_type <= 21 or nal_type in (32, 33):
        return tid == 0
    if nal_type in (36, 37):
        return tid == 0 and layer == 0
    return False


_EPB_INSERT = re.compile(rb"\x00\x00(?=[\x00-\x03])")


def remove_emulation_prevention(data: bytes | memoryview) -> bytes:
    """Drop every ``0x03`` that follows two zero bytes (``00 00 03`` -> ``00 00``)."""
    return bytes(data).replace(b"\x00\x00\x03", b"\x00\x00")


def add_emulation_prevention(data: bytes | memoryview) -> bytes:
    """Insert ``0x03`` before any byte ``<= 3`` that follows two zero bytes."""
    return _EPB_INSERT.sub(b"\x00\x00\x03", bytes(data))


def strip_trailing_zeros(nal: bytes | memoryview) -> bytes | memoryview:
    """``nal`` without trailing ``0x00`` bytes (the reference hashes up to the stop bit).

    ``nal`` itself when it does not end in zero (the common case: no copy, no view).
    """
    if not nal or nal[-1]:
        return nal
    view = memoryview(nal)
    window = min(64, len(view))
    tail = bytes(view[-window:]).rstrip(b"\x00")
    if tail:
        return view[: len(view) - window + len(tail)]
    return memoryview(bytes(view).rstrip(b"\x00"))


def split_length_prefixed(data: bytes | memoryview, length_size: int = 4) -> list[bytes]:
    """Split an AVCC/HVCC sample into NAL units.

    Raises :class:`NalParseError` on a length running past the end, an empty unit or a
    bad ``length_size``; :class:`OmsLimitExceeded` past the per-unit/per-AU bounds.
    """
    return [bytes(v) for v in split_length_prefixed_views(data, length_size)]


_LENGTH_PREFIX = {1: struct.Struct(">B"), 2: struct.Struct(">H"), 4: struct.Struct(">I")}


def split_length_prefixed_views(data: bytes | memoryview, length_size: int = 4) -> list[memoryview]:
    """:func:`split_length_prefixed` without copies: read-only views into ``data``.

    Same checks and errors; the views keep ``data`` alive.
    """
    if length_size not in (1, 2, 4):
        raise NalParseError(f"expected a NAL length size of 1, 2 or 4, got {length_size}")
    view = memoryview(data).toreadonly()
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    out: list[memoryview] = []
    unpack = _LENGTH_PREFIX[length_size].unpack_from
    end = len(view)
    pos = 0
    while pos < end:
        if pos + length_size > end:
            raise NalParseError(
                f"truncated NAL length prefix at offset {pos}: "
                f"expected {length_size} bytes, got {end - pos}"
            )
        (size,) = unpack(view, pos)
        pos += length_size
        if size == 0:
            raise NalParseError(f"expected a non-empty NAL unit at offset {pos}, got length 0")
        if size > MAX_NAL_BYTES:
            raise OmsLimitExceeded(f"NAL unit of {size} bytes exceeds {MAX_NAL_BYTES}")
        if pos + size > end:
            raise NalParseError(
                f"NAL unit at offset {pos} claims {size} bytes, only {end - pos} left"
            )
        out.append(view[pos : pos + size])
        pos += size
        if len(out) > MAX_NALS_PER_ACCESS_UNIT:
            raise OmsLimitExceeded(
                f"more than {MAX_NALS_PER_ACCESS_UNIT} NAL units in one access unit"
            )
    return out


_START_CODE = re.compile(rb"\x00\x00\x01")


def split_annexb(data: bytes | memoryview, codec: Codec | None = None) -> list[bytes]:
    """Split an Annex-B byte stream at its start codes.

    Leading bytes before the first start code must be zeros; trailing zeros of each unit
    (the extra zero of a 4-byte start code, trailing_zero_8bits) are removed. Raises
    :class:`NalParseError` when no start code begins the buffer.

    With ``codec`` given, an SEI NAL unit is kept whole up to the end of its first message's
    declared payload even where the payload holds a start-code pattern: the reference signer
    writes OMS SEIs *without* emulation prevention, and RTSP (rtph264pay) and raw files carry
    them so (a GOP counter of 1 alone makes ``00 00 01``). A start-code search would cut such
    an SEI in two.
    """
    buf = bytes(data)
    starts = [m.end() for m in _START_CODE.finditer(buf)]
    if not starts or buf[: starts[0] - 3].strip(b"\x00"):
        raise NalParseError("expected an Annex-B start code (00 00 01) at the start")
    out: list[bytes] = []
    i = 0
    while i < len(starts):
        begin = starts[i]
        i += 1
        end = starts[i] - 3 if i < len(starts) else len(buf)
        keep = 0
        need = _sei_raw_end(buf, begin, codec) if codec is not None else None
        if need is not None:
            keep = need - begin
            while end < need and i < len(starts):  # the payload ran over a fake start code
                i += 1
                end = starts[i] - 3 if i < len(starts) else len(buf)
            if end < need:
                end = len(buf)
        nal = buf[begin:end]
        stripped = nal.rstrip(b"\x00")
        nal = stripped if len(stripped) >= keep else nal[:keep]
        if nal:
            if len(nal) > MAX_NAL_BYTES:
                raise OmsLimitExceeded(f"NAL unit of {len(nal)} bytes exceeds {MAX_NAL_BYTES}")
            out.append(nal)
        if len(out) > MAX_NALS_PER_ACCESS_UNIT:
            raise OmsLimitExceeded(
                f"more than {MAX_NALS_PER_ACCESS_UNIT} NAL units in one access unit"
            )
    return out


def _sei_raw_end(buf: bytes, begin: int, codec: Codec) -> int | None:
    """End offset (exclusive, stop bit included) of the SEI NAL at ``begin`` read raw, or None.

    None when the unit at ``begin`` is no SEI or its message header does not fit the buffer.
    """
    if begin >= len(buf):
        return None
    if codec is Codec.H264:
        is_sei, pos = buf[begin] & 0x1F == 6, begin + 1
    else:
        is_sei, pos = (buf[begin] >> 1) & 0x3F in (39, 40), begin + 2
    if not is_sei:
        return None
    for _ in range(2):  # payloadType, then payloadSize, each 0xFF-extended
        value = 0
        while pos < len(buf) and buf[pos] == 0xFF:
            value += 255
            pos += 1
        if pos >= len(buf):
            return None
        value += buf[pos]
        pos += 1
    end = pos + value + 1  # the payload, then rbsp_stop_one_bit's byte
    return end if end <= len(buf) else None


def is_annexb(packet: bytes | memoryview, length_size: int = 4) -> bool:
    """Whether ``packet`` is Annex-B framed rather than length-prefixed.

    A length prefix can itself look like a start code (a 4-byte length of 256..511 starts
    ``00 00 01``), so a packet that splits cleanly as length-prefixed NAL units with valid
    forbidden bits is taken as length-prefixed; otherwise a leading start code means Annex-B.
    """
    head = bytes(packet[:4])
    if head[:3] != b"\x00\x00\x01" and head != b"\x00\x00\x00\x01":
        return False
    try:
        nals = split_length_prefixed_views(packet, length_size)
    except (NalParseError, OmsLimitExceeded):
        return True
    return any(nal[0] & 0x80 for nal in nals)


def split_packet(
    packet: bytes | memoryview, length_size: int = 4, codec: Codec | None = None
) -> list[bytes]:
    """Split a demuxed packet in whichever framing it uses (see :func:`is_annexb`).

    Pass ``codec`` so that unescaped OMS SEIs in Annex-B packets stay whole
    (:func:`split_annexb`).
    """
    if is_annexb(packet, length_size):
        return split_annexb(packet, codec)
    return split_length_prefixed(packet, length_size)


def parse_extradata(extradata: bytes | None, codec: Codec) -> tuple[int, list[bytes]]:
    """Length size and parameter sets (SPS/PPS, VPS/SPS/PPS) of avcC / hvcC or Annex-B
    extradata.

    Only the NAL units whose own header says VPS, SPS or PPS are returned
    (:attr:`NalInfo.is_core_parameter_set`): an hvcC may also hold SEI arrays (libx265
    puts its settings SEI there), which are no parameter sets and which a raw Annex-B copy
    of the stream does not carry as such. Returns ``(4, [])`` for empty extradata. Raises
    :class:`NalParseError` when malformed.
    """
    if not extradata:
        return 4, []
    data = bytes(extradata)
    if data[:3] == b"\x00\x00\x01" or data[:4] == b"\x00\x00\x00\x01":
        return 4, _core_parameter_sets(split_annexb(data), codec)
    try:
        size, nals = _parse_avcc(data) if codec is Codec.H264 else _parse_hvcc(data)
    except IndexError:
        raise NalParseError(
            f"truncated {'avcC' if codec is Codec.H264 else 'hvcC'} extradata ({len(data)} bytes)"
        ) from None
    return size, _core_parameter_sets(nals, codec)


def _core_parameter_sets(nals: list[bytes], codec: Codec) -> list[bytes]:
    """The units of ``nals`` that are SPS/PPS (H.264) or VPS/SPS/PPS (H.265) by their header."""
    return [
        n
        for n in nals
        if len(n) >= codec.header_size and parse_nal_header(n, codec).is_core_parameter_set
    ]


def _take(data: bytes, pos: int) -> tuple[bytes, int]:
    size = int.from_bytes(data[pos : pos + 2], "big")
    if pos + 2 + size > len(data) or pos + 2 > len(data):
        raise NalParseError(f"parameter set at offset {pos} runs past the extradata end")
    return data[pos + 2 : pos + 2 + size], pos + 2 + size


def _parse_avcc(data: bytes) -> tuple[int, list[bytes]]:
    if data[0] != 1:
        raise NalParseError(f"expected avcC configurationVersion 1, got {data[0]}")
    length_size = (data[4] & 0x03) + 1
    nals: list[bytes] = []
    pos = 6
    for _ in range(data[5] & 0x1F):
        nal, pos = _take(data, pos)
        nals.append(nal)
    count = data[pos]
    pos += 1
    for _ in range(count):
        nal, pos = _take(data, pos)
        nals.append(nal)
    return length_size, nals


def _parse_hvcc(data: bytes) -> tuple[int, list[bytes]]:
    if data[0] != 1:
        raise NalParseError(f"expected hvcC configurationVersion 1, got {data[0]}")
    length_size = (data[21] & 0x03) + 1
    nals: list[bytes] = []
    pos = 23
    for _ in range(data[22]):
        count = int.from_bytes(data[pos + 1 : pos + 3], "big")
        if pos + 3 > len(data):
            raise IndexError
        pos += 3
        for _ in range(count):
            nal, pos = _take(data, pos)
            nals.append(nal)
    return length_size, nals


# -- picture size from a sequence parameter set ------------------------------------------

#: Most RBSP bytes of an SPS looked at (the size fields come long before this).
_SPS_MAX_BYTES = 4096
#: Largest picture dimension accepted (pixels); anything larger is taken as malformed.
_MAX_DIMENSION = 1 << 16
#: H.264 profiles whose SPS carries chroma format, bit depths and scaling lists.
_H264_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


class _Malformed(Exception):
    """Internal: the SPS ran out of bits or holds an impossible value."""


class _Bits:
    """A bounded MSB-first bit reader over an RBSP (emulation prevention removed)."""

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._size = len(data) * 8
        self.pos = 0

    def u(self, n: int) -> int:
        """The next ``n`` bits as an unsigned integer."""
        if self.pos + n > self._size:
            raise _Malformed
        self.pos += n
        return (self._value >> (self._size - self.pos)) & ((1 << n) - 1)

    def ue(self) -> int:
        """An unsigned exp-Golomb value (at most 31 leading zero bits)."""
        zeros = 0
        while not self.u(1):
            zeros += 1
            if zeros > 31:
                raise _Malformed
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """A signed exp-Golomb value."""
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def sps_picture_size(nal: bytes | memoryview, codec: Codec) -> tuple[int, int] | None:
    """Display size ``(width, height)`` in pixels of an SPS NAL unit, without decoding.

    H.264 (type 7): ``pic_width_in_mbs``/``pic_height_in_map_units`` (x2 for field coding
    unless ``frame_mbs_only``) minus the frame cropping, after the high-profile chroma
    format / bit depth / scaling-list fields and the POC fields. H.265 (type 33):
    ``pic_width/height_in_luma_samples`` minus the conformance window, after
    ``profile_tier_level`` with its sub-layers. Read as exp-Golomb over the RBSP
    (emulation prevention removed). None (never an exception) for another NAL type or
    anything truncated or implausible.
    """
    header = codec.header_size
    if len(nal) <= header:
        return None
    if codec is Codec.H264:
        if nal[0] & 0x9F != 7:  # forbidden bit clear, nal_unit_type 7
            return None
    elif nal[0] & 0xFE != 33 << 1:  # forbidden bit clear, nal_unit_type 33
        return None
    rbsp = remove_emulation_prevention(nal[header : header + _SPS_MAX_BYTES])
    try:
        bits = _Bits(rbsp)
        size = _h264_sps_size(bits) if codec is Codec.H264 else _h265_sps_size(bits)
    except _Malformed:
        return None
    width, height = size
    if not (0 < width <= _MAX_DIMENSION and 0 < height <= _MAX_DIMENSION):
        return None
    return width, height


def _h264_scaling_list(bits: _Bits, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt:
            delta = bits.se()
            if not -128 <= delta <= 127:
                raise _Malformed
            nxt = (last + delta + 256) % 256
        last = nxt or last


def _h264_sps_size(bits: _Bits) -> tuple[int, int]:
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level_idc
    bits.ue()  # seq_parameter_set_id
    chroma, separate = 1, 0
    if profile in _H264_HIGH_PROFILES:
        chroma = bits.ue()
        if chroma > 3:
            raise _Malformed
        if chroma == 3:
            separate = bits.u(1)
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma != 3 else 12):
                if bits.u(1):
                    _h264_scaling_list(bits, 16 if i < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        bits.u(1)  # delta_pic_order_always_zero_flag
        bits.se()  # offset_for_non_ref_pic
        bits.se()  # offset_for_top_to_bottom_field
        cycle = bits.ue()
        if cycle > 255:
            raise _Malformed
        for _ in range(cycle):
            bits.se()
    elif poc_type != 2:
        raise _Malformed
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bits.u(1)
    if not frame_mbs_only:
        bits.u(1)  # mb_adaptive_frame_field_flag
    bits.u(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_units * 16
    if bits.u(1):  # frame_cropping_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        chroma_type = 0 if separate else chroma
        unit_x = 1 if chroma_type in (0, 3) else 2
        unit_y = (2 if chroma_type == 1 else 1) * (2 - frame_mbs_only)
        width -= unit_x * (left + right)
        height -= unit_y * (top + bottom)
    return width, height


def _h265_sps_size(bits: _Bits) -> tuple[int, int]:
    bits.u(4)  # sps_video_parameter_set_id
    sub_layers = bits.u(3)  # sps_max_sub_layers_minus1
    if sub_layers > 6:
        raise _Malformed
    bits.u(1)  # sps_temporal_id_nesting_flag
    bits.u(88)  # general profile space/tier/idc, compatibility and constraint flags
    bits.u(8)  # general_level_idc
    present = [(bits.u(1), bits.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        bits.u(2 * (8 - sub_layers))  # reserved_zero_2bits
    for profile_present, level_present in present:
        bits.u(88 * profile_present + 8 * level_present)
    bits.ue()  # sps_seq_parameter_set_id
    chroma = bits.ue()
    if chroma > 3:
        raise _Malformed
    separate = bits.u(1) if chroma == 3 else 0
    width, height = bits.ue(), bits.ue()
    if bits.u(1):  # conformance_window_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        chroma_type = 0 if separate else chroma
        sub_w = 2 if chroma_type in (1, 2) else 1
        sub_h = 2 if chroma_type == 1 else 1
        width -= sub_w * (left + right)
        height -= sub_h * (top + bottom)
    return width, height
