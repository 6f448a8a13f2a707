"""Errors of the robustness audit (``kontur model audit``): one root, one leaf per check.

::

    KonturError
    └── RobustnessError             (kontur.robustness.errors) an audit that cannot run
        ├── AuditFramesError        the frames asked for cannot be picked (count, min persons)
        ├── UnknownCorruption       a corruption name or severity the registry does not have
        ├── EncoderUnavailable      the H.264 encoder the compression corruption needs is missing
        └── NoPersonClass           the detector has no ``person`` class to audit

Missing or undecodable videos and gt files that do not parse or do not fit the video raise
the :mod:`kontur.eval.errors` they come from (``EvalInputError``, ``VideoDecodeError``,
``GroundTruthError``, ``FrameCountError``): the audit reads footage exactly as ``kontur eval``
does. Messages say what was expected and what was found.
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = [
    "AuditFramesError",
    "EncoderUnavailable",
    "NoPersonClass",
    "RobustnessError",
    "UnknownCorruption",
]


class RobustnessError(KonturError):
    """Root of the robustness audit's errors."""


class AuditFramesError(RobustnessError):
    """The frames asked for cannot be picked from the clip (bad count, too few persons)."""


class UnknownCorruption(RobustnessError):
    """A corruption name that is not registered, or a severity outside 1..5."""


class EncoderUnavailable(RobustnessError):
    """PyAV has no libx264 encoder, so the H.264 compression corruption cannot run."""


class NoPersonClass(RobustnessError):
    """The detector's class names have no ``person``: there is nothing to measure."""
