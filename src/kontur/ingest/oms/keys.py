"""Camera signing identities for ONVIF Media Signing: a private key plus its certificate chain.

Pure functions over bytes (no clock, no disk): :func:`load_signing_identity` turns a PEM
private key and a PEM certificate chain into a :class:`SigningIdentity` the signer uses;
:func:`make_ca` / :func:`make_camera_certificate` create a test or site CA and a camera leaf
certificate (ECDSA P-256) with explicit validity times.

The chain is handled exactly like the reference ``onvif_media_signing_set_signing_key_pair``:
the PEM text must hold at least two certificates; the last one is the trust anchor and is
stripped, and the bytes *before* its ``-----BEGIN CERTIFICATE-----`` line are embedded verbatim
in the certificates TLV of the SEIs. Every certificate must be issued by the next one.

Errors: the ``OmsSigningError`` branch of :mod:`kontur.ingest.oms.errors`, re-exported here.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID

from kontur.ingest.oms.errors import (
    OmsSigningError,
    SignedOutputError,
    SignerInputError,
    SigningKeyError,
)

__all__ = [
    "KeyType",
    "OmsSigningError",
    "SignedOutputError",
    "SignerInputError",
    "SigningIdentity",
    "SigningKeyError",
    "chain_pem",
    "load_signing_identity",
    "make_ca",
    "make_camera_certificate",
    "private_key_pem",
]

_BEGIN = b"-----BEGIN CERTIFICATE-----"
#: Smallest RSA modulus accepted (bits).
MIN_RSA_BITS = 2048


class KeyType(enum.Enum):
    """Signing key families the signer supports."""

    ECDSA_P256 = "ecdsa-p256"
    RSA = "rsa"


SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class SigningIdentity:
    """A camera's signing key and the chain embedded in its SEIs.

    ``embedded_chain`` is the PEM text of the leaf (and any intermediates) exactly as it goes
    into the certificates TLV; ``anchor`` is the stripped trust anchor.
    """

    private_key: SigningKey
    key_type: KeyType
    embedded_chain: bytes
    certificates: tuple[x509.Certificate, ...]
    anchor: x509.Certificate

    @property
    def max_signature_size(self) -> int:
        """Bytes reserved for a signature (OpenSSL ``EVP_PKEY_size``): 72 for P-256."""
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return (self.private_key.key_size + 7) // 8
        return 72

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a SHA-256 ``digest`` like the reference (ECDSA DER / RSA-PSS, max salt)."""
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.MAX_LENGTH)
            return self.private_key.sign(digest, pss, Prehashed(hashes.SHA256()))
        return self.private_key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def load_signing_identity(
    key_pem: bytes,
    chain: bytes,
    password: bytes | None = None,
    valid_at: dt.datetime | None = None,
) -> SigningIdentity:
    """Build a :class:`SigningIdentity` from a PEM private key and a PEM chain (leaf first).

    Raises :class:`SigningKeyError` when the key does not parse or is not ECDSA P-256 / RSA
    (>= 2048 bits), when the chain has fewer than two certificates, when a certificate is not
    issued by the next one, when the key does not match the leaf certificate, or (with
    ``valid_at``, as the reference checks the chain when the key is set) when a certificate
    is outside its validity period at that time.
    """
    key, key_type = _checked_key(_load_key(key_pem, password))
    embedded, certs, anchor = _split_chain(chain)
    _check_issuance((*certs, anchor))
    _check_key_matches_leaf(key, certs[0])
    if valid_at is not None:
        _check_validity((*certs, anchor), valid_at)
    return SigningIdentity(key, key_type, embedded, certs, anchor)


def _check_validity(certs: tuple[x509.Certificate, ...], when: dt.datetime) -> None:
    for index, cert in enumerate(certs):
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        if not start <= when <= end:
            raise SigningKeyError(
                f"expected certificate {index} ({cert.subject.rfc4514_string()}) to be valid "
                f"at {when.isoformat()}, it is valid {start.isoformat()} .. {end.isoformat()}"
            )


def _load_key(key_pem: bytes, password: bytes | None) -> object:
    try:
        return serialization.load_pem_private_key(key_pem, password=password)
    except TypeError as exc:
        raise SigningKeyError(f"expected an unencrypted PEM private key, got: {exc}") from None
    except ValueError as exc:
        raise SigningKeyError(f"expected a PEM private key, got unreadable data ({exc})") from None
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for odd keys
        raise SigningKeyError(f"expected a PEM private key, got {exc}") from None


def _checked_key(key: object) -> tuple[SigningKey, KeyType]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise SigningKeyError(
                f"expected an ECDSA P-256 or RSA key, got EC curve {key.curve.name}"
            )
        return key, KeyType.ECDSA_P256
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise SigningKeyError(
                f"expected an RSA key of at least {MIN_RSA_BITS} bits, got {key.key_size}"
            )
        return key, KeyType.RSA
    raise SigningKeyError(f"expected an ECDSA P-256 or RSA key, got {type(key).__name__}")


def _split_chain(chain: bytes) -> tuple[bytes, tuple[x509.Certificate, ...], x509.Certificate]:
    starts = []
    pos = chain.find(_BEGIN)
    while pos >= 0:
        starts.append(pos)
        pos = chain.find(_BEGIN, pos + 1)
    if len(starts) < 2:
        raise SigningKeyError(
            "expected a certificate chain of at least 2 PEM certificates "
            f"(leaf ... trust anchor), got {len(starts)}"
        )
    try:
        certs = tuple(x509.load_pem_x509_certificates(chain))
    except ValueError as exc:
        raise SigningKeyError(f"expected PEM certificates in the chain, got: {exc}") from None
    if len(certs) != len(starts):
        raise SigningKeyError(
            f"expected {len(starts)} parseable certificates in the chain, got {len(certs)}"
        )
    return chain[: starts[-1]], certs[:-1], certs[-1]


def _check_issuance(certs: tuple[x509.Certificate, ...]) -> None:
    for index, (child, parent) in enumerate(itertools.pairwise(certs)):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise SigningKeyError(
                f"expected certificate {index} ({child.subject.rfc4514_string()}) of the chain "
                f"to be issued by certificate {index + 1} ({parent.subject.rfc4514_string()}), "
                "it is not"
            ) from None


def _check_key_matches_leaf(key: SigningKey, leaf: x509.Certificate) -> None:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if key.public_key().public_bytes(enc, fmt) != leaf.public_key().public_bytes(enc, fmt):
        raise SigningKeyError(
            "expected the private key to match the leaf certificate "
            f"({leaf.subject.rfc4514_string()}), it does not"
        )


def make_ca(
    common_name: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    path_length: int | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Create a self-signed ECDSA P-256 CA (test or site CA) valid between the given times.

    ``path_length`` 0: a CA that issues leaves only (the site CA), no intermediates.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        _builder(name, name, key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_camera_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    key: SigningKey | None = None,
) -> tuple[SigningKey, x509.Certificate]:
    """Create a camera signing key (ECDSA P-256 unless ``key`` is given, e.g. RSA) and its
    leaf certificate issued by the CA."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        _builder(name, ca_cert.subject, key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def chain_pem(*certificates: x509.Certificate) -> bytes:
    """PEM text of ``certificates`` in the given order (leaf first, trust anchor last)."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def private_key_pem(key: SigningKey) -> bytes:
    """Unencrypted PKCS#8 PEM of ``key``."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
