"""The supervisor publishes the run state for the API block (:mod:`kontur.wire.runstate`).

:meth:`StatePublisher.tick` is called by the supervisor's loop: it writes a fresh snapshot
about twice a second, and at once when the operator desk changed (a request added, confirmed
or closed), so an operator sees a new request, and the API the winner of a race, within one
loop turn. The supervisor is the only writer; the API only reads (ADR 0023).
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
            cameras=tuple(self._camera(cid, st) for cid, st in self.stats.items()),
            blocks=tuple(self._blocks()),
            pending=self.desk.pending if self.desk is not None else (),
            resolved=self.desk.resolved if self.desk is not None else {},
            release=release,
            runtime=runtime,
            archive_records=self.archive.records,
            archive_head=self.archive.head,
            queue_depths={
                f"ring:{cid}": max(0, ring.published - ring.reader_consumed(WORKER_READER))
                for cid, ring in self.rings.items()
            },
        )

    @staticmethod
    def _camera(cid: str, st: CameraStats) -> CameraState:
        return CameraState(
            id=cid,
            frames=max(st.frames, st.next_frame),
            frames_skipped=st.frames_skipped,
            gops=dict(st.gops),
            detections=st.detections,
            verifier_agree=st.agree,
            verifier_disagree=st.disagree,
            decisions=dict(st.decisions),
            error=st.error,
        )

    def _blocks(self) -> list[BlockState]:
        out = []
        for name in self.supervisor.order:
            r = self.supervisor.running[name]
            alive = r.proc.poll() is None
            out.append(BlockState(name=name, pid=r.proc.pid, alive=alive, restarts=r.restarts))
        return out
