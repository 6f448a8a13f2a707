"""When and where a run's ``--inject-fault`` fires (the faults themselves: :mod:`.faults`).

A run injects at most one fault, on one timeline. At start (:func:`kontur.runtime.plan.build_plan`)
it is armed where a block plays it itself: in the worker's spec (``worker-…`` and ``drift-…``
faults, ADR 0025) and on the first camera's plan (``tamper-…`` and ``decoder-…`` faults, ADR
0030/0038; ingest ignores any other). While the blocks run, the perimeter asks :meth:`due` every
loop turn; the fault fires once, :data:`~.faults.FAULT_DELAY_S` after the worker was first
ready, through :func:`~.faults.inject` (``model-tamper``, ``clock-jump``, ``worker-crash``, the
simulated host's stack changes; nothing left to do for a fault armed at start).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from kontur.clock import OffsetClock
from kontur.config import Config
from kontur.runtime.faults import FAULT_DELAY_S, inject, worker_fault_spec
from kontur.runtime.supervisor import Supervisor
from kontur.runtime.trigger_faults import SimulatedHost
from kontur.runtime.wiring import CameraPlan

__all__ = ["FaultInjector"]


class FaultInjector:
    """One run's injected fault: armed at start, fired once while the blocks run."""

    def __init__(self, fault: str | None, delay_s: float = FAULT_DELAY_S) -> None:
        self.fault = fault
        self.delay_s = delay_s
        self.fired: list[str] = []
        """The faults fired so far (one at most)."""

    def arm_worker(self, worker: dict[str, Any], config: Config) -> None:
        """Add the simulated compromised worker's ``fault`` entry to its spec, if any."""
        if (spec := worker_fault_spec(self.fault, config)) is not None:
            worker["fault"] = spec

    def arm_camera(self, plan: CameraPlan) -> CameraPlan:
        """The first camera's plan with the fault handed to its ingest (which plays
        ``tamper-…`` and decoder faults only)."""
        return dataclasses.replace(plan, tamper_fault=self.fault)

    def due(self, now: float, worker_ready_at: float | None) -> bool:
        """True once: when a fault is asked for and the worker was ready ``delay_s`` ago."""
        if not self.fault or self.fired or not worker_ready_at:
            return False
        return now - worker_ready_at >= self.delay_s

    def fire(
        self,
        *,
        model_file: Path | None,
        clock: OffsetClock,
        supervisor: Supervisor,
        host: SimulatedHost | None,
    ) -> str | None:
        """Fire the fault now; returns a note when there was nothing to fire it on."""
        fault = self.fault or ""
        self.fired.append(fault)
        return inject(fault, model_file=model_file, clock=clock, supervisor=supervisor, host=host)
