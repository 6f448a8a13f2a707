"""Message types. Each is a frozen pydantic model; :func:`decode` is the only way in.

Who may send which type to whom is the edge table in :mod:`kontur.wire.edges`; the
receiving :class:`~kontur.wire.channel.Inbox` enforces it. Facts have one owner (STYLE.md):
frame numbers, GOP boundaries and times belong to ingest (``FrameReady``, ``GopClosed``), so
the worker's ``TrackFrame`` carries no GOP, and the verifier forwards ingest's own stamp of
the frame (:class:`FrameStamp`) in the ``Evidence`` the gate decides on.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from kontur.errors import KonturError
from kontur.wire.verdict import GopVerdict

__all__ = [
    "DECODER_EVENTS",
    "MAX_FRAME_INDEX",
    "MAX_FRAME_SIDE",
    "MAX_MESSAGE_BYTES",
    "MAX_PRESERVE_SPAN_S",
    "MAX_TAMPER_REASON",
    "TAMPER_ALARM_KINDS",
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
    "IncidentRequest",
    "Message",
    "OperatorVerdict",
    "Outcome",
    "ProtocolViolation",
    "SegmentStored",
    "SourceEnded",
    "StateChanged",
    "TamperAlarm",
    "TrackFrame",
    "TrackedObject",
    "WireError",
    "WorkerReady",
    "decode",
    "encode",
]

#: A frame index is exact in a float up to here (and 2**53 frames at 1000 fps is 285 000
#: years): a bigger one from the worker is refused at the wire, never fed to float arithmetic.
MAX_FRAME_INDEX = 2**53

#: The largest frame side a ``FrameReady`` describes (the ring is sized from the profile).
MAX_FRAME_SIDE = 8192

#: No message may be larger than this; a bigger one is refused before parsing.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class WireError(KonturError):
    """A message that does not parse: says which type was expected and what was found."""


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)


class FrameReady(_Msg):
    """A decoded frame is in shared-memory slot ``slot`` (BGR, uint8, height×width×3)."""

    type: Literal["frame"] = "frame"
    camera_id: str
    seq: int = Field(ge=0)
    frame_index: int = Field(ge=0, le=MAX_FRAME_INDEX)
    pts_s: float
    gop_index: int = Field(ge=0)
    slot: int = Field(ge=0)
    width: int = Field(gt=0, le=MAX_FRAME_SIDE)
    height: int = Field(gt=0, le=MAX_FRAME_SIDE)
    analyse: bool = True
    """False when degradation lowered this camera's analysis rate: the verifier still looks."""


class GopClosed(_Msg):
    """Ingest closed a GOP: its verdict and the archived segment that holds its bitstream."""

    type: Literal["gop"] = "gop"
    verdict: GopVerdict
    first_frame: int = Field(ge=0, le=MAX_FRAME_INDEX)
    last_frame: int = Field(ge=0, le=MAX_FRAME_INDEX)
    start_pts_s: float
    end_pts_s: float
    segment_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    segment_size: int = Field(ge=0)
    signature: dict[str, Any] | None = None
    """Media Signing facts of the GOP (counter, capture times, key, provenance), if signed."""
    decoded: bool = True
    """False when strict mode (verify before decode) kept the GOP away from the decoder."""


class SegmentStored(_Msg):
    """Ingest stored a GOP's raw packets as a write-once segment; its verdict follows later.

    Sent as soon as the segment file is durable, so the archive references every stored GOP
    even if the process dies before the GOP's signature arrives (one GOP later).
    """

    type: Literal["segment"] = "segment"
    camera_id: str
    gop_index: int = Field(ge=0)
    segment_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    segment_size: int = Field(ge=0)
    end_of_stream: bool = False


class SourceEnded(_Msg):
    """A camera's source ended (end of file, or an error that ingest could not recover)."""

    type: Literal["source_ended"] = "source_ended"
    camera_id: str
    frames: int = Field(ge=0)
    gops: int = Field(ge=0)
    error: str | None = None
    frames_skipped: int = Field(default=0, ge=0)
    """Frames published for analysis that the worker never read (overwritten in the ring
    while it lagged): counted by ingest, the ring's only writer, never by the worker."""


