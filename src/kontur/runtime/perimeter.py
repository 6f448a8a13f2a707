"""One run of the whole perimeter on this machine (``kontur demo``, ``kontur run``).

Order of steps: open the archive and record the configuration; build the frozen start-up plan
(:func:`kontur.runtime.plan.build_plan`: verify, install and record the model release; probe
every source and bench the platforms the release allows, both in the worker's sandbox, so the
supervisor decodes nothing and loads no inference runtime; enrol each camera's profile; place
the analytics task); wire the blocks and build what supervises them; start the process tree;
supervise it until the sources end or time runs out; stop the blocks in reverse order;
summarise.

Supervising is three parts, each its own module: every message that passes its inbox's edge
(:mod:`kontur.wire.edges`) goes to the :class:`~kontur.runtime.recorder.Recorder` (one archive
record per kind; decisions committed before the sinks fire) and to
:class:`~kontur.runtime.health.Health` (every block watched, triggers, recovery); refused
messages become violation records and triggers. An ``--inject-fault`` is armed and fired by
:class:`~kontur.runtime.faultinject.FaultInjector`. The site service's parts (the API block, the
operator desk, the published run state, periodic retention, a stop on request) are
:class:`~kontur.runtime.site.SiteServices` (ADR 0023). The split: ADR 0039.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kontur.archive import Archive, Signing, probe_witness
from kontur.archive.retention import RetentionPolicy, apply_retention
from kontur.clock import Clock, OffsetClock, SystemClock
from kontur.config import ArchiveConfig
from kontur.degrade import ClockJumpMonitor, DegradationMachine, ModelIntegrityMonitor, Watchdog
from kontur.degrade.machine import Trigger
from kontur.errors import KonturError
from kontur.gate.sinks import build_sinks, run_state_sinks
from kontur.placement.risk import Placement
from kontur.redact import redact, redact_url
from kontur.runtime.deadline import SourceDeadline
from kontur.runtime.drain import DrainWatch
from kontur.runtime.faultinject import FaultInjector
from kontur.runtime.faults import FAULTS
from kontur.runtime.health import Health
from kontur.runtime.incidents import IncidentDesk, SiteHooks
from kontur.runtime.inventory_watch import InventoryWatch
from kontur.runtime.kmsg import KernelResetMonitor, KmsgReader
from kontur.runtime.plan import (
    PlanContext,
    RunOptions,
    StartupPlan,
    build_plan,
    config_record,
    unsafe_warnings,
)
from kontur.runtime.publish import StatePublisher
from kontur.runtime.recorder import CameraStats, Recorder
from kontur.runtime.scratch import make_scratch
from kontur.runtime.site import STOP_GRACE_S, SiteServices
from kontur.runtime.supervisor import Supervisor, peak_rss_kb
from kontur.runtime.triggers import Triggers
from kontur.runtime.wiring import Wiring, build_wiring
from kontur.wire import ExportRequest, ProtocolViolation, WorkerReady
from kontur.wire.channel import Inbox, wait_readable
from kontur.wire.edges import Violation
from kontur.wire.framering import WORKER_READER
from kontur.wire.messages import IncidentRequest

__all__ = ["FAULTS", "BlockFailed", "Blocks", "Perimeter", "RunOptions", "archive_signing"]

log = logging.getLogger("kontur.perimeter")

T = TypeVar("T")


class BlockFailed(KonturError):
    """A block of the perimeter could not start (its log is in DATA_DIR/run/logs)."""


def archive_signing(cfg: ArchiveConfig) -> Signing:
    """The archive's checkpoint key, cadence and witness, from the ``archive:`` config."""
    return Signing(
        key_path=Path(cfg.key) if cfg.key else None,
        every_records=cfg.checkpoint_every_records,
        every_s=cfg.checkpoint_every_s,
        witness=Path(cfg.witness) if cfg.witness else None,
    )


