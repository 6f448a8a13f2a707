"""One-GOP streams (a short clip with a single IDR/IRAP): signed, they verify AUTHENTIC.

Regression. The end-of-stream SEI repeats the *previous* SEI's General TLV (reference quirk
2). A one-GOP stream has no previous SEI: its end-of-stream SEI is its first, and the
reference (and kontur's signer, which copied it) wrote the signer's initial state there:
start time 0, an all-zero GOP hash, 0 NAL units, beside a correct hash list. The reference
validator falls back to the hash list and says valid; kontur's validator, which excuses
only a repeat of an SEI it has seen, said NOT_AUTHENTIC ("GOP hash or NAL count in the SEI
does not match its hash list"). Now kontur's signer states the GOP itself in that SEI (both
validators match the GOP hash directly), and kontur's validator excuses the reference's
initial state the way it excuses quirk 2, taking the capture time from the end time.

Clips are real libx264/libx265 encodes (one key frame, GOP longer than the clip), short
(30 frames) and past the reference signer's 300-hash list (400 frames; its buffer holds 600
SHA-256 entries, kontur's bound too). The reference-signed one-GOP clips in ``vectors/``
were made by the reference C library itself (see its README).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from tests.conftest import run_kontur

from kontur.clock import ManualClock
from kontur.ingest.democam import DemoCamera
from kontur.ingest.oms.hashing import GopHasher, gop_hash
from kontur.ingest.oms.keys import (
    SigningIdentity,
    chain_pem,
    load_signing_identity,
    make_ca,
    make_camera_certificate,
    private_key_pem,
)
from kontur.ingest.oms.limits import MAX_HASH_LIST_ENTRIES
from kontur.ingest.oms.nal import Codec, parse_extradata, parse_nal_header, split_packet
from kontur.ingest.oms.reader import read_access_units, validate_file
from kontur.ingest.oms.sei import (
    SHA256_OID,
    CertificatesTlv,
    CryptoInfoTlv,
    GeneralTlv,
    HashListTlv,
    OmsSei,
    OmsTlv,
    build_sei,
    datetime_to_filetime,
    is_oms_sei,
)
from kontur.ingest.oms.signer import (
    REFERENCE_VENDOR_INFO,
    OmsSigner,
    SignerOptions,
)
from kontur.ingest.oms.validator import AccessUnit, OmsResult, OmsValidator, SignedGopResult
from kontur.ingest.oms.writer import sign_file
from kontur.ingest.segment import SegmentPacket

VECTORS = Path(__file__).parent / "vectors"
NOW = dt.datetime.now(dt.UTC)
BASE = NOW - dt.timedelta(hours=1)  # capture time of the first frame (API signing)
FPS = 25
ENCODERS = {Codec.H264: "libx264", Codec.H265: "libx265"}
SUFFIXES = {Codec.H264: ".h264", Codec.H265: ".h265"}
#: The reference's one-GOP end-of-stream SEI: General TLV of the signer's initial state.
INITIAL_STATE = "GOP hash and NAL count are the reference signer's initial values"
MISMATCH = "GOP hash or NAL count in the SEI does not match its hash list"


@dataclass(frozen=True)
class Site:
    """A CA valid around now, one camera identity, and both as PEM files (for the CLI)."""

    ca: x509.Certificate
    identity: SigningIdentity
    key_path: Path
    chain_path: Path
    ca_path: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    base = tmp_path_factory.mktemp("site")
    start, end = NOW - dt.timedelta(days=30), NOW + dt.timedelta(days=365)
    ca_key, ca = make_ca("one-GOP test CA", start, end)
    key, cert = make_camera_certificate(ca_key, ca, "cam-one-gop", start, end)
    paths = base / "key.pem", base / "chain.pem", base / "ca.pem"
    blobs = private_key_pem(key), chain_pem(cert, ca), ca.public_bytes(serialization.Encoding.PEM)
    for path, blob in zip(paths, blobs, strict=True):
        path.write_bytes(blob)
    identity = load_signing_identity(paths[0].read_bytes(), paths[1].read_bytes())
    return Site(ca, identity, *paths)


def _encoder(codec: Codec) -> str:
    name = ENCODERS[codec]
    try:
        av.codec.Codec(name, "w")
    except av.error.FFmpegError:
        pytest.skip(f"PyAV has no {name} encoder here")
    return name


def encode_one_gop(path: Path, codec: Codec, frames: int) -> Path:
    """A real ``frames``-frame clip with a single key frame (GOP longer than the clip)."""
    keyint = frames + 100
    with av.open(str(path), "w") as out:
        stream = out.add_stream(_encoder(codec), rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.gop_size = keyint
        params = f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0"
        if codec is Codec.H264:
            stream.options = {"x264-params": params}
        else:
            stream.options = {"x265-params": f"{params}:log-level=error"}
        for i in range(frames):
            image = np.full((48, 64, 3), (i * 7) % 256, np.uint8)
            image[i % 48, :, :] = 255  # a moving line: every frame differs
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with av.open(str(path)) as src:
        flags = [p.is_keyframe for p in src.demux(src.streams.video[0]) if p.size]
    assert len(flags) == frames and flags.count(True) == 1 and flags[0], "not one GOP"
    return path


Clip = Callable[[Codec, int], Path]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """Encoded one-GOP clips by (codec, frames), made once per module."""
    base = tmp_path_factory.mktemp("clips")
    made: dict[tuple[Codec, int], Path] = {}

    def get(codec: Codec, frames: int) -> Path:
        if (codec, frames) not in made:
            target = base / f"{codec.value}_{frames}.mp4"
            made[codec, frames] = encode_one_gop(target, codec, frames)
        return made[codec, frames]

    return get


def oms_seis(path: Path) -> list[OmsSei]:
    """The OMS SEIs of a file, in order."""
    codec, _, units = read_access_units(path)
    return [OmsSei.from_nal(n, codec) for au in units for n in au.nals if is_oms_sei(n, codec)]


def slice_count(path: Path) -> int:
    codec, _, units = read_access_units(path)
    return sum(parse_nal_header(n, codec).is_slice for au in units for n in au.nals)


def flip_in_p_slice(nal: bytes) -> bytes:
    """``nal`` with one payload bit flipped if it is an H.264 P slice, else as is."""
    if nal[0] & 0x1F != 1:
        return nal
    return nal[:-2] + bytes([nal[-2] ^ 0x01]) + nal[-1:]


CASES = [
    (codec, frames, suffix)
    for codec in (Codec.H264, Codec.H265)
    for frames in (30, 400)
    for suffix in (".mp4", ".mkv", "raw")
]


@pytest.mark.parametrize(
    ("codec", "frames", "suffix"), CASES, ids=[f"{c.value}-{n}f-{s}" for c, n, s in CASES]
)
def test_signed_one_gop_clip_is_authentic(
    clip: Clip, site: Site, tmp_path: Path, codec: Codec, frames: int, suffix: str
) -> None:
    source = clip(codec, frames)
    target = tmp_path / f"signed{SUFFIXES[codec] if suffix == 'raw' else suffix}"
    summary = sign_file(source, target, site.identity, BASE)
    assert (summary.access_units, summary.gops_signed, summary.seis) == (frames, 1, 1)
    results = validate_file(target, [site.ca], NOW, require_parameter_set_claim=True)
    assert [r.result for r in results] == [OmsResult.AUTHENTIC], results[0].reasons
    (result,) = results
    assert result.end_of_stream and result.parameter_sets_covered
    assert result.reference_result == "valid"
    assert result.gop_counter == 1 and result.nalus_received == slice_count(source)
    assert result.capture_start == BASE
    assert result.capture_end == BASE + dt.timedelta(seconds=(frames - 1) / FPS)
    assert not any("quirk" in why for why in result.reasons)


@pytest.mark.parametrize("frames", [30, 400])
def test_the_one_gop_sei_states_the_gop_itself(
    clip: Clip, site: Site, tmp_path: Path, frames: int
) -> None:
    """No previous SEI to repeat: GOP hash, NAL count and times are the GOP's own, so the
    reference validator matches the GOP hash without falling back to the hash list."""
    source = clip(Codec.H264, frames)
    target = tmp_path / "signed.mkv"
    sign_file(source, target, site.identity, BASE)
    seis = oms_seis(target)
    (sei,) = seis
    general = sei.general
    assert general is not None
    count = slice_count(source)
    assert (general.gop_counter, general.num_nalus) == (1, count)
    assert general.start_time == BASE
    assert general.end_time == BASE + dt.timedelta(seconds=(frames - 1) / FPS)
    assert general.linked_hash == bytes(32)
    if count <= MAX_HASH_LIST_ENTRIES:
        assert sei.hash_list is not None and len(sei.hash_list.hashes) == count
        assert general.gop_hash == gop_hash(sei.hash_list.hashes)
    else:
        assert sei.hash_list is None  # over kontur's list bound: the GOP hash carries it
        assert general.gop_hash != bytes(32)


@pytest.mark.parametrize(
    "options",
    [
        SignerOptions(certificate_sei=True),
        SignerOptions(low_bitrate=True),
        SignerOptions(kontur_extensions=False, vendor_info=REFERENCE_VENDOR_INFO),
    ],
    ids=["certificate-sei", "low-bitrate", "reference-layout"],
)
@pytest.mark.parametrize("codec", [Codec.H264, Codec.H265], ids=["h264", "h265"])
def test_one_gop_clip_is_authentic_in_every_signer_mode(
    clip: Clip, site: Site, tmp_path: Path, codec: Codec, options: SignerOptions
) -> None:
    target = tmp_path / "signed.mkv"
    sign_file(clip(codec, 30), target, site.identity, BASE, options)
    results = validate_file(target, [site.ca], NOW)
    assert [r.result for r in results] == [OmsResult.AUTHENTIC], results[0].reasons
    assert results[0].end_of_stream and results[0].reference_result == "valid"


@pytest.mark.parametrize(
    ("codec", "frames", "suffix"),
    [(Codec.H264, 30, ".mp4"), (Codec.H265, 400, ".h265")],
    ids=["h264-30f-mp4", "h265-400f-raw"],
)
def test_kontur_sign_then_kontur_verify_one_gop_clip(
    clip: Clip, site: Site, tmp_path: Path, codec: Codec, frames: int, suffix: str
) -> None:
    target = tmp_path / f"signed{suffix}"
    signed = run_kontur(
        "sign", str(clip(codec, frames)), "--key", str(site.key_path),
        "--cert", str(site.chain_path), "--out", str(target), "--json", "-",
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout)["gops_signed"] == 1
    verified = run_kontur("verify", str(target), "--ca", str(site.ca_path), "--json", "-")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    doc = json.loads(verified.stdout)
    assert doc["authentic"] is True and doc["summary"] == {"AUTHENTIC": 1}
    assert doc["gops"][0]["counter"] == 1


@pytest.mark.parametrize("frames", [30, 400])
@pytest.mark.parametrize("codec", [Codec.H264, Codec.H265], ids=["h264", "h265"])
def test_demo_camera_signs_a_one_gop_clip_authentic(
    clip: Clip, site: Site, codec: Codec, frames: int
) -> None:
    """``kontur demo``'s camera signs packet by packet, then ends the stream."""
    with av.open(str(clip(codec, frames))) as container:
        stream = container.streams.video[0]
        extradata = bytes(stream.codec_context.extradata or b"")
        packets = [
            SegmentPacket(bytes(p), p.pts, p.is_keyframe) for p in container.demux(stream) if p.size
        ]
    clock = ManualClock(wall=(NOW - dt.timedelta(minutes=5)).timestamp())
    header: dict[str, object] = {"extradata": extradata.hex(), "framing": "avcc"}
    camera = DemoCamera(codec, site.identity, header, clock)
    length_size, parameter_sets = parse_extradata(extradata, codec)
    validator = OmsValidator(codec, [site.ca], reference_time=NOW, require_parameter_set_claim=True)
    validator.set_parameter_sets(parameter_sets)
    results: list[SignedGopResult] = []
    for packet in packets:
        signed = camera.sign_packet(packet)
        clock.advance(1 / FPS)
        nals = tuple(split_packet(signed.data, length_size, codec))
        results += validator.push(AccessUnit(nals, signed.pts, signed.keyframe))
    end = camera.finish(packets[-1].pts)
    assert end is not None
    results += validator.push(AccessUnit(tuple(split_packet(end.data, length_size, codec))))
    results += validator.finish(NOW)
    assert [r.result for r in results] == [OmsResult.AUTHENTIC], results[0].reasons
    assert results[0].end_of_stream and results[0].parameter_sets_covered


