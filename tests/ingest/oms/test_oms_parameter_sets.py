"""In-band parameter sets: which GOP owns them (F3), the claim reason (F5), picture size (F4).

The signer gives the SPS/PPS/VPS ahead of an IDR slice to the GOP that slice starts; the
validator must do the same, or a tampered SPS is checked against the wrong GOP's claim (and
one ahead of the first IDR is not checked at all). The stream used: PETS09 re-encoded to
40 frames of GOP 10 with in-band SPS/PPS at every IDR, 480x360 for GOPs 0-1 and 320x240 for
GOPs 2-3 (one signer run), as in the attack suite's ``switch`` recording.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import av
import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import shared
from tests.ingest.attacks.streams import Clip, encode, read_clip

from kontur.ingest.oms.keys import (
    chain_pem,
    load_signing_identity,
    make_ca,
    make_camera_certificate,
    private_key_pem,
)
from kontur.ingest.oms.nal import (
    Codec,
    add_emulation_prevention,
    parse_extradata,
    parse_nal_header,
    sps_picture_size,
)
from kontur.ingest.oms.reader import read_access_units, validate_file
from kontur.ingest.oms.validator import AccessUnit, OmsResult, OmsValidator, SignedGopResult
from kontur.ingest.oms.writer import sign_file

MISMATCH = "parameter sets (SPS/PPS/VPS) in effect do not match the signed claim"
NO_CLAIM = "(no kontur claim)"
T0 = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(hours=1)
VECTORS = {
    "streams/pets_h264_default.mp4": (480, 360),
    "streams/car_h264_default.mp4": (640, 360),
    "streams/pets_h265_default.mp4": (480, 360),
    "streams/car_h265_default.mp4": (640, 360),
}


# -- picture size from an SPS -----------------------------------------------------------


class _Bits:
    """A bit writer for hand-made SPS units."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> _Bits:
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]
        return self

    def ue(self, value: int) -> _Bits:
        code = value + 1
        return self.u(code.bit_length() - 1, 0).u(code.bit_length(), code)

    def se(self, value: int) -> _Bits:
        return self.ue(2 * value - 1 if value > 0 else -2 * value)

    def nal(self, header: bytes) -> bytes:
        bits = [*self.bits, 1]  # rbsp_stop_one_bit
        bits += [0] * (-len(bits) % 8)
        rbsp = bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))
        return header + add_emulation_prevention(rbsp)


def _h264_high_field_sps() -> bytes:
    """High profile, scaling lists, POC type 1, field coding, cropping: 1920x1080."""
    w = _Bits().u(8, 100).u(8, 0).u(8, 40).ue(0)
    w.ue(1).ue(0).ue(0).u(1, 0)  # 4:2:0, 8-bit, no transform bypass
    w.u(1, 1)  # seq_scaling_matrix_present_flag
    w.u(1, 1).se(8).se(-3)  # list 0 (16): two deltas, then nextScale stays non-zero ...
    w.bits += _Bits().se(0).bits * 14  # ... 14 more zero deltas
    w.u(1, 0).u(1, 0).u(1, 0).u(1, 0).u(1, 0)  # lists 1-5 absent
    w.u(1, 1).se(-8)  # list 6 (64): nextScale 0 at once, the rest repeat
    w.u(1, 0)  # list 7 absent
    w.ue(0).ue(1).u(1, 0).se(-2).se(1).ue(2).se(3).se(-4)  # frame_num, POC type 1 + cycle
    w.ue(4).u(1, 0)  # max_num_ref_frames, gaps
    w.ue(119).ue(33)  # 120 MBs wide, 34 map units (fields: 68 MB rows)
    w.u(1, 0).u(1, 0).u(1, 1)  # frame_mbs_only 0, mb_adaptive 0, direct_8x8 1
    w.u(1, 1).ue(0).ue(0).ue(0).ue(2)  # crop bottom 2 x (2 x 2) rows: 1088 -> 1080
    w.u(1, 0)  # no VUI
    return w.nal(b"\x67")


