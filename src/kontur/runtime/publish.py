"""The supervisor publishes the run state for the API block (:mod:`kontur.wire.runstate`).

:meth:`StatePublisher.tick` is called by the supervisor's loop: it writes a fresh snapshot
about twice a second, and at once when the operator desk changed (a request added, confirmed
or closed), so an operator sees a new request, and the API the winner of a race, within one
loop turn. The supervisor is the only writer; the API only reads (ADR 0023).

**Frame-to-decision latency** (``cameras[].latency_s``, the API's
``kontur_decision_latency_seconds``): for each gate ``Decision``, the time the supervisor
received it minus the time the supervisor received ingest's ``SegmentStored`` of the GOP
that holds the decided frame, both read on the supervisor's own monotonic clock
(:class:`~kontur.runtime.recorder.Recorder`). The frame is placed in its GOP by ingest's own
frame range for it (``GopClosed.first_frame``/``last_frame``; the decision's ``frame_index``
and ``gops`` come from the gate, which has them from ingest's stamp via the verifier), so no
figure rests on anything the worker says; a decision that cannot be placed is counted
(``CameraStats.unmeasured``), not guessed. What it measures: ingest stores a GOP's segment
once the GOP is cut, and by default its frames went to analysis as they decoded, just before;
so the figure runs from the *end* of the decided frame's GOP (not the frame's own decode:
up to one GOP's duration earlier on a live source, so a frame early in a long GOP waited
longer than it says) through the worker, the verifier and the gate (which also holds a
decision until the GOP's verdict) to the supervisor. In strict mode (verify before decode)
the segment is stored before its frames are decoded, so verification time is included.
The last 256 decisions per camera are kept, newest last.

**Class mix** (``cameras[].classes``): tracked objects per class name, summed from each
``DetectionBatch.classes``: the worker's claim (labelled so in the metric's help), for
monitoring only; no decision reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from kontur.archive import Archive
from kontur.degrade import DegradationMachine
from kontur.gate.operator import OperatorDesk
from kontur.runtime.recorder import CameraStats
from kontur.runtime.supervisor import Supervisor
from kontur.wire.framering import WORKER_READER, FrameRing
from kontur.wire.runstate import BlockState, CameraState, RunState, write_run_state

__all__ = ["PUBLISH_EVERY_S", "StatePublisher"]

log = logging.getLogger("kontur.publish")

#: Seconds between snapshots when nothing on the desk changed.
PUBLISH_EVERY_S = 0.5


class StatePublisher:
    """Builds :class:`RunState` from what the supervisor holds, and writes it."""

    def __init__(
        self,
        data_dir: Path,
        site: str,
        started_at: float,
        *,
        stats: Mapping[str, CameraStats],
        supervisor: Supervisor,
        machine: DegradationMachine,
        archive: Archive,
        desk: OperatorDesk | None,
        rings: Mapping[str, FrameRing],
        release: Callable[[], tuple[str | None, str | None]] = lambda: (None, None),
        exports: Callable[[], Mapping[str, str]] = dict,
        incidents: Callable[[], Mapping[str, str]] = dict,
    ) -> None:
        self.data_dir = data_dir
        self.site = site
        self.started_at = started_at
        self.stats = stats
        self.supervisor = supervisor
        self.machine = machine
        self.archive = archive
        self.desk = desk
        self.rings = rings
        self.release = release
        self.exports = exports
        self.incidents = incidents
        """The incident desk's outcomes (:mod:`kontur.runtime.incidents`), for ``incidents``."""
        """The export desk's outcomes (:mod:`kontur.runtime.exports`), for ``exports``."""
        self._last_at = float("-inf")
        self._last_version = -1

    def tick(self, mono: float, wall: float) -> bool:
        """Publish when due (``mono``: monotonic now; ``wall``: the snapshot's time)."""
        version = self.desk.version if self.desk is not None else 0
        if version == self._last_version and mono - self._last_at < PUBLISH_EVERY_S:
            return False
        self.publish(wall)
        self._last_at, self._last_version = mono, version
        return True

    def publish(self, wall: float) -> None:
        """Write the snapshot now; a failure is logged, never fatal to recording."""
        try:
            write_run_state(self.data_dir, self.snapshot(wall))
        except OSError as exc:
            log.warning("run state: expected to write it, got %s", exc)

    def snapshot(self, wall: float) -> RunState:
        """The whole :class:`RunState` as of now."""
        release, runtime = self.release()
        return RunState(
            at=wall,
            site=self.site,
            started_at=self.started_at,
            state=self.machine.state.value,
            transitions=len(self.machine.transitions),
            triggers={t.value: n for t, n in self.machine.raised.items()},
            cameras=tuple(self._camera(cid, st) for cid, st in self.stats.items()),
            blocks=tuple(self._blocks()),
            pending=self.desk.pending if self.desk is not None else (),
            resolved=self.desk.resolved if self.desk is not None else {},
            exports=dict(self.exports()),
            incidents=dict(self.incidents()),
            release=release,
            runtime=runtime,
            archive_records=self.archive.records,
            archive_head=self.archive.head,
            queue_depths={
                f"ring:{cid}": max(0, ring.published - ring.reader_consumed(WORKER_READER))
                for cid, ring in self.rings.items()
            },
        )

    def _camera(self, cid: str, st: CameraStats) -> CameraState:
        return CameraState(
            id=cid,
            frames=max(st.frames, st.next_frame),
            frames_skipped=st.frames_skipped,
            gops=dict(st.gops),
            detections=st.detections,
            verifier_agree=st.agree,
            verifier_disagree=st.disagree,
            decisions=dict(st.decisions),
            classes=dict(st.classes),
            latency_s=tuple(st.latency_s),
            error=st.error,
            state=self.machine.camera_state(cid).value,
        )

    def _blocks(self) -> list[BlockState]:
        out = []
        for name in self.supervisor.order:
            r = self.supervisor.running[name]
            alive = r.proc.poll() is None
            out.append(BlockState(name=name, pid=r.proc.pid, alive=alive, restarts=r.restarts))
        return out