def test_a_one_gop_clip_cut_before_its_end_of_stream_sei_is_unsigned(
    clip: Clip, site: Site
) -> None:
    """The only SEI of a one-GOP stream is its last: cut it and the stream reads as unsigned."""
    signer = OmsSigner(Codec.H264, site.identity)
    codec, parameter_sets, units = read_access_units(clip(Codec.H264, 30))
    validator = OmsValidator(codec, [site.ca], reference_time=NOW)
    validator.set_parameter_sets(parameter_sets)
    results: list[SignedGopResult] = []
    for n, au in enumerate(units):
        signed = signer.sign_access_unit([bytes(x) for x in au.nals], BASE)
        assert signed.seis == ()
        results += validator.push(AccessUnit(signed.nal_units, n))
    results += validator.finish(NOW)
    assert [r.result for r in results] == [OmsResult.UNSIGNED]
    assert results[0].reasons == ("no OMS SEI in the stream",)


def test_a_tampered_slice_in_a_one_gop_clip_is_not_authentic(
    clip: Clip, site: Site, tmp_path: Path
) -> None:
    target = tmp_path / "signed.h264"
    sign_file(clip(Codec.H264, 30), target, site.identity, BASE)
    codec, parameter_sets, units = read_access_units(target)
    validator = OmsValidator(codec, [site.ca], reference_time=NOW)
    validator.set_parameter_sets(parameter_sets)
    results: list[SignedGopResult] = []
    for n, au in enumerate(units):
        nals = [bytes(x) for x in au.nals]
        if n == 10:  # one byte of a P slice
            nals = [flip_in_p_slice(x) for x in nals]
        results += validator.push(AccessUnit(tuple(nals), n))
    results += validator.finish(NOW)
    assert [r.result for r in results] == [OmsResult.NOT_AUTHENTIC]
    assert any("does not match the signed hash list" in why for why in results[0].reasons)


