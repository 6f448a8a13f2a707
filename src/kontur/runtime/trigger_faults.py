"""Faults of the stack, the accelerator and the results, for ``kontur demo --inject-fault``.

Issue 13 §3: each remaining degradation trigger of the paper is shown by a demo fault. What
they change is the world around the product, never the check under test:

- ``runtime-unapproved``: the probe's view of the host (:class:`SimulatedHost`) sees the
  runtime's distribution upgraded under the running site, :data:`~kontur.runtime.faults.
  FAULT_DELAY_S` after the worker is ready: the stack check finds a version it did not pin,
  ``driver_unapproved`` takes the perimeter to SAFE;
- ``driver-unapproved`` and ``accelerator-reset`` place the task on a *simulated* ``gpu``: the
  worker's CPU runner behind a simulated execution provider
  (:mod:`kontur.worker.runners.simulated`) and a simulated driver :data:`SIM_DRIVER`
  :data:`SIM_DRIVER_VERSION`, approved for the run. ``driver-unapproved`` then loads another
  version of that driver (the stack check moves the task to the CPU); ``accelerator-reset``
  makes the simulated EP fail at its :data:`RESET_AFTER_CALLS`-th inference (the worker
  exits, the supervisor raises ``accelerator_reset`` and restarts it on the CPU);
- ``drift-classes`` and ``drift-recall`` are armed in the worker's spec like the ``worker-…``
  faults (:mod:`kontur.worker.faults`), from the time the verifier's drift baseline is learnt
  (:func:`drift_fault_start_s`).
"""

from __future__ import annotations

from collections.abc import Mapping

from kontur.config import DriftConfig
from kontur.placement.allowlist import DRIVER_MODULES, StackFacts
from kontur.runtime.stackwatch import Probe

__all__ = [
    "RESET_AFTER_CALLS",
    "SIMULATED_PLATFORM",
    "SIM_ACCELERATOR_FAULTS",
    "SIM_DRIVER",
    "SIM_DRIVER_VERSION",
    "STACK_FAULTS",
    "TRIGGER_FAULTS",
    "SimulatedHost",
    "drift_fault_start_s",
    "simulated_drivers",
]

#: Faults that need the task on the simulated accelerator.
SIM_ACCELERATOR_FAULTS = ("driver-unapproved", "accelerator-reset")
#: Faults that change what the stack probe sees.
STACK_FAULTS = ("runtime-unapproved", "driver-unapproved")
TRIGGER_FAULTS = ("runtime-unapproved", *SIM_ACCELERATOR_FAULTS)
SIMULATED_PLATFORM = "gpu"
#: The simulated accelerator's kernel driver, and the version the demo approves.
SIM_DRIVER = "kontur-sim"
SIM_DRIVER_VERSION = "1.0"
#: The simulated EP fails at this inference: about 3 s of a 10 fps clip.
RESET_AFTER_CALLS = 30
#: What an upgrade under the running site appends to the runtime's version.
UPGRADE_SUFFIX = ".post1-unapproved"


def simulated_drivers(runtime: str) -> Mapping[tuple[str, str], str]:
    """The driver table with the simulated accelerator's driver for ``runtime``."""
    return {**DRIVER_MODULES, (runtime, SIMULATED_PLATFORM): SIM_DRIVER}


class SimulatedHost:
    """The host as the demo's stack probe sees it: the real facts, the simulated driver, and
    what :meth:`upgrade_runtime` or :meth:`reload_driver` changed since."""

    def __init__(self, host: Probe, module: str) -> None:
        self._host = host
        self._module = module
        self._upgraded = False
        self._driver = SIM_DRIVER_VERSION

    def upgrade_runtime(self) -> None:
        """Every distribution of the runtime's module gets a new version (pip ran)."""
        self._upgraded = True

    def reload_driver(self) -> None:
        """The simulated driver is reloaded at another version (a driver update)."""
        self._driver = "1.1"

    def facts(self) -> StackFacts:
        """The host's facts with the simulation's changes."""
        real = self._host.facts()
        modules = {m: dict(d) for m, d in real.modules.items()}
        if self._upgraded:
            modules[self._module] = {
                d: v + UPGRADE_SUFFIX for d, v in modules.get(self._module, {}).items()
            }
        return StackFacts(modules, {**real.drivers, SIM_DRIVER: self._driver})


def drift_fault_start_s(drift: DriftConfig) -> float:
    """Stream time from which a ``drift-…`` fault changes the worker's results: once the
    verifier's first baseline is learnt (``baseline_s`` of a clip analysed from 0 s), plus
    one window so the first tests have seen the honest worker too."""
    return drift.baseline_s + drift.window_s
