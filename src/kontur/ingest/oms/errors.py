"""Errors of the ONVIF Media Signing (OMS) format layer and validator.

::

    IngestError (kontur.ingest.errors)
    └── OmsError                      anything wrong with OMS data
        ├── NalParseError             a NAL unit / byte stream / extradata that does not parse
        ├── SeiParseError             an OMS SEI whose payload or TLVs are malformed
        │   └── UnsupportedOmsVersion a TLV version this implementation does not know
        ├── OmsLimitExceeded          a size bound (SEI, hash list, chain, GOP, ...) was hit
        ├── OmsReadError              a file that cannot be read as signed video
        └── OmsSigningError           signing cannot proceed (kontur sign, the demo camera)
            ├── SigningKeyError       key/chain unusable: wrong type, not matching the leaf, …
            ├── SignerInputError      input not signable: not H.264/H.265, already signed, …
            └── SignedOutputError     the signed output cannot be written

Messages say what was expected and what was found ("expected TLV version 1, got 3").
Verification outcomes (a GOP that does not verify) are *results*, not errors: see
:mod:`kontur.ingest.oms.validator`.
"""

from __future__ import annotations

from kontur.ingest.errors import IngestError

__all__ = [
    "NalParseError",
    "OmsError",
    "OmsLimitExceeded",
    "OmsReadError",
    "OmsSigningError",
    "SeiParseError",
    "SignedOutputError",
    "SignerInputError",
    "SigningKeyError",
    "UnsupportedOmsVersion",
]


class OmsError(IngestError):
    """Root of the ONVIF Media Signing errors."""


class NalParseError(OmsError):
    """A NAL unit, a length-prefixed/Annex-B buffer or avcC/hvcC extradata is malformed."""


class SeiParseError(OmsError):
    """An OMS SEI (payload header, reserved byte, TLV list or a TLV value) is malformed."""


class UnsupportedOmsVersion(SeiParseError):
    """A TLV carries a version this implementation does not support."""


class OmsLimitExceeded(OmsError):
    """A named size bound was exceeded; hostile input must not exhaust memory."""


class OmsReadError(OmsError):
    """A file that cannot be demuxed into access units."""


class OmsSigningError(OmsError):
    """Root of the errors raised while signing video."""


class SigningKeyError(OmsSigningError):
    """The private key or certificate chain cannot be used for signing."""


class SignerInputError(OmsSigningError):
    """The input video cannot be signed (codec, already signed, malformed)."""


class SignedOutputError(OmsSigningError):
    """The signed output cannot be written."""
