"""The perimeter's side of issue 13 §3's triggers: the stack watch and the simulated accelerator.

:class:`Triggers` is built once per run, after the model release is verified (its runtime is
known) and before the sandboxed probe and bench (which must only bench approved platforms):

1. :meth:`Triggers.start` probes the host (:mod:`kontur.placement.probe`), or, under a stack
   or simulated-accelerator demo fault, the host as :class:`~kontur.runtime.trigger_faults.
   SimulatedHost` shows it, and returns the ``stack_checked`` event to archive;
2. :meth:`Triggers.allowed` filters the platforms the release allows;
3. :meth:`Triggers.place` keeps the dispatcher's choice, except under
   ``accelerator-reset``/``driver-unapproved``, which put the task on the simulated ``gpu``
   (archived as a ``simulated_accelerator`` event by the caller);
4. :meth:`Triggers.monitor` is the :class:`~kontur.degrade.StackMonitor` the health loop
   polls, judging the platform the worker runs on now (the supervisor's table, not the
   worker's word) and every one it ran on before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kontur.clock import Clock
from kontur.config import AllowlistConfig
from kontur.degrade import StackMonitor
from kontur.placement.allowlist import DRIVER_MODULES, RUNTIME_MODULES
from kontur.placement.probe import HostProbe
from kontur.runtime.stackwatch import StackWatch, allowlist_from
from kontur.runtime.trigger_faults import (
    RESET_AFTER_CALLS,
    SIM_ACCELERATOR_FAULTS,
    SIM_DRIVER,
    SIM_DRIVER_VERSION,
    SIMULATED_PLATFORM,
    STACK_FAULTS,
    SimulatedHost,
    simulated_drivers,
)

__all__ = ["Triggers"]


class Triggers:
    """The run's stack watch, and the demo's simulated accelerator (see the module)."""

    def __init__(self, cfg: AllowlistConfig, runtime: str, fault: str | None) -> None:
        self.cfg, self.runtime, self.fault = cfg, runtime, fault
        self.host: SimulatedHost | None = None
        self.simulated = fault in SIM_ACCELERATOR_FAULTS and runtime != "opencv"
        """True when the task runs on the simulated accelerator (a demo fault)."""
        self.note: str | None = None
        if fault in SIM_ACCELERATOR_FAULTS and not self.simulated:
            self.note = (
                f"{fault}: needs a model (--model or --release): the HOG fallback has no "
                "execution provider to fail; nothing simulated"
            )
        self.watch: StackWatch | None = None

    def start(self) -> dict[str, Any]:
        """Probe the host and pin its facts; the ``stack_checked`` event for the archive."""
        module = RUNTIME_MODULES[self.runtime]
        drivers = dict(DRIVER_MODULES)
        allow = allowlist_from(self.cfg)
        probe: Any = HostProbe([module], sorted(set(drivers.values())))
        if self.fault in (*STACK_FAULTS, *SIM_ACCELERATOR_FAULTS):
            probe = self.host = SimulatedHost(probe, module)
        if self.simulated:
            drivers = dict(simulated_drivers(self.runtime))
            allow = allow.with_driver(SIM_DRIVER, SIM_DRIVER_VERSION)
        self.watch = StackWatch(allow, self.runtime, probe, drivers)
        return self.watch.start_event()

    def allowed(self, allowed: list[str] | None) -> list[str]:
        """The platforms to bench: ``allowed`` less the accelerators not approved."""
        assert self.watch is not None, "start() first"
        return self.watch.approved(allowed)

    def place(self, platform: str) -> str:
        """The platform the worker starts on: the dispatcher's, or the simulated one."""
        return SIMULATED_PLATFORM if self.simulated else platform

    def simulated_event(self, placed: str) -> dict[str, Any]:
        """The ``simulated_accelerator`` event: what the demo put in place of a real GPU."""
        return {
            "event": "simulated_accelerator",
            "fault": self.fault,
            "platform": SIMULATED_PLATFORM,
            "instead_of": placed,
            "driver": {SIM_DRIVER: SIM_DRIVER_VERSION},
            "note": "the release's CPU runner behind a simulated execution provider and "
            "driver, approved for this demo run only",
        }

    def worker_spec(self) -> dict[str, Any] | None:
        """The worker spec's ``simulated_accelerator`` entry (None without the simulation)."""
        if not self.simulated:
            return None
        reset = RESET_AFTER_CALLS if self.fault == "accelerator-reset" else None
        return {"reset_after_calls": reset}

    def monitor(
        self, worker_platform: Callable[[], str], clock: Clock, interval_s: float | None = None
    ) -> StackMonitor:
        """The run-time check, at ``placement.allowlist.check_interval_s``."""
        watch = self.watch
        assert watch is not None, "start() first"
        return StackMonitor(
            lambda: watch.problem(worker_platform()),
            clock,
            self.cfg.check_interval_s if interval_s is None else interval_s,
        )
