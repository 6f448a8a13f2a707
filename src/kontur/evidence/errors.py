"""Errors of evidence export and of bundle verification.

One root, one leaf per kind of failure::

    EvidenceError (KonturError)
    ├── ExportError             the span cannot be exported as asked (exit 2): no record of
    │                           the camera in it, no signed checkpoint covering it yet, a
    │                           segment removed by retention, GOP numbering restarting in it
    └── BundleInputError        not a bundle at all (exit 2): not a zip, no or malformed
                                manifest, an unknown version, duplicate or oversized members

A bundle that *is* a bundle but does not check out is not an error: verification returns a
:class:`~kontur.evidence.verify.VerifyReport` naming each failure by its reason code.
Messages say what was expected and what was found, on one line.
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = ["BundleInputError", "EvidenceError", "ExportError"]


class EvidenceError(KonturError):
    """Root of evidence export and verification errors."""


class ExportError(EvidenceError):
    """The requested span cannot be exported (the message says why and what to do)."""


class BundleInputError(EvidenceError):
    """The input is not an evidence bundle kontur can read."""