def _h265_sub_layer_sps() -> bytes:
    """Three temporal sub-layers (profile and level flags), conformance window: 1920x1080."""
    w = _Bits().u(4, 0).u(3, 2).u(1, 1)
    w.u(2, 0).u(1, 0).u(5, 1).u(32, 0x60000000).u(4, 0b1001).u(43, 0).u(1, 0).u(8, 123)
    w.u(1, 1).u(1, 1).u(1, 0).u(1, 1)  # sub-layer 0: profile + level; 1: level only
    w.u(12, 0)  # reserved_zero_2bits for sub-layers 2..7
    w.u(88, (1 << 80) | 5).u(8, 90)  # sub-layer 0 profile + level
    w.u(8, 93)  # sub-layer 1 level
    w.ue(0).ue(1).ue(1920).ue(1088)  # sps id, 4:2:0, luma size
    w.u(1, 1).ue(0).ue(0).ue(0).ue(4)  # conformance window: 2 x 4 rows at the bottom
    w.ue(0).ue(0)  # bit depths (not read)
    return w.nal(b"\x42\x01")


def test_picture_size_of_hand_made_sps() -> None:
    assert sps_picture_size(_h264_high_field_sps(), Codec.H264) == (1920, 1080)
    assert sps_picture_size(_h265_sub_layer_sps(), Codec.H265) == (1920, 1080)
    baseline = _Bits().u(8, 66).u(8, 0).u(8, 30).ue(0).ue(0).ue(2)  # POC type 2
    baseline.ue(1).u(1, 0).ue(19).ue(14).u(1, 1).u(1, 1).u(1, 0).u(1, 0)
    assert sps_picture_size(baseline.nal(b"\x67"), Codec.H264) == (320, 240)


@pytest.mark.parametrize(("rel", "size"), sorted(VECTORS.items()))
def test_picture_size_of_reference_vectors(rel: str, size: tuple[int, int]) -> None:
    path = shared("oms", *rel.split("/"))
    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context
        codec = Codec.H264 if ctx.name == "h264" else Codec.H265
        _, nals = parse_extradata(ctx.extradata, codec)
    sizes = [sps_picture_size(n, codec) for n in nals]
    sps = [n for n in nals if parse_nal_header(n, codec).is_sps]
    assert [sps_picture_size(n, codec) for n in sps] == [size]
    assert sizes.count(None) == len(nals) - 1  # VPS / PPS: not an SPS
    results = validate_file(path, [], NOW)
    assert {r.picture_size for r in results} == {size}


def test_picture_size_refuses_malformed_without_raising() -> None:
    good = _h264_high_field_sps()
    for cut in range(len(good) - 1):
        assert sps_picture_size(good[:cut], Codec.H264) is None, cut
    assert sps_picture_size(b"\x68\xee\x3c\x80", Codec.H264) is None  # a PPS
    assert sps_picture_size(_h265_sub_layer_sps(), Codec.H264) is None  # wrong codec
    assert sps_picture_size(b"\xe7" + good[1:], Codec.H264) is None  # forbidden bit
    huge = _Bits().u(8, 66).u(8, 0).u(8, 30).ue(0).ue(0).ue(2).ue(1).u(1, 0)
    assert sps_picture_size(huge.ue(5000).ue(5000).u(4, 0b1100).nal(b"\x67"), Codec.H264) is None
    zeros = b"\x67\x42\x00\x1e" + b"\x00\x00\x03" * 20  # exp-Golomb without a one bit
    assert sps_picture_size(zeros, Codec.H264) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(list(Codec)))
def test_picture_size_never_raises(data: bytes, codec: Codec) -> None:
    for header in (b"\x67", b"\x42\x01", b""):
        size = sps_picture_size(header + data, codec)
        assert size is None or (0 < size[0] <= 65536 and 0 < size[1] <= 65536)


# -- a signed stream that switches size (in-band SPS/PPS at every IDR) ------------------


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[x509.Certificate]]:
    """The 4-GOP stream of the module docstring, signed by kontur, and its trust anchor."""
    avi = shared("video", "pets09_s2l1_480x360.avi")
    root = tmp_path_factory.mktemp("ps")
    big = read_clip(encode(avi, root / "big.mp4", frames=40, gop=10))
    small = read_clip(encode(avi, root / "small.mp4", frames=40, gop=10, size=(320, 240)))
    joined = big.with_packets([*big.packets[:20], *small.packets[20:]]).write(root / "sw.mp4")
    ca_key, ca = make_ca("ps test CA", T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=9))
    key, cert = make_camera_certificate(
        ca_key, ca, "ps-cam", T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=9)
    )
    identity = load_signing_identity(private_key_pem(key), chain_pem(cert, ca))
    signed = root / "signed.mp4"
    sign_file(joined, signed, identity, T0)
    return signed, [ca]


