"""OMS SEI parsing, building and byte-identical round trip."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import av
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from tests.conftest import SHARED_DATA, shared

from kontur.ingest.oms.errors import OmsLimitExceeded, SeiParseError, UnsupportedOmsVersion
from kontur.ingest.oms.limits import MAX_CERT_CHAIN_BYTES, MAX_HASH_LIST_ENTRIES, MAX_SEI_BYTES
from kontur.ingest.oms.nal import Codec, parse_extradata, split_packet
from kontur.ingest.oms.sei import (
    OMS_UUID,
    SHA256_OID,
    ArbitraryDataTlv,
    CertificatesTlv,
    CryptoInfoTlv,
    GeneralTlv,
    HashListTlv,
    OmsSei,
    SignatureTlv,
    VendorInfoTlv,
    build_sei,
    datetime_to_filetime,
    encode_tlv,
    filetime_to_datetime,
    is_oms_sei,
)

VECTOR_FILES = sorted(
    str(p.relative_to(SHARED_DATA)) for p in (SHARED_DATA / "oms").glob("*/*.m[pk][4v]")
)


def oms_seis(path: Path) -> tuple[Codec, list[bytes]]:
    """Every OMS SEI NAL unit of a vector file, in file order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = Codec.H264 if stream.codec_context.name == "h264" else Codec.H265
        length_size, _ = parse_extradata(stream.codec_context.extradata, codec)
        out = [
            nal
            for packet in container.demux(stream)
            if packet.size
            for nal in split_packet(bytes(packet), length_size)
            if is_oms_sei(nal, codec)
        ]
    return codec, out


@pytest.mark.parametrize("rel", VECTOR_FILES or ["oms/absent.mp4"])
def test_round_trip_every_vector_sei(rel: str) -> None:
    codec, nals = oms_seis(shared(*rel.split("/")))
    assert nals
    for nal in nals:
        sei = OmsSei.from_nal(nal, codec)
        assert sei.to_nal() == nal
        if sei.is_signed:
            assert nal.startswith(sei.signed_bytes) and nal[len(sei.signed_bytes)] == 3
        general = sei.general
        if general is not None:
            assert general.version == 2 and general.code_version == (25, 12, 3)
            assert len(general.gop_hash) == len(general.linked_hash) == 32
        assert sei.crypto_info is None or sei.crypto_info.hash_name == "sha256"


def test_first_sei_of_pets_h264_default() -> None:
    codec, nals = oms_seis(shared("oms", "streams", "pets_h264_default.mp4"))
    sei = OmsSei.from_nal(nals[0], codec)
    general = sei.general
    assert general is not None and general.gop_counter == 1 and general.num_nalus == 20
    assert general.start_timestamp == 118240312045000000
    assert general.linked_hash == bytes(32)
    assert general.start_time == datetime(1975, 9, 10, 5, 6, 44, 500000, tzinfo=UTC)
    assert (
        sei.vendor_info is not None and sei.vendor_info.manufacturer == b"Media Signing Framework"
    )
    assert (
        sei.certificates is not None and sei.certificates.chain_pem.count(b"BEGIN CERTIFICATE") == 1
    )
    assert sei.hash_list is not None and len(sei.hash_list.hashes) == 20
    assert not sei.certificate_sei and not sei.epb_before_hashing and sei.is_signed
    assert [t.tag for t in sei.tlvs] == [4, 5, 6, 1, 2, 3]


def test_filetime_conversion() -> None:
    moment = datetime(2026, 11, 25, 3, 7, 25, 123456, tzinfo=UTC)
    assert filetime_to_datetime(datetime_to_filetime(moment)) == moment
    assert filetime_to_datetime(0) == datetime(1601, 1, 1, tzinfo=UTC)
    assert filetime_to_datetime(2**63 - 1) is None


GENERAL = GeneralTlv(2, (25, 12, 3), 0, 1, 2, 7, 3, b"\x11" * 32, b"\x00" * 32)
HASH_LIST = HashListTlv(1, (b"\x00" * 32, b"\x01" * 32, b"\x00\x00\x03" * 10 + b"\x00\x00"))