# -- the reference's own one-GOP output (vectors/, made by the reference C library) --------

REFERENCE_CA = "oms/keys/ca_ec.pem"
REFERENCE_CAPTURE = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)  # first frame (vectors/)
REFERENCE_NOW = dt.datetime(2026, 6, 2, tzinfo=dt.UTC)


def _reference_anchor(shared_file: Callable[[str], Path]) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(shared_file(REFERENCE_CA).read_bytes())


@pytest.mark.parametrize(
    "name", ["reference_one_gop_h264_30f.mkv", "reference_one_gop_h265_30f.mkv"]
)
def test_reference_signed_one_gop_clip_is_authentic(
    shared_file: Callable[[str], Path], name: str
) -> None:
    """The reference's initial-state General TLV is excused like its quirk 2, because the
    signed hash list is checked; the capture time comes from its end time (the IDR's)."""
    seis = oms_seis(VECTORS / name)
    (sei,) = seis
    general = sei.general
    assert general is not None and sei.hash_list is not None
    assert (general.gop_counter, general.num_nalus, general.start_timestamp) == (1, 0, 0)
    assert general.gop_hash == bytes(32) and len(sei.hash_list.hashes) == 30
    results = validate_file(VECTORS / name, _reference_anchor(shared_file), REFERENCE_NOW)
    assert [r.result for r in results] == [OmsResult.AUTHENTIC], results[0].reasons
    (result,) = results
    assert result.reference_result == "valid"  # what the reference validator reports
    assert any(INITIAL_STATE in why for why in result.reasons)
    assert result.capture_start == result.capture_end == REFERENCE_CAPTURE
    assert result.provenance.status.value == "ok"
    assert result.end_of_stream and result.nalus_received == 30


