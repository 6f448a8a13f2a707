"""The decision gate (DESIGN.md §1, block 5): the only component that may trigger an action.

For each requested action the gate answers ALLOW, RESTRICT (a limited mode), OPERATOR
(confirmation needed) or DENY, and records every reason. A detector's result never triggers a
critical action on its own: the GOPs it came from must be AUTHENTIC, the independent verifier
must agree, and the system must not be degraded (ADR 0007).

- :mod:`kontur.gate.policy`  requirement policies (:class:`AllOf`, :class:`AnyOf`, …)
- :mod:`kontur.gate.rules`   trigger rules from the config (:class:`DwellRule`)
- :mod:`kontur.gate.core`    the pure core (:class:`Gate`)
- :mod:`kontur.gate.sinks`   where decisions go (:class:`LogSink`, :class:`WebhookSink`)
- :mod:`kontur.gate.webhook_receiver`  the reference receiver's checks (:func:`verify_webhook`)

This package imports no inference runtime (no cv2, onnxruntime, torch, supervision, trackers).
"""

from kontur.gate.core import OPERATOR_QUEUE, Gate
from kontur.gate.errors import (
    EmptyPolicyError,
    EvidenceMismatchError,
    FrameSizeUnknownError,
    GateError,
    SinkConfigError,
    UnknownActionError,
    UnknownCameraError,
    WebhookRefused,
)
from kontur.gate.policy import (
    DEFAULT_CRITICAL,
    DEFAULT_NON_CRITICAL,
    AllGopsAuthentic,
    AllOf,
    AnyOf,
    CameraNotTampered,
    Check,
    Requirement,
    SystemNotDegraded,
    SystemNotSafe,
    UnsafeAllowAll,
    VerifierAgrees,
    most_restrictive,
)
from kontur.gate.request import ActionRequest, SystemState, SystemStatus, TamperSpan
from kontur.gate.rules import DwellRule, foot_point, point_in_polygon, rules_from_config
from kontur.gate.sinks import LogSink, Sink, WebhookSink, build_sinks, sign
from kontur.gate.webhook_receiver import AcceptedWebhook, verify_webhook

__all__ = [
    "DEFAULT_CRITICAL",
    "DEFAULT_NON_CRITICAL",
    "OPERATOR_QUEUE",
    "AcceptedWebhook",
    "ActionRequest",
    "AllGopsAuthentic",
    "AllOf",
    "AnyOf",
    "CameraNotTampered",
    "Check",
    "DwellRule",
    "EmptyPolicyError",
    "EvidenceMismatchError",
    "FrameSizeUnknownError",
    "Gate",
    "GateError",
    "LogSink",
    "Requirement",
    "Sink",
    "SinkConfigError",
    "SystemNotDegraded",
    "SystemNotSafe",
    "SystemState",
    "SystemStatus",
    "TamperSpan",
    "UnknownActionError",
    "UnknownCameraError",
    "UnsafeAllowAll",
    "VerifierAgrees",
    "WebhookRefused",
    "WebhookSink",
    "build_sinks",
    "foot_point",
    "most_restrictive",
    "point_in_polygon",
    "rules_from_config",
    "sign",
    "verify_webhook",
]
