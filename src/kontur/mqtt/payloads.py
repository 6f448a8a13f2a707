"""What kontur publishes over MQTT: one frozen, typed model per JSON payload (ADR 0026).

A receiver parses a payload with ``Model.model_validate_json(payload)``; every model refuses
unknown keys, coerces nothing and holds no NaN or infinity. ``<camera>/verdict`` and
``decisions`` carry the sink events themselves (:class:`~kontur.gate.sinks.GopVerdictEvent`,
:class:`~kontur.gate.sinks.DecisionEvent`: the same object as a webhook body's ``event``),
parsed with :func:`kontur.gate.sinks.parse_event`. ``available`` and the binary sensors'
state topics carry bare words (:data:`ONLINE`/:data:`OFFLINE`, :data:`ON`/:data:`OFF`), as
Home Assistant expects.

No payload carries video, a frame or a person crop: nothing a sink is given holds them. A
decision's ``box`` is four numbers. A future ``publish_snapshots`` would be opt-in.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from kontur.wire.verdict import SystemState

__all__ = [
    "OFF",
    "OFFLINE",
    "ON",
    "ONLINE",
    "BlockStats",
    "CameraStatePayload",
    "CameraStats",
    "DiscoveryConfig",
    "DiscoveryDevice",
    "EndReason",
    "EventMessage",
    "PendingItem",
    "PendingPayload",
    "StatePayload",
    "StatsPayload",
    "TrackedEvent",
]

#: ``<prefix>/available`` while kontur is connected (retained).
ONLINE: Final = "online"
#: ``<prefix>/available`` once kontur stopped, or as its last will when the connection dies.
OFFLINE: Final = "offline"
#: A binary sensor's state topic: on.
ON: Final = "ON"
#: A binary sensor's state topic: off.
OFF: Final = "OFF"

_REQUEST_ID = r"^op-[0-9]{1,16}$"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class StatePayload(_Payload):
    """``<prefix>/state`` (retained, QoS 1): the degradation state, sent when it changes."""

    state: SystemState
    transitions: int = Field(ge=0)
    """Transitions of the degradation machine since the run started."""
    site: str
    at: float
    """Wall time of the run-state snapshot it was read from (Unix seconds)."""


class CameraStatePayload(_Payload):
    """``<prefix>/<camera>/state`` (retained, QoS 1): one camera's effective degradation
    state (ADR 0040), sent when it changes. Read from the supervisor's run-state snapshot,
    which has it from the degradation machine; nothing the worker sends sets it."""

    camera: str
    state: SystemState
    """The more severe of the site's state and the camera's own: the state under which the
    gate decides this camera's requests (``Gate.status_of``)."""
    site: str
    at: float
    """Wall time of the run-state snapshot it was read from (Unix seconds)."""


class PendingItem(_Payload):
    """One OPERATOR request waiting for a person (ADR 0023)."""

    id: str = Field(pattern=_REQUEST_ID)
    """``op-<archive index of the decision>``, as the API and ``operator`` events name it."""
    camera_id: str
    rule: str
    action: str
    critical: bool
    reasons: tuple[str, ...]
    """Why the gate asked a person (the decision's reasons)."""
    deadline: float
    """Wall time after which kontur fails safe (the restricted alternative, or nothing)."""
    two_person: bool
    confirmations: tuple[str, ...]


class PendingPayload(_Payload):
    """``<prefix>/operator/pending`` (retained, QoS 1): every request waiting, sent when the
    set or a confirmation changes; ``requests`` empty: nothing waits."""

    at: float
    requests: tuple[PendingItem, ...]


class CameraStats(_Payload):
    """One camera's counters in ``stats`` (the run state's figures)."""

    id: str
    frames: int = Field(ge=0)
    frames_skipped: int = Field(ge=0)
    gops: dict[str, int]
    """GOPs per verdict."""
    detections: int = Field(ge=0)
    decisions: dict[str, int]
    """Decisions per outcome."""
    verifier_agree: int = Field(ge=0)
    verifier_disagree: int = Field(ge=0)
    latency_p50_s: float | None
    latency_max_s: float | None
    """Frame-to-decision latency over the recent decisions (``None``: none measured)."""
    error: str | None


