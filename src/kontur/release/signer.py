"""Who may sign a release in certificate mode: kontur's signer policy (ADR 0016).

model-signing checks only that the leaf chains to a given CA *at the leaf's own notBefore*
and that it may sign something (KeyUsage digitalSignature, or EKU codeSigning). That let an
ordinary TLS server certificate sign releases, and an expired leaf keep signing new ones.
:func:`check_signer` adds kontur's policy. It runs after the signature verified and the
manifest was parsed, so the signing time is the manifest's signed ``created``, and it takes
these steps, in this order, over the chain carried in ``release.sig`` (leaf first):

1. purpose: the leaf is an end entity (no ``BasicConstraints ca=true``); its
   ExtendedKeyUsage is present and names one of the policy's purposes (by default
   id-kp-codeSigning or :data:`KONTUR_RELEASE_SIGNING_EKU`); no EKU, serverAuth only, or
   anyExtendedKeyUsage alone is refused; a KeyUsage, when present, asserts digitalSignature;
2. time: the signing time is not ahead of the reference time (beyond ``max_clock_skew``),
   and the leaf is valid at the signing time *and* at the reference time. There is no
   timestamp authority: ``created`` is the signer's own claim, so a key whose certificate
   has expired could backdate it; an expired signer is therefore refused, never trusted
   for "old" releases;
3. chain: the chain verifies to one of the trust anchors at the signing time and at the
   reference time (:mod:`cryptography.x509.verification`, WebPKI CA profile for issuers).

The function is pure: it reads no clock and no disk; both times are passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

from kontur.release.errors import (
    KeyMaterialError,
    SignatureInvalid,
    SignerNotAllowed,
    SignerNotValid,
    UntrustedSigner,
)

__all__ = [
    "DEFAULT_PURPOSES",
    "KONTUR_RELEASE_SIGNING_EKU",
    "SignerPolicy",
    "check_signer",
]

#: kontur's own ExtendedKeyUsage for "may sign kontur model releases". A UUID-derived OID
#: under the ``2.25`` arc (ITU-T X.667), so it needs no registration and collides with nothing.
#: A site whose CA also issues other code-signing certificates can require this one only.
KONTUR_RELEASE_SIGNING_EKU = x509.ObjectIdentifier("2.25.187966806407136207005151213255890700478")
#: Purposes accepted by default: id-kp-codeSigning (RFC 5280 §4.2.1.12) or kontur's EKU.
DEFAULT_PURPOSES: frozenset[x509.ObjectIdentifier] = frozenset(
    {ExtendedKeyUsageOID.CODE_SIGNING, KONTUR_RELEASE_SIGNING_EKU}
)


@dataclass(frozen=True)
class SignerPolicy:
    """What a release-signing certificate must be, beyond chaining to a trust anchor."""

    #: The leaf's EKU must contain at least one of these; never empty.
    purposes: frozenset[x509.ObjectIdentifier] = field(default=DEFAULT_PURPOSES)
    #: How far the signed ``created`` may lie ahead of the reference time.
    max_clock_skew: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if not self.purposes:
            raise KeyMaterialError("signer policy: expected at least one EKU purpose, got none")
        if self.max_clock_skew < timedelta(0):
            raise KeyMaterialError(
                f"signer policy: expected a non-negative clock skew, got {self.max_clock_skew}"
            )

    @classmethod
    def kontur_only(cls) -> SignerPolicy:
        """Accept only leaves carrying :data:`KONTUR_RELEASE_SIGNING_EKU`."""
        return cls(purposes=frozenset({KONTUR_RELEASE_SIGNING_EKU}))


def _who(leaf: x509.Certificate) -> str:
    return f"signing certificate {leaf.subject.rfc4514_string() or '(empty subject)'}"


def _camel(snake: str) -> str:
    head, *rest = snake.lower().split("_")
    return head + "".join(w.capitalize() for w in rest)


#: Readable names of the EKU OIDs that cryptography knows (``serverAuth``, ``codeSigning``…).
_EKU_NAMES: dict[x509.ObjectIdentifier, str] = {
    value: _camel(attr)
    for attr, value in vars(ExtendedKeyUsageOID).items()
    if isinstance(value, x509.ObjectIdentifier)
} | {KONTUR_RELEASE_SIGNING_EKU: "kontur-release-signing"}


def _oid_name(oid: x509.ObjectIdentifier) -> str:
    return _EKU_NAMES.get(oid, oid.dotted_string)


def _check_purpose(leaf: x509.Certificate, policy: SignerPolicy) -> None:
    """Step 1: an end entity whose EKU names one of the policy's purposes."""
    exts = leaf.extensions
    try:
        if exts.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise SignerNotAllowed(f"{_who(leaf)}: expected an end-entity certificate, got a CA")
    except x509.ExtensionNotFound:
        pass
    try:
        if not exts.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            raise SignerNotAllowed(
                f"{_who(leaf)}: expected KeyUsage digitalSignature, got a KeyUsage without it"
            )
    except x509.ExtensionNotFound:
        pass
    want = ", ".join(sorted(_oid_name(o) for o in policy.purposes))
    try:
        eku = exts.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise SignerNotAllowed(
            f"{_who(leaf)}: expected an ExtendedKeyUsage with {want}, got no ExtendedKeyUsage"
        ) from None
    if not policy.purposes.intersection(eku):
        got = ", ".join(sorted(_oid_name(o) for o in eku)) or "none"
        raise SignerNotAllowed(f"{_who(leaf)}: expected ExtendedKeyUsage {want}, got {got}")


