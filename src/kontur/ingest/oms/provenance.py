"""Provenance of an OMS signing key: its certificate chain checked at *capture* time.

The reference checks the chain with ``X509_verify_cert`` at validation time (README quirk
4). kontur checks it at the capture time taken from the SEI: every certificate of the
chain, and the trust anchor, must be valid at that moment, each certificate must be signed
by the next (the last by a trust anchor), and issuers must be CAs.

Capture time. The General TLV carries FILETIME start/end timestamps. The reference
*signer app* writes them ten times too small (``basetime = time(NULL) * 1e8`` ns, README
quirk 3), so they decode to dates around 1975. :func:`derive_capture_time` undoes that
documented bug only when the raw time lies before :data:`PLAUSIBLE_SINCE` (2000-01-01),
the corrected time does not, and (if known) the corrected time is not after the trusted
reference time plus :data:`CLOCK_SKEW`; the correction is then reported in the reasons.
Otherwise the raw time is used as is. A capture time that precedes a certificate's
``notBefore`` (or follows its ``notAfter``) makes provenance NOT_OK: a chain that was not
valid when the video was captured never passes silently.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import pairwise

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning

from kontur.ingest.oms.errors import OmsLimitExceeded
from kontur.ingest.oms.limits import MAX_CERTIFICATES

__all__ = [
    "CLOCK_SKEW",
    "PLAUSIBLE_SINCE",
    "ChainChecker",
    "Provenance",
    "ProvenanceCheck",
    "check_chain",
    "derive_capture_time",
    "load_pem_chain",
]

PLAUSIBLE_SINCE = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(days=1)
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Provenance(enum.Enum):
    """Whether the signing key chains to a trust anchor at capture time."""

    OK = "ok"
    NOT_OK = "not_ok"
    NO_ANCHOR = "no_anchor"  # no trust anchor configured (reference: NOT_OK, quirk 5)
    UNKNOWN = "unknown"  # no certificate received


@dataclass(frozen=True)
class ProvenanceCheck:
    """Outcome of a chain check, with the reason."""

    status: Provenance
    reason: str


def derive_capture_time(
    raw: datetime | None, reference_time: datetime | None
) -> tuple[datetime | None, str | None]:
    """The capture time to use for ``raw`` (decoded SEI time), and a note if corrected."""
    if raw is None or raw >= PLAUSIBLE_SINCE:
        return raw, None
    try:
        corrected = _UNIX_EPOCH + (raw - _UNIX_EPOCH) * 10
    except OverflowError:
        return raw, None
    if corrected < PLAUSIBLE_SINCE:
        return raw, None
    if reference_time is not None and corrected > reference_time + CLOCK_SKEW:
        return raw, None
    note = (
        f"capture time {raw:%Y-%m-%d %H:%M:%S} UTC corrected to {corrected:%Y-%m-%d %H:%M:%S}"
        " UTC (reference signer app writes timestamps x10 too small, README quirk 3)"
    )
    return corrected, note


def load_pem_chain(pem: bytes) -> list[x509.Certificate]:
    """Certificates of a PEM chain, leaf first; raises ValueError when none parse."""
    with warnings.catch_warnings():  # odd serials: a ValueError in later cryptography releases
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        certs = x509.load_pem_x509_certificates(pem)
    if len(certs) > MAX_CERTIFICATES:
        raise OmsLimitExceeded(f"certificate chain of {len(certs)} exceeds {MAX_CERTIFICATES}")
    return certs


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _valid_at(cert: x509.Certificate, moment: datetime) -> str | None:
    if moment < cert.not_valid_before_utc:
        return (
            f"certificate {_name(cert)} not yet valid at capture time {moment:%Y-%m-%d %H:%M:%S} "
            f"UTC (valid from {cert.not_valid_before_utc:%Y-%m-%d})"
        )
    if moment > cert.not_valid_after_utc:
        return (
            f"certificate {_name(cert)} expired at capture time {moment:%Y-%m-%d %H:%M:%S} UTC "
            f"(valid until {cert.not_valid_after_utc:%Y-%m-%d})"
        )
    return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.version is x509.Version.v1


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def check_chain(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    capture_time: datetime,
) -> ProvenanceCheck:
    """Check ``chain`` (leaf first) against ``anchors`` at ``capture_time``."""
    return ChainChecker(chain, anchors).check(capture_time)


class ChainChecker:
    """:func:`check_chain` for one chain and one set of anchors, checked at many moments.

    The time-independent part (signatures, CA flags, which anchor) is done once at
    construction; :meth:`check` then compares the capture time with the validity window
    that every certificate involved shares, and only outside it names the certificate that
    was not valid (same results and reasons as :func:`check_chain`).
    """

    def __init__(
        self, chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate]
    ) -> None:
        """Verify the structure of ``chain`` (leaf first) against ``anchors`` once."""
        self._chain = tuple(chain)
        self._fixed: ProvenanceCheck | None = None
        self._anchor: x509.Certificate | None = None
        self._verdict = ProvenanceCheck(Provenance.UNKNOWN, "no certificate chain received")
        self._window: tuple[datetime, datetime] | None = None
        if not chain:
            self._fixed = self._verdict
            return
        if not anchors:
            self._fixed = ProvenanceCheck(Provenance.NO_ANCHOR, "no trust anchor configured")
            return
        self._verdict, anchor = _chain_structure(self._chain, tuple(anchors))
        if self._verdict.status is Provenance.OK:
            self._anchor = anchor
        involved = [*self._chain, *([] if self._anchor is None else [self._anchor])]
        start = max(c.not_valid_before_utc for c in involved)
        end = min(c.not_valid_after_utc for c in involved)
        if start <= end:
            self._window = (start, end)

    def check(self, capture_time: datetime) -> ProvenanceCheck:
        """The chain's provenance at ``capture_time``."""
        if self._fixed is not None:
            return self._fixed
        window = self._window
        if window is not None and window[0] <= capture_time <= window[1]:
            return self._verdict
        for cert in self._chain:
            problem = _valid_at(cert, capture_time)
            if problem:
                return ProvenanceCheck(Provenance.NOT_OK, problem)
        if self._anchor is not None:
            problem = _valid_at(self._anchor, capture_time)
            if problem:
                return ProvenanceCheck(Provenance.NOT_OK, problem)
        return self._verdict


@lru_cache(maxsize=32)
def _chain_structure(
    chain: tuple[x509.Certificate, ...], anchors: tuple[x509.Certificate, ...]
) -> tuple[ProvenanceCheck, x509.Certificate | None]:
    """Signatures and CA flags along the chain (time-independent, so cached)."""
    for child, parent in pairwise(chain):
        if not _is_ca(parent) or not _issued_by(child, parent):
            why = f"certificate {_name(child)} is not issued by {_name(parent)}"
            return ProvenanceCheck(Provenance.NOT_OK, why), None
    top = chain[-1]
    anchor_der = {a.public_bytes(serialization.Encoding.DER) for a in anchors}
    if top.public_bytes(serialization.Encoding.DER) in anchor_der:
        return ProvenanceCheck(Provenance.OK, f"{_name(top)} is a trust anchor"), None
    for anchor in anchors:
        if _is_ca(anchor) and _issued_by(top, anchor):
            why = f"chain of {_name(chain[0])} verifies to {_name(anchor)}"
            return ProvenanceCheck(Provenance.OK, why), anchor
    why = f"certificate {_name(top)} is not issued by any trust anchor"
    return ProvenanceCheck(Provenance.NOT_OK, why), None
