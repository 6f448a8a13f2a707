"""Errors of the decision gate.

::

    KonturError
    └── GateError                   (kontur.gate) root of this package's errors
        ├── EmptyPolicyError        AllOf() / AnyOf() with no members: empty never means allowed
        ├── UnknownCameraError      a message or call names a camera that is not configured
        ├── UnknownActionError      a rule asks for an action that is not configured
        ├── FrameSizeUnknownError   evidence for a camera whose frame size was never given
        ├── EvidenceMismatchError   an Evidence whose finding is about another camera or frame
        ├── SinkConfigError         a sink that cannot be built (scheme, missing secret)
        └── WebhookRefused          a webhook POST a receiver refuses (ADR 0017)
            ├── WebhookMalformed        a header missing or ill-formed, or a body that
            │                           does not parse or disagrees with its timestamp
            ├── WebhookSignatureInvalid the HMAC does not cover this timestamp, nonce, body
            ├── WebhookStale            the timestamp is outside the receiver's window
            └── WebhookReplayed         the nonce was seen before within the window

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
    "WebhookMalformed",
    "WebhookRefused",
    "WebhookReplayed",
    "WebhookSignatureInvalid",
    "WebhookStale",
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


class WebhookRefused(GateError):
    """A webhook POST that a receiver refuses (:mod:`kontur.gate.webhook_receiver`)."""


class WebhookMalformed(WebhookRefused):
    """A contract header is missing or ill-formed, or the signed body does not parse."""


class WebhookSignatureInvalid(WebhookRefused):
    """The signature is not the HMAC of this timestamp, nonce and body under the secret."""


class WebhookStale(WebhookRefused):
    """The signed timestamp lies outside the receiver's window (``max_skew_s``)."""


class WebhookReplayed(WebhookRefused):
    """The nonce was already accepted while its timestamp is still inside the window."""