def _validate(
    aus: list[AccessUnit], ps: list[bytes], anchors: list[x509.Certificate]
) -> list[SignedGopResult]:
    validator = OmsValidator(Codec.H264, anchors, reference_time=NOW)
    validator.set_parameter_sets(ps)
    out: list[SignedGopResult] = []
    for au in aus:
        out += validator.push(au)
    out += validator.finish(NOW)
    return sorted(out, key=lambda r: r.index)


def _tamper_sps(clip: Clip, gop: int) -> Clip:
    """Flip a bit of level_idc in the in-band SPS of GOP ``gop``'s IDR access unit."""
    target = clip.gop_start(gop)

    def fn(i: int, _j: int, nal: bytes) -> bytes:
        if i == target and nal[0] & 0x1F == 7:
            return nal[:3] + bytes([nal[3] ^ 0x01]) + nal[4:]
        return nal

    return clip.map_nals(fn)


def test_size_switch_is_authentic_with_sizes(
    switch: tuple[Path, list[x509.Certificate]],
) -> None:
    path, anchors = switch
    results = validate_file(path, anchors, NOW)
    assert [r.result for r in results] == [OmsResult.AUTHENTIC] * 4, [r.reasons for r in results]
    assert all(r.parameter_sets_covered for r in results)
    assert [r.picture_size for r in results] == [(480, 360)] * 2 + [(320, 240)] * 2
    assert all(NO_CLAIM not in why for r in results for why in r.reasons)
    for r in results:  # the SPS/PPS ahead of each IDR are marked in its own GOP, in order
        assert r.nalu_string.split("I")[0].count("v") == 2, r.nalu_string


@pytest.mark.parametrize("gop", [0, 2])
def test_tampered_in_band_sps_fails_its_own_gop(
    switch: tuple[Path, list[x509.Certificate]], tmp_path: Path, gop: int
) -> None:
    path, anchors = switch
    tampered = _tamper_sps(read_clip(path), gop).write(tmp_path / "t.mp4")
    results = validate_file(tampered, anchors, NOW)
    for r in results:
        if r.index == gop:
            assert r.result is OmsResult.NOT_AUTHENTIC
            assert MISMATCH in r.reasons
            assert not r.parameter_sets_covered
            assert all(NO_CLAIM not in why for why in r.reasons)  # F5: the claim is there
        else:
            assert r.result is OmsResult.AUTHENTIC, (r.index, r.reasons)


def test_parameter_sets_before_any_gop_go_to_the_first(
    switch: tuple[Path, list[x509.Certificate]],
) -> None:
    """An access unit of only an (altered) SPS ahead of the stream is checked with GOP 0."""
    path, anchors = switch
    _, ps, units = read_access_units(path)
    aus = list(units)
    sps = next(bytes(n) for n in aus[0].nals if n[0] & 0x1F == 7)
    bad = AccessUnit((sps[:3] + bytes([sps[3] ^ 0x01]) + sps[4:],))
    results = _validate([bad, *aus], ps, anchors)
    assert [r.result for r in results] == [OmsResult.NOT_AUTHENTIC] + [OmsResult.AUTHENTIC] * 3
    assert MISMATCH in results[0].reasons
    same = _validate([replace(bad, nals=(sps,)), *aus], ps, anchors)  # the genuine SPS
    assert [r.result for r in same] == [OmsResult.AUTHENTIC] * 4


def test_changed_container_sps_names_only_the_mismatch(
    switch: tuple[Path, list[x509.Certificate]],
) -> None:
    path, anchors = switch
    _, ps, units = read_access_units(path)
    altered = [p[:3] + bytes([p[3] ^ 0x01]) + p[4:] if p[0] & 0x1F == 7 else p for p in ps]
    results = _validate(list(units), altered, anchors)
    assert all(r.result is OmsResult.NOT_AUTHENTIC for r in results)
    assert all(MISMATCH in r.reasons for r in results)
    assert all(NO_CLAIM not in why for r in results for why in r.reasons)


def test_reference_stream_says_no_claim() -> None:
    path = shared("oms", "streams", "pets_h264_default.mp4")
    results = validate_file(path, [], NOW)
    signed = [r for r in results if r.gop_counter is not None]
    assert signed and all(
        "parameter sets are not covered by the signature (no kontur claim)" in r.reasons
        for r in signed
    )
