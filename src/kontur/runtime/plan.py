"""The start-up plan: everything a run decides before its blocks start (issue 8 §9a, ADR 0039).

:func:`build_plan` takes the run's options and the parts it acts through (the open archive, the
supervisor whose sandbox probes, the inventory) and returns a frozen :class:`StartupPlan`: the
model it verified and installed, the stack it probed, every camera's plan and strictness, the
revocations scanned at start, the placements, the worker's spec. The
:class:`~kontur.runtime.perimeter.Perimeter` builds it once and only reads it afterwards; what
changes while the blocks run (health, the recorder, revocations made during the run) is not
part of it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from kontur.archive import Archive
from kontur.clock import OffsetClock
from kontur.config import CameraConfig, Config
from kontur.errors import ConfigError
from kontur.ingest.democam import provision_demo_camera
from kontur.ingest.revocation import Revocations
from kontur.ingest.source import default_source
from kontur.placement import choose, load_catalogue
from kontur.placement.risk import Placement
from kontur.redact import redact
from kontur.release.signing import Trust
from kontur.runtime.apiblock import QueryModel
from kontur.runtime.faultinject import FaultInjector
from kontur.runtime.inventory_watch import InventoryWatch
from kontur.runtime.models import (
    PreparedRelease,
    audit_policy,
    format_from_output_shape,
    prepare_release,
)
from kontur.runtime.prepare import Prepared, PrepareFailed, output_shape, prepare_sources
from kontur.runtime.supervisor import Supervisor
from kontur.runtime.triggers import Triggers
from kontur.runtime.wiring import CameraPlan

__all__ = [
    "HOG_FALLBACK",
    "ModelFacts",
    "PlanContext",
    "RunOptions",
    "StartupPlan",
    "build_plan",
    "camera_configs",
    "config_record",
    "unsafe_warnings",
]


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
    """Stop the sources this long after the first frame (:mod:`kontur.runtime.deadline`)."""
    inject_fault: str | None = None
    realtime: bool = False
    sign: bool = True
    """Sign an unsigned local H.264/H.265 clip on the fly with a simulated demo camera."""
    progress: Callable[[dict[str, Any]], None] | None = None
    forever: bool = False
    """Run until ``stop()`` says so (``kontur run``), not until the sources end."""
    stop: Callable[[], bool] | None = None
    """Asked every loop turn; True: stop the sources, then the blocks, cleanly."""


@dataclass(frozen=True)
class ModelFacts:
    """The detector the worker will load: a verified, installed release or the HOG fallback."""

    detector_name: str
    model_id: str
    prepared: PreparedRelease | None
    worker: Mapping[str, Any]
    """The worker's detector entries (:meth:`PreparedRelease.worker_spec`)."""
    model_bytes: bytes | None

    @property
    def fallback(self) -> bool:
        return self.prepared is None

    @property
    def runtime(self) -> str:
        """The inference runtime the release names (``opencv`` for the fallback)."""
        if self.prepared is None:
            return "opencv"
        return str(self.prepared.release.manifest.manifest.files.runtime)

    def signed_platforms(self) -> list[str] | None:
        """The platforms the release is signed for; None for the fallback (any)."""
        if self.prepared is None:
            return None
        return [str(p) for p in self.prepared.release.manifest.manifest.platforms]

    def allows_cpu(self) -> bool:
        signed = self.signed_platforms()
        return signed is None or "cpu" in signed

    def release_names(self) -> tuple[str | None, str | None]:
        """(model id, runtime) of the running detector, for the run state and manifest."""
        if self.prepared is None:
            return "builtin:opencv-hog", "opencv"
        return self.prepared.model_id, self.runtime

    def model_file(self) -> Path | None:
        """The installed model file (what ``model-tamper`` flips a byte of)."""
        if self.prepared is None:
            return None
        return self.prepared.installed_dir / self.prepared.release.manifest.manifest.files.model


HOG_FALLBACK = ModelFacts(
    "hog-fallback", "builtin:opencv-hog", None, MappingProxyType({"detector": "hog"}), None
)


