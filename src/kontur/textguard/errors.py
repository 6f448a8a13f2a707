"""Errors of the text guard.

::

    KonturError (kontur.errors)
    └── TextGuardError                the text guard could not do what was asked
        ├── FrameSourceError          a video or frame that cannot be read
        ├── OcrUnavailable            the OCR package is not installed here
        ├── OcrFailed                 the sandboxed OCR process failed, overran its time, or
        │                             said something that does not parse (its output is
        │                             untrusted: a malformed message is refused, never fixed)
        ├── PluginRefused             a report generator's output failed its JSON schema
        └── ReportError               the facts of an incident report cannot be gathered

Messages say what was expected and what was found, on one line.
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = [
    "FrameSourceError",
    "OcrFailed",
    "OcrUnavailable",
    "PluginRefused",
    "ReportError",
    "TextGuardError",
]


class TextGuardError(KonturError):
    """Root of the text guard's errors."""


class FrameSourceError(TextGuardError):
    """The video cannot be opened, or has no frame at the place asked for."""


class OcrUnavailable(TextGuardError):
    """``rapidocr-onnxruntime`` is not importable in this environment."""


class OcrFailed(TextGuardError):
    """The OCR process failed or broke the protocol; says what was expected."""


class PluginRefused(TextGuardError):
    """A generator plug-in's output is not JSON matching the schema; says where it fails."""


class ReportError(TextGuardError):
    """An incident report's facts cannot be read (no such decision, an unreadable archive)."""