def _signed_sei(
    epb: bool, codec: Codec = Codec.H264
) -> tuple[bytes, bytes, ec.EllipticCurvePublicKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    tlvs = [
        CryptoInfoTlv(1, SHA256_OID, b"", 0),
        VendorInfoTlv(1, b"fw", b"", b"acme"),
        GENERAL,
        HASH_LIST,
    ]
    doc = build_sei(codec, tlvs, epb_before_hashing=epb, signature_max_size=72)
    signature = key.sign(doc.signed_bytes, ec.ECDSA(hashes.SHA256()))
    return doc.finish(signature), doc.signed_bytes, key.public_key()


@pytest.mark.parametrize("codec", [Codec.H264, Codec.H265])
@pytest.mark.parametrize("epb", [False, True])
def test_build_sign_parse_round_trip(epb: bool, codec: Codec) -> None:
    nal, signed, public = _signed_sei(epb, codec)
    sei = OmsSei.from_nal(nal, codec)
    assert sei.to_nal() == nal
    assert sei.signed_bytes == signed
    assert sei.epb_before_hashing is epb
    assert sei.emulation_prevented is epb  # the zero runs in the hash list need escaping
    assert (b"\x00\x00\x00" in nal) is not epb
    assert sei.general == GENERAL and sei.hash_list == HASH_LIST
    assert sei.signature is not None
    public.verify(sei.signature.signature, sei.signed_bytes, ec.ECDSA(hashes.SHA256()))


def test_unsigned_and_certificate_seis() -> None:
    doc = build_sei(Codec.H265, [GENERAL, HASH_LIST])
    nal = doc.finish(None)
    sei = OmsSei.from_nal(nal, Codec.H265)
    assert not sei.is_signed and sei.signed_bytes == b"" and sei.to_nal() == nal
    cert = build_sei(
        Codec.H264, [CertificatesTlv(1, 0, b"PEM")], certificate_sei=True, signature_max_size=4
    )
    parsed = OmsSei.from_nal(cert.finish(b"sig"), Codec.H264)
    assert parsed.certificate_sei and parsed.general is None
    assert parsed.signature == SignatureTlv(1, b"sig", 4)
    with pytest.raises(ValueError, match=r"expected a signature of 1\.\.4 bytes, got 5"):
        cert.finish(b"12345")
    with pytest.raises(ValueError, match="built without room for a signature"):
        doc.finish(b"x")
    with pytest.raises(ValueError, match=r"added by SeiDocument\.finish"):
        build_sei(Codec.H264, [SignatureTlv(1, b"s", 1)])


def _sei(body: bytes, codec: Codec = Codec.H264) -> bytes:
    """An SEI NAL with ``body`` (after the UUID and reserved byte) and a correct size."""
    payload = OMS_UUID + b"\x00" + body
    size = len(payload)
    head = (
        (b"\x06" if codec is Codec.H264 else b"\x4e\x01")
        + b"\x05"
        + b"\xff" * (size // 255)
        + bytes([size % 255])
    )
    return head + payload + b"\x80"


def _general_value(version: int = 2, hash_size: int = 32) -> bytes:
    value = GeneralTlv(
        version, (1, 2, 3), 0, 5, 6, 1, 2, b"\x01" * hash_size, b"\x02" * hash_size
    ).encode()
    return value


@pytest.mark.parametrize(
    ("nal", "error", "message"),
    [
        (b"\x65\x88\x00", SeiParseError, "expected an SEI NAL unit, got I slice"),
        (b"\x06\x04\x10" + bytes(16) + b"\x80", SeiParseError, "expected SEI payload type 5"),
        (b"\x06", SeiParseError, "expected SEI payload type 5 .* got end of data"),
        (b"\x06\x05\xff", SeiParseError, "truncated SEI payload size"),
        (b"\x06\x05\x11" + bytes(16) + b"\x00\x80", SeiParseError, "expected the OMS UUID"),
        (b"\x06\x05\x10" + OMS_UUID + b"\x80", SeiParseError, "expected a reserved byte"),
        (
            b"\x06\x05\x20" + OMS_UUID + b"\x00\x80",
            SeiParseError,
            "expected an SEI payload of 32 bytes",
        ),
        (b"\x06\x05\x11" + OMS_UUID + b"\x00\x81", SeiParseError, "ending 0x81"),
        (
            b"\x06\x05\x11" + OMS_UUID + b"\x01\x80",
            SeiParseError,
            "expected reserved bits 0-5 to be zero",
        ),
        (_sei(b""), SeiParseError, "expected a GENERAL TLV in a non-certificate SEI"),
        (_sei(b"\x09\x00\x00"), SeiParseError, "unknown TLV tag 9 at offset 0"),
        (_sei(b"\x01\x00"), SeiParseError, "truncated TLV header at offset 0"),
        (_sei(b"\x05\x00\x09\x01"), SeiParseError, "claims 9 bytes, only 1 left"),
        (
            _sei(b"\x07\x00\x02\x01a\x07\x00\x02\x01b"),
            SeiParseError,
            "duplicate TLV tag 7 at offset 5",
        ),
        (
            _sei(b"\x03\x00\x04\x01\x00\x01s\x07\x00\x02\x01a"),
            SeiParseError,
            "TLV tag 7 after the signature",
        ),
        (
            _sei(encode_tlv(GENERAL)[:3] + b"\x03" + encode_tlv(GENERAL)[4:]),
            UnsupportedOmsVersion,
            "GENERAL TLV: expected version 1 or 2, got 3",
        ),
        (
            _sei(b"\x01\x00\x05" + _general_value()[:5]),
            SeiParseError,
            "GENERAL TLV: expected 91 bytes for version 2",
        ),
        (_sei(b"\x01\x00\x00"), SeiParseError, "GENERAL TLV: expected a version byte"),
        (
            _sei(b"\x02\x00\x04\x01abc"),
            SeiParseError,
            "HASH_LIST TLV: expected a multiple of 32 bytes, got 3",
        ),
        (
            _sei(b"\x02\x00\x01\x02"),
            UnsupportedOmsVersion,
            "HASH_LIST TLV: expected version 1, got 2",
        ),
        (
            _sei(b"\x03\x00\x03\x01\x00\x05"),
            SeiParseError,
            "SIGNATURE TLV: expected a signature of 1..0 bytes, got size 5",
        ),
        (_sei(b"\x03\x00\x02\x01\x00"), SeiParseError, "SIGNATURE TLV: expected at least 3 bytes"),
        (_sei(b"\x03\x00\x06\x01\x00\x01sab"), SeiParseError, "expected 0x01 padding"),
        (
            _sei(b"\x04\x00\x06\x01\x01\x06\x00\x00\x00"),
            SeiParseError,
            "CRYPTO_INFO TLV: expected a SHA-2 hash algorithm OID, got 06",
        ),
        (_sei(b"\x04\x00\x02\x01\x05"), SeiParseError, "CRYPTO_INFO TLV: truncated"),
        (
            _sei(b"\x04\x00\x07\x01\x01\x06\x00\x00\x00\x00"),
            SeiParseError,
            "CRYPTO_INFO TLV: expected 6 bytes, got 7",
        ),
        (
            _sei(b"\x05\x00\x03\x01\x05a"),
            SeiParseError,
            "VENDOR_INFO TLV: string at offset 1 runs past the end",
        ),
        (_sei(b"\x05\x00\x02\x01\x00"), SeiParseError, "VENDOR_INFO TLV: truncated at offset 2"),
        (
            _sei(b"\x05\x00\x05\x01\x00\x00\x00x"),
            SeiParseError,
            "VENDOR_INFO TLV: expected 4 bytes, got 5",
        ),
        (
            _sei(b"\x06\x00\x02\x01\x00"),
            SeiParseError,
            "CERTIFICATES TLV: expected a non-empty certificate chain",
        ),
        (_sei(b"\x07\x00\x01\x01"), SeiParseError, "ARBITRARY_DATA TLV: expected non-empty data"),
        (
            _sei(b"\x07\x00\x02\x02a"),
            UnsupportedOmsVersion,
            "ARBITRARY_DATA TLV: expected version 1, got 2",
        ),
    ],
)
def test_parse_errors(nal: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        OmsSei.from_nal(nal, Codec.H264)


def test_limits() -> None:
    too_many = b"\x01" + b"\x00" * 32 * (MAX_HASH_LIST_ENTRIES + 1)
    with pytest.raises(
        OmsLimitExceeded, match=f"hash list of {MAX_HASH_LIST_ENTRIES + 1} entries exceeds"
    ):
        HashListTlv.from_value(too_many, 32)
    with pytest.raises(
        OmsLimitExceeded, match=f"certificate chain of {MAX_CERT_CHAIN_BYTES + 1} bytes"
    ):
        CertificatesTlv.from_value(b"\x01\x00" + b"A" * (MAX_CERT_CHAIN_BYTES + 1))
    with pytest.raises(OmsLimitExceeded, match=f"exceeds {MAX_SEI_BYTES}"):
        OmsSei.from_nal(b"\x06\x05" + b"\x01" * MAX_SEI_BYTES, Codec.H264)
    with pytest.raises(
        OmsLimitExceeded, match="ARBITRARY_DATA TLV value of 65537 bytes exceeds 65535"
    ):
        encode_tlv(ArbitraryDataTlv(1, b"x" * 65536))


def test_is_oms_sei() -> None:
    nal, _, _ = _signed_sei(False)
    assert is_oms_sei(nal, Codec.H264)
    assert not is_oms_sei(nal[:10], Codec.H264)
    assert not is_oms_sei(b"\x06\x05\x11" + bytes(16) + b"\x00\x80", Codec.H264)
    assert not is_oms_sei(b"\x65" + nal[1:], Codec.H264)
