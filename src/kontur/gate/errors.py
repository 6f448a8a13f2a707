"""Errors of the decision gate.

::

    KonturError
    └── GateError                   (kontur.gate) root of this package's errors
        ├── EmptyPolicyError        AllOf() / AnyOf() with no members: empty never means allowed
        ├── UnknownCameraError      a message or call names a camera that is not configured
        ├── UnknownActionError      a rule asks for an action that is not configured
        ├── FrameSizeUnknownError   evidence for a camera whose frame size was never given
        ├── EvidenceMismatchError   an Evidence whose finding is about another camera or frame
        └── SinkConfigError         a sink that cannot be built (scheme, missing secret)

What the gate decides about a request (ALLOW, RESTRICT, OPERATOR, DENY) is never an error: it
is a :class:`~kontur.wire.Decision` with its reasons. These errors are for callers that feed the
gate something it cannot judge. Messages say what was expected and what was found.
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = [
    "EmptyPolicyError",
    "EvidenceMismatchError",
    "FrameSizeUnknownError",
    "GateError",
    "SinkConfigError",
    "UnknownActionError",
    "UnknownCameraError",
]


class GateError(KonturError):
    """Root of every error :mod:`kontur.gate` raises on purpose."""


class EmptyPolicyError(GateError):
    """An ``AllOf`` or ``AnyOf`` built with no members (it would otherwise mean "allowed")."""


class UnknownCameraError(GateError):
    """A message or call names a camera that is not in the configuration."""


class UnknownActionError(GateError):
    """A trigger rule asks for an action that is not in the configuration's ``actions``."""


class FrameSizeUnknownError(GateError):
    """Evidence arrived for a camera whose frame size is neither set nor in its profile."""


class EvidenceMismatchError(GateError):
    """An :class:`~kontur.wire.Evidence` whose finding is about another camera or frame."""


class SinkConfigError(GateError):
    """A sink that cannot be built: a non-http(s) webhook, a secret variable that is not set."""
