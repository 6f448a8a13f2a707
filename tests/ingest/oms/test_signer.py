"""The OMS signer against the reference: TLV-by-TLV interop, signatures, kontur extensions.

Interop by construction: a vector signed by the reference C library is stripped of its OMS
SEIs and re-signed by kontur's signer; each of our SEIs must equal the reference SEI of the
same GOP TLV by TLV except the signature, the timestamps and (other key) the certificates,
and sit in the same access unit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import av
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from kontur.ingest.oms.hashing import decode_parameter_set_claim, parameter_set_digest
from kontur.ingest.oms.keys import (
    SignerInputError,
    SigningIdentity,
    SigningKeyError,
    chain_pem,
    load_signing_identity,
    make_ca,
    make_camera_certificate,
    private_key_pem,
)
from kontur.ingest.oms.limits import MAX_HASH_LIST_ENTRIES
from kontur.ingest.oms.nal import Codec, parse_extradata, split_packet
from kontur.ingest.oms.sei import (
    ArbitraryDataTlv,
    CertificatesTlv,
    GeneralTlv,
    OmsSei,
    SignatureTlv,
    Tag,
    is_oms_sei,
)
from kontur.ingest.oms.signer import (
    END_OF_STREAM_MARKER,
    REFERENCE_VENDOR_INFO,
    OmsSigner,
    SignerOptions,
    oms_timestamp,
)
from kontur.ingest.oms.validator import AccessUnit, OmsResult, OmsValidator, SignedGopResult

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2036, 1, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Keys:
    """A throwaway site CA and camera identities issued by it."""

    ca: x509.Certificate
    ec: SigningIdentity
    rsa: SigningIdentity


@pytest.fixture(scope="module")
def keys() -> Keys:
    ca_key, ca = make_ca("kontur test CA", T0, T1)
    ec_key, ec_cert = make_camera_certificate(ca_key, ca, "cam-ec", T0, T1)
    rsa_key, rsa_cert = make_camera_certificate(
        ca_key, ca, "cam-rsa", T0, T1, key=rsa.generate_private_key(65537, 2048)
    )
    return Keys(
        ca,
        load_signing_identity(private_key_pem(ec_key), chain_pem(ec_cert, ca)),
        load_signing_identity(private_key_pem(rsa_key), chain_pem(rsa_cert, ca)),
    )


@dataclass(frozen=True)
class Vector:
    """A reference-signed stream: its unsigned access units and the reference's SEIs."""

    codec: Codec
    parameter_sets: list[bytes]
    units: list[tuple[list[bytes], dt.datetime]]  # unsigned NAL units, capture time
    reference: list[tuple[int, bytes]]  # (access unit index, SEI) in file order


def read_vector(path: Path) -> Vector:
    """Demux ``path``; strip its OMS SEIs (dropping SEI-only access units)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = Codec.H264 if stream.codec_context.name == "h264" else Codec.H265
        length_size, ps = parse_extradata(stream.codec_context.extradata, codec)
        units: list[tuple[list[bytes], dt.datetime]] = []
        reference: list[tuple[int, bytes]] = []
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            nals = split_packet(bytes(packet), length_size)
            reference += [(len(units), n) for n in nals if is_oms_sei(n, codec)]
            plain = [n for n in nals if not is_oms_sei(n, codec)]
            if plain:
                assert packet.pts is not None and packet.time_base is not None
                seconds = float(packet.pts * packet.time_base)
                units.append((plain, T0 + dt.timedelta(seconds=seconds)))
    return Vector(codec, ps, units, reference)


def sign_units(
    vector: Vector, identity: SigningIdentity, options: SignerOptions
) -> list[tuple[int, bytes]]:
    """Our SEIs as (access unit index, SEI); the final SEI gets index len(units)."""
    signer = OmsSigner(vector.codec, identity, options, vector.parameter_sets)
    ours: list[tuple[int, bytes]] = []
    for index, (nals, when) in enumerate(vector.units):
        signed = signer.sign_access_unit(nals, when)
        assert [n for n in signed.nal_units if n not in signed.seis] == nals
        ours += [(index, s) for s in signed.seis]
    final = signer.finish()
    assert final is not None and final.nal_units == final.seis
    ours += [(len(vector.units), s) for s in final.seis]
    return ours


def signature_offset(sei: bytes, codec: Codec) -> int:
    """Offset of the signature TLV in ``sei``, walking the payload by hand."""
    pos = codec.header_size + 1
    while sei[pos] == 0xFF:
        pos += 1
    pos += 1 + 16 + 1  # last size byte, UUID, reserved byte
    while sei[pos] != Tag.SIGNATURE:
        pos += 3 + int.from_bytes(sei[pos + 1 : pos + 3], "big")
    return pos


def verify_signature(sei: bytes, codec: Codec, key: object) -> None:
    """Raise unless the SEI's signature covers SHA-256 of header..last TLV before it."""
    parsed = OmsSei.from_nal(sei, codec)
    document = sei[: signature_offset(sei, codec)]
    assert parsed.signed_bytes == document
    sig = parsed.signature
    assert sig is not None
    digest = hashlib.sha256(document).digest()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(sig.signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    else:
        assert isinstance(key, rsa.RSAPublicKey)
        pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO)
        key.verify(sig.signature, digest, pss, Prehashed(hashes.SHA256()))


