"""The process table of one run: pipes, rings and specs for every block.

Start order (consumers first): gate, verifier, worker, then one ingest per camera. The
supervisor stops them in the reverse order. When the API is enabled,
:func:`kontur.runtime.apiblock.attach_api` puts its row first (started first, stopped
last). Who may send what to whom is the edge table in :mod:`kontur.wire.edges`; every pipe
made here is one of its rows, and every receiving inbox is built with its row (and the
cameras its sender serves), so the table is enforced.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kontur.config import CameraConfig, Config, Profile
from kontur.runtime.faults import DECODER_FAULTS
from kontur.runtime.scratch import ring_name
from kontur.runtime.supervisor import Block
from kontur.runtime.tamper_faults import ingest_tamper_spec
from kontur.wire.channel import Inbox, Outbox
from kontur.wire.edges import edge
from kontur.wire.framering import VERIFIER_READER, WORKER_READER, FrameRing

__all__ = ["CameraPlan", "Wiring", "build_wiring", "sandbox_spec"]

RING_SLOTS = 16


@dataclass(frozen=True)
class CameraPlan:
    """One camera as it will run: its config, source and the profile it is held to."""

    config: CameraConfig
    source: str
    profile: Profile
    demo_camera: dict[str, str] | None = None
    """``{key, chain}`` of the simulated camera that signs an unsigned demo clip on the fly."""
    revocations: list[dict[str, Any]] = field(default_factory=list)
    """The revocations the archive records (``Revocations.to_json``, ADR 0021)."""
    tamper_fault: str | None = None
    """A ``tamper-…`` demo fault ingest applies to this camera's decoded frames (ADR 0030)."""


@dataclass
class Wiring:
    """Everything the supervisor keeps for the run: its inboxes, outboxes, rings, table."""

    blocks: list[Block]
    inboxes: dict[str, Inbox]
    to_gate: Outbox
    to_ingest: dict[str, Outbox]
    rings: dict[str, FrameRing]
    fds: list[int] = field(default_factory=list)

    def close(self) -> None:
        """Unlink the rings and close every descriptor the supervisor still holds."""
        for ring in self.rings.values():
            ring.close(unlink=True)
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


class _Pipes:
    def __init__(self) -> None:
        self.fds: list[int] = []

    def pipe(self) -> tuple[int, int]:
        r, w = os.pipe()
        os.set_inheritable(r, True)
        os.set_inheritable(w, True)
        self.fds += [r, w]
        return r, w


def sandbox_spec(config: Config, data_dir: Path, scratch: Path) -> dict[str, Any]:
    """The worker's sandbox policy (:class:`kontur.worker.sandbox.SandboxPolicy` JSON).

    The scratch dir lies outside the data dir (issue 8: a worker that fills its scratch must
    not fill the archive's disk); the sandbox caps its size.
    """
    sb = config.worker.sandbox
    return {
        "scratch_dir": str(scratch),
        "max_file_mb": sb.max_file_mb,
        "max_tasks": sb.max_tasks,
        "scratch_max_mb": sb.scratch_max_mb,
        "uid": sb.uid,
        "gid": sb.gid,
        "deny": [str(data_dir)],
        "memory_mb": sb.memory_mb,
        "cpu_seconds": sb.cpu_seconds,
        "required": [] if sb.unsafe_allow_partial_isolation else "all",
    }


def decoder_spec(config: Config, data_dir: Path, scratch: Path) -> dict[str, Any]:
    """Ingest's sandboxed decoder (ADR 0038): its settings, and the worker's sandbox with a
    smaller scratch and no file to write beyond a 1 MiB log."""
    d = config.ingest.decoder
    sandbox = dict(sandbox_spec(config, data_dir, scratch), max_file_mb=1, scratch_max_mb=16)
    return {
        "in_process": d.unsafe_in_process,
        "timeout_s": d.timeout_s,
        "max_restarts": d.max_restarts,
        "threads": d.threads,
        "sandbox": sandbox,
    }


