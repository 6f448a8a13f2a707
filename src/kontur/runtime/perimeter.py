"""One run of the whole perimeter on this machine (``kontur demo``).

Order of steps: open the archive and record the configuration; probe every source and
enrol its profile; load and record the model; bench the available platforms and place the
analytics task (dispatcher); start the process tree; supervise it (archive every message,
watch health, drive the degradation machine, restart a crashed worker on the CPU) until the
sources end or time runs out; stop the blocks in reverse order; summarise.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kontur.archive import Archive
from kontur.clock import Clock, OffsetClock, SystemClock
from kontur.config import Config
from kontur.degrade import (
    ClockJumpMonitor,
    DegradationMachine,
    ModelIntegrityMonitor,
    Watchdog,
    step,
)
from kontur.degrade.machine import Transition
from kontur.errors import ConfigError, KonturError
from kontur.ingest.democam import demo_signable, provision_demo_camera
from kontur.ingest.inventory import Inventory
from kontur.ingest.rtsp import redact
from kontur.ingest.source import default_source, probe
from kontur.placement import choose, load_catalogue
from kontur.placement.available import available_platforms
from kontur.placement.measure import MeasurementCache
from kontur.placement.risk import Placement
from kontur.release.errors import PlatformNotAllowed
from kontur.release.signing import Trust
from kontur.runtime.bench_setup import bench_frames, cache_path, measure_platforms
from kontur.runtime.models import PreparedRelease, prepare_release
from kontur.runtime.supervisor import Supervisor
from kontur.runtime.wiring import WORKER_READER, CameraPlan, Wiring, build_wiring
from kontur.wire import (
    ControlMessage,
    Decision,
    DetectionBatch,
    Finding,
    GopClosed,
    Message,
    SegmentStored,
    SourceEnded,
    WorkerReady,
)
from kontur.wire.channel import wait_readable
from kontur.worker.errors import ModelError

__all__ = ["FAULTS", "BlockFailed", "Perimeter", "RunOptions"]


class BlockFailed(KonturError):
    """A block of the perimeter could not start (its log is in DATA_DIR/run/logs)."""


FAULTS = ("model-tamper", "clock-jump", "worker-crash")
#: Seconds after the worker is first ready at which an injected fault fires.
FAULT_DELAY_S = 1.5


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


@dataclass
class _CamStats:
    source: str
    frames: int = 0
    gops: Counter[str] = field(default_factory=Counter)
    detections: int = 0
    tracks: set[int] = field(default_factory=set)
    agree: int = 0
    disagree: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    ended: bool = False
    error: str | None = None


class Perimeter:
    """Runs the perimeter once and returns the summary (README: "JSON summary")."""

    def __init__(self, opts: RunOptions, clock: Clock | None = None) -> None:
        self.opts = opts
        self.config = opts.config
        self.clock = OffsetClock(clock or SystemClock())
        self.data_dir = opts.data_dir
        self.stats: dict[str, _CamStats] = {}
        self.placements: list[Placement] = []
        self.faults_fired: list[str] = []
        self.notes: list[str] = []
        self.rejected_messages = 0
        self.worker_ready_at: float | None = None
        self.isolation: dict[str, Any] | None = None
        self._inventory: Inventory | None = None

    # ---- preparation -------------------------------------------------------------------
    def _plan_cameras(self) -> list[CameraPlan]:
        cams = list(self.config.cameras)
        if self.opts.source is not None:
            cams = [cams[0].model_copy(update={"source": self.opts.source})]
        plans = []
        for cam in cams:
            source = cam.source or default_source()
            pr = probe(source)
            profile = cam.profile or pr.profile()
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
            if self.opts.sign and demo_signable(source, pr.info.codec):
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
            self.stats[cam.id] = _CamStats(source=redact(source))
        self._record_inventory()
        return plans

    def _record_inventory(self) -> None:
        """Archive the inventory changes (enrolments, revocations) not archived yet."""
        if self._inventory is None:
            self._inventory = Inventory.open(self.data_dir, self.clock)
        self._inventory.drain_to_archive(self.archive)

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
        )
        self.prepared = prepared
        m = prepared.release.manifest.manifest
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
        spec, blob = prepared.worker_spec()
        try:
            self._cpu_detector = self._build(prepared, "cpu") if "cpu" in m.platforms else None
        except ModelError as exc:
            raise type(exc)(f"release {prepared.model_id}: {exc}") from None
        return spec, blob

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

    def _build(self, prepared: PreparedRelease, platform: str) -> Any:
        from kontur.worker.runners import build_detector

        return build_detector(
            prepared.release.manifest.manifest,
            prepared.release.files,
            model_id=prepared.model_id,
            platform=platform,
            intra_op_threads=self.config.worker.intra_op_threads,
        )

    def _make_infer(self) -> Callable[[str], Callable[[np.ndarray], Any]]:
        from kontur.worker.detectors import HogPersonDetector

        def make(platform: str) -> Callable[[np.ndarray], Any]:
            if self.prepared is None:
                return HogPersonDetector(score_threshold=self.config.worker.score_threshold).infer
            if platform == "cpu" and self._cpu_detector is not None:
                return self._cpu_detector.infer  # type: ignore[no-any-return]
            return self._build(self.prepared, platform).infer  # type: ignore[no-any-return]

        return make

    def _platforms(self) -> dict[str, str]:
        """The platforms this machine has that the release allows."""
        have = available_platforms()
        if self.prepared is None:
            return have
        allowed = self.prepared.release.manifest.manifest.platforms
        usable: dict[str, str] = {p: how for p, how in have.items() if p in allowed}
        if not usable:
            raise PlatformNotAllowed(
                f"release {self.prepared.model_id}: expected one of the platforms "
                f"{sorted(have)} this machine has, got a release for {list(allowed)}"
            )
        return usable

    def _place(self, plans: list[CameraPlan], model_bytes: bytes | None) -> str:
        pc = self.config.placement
        frames = bench_frames(plans[0].source, pc.bench_frames)
        key = self.prepared.release.digest if self.prepared is not None else self.model_id
        measured = measure_platforms(
            self._platforms(),
            self._make_infer(),
            frames,
            key,
            MeasurementCache(cache_path()),
        )
        catalogue = load_catalogue(Path(pc.catalogue) if pc.catalogue else None)
        for plan in plans:
            pl = choose(
                f"detect-track:{plan.config.id}",
                "detect-track",
                measured,
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

    def _on_message(self, msg: Message) -> None:
        if isinstance(msg, SegmentStored):
            self.archive.append(
                "segment",
                {
                    "sha256": msg.segment_sha256,
                    "size": msg.segment_size,
                    **msg.model_dump(mode="json", exclude={"segment_sha256", "segment_size"}),
                },
            )
        elif isinstance(msg, GopClosed):
            st = self.stats[msg.verdict.camera_id]
            st.gops[msg.verdict.verdict.value] += 1
            self.archive.append("verdict", msg.model_dump(mode="json"))
        elif isinstance(msg, SourceEnded):
            st = self.stats[msg.camera_id]
            st.ended, st.frames, st.error = True, msg.frames, msg.error
            self.archive.append("event", {"event": "source_ended", **msg.model_dump(mode="json")})
        elif isinstance(msg, DetectionBatch):
            st = self.stats[msg.camera_id]
            st.detections += msg.detections
            st.tracks.update(msg.track_ids)
            self.archive.append("detections", msg.model_dump(mode="json"))
        elif isinstance(msg, Finding):
            st = self.stats[msg.camera_id]
            if msg.agree:
                st.agree += 1
            else:
                st.disagree += 1
                self.archive.append(
                    "event", {"event": "verifier_disagree", **msg.model_dump(mode="json")}
                )
        elif isinstance(msg, Decision):
            self.stats[msg.camera_id].decisions[msg.outcome.value] += 1
            self.archive.append("decision", msg.model_dump(mode="json"))
        elif isinstance(msg, WorkerReady):
            if self.worker_ready_at is None:
                self.worker_ready_at = time.monotonic()
            self._note_isolation(msg.isolation)
            self.archive.append("event", {"event": "worker_ready", **msg.model_dump(mode="json")})

    def _note_isolation(self, isolation: dict[str, Any] | None) -> None:
        """Keep the worker's isolation report; say loudly when it is not full."""
        self.isolation = isolation
        if isolation is None or isolation.get("level") == "full":
            return
        missing = "; ".join(str(m) for m in isolation.get("missing", [])) or "unknown"
        note = f"worker isolation DEGRADED: {missing}"
        if note not in self.notes:
            self.notes.append(note)

    def _drain(self, wiring: Wiring, timeout: float) -> int:
        n = 0
        for inbox in wait_readable(list(wiring.inboxes.values()), timeout):
            for msg in inbox.drain():
                self._on_message(msg)
                n += 1
        return n

    def _apply(self, transitions: list[Transition], wiring: Wiring) -> None:
        for t in transitions:
            self.archive.append(
                "state",
                {
                    "at": t.at,
                    "from": t.from_state.value,
                    "to": t.to_state.value,
                    "trigger": t.trigger,
                    "detail": t.detail,
                },
            )
            wiring.to_gate.send(t.to_message())
            self._progress(state=t.to_state.value, trigger=t.trigger)
        if transitions:
            stride = self.machine.actions().analysis_stride_non_priority
            for plan in self.plans:
                if not plan.config.priority:
                    wiring.to_ingest[plan.config.id].send(
                        ControlMessage(
                            command="analysis_stride", camera_id=plan.config.id, value=stride
                        )
                    )

    def _inject(self) -> None:
        fault = self.opts.inject_fault
        self.faults_fired.append(fault or "")
        if fault == "model-tamper":
            if self.prepared is None:
                self.notes.append("model-tamper: no model file (HOG fallback); nothing to tamper")
                return
            files = self.prepared.release.manifest.manifest.files
            target = self.prepared.installed_dir / files.model
            target.chmod(0o644)
            with open(target, "r+b") as f:
                f.seek(os.path.getsize(target) // 2)
                b = f.read(1)
                f.seek(-1, os.SEEK_CUR)
                f.write(bytes([b[0] ^ 0xFF]))
        elif fault == "clock-jump":
            self.clock.jump_wall(3600.0)
        elif fault == "worker-crash":
            os.kill(self.supervisor.running["worker"].proc.pid, 9)

    def _fallback(self) -> str:
        """Where a crashed worker restarts: the CPU, unless the release forbids it."""
        if self.prepared is None or "cpu" in self.prepared.release.manifest.manifest.platforms:
            return "cpu"
        return self.placements[0].platform

    def _health(self, wiring: Wiring) -> None:
        for name, rc in self.supervisor.exited():
            if name == "worker":
                trig, detail = self.watchdog.report_exit("worker", rc)
                self._apply(self.machine.raise_trigger(trig, detail), wiring)
                self.archive.append(
                    "event",
                    {"event": "worker_restarted", "exit": rc, "platform": self._fallback()},
                )
                self.supervisor.restart("worker", platform=self._fallback())
                self.watchdog.beat("worker")
            elif name == "verifier":
                self.archive.append("event", {"event": "verifier_restarted", "exit": rc})
                self.supervisor.restart("verifier")
        for ring in wiring.rings.values():
            hb = ring.reader_heartbeat(WORKER_READER)
            if hb != self._last_hb.get(ring.name):
                self._last_hb[ring.name] = hb
                self.watchdog.beat("worker")
        for trig, detail in self.watchdog.poll():
            if trig == "worker_hang":
                self._apply(self.machine.raise_trigger(trig, detail), wiring)
                self.supervisor.restart("worker", platform=self._fallback())
                self.watchdog.beat("worker")
        self._apply(step(self.machine, self.monitors), wiring)

    def _supervise(self, wiring: Wiring) -> None:
        deadline = time.monotonic() + self.opts.seconds if self.opts.seconds else None
        last_progress = 0.0
        while not all(s.ended for s in self.stats.values()):
            self._drain(wiring, 0.05)
            self._health(wiring)
            now = time.monotonic()
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
                # camera's next GOP; the archive records it here
                self._record_inventory()
                self.archive.flush()
                self._progress(
                    frames=sum(r.seq + 1 for r in wiring.rings.values()),
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
            lag = [r.seq - r.reader_consumed(WORKER_READER) for r in wiring.rings.values()]
            self._drain(wiring, 0.05)
            self._health(wiring)
            if (
                all(x <= 0 for x in lag)
                or self.supervisor.running["worker"].proc.poll() is not None
            ):
                break

    def _shutdown(self, wiring: Wiring) -> None:
        self._wait_drained(wiring, 60.0)
        self.watchdog.forget("worker")
        for name in reversed(self.supervisor.order):
            self.supervisor.stop(name, grace_s=10.0)
            # what a block sent before it stopped is archived before the next one stops
            while self._drain(wiring, 0.1):
                pass
        self._drain(wiring, 0.1)

    # ---- the run -----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run the perimeter; returns the summary. Raises KonturError on bad input."""
        self.archive = Archive.open(self.data_dir, self.clock)
        try:
            return self._run()
        finally:
            if self._inventory is not None:
                self._inventory.close()
            self.archive.close()

    def _run(self) -> dict[str, Any]:
        cfg_json = self.config.model_dump(mode="json")
        self.archive.append(
            "config",
            {"sha256": hashlib.sha256(repr(cfg_json).encode()).hexdigest(), "config": cfg_json},
        )
        self.plans = self._plan_cameras()
        worker, model_bytes = self._prepare_model()
        platform = self._place(self.plans, model_bytes)
        worker.update(
            platform=platform,
            config_id="sha256:" + hashlib.sha256(repr(cfg_json).encode()).hexdigest()[:16],
        )
        dc = self.config.degradation
        self.machine = DegradationMachine(dc, self.clock)
        self.watchdog = Watchdog(self.clock, dc.watchdog_timeout_s)
        self.monitors: list[Any] = [
            ClockJumpMonitor(self.clock, dc.clock_jump_threshold_s),
            self.watchdog,
        ]
        if self.prepared is not None:
            for fname, sha in sorted(self.prepared.installed_files.items()):
                self.monitors.append(
                    ModelIntegrityMonitor(
                        self.prepared.installed_dir / fname,
                        sha,
                        self.clock,
                        dc.model_check_interval_s,
                    )
                )
        self._last_hb: dict[str, int] = {}
        wiring = build_wiring(
            self.plans, self.config, self.data_dir, worker, model_bytes, self.opts.realtime
        )
        self.supervisor = Supervisor(self.data_dir / "run")
        started = time.monotonic()
        try:
            consumers = [b for b in wiring.blocks if not b.name.startswith("ingest:")]
            self.supervisor.start(consumers)
            self._wait_readers_attached(wiring, timeout=120.0)
            self.supervisor.start([b for b in wiring.blocks if b.name.startswith("ingest:")])
            self.watchdog.expect("worker")
            self._supervise(wiring)
            self._shutdown(wiring)
        finally:
            self.supervisor.stop_all(grace_s=2.0)
            wiring.close()
            # scratch dirs belong to the worker's unprivileged uid; nothing in them is kept
            shutil.rmtree(self.data_dir / "run" / "scratch", ignore_errors=True)
        self.elapsed = time.monotonic() - started
        self.archive.flush()
        return self._summary()

    def _summary(self) -> dict[str, Any]:
        cams: list[dict[str, Any]] = []
        for cam_id, st in self.stats.items():
            cams.append(
                {
                    "id": cam_id,
                    "source": st.source,
                    "frames": st.frames,
                    "gops": dict(st.gops),
                    "detections": st.detections,
                    "tracks": len(st.tracks),
                    "verifier": {"agree": st.agree, "disagree": st.disagree},
                    "decisions": {
                        k: st.decisions.get(k, 0) for k in ("ALLOW", "RESTRICT", "OPERATOR", "DENY")
                    },
                    "error": st.error,
                }
            )
        frames = sum(c["frames"] for c in cams)
        return {
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
            },
            "processes": [
                {
                    "name": "supervisor",
                    "pid": os.getpid(),
                    "pids": [os.getpid()],
                    "platform": "cpu",
                    "restarts": 0,
                    "peak_rss_mb": round(Supervisor._vmhwm_kb(os.getpid()) / 1024, 1),
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
            "fault": self.opts.inject_fault,
            "elapsed_s": round(self.elapsed, 3),
            "fps": round(frames / self.elapsed, 2) if self.elapsed > 0 else 0.0,
            "notes": self.notes,
        }
