"""The perimeter's side of the run manifest (issue 15 §3, ADR 0035).

Called once per start by :class:`~kontur.runtime.perimeter.Perimeter`, after the worker and
the verifier attached to the rings and before ingest starts (so before any frame, and any
decision, exists):

1. measure the worker's sandbox from outside (:func:`kontur.worker.sandbox.measure`, the
   same measurement the supervisor archives at ``worker_ready``; nothing the worker says);
2. collect the manifest (:func:`kontur.runmanifest.collect`) with that measurement, the
   verified release and the archived config's digest;
3. archive it and its changes (:func:`kontur.runmanifest.record_run`), judged against
   ``placement.allowlist`` when one is configured.

The caller hands the digest to the recorder (every decision record names it) and raises
``driver_unapproved`` for what step 3 found unapproved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kontur.archive import Archive
from kontur.config import AllowlistConfig
from kontur.runmanifest import Release, RunRecorded, collect, record_run, sandbox_from_report
from kontur.runmanifest.model import Sandbox
from kontur.runtime.stackwatch import allowlist_from
from kontur.runtime.supervisor import Running

__all__ = ["archive_run_manifest", "measured_sandbox"]


def measured_sandbox(worker: Running) -> Sandbox:
    """The worker's isolation as the supervisor measures it now (step 1)."""
    from kontur.worker.sandbox import SandboxPolicy, measure

    sb = worker.block.spec["sandbox"]
    policy = SandboxPolicy.from_json(sb, default_scratch=Path(sb["scratch_dir"]))
    try:
        report: dict[str, Any] = measure(worker.proc.pid, policy).to_json()
    except OSError as exc:  # the worker died meanwhile: the blocks' exits are health's
        report = {"level": "degraded", "missing": [f"measure: {exc}"]}
    return sandbox_from_report(report)


def archive_run_manifest(
    archive: Archive,
    worker: Running,
    release: Release,
    config_sha256: str,
    allow: AllowlistConfig,
) -> RunRecorded:
    """Steps 1–3 (see the module); what was archived and found."""
    manifest = collect(
        sandbox=measured_sandbox(worker), release=release, config_sha256=config_sha256
    )
    configured = bool(allow.runtimes or allow.drivers)
    return record_run(archive, manifest, allowlist_from(allow) if configured else None)
