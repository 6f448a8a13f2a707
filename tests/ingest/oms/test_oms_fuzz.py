"""Property: hostile bytes into the NAL, SEI and TLV parsers give a value or a typed OmsError."""

from __future__ import annotations

import contextlib
from functools import cache

import av
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import SHARED_DATA

from kontur.ingest.oms.errors import OmsError
from kontur.ingest.oms.nal import (
    Codec,
    parse_extradata,
    parse_nal_header,
    split_annexb,
    split_length_prefixed,
    split_packet,
)
from kontur.ingest.oms.sei import (
    CertificatesTlv,
    CryptoInfoTlv,
    OmsSei,
    SignatureTlv,
    VendorInfoTlv,
    is_oms_sei,
)
from kontur.ingest.oms.validator import AccessUnit, OmsValidator

EXAMPLES = 300


@cache
def real_seis() -> tuple[bytes, ...]:
    """A few real OMS SEIs (H.264) to mutate; a synthetic one when the data is absent."""
    path = SHARED_DATA / "oms" / "streams" / "pets_h264_default.mp4"
    if not path.exists():
        return (
            b"\x06\x05\x11\x00\x5b\xc9\x3f\x2d\x71\x5e\x95\xad\xa4\x79\x6f\x90\x87\x7a\x6f\x00\x80",
        )
    out: list[bytes] = []
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.video[0]):
            out += (
                [n for n in split_packet(bytes(packet)) if is_oms_sei(n, Codec.H264)]
                if packet.size
                else []
            )
            if len(out) >= 2:
                break
    return tuple(out)


def _parse_all(data: bytes, codec: Codec) -> None:
    for call in (
        lambda: OmsSei.from_nal(data, codec),
        lambda: split_length_prefixed(data),
        lambda: split_annexb(data),
        lambda: split_packet(data),
        lambda: parse_nal_header(data, codec),
        lambda: parse_extradata(data, codec),
        lambda: SignatureTlv.from_value(data),
        lambda: CryptoInfoTlv.from_value(data),
        lambda: VendorInfoTlv.from_value(data),
        lambda: CertificatesTlv.from_value(data),
    ):
        with contextlib.suppress(OmsError):  # anything else fails the test
            call()


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(list(Codec)))
def test_random_bytes(data: bytes, codec: Codec) -> None:
    _parse_all(data, codec)


@st.composite
def mutated_sei(draw: st.DrawFn) -> bytes:
    sei = bytearray(draw(st.sampled_from(real_seis())))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(0, len(sei) - 1)))
        if op == "flip" and sei:
            sei[pos] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del sei[pos:]
        elif op == "insert":
            sei[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif sei:
            del sei[pos : pos + draw(st.integers(1, 8))]
    return bytes(sei)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_sei())
def test_mutated_real_seis(data: bytes) -> None:
    _parse_all(data, Codec.H264)
    validator = OmsValidator(Codec.H264)
    validator.push(AccessUnit((b"\x65\x88\x01", data)))  # never raises on stream content
    validator.push(AccessUnit((data, b"\x41\x9a\x02")))
    assert len(validator.finish()) >= 1