def comparable(sei: OmsSei, fresh_final: bool = False) -> list[tuple[Tag, object]]:
    """TLVs with what may legitimately differ masked: times, signature, certificates
    (and, for kontur's fresh final SEI without hash list, the GOP hash and NAL count)."""
    out: list[tuple[Tag, object]] = []
    for tlv in sei.tlvs:
        if isinstance(tlv, GeneralTlv):
            general = replace(tlv, start_timestamp=0, end_timestamp=0)
            if fresh_final:
                general = replace(general, gop_hash=b"", num_nalus=0)
            out.append((tlv.tag, general))
        elif isinstance(tlv, SignatureTlv):
            out.append((tlv.tag, tlv.max_size))
        elif isinstance(tlv, CertificatesTlv):
            out.append((tlv.tag, (tlv.version, tlv.user_provisioned)))
        else:
            out.append((tlv.tag, tlv))
    return out


INTEROP = [
    ("streams/pets_h264_default.mp4", SignerOptions(), "ec"),
    ("streams/pets_h265_default.mp4", SignerOptions(), "ec"),
    ("streams/pets_h264_certsei.mp4", SignerOptions(certificate_sei=True), "ec"),
    ("streams/pets_h265_certsei.mp4", SignerOptions(certificate_sei=True), "ec"),
    (
        "streams/car_h264_lowbitrate_certsei.mp4",
        SignerOptions(certificate_sei=True, low_bitrate=True),
        "ec",
    ),
    ("streams/car_h265_bframes_mkv.mkv", SignerOptions(), "ec"),
    ("streams/pets_h264_lowbitrate.mp4", SignerOptions(low_bitrate=True), "ec"),
    ("streams/pets_h265_lowbitrate.mp4", SignerOptions(low_bitrate=True), "ec"),
    ("streams/car_h265_default.mp4", SignerOptions(), "ec"),
    ("streams/pets_h265_rsa.mp4", SignerOptions(), "rsa"),
    ("streams/pets_h264_rsa.mp4", SignerOptions(), "rsa"),
]


@pytest.mark.parametrize(("rel", "options", "key_name"), INTEROP, ids=[i[0] for i in INTEROP])
def test_resigned_vector_matches_reference_tlv_by_tlv(
    shared_file: Callable[[str], Path], keys: Keys, rel: str, options: SignerOptions, key_name: str
) -> None:
    vector = read_vector(shared_file(f"oms/{rel}"))
    identity = keys.ec if key_name == "ec" else keys.rsa
    reference_layout = SignerOptions(
        certificate_sei=options.certificate_sei,
        low_bitrate=options.low_bitrate,
        kontur_extensions=False,
        vendor_info=REFERENCE_VENDOR_INFO,
    )
    ours = sign_units(vector, identity, reference_layout)
    assert [i for i, _ in ours] == [i for i, _ in vector.reference]  # same placement
    for n, ((index, mine), (_, theirs)) in enumerate(zip(ours, vector.reference, strict=True)):
        a, b = OmsSei.from_nal(mine, vector.codec), OmsSei.from_nal(theirs, vector.codec)
        fresh = options.low_bitrate and n == len(ours) - 1
        assert a.reserved_byte == b.reserved_byte, f"access unit {index}"
        assert comparable(a, fresh) == comparable(b, fresh), f"access unit {index}"
        assert mine[: vector.codec.header_size + 1] == theirs[: vector.codec.header_size + 1]
        verify_signature(mine, vector.codec, identity.certificates[0].public_key())


