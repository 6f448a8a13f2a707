"""The recorder: one typed archive record per message kind, then the sinks (decide, record, act).

The supervisor's single archive writer. Every message that reached it has already passed its
inbox's row of the edge table (:mod:`kontur.wire.edges`), so it is a type its sender may send
about a camera its sender serves. What the recorder still checks is what only it knows:

- a ``DetectionBatch`` must name a GOP ingest stored for that camera (else a violation);
- a ``WorkerReady``'s isolation report is the worker's *claim* and is archived as such; the
  isolation level that counts is measured by the supervisor (:mod:`kontur.runtime.health`).

Order for a gate decision (issue 8 §8): append the ``decision`` record, commit it durably
(:meth:`~kontur.archive.Archive.flush`), and only then hand it to the sinks, so an action
never fires for a decision the archive could lose. Failing GOP verdicts are sink events too.
Each decision record also names the run manifest's digest (``manifest_sha256``, ADR 0035),
which the supervisor sets before any camera starts.

A camera's ``TamperAlarm`` (ADR 0030) is a ``tamper`` record; a tamper event's start is
committed, then reaches the sinks as a ``camera_alarm`` (trigger ``camera_tamper``). A
``low_quality`` event (the picture below the monitor's floors) is archived only.

The operator loop (ADR 0023) rides on the same order. An OPERATOR decision, once durable,
enters the :class:`~kontur.gate.operator.OperatorDesk` as ``op-<its archive index>``. From
the API block come ``AuditEvent`` (an ``audit`` record each) and ``OperatorVerdict``: the
desk applies it, an ``operator`` record says what happened (confirmed, rejected,
awaiting_second, refused) and is committed, and only a request closed for good reaches the
sinks, as an ``operator`` event naming what runs now. :meth:`Recorder.expire_requests` does
the same for requests past their deadline (``expired``: the restricted alternative or
nothing).

For the run state (:mod:`kontur.runtime.publish`) the recorder also notes, on its own clock,
when each GOP's ``SegmentStored`` arrived, and each decision's frame-to-decision latency
(:attr:`CameraStats.latency_s`; the definition is in the publish module's docstring).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kontur.archive import Archive, Record
from kontur.degrade.machine import Trigger
from kontur.gate.operator import Awaiting, DeskOutcome, OperatorDesk, Refused, Resolution
from kontur.gate.sinks import (
    Sink,
    SinkEvent,
    camera_event,
    checkpoint_event,
    decision_event,
    operator_event,
    verdict_event,
)
from kontur.wire import (
    AuditEvent,
    Decision,
    DetectionBatch,
    Finding,
    GopClosed,
    Message,
    OperatorVerdict,
    Outcome,
    SegmentStored,
    SourceEnded,
    WorkerReady,
)
from kontur.wire.edges import Violation
from kontur.wire.messages import DecoderEvent, TamperAlarm

__all__ = ["CameraStats", "Recorder"]

log = logging.getLogger("kontur.recorder")

#: GOP verdicts remembered per camera, for the evidence of an operator request.
RECENT_GOPS = 256

#: Frame-to-decision latencies kept per camera (``CameraState.latency_s``: at most 256).
RECENT_LATENCIES = 256

#: Tamper events the summary keeps per camera (the archive keeps every one).
MAX_TAMPER_EVENTS = 1000

#: How a request can be closed for good, as the sinks' ``operator`` event says it.
_CLOSED: dict[DeskOutcome, Literal["confirmed", "rejected", "expired"]] = {
    DeskOutcome.CONFIRMED: "confirmed",
    DeskOutcome.REJECTED: "rejected",
    DeskOutcome.EXPIRED: "expired",
}


@dataclass
class CameraStats:
    """What the summary says about one camera (README: "JSON summary")."""

    source: str
    frames: int = 0
    frames_skipped: int = 0
    gops: Counter[str] = field(default_factory=Counter)
    detections: int = 0
    tracks: set[int] = field(default_factory=set)
    agree: int = 0
    disagree: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    ended: bool = False
    error: str | None = None
    stored_gops: set[int] = field(default_factory=set)
    next_frame: int = 0
    """One past the last frame of a closed GOP (where a restarted ingest must go on)."""
    recent_gops: dict[int, tuple[str, str]] = field(default_factory=dict)
    """The last :data:`RECENT_GOPS` GOPs: index → (verdict, segment sha256)."""
    stored_at: dict[int, float] = field(default_factory=dict)
    """The last :data:`RECENT_GOPS` GOPs: index → when the supervisor got its
    ``SegmentStored`` (the recorder's clock)."""
    gop_frames: dict[int, tuple[int, int]] = field(default_factory=dict)
    """The last :data:`RECENT_GOPS` closed GOPs: index → (first, last frame), ingest's own."""
    latency_s: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_LATENCIES))
    """Recent frame-to-decision latencies, newest last (see :mod:`kontur.runtime.publish`)."""
    unmeasured: int = 0
    """Decisions whose frame's GOP the recorder could not place (no latency for them)."""
    classes: Counter[str] = field(default_factory=Counter)
    """Detections per class name (the worker's claim), when the worker reports them."""
    tamper: list[dict[str, Any]] = field(default_factory=list)
    """The camera's tamper and low-quality events, oldest first (at most
    :data:`MAX_TAMPER_EVENTS`): ``{kind, start_s, end_s, score, reason}``, ``end_s`` None
    while open (ADR 0030)."""

    decoder: dict[str, Any] = field(default_factory=dict)
    """Ingest's sandboxed decoder (ADR 0038): ``{isolation, missing, starts, losses,
    given_up, last}``; empty when the camera decodes in process (``unsafe_in_process``)."""

    def to_summary(self, cam_id: str) -> dict[str, Any]:
        """The camera's entry in the run's summary (``cameras[]``, README: "JSON summary")."""
        return {
            "id": cam_id,
            "source": self.source,
            "frames": self.frames,
            "frames_skipped": self.frames_skipped,
            "gops": dict(self.gops),
            "detections": self.detections,
            "tracks": len(self.tracks),
            "verifier": {"agree": self.agree, "disagree": self.disagree},
            "decisions": {
                k: self.decisions.get(k, 0) for k in ("ALLOW", "RESTRICT", "OPERATOR", "DENY")
            },
            "error": self.error,
            "tamper": [dict(e) for e in self.tamper],
            "decoder": dict(self.decoder) or None,
        }

    def note_decoder(self, msg: DecoderEvent) -> None:
        """Count the decoder's starts and losses; keep its measured isolation."""
        d = self.decoder or {"isolation": None, "missing": [], "starts": 0, "losses": 0,
                             "given_up": False, "last": None}  # fmt: skip
        if msg.kind == "started":
            d.update(isolation=msg.isolation, missing=list(msg.missing), starts=d["starts"] + 1)
        elif msg.kind == "given_up":
            d["given_up"] = True
        else:
            d["losses"] += 1
            d["last"] = f"{msg.kind}: {msg.detail}"
        self.decoder = d

    def note_tamper(self, msg: TamperAlarm) -> None:
        """A start opens an entry; an end closes the open one of its kind (its peak score)."""
        if msg.transition == "end":
            for e in reversed(self.tamper):
                if e["kind"] == msg.kind and e["end_s"] is None:
                    e.update(end_s=msg.end_s, score=msg.score)
                    return
        self.tamper.append({"kind": msg.kind, "start_s": msg.start_s, "end_s": msg.end_s,
                            "score": msg.score, "reason": msg.reason})  # fmt: skip
        del self.tamper[:-MAX_TAMPER_EVENTS]


