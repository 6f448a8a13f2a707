"""The pure freshness core: every verdict with its reason, and the replay window's edges."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from kontur.ingest.freshness import (
    CameraProfile,
    ChainUntrusted,
    EnrolledCamera,
    FactsInvalid,
    FreshnessPolicy,
    HashSighting,
    PriorState,
    ReplayWindow,
    SignedGopFacts,
    assess,
    spki_of,
    verify_chain,
)
from kontur.ingest.verdict import Verdict

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
POLICY = FreshnessPolicy(window=64, max_skew_s=2.0, max_delay_s=30.0)
PROFILE = CameraProfile("h264", 1920, 1080, 25.0)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str = "site") -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=30))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
    cn: str = "cam1",
    key: ec.EllipticCurvePrivateKey | None = None,
    not_after: datetime | None = None,
) -> x509.Certificate:
    key = key or ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca[1].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(not_after or NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca[0], hashes.SHA256())
    )


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


SITE = _ca()
LEAF = _leaf(SITE)
SITE_DER = _der(SITE[1])


def _camera(**kw: object) -> EnrolledCamera:
    base = EnrolledCamera(
        camera_id="cam1",
        subject="CN=cam1",
        leaf_der=_der(LEAF),
        key_der=spki_of(LEAF),
        profile=PROFILE,
        signing_required=False,
        critical=True,
        enrolled_at=NOW - timedelta(days=1),
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _facts(**kw: object) -> SignedGopFacts:
    base = SignedGopFacts(
        camera_id="cam1",
        session_id="s1",
        gop_index=7,
        signed=True,
        signature_ok=True,
        gop_counter=42,
        gop_hash=b"\x01" * 32,
        capture_start=NOW - timedelta(seconds=2),
        capture_end=NOW - timedelta(seconds=1),
        signer_key_der=spki_of(LEAF),
        certificate_chain=(_der(LEAF), SITE_DER),
        profile=PROFILE,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _assess(facts: SignedGopFacts | None = None, **kw: object):  # type: ignore[no-untyped-def]
    camera = kw.pop("camera", _camera())
    prior = kw.pop("prior", PriorState())
    now = kw.pop("now", NOW)
    site = kw.pop("site", SITE_DER)
    return assess(facts or _facts(), camera, prior, POLICY, site, now)  # type: ignore[arg-type]


def _has(result: object, verdict: Verdict, fragment: str) -> None:
    assert result.verdict is verdict, result  # type: ignore[attr-defined]
    assert any(fragment in r for r in result.reasons), result.reasons  # type: ignore[attr-defined]


def test_fresh_gop_is_authentic_and_commits_its_state() -> None:
    r = _assess()
    _has(r, Verdict.AUTHENTIC, "fresh: key, chain, capture time")
    assert r.commit and r.window == ReplayWindow(42, 1, 64)
    assert r.to_gop_verdict().verdict is Verdict.AUTHENTIC
    assert r.seen_payload()["gop_hash"] == "01" * 32


def test_revoked_camera() -> None:
    cam = _camera(revoked_at=NOW - timedelta(minutes=1), revoked_reason="stolen from pole 4")
    _has(_assess(camera=cam), Verdict.REVOKED, "was revoked at 2026-11-30T11:59:00+00:00")
    _has(_assess(camera=cam), Verdict.REVOKED, "stolen from pole 4")


def test_signed_gop_of_a_camera_not_enrolled_is_unsigned() -> None:
    r = _assess(camera=None)
    _has(r, Verdict.UNSIGNED, "camera cam1 is not enrolled")
    assert not r.commit


@pytest.mark.parametrize(
    ("observed", "fragment"),
    [
        (CameraProfile("hevc", 1920, 1080, 25.0), "expected codec h264, got hevc"),
        (CameraProfile("h264", 1280, 720, 25.0), "expected resolution 1920x1080, got 1280x720"),
        (CameraProfile("h264", 1920, 1080, 30.0), "expected 25 fps, got 30 fps"),
    ],
)
def test_profile_changed(observed: CameraProfile, fragment: str) -> None:
    _has(_assess(_facts(profile=observed)), Verdict.PROFILE_CHANGED, fragment)


def test_fps_within_one_percent_is_the_same_profile() -> None:
    r = _assess(_facts(profile=CameraProfile("h264", 1920, 1080, 25.2)))
    assert r.verdict is Verdict.AUTHENTIC


def test_unsigned_without_history_is_unsigned() -> None:
    r = _assess(_facts(signed=False, signature_ok=False))
    _has(r, Verdict.UNSIGNED, "source carries no signature")
    assert not r.commit


def test_unsigned_on_a_signing_required_camera() -> None:
    r = _assess(_facts(signed=False, signature_ok=False), camera=_camera(signing_required=True))
    _has(r, Verdict.UNSIGNED, "camera cam1 requires signing (signing_required)")


def test_unsigned_after_signed_is_a_downgrade() -> None:
    r = _assess(_facts(signed=False, signature_ok=False), prior=PriorState(signed_before=True))
    _has(r, Verdict.DOWNGRADE, "camera cam1 sent signed GOPs before, got an unsigned one")
    assert any("no signature" in x for x in r.reasons)


def test_bad_signature_is_not_authentic_and_does_not_commit() -> None:
    r = _assess(_facts(signature_ok=False))
    _has(r, Verdict.NOT_AUTHENTIC, "expected a valid GOP signature, got a bad one")
    assert not r.commit and r.window is None


def test_other_signing_key_is_key_changed() -> None:
    other = _leaf(SITE)
    r = _assess(_facts(signer_key_der=spki_of(other), certificate_chain=()))
    _has(r, Verdict.KEY_CHANGED, "expected signing key sha256:")
    assert not r.commit


def test_a_gop_no_signature_covers_is_not_authentic_not_a_key_change() -> None:
    # attack suite F2: a stripped SEI leaves the GOP without a key; blaming a rogue key would
    # send the operator after the wrong cause
    result = _assess(_facts(signer_key_der=None))
    _has(result, Verdict.NOT_AUTHENTIC, "no signature covers this GOP")
    assert not any("got no key" in r for r in result.reasons)
    assert result.commit is False


def test_reissued_leaf_with_the_same_key_is_key_changed() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    enrolled, reissued = _leaf(SITE, key=key), _leaf(SITE, key=key)
    cam = _camera(leaf_der=_der(enrolled), key_der=spki_of(enrolled))
    facts = _facts(signer_key_der=spki_of(reissued), certificate_chain=(_der(reissued),))
    _has(_assess(facts, camera=cam), Verdict.KEY_CHANGED, "expected the enrolled leaf certificate")


def test_chain_from_another_ca_is_not_authentic() -> None:
    rogue = _ca("rogue")
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _leaf(rogue, key=key)
    cam = _camera(leaf_der=_der(leaf), key_der=spki_of(leaf))
    facts = _facts(signer_key_der=spki_of(leaf), certificate_chain=(_der(leaf), _der(rogue[1])))
    r = _assess(facts, camera=cam)
    _has(r, Verdict.NOT_AUTHENTIC, "certificate chain: expected a chain to the site CA")
    assert not r.commit


def test_chain_expired_at_capture_time_is_not_authentic() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _leaf(SITE, key=key, not_after=NOW - timedelta(hours=1))
    cam = _camera(leaf_der=_der(leaf), key_der=spki_of(leaf))
    facts = _facts(signer_key_der=spki_of(leaf), certificate_chain=(_der(leaf),))
    _has(_assess(facts, camera=cam), Verdict.NOT_AUTHENTIC, "valid at 2026-11-30T11:59:58")


def test_chain_without_a_site_ca_is_not_authentic() -> None:
    _has(_assess(site=None), Verdict.NOT_AUTHENTIC, "expected a site CA to verify the chain")


def test_verify_chain_refuses_empty_and_garbage() -> None:
    with pytest.raises(ChainUntrusted, match="got none"):
        verify_chain((), SITE_DER, NOW)
    with pytest.raises(ChainUntrusted, match="expected DER certificates"):
        verify_chain((b"junk",), SITE_DER, NOW)
    verify_chain((_der(LEAF),), SITE_DER, NOW)  # returns None, raises nothing


@pytest.mark.parametrize(
    ("end_offset_s", "verdict", "fragment"),
    [
        (2.0, Verdict.AUTHENTIC, "fresh"),  # exactly at the skew: accepted
        (2.001, Verdict.STALE, "expected capture end at most 2 s after the receiver's clock"),
        (-30.0, Verdict.AUTHENTIC, "fresh"),  # exactly at the maximum delay: accepted
        (-30.001, Verdict.STALE, "expected capture end at most 30 s before"),
        (-3600.0, Verdict.STALE, "got 3600.000 s old"),
    ],
)
def test_time_window_edges(end_offset_s: float, verdict: Verdict, fragment: str) -> None:
    end = NOW + timedelta(seconds=end_offset_s)
    r = _assess(_facts(capture_start=end - timedelta(seconds=1), capture_end=end))
    _has(r, verdict, fragment)


def test_stale_genuine_gop_still_commits() -> None:
    end = NOW - timedelta(minutes=5)
    r = _assess(_facts(capture_start=end - timedelta(seconds=1), capture_end=end))
    assert r.verdict is Verdict.STALE and r.commit


def test_no_capture_time_is_stale() -> None:
    r = _assess(_facts(capture_start=None, capture_end=None))
    _has(r, Verdict.STALE, "expected a signed capture start and end time, got none")


def test_capture_start_after_end_is_not_authentic() -> None:
    r = _assess(_facts(capture_start=NOW, capture_end=NOW - timedelta(seconds=1)))
    _has(r, Verdict.NOT_AUTHENTIC, "expected capture start <= end")


def test_missing_counter_or_hash_is_not_authentic() -> None:
    _has(_assess(_facts(gop_counter=None)), Verdict.NOT_AUTHENTIC, "signed GOP counter, got none")
    _has(_assess(_facts(gop_hash=None)), Verdict.NOT_AUTHENTIC, "signed GOP hash, got none")


def _window(*counters: int, size: int = 64) -> ReplayWindow:
    w = ReplayWindow.first(counters[0], size)
    for c in counters[1:]:
        assert w.check(c) is None
        w = w.accept(c)
    return w


def test_counter_seen_again_within_the_window_is_replayed() -> None:
    prior = PriorState(window=_window(40, 41))
    r = _assess(_facts(gop_counter=41), prior=prior)
    _has(r, Verdict.REPLAYED, "expected a GOP counter not seen before within window 64")
    _has(r, Verdict.REPLAYED, "got 41 again")
    assert not r.commit


def test_counter_below_the_window_is_replayed_as_too_old() -> None:
    prior = PriorState(window=_window(100))
    r = _assess(_facts(gop_counter=36), prior=prior)
    _has(r, Verdict.REPLAYED, "expected GOP counter > 36 (highest 100, window 64), got 36")
    _has(r, Verdict.REPLAYED, "older than the window")


def test_oldest_counter_inside_the_window_is_accepted_once() -> None:
    prior = PriorState(window=_window(100))
    r = _assess(_facts(gop_counter=37), prior=prior)
    _has(r, Verdict.AUTHENTIC, "GOP counter 37 arrived late (highest 100)")
    assert r.window is not None
    _has(_assess(_facts(gop_counter=37), prior=PriorState(window=r.window)), Verdict.REPLAYED, "37")


def test_forward_jump_is_noted_not_refused() -> None:
    r = _assess(_facts(gop_counter=50), prior=PriorState(window=_window(41)))
    _has(r, Verdict.AUTHENTIC, "GOP counter jumped from 41 to 50 (8 GOP(s) not seen)")
    assert r.window == ReplayWindow(50, 1 | 1 << 9, 64)


def test_window_slides_and_forgets_beyond_its_size() -> None:
    w = _window(0, 1, 2, size=4).accept(10)
    assert w.mask == 1  # 0..2 slid out
    assert w.check(6) is not None and "older than the window" in w.check(6)[1]  # type: ignore[index]
    assert w.check(7) is None


def test_hash_seen_in_another_session_of_another_camera_is_replayed() -> None:
    prior = PriorState(hash_seen=HashSighting("cam9", "s0", 3, 17))
    r = _assess(prior=prior)
    _has(r, Verdict.REPLAYED, "got the hash of GOP 3 (counter 17) of camera cam9, session s0")
    assert not r.commit


def test_most_severe_wins_and_every_reason_stays() -> None:
    cam = _camera(revoked_at=NOW, revoked_reason="x")
    prior = PriorState(window=_window(42), hash_seen=HashSighting("cam1", "s1", 6, 42))
    r = _assess(_facts(profile=CameraProfile("hevc", 1920, 1080, 25.0)), camera=cam, prior=prior)
    assert r.verdict is Verdict.REVOKED
    assert "revoked" in r.reasons[0]
    joined = " | ".join(r.reasons)
    assert "got 42 again" in joined and "GOP hash" in joined and "codec" in joined


def test_naive_datetimes_and_bad_values_are_refused() -> None:
    with pytest.raises(FactsInvalid, match="capture_end: expected a timezone-aware datetime"):
        _facts(capture_end=datetime(2026, 1, 1))
    with pytest.raises(FactsInvalid, match="now: expected a timezone-aware datetime"):
        _assess(now=datetime(2026, 1, 1))
    with pytest.raises(FactsInvalid, match="gop_counter: expected >= 0, got -1"):
        _facts(gop_counter=-1)
    with pytest.raises(FactsInvalid, match="signature_ok: expected False for an unsigned GOP"):
        _facts(signed=False, signature_ok=True)
    with pytest.raises(FactsInvalid, match="camera: expected 'cam1', got 'cam2'"):
        _assess(camera=_camera(camera_id="cam2"))


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"window": 0}, "window: expected 1..4096 GOPs, got 0"),
        ({"max_skew_s": -1.0}, "expected max_skew_s >= 0 and max_delay_s > 0"),
        ({"max_delay_s": 0.0}, "expected max_skew_s >= 0 and max_delay_s > 0"),
    ],
)
def test_bad_policy_is_refused(kw: dict[str, float], fragment: str) -> None:
    with pytest.raises(FactsInvalid, match=fragment.replace("(", r"\(")):
        FreshnessPolicy(**kw)  # type: ignore[arg-type]


def test_bad_profile_is_refused() -> None:
    with pytest.raises(FactsInvalid, match="profile: expected a codec, positive WxH and fps"):
        CameraProfile("h264", 0, 1080, 25.0)