class TrackedObject(_Msg):
    """One tracked detection in one frame."""

    track_id: int
    class_id: int = Field(ge=0)
    class_name: str
    confidence: float = Field(ge=0.0, le=1.0)
    xyxy: tuple[float, float, float, float]


class TrackFrame(_Msg):
    """The worker's result for one frame, stamped with what produced it.

    Everything in it is the untrusted worker's claim. It names the frame (``camera_id``,
    ``frame_index``) and repeats ingest's ``pts_s`` so the verifier can check the claim; the
    frame's GOP is not the worker's to say and is looked up from ingest.
    """

    type: Literal["tracks"] = "tracks"
    camera_id: str
    frame_index: int = Field(ge=0, le=MAX_FRAME_INDEX)
    pts_s: float
    model_id: str
    config_id: str
    platform: str
    objects: tuple[TrackedObject, ...]
    detections: int = Field(ge=0)
    """Raw detections before tracking (tracks are a subset)."""


class DetectionBatch(_Msg):
    """Everything the worker found in one GOP, for the archive."""

    type: Literal["detection_batch"] = "detection_batch"
    camera_id: str
    gop_index: int = Field(ge=0)
    model_id: str
    config_id: str
    platform: str
    frames: int = Field(ge=0)
    detections: int = Field(ge=0)
    track_ids: tuple[int, ...]
    classes: dict[Annotated[str, Field(max_length=64)], Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, max_length=256
    )
    """Tracked objects per class name over the GOP's analysed frames (the worker's claim:
    the class-mix metric, never a decision)."""


class WorkerReady(_Msg):
    """The worker loaded its model and is ready (sent again after every restart)."""

    type: Literal["worker_ready"] = "worker_ready"
    model_id: str
    platform: str
    detector: str
    isolation: dict[str, object] | None = None
    """The worker's sandbox report (``kontur.worker.sandbox.IsolationReport`` as JSON)."""


class Finding(_Msg):
    """The verifier's opinion of one frame's results: agree, or disagree with reasons."""

    type: Literal["finding"] = "finding"
    camera_id: str
    frame_index: int = Field(ge=0, le=MAX_FRAME_INDEX)
    agree: bool
    reasons: tuple[str, ...] = ()
    track_reasons: dict[int, tuple[str, ...]] = Field(default_factory=dict)
    """Reasons that concern one track only, keyed by track id."""
    vouched: tuple[int, ...] = ()
    """Tracks the verifier's own pixels carry on this frame (ADR 0043): the box, overlapping
    no other, moved with foreground of its own over a judged window, and every judged box
    since held foreground, down to where it stands.
    An ``agree`` says no check found anything wrong; only this says a check looked. A
    critical action needs its track here on the frame its dwell fired."""
    measured: tuple[int, ...] = ()
    """Tracks whose box the verifier measured on this frame (ADR 0044): a frame its
    background model judged, the box not covered by another object's, and the track measured
    so for at least ``phantom_seconds`` running (the time a vouch needs), or carried. Where
    it looked, in short; ``vouched`` is a subset. A dwell whose track was measured for less
    than half its window, or not carried for more than a third of the time it was measured,
    goes to an operator, however it ends."""
    jumped: tuple[int, ...] = ()
    """Tracks whose box jumped on this frame (ADR 0053): it landed off where the track's own
    motion was taking it, or went back against it, beyond what a person's acceleration
    allows, or came back off its path after a gap in the reports, as when a tracker hands the
    id to another object. A dwell whose window holds a jump of its track, after its first
    frame, goes to an operator: it may be of two objects."""


class FrameStamp(_Msg):
    """Ingest's own facts about one frame (from its ``FrameReady``), as the verifier saw them."""

    camera_id: str
    frame_index: int = Field(ge=0, le=MAX_FRAME_INDEX)
    gop_index: int = Field(ge=0)
    pts_s: float