@dataclass(frozen=True)
class StartupPlan:
    """What the run decided before its blocks start; read, never changed, afterwards."""

    config_sha256: str
    """SHA-256 of the run's redacted config (its ``config`` record)."""
    model: ModelFacts
    stack: Mapping[str, Any]
    """The inference stack found and approved at start (its ``stack`` event)."""
    cameras: tuple[CameraPlan, ...]
    strict: Mapping[str, bool]
    """Camera id → verify before decode (configured or enrolled critical)."""
    revocations: Revocations
    """The archive's revocations scanned at start (each ingest starts holding them)."""
    placements: tuple[Placement, ...]
    platform: str
    """Where the worker starts (a simulated accelerator's, under such a fault)."""
    worker: Mapping[str, Any]
    """The worker's spec: detector entries, platform, config id, an armed fault."""
    query_model: QueryModel | None
    """What the API's query worker runs; None when the release forbids the CPU."""

    def worker_spec(self) -> dict[str, Any]:
        """A copy of the worker's spec for the wiring (which may add to it)."""
        return copy.deepcopy(dict(self.worker))

    def fallback_platform(self) -> str:
        """Where a crashed worker restarts: the CPU, unless the release forbids it."""
        return "cpu" if self.model.allows_cpu() else self.placements[0].platform

    def release_names(self) -> tuple[str | None, str | None]:
        return self.model.release_names()


@dataclass(frozen=True)
class PlanContext:
    """What :func:`build_plan` acts through: the run's options, clock, open archive, the
    supervisor whose sandbox probes, the scratch directory, the inventory and the run's notes."""

    opts: RunOptions
    clock: OffsetClock
    archive: Archive
    supervisor: Supervisor
    scratch: Path
    inventory: InventoryWatch
    notes: list[str]

    @property
    def config(self) -> Config:
        return self.opts.config


def config_record(config: Config) -> tuple[str, dict[str, Any]]:
    """(SHA-256, redacted config) for the run's ``config`` record.

    Credentials never reach the archive, not even hashed: a hash of a config with a short
    password is a dictionary attack away from it (ADR 0019).
    """
    cfg_json: dict[str, Any] = redact(config.model_dump(mode="json"))
    return hashlib.sha256(repr(cfg_json).encode()).hexdigest(), cfg_json


def unsafe_warnings(config: Config) -> list[str]:
    """One ``UNSAFE: …`` line per unsafe switch the config turns on."""
    unsafe = {
        "worker.sandbox.unsafe_allow_partial_isolation is on: the untrusted worker may run "
        "in a partial sandbox (critical actions stay restricted if so)": (
            config.worker.sandbox.unsafe_allow_partial_isolation
        ),
        "ingest.decoder.unsafe_in_process is on: each camera's video is decoded inside its "
        "ingest, outside any sandbox (a decoder exploit owns ingest)": (
            config.ingest.decoder.unsafe_in_process
        ),
    }
    return [f"UNSAFE: {text}" for text, on in unsafe.items() if on]


def camera_configs(config: Config, source: str | None) -> list[CameraConfig]:
    """The cameras to run: ``--source`` replaces the first camera's (and drops the others);
    a camera with no source gets the default one."""
    cams = list(config.cameras)
    if source is not None:
        cams = [cams[0].model_copy(update={"source": source})]
    return [c.model_copy(update={"source": c.source or default_source()}) for c in cams]


