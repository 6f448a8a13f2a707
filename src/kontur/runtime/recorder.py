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
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kontur.archive import Archive, Record
from kontur.gate.sinks import (
    Sink,
    SinkEvent,
    camera_event,
    checkpoint_event,
    decision_event,
    verdict_event,
)
from kontur.wire import (
    Decision,
    DetectionBatch,
    Finding,
    GopClosed,
    Message,
    SegmentStored,
    SourceEnded,
    WorkerReady,
)
from kontur.wire.edges import Violation

__all__ = ["CameraStats", "Recorder"]


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


class Recorder:
    """Archives every message the supervisor receives, one record kind per message type."""

    def __init__(self, archive: Archive, stats: dict[str, CameraStats], sinks: Sequence[Sink]):
        self.archive = archive
        self.stats = stats
        self.sinks = tuple(sinks)
        self.violations = 0
        self._closed = False

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
        return None

    def _segment(self, msg: SegmentStored) -> None:
        self.stats[msg.camera_id].stored_gops.add(msg.gop_index)
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
        self.stats[msg.camera_id].decisions[msg.outcome.value] += 1
        rec = self.archive.append("decision", msg.model_dump(mode="json"))
        self.archive.flush()
        self._emit(decision_event(msg, **self._where(rec)))

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