def _check_times(
    leaf: x509.Certificate, policy: SignerPolicy, signed_at: datetime, now: datetime
) -> None:
    """Step 2: signed no later than now; the leaf valid at the signing time and now."""
    if signed_at > now + policy.max_clock_skew:
        raise SignerNotValid(
            f"{_who(leaf)}: expected a signing time no later than {now.isoformat()}, "
            f"got {signed_at.isoformat()} (in the future)"
        )
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    window = f"valid {start.isoformat()} to {end.isoformat()}"
    for label, at in (("at the signing time", signed_at), ("now", now)):
        if not start <= at <= end:
            raise SignerNotValid(
                f"{_who(leaf)}: expected valid {label} {at.isoformat()}, got {window}"
            )


def _check_chain(
    certs: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate], at: datetime
) -> None:
    """Step 3: ``certs`` (leaf first) verifies to one of ``anchors`` at ``at``."""
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(list(anchors)))
        .time(at)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            # Purpose and validity of the leaf are step 1 and 2; WebPKI's end-entity profile
            # would also demand a SAN, which a signing certificate has no use for.
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(certs[0], list(certs[1:]))
    except verification.VerificationError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "no reason"
        raise UntrustedSigner(
            f"{_who(certs[0])}: expected a chain to a given CA valid at {at.isoformat()}, "
            f"got {first}"
        ) from None


def check_signer(
    chain_der: Sequence[bytes],
    anchors: Sequence[x509.Certificate],
    policy: SignerPolicy,
    *,
    signed_at: datetime,
    now: datetime,
) -> None:
    """Apply the signer policy (module docstring, steps 1-3); raise on the first failure."""
    if not chain_der:
        raise SignatureInvalid("release.sig: expected a certificate chain, got none")
    if not anchors:
        raise KeyMaterialError("trust: expected at least one CA certificate, got none")
    try:
        certs = [x509.load_der_x509_certificate(der) for der in chain_der]
    except ValueError as exc:
        raise SignatureInvalid(f"release.sig: expected DER certificates, got {exc}") from None
    _check_purpose(certs[0], policy)
    _check_times(certs[0], policy, signed_at, now)
    for at in (signed_at, now):
        _check_chain(certs, anchors, at)
