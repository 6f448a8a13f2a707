"""RTSPS trust: how kontur verifies a camera's TLS certificate and presents its own (ADR 0037).

A camera's :class:`RtspsTrust` comes from the inventory (``kontur camera enroll --tls-pin``,
``--tls-client``) and says how the camera's *server* certificate is checked:

- ``server_sha256`` set (a pin): the leaf certificate's SHA-256 must equal it. The chain is
  not looked at: this is for cameras with a self-signed or vendor certificate.
- otherwise the chain must verify to the site CA (``ca_der``) and name the URL's host (a
  subjectAltName IP address or DNS name, the usual RFC 6125 check).

and, where the camera demands one, which client certificate and key kontur presents
(issued by the site CA for client authentication, files 0600 in the data dir).

:func:`connect_tls` opens the TCP connection, does the handshake and checks the pin; it
raises :class:`TlsRefused` with one line saying what was expected and what was found. The
key is only ever a path handed to :mod:`ssl`: its bytes are never held, logged or shown.

Errors (leaves of ``SourceError``)::

    SourceError
    ├── TlsRefused             the camera's certificate does not verify, or the camera
    │                          refuses kontur's (missing or wrong client certificate)
    ├── TlsNotConfigured       an rtsps:// source with nothing to verify the camera against
    └── EncryptionRequired     a plain source where the camera must be encrypted
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kontur.ingest.errors import SourceError

__all__ = [
    "EncryptionRequired",
    "RtspsTrust",
    "TlsNotConfigured",
    "TlsRefused",
    "connect_tls",
    "issue_client_certificate",
    "leaf_sha256",
    "parse_sha256",
    "parse_sha256_or_none",
]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class TlsRefused(SourceError):
    """The camera's certificate did not verify, or the camera refused kontur's."""


class TlsNotConfigured(SourceError):
    """An ``rtsps://`` source with neither a site CA nor a pinned fingerprint to check."""


class EncryptionRequired(SourceError):
    """A plain ``rtsp://`` (or other unencrypted) source for a camera that must be encrypted."""


def parse_sha256(text: str) -> str:
    """A SHA-256 fingerprint as 64 lowercase hex digits, from ``sha256:HEX``, ``HEX`` or
    ``AA:BB:…``; ValueError with a one-line reason otherwise."""
    body = text.strip().lower().removeprefix("sha256:").replace(":", "")
    if not _HEX64.fullmatch(body):
        raise ValueError(
            f"expected a SHA-256 fingerprint (sha256: and 64 hex digits), got {text[:80]!r}"
        )
    return body


def parse_sha256_or_none(text: str) -> str | None:
    """:func:`parse_sha256`, or None where it would raise."""
    try:
        return parse_sha256(text)
    except ValueError:
        return None


def leaf_sha256(der: bytes) -> str:
    """The SHA-256 of a certificate's DER encoding, lowercase hex."""
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True, slots=True)
class RtspsTrust:
    """How one camera's TLS peer is verified, and the client certificate kontur presents.

    At least one of ``ca_der`` and ``server_sha256`` is set (a pin wins: see the module).
    ``client_cert`` and ``client_key`` are paths, set together or not at all.
    """

    ca_der: bytes | None = None
    server_sha256: str | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    def __post_init__(self) -> None:
        if self.ca_der is None and self.server_sha256 is None:
            raise TlsNotConfigured(
                "rtsps trust: expected a site CA or a pinned server fingerprint, got neither"
            )
        if self.server_sha256 is not None and parse_sha256_or_none(self.server_sha256) is None:
            raise TlsNotConfigured(
                f"rtsps trust: expected a pinned SHA-256 of 64 hex digits, got "
                f"{self.server_sha256[:80]!r}"
            )
        if (self.client_cert is None) != (self.client_key is None):
            raise TlsNotConfigured(
                "rtsps trust: expected a client certificate and its key together, got one"
            )

    def __repr__(self) -> str:
        pin = f"sha256:{self.server_sha256[:16]}…" if self.server_sha256 else None
        return (
            f"RtspsTrust(site_ca={self.ca_der is not None}, pin={pin}, client={self.client_cert})"
        )

    def describe(self) -> str:
        """What the server certificate is checked against, in words."""
        if self.server_sha256 is not None:
            return f"the pinned server certificate sha256:{self.server_sha256}"
        return "a server certificate that chains to the site CA and names the host"

    def context(self) -> ssl.SSLContext:
        """A client context: TLS 1.2 at least, the check of :meth:`describe`, the client pair."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.server_sha256 is not None:
            # the pin is checked after the handshake, on the exact leaf bytes (connect_tls)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            assert self.ca_der is not None
            ctx.load_verify_locations(cadata=self.ca_der)
        if self.client_cert is not None and self.client_key is not None:
            try:
                ctx.load_cert_chain(self.client_cert, self.client_key)
            except (OSError, ssl.SSLError) as exc:
                raise TlsNotConfigured(
                    f"rtsps client certificate {self.client_cert}: expected a readable "
                    f"certificate and key pair, got {_reason(exc)}"
                ) from None
        return ctx


def connect_tls(host: str, port: int, trust: RtspsTrust, timeout_s: float) -> ssl.SSLSocket:
    """Connect to ``host:port``, complete the TLS handshake and check the server's certificate.

    Raises :class:`TlsRefused` when the certificate does not verify (one line: what was
    expected, what was found) and ``OSError`` when the camera does not answer at all.
    """
    ctx = trust.context()
    raw = socket.create_connection((host, port), timeout=timeout_s)
    where = f"{host}:{port}"
    try:
        tls = ctx.wrap_socket(raw, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        raw.close()
        raise TlsRefused(
            f"camera TLS at {where}: expected {trust.describe()}, got one that does not "
            f"verify ({exc.verify_message or _reason(exc)})"
        ) from None
    except ssl.SSLError as exc:
        raw.close()
        raise TlsRefused(
            f"camera TLS at {where}: expected a TLS 1.2+ handshake, got {_reason(exc)}"
        ) from None
    if trust.server_sha256 is not None:
        der = tls.getpeercert(binary_form=True) or b""
        found = leaf_sha256(der)
        if found != trust.server_sha256:
            tls.close()
            raise TlsRefused(
                f"camera TLS at {where}: expected the pinned server certificate "
                f"sha256:{trust.server_sha256}, got sha256:{found}"
            )
    return tls


def issue_client_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    camera_id: str,
    now: datetime,
    days: int = 825,
) -> tuple[bytes, bytes]:
    """A new ECDSA P-256 key and a client-authentication certificate for talking to
    ``camera_id``, issued by the site CA: ``(key PKCS#8 PEM, certificate PEM)``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"kontur rtsps client {camera_id}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _reason(exc: BaseException) -> str:
    """An ssl/OS error in one line, without the file paths or data it may quote."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason.replace("_", " ").lower()
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(text.split()) or type(exc).__name__
