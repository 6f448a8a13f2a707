"""The extraction defence's errors. Messages say what was expected and what was found::

    KonturError
    └── ExtractionError              the query path's defence (kontur.extraction)
        ├── ImageRejected            a query image that is not served
        │   ├── ImageTooLarge        over the byte, side or pixel bounds (HTTP 413)
        │   └── ImageInvalid         not a JPEG or PNG, or one that does not decode (HTTP 422)
        └── QueryWorkerError         the sandboxed query worker did not answer, or broke its
                                     protocol (HTTP 503; the worker is killed and restarted)

Decisions (blocked, throttled, over quota, alarm) are not errors: they are frozen results
(:class:`~kontur.extraction.defence.Admission`) that the API answers and audits.
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = ["ExtractionError", "ImageInvalid", "ImageRejected", "ImageTooLarge", "QueryWorkerError"]


class ExtractionError(KonturError):
    """Root of the extraction defence's errors."""


class ImageRejected(ExtractionError):
    """A query image that is not served; ``status`` is the HTTP answer."""

    status = 422


class ImageTooLarge(ImageRejected):
    """More bytes, a longer side or more pixels than the bounds allow."""

    status = 413


class ImageInvalid(ImageRejected):
    """Not a JPEG or PNG, a header that lies, or bytes the decoder refuses."""

    status = 422


class QueryWorkerError(ExtractionError):
    """The sandboxed query worker is missing, died, timed out or broke its protocol."""