def _set_up(value: T | None, what: str) -> T:
    """``value``, or AttributeError (so ``getattr(p, name, None)`` answers None) before
    :meth:`Perimeter.run` set it up."""
    if value is None:
        raise AttributeError(f"expected {what} (set up by Perimeter.run), got none yet")
    return value


@dataclass(frozen=True)
class Blocks:
    """What exists once the blocks are wired; built in one place
    (:meth:`Perimeter._build_supervision`)."""

    wiring: Wiring
    triggers: Triggers
    """The stack probe started by the plan: its monitor and simulated host keep working."""
    site: SiteServices
    recorder: Recorder
    health: Health
    feed_sinks: Callable[[], None]
    """Hands a run-state snapshot to the sinks that follow it (a no-op when none does)."""


class Perimeter:
    """Runs the perimeter once and returns the summary (README: "JSON summary")."""

    def __init__(self, opts: RunOptions, clock: Clock | None = None) -> None:
        self.opts = opts
        self.config = opts.config
        self.clock = OffsetClock(clock or SystemClock())
        self.data_dir = opts.data_dir
        self.stats: dict[str, CameraStats] = {}
        self.notes: list[str] = []
        self.faults = FaultInjector(opts.inject_fault)
        self.worker_ready_at: float | None = None
        self.isolation: dict[str, Any] | None = None
        """The worker's isolation as the supervisor measured it (the last start's)."""
        self.elapsed = 0.0
        self._ready_pids: set[int] = set()
        self._archive: Archive | None = None
        self._inventory: InventoryWatch | None = None
        self._supervisor: Supervisor | None = None
        self._plan: StartupPlan | None = None
        self._recorder: Recorder | None = None
        """The recorder as soon as it exists: signed checkpoints reach its sinks."""
        self._blocks: Blocks | None = None

    # ---- what run() sets up, once each -------------------------------------------------
    @property
    def archive(self) -> Archive:
        return _set_up(self._archive, "the run's archive")

    @property
    def inventory(self) -> InventoryWatch:
        return _set_up(self._inventory, "the run's inventory watch")

    @property
    def supervisor(self) -> Supervisor:
        return _set_up(self._supervisor, "the run's supervisor")

    @property
    def plan(self) -> StartupPlan:
        return _set_up(self._plan, "the start-up plan")

    @property
    def blocks(self) -> Blocks:
        return _set_up(self._blocks, "the wired blocks")

    @property
    def health(self) -> Health:
        return self.blocks.health

    # ---- the run -----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run the perimeter; returns the summary. Raises KonturError on bad input."""
        return self._in_archive(lambda: self._planned(self._run_planned))

    def place(self) -> Placement:
        """Plan the run as :meth:`run` would and start no block: the first camera's placement
        (``kontur placement explain``). The source is probed and the detector loaded and
        benched in the worker's sandbox, as for a run: this process decodes nothing."""
        return self._in_archive(lambda: self._planned(lambda _t, _s: self.plan.placements[0]))

    def _in_archive(self, body: Callable[[], T]) -> T:
        """Open the archive, apply retention, do ``body``; close the inventory and the archive
        whatever happened."""
        signing = archive_signing(self.config.archive)
        if signing.witness is not None:
            probe_witness(signing.witness)
        self._archive = Archive.open(
            self.data_dir,
            self.clock,
            signing=signing,
            on_checkpoint=self._on_checkpoint,
        )
        self._inventory = InventoryWatch(self.data_dir, self.clock, self._archive, self.notes)
        self._apply_retention()
        try:
            return body()
        finally:
            self._inventory.close()
            self._archive.close()

    def _planned(self, then: Callable[[Triggers, Path], T]) -> T:
        """Record the (redacted) config and its unsafe switches, build the start-up plan with
        the supervisor's sandbox, then ``then(triggers, scratch)``; the blocks' specs and the
        scratch directory are removed whatever happened."""
        config_sha256, cfg_json = config_record(self.config)
        self.archive.append("config", {"sha256": config_sha256, "config": cfg_json})
        for warning in unsafe_warnings(self.config):
            log.warning(warning)
            self.notes.append(warning)
        self._supervisor = Supervisor(self.data_dir / "run")
        scratch = make_scratch()
        try:
            ctx = PlanContext(
                self.opts, self.clock, self.archive, self._supervisor, scratch, self.inventory,
                self.notes,
            )  # fmt: skip
            self._plan, triggers = build_plan(ctx, config_sha256)
            return then(triggers, scratch)
        finally:
            self._supervisor.remove_specs()  # they hold camera and webhook credentials
            shutil.rmtree(scratch, ignore_errors=True)

    def _run_planned(self, triggers: Triggers, scratch: Path) -> dict[str, Any]:
        """Wire the plan's blocks, build their supervision, start, supervise, stop them."""
        plan = self.plan
        for cam in plan.cameras:
            self.stats[cam.config.id] = CameraStats(source=redact_url(cam.source))
        wiring = build_wiring(
            list(plan.cameras),
            self.config,
            self.data_dir,
            plan.worker_spec(),
            plan.model.model_bytes,
            self.opts.realtime,
            scratch,
        )
        self._blocks = self._build_supervision(wiring, triggers)
        started = time.monotonic()
        try:
            self._start_blocks(wiring)
            self._supervise(wiring)
            self._shutdown(wiring)
        finally:
            self._close(wiring)
        self.elapsed = time.monotonic() - started
        self.archive.flush()
        return self._summary()

    def _start_blocks(self, wiring: Wiring) -> None:
        """The consumers first; once they read every ring, the run manifest; then ingest."""
        consumers = [b for b in wiring.blocks if not b.name.startswith("ingest:")]
        self.supervisor.start(consumers)
        self._wait_readers_attached(wiring, timeout=120.0)
        self._archive_manifest()  # before any frame: every decision names it
        self.supervisor.start([b for b in wiring.blocks if b.name.startswith("ingest:")])
        for name in ("worker", "verifier"):
            self.health.watchdog.expect(name)

    def _close(self, wiring: Wiring) -> None:
        """Stop every block, keep the logs, close the site, the last run state and checkpoint
        to the sinks, then the recorder."""
        self.supervisor.stop_all(grace_s=2.0)
        self.supervisor.keep_logs()
        self.blocks.site.close()  # requests still waiting fail safe, archived, then to the sinks
        self.blocks.feed_sinks()  # the last run state, before the rings close
        wiring.close()
        self.archive.checkpoint()  # the last signed checkpoint still reaches the sinks
        self.blocks.recorder.close()

    def _apply_retention(self) -> None:
        """Remove expired segment bytes (each behind a tombstone) before this run records.

        The site service (``kontur run``) will also run it periodically; holds always win.
        """
        cfg = self.config.archive
        if cfg.retention_days is None and not cfg.retention_days_per_camera:
            return
        policy = RetentionPolicy(cfg.retention_days, cfg.retention_days_per_camera)
        report = apply_retention(self.archive, policy, self.clock.wall())
        if report.removed or report.missing or report.corrupt:
            self.notes.append(
                f"retention: {len(report.removed)} segment file(s) removed, "
                f"{report.kept_by_hold} kept by a legal hold, "
                f"{len(report.missing) + len(report.corrupt)} expired but not as recorded"
            )

    def _on_checkpoint(self, note: str) -> None:
        """A signed checkpoint goes to the sinks too: the webhook is a witness (ADR 0015)."""
        if self._recorder is not None:
            self._recorder.on_checkpoint(note)

    # ---- supervision -------------------------------------------------------------------
    def _progress(self, **kw: Any) -> None:
        if self.opts.progress is not None:
            self.opts.progress(kw)

    def _drain(self, wiring: Wiring, timeout: float) -> int:
        n = 0
        for inbox in wait_readable(list(wiring.inboxes.values()), timeout):
            for msg in inbox.drain():
                n += 1
                self._route(inbox, msg)
            self._take_violations(inbox)
        return n

    def _route(self, inbox: Inbox, msg: Any) -> None:
        """One message from ``inbox``: a block's own violation report, the API's requests
        (the desks'), else the recorder's (which may refuse it), then health's."""
        health, site = self.health, self.blocks.site
        if isinstance(msg, ProtocolViolation):  # a block reports its own inbox's
            health.on_violation(Violation(msg.sender, msg.receiver, msg.message_type, msg.detail))
            return
        if isinstance(msg, ExportRequest):  # the API's: the export desk's, not a record
            site.on_export(msg)
            return
        if isinstance(msg, IncidentRequest):  # the API's: the incident desk runs it
            site.on_incident(msg)
            return
        if isinstance(msg, WorkerReady) and not self._first_ready():
            why = "expected one worker_ready per worker start, got another"
            health.on_violation(Violation(inbox.name, "supervisor", msg.type, why))
            return
        refused = self.blocks.recorder.on_message(inbox.name, msg)
        if refused is not None:
            health.on_violation(refused)
            return
        health.on_message(msg)
        if isinstance(msg, WorkerReady):
            self._on_worker_ready(msg)

    def _first_ready(self) -> bool:
        """True for the first WorkerReady of the running worker process (once per start)."""
        pid = self.supervisor.running["worker"].proc.pid
        if pid in self._ready_pids:
            return False
        self._ready_pids.add(pid)
        return True

    def _take_violations(self, inbox: Inbox) -> None:
        for v in inbox.take_violations():
            self.health.on_violation(v)

    def _on_worker_ready(self, msg: WorkerReady) -> None:
        """Measure the worker's isolation from outside; its own report is only a claim."""
        from kontur.worker.sandbox import SandboxPolicy, measure

        if self.worker_ready_at is None:
            self.worker_ready_at = time.monotonic()
        running = self.supervisor.running["worker"]
        sb = running.block.spec["sandbox"]
        policy = SandboxPolicy.from_json(sb, default_scratch=Path(sb["scratch_dir"]))
        try:
            measured = measure(running.proc.pid, policy, claimed=msg.isolation)
            report = measured.to_json()
        except OSError as exc:  # the worker died between WorkerReady and the measurement
            report = {"level": "degraded", "missing": [f"measure: {exc}"], "source": "supervisor"}
        self.isolation = report
        self.archive.append("event", {"event": "isolation_measured", **report})
        if report.get("level") == "full":
            return
        missing = "; ".join(str(m) for m in report.get("missing", [])) or "unknown"
        note = f"worker isolation DEGRADED (measured by the supervisor): {missing}"
        if note not in self.notes:
            self.notes.append(note)
        self.health.raise_trigger(Trigger.ISOLATION_PARTIAL, note)

    def _inject(self) -> None:
        """Fire the run's fault (once); a note when there was nothing to fire it on."""
        note = self.faults.fire(
            model_file=self.plan.model.model_file(),
            clock=self.clock,
            supervisor=self.supervisor,
            host=self.blocks.triggers.host,
        )
        if note is not None:
            self.notes.append(note)

    def _supervise(self, wiring: Wiring) -> None:
        """Each turn: read every inbox, poll health, tick the site; stop on request or at the
        deadline (the sources first), fire a due fault; every 0.2 s the slower chores."""
        secs = self.opts.seconds
        deadline = SourceDeadline(secs, time.monotonic()) if secs else None
        last_progress = 0.0
        site = self.blocks.site
        while not (all(s.ended for s in self.stats.values()) and site.may_end()):
            self._drain(wiring, 0.05)
            self.health.poll()
            now = time.monotonic()
            site.tick(now)
            stop = site.stop_now(now)
            if site.stop_overdue(now):
                log.warning("sources still running %.0f s after the stop", STOP_GRACE_S)
                break
            if self.faults.due(now, self.worker_ready_at):
                self._inject()
            if stop or (deadline is not None and deadline.due(now, self._flowing(wiring))):
                for name in self.supervisor.order:
                    if name.startswith("ingest:"):
                        self.supervisor.signal_stop(name)
                deadline = None
            if now - last_progress > 0.2:
                last_progress = now
                self._chores(wiring)

    @staticmethod
    def _flowing(wiring: Wiring) -> bool:
        """Whether any camera has published a frame (a timed run's seconds then count)."""
        return any(r.published >= 0 for r in wiring.rings.values())

    def _chores(self, wiring: Wiring) -> None:
        """Memory, revocations made while we run, the archive flushed, run state, progress."""
        self.supervisor.sample_memory()
        # a `kontur camera revoke` made while we run: ingest acts on it at the camera's next
        # GOP; the archive records it here, and from then on ingest holds it even if the
        # inventory is edited to forget it (ADR 0021)
        if self.inventory.record():
            self.inventory.sync(wiring.to_ingest)
        self.inventory.check(self.stats)
        self.archive.flush()
        self.blocks.feed_sinks()
        self._progress(
            frames=sum(r.published + 1 for r in wiring.rings.values()),
            state=self.health.machine.state.value,
        )

    def _wait_readers_attached(self, wiring: Wiring, timeout: float) -> None:
        """Ingest starts only once the worker and the verifier read every ring.

        Otherwise a fast file source could be over before a cold worker has imported its
        runtime, and nothing would be analysed (recording itself never waits for this).
        """
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self._drain(wiring, 0.05)
            if all(r.reader_heartbeat(i) > 0 for r in wiring.rings.values() for i in range(2)):
                return
            for name, rc in self.supervisor.exited():
                raise BlockFailed(f"{name}: expected it to start, it exited with code {rc}")
        raise BlockFailed(f"worker/verifier: expected them to attach within {timeout:.0f} s")

    def _wait_drained(self, wiring: Wiring) -> None:
        """Let the worker and verifier finish the frames already published, while the worker
        makes progress (:class:`~kontur.runtime.drain.DrainWatch`)."""
        watch = DrainWatch(time.monotonic())
        while True:
            acked = tuple(r.reader_consumed(WORKER_READER) for r in wiring.rings.values())
            self._drain(wiring, 0.05)
            self.health.poll()
            worker = self.supervisor.running["worker"].proc
            lag = [r.published - a for r, a in zip(wiring.rings.values(), acked, strict=True)]
            if all(x <= 0 for x in lag) or worker.poll() is not None:
                return
            if not watch.waiting(time.monotonic(), acked):
                return

    def _shutdown(self, wiring: Wiring) -> None:
        self._wait_drained(wiring)
        for name in self.supervisor.order:
            self.health.watchdog.forget(name)
        for name in reversed(self.supervisor.order):
            self.supervisor.stop(name, grace_s=10.0)
            # what a block sent before it stopped is archived before the next one stops; it
            # has exited, so all of it is in the pipe already: nothing to wait for (ADR 0059)
            while self._drain(wiring, 0.0):
                pass

    def _archive_manifest(self) -> None:
        """The run manifest (issue 15 §3, :mod:`kontur.runtime.manifest`, ADR 0035)."""
        from kontur.runmanifest import Release
        from kontur.runtime.manifest import archive_run_manifest

        plan = self.plan
        model_id, runtime = plan.release_names()
        digest = plan.model.prepared.release.digest if plan.model.prepared is not None else None
        release = Release(model_id=model_id or "", digest=digest, runtime=runtime or "")
        worker = self.supervisor.running["worker"]
        found = archive_run_manifest(
            self.archive, worker, release, plan.config_sha256, self.config.placement.allowlist
        )
        self.blocks.recorder.manifest_sha256 = found.digest
        if found.unapproved:
            note = "run manifest: " + "; ".join(found.unapproved)
            self.notes.append(note)
            self.health.raise_trigger(Trigger.DRIVER_UNAPPROVED, note)

    # ---- what supervises the blocks ----------------------------------------------------
    def _build_supervision(self, wiring: Wiring, triggers: Triggers) -> Blocks:
        """The site's parts (the API's row, the operator desk: ADR 0023), the recorder, health,
        the site attached to them, the incident desk, then the run-state feed."""
        try:
            site = SiteServices(
                self.config,
                self.data_dir,
                self.clock,
                wiring,
                forever=self.opts.forever,
                stop=self.opts.stop,
                retention=self._apply_retention,
                query_model=self.plan.query_model,
            )
        except BaseException:  # e.g. the API's port is taken: no ring is left behind
            wiring.close()
            raise
        recorder = self._recorder = Recorder(
            self.archive, self.stats, build_sinks(self.config.sinks, self.data_dir), site.desk
        )
        health = self._build_health(wiring, triggers, recorder)
        site.attach(
            recorder,
            stats=self.stats,
            supervisor=self.supervisor,
            machine=health.machine,
            archive=self.archive,
            wiring=wiring,
            release=self.plan.release_names,
        )
        site.incidents = self._incident_desk(wiring, health, site)
        feed = self._run_state_feed(wiring, site, recorder, health.machine)
        return Blocks(wiring, triggers, site, recorder, health, feed)

    def _incident_desk(self, wiring: Wiring, health: Health, site: SiteServices) -> IncidentDesk:
        """The incident playbooks' desk (ADR 0029), with what only the perimeter can do: a
        revocation reaches the camera's ingest at once, the worker moves by health's path."""
        hooks = SiteHooks(
            revoke=lambda camera, reason: self.inventory.revoke(camera, reason, wiring.to_ingest),
            worker_platform=lambda: self.supervisor.running["worker"].block.platform,
            cpu_allowed=lambda: self.plan.fallback_platform() == "cpu",
            move_to_cpu=health.move_worker_to_cpu,
            exports=site.exports,
            witness=archive_signing(self.config.archive).witness,
        )
        return IncidentDesk(self.archive, self.data_dir, self.clock, hooks)

    def _run_state_feed(
        self,
        wiring: Wiring,
        site: SiteServices,
        recorder: Recorder,
        machine: DegradationMachine,
    ) -> Callable[[], None]:
        """A call that hands a run-state snapshot to the sinks that follow it (MQTT's state,
        pending and stats, ADR 0026); a no-op when none does. Never fatal to recording."""
        takers = run_state_sinks(recorder.sinks)
        if not takers:
            return lambda: None
        publisher = site.publisher or StatePublisher(
            self.data_dir, self.config.site, self.clock.wall(), stats=self.stats,
            supervisor=self.supervisor, machine=machine, archive=self.archive,
            desk=site.desk, rings=wiring.rings, release=self.plan.release_names,
        )  # fmt: skip

        def feed() -> None:
            try:
                snapshot = publisher.snapshot(self.clock.wall())
            except Exception as exc:  # monitoring only: the archive already has everything
                log.warning("run state for the sinks: expected a snapshot, got %s", exc)
                return
            for sink in takers:
                sink.on_run_state(snapshot)

        return feed

    def _build_health(self, wiring: Wiring, triggers: Triggers, recorder: Recorder) -> Health:
        """The degradation machine, the watchdog and the monitors (clock jumps, the installed
        model's files, the inference stack, the kernel's accelerator resets), then health."""
        dc = self.config.degradation
        machine = DegradationMachine(dc, self.clock)
        watchdog = Watchdog(self.clock, dc.watchdog_timeout_s)
        monitors: list[Any] = [ClockJumpMonitor(self.clock, dc.clock_jump_threshold_s)]
        prepared = self.plan.model.prepared
        if prepared is not None:
            for fname, sha in sorted(prepared.installed_files.items()):
                path = prepared.installed_dir / fname
                monitors.append(
                    ModelIntegrityMonitor(
                        path,
                        sha,
                        self.clock,
                        dc.model_check_interval_s,
                        rehash_s=dc.model_rehash_interval_s,
                    )
                )
        platform = lambda: self.supervisor.running["worker"].block.platform  # noqa: E731
        monitors.append(triggers.monitor(platform, self.clock))
        # a reset the kernel reports is a trigger even before the worker's EP fails (ADR 0034)
        kmsg = KmsgReader()
        if kmsg.unavailable:  # e.g. the service unit's ProtectKernelLogs (ADR 0036)
            self.notes.append(
                f"kernel log unavailable ({kmsg.unavailable}): accelerator resets are seen "
                "by the worker's EP failure only"
            )
        monitors.append(KernelResetMonitor(kmsg, self.clock, 1.0, platform))

        def drain_all() -> None:
            while self._drain(wiring, 0.0):
                pass

        return Health(
            self.config, machine, watchdog, monitors, self.supervisor, wiring, self.archive,
            recorder, self.stats, self.plan.fallback_platform,
            progress=self.opts.progress, drain_all=drain_all,
        )  # fmt: skip

    # ---- the summary -------------------------------------------------------------------
    def _summary(self) -> dict[str, Any]:
        """The run's JSON summary (README: "JSON summary"), redacted."""
        plan, blocks, machine = self.plan, self.blocks, self.health.machine
        cams = [  # each camera with its effective state (ADR 0040)
            {**st.to_summary(cam_id), "state": machine.camera_state(cam_id).value}
            for cam_id, st in self.stats.items()
        ]
        frames = sum(c["frames"] for c in cams)
        summary: dict[str, Any] = {
            "cameras": cams,
            "placement": [p.to_summary() for p in plan.placements],
            "degradation": _degradation_summary(machine),
            "archive": {
                "path": str(self.data_dir),
                "records": self.archive.records,
                "head": self.archive.head,
                "verifier_key": str(self.archive.verifier_key),
            },
            "processes": [_supervisor_row(), *self.supervisor.table()],
            "detector": self._detector_summary(),
            "sinks": blocks.recorder.sink_stats(),
            "violations": blocks.recorder.violations,
            **({"api": api} if (api := blocks.site.summary()) is not None else {}),
            "fault": self.opts.inject_fault,
            "stack": {k: plan.stack[k] for k in ("runtime", "verdicts")},
            "elapsed_s": round(self.elapsed, 3),
            "fps": round(frames / self.elapsed, 2) if self.elapsed > 0 else 0.0,
            "notes": self._notes(),
        }
        redacted: dict[str, Any] = redact(summary)  # notes and errors may quote a URL
        # a public key to pin, not a credential (its name only looks like one to redact)
        redacted["archive"]["verifier_key"] = str(self.archive.verifier_key)
        return redacted

    def _notes(self) -> list[str]:
        """The run's notes, and the witness's failure if it had one (recording never waits
        on the witness: it is said here, and ``archive verify --witness`` shows the gap)."""
        failed = self.archive.witness_error
        if failed is None:
            return self.notes
        return [*self.notes, f"archive: a checkpoint was not witnessed: {failed}"]

    def _detector_summary(self) -> dict[str, Any]:
        model = self.plan.model
        return {
            "release": model.prepared.to_summary() if model.prepared is not None else None,
            "name": model.detector_name,
            "model_id": model.model_id,
            "fallback": model.detector_name == "hog-fallback",
            "isolation": self.isolation,
        }


def _degradation_summary(machine: DegradationMachine) -> dict[str, Any]:
    """The machine's state (the most severe of the site's and every camera's, ADR 0040), the
    site's own, and every transition it made, oldest first (a camera's names its camera)."""
    return {
        "state": machine.state.value,
        "site_state": machine.site_state.value,
        "transitions": [
            {
                "at": t.at,
                "from": t.from_state.value,
                "to": t.to_state.value,
                "trigger": t.trigger,
                "detail": t.detail,
                **({} if t.camera is None else {"camera": t.camera}),
            }
            for t in machine.transitions
        ],
    }


def _supervisor_row() -> dict[str, Any]:
    """The supervisor's own row of the summary's process table."""
    return {
        "name": "supervisor",
        "pid": os.getpid(),
        "pids": [os.getpid()],
        "platform": "cpu",
        "restarts": 0,
        "peak_rss_mb": round(peak_rss_kb() / 1024, 1),
    }
