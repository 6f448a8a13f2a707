"""One run of the whole perimeter on this machine (``kontur demo``, ``kontur run``).

Order of steps: open the archive and record the configuration; verify, install and record
the model release; probe every source and bench the platforms the release allows, both in the
worker's sandbox (:mod:`kontur.runtime.prepare`: the supervisor decodes nothing and loads no
inference runtime); enrol each camera's profile; place the analytics task (dispatcher); start
the process tree; supervise it until the sources end or time runs out; stop the blocks in
reverse order; summarise.

Supervising is three parts, each its own module: every message that passes its inbox's edge
(:mod:`kontur.wire.edges`) goes to the :class:`~kontur.runtime.recorder.Recorder` (one archive
record per kind; decisions committed before the sinks fire) and to
:class:`~kontur.runtime.health.Health` (every block watched, triggers, recovery); refused
messages become violation records and triggers. Faults are injected by
:mod:`kontur.runtime.faults`. The site service's parts (the API block, the operator desk, the
published run state, periodic retention, a stop on request) are
:class:`~kontur.runtime.site.SiteServices` (ADR 0023).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kontur.archive import Archive, Signing
from kontur.archive.retention import RetentionPolicy, apply_retention
from kontur.clock import Clock, OffsetClock, SystemClock
from kontur.config import ArchiveConfig, CameraConfig, Config
from kontur.degrade import ClockJumpMonitor, DegradationMachine, ModelIntegrityMonitor, Watchdog
from kontur.degrade.machine import Trigger
from kontur.errors import ConfigError, KonturError
from kontur.gate.sinks import build_sinks, run_state_sinks
from kontur.ingest.democam import demo_signable, provision_demo_camera
from kontur.ingest.inventory import INVENTORY_DB, Inventory
from kontur.ingest.revocation import Revocations, scan
from kontur.ingest.source import default_source
from kontur.placement import choose, load_catalogue
from kontur.placement.risk import Placement
from kontur.redact import redact, redact_url
from kontur.release.signing import Trust
from kontur.runtime.apiblock import QueryModel
from kontur.runtime.faults import FAULT_DELAY_S, FAULTS, inject, worker_fault_spec
from kontur.runtime.health import Health
from kontur.runtime.incidents import IncidentDesk, SiteHooks
from kontur.runtime.kmsg import KernelResetMonitor, KmsgReader
from kontur.runtime.models import (
    PreparedRelease,
    audit_policy,
    format_from_output_shape,
    prepare_release,
)
from kontur.runtime.prepare import Prepared, PrepareFailed, output_shape, prepare_sources
from kontur.runtime.publish import StatePublisher
from kontur.runtime.recorder import CameraStats, Recorder
from kontur.runtime.scratch import make_scratch
from kontur.runtime.site import STOP_GRACE_S, SiteServices
from kontur.runtime.supervisor import Supervisor, peak_rss_kb
from kontur.runtime.triggers import Triggers
from kontur.runtime.wiring import CameraPlan, Wiring, build_wiring
from kontur.wire import ControlMessage, ExportRequest, ProtocolViolation, WorkerReady
from kontur.wire.channel import Inbox, wait_readable
from kontur.wire.edges import Violation
from kontur.wire.framering import WORKER_READER
from kontur.wire.messages import IncidentRequest

__all__ = ["FAULTS", "BlockFailed", "Perimeter", "RunOptions"]

log = logging.getLogger("kontur.perimeter")


class BlockFailed(KonturError):
    """A block of the perimeter could not start (its log is in DATA_DIR/run/logs)."""


@dataclass
class RunOptions:
    """What ``kontur demo`` was asked to do."""

    config: Config
    data_dir: Path
    source: str | None = None
    model: Path | None = None
    model_format: str | None = None
    release: Path | None = None
    trust: Trust | None = None
    seconds: float | None = None
    inject_fault: str | None = None
    realtime: bool = False
    sign: bool = True
    """Sign an unsigned local H.264/H.265 clip on the fly with a simulated demo camera."""
    progress: Callable[[dict[str, Any]], None] | None = None
    forever: bool = False
    """Run until ``stop()`` says so (``kontur run``), not until the sources end."""
    stop: Callable[[], bool] | None = None
    """Asked every loop turn; True: stop the sources, then the blocks, cleanly."""


def archive_signing(cfg: ArchiveConfig) -> Signing:
    """The archive's checkpoint key, cadence and witness, from the ``archive:`` config."""
    return Signing(
        key_path=Path(cfg.key) if cfg.key else None,
        every_records=cfg.checkpoint_every_records,
        every_s=cfg.checkpoint_every_s,
        witness=Path(cfg.witness) if cfg.witness else None,
    )


