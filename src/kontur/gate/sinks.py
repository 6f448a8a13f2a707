"""Where events go: the always-on JSON-lines log, and an optional signed webhook.

**Events.** A sink receives :data:`SinkEvent` values: frozen, typed pydantic models told apart
by their ``type`` field, each with a unique ``id`` and the position of its archive record:

- ``"decision"`` (:class:`DecisionEvent`): every gate outcome, ALLOW, RESTRICT, OPERATOR and
  DENY; a :class:`~kontur.wire.Decision`'s own fields, flat. Build it with
  :func:`decision_event`.
- ``"gop_verdict"`` (:class:`GopVerdictEvent`): a GOP whose verdict is one of
  :data:`~kontur.wire.verdict.FAILING_VERDICTS` (NOT_AUTHENTIC, MISSING, REPLAYED, STALE,
  KEY_CHANGED, REVOKED, DOWNGRADE, RETIMED). :func:`verdict_event` builds it from a
  :class:`~kontur.wire.GopClosed`, and returns None for every other verdict.
- ``"camera_alarm"`` (:class:`CameraAlarmEvent`): a sustained failure on one camera, built
  with :func:`camera_event`.
- ``"checkpoint"`` (:class:`CheckpointEvent`): a signed checkpoint of the archive (ADR 0015),
  so the receiver is a witness; built with :func:`checkpoint_event`.
- ``"operator"`` (:class:`OperatorEvent`): an OPERATOR request closed by a person (confirmed,
  rejected) or by its deadline (expired, ADR 0023); ``executed`` is what runs now: the action
  when confirmed, its restricted alternative or nothing otherwise. Built with
  :func:`operator_event`.

Every event recorded in the archive names its leaf (``archive_index``, ``archive_hash``) and
``archive_tree_size``, the tree to ask ``kontur archive prove`` for its inclusion proof in.

To add a kind: a model deriving from ``_Event`` with its own ``type`` literal, added to the
:data:`SinkEvent` union (which gives :data:`EVENT_TYPES`, the log and the webhook for free).

**Order.** Decide, record, then act: the supervisor's recorder appends the decision (or the
verdict, or the alarm) to the archive, makes it durable, and only then calls
:meth:`Sink.emit` with the record's index and hash. Nothing is announced that the archive
could still lose. The gate process fires no sink.

**Sinks.** :func:`build_sinks` builds them from the configuration, the log first.

- :class:`LogSink` appends one JSON line per event (every type) and flushes it. A log that
  cannot be written raises: the audit trail must not be lost silently.
- :class:`WebhookSink` POSTs every event from a daemon thread. :meth:`WebhookSink.emit` never
  blocks and never raises on delivery: the queue is bounded, and an event that does not fit
  is dropped and counted (:meth:`WebhookSink.stats`). It follows no redirects, and a failed
  POST is logged and kept in :attr:`WebhookSink.failures`, never retried.
- :class:`kontur.mqtt.MqttSink` publishes to an MQTT broker (Frigate-style topics, Home
  Assistant discovery, ADR 0026). It also follows the run state: a sink with
  ``on_run_state`` (:class:`RunStateSink`) gets each snapshot the perimeter takes.

**What a webhook receiver gets (the contract, ADR 0017).** ``POST <url>`` with
``Content-Type: application/json``, the body :class:`WebhookBody`::

    {"v": 1, "sent_at": 1700000000.0,
     "event": {"id": "<32 hex>", "archive_index": 812, "archive_hash": "<64 hex>",
               "type": "decision", "camera_id": "cam1", "outcome": "DENY", ...}}

and three headers, fresh for every POST:

- ``X-Kontur-Timestamp``: decimal Unix seconds when the POST was signed (``sent_at`` in the
  body is the same value);
- ``X-Kontur-Nonce``: 32 lowercase hex characters, random (128 bits) for every POST;
- ``X-Kontur-Signature: sha256=<hex>``, with ``secret_env`` configured: HMAC-SHA256 under
  that key of ``<timestamp> "." <nonce> "." <exact body bytes>`` (:func:`signing_input`).

A receiver checks, in this order (:func:`kontur.gate.webhook_receiver.verify_webhook` is the
reference): the headers are well formed; the signature, over the raw body *before* parsing
it, compared in constant time; the timestamp within ``max_skew_s`` of its own clock; the
nonce not seen while its timestamp is inside that window. A captured POST replayed after the
window is stale; one replayed within it repeats its nonce; an altered timestamp, nonce or
body breaks the signature. Without a key nothing of this holds, which is why an unsigned
webhook logs a warning when built. A plain ``http://`` URL is refused unless the config sets
``unsafe_plain_http: true``, which warns at every start.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import queue
import secrets
import sys
import threading
import typing
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from kontur._private import open_private, private_dir
from kontur.clock import Clock, SystemClock
from kontur.config import SinksConfig, WebhookConfig
from kontur.gate.errors import SinkConfigError
from kontur.wire import Decision, GopClosed
from kontur.wire.runstate import RunState
from kontur.wire.verdict import FAILING_VERDICTS, Verdict

__all__ = [
    "EVENT_TYPES",
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "CameraAlarmEvent",
    "CheckpointEvent",
    "DecisionEvent",
    "GopVerdictEvent",
    "LogSink",
    "OperatorEvent",
    "RunStateSink",
    "Sink",
    "SinkEvent",
    "SinkStats",
    "WebhookBody",
    "WebhookSink",
    "build_sinks",
    "camera_event",
    "checkpoint_event",
    "decision_event",
    "encode_event",
    "operator_event",
    "parse_event",
    "run_state_sinks",
    "sign",
    "signing_input",
    "verdict_event",
]

_log = logging.getLogger(__name__)

#: The header carrying ``sha256=<hex HMAC-SHA256 of timestamp "." nonce "." body>``.
SIGNATURE_HEADER: Final = "X-Kontur-Signature"
#: The header carrying the decimal Unix seconds the POST was signed at.
TIMESTAMP_HEADER: Final = "X-Kontur-Timestamp"
#: The header carrying a random 128-bit nonce (32 lowercase hex), new for every POST.
NONCE_HEADER: Final = "X-Kontur-Nonce"
_FAILURES_KEPT = 100
_HEX64 = r"^[0-9a-f]{64}$"

# --- events -----------------------------------------------------------------------------------


def _new_id() -> str:
    return uuid.uuid4().hex


_CONFIG: Final = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class _Event(BaseModel):
    """What every event carries: its unique id and where the archive recorded it."""

    model_config = _CONFIG

    id: str = Field(default_factory=_new_id, pattern=r"^[0-9a-f]{32}$")
    """Random, unique per event (UUID4 hex): a webhook receiver refuses one it saw before."""
    archive_index: int | None = Field(default=None, ge=0)
    """Index of the archive record of what the event reports, when it was recorded."""
    archive_hash: str | None = Field(default=None, pattern=_HEX64)
    """That record's RFC 9162 leaf hash, to look it up and check it in the archive."""
    archive_tree_size: int | None = Field(default=None, ge=1)
    """The archive's tree size once that record was committed: a receiver asks for the
    inclusion proof with ``kontur archive prove --index <archive_index> --size <this>``."""


