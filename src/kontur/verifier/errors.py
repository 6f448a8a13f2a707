"""Errors of the independent CPU verifier.

::

    KonturError
    └── VerifierError               (kontur.verifier) root of this package's errors
        ├── ThumbnailError          a thumbnail that is not a 2-D uint8 picture of usable size
        └── FrameStampError         a frame stamp that cannot be right (negative index, NaN pts)

What the verifier *finds* (a teleporting track, a frozen scene) is never an error: it is a
disagreeing :class:`~kontur.wire.Finding` with its reasons. These errors are for a caller
that hands over input no check could use. A step taken out of order (a frame index that goes
backwards) is a caller's bug and raises :class:`RuntimeError` instead (STYLE.md, "Pure core").
Messages say what was expected and what was found.
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = ["FrameStampError", "ThumbnailError", "VerifierError"]


class VerifierError(KonturError):
    """Root of every error :mod:`kontur.verifier` raises on purpose."""


class ThumbnailError(VerifierError):
    """A thumbnail that is not a 2-D uint8 array, or is smaller or larger than allowed."""


class FrameStampError(VerifierError):
    """A negative frame index or a pts that is not a finite number."""
