"""The pure validator on synthetic streams signed the way the reference signs them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kontur.ingest.oms import validator as validator_module
from kontur.ingest.oms.errors import OmsLimitExceeded
from kontur.ingest.oms.hashing import (
    GopHasher,
    encode_parameter_set_claim,
    gop_hash,
    parameter_set_digest,
)
from kontur.ingest.oms.limits import (
    MAX_CERTIFICATES,
    MAX_NALS_PER_ACCESS_UNIT,
    MAX_PARAMETER_SETS,
    MAX_PENDING_GOPS,
)
from kontur.ingest.oms.nal import Codec, parse_nal_header
from kontur.ingest.oms.provenance import Provenance, load_pem_chain
from kontur.ingest.oms.sei import (
    SHA256_OID,
    ArbitraryDataTlv,
    CertificatesTlv,
    CryptoInfoTlv,
    GeneralTlv,
    HashListTlv,
    OmsTlv,
    build_sei,
    datetime_to_filetime,
)
from kontur.ingest.oms.validator import AccessUnit, OmsResult, OmsValidator, SignedGopResult

CAPTURE = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 2, tzinfo=UTC)
SPS = bytes([0x67, 0x64, 0x00, 0x15, 0xAC])
PPS = bytes([0x68, 0xEB, 0xE3, 0xCB])


def _cert(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    ca: bool,
    start: datetime,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name = (
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]) if issuer else subject
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


@dataclass
class Camera:
    """A test signer: EC P-256 leaf under a test CA, signing like the reference."""

    leaf_start: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    ps_claim: bool = False
    ca_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def __post_init__(self) -> None:
        self.ca = _cert("test CA", self.ca_key, None, True, datetime(2024, 1, 1, tzinfo=UTC))
        self.leaf = _cert("test leaf", self.key, ("test CA", self.ca_key), False, self.leaf_start)
        self.pem = self.leaf.public_bytes(serialization.Encoding.PEM)

    def sei(self, counter: int, entries: list[bytes], linked: bytes, ps: set[bytes]) -> bytes:
        start = datetime_to_filetime(CAPTURE + timedelta(seconds=counter))
        tlvs: list[OmsTlv] = [
            CryptoInfoTlv(1, SHA256_OID, b"", 0),
            CertificatesTlv(1, 0, self.pem),
            GeneralTlv(
                2,
                (25, 12, 3),
                0,
                start,
                start + 10_000_000,
                counter,
                len(entries),
                gop_hash(entries),
                linked,
            ),
            HashListTlv(1, tuple(entries)),
        ]
        if self.ps_claim:
            tlvs.append(ArbitraryDataTlv(1, encode_parameter_set_claim(parameter_set_digest(ps))))
        doc = build_sei(Codec.H264, tlvs, signature_max_size=72)
        return doc.finish(self.key.sign(doc.signed_bytes, ec.ECDSA(hashes.SHA256())))

    def stream(self, gops: list[list[bytes]], final_sei: bool = True) -> list[AccessUnit]:
        """Access units of ``gops`` (slices), the SEI of GOP k in the 2nd AU of GOP k+1."""
        hasher = GopHasher()
        aus: list[AccessUnit] = []
        queued: bytes | None = None
        entries: list[bytes] = []
        for k, gop in enumerate(gops):
            for j, nal in enumerate(gop):
                info = parse_nal_header(nal, Codec.H264)
                if j == 0:
                    if k:
                        queued = self.sei(k, entries, hasher.previous_anchor, {SPS, PPS})
                    hasher.start_gop()
                    entries = []
                entries.append(hasher.entry(nal, info))
                nals = (queued, nal) if j == 1 and queued else (nal,)
                if j == 1:
                    queued = None
                aus.append(AccessUnit(nals, len(aus), j == 0))
        if final_sei:
            aus.append(
                AccessUnit(
                    (self.sei(len(gops), entries, hasher.previous_anchor, {SPS, PPS}),), None
                )
            )
        return aus


def slices(n_gops: int, gop_len: int = 5) -> list[list[bytes]]:
    """Random IDR + P slices."""
    return [
        [bytes([0x65, 0x88]) + os.urandom(40)]
        + [bytes([0x41, 0x9A]) + os.urandom(30) for _ in range(gop_len - 1)]
        for _ in range(n_gops)
    ]


def run(
    aus: list[AccessUnit],
    anchors: list[x509.Certificate],
    ps: tuple[bytes, ...] = (SPS, PPS),
    **kw: bool,
) -> list[SignedGopResult]:
    validator = OmsValidator(Codec.H264, anchors, reference_time=NOW, **kw)
    validator.set_parameter_sets(ps)
    out: list[SignedGopResult] = []
    for au in aus:
        out += validator.push(au)
    out += validator.finish(NOW)
    return sorted(out, key=lambda r: r.index)


@pytest.fixture(scope="module")
def camera() -> Camera:
    return Camera()


def test_authentic_stream(camera: Camera) -> None:
    results = run(camera.stream(slices(4)), [camera.ca])
    assert [r.result for r in results] == [OmsResult.AUTHENTIC] * 4
    assert [r.gop_counter for r in results] == [1, 2, 3, 4]
    assert [r.end_of_stream for r in results] == [False, False, False, True]
    first = results[0]
    assert first.provenance.status is Provenance.OK
    assert first.capture_start == CAPTURE + timedelta(seconds=1)
    assert first.frames == 5 and first.nalus_expected == first.nalus_received == 5
    assert first.validation_string == "....." and first.nalu_string == "IPPPP"
    assert results[1].nalu_string == "ISPPPP"
    assert first.reference_result == "valid"
    assert not first.parameter_sets_covered
    assert first.signer_key_der == camera.leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_dropped_p_frame_is_missing(camera: Camera) -> None:
    aus = camera.stream(slices(3))
    del aus[7]  # GOP 1, frame 2
    results = run(aus, [camera.ca])
    assert results[1].result is OmsResult.MISSING
    assert "1 of 5 signed NAL units were not received" in results[1].reasons
    assert results[1].reference_result == "valid_with_missing"
    assert results[0].result is results[2].result is OmsResult.AUTHENTIC


def test_modified_p_frame_is_not_authentic(camera: Camera) -> None:
    aus = camera.stream(slices(3))
    nal = bytearray(aus[8].nals[-1])
    nal[10] ^= 1
    aus[8] = AccessUnit((bytes(nal),), 8)
    results = run(aus, [camera.ca])
    assert results[1].result is OmsResult.NOT_AUTHENTIC
    assert "hash of NAL 3 (P slice) does not match the signed hash list" in results[1].reasons
    assert results[1].validation_string == "....N."  # I S P P N P


def test_truncated_stream_leaves_last_gop_pending(camera: Camera) -> None:
    results = run(camera.stream(slices(3), final_sei=False), [camera.ca])
    assert [r.result for r in results] == [
        OmsResult.AUTHENTIC,
        OmsResult.AUTHENTIC,
        OmsResult.PENDING,
    ]
    assert "truncated" in results[2].reasons[0]
    assert not any(r.end_of_stream for r in results)


def test_unsigned_stream(camera: Camera) -> None:
    aus = [AccessUnit((n,), i) for i, g in enumerate(slices(2)) for n in g]
    results = run(aus, [camera.ca])
    assert [r.result for r in results] == [OmsResult.UNSIGNED] * 2
    assert results[0].reasons == ("no OMS SEI in the stream",)


def test_unsigned_gops_are_bounded(camera: Camera) -> None:
    validator = OmsValidator(Codec.H264, [camera.ca])
    early: list[SignedGopResult] = []
    for gop in slices(MAX_PENDING_GOPS + 3, 2):
        for nal in gop:
            early += validator.push(AccessUnit((nal,)))
    assert [r.index for r in early] == [0, 1]
    assert early[0].result is OmsResult.UNSIGNED


def test_bad_signature(camera: Camera) -> None:
    aus = camera.stream(slices(2))
    sei = bytearray(aus[6].nals[0])
    sei[-10] ^= 0x55  # inside the DER signature
    aus[6] = AccessUnit((bytes(sei), aus[6].nals[1]), 6)
    results = run(aus, [camera.ca])
    assert results[0].result is OmsResult.NOT_AUTHENTIC
    assert (
        "signature does not verify with the key of certificate CN=test leaf" in results[0].reasons
    )


def test_malformed_sei(camera: Camera) -> None:
    aus = camera.stream(slices(2))
    sei = aus[6].nals[0]
    aus[6] = AccessUnit((sei[:-30] + b"\x80", aus[6].nals[1]), 6)
    results = run(aus, [camera.ca])
    assert results[0].result is OmsResult.NOT_AUTHENTIC
    assert results[0].reasons[0].startswith("malformed OMS SEI: expected an SEI payload of")


def test_replayed_gop(camera: Camera) -> None:
    aus = camera.stream(slices(4))
    replay = aus[5:10]  # GOP 1 with the SEI of GOP 0
    results = run(aus[:15] + replay + aus[15:], [camera.ca])
    bad = [r for r in results if r.result is OmsResult.NOT_AUTHENTIC]
    assert bad
    assert any("expected GOP counter" in why for r in bad for why in r.reasons)


def test_provenance_at_capture_time() -> None:
    late = Camera(leaf_start=datetime(2026, 7, 1, tzinfo=UTC))  # after CAPTURE
    results = run(late.stream(slices(1)), [late.ca])
    assert results[0].result is OmsResult.AUTHENTIC
    assert results[0].provenance.status is Provenance.NOT_OK
    assert "not yet valid at capture time 2026-06-01" in results[0].provenance.reason


def test_provenance_without_or_with_wrong_anchor(camera: Camera) -> None:
    assert run(camera.stream(slices(1)), [])[0].provenance.status is Provenance.NO_ANCHOR
    other = Camera()
    wrong = run(camera.stream(slices(1)), [other.ca])[0].provenance
    assert wrong.status is Provenance.NOT_OK
    assert "is not issued by any trust anchor" in wrong.reason


def test_parameter_set_claim() -> None:
    cam = Camera(ps_claim=True)
    aus = cam.stream(slices(2))
    good = run(aus, [cam.ca])
    assert all(r.result is OmsResult.AUTHENTIC and r.parameter_sets_covered for r in good)
    changed = run(aus, [cam.ca], ps=(SPS + b"\x01", PPS))
    assert all(
        r.result is OmsResult.NOT_AUTHENTIC and not r.parameter_sets_covered for r in changed
    )
    assert (
        "parameter sets (SPS/PPS/VPS) in effect do not match the signed claim" in changed[0].reasons
    )
    assert changed[0].reference_result == "valid"  # the reference does not hash SPS/PPS


def test_claim_required(camera: Camera) -> None:
    results = run(camera.stream(slices(1)), [camera.ca], require_parameter_set_claim=True)
    assert results[0].result is OmsResult.NOT_AUTHENTIC
    assert "parameter sets are not covered by a kontur claim" in results[0].reasons


def test_nals_per_gop_limit(camera: Camera, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validator_module, "MAX_NALS_PER_GOP", 3)
    results = run(camera.stream(slices(1)), [camera.ca])
    assert results[0].result is OmsResult.NOT_AUTHENTIC
    assert "GOP exceeds 3 NAL units or parameter-set bound" in results[0].reasons


def test_call_order(camera: Camera) -> None:
    validator = OmsValidator(Codec.H264, [camera.ca])
    validator.push(AccessUnit((bytes([0x65, 0x88, 1]),)))
    with pytest.raises(RuntimeError, match="before the first push"):
        validator.set_parameter_sets([SPS])
    validator.finish(NOW)
    with pytest.raises(RuntimeError, match="push after finish"):
        validator.push(AccessUnit(()))
    with pytest.raises(RuntimeError, match="finish called twice"):
        validator.finish(NOW)


def test_garbage_nal_is_recorded_not_raised(camera: Camera) -> None:
    validator = OmsValidator(Codec.H265, [camera.ca])
    assert validator.push(AccessUnit((b"\x26",))) == []
    results = validator.finish(NOW)
    assert results[0].reasons[0].startswith("malformed NAL unit: expected a NAL unit of at least 2")


def test_container_parameter_set_limit(camera: Camera) -> None:
    validator = OmsValidator(Codec.H264, [camera.ca])
    many = [SPS + i.to_bytes(2, "big") for i in range(MAX_PARAMETER_SETS + 1)]
    with pytest.raises(OmsLimitExceeded, match=f"more than {MAX_PARAMETER_SETS} container"):
        validator.set_parameter_sets(many)


def test_nals_per_access_unit_limit(camera: Camera) -> None:
    validator = OmsValidator(Codec.H264, [camera.ca])
    validator.push(AccessUnit((bytes([0x65, 0x88, 1]),) * (MAX_NALS_PER_ACCESS_UNIT + 1)))
    results = validator.finish(NOW)
    limit = MAX_NALS_PER_ACCESS_UNIT
    assert results[0].reasons[0] == f"access unit of {limit + 1} NAL units exceeds {limit}"


def test_certificate_count_limit(camera: Camera) -> None:
    with pytest.raises(OmsLimitExceeded, match=f"exceeds {MAX_CERTIFICATES}"):
        load_pem_chain(camera.pem * (MAX_CERTIFICATES + 1))


def test_signing_stops_before_the_end(camera: Camera) -> None:
    signed = camera.stream(slices(2), final_sei=False)
    tail = [AccessUnit((n,)) for g in slices(3) for n in g]
    results = run(signed + tail, [camera.ca])
    assert [r.result for r in results] == [
        OmsResult.AUTHENTIC,  # GOP 0, signed in GOP 1
        OmsResult.NOT_AUTHENTIC,  # GOP 1: its SEI should have come in GOP 2
        OmsResult.NOT_AUTHENTIC,  # GOP 2
        OmsResult.PENDING,  # GOP 3: its SEI could be in the truncated GOP 4
        OmsResult.PENDING,  # GOP 4, open
    ]
    assert results[1].reasons == ("no SEI signed this GOP before the stream ended",)