def test_reference_signatures_verify_over_the_same_bytes(
    shared_file: Callable[[str], Path],
) -> None:
    """The bytes we sign are the bytes the reference signs (its own SEIs verify that way)."""
    for rel in ("streams/pets_h264_default.mp4", "streams/pets_h264_rsa.mp4"):
        vector = read_vector(shared_file(f"oms/{rel}"))
        first = OmsSei.from_nal(vector.reference[0][1], vector.codec)
        assert first.certificates is not None
        leaf = x509.load_pem_x509_certificates(first.certificates.chain_pem)[0]
        for _, sei in vector.reference:
            verify_signature(sei, vector.codec, leaf.public_key())


def test_timestamps_are_capture_times_in_onvif_ticks(
    shared_file: Callable[[str], Path], keys: Keys
) -> None:
    vector = read_vector(shared_file("oms/streams/pets_h264_default.mp4"))
    ours = sign_units(vector, keys.ec, SignerOptions())
    general = OmsSei.from_nal(ours[0][1], vector.codec).general
    assert general is not None
    # GOP 1 runs from frame 0 to frame 20 (10 fps): 2 s later.
    assert general.start_timestamp == oms_timestamp(T0) == 134_116_992_000_000_000
    assert general.end_timestamp - general.start_timestamp == 20_000_000
    assert general.start_time == T0


def test_kontur_extension_claims_parameter_sets_and_end_of_stream(
    shared_file: Callable[[str], Path], keys: Keys
) -> None:
    vector = read_vector(shared_file("oms/streams/pets_h265_default.mp4"))
    ours = sign_units(vector, keys.ec, SignerOptions())
    digest = parameter_set_digest(vector.parameter_sets)
    assert len(vector.parameter_sets) == 3  # VPS, SPS, PPS from hvcC
    for n, (_, sei) in enumerate(ours):
        parsed = OmsSei.from_nal(sei, vector.codec)
        data = parsed.arbitrary_data
        assert isinstance(data, ArbitraryDataTlv)
        assert [t.tag for t in parsed.tlvs][-3:] == [Tag.HASH_LIST, Tag.ARBITRARY_DATA,
                                                     Tag.SIGNATURE]  # fmt: skip
        last = n == len(ours) - 1
        assert data.data.endswith(END_OF_STREAM_MARKER) is last
        claim = data.data[: -len(END_OF_STREAM_MARKER)] if last else data.data
        assert decode_parameter_set_claim(claim) == digest


def test_inband_parameter_sets_belong_to_their_gop(keys: Keys) -> None:
    """An SPS change inside the stream is claimed by the GOP whose IDR it precedes."""
    sps1, sps2, pps = b"\x67\x64\x00\x1f\xac", b"\x67\x64\x00\x28\xac", b"\x68\xeb\xe3\xcb"
    idr, p = b"\x65\x88\x84\x00\x33", b"\x41\x9a\x02\x03"
    signer = OmsSigner(Codec.H264, keys.ec, SignerOptions())
    units = [[sps1, pps, idr], [p], [sps2, pps, idr], [p], [p]]
    seis = [s for i, u in enumerate(units)
            for s in signer.sign_access_unit(u, T0 + dt.timedelta(seconds=i)).seis]  # fmt: skip
    final = signer.finish()
    assert final is not None
    claims = [OmsSei.from_nal(s, Codec.H264).arbitrary_data for s in [*seis, *final.seis]]
    assert [c.data[13:45] if c else None for c in claims] == [
        parameter_set_digest([sps1, pps]),
        parameter_set_digest([sps2, pps]),
    ]


def test_sei_goes_before_the_first_primary_slice_after_aud_and_parameter_sets(
    keys: Keys,
) -> None:
    aud, sps, pps = b"\x09\xf0", b"\x67\x64\x00\x1f\xac", b"\x68\xeb\xe3\xcb"
    idr, p, p2 = b"\x65\x88\x84\x00\x33", b"\x41\x9a\x02\x03", b"\x41\x1a\x02\x03"  # p2: 2nd slice
    signer = OmsSigner(Codec.H264, keys.ec, SignerOptions())
    units = ([aud, sps, pps, idr, p2], [aud, p, p2], [aud, sps, pps, idr], [aud, p, p2])
    out = [signer.sign_access_unit(u, T0) for u in units]
    assert [len(o.seis) for o in out] == [0, 0, 0, 1]
    assert out[3].nal_units == (aud, out[3].seis[0], p, p2)


