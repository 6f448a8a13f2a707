"""Freshness, replay, key, revocation and profile verdicts on top of signature checks (ADR 0013).

A pure core: :func:`assess` is fed what the Media Signing validator established about one GOP
(:class:`SignedGopFacts`), the camera's inventory entry (:class:`EnrolledCamera`), the prior
state the shell looked up (:class:`PriorState`), the :class:`FreshnessPolicy`, the site CA
certificate and the receiver's trusted time. It reads no clock, disk or network; the shell in
:mod:`kontur.ingest.inventory` (:class:`~kontur.ingest.inventory.FreshnessGuard`) does.

Checks, in order; every finding stays in the reasons and the most severe is the verdict
(:func:`kontur.ingest.verdict.most_severe`):

1. revocation: a revoked camera → REVOKED (every GOP after the revocation is committed); a
   revocation the archive records overrides an inventory that lost it (ADR 0021);
2. enrolment: a camera absent from the inventory → UNSIGNED (nothing to verify against);
3. profile: codec, resolution, frame rate against the enrolled profile → PROFILE_CHANGED;
4. unsigned GOPs: after signed GOPs of the same camera → DOWNGRADE; otherwise → UNSIGNED
   (with ``signing_required`` the reason says so); steps 5-9 are skipped; a GOP of a signed
   stream that no SEI covers (no signer key) → NOT_AUTHENTIC, steps 5-9 skipped;
5. signature: the validator's ``signature_ok`` false → NOT_AUTHENTIC;
6. key: signing key ≠ enrolled key, or a leaf certificate ≠ the enrolled one → KEY_CHANGED;
   a chain that does not root in the site CA at capture time → NOT_AUTHENTIC;
7. time: capture end later than ``now + max_skew_s`` or earlier than ``now - max_delay_s``,
   or no signed capture time → STALE;
8. counter: per session, an SRTP-style sliding window (RFC 3711 §3.3.2) → REPLAYED for a
   counter already seen or older than the window; a forward jump is only noted;
9. GOP hash: seen before in any session of any camera → REPLAYED.

Only a GOP whose signature, key and chain check out moves the state on
(:attr:`FreshnessResult.commit`): a forged GOP must not be able to poison the replay state.

Errors::

    IngestError
    └── FreshnessError              freshness layer
        ├── FactsInvalid            facts the core cannot use (naive datetime, bad counter)
        └── ChainUntrusted          a certificate chain that does not verify to the site CA
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import verification

from kontur.ingest.errors import IngestError
from kontur.ingest.verdict import GopVerdict, Verdict, most_severe

__all__ = [
    "CameraProfile",
    "ChainUntrusted",
    "EnrolledCamera",
    "FactsInvalid",
    "FreshnessError",
    "FreshnessPolicy",
    "FreshnessResult",
    "HashSighting",
    "PriorState",
    "ReplayWindow",
    "SignedGopFacts",
    "assess",
    "fingerprint",
    "spki_of",
    "verify_chain",
]

#: Relative frame-rate tolerance, as in :mod:`kontur.ingest.checks`.
FPS_TOLERANCE = 0.01


class FreshnessError(IngestError):
    """Root of the freshness layer's errors."""


class FactsInvalid(FreshnessError):
    """Facts the core cannot use (a caller bug surfaced as a typed error)."""