def build_plan(ctx: PlanContext, config_sha256: str) -> tuple[StartupPlan, Triggers]:
    """Decide everything the run needs before its blocks start.

    Order of steps: verify, install and record the model release (or record the HOG fallback);
    probe the inference stack and archive what was found and approved; decide the query API's
    model; probe and bench every source in the worker's sandbox; plan each camera (its
    profile, enrolled on first use; the demo camera that signs an unsigned clip), archive the
    inventory, scan the archive's revocations and check the inventory against them; place the
    analytics task for each camera; move it to a simulated accelerator if a fault asks; write
    the worker's spec (platform, config id, an armed fault). Returns the plan and the stack
    probe, whose monitor and simulated host keep working while the blocks run.
    """
    model = _prepare_model(ctx)
    triggers = Triggers(ctx.config.placement.allowlist, model.runtime, ctx.opts.inject_fault)
    stack = triggers.start()
    ctx.archive.append("event", stack)
    if triggers.note is not None:
        ctx.notes.append(triggers.note)
    query_model = _query_model(ctx, model)
    cams = camera_configs(ctx.config, ctx.opts.source)
    strict = {c.id: ctx.inventory.strict(c) for c in cams}
    prepared = _prepare_sources(ctx, model, triggers, cams, strict)
    faults = FaultInjector(ctx.opts.inject_fault)
    plans = _plan_cameras(ctx, cams, prepared, faults)
    placements = _place(ctx, plans, prepared)
    platform: str = placements[0].platform
    worker = dict(model.worker)
    if (placed := triggers.place(platform)) != platform:  # a simulated accelerator
        ctx.archive.append("event", triggers.simulated_event(platform))
        ctx.notes.append(f"{ctx.opts.inject_fault}: the task runs on a simulated {placed}")
        platform, worker["simulated_accelerator"] = placed, triggers.worker_spec()
    worker.update(platform=platform, config_id="sha256:" + config_sha256[:16])
    faults.arm_worker(worker, ctx.config)
    plan = StartupPlan(
        config_sha256=config_sha256,
        model=model,
        stack=MappingProxyType(dict(stack)),
        cameras=tuple(plans),
        strict=MappingProxyType(strict),
        revocations=ctx.inventory.revocations,
        placements=tuple(placements),
        platform=platform,
        worker=MappingProxyType(worker),
        query_model=query_model,
    )
    return plan, triggers


def _prepare_model(ctx: PlanContext) -> ModelFacts:
    """Verify, install and record the release (``--release`` or ``--model``), or record the
    built-in fallback when none is given."""
    opts = ctx.opts
    if opts.model is None and opts.release is None:
        ctx.archive.append(
            "model",
            {
                "detector": "hog-fallback",
                "model_id": HOG_FALLBACK.model_id,
                "note": "built-in fallback: no model given",
            },
        )
        return HOG_FALLBACK

    def guess(model: Path) -> str:  # a bare model's format from its output shape, sandboxed
        shape = output_shape(ctx.supervisor, ctx.config, opts.data_dir, ctx.scratch, model)
        return format_from_output_shape(model, shape)

    prepared = prepare_release(
        data_dir=opts.data_dir,
        clock=ctx.clock,
        release_dir=opts.release,
        trust=opts.trust,
        model=opts.model,
        model_format=opts.model_format,
        guess=guess,
        release_names=ctx.config.release.names,
        audit_policy=audit_policy(ctx.config.release.audit),
    )
    m = prepared.release.manifest.manifest
    if m.robustness_audit is None:
        ctx.notes.append(
            f"release {m.name}@{m.version} carries no robustness audit "
            "(release.audit.required is off; see kontur model audit)"
        )
    check_critical_classes(ctx.config, prepared)
    detector_name = f"{m.output_format}-{m.files.runtime}"
    if prepared.throwaway:
        ctx.notes.append(
            f"--model {opts.model}: signed a throwaway release {prepared.model_id} "
            "with a fresh demo key (not for production: sign real releases with "
            "`kontur model release`)"
        )
    ctx.archive.append("model", {"detector": detector_name, **prepared.to_summary()})
    worker, blob = prepared.worker_spec()
    return ModelFacts(detector_name, prepared.model_id, prepared, MappingProxyType(worker), blob)


def check_critical_classes(config: Config, prepared: PreparedRelease) -> None:
    """A critical action may only be driven by classes the release signs as fit for it."""
    allowed = prepared.release.manifest.manifest.critical_classes
    for pol in config.policies:
        action = config.actions.get(pol.action)
        if action is None or not action.critical:
            continue
        bad = sorted(set(pol.when.classes) - set(allowed))
        if bad:
            raise ConfigError(
                f"policy {pol.rule}: classes driving critical action {pol.action} must be "
                f"among release {prepared.model_id}'s critical classes {list(allowed)}, "
                f"got {bad}"
            )