class DecisionEvent(Decision, _Event):
    """A gate decision, any outcome: the :class:`~kontur.wire.Decision` fields, flat."""

    model_config = _CONFIG


class GopVerdictEvent(_Event):
    """A GOP that failed: its verdict (one of ``FAILING_VERDICTS``), reasons and segment."""

    type: Literal["gop_verdict"] = "gop_verdict"
    camera_id: str
    gop_index: int = Field(ge=0)
    verdict: Verdict
    reasons: tuple[str, ...]
    first_frame: int = Field(ge=0)
    last_frame: int = Field(ge=0)
    start_pts_s: float
    end_pts_s: float
    segment_sha256: str = Field(pattern=_HEX64)

    @field_validator("verdict")
    @classmethod
    def _failing(cls, v: Verdict) -> Verdict:
        if v not in FAILING_VERDICTS:
            shown = ", ".join(sorted(FAILING_VERDICTS))
            raise ValueError(f"expected a failing verdict ({shown}), got {v.value}")
        return v


class CameraAlarmEvent(_Event):
    """A sustained failure on one camera (e.g. its GOPs keep failing, its source is gone)."""

    type: Literal["camera_alarm"] = "camera_alarm"
    camera_id: str = Field(min_length=1)
    trigger: str = Field(min_length=1)
    """What raised it, a short name (``gop_failures``, ``source_lost``)."""
    detail: str
    """What an operator reads: what was expected and what was found."""
    at: float | None = None
    """Wall-clock time the alarm was raised (Unix seconds), when the caller gives it."""