class ChainUntrusted(FreshnessError):
    """A certificate chain that does not verify to the site CA."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class CameraProfile:
    """A stream profile: codec, resolution and frame rate."""

    codec: str
    width: int
    height: int
    fps: float

    def __post_init__(self) -> None:
        if not self.codec or self.width <= 0 or self.height <= 0 or not self.fps > 0:
            raise FactsInvalid(
                f"profile: expected a codec, positive WxH and fps, got "
                f"{self.codec!r},{self.width}x{self.height},{self.fps}"
            )

    def __str__(self) -> str:
        return f"{self.codec},{self.width}x{self.height},{self.fps:g}"


@dataclass(frozen=True, slots=True)
class SignedGopFacts:
    """What the signature validator established about one closed GOP (the core's input).

    ``session_id`` names one signing session of the camera: the coordinator derives it (e.g.
    from the signing key and the first GOP counter seen). Counters are compared only within
    a session; GOP hashes across all sessions of all cameras. Datetimes must be timezone-aware.
    """

    camera_id: str
    session_id: str
    gop_index: int
    signed: bool
    signature_ok: bool
    gop_counter: int | None = None
    gop_hash: bytes | None = None
    capture_start: datetime | None = None
    capture_end: datetime | None = None
    signer_key_der: bytes | None = None
    certificate_chain: tuple[bytes, ...] = ()
    profile: CameraProfile | None = None

    def __post_init__(self) -> None:
        for name in ("capture_start", "capture_end"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise FactsInvalid(f"{name}: expected a timezone-aware datetime, got {value}")
        if self.gop_counter is not None and self.gop_counter < 0:
            raise FactsInvalid(f"gop_counter: expected >= 0, got {self.gop_counter}")
        if self.signature_ok and not self.signed:
            raise FactsInvalid("signature_ok: expected False for an unsigned GOP, got True")


@dataclass(frozen=True, slots=True)
class EnrolledCamera:
    """A camera's inventory entry, as the core needs it."""

    camera_id: str
    subject: str
    leaf_der: bytes
    key_der: bytes
    profile: CameraProfile | None
    signing_required: bool
    critical: bool
    enrolled_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: str | None = None

    @property
    def key_fingerprint(self) -> str:
        """SHA-256 of the enrolled SubjectPublicKeyInfo, hex."""
        return fingerprint(self.key_der)


@dataclass(frozen=True, slots=True)
class FreshnessPolicy:
    """The freshness bounds: replay window size (GOPs), clock skew and maximum delay (s)."""

    window: int = 64
    max_skew_s: float = 2.0
    max_delay_s: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.window <= 4096:
            raise FactsInvalid(f"window: expected 1..4096 GOPs, got {self.window}")
        if not (self.max_skew_s >= 0 and self.max_delay_s > 0):
            raise FactsInvalid(
                f"expected max_skew_s >= 0 and max_delay_s > 0, "
                f"got {self.max_skew_s} and {self.max_delay_s}"
            )


@dataclass(frozen=True, slots=True)
class ReplayWindow:
    """SRTP-style replay window of one session (RFC 3711 §3.3.2).

    ``highest`` is the highest counter accepted; bit ``i`` of ``mask`` is set when counter
    ``highest - i`` was accepted (bit 0 is ``highest`` itself). ``size`` bits are kept.
    """

    highest: int
    mask: int
    size: int

    @classmethod
    def first(cls, counter: int, size: int) -> ReplayWindow:
        """The window after the session's first accepted counter."""
        return cls(highest=counter, mask=1, size=size)

    def check(self, counter: int) -> tuple[Verdict, str] | None:
        """A REPLAYED finding for ``counter``, or None when the window accepts it."""
        low = self.highest - self.size  # counters <= low are outside the window
        if counter <= low:
            return (
                Verdict.REPLAYED,
                f"expected GOP counter > {low} (highest {self.highest}, window {self.size}), "
                f"got {counter}: older than the window",
            )
        if counter <= self.highest and self.mask >> (self.highest - counter) & 1:
            return (
                Verdict.REPLAYED,
                f"expected a GOP counter not seen before within window {self.size} "
                f"(highest {self.highest}), got {counter} again",
            )
        return None

    def accept(self, counter: int) -> ReplayWindow:
        """The window after accepting ``counter`` (which :meth:`check` passed)."""
        full = (1 << self.size) - 1
        if counter > self.highest:
            shifted = (self.mask << (counter - self.highest)) | 1
            return ReplayWindow(counter, shifted & full, self.size)
        return ReplayWindow(self.highest, self.mask | 1 << (self.highest - counter), self.size)


@dataclass(frozen=True, slots=True)
class HashSighting:
    """Where a GOP hash was first accepted."""

    camera_id: str
    session_id: str
    gop_index: int
    gop_counter: int | None


@dataclass(frozen=True, slots=True)
class PriorState:
    """What the shell looked up for one GOP: the session's window, the hash, signed history."""

    window: ReplayWindow | None = None
    hash_seen: HashSighting | None = None
    signed_before: bool = False


@dataclass(frozen=True, slots=True)
class FreshnessResult:
    """The decision for one GOP, and what the shell must persist when ``commit`` is set."""

    camera_id: str
    session_id: str
    gop_index: int
    verdict: Verdict
    reasons: tuple[str, ...]
    commit: bool
    window: ReplayWindow | None = None
    gop_counter: int | None = None
    gop_hash: bytes | None = field(default=None, repr=False)

    def to_gop_verdict(self) -> GopVerdict:
        """The archive/gate form (:class:`kontur.ingest.verdict.GopVerdict`)."""
        return GopVerdict(
            camera_id=self.camera_id,
            gop_index=self.gop_index,
            verdict=self.verdict,
            reasons=self.reasons,
        )

    def seen_payload(self) -> dict[str, object]:
        """Payload of the ``gop_seen`` archive record that makes the state rebuildable."""
        return {
            "camera_id": self.camera_id,
            "session_id": self.session_id,
            "gop_index": self.gop_index,
            "gop_counter": self.gop_counter,
            "gop_hash": self.gop_hash.hex() if self.gop_hash is not None else None,
            "verdict": self.verdict.value,
            "commit": self.commit,
        }


def fingerprint(der: bytes) -> str:
    """SHA-256 of DER bytes (a key or a certificate), hex."""
    return hashlib.sha256(der).hexdigest()


def spki_of(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectPublicKeyInfo, DER."""
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def verify_chain(chain: tuple[bytes, ...], site_ca_der: bytes, at: datetime) -> None:
    """Verify ``chain`` (DER, leaf first) to the site CA at time ``at``; raise ChainUntrusted.

    Uses :mod:`cryptography.x509.verification` with the WebPKI CA profile for issuers and a
    permissive end-entity profile (camera leaves carry no SAN or EKU that WebPKI would want).
    """
    if not chain:
        raise ChainUntrusted("expected a certificate chain (leaf first), got none")
    try:
        certs = [x509.load_der_x509_certificate(der) for der in chain]
        root = x509.load_der_x509_certificate(site_ca_der)
    except ValueError as exc:
        raise ChainUntrusted(f"expected DER certificates, got {_one_line(exc)}") from None
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([root]))
        .time(at)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(certs[0], certs[1:])
    except verification.VerificationError as exc:
        raise ChainUntrusted(
            f"expected a chain to the site CA valid at {at.isoformat()}, got {_one_line(exc)}"
        ) from None


def assess(
    facts: SignedGopFacts,
    camera: EnrolledCamera | None,
    prior: PriorState,
    policy: FreshnessPolicy,
    site_ca_der: bytes | None,
    now: datetime,
    archive_revocation: str | None = None,
) -> FreshnessResult:
    """The freshness verdict of one GOP (see the module docstring for the checks).

    ``archive_revocation``: a revocation the archive records and the inventory entry does
    not show (its description, ADR 0021); the GOP is REVOKED, enrolled or not.
    """
    if now.utcoffset() is None:
        raise FactsInvalid(f"now: expected a timezone-aware datetime, got {now}")
    findings: list[tuple[Verdict, str]] = []
    if camera is not None and camera.camera_id != facts.camera_id:
        raise FactsInvalid(f"camera: expected {facts.camera_id!r}, got {camera.camera_id!r}")
    if archive_revocation is not None:
        findings.append((Verdict.REVOKED, archive_revocation))
    elif camera is not None and camera.revoked_at is not None:
        findings.append(
            (
                Verdict.REVOKED,
                f"camera {camera.camera_id} was revoked at {camera.revoked_at.isoformat()}: "
                f"{camera.revoked_reason}",
            )
        )
    if camera is not None and camera.profile is not None and facts.profile is not None:
        findings += _profile_findings(camera.profile, facts.profile)
    if not facts.signed:
        findings += _unsigned_findings(facts, camera, prior)
        return _result(facts, findings, commit=False)
    if camera is None:
        findings.append(
            (
                Verdict.UNSIGNED,
                f"camera {facts.camera_id} is not enrolled: its signature has nothing to verify "
                "against (kontur camera enroll)",
            )
        )
        return _result(facts, findings, commit=False)
    if facts.signer_key_der is None:
        # the validator found this GOP covered by no SEI (stripped, lost): there is no key,
        # time or counter to check, and no reason to blame a key change
        findings.append(
            (
                Verdict.NOT_AUTHENTIC,
                "no signature covers this GOP (its SEI is missing): key, capture time and "
                "counter cannot be checked",
            )
        )
        return _result(facts, findings, commit=False)
    trusted = _signer_findings(facts, camera, site_ca_der, findings)
    findings += _time_findings(facts, policy, now)
    window = _counter_findings(facts, prior, policy, findings)
    if prior.hash_seen is not None:
        s = prior.hash_seen
        findings.append(
            (
                Verdict.REPLAYED,
                f"expected a GOP hash not seen before, got the hash of GOP {s.gop_index} "
                f"(counter {s.gop_counter}) of camera {s.camera_id}, session {s.session_id}",
            )
        )
    return _result(facts, findings, commit=trusted, window=window if trusted else None)


def _profile_findings(want: CameraProfile, got: CameraProfile) -> list[tuple[Verdict, str]]:
    out: list[tuple[Verdict, str]] = []
    if got.codec != want.codec:
        out.append((Verdict.PROFILE_CHANGED, f"expected codec {want.codec}, got {got.codec}"))
    if (got.width, got.height) != (want.width, want.height):
        out.append(
            (
                Verdict.PROFILE_CHANGED,
                f"expected resolution {want.width}x{want.height}, got {got.width}x{got.height}",
            )
        )
    if abs(got.fps - want.fps) > FPS_TOLERANCE * want.fps:
        out.append((Verdict.PROFILE_CHANGED, f"expected {want.fps:g} fps, got {got.fps:g} fps"))
    return out


def _unsigned_findings(
    facts: SignedGopFacts, camera: EnrolledCamera | None, prior: PriorState
) -> list[tuple[Verdict, str]]:
    out: list[tuple[Verdict, str]] = []
    if prior.signed_before:
        out.append(
            (
                Verdict.DOWNGRADE,
                f"expected a signed GOP: camera {facts.camera_id} sent signed GOPs before, "
                "got an unsigned one",
            )
        )
    if camera is not None and camera.signing_required:
        out.append(
            (
                Verdict.UNSIGNED,
                f"camera {facts.camera_id} requires signing (signing_required), "
                "got an unsigned GOP",
            )
        )
    else:
        out.append((Verdict.UNSIGNED, "source carries no signature (no Media Signing SEI)"))
    return out


def _signer_findings(
    facts: SignedGopFacts,
    camera: EnrolledCamera,
    site_ca_der: bytes | None,
    findings: list[tuple[Verdict, str]],
) -> bool:
    """Signature, key and chain findings; True when all three check out."""
    ok = True
    if not facts.signature_ok:
        findings.append((Verdict.NOT_AUTHENTIC, "expected a valid GOP signature, got a bad one"))
        ok = False
    if facts.signer_key_der != camera.key_der:
        key = facts.signer_key_der
        got = f"sha256:{fingerprint(key)[:16]}" if key else "no key"
        findings.append(
            (
                Verdict.KEY_CHANGED,
                f"expected signing key sha256:{camera.key_fingerprint[:16]}, got {got}",
            )
        )
        ok = False
    if facts.gop_hash is None:
        findings.append((Verdict.NOT_AUTHENTIC, "expected a signed GOP hash, got none"))
        ok = False
    if facts.certificate_chain:
        ok = _chain_findings(facts, camera, site_ca_der, findings) and ok
    return ok


def _chain_findings(
    facts: SignedGopFacts,
    camera: EnrolledCamera,
    site_ca_der: bytes | None,
    findings: list[tuple[Verdict, str]],
) -> bool:
    leaf = facts.certificate_chain[0]
    ok = True
    if leaf != camera.leaf_der:
        findings.append(
            (
                Verdict.KEY_CHANGED,
                f"expected the enrolled leaf certificate sha256:{fingerprint(camera.leaf_der)[:16]}"
                f", got sha256:{fingerprint(leaf)[:16]}",
            )
        )
        ok = False
    if site_ca_der is None:
        findings.append((Verdict.NOT_AUTHENTIC, "expected a site CA to verify the chain, got none"))
        return False
    at = facts.capture_start or facts.capture_end
    if at is None:
        return ok  # the time check reports the missing capture time
    try:
        verify_chain(facts.certificate_chain, site_ca_der, at)
    except ChainUntrusted as exc:
        findings.append((Verdict.NOT_AUTHENTIC, f"certificate chain: {exc}"))
        ok = False
    return ok


def _time_findings(
    facts: SignedGopFacts, policy: FreshnessPolicy, now: datetime
) -> list[tuple[Verdict, str]]:
    start, end = facts.capture_start, facts.capture_end
    if start is None or end is None:
        return [(Verdict.STALE, "expected a signed capture start and end time, got none")]
    if start > end:
        return [
            (
                Verdict.NOT_AUTHENTIC,
                f"expected capture start <= end, got {start.isoformat()} > {end.isoformat()}",
            )
        ]
    out: list[tuple[Verdict, str]] = []
    ahead = (end - now).total_seconds()
    if ahead > policy.max_skew_s:
        out.append(
            (
                Verdict.STALE,
                f"expected capture end at most {policy.max_skew_s:g} s after the receiver's "
                f"clock, got {ahead:.3f} s in the future",
            )
        )
    age = (now - end).total_seconds()
    if age > policy.max_delay_s:
        out.append(
            (
                Verdict.STALE,
                f"expected capture end at most {policy.max_delay_s:g} s before the receiver's "
                f"clock, got {age:.3f} s old",
            )
        )
    return out


def _counter_findings(
    facts: SignedGopFacts,
    prior: PriorState,
    policy: FreshnessPolicy,
    findings: list[tuple[Verdict, str]],
) -> ReplayWindow | None:
    """Replay-window findings; returns the window after accepting the counter (or None)."""
    counter = facts.gop_counter
    if counter is None:
        findings.append((Verdict.NOT_AUTHENTIC, "expected a signed GOP counter, got none"))
        return None
    win = prior.window
    if win is None:
        return ReplayWindow.first(counter, policy.window)
    if win.size != policy.window:  # policy changed since the state was written
        win = ReplayWindow(win.highest, win.mask & ((1 << policy.window) - 1), policy.window)
    replayed = win.check(counter)
    if replayed is not None:
        findings.append(replayed)
        return win
    if counter > win.highest + 1:
        findings.append(
            (
                Verdict.AUTHENTIC,
                f"GOP counter jumped from {win.highest} to {counter} "
                f"({counter - win.highest - 1} GOP(s) not seen)",
            )
        )
    elif counter < win.highest:
        findings.append(
            (
                Verdict.AUTHENTIC,
                f"GOP counter {counter} arrived late (highest {win.highest}), first time seen",
            )
        )
    return win.accept(counter)


def _result(
    facts: SignedGopFacts,
    findings: list[tuple[Verdict, str]],
    *,
    commit: bool,
    window: ReplayWindow | None = None,
) -> FreshnessResult:
    if not findings or all(v is Verdict.AUTHENTIC for v, _ in findings):
        findings.append(
            (Verdict.AUTHENTIC, "fresh: key, chain, capture time, counter and hash check out")
        )
    verdict = most_severe([v for v, _ in findings])
    ordered = sorted(findings, key=lambda f: f[0] is not verdict)
    replay_free = verdict is not Verdict.REPLAYED
    return FreshnessResult(
        camera_id=facts.camera_id,
        session_id=facts.session_id,
        gop_index=facts.gop_index,
        verdict=verdict,
        reasons=tuple(r for _, r in ordered),
        commit=commit and replay_free,
        window=window if commit and replay_free else None,
        gop_counter=facts.gop_counter,
        gop_hash=facts.gop_hash,
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
