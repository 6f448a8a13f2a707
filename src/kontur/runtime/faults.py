"""Fault injection for ``kontur demo --inject-fault``.

The first three faults must move the degradation machine while recording goes on
(``tests/e2e/test_e2e_faults.py``). The ``worker-…`` faults make the worker lie about what it
saw (:mod:`kontur.worker.faults`) from :data:`WORKER_FAULT_START_S` of stream time on: the
verifier must disagree and no ALLOW may rest on what the lie touched
(``tests/e2e/test_e2e_worker_faults.py``, ADR 0025). They are armed in the worker's spec at
start (:func:`worker_fault_spec`), so :func:`inject` has nothing left to do for them. So are
the ``drift-…`` faults, from the time the verifier's drift baseline is learnt. The stack and
accelerator faults (``runtime-unapproved``, ``driver-unapproved``, ``accelerator-reset``:
:mod:`kontur.runtime.trigger_faults`) are issue 13 §3's (``tests/e2e/test_e2e_triggers.py``).
``decoder-crash`` has the first camera's ingest kill its sandboxed decoder (SIGKILL) at
:data:`WORKER_FAULT_START_S` of stream time (ADR 0038, ``tests/decoder/test_decoder_e2e.py``).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from kontur.clock import OffsetClock
from kontur.config import Config
from kontur.runtime.supervisor import Supervisor
from kontur.runtime.tamper_faults import TAMPER_FAULTS
from kontur.runtime.trigger_faults import TRIGGER_FAULTS, SimulatedHost, drift_fault_start_s
from kontur.worker.faults import DRIFT_FAULTS, WORKER_FAULTS, FaultPlan

__all__ = [
    "DECODER_FAULTS",
    "FAULTS",
    "FAULT_DELAY_S",
    "WORKER_FAULT_START_S",
    "inject",
    "worker_fault_spec",
]

#: Faults ingest plays on its own sandboxed decoder (the first camera).
DECODER_FAULTS = ("decoder-crash",)
FAULTS = (
    "model-tamper",
    "clock-jump",
    "worker-crash",
    *DECODER_FAULTS,
    *WORKER_FAULTS,
    *TAMPER_FAULTS,
    *TRIGGER_FAULTS,
    *DRIFT_FAULTS,
)
#: Seconds after the worker is first ready at which an injected fault fires.
FAULT_DELAY_S = 1.5
#: Stream time (pts) from which a ``worker-…`` fault rewrites the worker's results: after the
#: verifier learnt the background (1.5 s) and the first dwells could fire honestly.
WORKER_FAULT_START_S = 3.0


def worker_fault_spec(fault: str | None, config: Config) -> dict[str, Any] | None:
    """The ``fault`` entry of the worker's spec for a ``worker-…`` fault, else None.

    The zone a ``worker-suppress`` empties is the first policy's (the whole frame if none).
    """
    if fault in DRIFT_FAULTS:
        return FaultPlan(fault, drift_fault_start_s(config.verifier.drift)).to_json()
    if fault not in WORKER_FAULTS:
        return None
    plan = FaultPlan(fault, WORKER_FAULT_START_S)
    if config.policies:
        zones = {z.id: z for z in config.zones}
        plan = dataclasses.replace(plan, zone=zones[config.policies[0].when.zone].polygon)
    return plan.to_json()


def _flip_middle_byte(target: Path) -> None:
    target.chmod(0o644)
    with open(target, "r+b") as f:
        f.seek(os.path.getsize(target) // 2)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0xFF]))


def inject(
    fault: str,
    *,
    model_file: Path | None,
    clock: OffsetClock,
    supervisor: Supervisor,
    host: SimulatedHost | None = None,
) -> str | None:
    """Fire ``fault`` now; returns a note when there was nothing to fire it on."""
    if fault in ("runtime-unapproved", "driver-unapproved"):
        if host is None:
            return f"{fault}: no simulated host to change; nothing to fire"
        if fault == "runtime-unapproved":
            host.upgrade_runtime()
        else:
            host.reload_driver()
        return None
    if fault == "model-tamper":
        if model_file is None:
            return "model-tamper: no model file (HOG fallback); nothing to tamper"
        _flip_middle_byte(model_file)
    elif fault == "clock-jump":
        clock.jump_wall(3600.0)
    elif fault == "worker-crash":
        os.kill(supervisor.running["worker"].proc.pid, 9)
    return None  # a worker-… fault was armed in the worker's spec at start