class CheckpointEvent(_Event):
    """A signed checkpoint of the archive (ADR 0015): the receiver is a witness, and keeps it."""

    type: Literal["checkpoint"] = "checkpoint"
    origin: str = Field(min_length=1)
    note: str = Field(min_length=1)
    """The C2SP signed note, verifiable with the archive's verifier key."""


class OperatorEvent(_Event):
    """An OPERATOR request closed (ADR 0023): who decided, why, and what runs now."""

    type: Literal["operator"] = "operator"
    request: str = Field(pattern=r"^op-[0-9]{1,16}$")
    decision_index: int = Field(ge=0)
    """Archive index of the gate's OPERATOR decision the request was made of."""
    camera_id: str = Field(min_length=1)
    rule: str
    action: str
    outcome: Literal["confirmed", "rejected", "expired"]
    executed: str | None
    """What runs: the action (confirmed), its restricted alternative, or nothing (None)."""
    operators: tuple[str, ...]
    """Who confirmed (two of them under four eyes) or rejected; empty when it expired."""
    reason: str
    at: float


#: Every event a sink accepts, told apart by ``type``.
SinkEvent = Annotated[
    DecisionEvent | GopVerdictEvent | CameraAlarmEvent | CheckpointEvent | OperatorEvent,
    Field(discriminator="type"),
]
_EVENT_CLASSES: Final = typing.get_args(typing.get_args(SinkEvent)[0])
#: The ``type`` of every kind of event.
EVENT_TYPES: Final[frozenset[str]] = frozenset(
    c.model_fields["type"].default for c in _EVENT_CLASSES
)
_EVENTS: TypeAdapter[SinkEvent] = TypeAdapter(SinkEvent)


def checkpoint_event(note: str, origin: str) -> CheckpointEvent:
    """The event that hands a signed checkpoint to the sinks."""
    return CheckpointEvent(origin=origin, note=note)


def decision_event(
    decision: Decision,
    *,
    archive_index: int | None = None,
    archive_hash: str | None = None,
    archive_tree_size: int | None = None,
) -> DecisionEvent:
    """The event for ``decision`` (any outcome), recorded at ``archive_index``/``archive_hash``."""
    return DecisionEvent(
        **dict(decision),
        archive_index=archive_index,
        archive_hash=archive_hash,
        archive_tree_size=archive_tree_size,
    )


def verdict_event(
    msg: GopClosed,
    *,
    archive_index: int | None = None,
    archive_hash: str | None = None,
    archive_tree_size: int | None = None,
) -> GopVerdictEvent | None:
    """The event for a GOP whose verdict is in ``FAILING_VERDICTS``; None for any other."""
    v = msg.verdict
    if v.verdict not in FAILING_VERDICTS:
        return None
    return GopVerdictEvent(
        camera_id=v.camera_id,
        gop_index=v.gop_index,
        verdict=v.verdict,
        reasons=v.reasons,
        first_frame=msg.first_frame,
        last_frame=msg.last_frame,
        start_pts_s=msg.start_pts_s,
        end_pts_s=msg.end_pts_s,
        segment_sha256=msg.segment_sha256,
        archive_index=archive_index,
        archive_hash=archive_hash,
        archive_tree_size=archive_tree_size,
    )


def camera_event(
    camera_id: str,
    trigger: str,
    detail: str,
    *,
    at: float | None = None,
    archive_index: int | None = None,
    archive_hash: str | None = None,
    archive_tree_size: int | None = None,
) -> CameraAlarmEvent:
    """The event for a sustained failure on ``camera_id``: what raised it and what was found."""
    return CameraAlarmEvent(
        camera_id=camera_id,
        trigger=trigger,
        detail=detail,
        at=at,
        archive_index=archive_index,
        archive_hash=archive_hash,
        archive_tree_size=archive_tree_size,
    )