def test_kontur_verify_accepts_the_reference_one_gop_clip(
    shared_file: Callable[[str], Path],
) -> None:
    ca = shared_file(REFERENCE_CA)
    path = VECTORS / "reference_one_gop_h264_30f.mkv"
    r = run_kontur("verify", str(path), "--ca", str(ca), "--json", "-")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["summary"] == {"AUTHENTIC": 1}
    assert INITIAL_STATE in doc["gops"][0]["reason"]


def test_reference_one_gop_clip_with_a_tampered_slice_is_not_authentic(
    shared_file: Callable[[str], Path],
) -> None:
    """The excuse covers the General TLV only: the hash list still decides every slice."""
    codec, parameter_sets, units = read_access_units(VECTORS / "reference_one_gop_h264_30f.mkv")
    validator = OmsValidator(codec, _reference_anchor(shared_file), reference_time=REFERENCE_NOW)
    validator.set_parameter_sets(parameter_sets)
    results: list[SignedGopResult] = []
    for n, au in enumerate(units):
        nals = [bytes(x) for x in au.nals]
        if n == 5:
            nals = [flip_in_p_slice(x) for x in nals]
        results += validator.push(AccessUnit(tuple(nals), n))
    results += validator.finish(REFERENCE_NOW)
    assert [r.result for r in results] == [OmsResult.NOT_AUTHENTIC]
    assert "hash of NAL 5 (P slice) does not match the signed hash list" in results[0].reasons


