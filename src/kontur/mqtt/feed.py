"""The MQTT feed: the pure core that turns sink events and run-state snapshots into messages.

It reads no clock (one is injected), touches no socket and returns :class:`Publication`
values; :class:`~kontur.mqtt.sink.MqttSink` is its shell. Order of steps:

1. build it (the discovery config of the system sensor is retained from the start);
2. :meth:`Feed.connected` at every accepted connection: ``online`` and every retained
   message so far (a broker that lost them, or Home Assistant restarted, gets them again);
3. :meth:`Feed.event` and :meth:`Feed.run_state`, in the order the supervisor hands them
   over. Every event is of an archive record already durable (decide, record, then act),
   and the run state is snapshot in the same thread, after the events it reflects;
4. :meth:`Feed.stop` once: the last run state's ``stats`` when the interval held them back
   (a run's final figures are never up to ``stats_every_s`` stale), open events end
   (``stopped``), then ``offline``.

A step after :meth:`Feed.stop` raises :class:`RuntimeError` (a caller's bug).

**Tracked events** (``<prefix>/events``, Frigate's ``new``/``update``/``end``):

- an OPERATOR request opens with the gate's OPERATOR decision (``op-<its archive index>``,
  the name the operator desk gives it), is updated when the run state shows its deadline or a
  confirmation (four eyes), and ends with the ``operator`` event that closes it (confirmed,
  rejected, expired). A request the run state does not list although its decision is in the
  snapshot's archive was taken by no desk (a run without the API): it ends ``not_queued``;
- a camera alarm opens with the first ``camera_alarm`` of a (camera, trigger), is updated
  when raised again, and a ``camera_untrusted`` one ends ``cleared`` once the camera's
  passing GOPs grow past their count in the first snapshot after the last raise (the
  alarm's streak was broken). Other triggers (the tamper monitors') end with the run until
  they bring their own clear.

A camera's ``alarm`` sensor is ``ON`` while any event on it is open; its ``tamper`` sensor
while a camera alarm on it is open. Both start ``OFF`` when the feed first sees the camera.

**Degradation states.** ``<prefix>/state`` is the run state's ``state`` (the most severe of
the site and every camera), ``<prefix>/<camera>/state`` each camera's effective state (the
more severe of the site's and its own, ADR 0040). Both come from run-state snapshots only,
which the supervisor builds from its degradation machine; no sink event sets one (a camera
first seen in an event has its sensors discovered, and its state once a snapshot lists it).
A snapshot with a state that is none of ``NORMAL``, ``DEGRADED``, ``SAFE`` is refused
(ValueError) before the feed changes or publishes anything for it.

Every string in every payload goes through :func:`kontur.redact.redact_url`: a camera's
credentials never leave in a message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel

from kontur.clock import Clock
from kontur.gate.sinks import (
    CameraAlarmEvent,
    DecisionEvent,
    GopVerdictEvent,
    OperatorEvent,
    SinkEvent,
)
from kontur.mqtt.discovery import camera_configs, system_config
from kontur.mqtt.payloads import (
    OFF,
    OFFLINE,
    ON,
    ONLINE,
    BlockStats,
    CameraStatePayload,
    CameraStats,
    EndReason,
    EventMessage,
    PendingItem,
    PendingPayload,
    StatePayload,
    StatsPayload,
    TrackedEvent,
)
from kontur.mqtt.topics import Topics, check_level
from kontur.redact import redact_url
from kontur.wire import Outcome
from kontur.wire.runstate import CameraState, PendingRequest, RunState
from kontur.wire.verdict import FAILING_VERDICTS, SystemState

__all__ = ["MAX_OPEN", "Feed", "Publication"]

#: Tracked events open at once; beyond it the oldest ends (``overflow``): bounded memory.
MAX_OPEN: Final = 4096
_REASONS_KEPT = 8
_FAILING: Final = frozenset(v.value for v in FAILING_VERDICTS)
_CLEARABLE = "camera_untrusted"
_STATES: Final = frozenset(s.value for s in SystemState)
_NAMES: Final = ", ".join(s.value for s in SystemState)


@dataclass(frozen=True)
class Publication:
    """One MQTT message to publish."""

    topic: str
    payload: bytes
    qos: Literal[0, 1] = 1
    retain: bool = False


def _scrub(value: Any) -> Any:
    """``value`` (JSON-like) with every string's URL credentials masked."""
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def encode(model: BaseModel, *, exclude_none: bool = False) -> bytes:
    """``model`` as compact JSON bytes, credentials masked."""
    data = _scrub(model.model_dump(mode="json", exclude_none=exclude_none))
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()


