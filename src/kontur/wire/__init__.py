"""Typed messages between kontur's processes, and their codec.

Messages cross process (and trust) boundaries as JSON bytes, parsed back with pydantic in
strict, frozen, ``extra="forbid"`` models. Nothing that crosses a boundary is pickled: the
analytics worker is sandboxed and treated as untrusted, and unpickling its output would
hand it code execution in the reader (ADR 0002).
"""

from kontur.wire.messages import (
    AuditEvent,
    ControlMessage,
    Decision,
    DecoderEvent,
    DetectionBatch,
    Evidence,
    ExportRequest,
    Finding,
    FrameReady,
    FrameStamp,
    GopClosed,
    Message,
    OperatorVerdict,
    Outcome,
    ProtocolViolation,
    SegmentStored,
    SourceEnded,
    StateChanged,
    TrackedObject,
    TrackFrame,
    WireError,
    WorkerReady,
    decode,
    encode,
)

__all__ = [
    "AuditEvent",
    "ControlMessage",
    "Decision",
    "DecoderEvent",
    "DetectionBatch",
    "Evidence",
    "ExportRequest",
    "Finding",
    "FrameReady",
    "FrameStamp",
    "GopClosed",
    "Message",
    "OperatorVerdict",
    "Outcome",
    "ProtocolViolation",
    "SegmentStored",
    "SourceEnded",
    "StateChanged",
    "TrackFrame",
    "TrackedObject",
    "WireError",
    "WorkerReady",
    "decode",
    "encode",
]
