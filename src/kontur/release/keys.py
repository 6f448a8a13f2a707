"""Key material for signing releases: ECDSA P-256 keys, a private CA and its signing certs.

model-signing accepts only NIST curves (Ed25519 is refused), so every key here is P-256.
Private keys are written unencrypted in PKCS#8 PEM with mode 0600; keep them off the
machines that run the perimeter. Certificate mode uses a private CA: :func:`make_ca`
writes a self-signed CA certificate, :func:`issue_signing_cert` a leaf certificate for
code signing issued by it (EKU codeSigning and kontur's release-signing EKU, so it passes
the default signer policy and the kontur-only one, ADR 0016). Verifiers take the CA
certificate(s) as trust roots.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kontur.release.errors import KeyMaterialError
from kontur.release.signer import KONTUR_RELEASE_SIGNING_EKU

__all__ = [
    "CA_CERT_NAME",
    "CERT_NAME",
    "PRIVATE_KEY_NAME",
    "PUBLIC_KEY_NAME",
    "KeyPair",
    "issue_signing_cert",
    "keygen",
    "load_certificates",
    "load_private_key",
    "load_public_key",
    "make_ca",
    "public_key_fingerprint",
]

PRIVATE_KEY_NAME = "release-signing.key"
PUBLIC_KEY_NAME = "release-signing.pub"
CA_KEY_NAME = "ca.key"
CA_CERT_NAME = "ca.pem"
CERT_NAME = "release-signing.pem"


@dataclass(frozen=True)
class KeyPair:
    """Where :func:`keygen` (and :func:`make_ca`) put the files."""

    private_key: Path
    public_key: Path
    #: Certificate mode only: the leaf signing certificate and the CA certificate.
    cert: Path | None = None
    ca_cert: Path | None = None


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _new_files(out_dir: Path, names: tuple[str, ...]) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyMaterialError(f"{out_dir}: expected a writable directory, got {exc}") from None
    taken = [n for n in names if (out_dir / n).exists()]
    if taken:
        raise KeyMaterialError(
            f"{out_dir}: expected no existing key files, got {', '.join(taken)} (not overwritten)"
        )


def keygen(out_dir: Path) -> KeyPair:
    """Write a new P-256 signing key: private PEM (0600) and public PEM; never overwrites."""
    pair = KeyPair(out_dir / PRIVATE_KEY_NAME, out_dir / PUBLIC_KEY_NAME)
    _new_files(out_dir, (PRIVATE_KEY_NAME, PUBLIC_KEY_NAME))
    key = ec.generate_private_key(ec.SECP256R1())
    _write_private(pair.private_key, key)
    pair.public_key.write_bytes(_public_pem(key.public_key()))
    return pair


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kontur"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
    )


def _usage(*, sign: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(out_dir: Path, *, common_name: str = "kontur release CA", days: int = 3650) -> KeyPair:
    """Write a self-signed P-256 CA: ``ca.key`` (0600) and ``ca.pem``."""
    _new_files(out_dir, (CA_KEY_NAME, CA_CERT_NAME))
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        _builder(name, name, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(sign=False, cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_private(out_dir / CA_KEY_NAME, key)
    (out_dir / CA_CERT_NAME).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return KeyPair(out_dir / CA_KEY_NAME, out_dir / CA_CERT_NAME, ca_cert=out_dir / CA_CERT_NAME)


def issue_signing_cert(
    ca: KeyPair, out_dir: Path, *, common_name: str = "kontur release signer", days: int = 365
) -> KeyPair:
    """Write a new P-256 key and a code-signing certificate for it issued by ``ca``."""
    if ca.ca_cert is None:
        raise KeyMaterialError(f"{ca.private_key}: expected a CA key pair, got a plain key")
    _new_files(out_dir, (PRIVATE_KEY_NAME, PUBLIC_KEY_NAME, CERT_NAME))
    ca_key = load_private_key(ca.private_key)
    ca_cert = x509.load_pem_x509_certificate(ca.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(_name(common_name), ca_cert.subject, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(sign=True, cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING, KONTUR_RELEASE_SIGNING_EKU]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pair = KeyPair(
        out_dir / PRIVATE_KEY_NAME, out_dir / PUBLIC_KEY_NAME, out_dir / CERT_NAME, ca.ca_cert
    )
    _write_private(pair.private_key, key)
    pair.public_key.write_bytes(_public_pem(key.public_key()))
    assert pair.cert is not None
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pair


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyMaterialError(
            f"{what} {path}: expected a readable file, got {exc.strerror}"
        ) from None


def _check_p256(key: object, what: str, path: Path) -> None:
    if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        raise KeyMaterialError(
            f"{what} {path}: expected an ECDSA P-256 key, got {type(key).__name__}"
        )
    if not isinstance(key.curve, ec.SECP256R1):
        raise KeyMaterialError(f"{what} {path}: expected curve secp256r1, got {key.curve.name}")


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """An unencrypted P-256 private key from PEM, or :class:`KeyMaterialError`."""
    try:
        key = serialization.load_pem_private_key(_read(path, "private key"), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(
            f"private key {path}: expected an unencrypted PEM key, got {exc}"
        ) from None
    _check_p256(key, "private key", path)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from PEM, or :class:`KeyMaterialError`."""
    try:
        key = serialization.load_pem_public_key(_read(path, "public key"))
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(f"public key {path}: expected a PEM public key, got {exc}") from None
    _check_p256(key, "public key", path)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def load_certificates(path: Path, what: str = "certificate") -> list[x509.Certificate]:
    """All PEM certificates in ``path`` (at least one), or :class:`KeyMaterialError`."""
    try:
        certs = x509.load_pem_x509_certificates(_read(path, what))
    except ValueError as exc:
        raise KeyMaterialError(f"{what} {path}: expected PEM certificates, got {exc}") from None
    return certs


def public_key_fingerprint(key: ec.EllipticCurvePublicKey) -> str:
    """``sha256:<hex>`` of the key's SubjectPublicKeyInfo DER."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()