class Recorder:
    """Archives every message the supervisor receives, one record kind per message type."""

    def __init__(
        self,
        archive: Archive,
        stats: dict[str, CameraStats],
        sinks: Sequence[Sink],
        desk: OperatorDesk | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.archive = archive
        self.clock = clock
        """When a message arrived, for latencies (monotonic: a difference of two readings,
        immune to wall-clock steps)."""
        self.stats = stats
        self.sinks = tuple(sinks)
        self.desk = desk
        """Where OPERATOR decisions wait for a person; None: they only go to the sinks."""
        self.violations = 0
        self._closed = False
        self.manifest_sha256: str | None = None
        """The run manifest's digest (ADR 0035), set at start: every decision record names
        it. The supervisor's fact, not the gate's: the gate cannot vouch for the versions."""

    def on_checkpoint(self, note: str) -> None:
        """Hand a signed checkpoint to the sinks (called by the archive after it stored it);
        one signed after :meth:`close` stays in the archive and the witness file only."""
        if not self._closed:
            self._emit(checkpoint_event(note, self.archive.origin))

    def on_message(self, sender: str, msg: Message) -> Violation | None:
        """Archive ``msg`` from block ``sender``; a violation only the recorder can see."""
        if isinstance(msg, SegmentStored):
            self._segment(msg)
        elif isinstance(msg, GopClosed):
            self._verdict(msg)
        elif isinstance(msg, SourceEnded):
            st = self.stats[msg.camera_id]
            st.ended, st.frames, st.error = True, msg.frames, msg.error
            st.frames_skipped = msg.frames_skipped
            self.archive.append("event", {"event": "source_ended", **msg.model_dump(mode="json")})
        elif isinstance(msg, DetectionBatch):
            return self._detections(sender, msg)
        elif isinstance(msg, Finding):
            self._finding(msg)
        elif isinstance(msg, Decision):
            self._decision(msg)
        elif isinstance(msg, WorkerReady):
            claim = msg.model_dump(mode="json")
            claim["claimed_isolation"] = claim.pop("isolation")
            self.archive.append("event", {"event": "worker_ready", **claim})
        elif isinstance(msg, AuditEvent):
            # the same payload `kontur user` archives itself when no perimeter runs
            self.archive.append("audit", msg.model_dump(mode="json"))
        elif isinstance(msg, OperatorVerdict):
            self._operator_verdict(msg)
        elif isinstance(msg, TamperAlarm):
            self._tamper(msg)
        elif isinstance(msg, DecoderEvent):
            self.stats[msg.camera_id].note_decoder(msg)
            self.archive.append("event", {"event": "decoder", **msg.model_dump(mode="json")})
        return None

    def _tamper(self, msg: TamperAlarm) -> None:
        """Archive a tamper event's start or end; a start, once durable, to the sinks."""
        self.stats[msg.camera_id].note_tamper(msg)
        rec = self.archive.append("tamper", msg.model_dump(mode="json"))
        if msg.transition != "start" or msg.kind == "low_quality":
            return
        self.archive.flush()
        detail = f"{msg.kind} since {msg.start_s:.1f} s (score {msg.score:.2f}): {msg.reason}"
        trigger = Trigger.CAMERA_TAMPER.value
        self._emit(camera_event(msg.camera_id, trigger, detail, **self._where(rec)))

    def _segment(self, msg: SegmentStored) -> None:
        st = self.stats[msg.camera_id]
        st.stored_gops.add(msg.gop_index)
        st.stored_at[msg.gop_index] = self.clock()
        _trim(st.stored_at)
        self.archive.append(
            "segment",
            {
                "sha256": msg.segment_sha256,
                "size": msg.segment_size,
                **msg.model_dump(mode="json", exclude={"segment_sha256", "segment_size"}),
            },
        )

    def _verdict(self, msg: GopClosed) -> None:
        st = self.stats[msg.verdict.camera_id]
        st.gops[msg.verdict.verdict.value] += 1
        st.next_frame = max(st.next_frame, msg.last_frame + 1)
        st.recent_gops[msg.verdict.gop_index] = (msg.verdict.verdict.value, msg.segment_sha256)
        _trim(st.recent_gops)
        st.gop_frames[msg.verdict.gop_index] = (msg.first_frame, msg.last_frame)
        _trim(st.gop_frames)
        rec = self.archive.append("verdict", msg.model_dump(mode="json"))
        if verdict_event(msg) is None:
            return
        self.archive.flush()
        self._emit(verdict_event(msg, **self._where(rec)))

    def _detections(self, sender: str, msg: DetectionBatch) -> Violation | None:
        st = self.stats[msg.camera_id]
        if msg.gop_index not in st.stored_gops:
            return Violation(
                sender,
                "supervisor",
                msg.type,
                f"expected a GOP ingest stored for {msg.camera_id} "
                f"(max {max(st.stored_gops, default=-1)}), got GOP {msg.gop_index}",
            )
        st.detections += msg.detections
        st.tracks.update(msg.track_ids)
        st.classes.update(msg.classes)
        self.archive.append("detections", {"source": "worker (claim)", **msg.model_dump()})
        return None

    def _finding(self, msg: Finding) -> None:
        st = self.stats[msg.camera_id]
        if msg.agree:
            st.agree += 1
            return
        st.disagree += 1
        self.archive.append("event", {"event": "verifier_disagree", **msg.model_dump(mode="json")})

    def _decision(self, msg: Decision) -> None:
        """Record, commit, then act: the sinks see only a durable decision."""
        st = self.stats[msg.camera_id]
        st.decisions[msg.outcome.value] += 1
        self._latency(st, msg)
        payload = msg.model_dump(mode="json")
        if self.manifest_sha256 is not None:
            payload["manifest_sha256"] = self.manifest_sha256
        rec = self.archive.append("decision", payload)
        self.archive.flush()
        self._emit(decision_event(msg, **self._where(rec)))
        if self.desk is not None and msg.outcome is Outcome.OPERATOR:
            self._request(rec.index, msg)

    def _latency(self, st: CameraStats, msg: Decision) -> None:
        """Now minus the arrival of the ``SegmentStored`` of the GOP that holds the decided
        frame (ingest's frame range for it, from its ``GopClosed``); nothing the worker says."""
        now = self.clock()
        candidates = [*msg.gops, *sorted(st.gop_frames, reverse=True)]
        for gop in candidates:
            span = st.gop_frames.get(gop)
            if span is None or not span[0] <= msg.frame_index <= span[1]:
                continue
            stored = st.stored_at.get(gop)
            if stored is None:
                break
            st.latency_s.append(max(0.0, now - stored))
            return
        else:
            # its GopClosed may still be in ingest's pipe (read after the gate's): the frame is
            # then in the newest GOP the gate names, if ingest stored it and did not close it
            newest = max(msg.gops, default=None)
            stored = st.stored_at.get(newest) if newest is not None else None
            if newest not in st.gop_frames and stored is not None:
                st.latency_s.append(max(0.0, now - stored))
                return
        st.unmeasured += 1

    # ---- the operator loop (ADR 0023) ------------------------------------------------------
    def _request(self, index: int, msg: Decision) -> None:
        """A durable OPERATOR decision becomes a pending request, with its GOPs' evidence."""
        assert self.desk is not None
        known = self.stats[msg.camera_id].recent_gops
        gops = {g: known[g] for g in msg.gops if g in known}
        request, overflow = self.desk.add(
            index,
            msg,
            gop_verdicts={str(g): v for g, (v, _) in gops.items()},
            segments=tuple(sha for _, sha in gops.values()),
        )
        fields = {"event": "operator_request", "request": request.id, "action": msg.action}
        log.info(
            "operator request %s: %s on %s waits until %.0f",
            request.id,
            msg.action,
            msg.camera_id,
            request.deadline,
            extra={"fields": {**fields, "camera": msg.camera_id, "deadline": request.deadline}},
        )
        for done in overflow:
            self._resolved(done)

    def _operator_verdict(self, msg: OperatorVerdict) -> None:
        """Apply an operator's verdict; archive what it did; act only on a closed request."""
        if self.desk is None:
            why = "expected a running operator desk, got none (no request is pending)"
            result: Resolution | Awaiting | Refused = Refused(msg.request_id, msg.operator, why)
        else:
            result = self.desk.apply(msg)
        if isinstance(result, Resolution):
            self._resolved(result, msg)
            return
        request = result.request
        detail = result.reason if isinstance(result, Refused) else "a second operator must confirm"
        self.archive.append(
            "operator",
            {
                "request": msg.request_id,
                "decision_index": request.decision_index if request is not None else None,
                "operator": msg.operator,
                "confirm": msg.confirm,
                "reason": msg.reason,
                "outcome": result.outcome.value,
                "executed": None,
                "detail": detail,
                "at": msg.at,
            },
        )
        self.archive.flush()
        fields = {"event": "operator_" + result.outcome.value, "request": msg.request_id}
        log.info(
            "operator %s on %s: %s (%s)",
            msg.operator,
            msg.request_id,
            result.outcome.value,
            detail,
            extra={"fields": {**fields, "operator": msg.operator}},
        )

    def _resolved(self, done: Resolution, msg: OperatorVerdict | None = None) -> None:
        """A request closed for good: the ``operator`` record, committed, then the sinks."""
        req = done.request
        rec = self.archive.append(
            "operator",
            {
                "request": req.id,
                "decision_index": req.decision_index,
                "operator": msg.operator if msg is not None else None,
                "operators": list(done.operators),
                "confirm": msg.confirm if msg is not None else None,
                "reason": done.reason,
                "outcome": done.outcome.value,
                "executed": done.executed,
                "action": req.decision.action,
                "camera_id": req.decision.camera_id,
                "at": msg.at if msg is not None else done.at,
            },
        )
        self.archive.flush()
        self._emit(
            operator_event(
                req.id,
                req.decision,
                req.decision_index,
                _CLOSED[done.outcome],
                done.executed,
                operators=done.operators,
                reason=done.reason,
                at=done.at,
                **self._where(rec),
            )
        )
        fields = {"event": "operator_" + done.outcome.value, "request": req.id}
        log.info(
            "operator request %s %s: executed %s",
            req.id,
            done.how(),
            done.executed,
            extra={"fields": {**fields, "operators": done.operators, "executed": done.executed}},
        )

    def expire_requests(self, now: float) -> int:
        """Fail safe on every request past its deadline at wall time ``now``; how many."""
        if self.desk is None:
            return 0
        expired = self.desk.expire(now)
        for done in expired:
            self._resolved(done)
        return len(expired)

    def close_requests(self, why: str) -> None:
        """Fail safe on every request still waiting (the run stops; the desk goes with it)."""
        if self.desk is not None:
            for done in self.desk.close(why):
                self._resolved(done)

    def record_violation(self, v: Violation, suppressed: int = 0) -> None:
        """Archive a message an inbox (or the recorder) refused, naming its sender;
        ``suppressed``: how many of that sender's were counted but not stored before it."""
        self.violations += 1 + suppressed
        payload: dict[str, object] = {
            "sender": v.sender,
            "receiver": v.receiver,
            "message_type": v.message_type,
            "detail": v.detail,
        }
        if suppressed:
            payload["suppressed_before"] = suppressed
        self.archive.append("violation", payload)

    def alarm_camera(self, camera_id: str, trigger: str, detail: str) -> None:
        """A sustained failure on a camera (raised by health): archived, then to the sinks."""
        rec = self.archive.append(
            "event",
            {"event": "camera_alarm", "camera_id": camera_id, "trigger": trigger, "detail": detail},
        )
        self.archive.flush()
        self._emit(camera_event(camera_id, trigger, detail, **self._where(rec)))

    def _where(self, rec: Record) -> dict[str, Any]:
        """Where a committed record sits: its leaf, and the tree size to prove it in."""
        return {
            "archive_index": rec.index,
            "archive_hash": rec.hash,
            "archive_tree_size": self.archive.records,
        }

    def _emit(self, event: SinkEvent | None) -> None:
        if event is None:
            return
        for sink in self.sinks:
            sink.emit(event)

    def sink_stats(self) -> list[dict[str, Any]]:
        """Per sink: delivered, failed, dropped, queued (for the summary)."""
        return [dataclasses.asdict(s.stats()) for s in self.sinks]

    def close(self) -> None:
        """Close the sinks (a webhook's queue is drained within its own bound)."""
        self._closed = True
        for sink in self.sinks:
            sink.close()


def _trim(recent: dict[int, Any]) -> None:
    """Keep the last :data:`RECENT_GOPS` GOPs of a per-GOP map."""
    while len(recent) > RECENT_GOPS:
        del recent[min(recent)]