def operator_event(
    request: str,
    decision: Decision,
    decision_index: int,
    outcome: Literal["confirmed", "rejected", "expired"],
    executed: str | None,
    *,
    operators: tuple[str, ...],
    reason: str,
    at: float,
    archive_index: int | None = None,
    archive_hash: str | None = None,
    archive_tree_size: int | None = None,
) -> OperatorEvent:
    """The event for an OPERATOR request closed with ``outcome``, ``executed`` running now."""
    return OperatorEvent(
        request=request,
        decision_index=decision_index,
        camera_id=decision.camera_id,
        rule=decision.rule,
        action=decision.action,
        outcome=outcome,
        executed=executed,
        operators=operators,
        reason=reason,
        at=at,
        archive_index=archive_index,
        archive_hash=archive_hash,
        archive_tree_size=archive_tree_size,
    )


def encode_event(event: SinkEvent) -> bytes:
    """``event`` as one line of JSON bytes (no newline)."""
    return event.model_dump_json().encode()


def parse_event(data: bytes | str) -> SinkEvent:
    """Parse one event (a log line); raises :class:`pydantic.ValidationError` if malformed."""
    return _EVENTS.validate_json(data)


def _checked_event(event: object) -> SinkEvent:
    if not isinstance(event, _EVENT_CLASSES):
        names = ", ".join(c.__name__ for c in _EVENT_CLASSES)
        raise TypeError(f"expected a sink event ({names}), got {type(event).__name__}")
    return typing.cast(SinkEvent, event)


class WebhookBody(BaseModel):
    """The exact body a webhook POST carries, signed as a whole (see the module docstring)."""

    model_config = _CONFIG

    v: Literal[1] = 1
    sent_at: float
    """Unix seconds when the body was signed: the ``X-Kontur-Timestamp`` value."""
    event: SinkEvent


# --- sinks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SinkStats:
    """What a sink did with the events it was given, for the run's summary."""

    sink: str
    delivered: int
    """Written (log) or accepted with a 2xx answer (webhook)."""
    failed: int = 0
    """Posted but refused or unreachable (webhook)."""
    dropped: int = 0
    """Never sent: the queue was full, or the sink was closed."""
    queued: int = 0
    """Waiting to be sent now."""


class Sink(Protocol):
    """Somewhere events are delivered."""

    def emit(self, event: SinkEvent) -> None:
        """Deliver ``event`` (or queue it; a webhook never blocks its caller)."""
        ...

    def stats(self) -> SinkStats:
        """What the sink did so far."""
        ...

    def close(self) -> None:
        """Release what the sink holds (files, threads)."""
        ...


@typing.runtime_checkable
class RunStateSink(Protocol):
    """A sink that also follows the run state (optional; MQTT's ``state``, ``stats`` and
    ``operator/pending``): the perimeter hands it each snapshot it takes, in the supervisor's
    thread, after the events that snapshot reflects. It must never block or raise."""

    def on_run_state(self, state: RunState) -> None:
        """Take the snapshot ``state``."""
        ...


class LogSink:
    """Appends one JSON line per event to ``path`` and flushes it (no fsync per line)."""

    def __init__(self, path: Path) -> None:
        """Open ``path`` for appending, creating its folder."""
        self.path = Path(path)
        private_dir(self.path.parent)
        # 0600 whatever the umask: the decisions name cameras and tracks (ADR 0021)
        self._fh: IO[str] = os.fdopen(open_private(self.path), "a", encoding="utf-8")
        self._written = 0

    def emit(self, event: SinkEvent) -> None:
        """Append ``event`` as one line of JSON; raises if the line cannot be written."""
        line = encode_event(_checked_event(event)).decode()
        self._fh.write(line + "\n")
        self._fh.flush()
        self._written += 1

    def stats(self) -> SinkStats:
        """Lines written."""
        return SinkStats(f"log {self.path}", delivered=self._written)

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def signing_input(timestamp: str, nonce: str, body: bytes) -> bytes:
    """The bytes the signature covers: ``<timestamp> "." <nonce> "." <body>``.

    Neither header value can hold a ``.`` (decimal digits; hex), so the split is unambiguous.
    """
    return f"{timestamp}.{nonce}.".encode("ascii") + body