def _query_model(ctx: PlanContext, model: ModelFacts) -> QueryModel | None:
    """What the API's query worker runs: the same verified release (ADR 0031), never a fault
    spec; none when the release forbids the CPU (its sandbox has no device node)."""
    if not model.allows_cpu():
        ctx.notes.append(
            "the query API (POST /v1/detect) answers 503: the release does not allow the "
            "CPU, the only platform its sandboxed query worker has"
        )
        return None
    return QueryModel(dict(model.worker), model.model_bytes, ctx.scratch)


def _prepare_sources(
    ctx: PlanContext,
    model: ModelFacts,
    triggers: Triggers,
    cams: list[CameraConfig],
    strict: dict[str, bool],
) -> Prepared:
    """Probe and bench in the worker's sandbox (the supervisor decodes nothing), on the
    platforms this machine has and approves only (issue 13 §3)."""
    signed = model.signed_platforms()
    allowed = triggers.allowed(signed)
    if model.prepared is not None and not allowed:
        raise PrepareFailed(
            f"release {model.model_id}: expected one of the platforms this "
            f"machine has and approves (placement.allowlist), got a release for {signed}",
            exit_code=1,
        )
    return prepare_sources(
        ctx.supervisor,
        ctx.config,
        ctx.opts.data_dir,
        ctx.scratch,
        dict(model.worker),
        model.model_bytes,
        {c.id: str(c.source) for c in cams},
        strict,
        allowed,
    )


def _plan_cameras(
    ctx: PlanContext, cams: list[CameraConfig], prepared: Prepared, faults: FaultInjector
) -> list[CameraPlan]:
    """Each camera's plan, then the inventory archived, the revocations scanned at start
    handed to every camera and the inventory checked against them."""
    plans = [_plan_camera(ctx, cam, prepared) for cam in cams]
    ctx.inventory.record()
    revoked = ctx.inventory.scan_at_start()
    plans = [dataclasses.replace(plan, revocations=revoked.to_json()) for plan in plans]
    plans[0] = faults.arm_camera(plans[0])
    ctx.inventory.check(c.id for c in cams)
    return plans


def _plan_camera(ctx: PlanContext, cam: CameraConfig, prepared: Prepared) -> CameraPlan:
    """One camera: its profile (enrolled from the stream header on first use) and, for an
    unsigned demo clip, the simulated camera that signs it on the fly."""
    source = str(cam.source)
    profile = cam.profile or prepared.profiles[cam.id]
    if cam.profile is None:
        ctx.archive.append(
            "event",
            {
                "event": "profile_enrolled",
                "camera_id": cam.id,
                "profile": profile.model_dump(),
                "basis": "stream header (trust on first use)",
            },
        )
    if not (ctx.opts.sign and prepared.signable[cam.id]):
        return CameraPlan(config=cam, source=source, profile=profile)
    data_dir = ctx.opts.data_dir
    files = provision_demo_camera(data_dir, cam.id, ctx.clock)
    demo = {"key": str(files.key_path), "chain": str(files.chain_path)}
    ctx.inventory.record()
    if not files.created:
        ctx.notes.append(
            f"{cam.id}: the demo camera of an earlier run in {data_dir} signs "
            "the clip again: footage this data dir has seen is REPLAYED (replay "
            "detection at work); use a new --data-dir for a clean run"
        )
    ctx.notes.append(
        f"{cam.id}: the unsigned clip is signed on the fly by a simulated camera "
        f"with a throwaway demo key enrolled in {data_dir} (real cameras sign "
        "their own stream: enrol them with `kontur camera enroll`; --no-sign keeps "
        "the clip unsigned)"
    )
    return CameraPlan(config=cam, source=source, profile=profile, demo_camera=demo)


def _place(ctx: PlanContext, plans: list[CameraPlan], prepared: Prepared) -> list[Placement]:
    """Place each camera's analytics task (dispatcher) and archive each placement."""
    pc = ctx.config.placement
    catalogue = load_catalogue(Path(pc.catalogue) if pc.catalogue else None)
    placements = []
    for plan in plans:
        pl = choose(
            f"detect-track:{plan.config.id}",
            "detect-track",
            prepared.measurements,
            catalogue,
            pc.sla,
            pc.tie_margin,
        )
        placements.append(pl)
        ctx.archive.append("placement", pl.to_summary())
    return placements