class Evidence(_Msg):
    """What the gate decides on: the worker's tracks with the verifier's finding on them.

    ``frame`` is the frame's provenance as *ingest* published it; the gate takes the frame's
    GOP and time from it, never from ``tracks``.
    """

    type: Literal["evidence"] = "evidence"
    frame: FrameStamp
    tracks: TrackFrame
    finding: Finding


class ProtocolViolation(_Msg):
    """A block's inbox dropped a message its sender may not send (or could not parse it).

    Sent by the verifier and the gate to the supervisor, which archives it and degrades; the
    supervisor records its own inboxes' violations directly.
    """

    type: Literal["violation"] = "violation"
    sender: str
    receiver: str
    message_type: str
    detail: str


class Outcome(StrEnum):
    """The gate's four answers (DESIGN.md §1, block 5)."""

    ALLOW = "ALLOW"
    RESTRICT = "RESTRICT"
    OPERATOR = "OPERATOR"
    DENY = "DENY"


class Decision(_Msg):
    """A gate decision on one requested action, with every reason that shaped it."""

    type: Literal["decision"] = "decision"
    camera_id: str
    rule: str
    action: str
    critical: bool
    track_id: int | None
    frame_index: int = Field(ge=0, le=MAX_FRAME_INDEX)
    box: tuple[float, float, float, float] | None = None
    """The track's box on ``frame_index`` (x1, y1, x2, y2, pixels), the worker's claim: only
    for showing a person what fired (the API's snapshot and crop), never for deciding."""
    outcome: Outcome
    reasons: tuple[str, ...]
    gops: tuple[int, ...]
    executed: str | None = None
    """What was actually executed: the action, its restricted alternative, or nothing."""
    at: float


class StateChanged(_Msg):
    """The degradation state machine moved: the site's state, or one camera's (ADR 0040).

    A camera's *effective* state is the more severe of the site's and its own; the gate
    keeps both and decides a request on its camera's effective state.
    """

    type: Literal["state"] = "state"
    at: float
    from_state: str
    to_state: str
    trigger: str
    camera_id: str | None = Field(default=None, min_length=1)
    """The camera whose own state moved; None (or absent) for the site's state."""


#: What a :class:`TamperAlarm` may name: the tamper monitor's kinds (``TamperKind``, spelt
#: here so that the wire imports no image code) and ``low_quality``, the picture below the
#: monitor's absolute quality floors ("refuse to decide at low quality", ADR 0030).
TAMPER_ALARM_KINDS = (
    "covered", "defocus", "glare", "low_light", "shifted", "frozen", "screen", "low_quality",
)  # fmt: skip
#: The longest reason a :class:`TamperAlarm` carries (ingest cuts longer ones).
MAX_TAMPER_REASON = 300


#: The events of ingest's sandboxed decoder (ADR 0038).
DECODER_EVENTS = ("started", "crashed", "hung", "violation", "given_up")


class DecoderEvent(_Msg):
    """Ingest's sandboxed decoder started (with the isolation ingest *measured*), or was lost
    (it crashed, hung, or broke the protocol: it is restarted), or was given up (ADR 0038)."""

    type: Literal["decoder"] = "decoder"
    camera_id: str
    kind: Literal["started", "crashed", "hung", "violation", "given_up"]
    detail: str = Field(max_length=500)
    isolation: str | None = Field(default=None, max_length=32)
    """On ``started``: the measured level (``full`` or ``degraded``)."""
    missing: tuple[Annotated[str, Field(max_length=200)], ...] = Field(default=(), max_length=32)
    """On ``started``: what the measurement found missing."""