def _replace(event: TrackedEvent, **changes: Any) -> TrackedEvent:
    """A copy of ``event`` with ``changes``, validated again."""
    return TrackedEvent.model_validate({**event.model_dump(), **changes})


def _onoff(on: bool) -> bytes:
    return (ON if on else OFF).encode()


class Feed:
    """Sink events and run states in, :class:`Publication` values out (see the module)."""

    def __init__(
        self,
        topics: Topics,
        *,
        clock: Clock,
        discovery: bool = True,
        stats_every_s: float = 30.0,
    ) -> None:
        self.topics = topics
        self._clock = clock
        self._discovery = discovery
        self._stats_every_s = stats_every_s
        self._retained: dict[str, Publication] = {}
        self._cameras: dict[str, tuple[bool, bool]] = {}
        """Camera → (alarm on, tamper on), as last published."""
        self._open: dict[str, TrackedEvent] = {}
        self._alarm_ids: dict[tuple[str, str], str] = {}
        self._baseline: dict[str, int | None] = {}
        """Open ``camera_untrusted`` alarm → its camera's passing GOPs in the first snapshot
        after its last raise (None until that snapshot)."""
        self._state_key: tuple[SystemState, int, str] | None = None
        self._camera_states: dict[str, SystemState] = {}
        """Camera → its effective degradation state, as last published."""
        self._pending: tuple[PendingItem, ...] | None = None
        self._last_stats: float | None = None
        #: The newest run state handed over: its stats go out at the stop if not yet sent.
        self._latest: RunState | None = None
        self._stopped = False
        if discovery:
            topic, config = system_config(topics)
            self._retain(topic, encode(config, exclude_none=True))

    @property
    def open_events(self) -> tuple[TrackedEvent, ...]:
        """The tracked events open now, oldest first."""
        return tuple(self._open.values())

    def _running(self) -> None:
        if self._stopped:
            raise RuntimeError("expected a running MQTT feed, got one already stopped")

    def _retain(self, topic: str, payload: bytes) -> Publication:
        pub = Publication(topic, payload, retain=True)
        self._retained[topic] = pub
        return pub

    # ---- steps --------------------------------------------------------------------------
    def connected(self) -> list[Publication]:
        """``online``, then every retained message so far (at every accepted connection)."""
        self._running()
        online = Publication(self.topics.available, ONLINE.encode(), retain=True)
        return [online, *self._retained.values()]

    def event(self, event: SinkEvent) -> list[Publication]:
        """What ``event`` publishes (a checkpoint: nothing; the webhook is the witness)."""
        self._running()
        if isinstance(event, DecisionEvent):
            out = self._camera(event.camera_id)
            out.append(Publication(self.topics.decisions, encode(event)))
            if event.outcome is Outcome.OPERATOR:
                out += self._open_request(event)
            return out
        if isinstance(event, GopVerdictEvent):
            out = self._camera(event.camera_id)
            out.append(Publication(self.topics.verdict(event.camera_id), encode(event)))
            return out
        if isinstance(event, CameraAlarmEvent):
            return self._camera(event.camera_id) + self._alarm(event)
        if isinstance(event, OperatorEvent):
            return self._camera(event.camera_id) + self._close_request(event)
        return []

    def run_state(self, state: RunState) -> list[Publication]:
        """What a run-state snapshot changes: cameras seen, ``state``, each camera's
        ``<camera>/state``, ``operator/pending`` and the requests' updates, alarms cleared,
        and ``stats`` when due. ValueError (nothing published) for a state that is none of
        NORMAL, DEGRADED, SAFE."""
        self._running()
        states = _checked_states(state)
        out: list[Publication] = []
        for cam in state.cameras:
            out += self._camera(cam.id)
        out += self._state(state)
        out += self._camera_state_changes(states, state)
        out += self._requests(state)
        out += self._clear_alarms(state)
        out += self._stats(state)
        self._latest = state
        return out

    def stop(self) -> list[Publication]:
        """The last run state's ``stats`` if the interval held them back (the run's final
        figures), every open event ends (``stopped``), then ``offline`` (retained)."""
        self._running()
        at = self._clock.wall()
        out: list[Publication] = []
        last = self._latest
        if last is not None and last.at != self._last_stats:
            self._last_stats = last.at
            out.append(Publication(self.topics.stats, encode(stats_payload(last))))
        for event_id in list(self._open):
            out += self._end(event_id, "stopped", at, resolution="kontur stopped")
        self._stopped = True
        out.append(Publication(self.topics.available, OFFLINE.encode(), retain=True))
        return out

    # ---- cameras and tracked events ---------------------------------------------------
    def _camera(self, camera: str) -> list[Publication]:
        """Discovery and ``OFF`` states for a camera seen for the first time."""
        if camera in self._cameras:
            return []
        check_level(camera)
        self._cameras[camera] = (False, False)
        out = []
        if self._discovery:
            for topic, config in camera_configs(self.topics, camera):
                out.append(self._retain(topic, encode(config, exclude_none=True)))
        out.append(self._retain(self.topics.alarm(camera), _onoff(False)))
        out.append(self._retain(self.topics.tamper(camera), _onoff(False)))
        return out

    def _sync(self, camera: str) -> list[Publication]:
        """The camera's alarm and tamper states after its events changed (what changed)."""
        mine = [e for e in self._open.values() if e.camera == camera]
        alarm, tamper = bool(mine), any(e.kind == "camera_alarm" for e in mine)
        was_alarm, was_tamper = self._cameras[camera]
        self._cameras[camera] = (alarm, tamper)
        out = []
        if alarm != was_alarm:
            out.append(self._retain(self.topics.alarm(camera), _onoff(alarm)))
        if tamper != was_tamper:
            out.append(self._retain(self.topics.tamper(camera), _onoff(tamper)))
        return out

    def _message(
        self, kind: Literal["new", "update", "end"], before: TrackedEvent, after: TrackedEvent
    ) -> Publication:
        return Publication(
            self.topics.events, encode(EventMessage(type=kind, before=before, after=after))
        )

    def _new(self, tracked: TrackedEvent) -> list[Publication]:
        out: list[Publication] = []
        if len(self._open) >= MAX_OPEN:
            oldest = next(iter(self._open))
            out += self._end(oldest, "overflow", tracked.start_time, resolution="too many open")
        self._open[tracked.id] = tracked
        out.append(self._message("new", tracked, tracked))
        return out + self._sync(tracked.camera)

    def _update(self, event_id: str, **changes: Any) -> list[Publication]:
        before = self._open[event_id]
        after = _replace(before, updates=before.updates + 1, **changes)
        self._open[event_id] = after
        return [self._message("update", before, after)]

    def _end(
        self, event_id: str, outcome: EndReason, at: float, **changes: Any
    ) -> list[Publication]:
        before = self._open.pop(event_id)
        after = _replace(before, end_time=at, outcome=outcome, **changes)
        if before.kind == "camera_alarm":
            self._alarm_ids.pop((before.camera, before.label), None)
            self._baseline.pop(event_id, None)
        return [self._message("end", before, after), *self._sync(before.camera)]

    def _open_request(self, ev: DecisionEvent) -> list[Publication]:
        # the desk names a request after its decision's archive record (ADR 0023)
        request = f"op-{ev.archive_index}" if ev.archive_index is not None else ev.id
        if request in self._open:
            return []
        return self._new(
            TrackedEvent(
                id=request,
                kind="operator",
                camera=ev.camera_id,
                label=ev.action,
                rule=ev.rule,
                start_time=ev.at,
                end_time=None,
                archive_index=ev.archive_index,
                reasons=ev.reasons[-_REASONS_KEPT:],
                updates=0,
                deadline=None,
                two_person=False,
                confirmations=(),
                outcome=None,
                executed=None,
                operators=(),
                resolution=None,
            )
        )

    def _close_request(self, ev: OperatorEvent) -> list[Publication]:
        done = {"executed": ev.executed, "operators": ev.operators, "resolution": ev.reason}
        if ev.request in self._open:
            return self._end(ev.request, ev.outcome, ev.at, **done)
        # opened before this feed existed: its end alone
        alone = TrackedEvent(
            id=ev.request,
            kind="operator",
            camera=ev.camera_id,
            label=ev.action,
            rule=ev.rule,
            start_time=ev.at,
            end_time=ev.at,
            archive_index=ev.decision_index,
            reasons=(),
            updates=0,
            deadline=None,
            two_person=False,
            confirmations=(),
            outcome=ev.outcome,
            executed=ev.executed,
            operators=ev.operators,
            resolution=ev.reason,
        )
        return [self._message("end", alone, alone)]

    def _alarm(self, ev: CameraAlarmEvent) -> list[Publication]:
        key = (ev.camera_id, ev.trigger)
        open_id = self._alarm_ids.get(key)
        if open_id is not None:
            if open_id in self._baseline:
                self._baseline[open_id] = None  # raised again: its streak goes on
            reasons = (*self._open[open_id].reasons, ev.detail)[-_REASONS_KEPT:]
            return self._update(open_id, reasons=reasons)
        at = ev.at if ev.at is not None else self._clock.wall()
        tracked = TrackedEvent(
            id=ev.id,
            kind="camera_alarm",
            camera=ev.camera_id,
            label=ev.trigger,
            rule=None,
            start_time=at,
            end_time=None,
            archive_index=ev.archive_index,
            reasons=(ev.detail,),
            updates=0,
            deadline=None,
            two_person=False,
            confirmations=(),
            outcome=None,
            executed=None,
            operators=(),
            resolution=None,
        )
        out = self._new(tracked)
        self._alarm_ids[key] = ev.id
        if ev.trigger == _CLEARABLE:
            self._baseline[ev.id] = None
        return out

    # ---- the run state ----------------------------------------------------------------
    def _state(self, rs: RunState) -> list[Publication]:
        key = (SystemState(rs.state), rs.transitions, rs.site)
        if key == self._state_key:
            return []
        self._state_key = key
        payload = StatePayload(state=key[0], transitions=rs.transitions, site=rs.site, at=rs.at)
        return [self._retain(self.topics.state, encode(payload))]

    def _camera_state_changes(
        self, states: dict[str, SystemState], rs: RunState
    ) -> list[Publication]:
        """Each camera's effective state, retained, where it changed since last published."""
        out: list[Publication] = []
        for camera, state in states.items():
            if self._camera_states.get(camera) is state:
                continue
            self._camera_states[camera] = state
            payload = CameraStatePayload(camera=camera, state=state, site=rs.site, at=rs.at)
            out.append(self._retain(self.topics.camera_state(camera), encode(payload)))
        return out

    def _requests(self, rs: RunState) -> list[Publication]:
        items = tuple(_pending_item(p) for p in rs.pending)
        out: list[Publication] = []
        for item in items:
            tracked = self._open.get(item.id)
            now = (item.deadline, item.confirmations, item.two_person)
            if (
                tracked is not None
                and (tracked.deadline, tracked.confirmations, tracked.two_person) != now
            ):
                out += self._update(
                    item.id,
                    deadline=item.deadline,
                    confirmations=item.confirmations,
                    two_person=item.two_person,
                )
        waiting = {item.id for item in items}
        for tracked in list(self._open.values()):
            index = tracked.archive_index
            if (
                tracked.kind == "operator"
                and tracked.id not in waiting
                and index is not None
                and index < rs.archive_records
            ):
                why = "no operator desk took the request (a run without the API)"
                out += self._end(tracked.id, "not_queued", rs.at, resolution=why)
        if items != self._pending:
            self._pending = items
            payload = PendingPayload(at=rs.at, requests=items)
            out.append(self._retain(self.topics.pending, encode(payload)))
        return out

    def _clear_alarms(self, rs: RunState) -> list[Publication]:
        passing = {c.id: sum(n for v, n in c.gops.items() if v not in _FAILING) for c in rs.cameras}
        out: list[Publication] = []
        for alarm_id, base in list(self._baseline.items()):
            camera = self._open[alarm_id].camera
            if camera not in passing:
                continue
            if base is None:
                self._baseline[alarm_id] = passing[camera]
            elif passing[camera] > base:
                why = f"{camera} sent a passing GOP after the alarm"
                out += self._end(alarm_id, "cleared", rs.at, resolution=why)
        return out

    def _stats(self, rs: RunState) -> list[Publication]:
        last = self._last_stats
        if last is not None and 0 <= rs.at - last < self._stats_every_s:
            return []
        self._last_stats = rs.at
        return [Publication(self.topics.stats, encode(stats_payload(rs)))]