def test_sei_does_not_wait_forever_behind_per_frame_seis(keys: Keys) -> None:
    timing, idr, p = b"\x06\x01\x01\x00\x80", b"\x65\x88\x84\x00\x33", b"\x41\x9a\x02\x03"
    signer = OmsSigner(Codec.H264, keys.ec, SignerOptions())
    units = ([timing, idr], [timing, p], [timing, idr], [timing, p], [timing, p], [timing, p])
    out = [signer.sign_access_unit(u, T0) for u in units]
    assert [len(o.seis) for o in out] == [0, 0, 0, 0, 1, 0]  # overdue after one access unit
    assert out[4].nal_units == (timing, out[4].seis[0], p)


def test_certificate_sei_waits_for_a_slice_not_preceded_by_another_sei(keys: Keys) -> None:
    x264_sei, idr, p = b"\x06\x05\x01\x00\x80", b"\x65\x88\x84\x00\x33", b"\x41\x9a\x02\x03"
    signer = OmsSigner(Codec.H264, keys.ec, SignerOptions(certificate_sei=True))
    first = signer.sign_access_unit([x264_sei, idr], T0)
    second = signer.sign_access_unit([p], T0)
    assert first.seis == () and len(second.seis) == 1
    cert = OmsSei.from_nal(second.seis[0], Codec.H264)
    assert cert.certificate_sei and cert.general is None
    assert [t.tag for t in cert.tlvs] == [Tag.CRYPTO_INFO, Tag.VENDOR_INFO, Tag.CERTIFICATES,
                                          Tag.SIGNATURE]  # fmt: skip


@pytest.mark.parametrize("rel", ["streams/pets_h264_default.mp4", "streams/pets_h265_default.mp4"])
def test_kontur_validator_finds_every_gop_authentic(
    shared_file: Callable[[str], Path], keys: Keys, rel: str
) -> None:
    vector = read_vector(shared_file(f"oms/{rel}"))
    signer = OmsSigner(vector.codec, keys.ec, SignerOptions(), vector.parameter_sets)
    validator = OmsValidator(
        vector.codec, [keys.ca], reference_time=NOW, require_parameter_set_claim=True
    )
    validator.set_parameter_sets(vector.parameter_sets)
    results = []
    for nals, when in vector.units:
        results += validator.push(AccessUnit(signer.sign_access_unit(nals, when).nal_units))
    final = signer.finish()
    assert final is not None
    results += validator.push(AccessUnit(final.nal_units))
    results += validator.finish(NOW)
    assert len(results) == 10
    assert [r.result for r in results] == [OmsResult.AUTHENTIC] * 10, results[-1].reasons
    assert all(r.parameter_sets_covered for r in results)
    assert results[-1].end_of_stream


def test_signer_refuses_already_signed_input(
    shared_file: Callable[[str], Path], keys: Keys
) -> None:
    path = shared_file("oms/streams/pets_h264_default.mp4")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [bytes(p) for p in container.demux(stream) if p.size][:22]
    signer = OmsSigner(Codec.H264, keys.ec, SignerOptions())
    with pytest.raises(SignerInputError, match="input is already signed"):
        for data in packets:
            signer.sign_access_unit(split_packet(data), T0)


def test_signer_refuses_empty_units_late_calls_and_naive_times(keys: Keys) -> None:
    signer = OmsSigner(Codec.H264, keys.ec, SignerOptions())
    with pytest.raises(SignerInputError, match="expected NAL units in access unit 0"):
        signer.sign_access_unit([], T0)
    with pytest.raises(SignerInputError, match="timezone-aware"):
        signer.sign_access_unit([b"\x65\x88\x84\x00\x33"], dt.datetime(2026, 1, 1))
    assert signer.finish() is None  # nothing signed: no final SEI
    with pytest.raises(SignerInputError, match="after finish"):
        signer.sign_access_unit([b"\x65\x88\x84\x00\x33"], T0)