class TamperAlarm(_Msg):
    """A camera tamper or low-quality event started or ended (issue 13 §1, ADR 0030).

    Sent by ingest, the owner of the frames and their times, to the supervisor (archive,
    sinks, degradation) and the gate (no automatic critical action on the camera while open,
    nor on frames it covered). ``start_s``/``end_s``/``at_s`` are stream times (pts);
    ``first_frame``/``last_frame`` the frames the event may have touched, ingest's numbers.
    ``quality_ok`` is the camera's quality floor after this change.
    """

    type: Literal["tamper"] = "tamper"
    camera_id: str
    transition: Literal["start", "end"]
    kind: Literal[
        "covered", "defocus", "glare", "low_light", "shifted", "frozen", "screen", "low_quality"
    ]
    score: float = Field(ge=0.0, le=1e6)
    reason: str = Field(min_length=1, max_length=MAX_TAMPER_REASON)
    start_s: float
    end_s: float | None = None
    at_s: float
    """When the monitor decided it (stream time): ``start_s`` plus the confirmation delay."""
    first_frame: int = Field(ge=0, le=MAX_FRAME_INDEX)
    last_frame: int | None = Field(default=None, ge=0, le=MAX_FRAME_INDEX)
    quality_ok: bool

    @model_validator(mode="after")
    def _ends_match_transition(self) -> TamperAlarm:
        ended = self.transition == "end"
        if (self.end_s is not None) != ended or (self.last_frame is not None) != ended:
            raise ValueError(
                f"{self.transition}: expected end_s and last_frame "
                f"{'set' if self.transition == 'end' else 'null'}, got {self.end_s} and "
                f"{self.last_frame}"
            )
        if self.end_s is not None and self.end_s < self.start_s:
            raise ValueError(f"end_s: expected >= start_s {self.start_s}, got {self.end_s}")
        if self.last_frame is not None and self.last_frame < self.first_frame:
            raise ValueError(
                f"last_frame: expected >= first_frame {self.first_frame}, got {self.last_frame}"
            )
        if "\n" in self.reason:
            raise ValueError("reason: expected one line, got several")
        return self


class ControlMessage(_Msg):
    """A command from the supervisor to a block (``stop``, ``analysis_stride``, ``revoke``).

    ``revoke``: the supervisor archived a revocation of ``camera_id`` as record ``value``;
    ingest holds the camera revoked from then on, whatever ``inventory.sqlite`` says later
    (ADR 0021). ``detail`` is the revocation's description.
    """

    type: Literal["control"] = "control"
    command: Literal["stop", "analysis_stride", "revoke"]
    camera_id: str | None = None
    value: int | None = None
    detail: str | None = Field(default=None, max_length=1024)


class AuditEvent(_Msg):
    """Something a person (or a machine token) did or tried through the API (issue 11 §5).

    The API block sends it; the supervisor archives it as an ``audit`` record. ``actor`` is
    the authenticated principal, or what was claimed when authentication failed.
    """

    type: Literal["audit"] = "audit"
    actor: str = Field(min_length=1, max_length=128)
    action: str = Field(pattern=r"^[a-z_.:]{1,64}$")
    """e.g. ``login``, ``login_failed``, ``lockout``, ``token_created``, ``video:archive``,
    ``export:create``, ``operator:decide``, ``users:admin``, ``denied``."""
    outcome: Literal["ok", "refused"]
    target: str | None = Field(default=None, max_length=512)
    detail: str = Field(default="", max_length=1024)
    remote: str | None = Field(default=None, max_length=128)
    at: float


class OperatorVerdict(_Msg):
    """An operator's answer to a pending OPERATOR request (issue 11 §6), sent by the API."""

    type: Literal["operator_verdict"] = "operator_verdict"
    request_id: str = Field(pattern=r"^op-[0-9]{1,16}$")
    operator: str = Field(min_length=1, max_length=128)
    confirm: bool
    reason: str = Field(min_length=1, max_length=1024)
    at: float


class ExportRequest(_Msg):
    """A person asks the running site for an evidence bundle (issue 10 part 5, issue 11).

    Sent by the API; the supervisor, the archive's one writer, builds the bundle with its own
    archive into ``DATA_DIR/exports/<request_id>.zip``, logs the ``export`` record naming
    ``requested_by`` and publishes the outcome in the run state (ADR 0020). ``from_at`` and
    ``to_at`` are on the archive's clock (unix seconds), like ``kontur archive export``.
    """

    type: Literal["export_request"] = "export_request"
    request_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    """Random hex chosen by the API: the bundle's file name, so nothing else may appear."""
    requested_by: str = Field(min_length=1, max_length=128)
    camera: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    from_at: float = Field(ge=0)
    to_at: float = Field(ge=0)
    at: float