def _checked_states(rs: RunState) -> dict[str, SystemState]:
    """Camera → its effective state in ``rs``, checked before the feed changes anything:
    ValueError for a camera id that is no safe topic level, or a state (the run's or a
    camera's) that is none of NORMAL, DEGRADED, SAFE."""
    if rs.state not in _STATES:
        raise ValueError(f"expected the run's state to be one of {_NAMES}, got {rs.state[:40]!r}")
    states: dict[str, SystemState] = {}
    for cam in rs.cameras:
        check_level(cam.id)
        if cam.state not in _STATES:
            raise ValueError(
                f"expected camera {cam.id}'s state to be one of {_NAMES}, got {cam.state[:40]!r}"
            )
        states[cam.id] = SystemState(cam.state)
    return states


def _pending_item(p: PendingRequest) -> PendingItem:
    d = p.decision
    return PendingItem(
        id=p.id,
        camera_id=d.camera_id,
        rule=d.rule,
        action=d.action,
        critical=d.critical,
        reasons=tuple(d.reasons),
        deadline=float(p.deadline),
        two_person=p.two_person,
        confirmations=tuple(p.confirmations),
    )


def _camera_stats(c: CameraState) -> CameraStats:
    lat = sorted(c.latency_s)
    return CameraStats(
        id=c.id,
        frames=c.frames,
        frames_skipped=c.frames_skipped,
        gops=dict(c.gops),
        detections=c.detections,
        decisions=dict(c.decisions),
        verifier_agree=c.verifier_agree,
        verifier_disagree=c.verifier_disagree,
        latency_p50_s=float(lat[len(lat) // 2]) if lat else None,
        latency_max_s=float(lat[-1]) if lat else None,
        error=c.error,
    )


def stats_payload(rs: RunState) -> StatsPayload:
    """The ``stats`` payload of a run-state snapshot."""
    return StatsPayload(
        at=float(rs.at),
        site=rs.site,
        started_at=float(rs.started_at),
        uptime_s=max(0.0, float(rs.at - rs.started_at)),
        state=SystemState(rs.state),
        transitions=rs.transitions,
        cameras=tuple(_camera_stats(c) for c in rs.cameras),
        blocks=tuple(
            BlockStats(name=b.name, alive=b.alive, restarts=b.restarts) for b in rs.blocks
        ),
        pending=len(rs.pending),
        archive_records=rs.archive_records,
        release=rs.release,
        runtime=rs.runtime,
        queue_depths=dict(rs.queue_depths),
    )