def build_wiring(
    cameras: list[CameraPlan],
    config: Config,
    data_dir: Path,
    worker: dict[str, Any],
    model_bytes: bytes | None,
    realtime: bool,
    scratch: Path,
) -> Wiring:
    """Create rings and pipes and the declarative process table (``scratch``: see
    :func:`kontur.runtime.scratch.make_scratch`; the rings are named for its run)."""
    p = _Pipes()
    rings = {
        c.config.id: FrameRing(
            ring_name(scratch, c.config.id), RING_SLOTS, c.profile.height, c.profile.width, 2
        )
        for c in cameras
    }
    ring_specs = [
        {
            "camera_id": c.config.id,
            "ring": rings[c.config.id].name,
            "fps": c.profile.fps,
            "width": c.profile.width,
            "height": c.profile.height,
            "motion_gating": c.config.motion_gating,
        }
        for c in cameras
    ]
    inboxes: dict[str, Inbox] = {}
    worker_wake_r, worker_wake_w = p.pipe()
    verifier_wake_r, verifier_wake_w = p.pipe()
    w2v_r, w2v_w = p.pipe()
    w2s_r, w2s_w = p.pipe()
    v2g_r, v2g_w = p.pipe()
    v2s_r, v2s_w = p.pipe()
    s2g_r, s2g_w = p.pipe()
    g2s_r, g2s_w = p.pipe()
    cams = [c.config.id for c in cameras]
    for name, fd in (("worker", w2s_r), ("verifier", v2s_r), ("gate", g2s_r)):
        inboxes[name] = Inbox(fd, name, edge=edge(name, "supervisor"), cameras=cams)
    gate_inputs: dict[str, int] = {"verifier": v2g_r, "supervisor": s2g_r}
    ingest_blocks: list[Block] = []
    to_ingest: dict[str, Outbox] = {}
    for c in cameras:
        i2s_r, i2s_w = p.pipe()
        i2g_r, i2g_w = p.pipe()
        ctl_r, ctl_w = p.pipe()
        name = f"ingest:{c.config.id}"
        inboxes[name] = Inbox(i2s_r, name, edge=edge(name, "supervisor"), cameras=[c.config.id])
        gate_inputs[f"ingest:{c.config.id}"] = i2g_r
        to_ingest[c.config.id] = Outbox(ctl_w)
        spec = {
            "camera_id": c.config.id,
            "source": c.source,
            "profile": c.profile.model_dump(),
            "ring": rings[c.config.id].name,
            "slots": RING_SLOTS,
            "readers": 2,
            "wake_fds": [worker_wake_w, verifier_wake_w],
            "supervisor_fd": i2s_w,
            "gate_fd": i2g_w,
            "control_fd": ctl_r,
            "data_dir": str(data_dir),
            "realtime": realtime,
            "loop": c.config.loop,
            "critical": c.config.critical,
            "encryption_required": c.config.encryption_required,
            "freshness": config.ingest.freshness.model_dump(),
            "time_check": config.ingest.time_check.model_dump(),
            "demo_camera": c.demo_camera,
            "revocations": c.revocations,
            "tamper": ingest_tamper_spec(config.tamper, c.tamper_fault),
            "decoder": {
                **decoder_spec(config, data_dir, scratch / f"decoder-{c.config.id}"),
                "fault": c.tamper_fault if c.tamper_fault in DECODER_FAULTS else None,
            },
        }
        fds = (worker_wake_w, verifier_wake_w, i2s_w, i2g_w, ctl_r)
        ingest_blocks.append(Block(f"ingest:{c.config.id}", "kontur.ingest.process", spec, fds))
    gate = Block(
        "gate",
        "kontur.gate.process",
        {
            "config": config.model_dump(mode="json"),
            "cameras": ring_specs,
            "data_dir": str(data_dir),
            "inbox_fds": gate_inputs,
            "supervisor_fd": g2s_w,
        },
        (*gate_inputs.values(), g2s_w),
    )
    verifier = Block(
        "verifier",
        "kontur.verifier.process",
        {
            "verifier": config.verifier.model_dump(),
            # the zones and classes the policies watch (evasion, class stability: ADR 0025)
            "zones": [z.model_dump(mode="json") for z in config.zones],
            "policies": [p.model_dump(mode="json") for p in config.policies],
            "cameras": ring_specs,
            "reader_index": VERIFIER_READER,
            "wake_fd": verifier_wake_r,
            "worker_fd": w2v_r,
            "gate_fd": v2g_w,
            "supervisor_fd": v2s_w,
        },
        (verifier_wake_r, w2v_r, v2g_w, v2s_w),
        restartable=True,
    )
    worker_spec = dict(
        worker,
        cameras=ring_specs,
        reader_index=WORKER_READER,
        wake_fd=worker_wake_r,
        verifier_fd=w2v_w,
        supervisor_fd=w2s_w,
        worker=config.worker.model_dump(),
        sandbox=sandbox_spec(config, data_dir, scratch / "worker"),
    )
    worker_block = Block(
        "worker",
        "kontur.worker.process",
        worker_spec,
        (worker_wake_r, w2v_w, w2s_w),
        platform=worker["platform"],
        stdin_data=model_bytes,
        restartable=True,
        minimal_env=True,
        log_path=scratch / "worker.log",
    )
    return Wiring(
        blocks=[gate, verifier, worker_block, *ingest_blocks],
        inboxes=inboxes,
        to_gate=Outbox(s2g_w),
        to_ingest=to_ingest,
        rings=rings,
        fds=p.fds,
    )