#: What each incident playbook needs besides the request's id, who and when (ADR 0029).
_INCIDENT_FIELDS = {
    "revoke_camera": {"camera", "reason"},
    "failover_cpu": {"reason"},
    "preserve": {"camera", "from_at", "to_at", "reason"},
    "verify_archive": set(),
}
#: The longest span a ``preserve`` request may hold and export (the bundle is built in
#: memory, like ``POST /exports``).
MAX_PRESERVE_SPAN_S = 3600.0


class IncidentRequest(_Msg):
    """A person runs an incident playbook on the running site (issue 12 §4, ADR 0029).

    Sent by the API, or dropped by ``kontur incident`` as ``DATA_DIR/run/incidents/<id>.json``;
    the supervisor, the archive's one writer, runs it, archives every step as an ``incident``
    record and publishes the outcome in the run state (``incidents``). Each kind takes exactly
    its fields: ``revoke_camera`` camera and reason (and ``preserve_s``, how much of what the
    camera sent last to hold); ``failover_cpu`` a reason; ``preserve`` camera, ``from_at`` <
    ``to_at`` (at most :data:`MAX_PRESERVE_SPAN_S` apart, unix seconds on the archive's clock)
    and a reason; ``verify_archive`` nothing.
    """

    type: Literal["incident_request"] = "incident_request"
    request_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    """Random hex chosen by the API or the CLI (a file name, so nothing else may appear)."""
    kind: Literal["revoke_camera", "failover_cpu", "preserve", "verify_archive"]
    by: str = Field(min_length=1, max_length=128)
    reason: str | None = Field(default=None, min_length=1, max_length=500)
    camera: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    from_at: float | None = Field(default=None, ge=0)
    to_at: float | None = Field(default=None, ge=0)
    preserve_s: float = Field(default=600.0, gt=0, le=86400)
    at: float

    @model_validator(mode="after")
    def _fields_of_kind(self) -> IncidentRequest:
        wanted = _INCIDENT_FIELDS[self.kind]
        named = ("camera", "from_at", "to_at", "reason")
        given = {f for f in named if getattr(self, f) is not None}
        if given != wanted:
            raise ValueError(
                f"{self.kind}: expected the fields {sorted(wanted) or 'none'}, got "
                f"{sorted(given) or 'none'}"
            )
        if self.reason is not None and not self.reason.strip():
            raise ValueError(f"{self.kind}: expected a reason, got only blanks")
        if self.from_at is not None and self.to_at is not None:
            if not self.to_at > self.from_at:
                raise ValueError(f"to_at: expected a time after from_at, got {self.to_at}")
            if self.to_at - self.from_at > MAX_PRESERVE_SPAN_S:
                raise ValueError(
                    f"to_at: expected at most {MAX_PRESERVE_SPAN_S:g} s after from_at, "
                    f"got {self.to_at - self.from_at:g} s"
                )
        return self


Message = Annotated[
    AuditEvent
    | OperatorVerdict
    | ExportRequest
    | IncidentRequest
    | FrameReady
    | GopClosed
    | SegmentStored
    | SourceEnded
    | TrackFrame
    | DetectionBatch
    | WorkerReady
    | Finding
    | Evidence
    | Decision
    | StateChanged
    | TamperAlarm
    | DecoderEvent
    | ControlMessage
    | ProtocolViolation,
    Field(discriminator="type"),
]

_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)


def encode(msg: _Msg) -> bytes:
    """Serialise a message to JSON bytes."""
    return msg.model_dump_json().encode()


def decode(data: bytes) -> Message:
    """Parse and validate one message; raises :class:`WireError` naming what was wrong."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise WireError(f"expected a message of at most {MAX_MESSAGE_BYTES} bytes, got {len(data)}")
    try:
        return _ADAPTER.validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise WireError(f"malformed message at {loc}: {first['msg']}") from None
