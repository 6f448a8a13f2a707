"""Errors of the trusted ingest.

::

    IngestError (KonturError)
    ├── SourceError                a source that cannot be used
    │   ├── SourceNotFound         nothing at that path
    │   ├── SourceCorrupt          data that does not demux or decode
    │   ├── SourceTruncated        a bitstream cut short (last packet cut, tail undecodable)
    │   ├── NoVideoStream          a container without a video stream
    │   ├── UnsupportedCodec       a codec outside SUPPORTED_CODECS
    │   ├── SourceUnreachable      an RTSP stream that did not come back (ingest/rtsp.py)
    │   ├── TlsRefused             an RTSPS peer whose certificate does not verify, or that
    │   │                          refuses kontur's (ingest/tls.py, ADR 0037)
    │   ├── TlsNotConfigured       rtsps:// with no site CA or pin to check the camera against
    │   ├── EncryptionRequired     a plain source for a camera with encryption_required
    │   └── ReplyRefused           a camera reply kontur refuses: a redirect, or a header over
    │                              64 KiB (ingest/rtsp.py, ADR 0037)
    ├── OmsError                   ONVIF Media Signing (ingest/oms/errors.py has its subtree)
    ├── FreshnessError             freshness layer (ingest/freshness.py)
    │   ├── FactsInvalid           facts the core cannot use
    │   └── ChainUntrusted         a chain that does not verify to the site CA
    ├── RevocationRecordInvalid    an archived revocation kontur did not write (revocation.py)
    └── InventoryError             camera inventory (ingest/inventory.py; exit 1)
        ├── InventoryInputError    bad input to the inventory (exit 2)
        ├── InventoryCorrupt, SiteCaMissing, SiteCaExists, CameraExists,
        └── CameraUnknown, AlreadyRevoked, ChainRejected
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = [
    "IngestError",
    "NoVideoStream",
    "SourceCorrupt",
    "SourceError",
    "SourceNotFound",
    "SourceTruncated",
    "UnsupportedCodec",
]


class IngestError(KonturError):
    """Root of ingest errors."""


class SourceError(IngestError):
    """A source that cannot be used."""


class SourceNotFound(SourceError):
    """Nothing at the given path."""


class SourceCorrupt(SourceError):
    """Data that does not demux or decode as video."""


class SourceTruncated(SourceError):
    """The bitstream ends cut short: a demux error, a last packet the file cuts, or a tail
    that does not decode (a container header's frame count is never the evidence)."""


class NoVideoStream(SourceError):
    """A container without a video stream."""


class UnsupportedCodec(SourceError):
    """A codec kontur does not ingest."""