def sign(body: bytes, key: bytes, *, timestamp: str, nonce: str) -> str:
    """The ``X-Kontur-Signature`` value: ``sha256=<hex HMAC-SHA256 of signing_input(...)>``."""
    mac = hmac.new(key, signing_input(timestamp, nonce, body), hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook answer that redirects is a failure, never followed (no scheme or host hop)."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        """Refuse every redirect: urllib then raises HTTPError with the 3xx status."""
        return None


def _shown(url: str) -> str:
    """``url`` without credentials or query, for logs."""
    u = urllib.parse.urlsplit(url)
    return f"{u.scheme}://{u.hostname}{f':{u.port}' if u.port else ''}{u.path}"


def _checked_url(url: str, unsafe_plain_http: bool) -> str:
    u = urllib.parse.urlsplit(url)
    if u.scheme.lower() not in ("http", "https") or not u.hostname:
        raise SinkConfigError(f"webhook: expected an http(s) URL with a host, got {_shown(url)!r}")
    if u.scheme.lower() == "http":
        if not unsafe_plain_http:
            raise SinkConfigError(
                f"webhook: expected an https:// URL (or unsafe_plain_http: true), "
                f"got {_shown(url)!r}"
            )
        warning = (
            f"UNSAFE: webhook {_shown(url)} uses plain http (unsafe_plain_http is on): events "
            "travel in clear text and anyone on the path can read them"
        )
        _log.warning("%s", warning)
        # Also straight to stderr: a site that logs to a file must still see it at every start.
        print(f"kontur: warning: {warning}", file=sys.stderr, flush=True)
    return url


def _secret(name: str | None, environ: Mapping[str, str]) -> bytes | None:
    if name is None:
        return None
    value = environ.get(name)
    if not value:
        raise SinkConfigError(
            f"webhook: expected environment variable {name} to hold the HMAC key, found it unset"
        )
    return value.encode()


def _about(event: SinkEvent) -> str:
    """A short name of ``event`` for failure messages."""
    if isinstance(event, DecisionEvent):
        where = f"{event.camera_id} frame {event.frame_index}"
        return f"decision {event.outcome.value} on {event.rule}/{event.action} ({where})"
    if isinstance(event, GopVerdictEvent):
        return f"gop_verdict {event.verdict.value} on gop {event.gop_index} of {event.camera_id}"
    if isinstance(event, CheckpointEvent):
        return f"checkpoint of {event.origin}"
    if isinstance(event, OperatorEvent):
        return f"operator {event.outcome} {event.request} ({event.action} on {event.camera_id})"
    return f"{event.type} {event.trigger} on {event.camera_id}"


class WebhookSink:
    """POSTs every event as a signed :class:`WebhookBody` to ``config.url``.

    :meth:`emit` only queues, on a bounded queue: it never blocks, and an event that does not
    fit (or comes after :meth:`close`) is dropped and counted. A daemon thread posts. Use
    :meth:`send` to post synchronously and get the failure back, :meth:`drain` to wait for
    the queue, and :meth:`close` to stop the thread. ``clock`` stamps ``sent_at``.
    """

    def __init__(
        self,
        config: WebhookConfig,
        *,
        environ: Mapping[str, str] | None = None,
        queue_size: int = 256,
        clock: Clock | None = None,
    ) -> None:
        """Refuses a non-http(s) URL, plain http without ``unsafe_plain_http`` (and warns
        loudly with it), or a ``secret_env`` naming an unset variable."""
        if queue_size < 1:
            raise ValueError(f"expected a queue of at least 1 event, got {queue_size}")
        self.url = _checked_url(config.url, config.unsafe_plain_http)
        self.timeout_s = config.timeout_s
        self._key = _secret(config.secret_env, os.environ if environ is None else environ)
        if self._key is None:
            _log.warning("webhook %s posts UNSIGNED events: set secret_env", _shown(self.url))
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._queue: queue.Queue[SinkEvent | None] = queue.Queue(maxsize=queue_size)
        self._failures: deque[str] = deque(maxlen=_FAILURES_KEPT)
        self._lock = threading.Condition()
        self._busy = self._delivered = self._failed = self._dropped = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="kontur-webhook", daemon=True)
        self._thread.start()

    @property
    def failures(self) -> tuple[str, ...]:
        """The most recent delivery failures and drops (at most 100), oldest first."""
        return tuple(self._failures)

    @property
    def delivered(self) -> int:
        """Events the webhook accepted (2xx)."""
        return self._delivered

    @property
    def dropped(self) -> int:
        """Events never posted: the queue was full, or the sink was closed."""
        return self._dropped

    def stats(self) -> SinkStats:
        """Delivered, failed, dropped and queued events."""
        with self._lock:
            return SinkStats(
                f"webhook {_shown(self.url)}",
                delivered=self._delivered,
                failed=self._failed,
                dropped=self._dropped,
                queued=self._busy,
            )

    def _note(self, event: SinkEvent, why: str) -> str:
        msg = f"webhook {_shown(self.url)} failed for {_about(event)}: {why}"
        self._failures.append(msg)
        _log.warning("%s", msg)
        return msg

    def body_for(self, event: SinkEvent, sent_at: float) -> bytes:
        """The exact bytes posted (and signed) for ``event`` sent at ``sent_at``."""
        return WebhookBody(sent_at=sent_at, event=event).model_dump_json().encode()

    def request_for(self, event: SinkEvent) -> urllib.request.Request:
        """The POST request for ``event``, stamped now with a fresh nonce: JSON body, the
        timestamp and nonce headers, and the signature header when keyed."""
        sent_at = int(self._clock.wall())
        body = self.body_for(_checked_event(event), float(sent_at))
        timestamp, nonce = str(sent_at), secrets.token_hex(16)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "kontur",
            TIMESTAMP_HEADER: timestamp,
            NONCE_HEADER: nonce,
        }
        if self._key is not None:
            headers[SIGNATURE_HEADER] = sign(body, self._key, timestamp=timestamp, nonce=nonce)
        return urllib.request.Request(self.url, data=body, headers=headers, method="POST")

    def send(self, event: SinkEvent) -> str | None:
        """POST ``event`` now; None when accepted, else the failure (also recorded)."""
        request = self.request_for(event)
        try:
            with self._opener.open(request, timeout=self.timeout_s) as resp:
                status = int(resp.status)
        except urllib.error.HTTPError as exc:
            why = f"expected a 2xx answer, got HTTP {exc.code}"
        except Exception as exc:  # a dead webhook must never take its caller down with it
            why = f"{type(exc).__name__}: {exc}"
        else:
            if 200 <= status < 300:
                with self._lock:
                    self._delivered += 1
                return None
            why = f"expected a 2xx answer, got HTTP {status}"
        with self._lock:
            self._failed += 1
        return self._note(event, why)

    def emit(self, event: SinkEvent) -> None:
        """Queue ``event`` for posting; never blocks. Dropped and counted when it does not fit.

        Raises only :class:`TypeError`, for something that is not a sink event (a caller's bug).
        """
        event = _checked_event(event)
        with self._lock:
            if self._closed:
                why = "sink closed, event dropped"
            else:
                try:
                    self._queue.put_nowait(event)
                except queue.Full:
                    why = f"queue full ({self._queue.maxsize} events), event dropped"
                else:
                    self._busy += 1
                    return
            self._dropped += 1
        self._note(event, why)

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            self.send(event)
            with self._lock:
                self._busy -= 1
                self._lock.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until every queued event was posted or failed; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._busy == 0, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Post what is queued (waiting at most ``timeout``), then stop the thread."""
        self.drain(timeout)
        with self._lock:
            self._closed = True
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            return  # the daemon thread dies with the process
        self._thread.join(timeout)


def build_sinks(
    config: SinksConfig, data_dir: Path, *, environ: Mapping[str, str] | None = None
) -> list[Sink]:
    """The log sink (always, at ``data_dir / config.log``), then the webhook and the MQTT
    sink (:mod:`kontur.mqtt`, ADR 0026) when configured."""
    sinks: list[Sink] = [LogSink(Path(data_dir) / config.log)]
    if config.webhook is not None:
        sinks.append(WebhookSink(config.webhook, environ=environ))
    if config.mqtt is not None:
        # imported here: kontur.mqtt builds on this module, and paho only loads when used
        from kontur.mqtt import MqttSink

        sinks.append(MqttSink(config.mqtt, environ=environ))
    return sinks


def run_state_sinks(sinks: Iterable[Sink]) -> list[RunStateSink]:
    """The sinks among ``sinks`` that follow the run state (:class:`RunStateSink`)."""
    return [s for s in sinks if isinstance(s, RunStateSink)]