class BlockStats(_Payload):
    """One process of the supervisor's table in ``stats``."""

    name: str
    alive: bool
    restarts: int = Field(ge=0)


class StatsPayload(_Payload):
    """``<prefix>/stats`` (not retained, QoS 1): every ``stats_every_s`` of the run state."""

    at: float
    site: str
    started_at: float
    uptime_s: float = Field(ge=0)
    state: SystemState
    transitions: int = Field(ge=0)
    cameras: tuple[CameraStats, ...]
    blocks: tuple[BlockStats, ...]
    pending: int = Field(ge=0)
    """OPERATOR requests waiting."""
    archive_records: int = Field(ge=0)
    release: str | None
    runtime: str | None
    queue_depths: dict[str, int]


#: Why a tracked event ended: an operator's answer or the deadline (ADR 0023); ``not_queued``:
#: no operator desk took the request (a run without the API); ``cleared``: the camera sent a
#: passing GOP after the alarm; ``stopped``: kontur stopped; ``overflow``: too many open.
EndReason = Literal[
    "confirmed", "rejected", "expired", "not_queued", "cleared", "stopped", "overflow"
]


class TrackedEvent(_Payload):
    """Something with a start and an end, as Frigate's events are: an OPERATOR request (from
    the gate's decision to a person's answer or its deadline) or a camera alarm (from its
    first raise until the camera sends a passing GOP again)."""

    id: str = Field(min_length=1)
    """``op-<decision index>`` for a request; the first alarm event's id for an alarm."""
    kind: Literal["operator", "camera_alarm"]
    camera: str
    label: str
    """The action asked for (operator), or the alarm's trigger (``camera_untrusted``)."""
    rule: str | None
    """The policy rule that asked (operator); ``None`` for an alarm."""
    start_time: float
    end_time: float | None
    """``None`` while it is open."""
    archive_index: int | None = Field(ge=0)
    """The archive record that opened it (the decision, or the alarm's first event)."""
    reasons: tuple[str, ...]
    """The decision's reasons, or the alarm's details (the last eight)."""
    updates: int = Field(ge=0)
    """How often it changed since it opened (an alarm raised again, a confirmation)."""
    deadline: float | None
    two_person: bool
    confirmations: tuple[str, ...]
    outcome: EndReason | None
    """Why it ended; ``None`` while it is open."""
    executed: str | None
    """What ran in the end (an operator request): the action, its alternative, or nothing."""
    operators: tuple[str, ...]
    """Who answered (two under four eyes); empty when nobody did."""
    resolution: str | None
    """Why it ended, in words: the operator's reason, or why kontur failed safe."""


class EventMessage(_Payload):
    """``<prefix>/events`` (not retained, QoS 1): Frigate's shape. ``new`` when something
    opens (``before`` equals ``after``), ``update`` when it changes, ``end`` when it closes
    (``after.end_time`` and ``after.outcome`` set)."""

    type: Literal["new", "update", "end"]
    before: TrackedEvent
    after: TrackedEvent


class DiscoveryDevice(_Payload):
    """The Home Assistant device an entity belongs to: kontur itself, or one camera."""

    identifiers: tuple[str, ...]
    name: str
    manufacturer: str = "kontur"
    model: str
    via_device: str | None = None


class DiscoveryConfig(_Payload):
    """A Home Assistant MQTT discovery config (retained), the keys kontur sets."""

    name: str
    unique_id: str
    object_id: str
    state_topic: str
    availability_topic: str
    payload_available: str = ONLINE
    payload_not_available: str = OFFLINE
    device: DiscoveryDevice
    device_class: str | None = None
    payload_on: str | None = None
    payload_off: str | None = None
    value_template: str | None = None
    json_attributes_topic: str | None = None
    options: tuple[str, ...] | None = None
    icon: str | None = None