class Perimeter:
    """Runs the perimeter once and returns the summary (README: "JSON summary")."""

    def __init__(self, opts: RunOptions, clock: Clock | None = None) -> None:
        self.opts = opts
        self.config = opts.config
        self.clock = OffsetClock(clock or SystemClock())
        self.data_dir = opts.data_dir
        self.stats: dict[str, CameraStats] = {}
        self.placements: list[Placement] = []
        self.faults_fired: list[str] = []
        self.notes: list[str] = []
        self.worker_ready_at: float | None = None
        self.isolation: dict[str, Any] | None = None
        self._inventory: Inventory | None = None
        self._ready_pids: set[int] = set()
        self.revocations = Revocations()
        """The archive's revocations: the authority over the inventory (ADR 0021)."""
        self._revocations_scanned = 0
        self._tampered: set[str] = set()
        self.config_sha256 = ""
        """SHA-256 of the run's redacted config (its ``config`` record), set at start."""

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
        recorder = getattr(self, "recorder", None)
        if recorder is not None:
            recorder.on_checkpoint(note)

    # ---- preparation -------------------------------------------------------------------
    def _cameras(self) -> list[CameraConfig]:
        cams = list(self.config.cameras)
        if self.opts.source is not None:
            cams = [cams[0].model_copy(update={"source": self.opts.source})]
        return [c.model_copy(update={"source": c.source or default_source()}) for c in cams]

    def _strict(self, cam: CameraConfig) -> bool:
        """Strict (verify before decode): configured critical, or enrolled critical."""
        if self._inventory is None:
            self._inventory = Inventory.open(self.data_dir, self.clock)
        enrolled = self._inventory.camera(cam.id)
        return cam.critical or (enrolled is not None and enrolled.critical)

    def _prepare_sources(self, worker: dict[str, Any], model_bytes: bytes | None) -> Prepared:
        """Probe and bench in the worker's sandbox: the supervisor decodes nothing."""
        cams = self._cameras()
        signed: list[str] | None = None
        if self.prepared is not None:
            signed = [str(p) for p in self.prepared.release.manifest.manifest.platforms]
        allowed = self.triggers.allowed(signed)  # approved stacks only (issue 13 §3)
        if self.prepared is not None and not allowed:
            raise PrepareFailed(
                f"release {self.prepared.model_id}: expected one of the platforms this "
                f"machine has and approves (placement.allowlist), got a release for {signed}",
                exit_code=1,
            )
        return prepare_sources(
            self.supervisor,
            self.config,
            self.data_dir,
            self.scratch,
            worker,
            model_bytes,
            {c.id: str(c.source) for c in cams},
            {c.id: self._strict(c) for c in cams},
            allowed,
        )

    def _plan_cameras(self, prepared: Prepared) -> list[CameraPlan]:
        plans = []
        for cam in self._cameras():
            source = str(cam.source)
            profile = cam.profile or prepared.profiles[cam.id]
            if cam.profile is None:
                self.archive.append(
                    "event",
                    {
                        "event": "profile_enrolled",
                        "camera_id": cam.id,
                        "profile": profile.model_dump(),
                        "basis": "stream header (trust on first use)",
                    },
                )
            plan = CameraPlan(config=cam, source=source, profile=profile)
            if self.opts.sign and demo_signable(source, prepared.profiles[cam.id].codec):
                files = provision_demo_camera(self.data_dir, cam.id, self.clock)
                plan.demo_camera = {"key": str(files.key_path), "chain": str(files.chain_path)}
                self._record_inventory()
                if not files.created:
                    self.notes.append(
                        f"{cam.id}: the demo camera of an earlier run in {self.data_dir} signs "
                        "the clip again: footage this data dir has seen is REPLAYED (replay "
                        "detection at work); use a new --data-dir for a clean run"
                    )
                self.notes.append(
                    f"{cam.id}: the unsigned clip is signed on the fly by a simulated camera "
                    f"with a throwaway demo key enrolled in {self.data_dir} (real cameras sign "
                    "their own stream: enrol them with `kontur camera enroll`; --no-sign keeps "
                    "the clip unsigned)"
                )
            plans.append(plan)
            self.stats[cam.id] = CameraStats(source=redact_url(source))
        self._record_inventory()
        self.revocations = self._scan_revocations()
        for plan in plans:
            plan.revocations = self.revocations.to_json()
        self._check_inventory()
        return plans

    def _record_inventory(self) -> int:
        """Archive the inventory changes (enrolments, revocations) not archived yet."""
        if self._inventory is None:
            self._inventory = Inventory.open(self.data_dir, self.clock)
        return self._inventory.drain_to_archive(self.archive)

    def _scan_revocations(self) -> Revocations:
        """The revocations in the archive's camera records not scanned yet (ADR 0021)."""
        size = self.archive.records
        records = self.archive.iter_records(self._revocations_scanned, kind="camera")
        found = scan(r for r in records if r.index < size)
        self._revocations_scanned = size
        return found

    def _sync_revocations(self, wiring: Wiring) -> None:
        """A revocation archived during the run reaches its camera's ingest, which then holds
        it whatever ``inventory.sqlite`` says later."""
        for cam_id, r in self._scan_revocations().cameras.items():
            if cam_id in self.revocations.cameras:
                continue
            self.revocations = self.revocations.with_revoked(r)
            out = wiring.to_ingest.get(cam_id)
            if out is not None:
                out.send(
                    ControlMessage(
                        command="revoke", camera_id=cam_id, value=r.index, detail=r.reason
                    )
                )

    def _check_inventory(self) -> None:
        """A camera the archive revoked and the inventory does not: the inventory was edited.

        Archived once per camera as an ``inventory_tampered`` event, logged and noted; ingest
        holds the camera revoked anyway (the archive is the authority, ADR 0021).
        """
        assert self._inventory is not None
        ids = {*self.revocations.cameras, *self.stats}
        seen = {i: self._inventory.camera(i) for i in ids}
        for cam_id, r in self.revocations.disagreements(seen):
            if cam_id in self._tampered:
                continue
            self._tampered.add(cam_id)
            detail = (
                f"{r.describe()}; expected {INVENTORY_DB} to show it, got no revocation there "
                "(the archive is the authority: its GOPs are REVOKED)"
            )
            log.warning("inventory tampered: %s", detail)
            self.notes.append(f"inventory tampered: {detail}")
            self.archive.append(
                "event",
                {"event": "inventory_tampered", "camera_id": cam_id, "archive_index": r.index,
                 "detail": detail},
            )  # fmt: skip

    def _prepare_model(self) -> tuple[dict[str, Any], bytes | None]:
        if self.opts.model is None and self.opts.release is None:
            self.detector_name = "hog-fallback"
            self.model_id = "builtin:opencv-hog"
            self.prepared: PreparedRelease | None = None
            self.archive.append(
                "model",
                {
                    "detector": "hog-fallback",
                    "model_id": self.model_id,
                    "note": "built-in fallback: no model given",
                },
            )
            return {"detector": "hog"}, None
        prepared = prepare_release(
            data_dir=self.data_dir,
            clock=self.clock,
            release_dir=self.opts.release,
            trust=self.opts.trust,
            model=self.opts.model,
            model_format=self.opts.model_format,
            guess=self._guess_format,
            release_names=self.config.release.names,
            audit_policy=audit_policy(self.config.release.audit),
        )
        self.prepared = prepared
        m = prepared.release.manifest.manifest
        if m.robustness_audit is None:
            self.notes.append(
                f"release {m.name}@{m.version} carries no robustness audit "
                "(release.audit.required is off; see kontur model audit)"
            )
        self._check_critical_classes(prepared)
        self.detector_name = f"{m.output_format}-{m.files.runtime}"
        self.model_id = prepared.model_id
        if prepared.throwaway:
            self.notes.append(
                f"--model {self.opts.model}: signed a throwaway release {prepared.model_id} "
                "with a fresh demo key (not for production: sign real releases with "
                "`kontur model release`)"
            )
        self.archive.append("model", {"detector": self.detector_name, **prepared.to_summary()})
        return prepared.worker_spec()

    def _guess_format(self, model: Path) -> str:
        """A bare model's format from its output shape, read in the sandbox."""
        shape = output_shape(self.supervisor, self.config, self.data_dir, self.scratch, model)
        return format_from_output_shape(model, shape)

    def _check_critical_classes(self, prepared: PreparedRelease) -> None:
        """A critical action may only be driven by classes the release signs as fit for it."""
        allowed = prepared.release.manifest.manifest.critical_classes
        for pol in self.config.policies:
            action = self.config.actions.get(pol.action)
            if action is None or not action.critical:
                continue
            bad = sorted(set(pol.when.classes) - set(allowed))
            if bad:
                raise ConfigError(
                    f"policy {pol.rule}: classes driving critical action {pol.action} must be "
                    f"among release {prepared.model_id}'s critical classes {list(allowed)}, "
                    f"got {bad}"
                )

    def _place(self, plans: list[CameraPlan], prepared: Prepared) -> str:
        pc = self.config.placement
        catalogue = load_catalogue(Path(pc.catalogue) if pc.catalogue else None)
        for plan in plans:
            pl = choose(
                f"detect-track:{plan.config.id}",
                "detect-track",
                prepared.measurements,
                catalogue,
                pc.sla,
                pc.tie_margin,
            )
            self.placements.append(pl)
            self.archive.append("placement", pl.to_summary())
        return self.placements[0].platform

    # ---- supervision -------------------------------------------------------------------
    def _progress(self, **kw: Any) -> None:
        if self.opts.progress is not None:
            self.opts.progress(kw)

    def _drain(self, wiring: Wiring, timeout: float) -> int:
        n = 0
        for inbox in wait_readable(list(wiring.inboxes.values()), timeout):
            for msg in inbox.drain():
                n += 1
                if isinstance(msg, ProtocolViolation):  # a block reports its own inbox's
                    self.health.on_violation(
                        Violation(msg.sender, msg.receiver, msg.message_type, msg.detail)
                    )
                    continue
                if isinstance(msg, ExportRequest):  # the API's: the export desk's, not a record
                    self.site.on_export(msg)
                    continue
                if isinstance(msg, IncidentRequest):  # the API's: the incident desk runs it
                    self.site.on_incident(msg)
                    continue
                if isinstance(msg, WorkerReady) and not self._first_ready():
                    why = "expected one worker_ready per worker start, got another"
                    self.health.on_violation(Violation(inbox.name, "supervisor", msg.type, why))
                    continue
                refused = self.recorder.on_message(inbox.name, msg)
                if refused is not None:
                    self.health.on_violation(refused)
                    continue
                self.health.on_message(msg)
                if isinstance(msg, WorkerReady):
                    self._on_worker_ready(msg)
            self._take_violations(inbox)
        return n

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
        fault = self.opts.inject_fault or ""
        self.faults_fired.append(fault)
        model_file = None
        if self.prepared is not None:
            files = self.prepared.release.manifest.manifest.files
            model_file = self.prepared.installed_dir / files.model
        note = inject(
            fault,
            model_file=model_file,
            clock=self.clock,
            supervisor=self.supervisor,
            host=self.triggers.host,
        )
        if note is not None:
            self.notes.append(note)

    def _fallback(self) -> str:
        """Where a crashed worker restarts: the CPU, unless the release forbids it."""
        if self.prepared is None or "cpu" in self.prepared.release.manifest.manifest.platforms:
            return "cpu"
        return self.placements[0].platform

    def _supervise(self, wiring: Wiring) -> None:
        deadline = time.monotonic() + self.opts.seconds if self.opts.seconds else None
        last_progress = 0.0
        while not (all(s.ended for s in self.stats.values()) and self.site.may_end()):
            self._drain(wiring, 0.05)
            self.health.poll()
            now = time.monotonic()
            self.site.tick(now)
            if self.site.stop_now(now):
                deadline = now
            if self.site.stop_overdue(now):
                log.warning("sources still running %.0f s after the stop", STOP_GRACE_S)
                break
            if (
                self.opts.inject_fault
                and not self.faults_fired
                and self.worker_ready_at
                and now - self.worker_ready_at >= FAULT_DELAY_S
            ):
                self._inject()
            if deadline is not None and now >= deadline:
                for name in self.supervisor.order:
                    if name.startswith("ingest:"):
                        self.supervisor.signal_stop(name)
                deadline = None
            if now - last_progress > 0.2:
                last_progress = now
                self.supervisor.sample_memory()
                # a `kontur camera revoke` made while we run: ingest acts on it at the
                # camera's next GOP; the archive records it here, and from then on ingest
                # holds it even if the inventory is edited to forget it (ADR 0021)
                if self._record_inventory():
                    self._sync_revocations(wiring)
                self._check_inventory()
                self.archive.flush()
                self.feed_sinks()
                self._progress(
                    frames=sum(r.published + 1 for r in wiring.rings.values()),
                    state=self.machine.state.value,
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

    def _wait_drained(self, wiring: Wiring, timeout: float) -> None:
        """Let the worker and verifier finish the frames already published."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            lag = [r.published - r.reader_consumed(WORKER_READER) for r in wiring.rings.values()]
            self._drain(wiring, 0.05)
            self.health.poll()
            if (
                all(x <= 0 for x in lag)
                or self.supervisor.running["worker"].proc.poll() is not None
            ):
                break

    def _shutdown(self, wiring: Wiring) -> None:
        self._wait_drained(wiring, 60.0)
        for name in self.supervisor.order:
            self.watchdog.forget(name)
        for name in reversed(self.supervisor.order):
            self.supervisor.stop(name, grace_s=10.0)
            # what a block sent before it stopped is archived before the next one stops
            while self._drain(wiring, 0.1):
                pass
        self._drain(wiring, 0.1)

    # ---- the run -----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run the perimeter; returns the summary. Raises KonturError on bad input."""
        self.archive = Archive.open(
            self.data_dir,
            self.clock,
            signing=archive_signing(self.config.archive),
            on_checkpoint=self._on_checkpoint,
        )
        self._apply_retention()
        try:
            return self._run()
        finally:
            if self._inventory is not None:
                self._inventory.close()
            self.archive.close()

    def _run(self) -> dict[str, Any]:
        # credentials never reach the archive, not even hashed: a hash of a config with a
        # short password is a dictionary attack away from it (ADR 0019)
        cfg_json = redact(self.config.model_dump(mode="json"))
        self.config_sha256 = hashlib.sha256(repr(cfg_json).encode()).hexdigest()
        self.archive.append("config", {"sha256": self.config_sha256, "config": cfg_json})
        unsafe = {
            "worker.sandbox.unsafe_allow_partial_isolation is on: the untrusted worker may run "
            "in a partial sandbox (critical actions stay restricted if so)": (
                self.config.worker.sandbox.unsafe_allow_partial_isolation
            ),
            "ingest.decoder.unsafe_in_process is on: each camera's video is decoded inside its "
            "ingest, outside any sandbox (a decoder exploit owns ingest)": (
                self.config.ingest.decoder.unsafe_in_process
            ),
        }
        for warning in (f"UNSAFE: {text}" for text, on in unsafe.items() if on):
            log.warning(warning)
            self.notes.append(warning)
        self.supervisor = Supervisor(self.data_dir / "run")
        self.scratch = make_scratch()
        try:
            worker, model_bytes = self._prepare_model()
            return self._run_prepared(worker, model_bytes)
        finally:
            self.supervisor.remove_specs()  # they hold camera and webhook credentials
            shutil.rmtree(self.scratch, ignore_errors=True)

    def _run_prepared(self, worker: dict[str, Any], model_bytes: bytes | None) -> dict[str, Any]:
        self._start_triggers()
        self.query_model = self._query_model(worker, model_bytes)
        prepared = self._prepare_sources(worker, model_bytes)
        self.plans = self._plan_cameras(prepared)
        platform = self._place(self.plans, prepared)
        if (placed := self.triggers.place(platform)) != platform:  # a simulated accelerator
            self.archive.append("event", self.triggers.simulated_event(platform))
            self.notes.append(f"{self.opts.inject_fault}: the task runs on a simulated {placed}")
            platform, worker["simulated_accelerator"] = placed, self.triggers.worker_spec()
        worker.update(
            platform=platform,
            config_id="sha256:" + self.config_sha256[:16],
        )
        if (fault := worker_fault_spec(self.opts.inject_fault, self.config)) is not None:
            worker["fault"] = fault  # the simulated compromised worker (ADR 0025)
        self.plans[0].tamper_fault = self.opts.inject_fault  # tamper-… faults only (ADR 0030)
        wiring = build_wiring(
            self.plans,
            self.config,
            self.data_dir,
            worker,
            model_bytes,
            self.opts.realtime,
            self.scratch,
        )
        self._build_supervision(wiring)
        started = time.monotonic()
        try:
            consumers = [b for b in wiring.blocks if not b.name.startswith("ingest:")]
            self.supervisor.start(consumers)
            self._wait_readers_attached(wiring, timeout=120.0)
            self._archive_manifest()  # before any frame: every decision names it
            self.supervisor.start([b for b in wiring.blocks if b.name.startswith("ingest:")])
            for name in ("worker", "verifier"):
                self.watchdog.expect(name)
            self._supervise(wiring)
            self._shutdown(wiring)
        finally:
            self.supervisor.stop_all(grace_s=2.0)
            self.supervisor.keep_logs()
            self.site.close()  # requests still waiting fail safe, archived, then to the sinks
            self.feed_sinks()  # the last run state, before the rings close
            wiring.close()
            self.archive.checkpoint()  # the last signed checkpoint still reaches the sinks
            self.recorder.close()
        self.elapsed = time.monotonic() - started
        self.archive.flush()
        return self._summary()

    def _archive_manifest(self) -> None:
        """The run manifest (issue 15 §3, :mod:`kontur.runtime.manifest`, ADR 0035)."""
        from kontur.runmanifest import Release
        from kontur.runtime.manifest import archive_run_manifest

        model_id, runtime = self._release_names()
        digest = self.prepared.release.digest if self.prepared is not None else None
        release = Release(model_id=model_id or "", digest=digest, runtime=runtime or "")
        worker = self.supervisor.running["worker"]
        found = archive_run_manifest(
            self.archive, worker, release, self.config_sha256, self.config.placement.allowlist
        )
        self.recorder.manifest_sha256 = found.digest
        if found.unapproved:
            note = "run manifest: " + "; ".join(found.unapproved)
            self.notes.append(note)
            self.health.raise_trigger(Trigger.DRIVER_UNAPPROVED, note)

    def _build_supervision(self, wiring: Wiring) -> None:
        """The site's parts (the API's row, the operator desk: ADR 0023), the recorder, health,
        then the run-state publisher."""
        try:
            self.site = SiteServices(
                self.config,
                self.data_dir,
                self.clock,
                wiring,
                forever=self.opts.forever,
                stop=self.opts.stop,
                retention=self._apply_retention,
                query_model=self.query_model,
            )
        except BaseException:  # e.g. the API's port is taken: no ring is left behind
            wiring.close()
            raise
        self.recorder = Recorder(
            self.archive, self.stats, build_sinks(self.config.sinks, self.data_dir), self.site.desk
        )
        self.health = self._build_health(wiring)
        self.site.attach(
            self.recorder,
            stats=self.stats,
            supervisor=self.supervisor,
            machine=self.machine,
            archive=self.archive,
            wiring=wiring,
            release=self._release_names,
        )
        self.site.incidents = self._incident_desk(wiring)
        self.feed_sinks = self._run_state_feed(wiring)

    def _incident_desk(self, wiring: Wiring) -> IncidentDesk:
        """The incident playbooks' desk (ADR 0029), with what only the perimeter can do: a
        revocation reaches the camera's ingest at once, the worker moves by health's path."""

        def revoke(camera: str, reason: str) -> None:
            if self._inventory is None:
                self._inventory = Inventory.open(self.data_dir, self.clock)
            self._inventory.revoke(camera, reason)
            self._record_inventory()
            self._sync_revocations(wiring)

        hooks = SiteHooks(
            revoke=revoke,
            worker_platform=lambda: self.supervisor.running["worker"].block.platform,
            cpu_allowed=lambda: self._fallback() == "cpu",
            move_to_cpu=self.health.move_worker_to_cpu,
            exports=self.site.exports,
            witness=archive_signing(self.config.archive).witness,
        )
        return IncidentDesk(self.archive, self.data_dir, self.clock, hooks)

    def _run_state_feed(self, wiring: Wiring) -> Callable[[], None]:
        """A call that hands a run-state snapshot to the sinks that follow it (MQTT's state,
        pending and stats, ADR 0026); a no-op when none does. Never fatal to recording."""
        takers = run_state_sinks(self.recorder.sinks)
        if not takers:
            return lambda: None
        publisher = self.site.publisher or StatePublisher(
            self.data_dir, self.config.site, self.clock.wall(), stats=self.stats,
            supervisor=self.supervisor, machine=self.machine, archive=self.archive,
            desk=self.site.desk, rings=wiring.rings, release=self._release_names,
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

    def _release_names(self) -> tuple[str | None, str | None]:
        """(model id, runtime) of the running detector, for the run state."""
        if self.prepared is None:
            return "builtin:opencv-hog", "opencv"
        return self.prepared.model_id, str(self.prepared.release.manifest.manifest.files.runtime)

    def _query_model(self, worker: dict[str, Any], blob: bytes | None) -> QueryModel | None:
        """What the API's query worker runs: the same verified release (ADR 0031), never a
        fault spec; none when the release forbids the CPU (its sandbox has no device node)."""
        if (
            self.prepared is not None
            and "cpu" not in self.prepared.release.manifest.manifest.platforms
        ):
            self.notes.append(
                "the query API (POST /v1/detect) answers 503: the release does not allow the "
                "CPU, the only platform its sandboxed query worker has"
            )
            return None
        return QueryModel(dict(worker), blob, self.scratch)

    def _start_triggers(self) -> None:
        """Probe the inference stack from here, before the sandboxed worker runs, and archive
        what was found and approved (issue 13 §3, :mod:`kontur.runtime.triggers`)."""
        runtime = "opencv"
        if self.prepared is not None:
            runtime = str(self.prepared.release.manifest.manifest.files.runtime)
        self.triggers = Triggers(self.config.placement.allowlist, runtime, self.opts.inject_fault)
        event = self.triggers.start()
        self.archive.append("event", event)
        self.stack = event
        if self.triggers.note is not None:
            self.notes.append(self.triggers.note)

    def _build_health(self, wiring: Wiring) -> Health:
        dc = self.config.degradation
        self.machine = DegradationMachine(dc, self.clock)
        self.watchdog = Watchdog(self.clock, dc.watchdog_timeout_s)
        monitors: list[Any] = [ClockJumpMonitor(self.clock, dc.clock_jump_threshold_s)]
        if self.prepared is not None:
            for fname, sha in sorted(self.prepared.installed_files.items()):
                path = self.prepared.installed_dir / fname
                interval = dc.model_check_interval_s
                monitors.append(ModelIntegrityMonitor(path, sha, self.clock, interval))
        platform = lambda: self.supervisor.running["worker"].block.platform  # noqa: E731
        monitors.append(self.triggers.monitor(platform, self.clock))
        # a reset the kernel reports is a trigger even before the worker's EP fails (ADR 0034)
        kmsg = KmsgReader()
        if kmsg.unavailable:  # e.g. the service unit's ProtectKernelLogs (ADR 0036)
            self.notes.append(
                f"kernel log unavailable ({kmsg.unavailable}): accelerator resets are seen "
                "by the worker's EP failure only"
            )
        monitors.append(KernelResetMonitor(kmsg, self.clock, 1.0, platform))
        health = Health(
            self.config,
            self.machine,
            self.watchdog,
            monitors,
            self.supervisor,
            wiring,
            self.archive,
            self.recorder,
            self.stats,
            self._fallback,
        )
        health.progress_callback = self.opts.progress

        def drain_all() -> None:
            while self._drain(wiring, 0.0):
                pass

        health.drain_all = drain_all
        return health

    def _summary(self) -> dict[str, Any]:
        cams: list[dict[str, Any]] = []
        for cam_id, st in self.stats.items():
            cams.append(
                {
                    "id": cam_id,
                    "source": st.source,
                    "frames": st.frames,
                    "frames_skipped": st.frames_skipped,
                    "gops": dict(st.gops),
                    "detections": st.detections,
                    "tracks": len(st.tracks),
                    "verifier": {"agree": st.agree, "disagree": st.disagree},
                    "decisions": {
                        k: st.decisions.get(k, 0) for k in ("ALLOW", "RESTRICT", "OPERATOR", "DENY")
                    },
                    "error": st.error,
                    "tamper": [dict(e) for e in st.tamper],
                    "decoder": dict(st.decoder) or None,
                }
            )
        frames = sum(c["frames"] for c in cams)
        summary: dict[str, Any] = {
            "cameras": cams,
            "placement": [p.to_summary() for p in self.placements],
            "degradation": {
                "state": self.machine.state.value,
                "transitions": [
                    {
                        "at": t.at,
                        "from": t.from_state.value,
                        "to": t.to_state.value,
                        "trigger": t.trigger,
                        "detail": t.detail,
                    }
                    for t in self.machine.transitions
                ],
            },
            "archive": {
                "path": str(self.data_dir),
                "records": self.archive.records,
                "head": self.archive.head,
                "verifier_key": str(self.archive.verifier_key),
            },
            "processes": [
                {
                    "name": "supervisor",
                    "pid": os.getpid(),
                    "pids": [os.getpid()],
                    "platform": "cpu",
                    "restarts": 0,
                    "peak_rss_mb": round(peak_rss_kb() / 1024, 1),
                },
                *self.supervisor.table(),
            ],
            "detector": {
                "release": self.prepared.to_summary() if self.prepared is not None else None,
                "name": self.detector_name,
                "model_id": self.model_id,
                "fallback": self.detector_name == "hog-fallback",
                "isolation": self.isolation,
            },
            "sinks": self.recorder.sink_stats(),
            "violations": self.recorder.violations,
            **({"api": api} if (api := self.site.summary()) is not None else {}),
            "fault": self.opts.inject_fault,
            "stack": {k: self.stack[k] for k in ("runtime", "verdicts")},
            "elapsed_s": round(self.elapsed, 3),
            "fps": round(frames / self.elapsed, 2) if self.elapsed > 0 else 0.0,
            "notes": self.notes,
        }
        redacted: dict[str, Any] = redact(summary)  # notes and errors may quote a URL
        # a public key to pin, not a credential (its name only looks like one to redact)
        redacted["archive"]["verifier_key"] = str(self.archive.verifier_key)
        return redacted