def test_kontur_resigns_the_reference_one_gop_clip_tlv_by_tlv_but_for_the_general(
    shared_file: Callable[[str], Path], site: Site
) -> None:
    """Same TLVs as the reference's one-GOP SEI, except the General TLV's stale fields
    (start time, NAL count, GOP hash), which kontur fills with the GOP's own."""
    path = VECTORS / "reference_one_gop_h264_30f.mkv"
    codec, parameter_sets, units = read_access_units(path)
    signer = OmsSigner(
        codec,
        site.identity,
        SignerOptions(kontur_extensions=False, vendor_info=REFERENCE_VENDOR_INFO),
        parameter_sets,
    )
    theirs: list[OmsSei] = []
    for au in units:
        plain = [bytes(n) for n in au.nals if not is_oms_sei(n, codec)]
        theirs += [OmsSei.from_nal(n, codec) for n in au.nals if is_oms_sei(n, codec)]
        if plain:
            assert signer.sign_access_unit(plain, REFERENCE_CAPTURE).seis == ()
    final = signer.finish()
    assert final is not None and len(final.seis) == len(theirs) == 1
    mine = OmsSei.from_nal(final.seis[0], codec)
    (ref,) = theirs
    assert mine.hash_list == ref.hash_list
    assert mine.general is not None and ref.general is not None
    assert mine.general.num_nalus == 30 and mine.general.gop_hash == gop_hash(
        mine.hash_list.hashes if mine.hash_list else ()
    )
    stale = {"start_timestamp": 0, "end_timestamp": 0, "num_nalus": 0, "gop_hash": b""}
    assert replace(mine.general, **stale) == replace(ref.general, **stale)
    others = [(t.tag, t) for t in mine.tlvs if t.tag not in (1, 3, 6)]
    assert others == [(t.tag, t) for t in ref.tlvs if t.tag not in (1, 3, 6)]


def test_reference_signed_400_frame_one_gop_clip_is_authentic(
    shared_file: Callable[[str], Path],
) -> None:
    path = VECTORS / "reference_one_gop_h264_400f.mkv"
    results = validate_file(path, _reference_anchor(shared_file), REFERENCE_NOW)
    assert [r.result for r in results] == [OmsResult.AUTHENTIC], results[0].reasons


# -- where the excuse ends ---------------------------------------------------------------


def _reference_style_sei(
    identity: SigningIdentity, entries: list[bytes], counter: int, linked: bytes
) -> bytes:
    """A reference-layout SEI whose General TLV holds the initial state (zeros, 0)."""
    zeros = bytes(32)
    tlvs: list[OmsTlv] = [
        CryptoInfoTlv(1, SHA256_OID, b"", 0),
        REFERENCE_VENDOR_INFO.tlv(),
        CertificatesTlv(1, 0, identity.embedded_chain),
        GeneralTlv(2, (25, 12, 3), 0, 0, datetime_to_filetime(BASE), counter, 0, zeros, linked),
        HashListTlv(1, tuple(entries)),
    ]
    doc = build_sei(Codec.H264, tlvs, signature_max_size=identity.max_signature_size)
    return doc.finish(identity.sign_digest(hashlib.sha256(doc.signed_bytes).digest()))


def _validate_initial_state(site: Site, counter: int, linked: bytes) -> SignedGopResult:
    """A 6-frame GOP and then, alone, a signed SEI holding the initial state over its list."""
    idr, p = b"\x65\x88\x84\x00\x33", b"\x41\x9a\x02\x03"
    units = [idr + b"\x01", *[p + bytes([i]) for i in range(1, 6)]]
    hasher = GopHasher()
    entries = [hasher.entry(nal, parse_nal_header(nal, Codec.H264)) for nal in units]
    validator = OmsValidator(Codec.H264, [site.ca], reference_time=NOW)
    results: list[SignedGopResult] = []
    for n, nal in enumerate(units):
        results += validator.push(AccessUnit((nal,), n))
    sei = _reference_style_sei(site.identity, entries, counter, linked)
    results += validator.push(AccessUnit((sei,)))
    results += validator.finish(NOW)
    assert len(results) == 1
    return results[0]


def test_initial_state_of_a_streams_first_sei_is_excused(site: Site) -> None:
    result = _validate_initial_state(site, 1, bytes(32))
    assert result.result is OmsResult.AUTHENTIC, result.reasons
    assert any(INITIAL_STATE in why for why in result.reasons)
    assert result.capture_start == BASE  # start time 0: the end time (first frame) is used


@pytest.mark.parametrize(
    ("counter", "linked"),
    [(2, bytes(32)), (1, b"\x01" * 32)],
    ids=["counter-not-1", "linked-hash-not-zero"],
)
def test_initial_state_is_excused_only_for_a_streams_first_sei(
    site: Site, counter: int, linked: bytes
) -> None:
    """Zeros in an SEI that cannot be the reference's first stay a mismatch."""
    result = _validate_initial_state(site, counter, linked)
    assert result.result is OmsResult.NOT_AUTHENTIC
    assert MISMATCH in result.reasons
    assert not any(INITIAL_STATE in why for why in result.reasons)
