"""Health: every block watched, every fault a degradation trigger, recovery per block.

Order of steps of :meth:`Health.poll` (called by the supervisor's loop several times a second):

1. block exits: each process that exited unasked is a trigger (``worker_crash`` for the
   worker, and ``accelerator_reset`` too when it ran on an accelerator and exited with
   :data:`~kontur.worker.errors.ACCELERATOR_FAULT_EXIT`; ``block_failed`` for ingest, the
   verifier and the gate) and is recovered as the
   README's table says: the worker restarts on the CPU, the verifier and the gate restart, an
   ingest whose source had not ended marks its camera failed (recording of the other cameras
   goes on; the run ends instead of hanging), unless the run itself stopped it before it had
   started (killed by the SIGTERM during its imports: it had recorded nothing); the API
   block restarts without a trigger (it moves no action and reads no frame: an outsider who
   can crash it must not be able to degrade the site), and is given up after
   :data:`MAX_API_RESTARTS` restarts a minute;
2. progress: the worker and the verifier are alive when their ring acknowledgements advance
   (or nothing is waiting for them), never on a heartbeat file alone, so a worker that beats
   but never reads is hung; a hang restarts the block;
3. the monitors (model integrity, clock jump) and the machine's recovery tick.

Between polls, :meth:`Health.on_message` watches what the recorder archived: consecutive
failing GOP verdicts of one camera raise ``camera_untrusted`` for that camera; a verifier
disagreement ratio over a camera's full window raises ``anomalous_results`` for that camera
(for the site when a majority of the cameras are over it: the shared worker is wrong), a
finding that says a camera's results drifted (issue 13 §3) raises it for that camera; a
camera tamper event's start raises ``camera_tamper`` for that camera, cleared once that
camera has none open (ADR 0030); a lost decoder is ``block_failed`` for its camera.
:meth:`Health.on_violation` turns an edge violation into ``worker_misbehaving`` (the worker)
or ``block_failed`` (anyone else), both for the site.

Camera-scoped triggers move that camera's state only (ADR 0040): a covered camera does not
take automatic decisions away from the healthy ones. Each transition is archived as a
``state`` record (with ``camera`` for a camera's) and sent to the gate; the analysis stride
of each non-priority camera follows its effective state, and the worker moves to the CPU on
the site's state only (a camera's trouble says nothing about the accelerator).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from kontur.archive import Archive
from kontur.config import Config
from kontur.degrade import DegradationMachine, Monitor, Watchdog, step
from kontur.degrade.machine import Transition, Trigger
from kontur.ingest.source import is_live
from kontur.redact import redact_url
from kontur.runtime.recorder import CameraStats, Recorder
from kontur.runtime.supervisor import Supervisor
from kontur.runtime.wiring import Wiring
from kontur.verifier.drift import DRIFT_REASON
from kontur.wire import ControlMessage, Finding, FrameReady, GopClosed, Message, StateChanged
from kontur.wire.edges import Violation, role_of
from kontur.wire.framering import VERIFIER_READER, WORKER_READER
from kontur.wire.messages import DecoderEvent, TamperAlarm
from kontur.wire.verdict import FAILING_VERDICTS, SystemState
from kontur.worker.errors import ACCELERATOR_FAULT_EXIT

__all__ = ["Health"]

log = logging.getLogger("kontur.health")

#: Violation records a second per sender; a flood beyond it is counted, not stored one by one.
MAX_VIOLATION_RECORDS_PER_S = 20

#: Restarts of one camera's ingest (a live source) before the camera is given up.
MAX_INGEST_RESTARTS = 10

#: Restarts of the API block within :data:`API_RESTART_WINDOW_S` before it is given up.
MAX_API_RESTARTS = 5
API_RESTART_WINDOW_S = 60.0

#: The blocks whose liveness is their ring acknowledgements, and their reader index.
_READERS = {"worker": WORKER_READER, "verifier": VERIFIER_READER}


@dataclass
class _Progress:
    consumed: dict[str, int] = field(default_factory=dict)
    heartbeat: dict[str, int] = field(default_factory=dict)


class Health:
    """Watches the process tree and drives the degradation machine (see the module)."""

    def __init__(
        self,
        config: Config,
        machine: DegradationMachine,
        watchdog: Watchdog,
        monitors: Sequence[Monitor],
        supervisor: Supervisor,
        wiring: Wiring,
        archive: Archive,
        recorder: Recorder,
        stats: dict[str, CameraStats],
        fallback: Callable[[], str],
        *,
        progress: Callable[[dict[str, Any]], None] | None = None,
        drain_all: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.machine = machine
        self.watchdog = watchdog
        self.monitors = tuple(monitors)
        self.supervisor = supervisor
        self.wiring = wiring
        self.archive = archive
        self.recorder = recorder
        self.stats = stats
        self.fallback = fallback
        self.progress_callback = progress
        self.drain_all: Callable[[], None] = drain_all or (lambda: None)
        """Reads every inbox empty (the supervisor's loop): an exited ingest's last messages
        are read before its exit is judged."""
        self._streak: dict[str, int] = {}
        self._findings: dict[str, deque[bool]] = {}
        """Per camera: whether the verifier agreed, over its last ``anomalous_window``."""
        self._progress = {name: _Progress() for name in _READERS}
        self._handled: set[int] = set()
        self._violation_window: dict[str, tuple[int, int]] = {}
        self._suppressed: dict[str, int] = {}
        self._api_restarts: deque[float] = deque(maxlen=MAX_API_RESTARTS)
        self._tamper_open: set[tuple[str, str]] = set()
        """(camera, kind) of every tamper event open now (``low_quality`` is not one)."""
        self.machine_clock: Callable[[], float] = time.monotonic

    # ---- what the recorder saw --------------------------------------------------------
    def on_message(self, msg: Message) -> None:
        """Count failing verdicts per camera and the verifier's disagreements."""
        if isinstance(msg, GopClosed):
            self._on_verdict(msg)
        elif isinstance(msg, TamperAlarm):
            self._on_tamper(msg)
        elif isinstance(msg, DecoderEvent):
            self._on_decoder(msg)
        elif isinstance(msg, Finding):
            self._on_drift(msg)
            self._on_finding(msg)

    def _on_finding(self, msg: Finding) -> None:
        """The verifier's disagreement ratio over a camera's last ``anomalous_window``
        findings: over ``anomalous_disagree_ratio``, ``anomalous_results`` for the camera;
        for the site when a majority of the running cameras are over it (the shared worker
        is wrong, not one camera's scene; a one-camera site: the site, as before ADR 0040).
        A drifting camera's findings count too: a worker drifting on every camera is wrong
        for the site."""
        dc = self.config.degradation
        window = self._findings.setdefault(msg.camera_id, deque(maxlen=dc.anomalous_window))
        window.append(msg.agree)
        ratio = window.count(False) / len(window)
        if len(window) < dc.anomalous_window or ratio < dc.anomalous_disagree_ratio:
            return
        detail = f"verifier disagreed on {ratio:.0%} of the last {len(window)}"
        full = [w for w in self._findings.values() if len(w) == dc.anomalous_window]
        over = sum(w.count(False) / len(w) >= dc.anomalous_disagree_ratio for w in full)
        cameras = max(len(self.stats), len(full))
        if 2 * over <= cameras:
            self.raise_trigger(
                Trigger.ANOMALOUS_RESULTS, f"{msg.camera_id}: {detail}", camera=msg.camera_id
            )
        elif cameras == 1:
            self.raise_trigger(Trigger.ANOMALOUS_RESULTS, detail)
        else:
            where = f"{over} of {cameras} cameras, last {msg.camera_id}"
            self.raise_trigger(Trigger.ANOMALOUS_RESULTS, f"{detail} ({where})")

    def _on_drift(self, msg: Finding) -> None:
        """A camera's results drifted from their baseline: the verifier says so on every
        finding while it lasts, and each one keeps the camera's ``anomalous_results`` up
        (the finding also counts in the disagreement window)."""
        drift = next((r for r in msg.reasons if r.startswith(DRIFT_REASON)), None)
        if drift is not None:
            detail = f"{msg.camera_id}: {drift}"
            self.raise_trigger(Trigger.ANOMALOUS_RESULTS, detail, camera=msg.camera_id)

    def _on_decoder(self, msg: DecoderEvent) -> None:
        """Ingest's decoder is a block: a loss is ``block_failed`` (ingest restarts it), and
        a decoder that ingest measured short of full isolation is ``isolation_partial``."""
        who = f"{msg.camera_id}: decoder"
        if msg.kind != "started":
            detail = f"{who} {msg.kind}: {msg.detail}"
            self.raise_trigger(Trigger.BLOCK_FAILED, detail, camera=msg.camera_id)
        elif msg.isolation != "full":
            missing = "; ".join(msg.missing) or "not measured"
            self.raise_trigger(Trigger.ISOLATION_PARTIAL, f"{who} isolation: {missing}")

    def _on_tamper(self, msg: TamperAlarm) -> None:
        """A tamper event degrades its camera; the camera's trigger clears when its last
        open one ends."""
        if msg.kind == "low_quality":
            return  # the gate refuses to decide on it; night is not an attack
        key = (msg.camera_id, msg.kind)
        if msg.transition == "start":
            self._tamper_open.add(key)
            detail = f"{msg.camera_id}: {msg.kind} since {msg.start_s:.1f} s ({msg.reason})"
            self.raise_trigger(Trigger.CAMERA_TAMPER, detail, camera=msg.camera_id)
            return
        self._tamper_open.discard(key)
        if not any(cam == msg.camera_id for cam, _ in self._tamper_open):
            self.machine.clear_trigger(Trigger.CAMERA_TAMPER, camera=msg.camera_id)

    def _on_verdict(self, msg: GopClosed) -> None:
        v = msg.verdict
        if v.verdict not in FAILING_VERDICTS:
            self._streak[v.camera_id] = 0
            return
        n = self._streak[v.camera_id] = self._streak.get(v.camera_id, 0) + 1
        if n >= self.config.degradation.camera_failing_gops:
            detail = f"{v.camera_id}: {n} consecutive failing GOPs, last {v.verdict.value}"
            self.raise_trigger(Trigger.CAMERA_UNTRUSTED, detail, camera=v.camera_id)
            self.recorder.alarm_camera(v.camera_id, Trigger.CAMERA_UNTRUSTED.value, detail)

    def on_violation(self, v: Violation) -> None:
        """An edge violation: archived (at most :data:`MAX_VIOLATION_RECORDS_PER_S` records a
        second per sender, the rest counted in the next record), and a trigger naming it."""
        second = int(self.machine_clock())
        window, n = self._violation_window.get(v.sender, (second, 0))
        if window != second:
            window, n = second, 0
        self._violation_window[v.sender] = (window, n + 1)
        if n < MAX_VIOLATION_RECORDS_PER_S:
            self.recorder.record_violation(v, suppressed=self._suppressed.pop(v.sender, 0))
            log.warning("protocol violation by %s: %s", v.sender, v.detail)
        else:
            self._suppressed[v.sender] = self._suppressed.get(v.sender, 0) + 1
        trigger = Trigger.WORKER_MISBEHAVING if v.sender == "worker" else Trigger.BLOCK_FAILED
        self.raise_trigger(trigger, f"{v.sender} sent {v.message_type}: {v.detail}")

    # ---- triggers and transitions -----------------------------------------------------
    def raise_trigger(self, trigger: Trigger, detail: str, camera: str | None = None) -> None:
        """Raise ``trigger`` (for ``camera``, or the site) and act on what it moves."""
        self.apply(self.machine.raise_trigger(trigger, detail, camera=camera))

    def camera_states(self) -> dict[str, str]:
        """Each running camera's effective state (the more severe of the site's and its
        own), for the run summary and the operator (ADR 0040)."""
        return {cam: self.machine.camera_state(cam).value for cam in self.stats}

    def apply(self, transitions: list[Transition]) -> None:
        """Archive each transition, tell the gate and ingest, move the worker if required."""
        for t in transitions:
            where = {} if t.camera is None else {"camera": t.camera}
            self.archive.append(
                "state",
                {
                    "at": t.at,
                    "from": t.from_state.value,
                    "to": t.to_state.value,
                    "trigger": t.trigger,
                    "detail": t.detail,
                    **where,
                },
            )
            self.wiring.to_gate.send(t.to_message())
            if self.progress_callback is not None:
                state = self.machine.state.value  # the operator's view: the most severe
                self.progress_callback({"state": state, "trigger": t.trigger, **where})
        if not transitions:
            return
        for cam in self.config.cameras:
            out = self.wiring.to_ingest.get(cam.id)
            if out is not None and not cam.priority:
                actions = self.machine.actions(self.machine.camera_state(cam.id))
                stride = actions.analysis_stride_non_priority
                out.send(ControlMessage(command="analysis_stride", camera_id=cam.id, value=stride))
        actions = self.machine.actions(self.machine.site_state)
        worker = self.supervisor.running.get("worker")
        on_accelerator = worker is not None and worker.block.platform != "cpu"
        if actions.move_priority_to_cpu and on_accelerator and self.fallback() == "cpu":
            self._restart("worker", "moved to the CPU (degradation)", platform="cpu")

    def move_worker_to_cpu(self, why: str) -> None:
        """Restart the analytics worker on the CPU now (``kontur incident failover-cpu``, ADR
        0029), archived with ``why``. It stays there: a crash or a hang restarts it on the
        CPU again, and nothing in a run moves it back to an accelerator."""
        self._restart("worker", why, platform="cpu")

    # ---- the poll ---------------------------------------------------------------------
    def poll(self) -> None:
        """One round: exits, progress, watchdog, monitors (see the module)."""
        self._exits()
        self._watch_progress()
        for trig, detail in self.watchdog.poll():
            self.raise_trigger(Trigger(trig), detail)
        for name in sorted(self.watchdog.hung & _READERS.keys()):
            self._restart(name, f"{name}: no progress (watchdog)")
        for cleared in self.watchdog.take_cleared():
            self.machine.clear_trigger(cleared)
        self.apply(step(self.machine, self.monitors))

    def _exits(self) -> None:
        for name, rc in self.supervisor.exited():
            pid = self.supervisor.running[name].proc.pid
            if pid in self._handled:
                continue
            self._handled.add(pid)
            if role_of(name) == "ingest":
                self._ingest_exit(name, rc)
                continue
            if name == "api":
                self._api_exit(rc)
                continue
            _, detail = self.watchdog.report_exit(name, rc)
            was_on = self.supervisor.running[name].block.platform
            platform = self.fallback() if name == "worker" else None
            self._restart(name, detail, **({"platform": platform} if platform else {}))
            if name == "worker":  # after the restart: the trigger must not move it twice
                self._accelerator_fault(rc, was_on)

    def _accelerator_fault(self, rc: int, platform: str) -> None:
        """The worker says its accelerator's EP failed (its exit status): ``accelerator_reset``
        when this supervisor had placed it on an accelerator (``platform``, the supervisor's
        table). The claim can only degrade: on the CPU it is the crash it is, nothing more."""
        if rc != ACCELERATOR_FAULT_EXIT or platform == "cpu":
            return
        detail = f"worker on {platform}: its execution provider failed (exit {rc})"
        self.archive.append("event", {"event": "accelerator_reset", "platform": platform,
                                      "detail": detail})  # fmt: skip
        self.raise_trigger(Trigger.ACCELERATOR_RESET, detail)

    def _ingest_exit(self, name: str, rc: int) -> None:
        cam = name.split(":", 1)[1]
        st = self.stats[cam]
        if not st.ended:
            self.drain_all()  # its SourceEnded may still sit in the pipe
        if st.ended:
            return  # its source ended and it said so: a clean exit
        running = self.supervisor.running[name]
        if running.stop_asked and rc == -signal.SIGTERM:
            # the run's stop came before the block's stop handler, which it installs before it
            # opens its source: it had recorded nothing, so it lost nothing (ADR 0061)
            st.ended = True
            self.archive.append("event", {"event": "ingest_stopped_before_start", "block": name})
            return
        _, detail = self.watchdog.report_exit(name, rc)
        endless = is_live(str(running.block.spec["source"])) or running.block.spec.get("loop")
        if endless and running.restarts < MAX_INGEST_RESTARTS:
            # a live camera (or a looped file): recording goes on in a new ingest, indexes
            # where they stopped
            self._restart(name, detail, **self._resume_at(cam))
            return
        st.ended = True
        last = self.supervisor.last_log_line(name)  # archived: never a URL's credentials
        why = f" (its log ends: {redact_url(last)})" if last else ""
        st.error = f"{detail} before its source ended{why}; recording of this camera stopped"
        self.archive.append("event", {"event": "block_failed", "block": name, "detail": st.error})

    def _api_exit(self, rc: int) -> None:
        """The API died: restart it (no trigger, see the module), unless it keeps dying."""
        now = self.machine_clock()
        detail = f"api exited with code {rc}"
        window = self._api_restarts
        if len(window) == window.maxlen and now - window[0] < API_RESTART_WINDOW_S:
            why = f"{detail}: {len(window)} restarts within {API_RESTART_WINDOW_S:.0f} s, given up"
            log.error("%s", why)
            self.archive.append("event", {"event": "block_failed", "block": "api", "detail": why})
            return
        window.append(now)
        log.warning("%s: restarting it", detail)
        self._restart("api", detail)

    def _resume_at(self, cam: str) -> dict[str, int]:
        """The first frame and GOP a restarted ingest numbers: past everything published."""
        st = self.stats[cam]
        first_frame, first_gop = st.next_frame, max(st.stored_gops, default=-1) + 1
        raw = self.wiring.rings[cam].latest_meta()
        if raw is not None:
            with contextlib.suppress(ValidationError):
                meta = FrameReady.model_validate_json(raw)
                first_frame = max(first_frame, meta.frame_index + 1)
                first_gop = max(first_gop, meta.gop_index + 1)
        return {"first_frame": first_frame, "first_gop": first_gop}

    def _restart(self, name: str, why: str, **spec: Any) -> None:
        self.archive.append("event", {"event": f"{role_of(name)}_restarted", "why": why, **spec})
        self.supervisor.restart(name, **spec)
        if name in _READERS:  # progress-watched: a fresh grace period
            self.watchdog.expect(name)
            self._progress[name] = _Progress()
        if name == "gate":
            self._tell_new_gate()

    def _tell_new_gate(self) -> None:
        """A new gate starts NORMAL: tell it the site's state and each camera's own now."""
        at = self.machine.transitions[-1].at if self.machine.transitions else 0.0
        scopes: dict[str | None, SystemState] = {None: self.machine.site_state}
        scopes.update(self.machine.camera_states)
        for camera, state in scopes.items():
            self.wiring.to_gate.send(
                StateChanged(
                    at=at,
                    from_state=SystemState.NORMAL.value,
                    to_state=state.value,
                    trigger="gate restarted: the current state",
                    camera_id=camera,
                )
            )

    def _watch_progress(self) -> None:
        """Beat a reader block only when it consumed frames, or had none waiting."""
        for name, reader in _READERS.items():
            p = self._progress[name]
            for ring in self.wiring.rings.values():
                consumed = ring.reader_consumed(reader)
                hb = ring.reader_heartbeat(reader)
                idle = consumed >= ring.published
                moved = consumed != p.consumed.get(ring.name, -2)
                beat = hb != p.heartbeat.get(ring.name, -2)
                p.consumed[ring.name], p.heartbeat[ring.name] = consumed, hb
                if moved or (idle and beat):
                    self.watchdog.beat(name)