def test_identity_embeds_the_chain_without_its_anchor(
    shared_file: Callable[[str], Path], keys: Keys
) -> None:
    chain = shared_file("oms/keys/ec_cert_chain.pem").read_bytes()
    vector = read_vector(shared_file("oms/streams/pets_h264_default.mp4"))
    certs = OmsSei.from_nal(vector.reference[0][1], Codec.H264).certificates
    assert certs is not None
    # The reference embeds the PEM text before the anchor's BEGIN line, byte for byte.
    assert chain.startswith(certs.chain_pem)
    assert chain[len(certs.chain_pem) :].startswith(b"-----BEGIN CERTIFICATE-----")
    assert keys.ec.embedded_chain == chain_pem(keys.ec.certificates[0])


def test_identity_refuses_bad_keys_and_chains(keys: Keys) -> None:
    ca_key, ca = make_ca("other CA", T0, T1)
    leaf_key, leaf = make_camera_certificate(ca_key, ca, "cam", T0, T1)
    with pytest.raises(SigningKeyError, match="at least 2 PEM certificates"):
        load_signing_identity(private_key_pem(leaf_key), chain_pem(leaf))
    with pytest.raises(SigningKeyError, match="to match the leaf certificate"):
        load_signing_identity(private_key_pem(ca_key), chain_pem(leaf, ca))
    with pytest.raises(SigningKeyError, match="to be issued by certificate 1"):
        load_signing_identity(private_key_pem(leaf_key), chain_pem(leaf, keys.ca))
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(SigningKeyError, match="got EC curve secp384r1"):
        load_signing_identity(private_key_pem(p384), chain_pem(leaf, ca))
    with pytest.raises(SigningKeyError, match="expected a PEM private key"):
        load_signing_identity(b"not a key", chain_pem(leaf, ca))
    encrypted = leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(SigningKeyError, match="expected an unencrypted PEM private key"):
        load_signing_identity(encrypted, chain_pem(leaf, ca))
    assert load_signing_identity(encrypted, chain_pem(leaf, ca), b"secret").key_type.value == (
        "ecdsa-p256"
    )
    small_rsa = rsa.generate_private_key(65537, 1024)
    with pytest.raises(SigningKeyError, match="at least 2048 bits, got 1024"):
        load_signing_identity(private_key_pem(small_rsa), chain_pem(leaf, ca))


def test_final_sei_without_hash_list_states_the_last_gop(keys: Keys) -> None:
    """Low-bitrate / over-long GOP: the final SEI's General TLV covers the last GOP itself
    (the reference's stale copy would fail it), and kontur's validator agrees."""
    idr, p = b"\x65\x88\x84\x00\x33", b"\x41\x9a\x02\x03"
    for options, (gop_length, last_length) in (
        (SignerOptions(low_bitrate=True), (5, 7)),
        (SignerOptions(), (MAX_HASH_LIST_ENTRIES + 1, MAX_HASH_LIST_ENTRIES + 2)),
    ):
        signer = OmsSigner(Codec.H264, keys.ec, options)
        validator = OmsValidator(Codec.H264, [keys.ca], reference_time=NOW)
        results: list[SignedGopResult] = []
        seis: list[bytes] = []
        for g, length in enumerate((gop_length, last_length)):
            for i in range(length):
                nals = [idr + bytes([g])] if i == 0 else [p + i.to_bytes(2, "big")]
                signed = signer.sign_access_unit(nals, T0 + dt.timedelta(seconds=g * 1000 + i))
                seis += signed.seis
                results += validator.push(AccessUnit(signed.nal_units))
        first = OmsSei.from_nal(seis[0], Codec.H264)
        assert first.hash_list is None and first.general is not None
        assert first.general.num_nalus == gop_length
        final = signer.finish()
        assert final is not None
        results += validator.push(AccessUnit(final.nal_units)) + validator.finish(NOW)
        last = OmsSei.from_nal(final.seis[-1], Codec.H264)
        assert last.hash_list is None and last.general is not None
        assert last.general.num_nalus == last_length
        assert last.general.start_time == T0 + dt.timedelta(seconds=1000)
        assert last.general.end_time == T0 + dt.timedelta(seconds=1000 + last_length - 1)
        assert [r.result for r in results] == [OmsResult.AUTHENTIC] * 2, results[-1].reasons
