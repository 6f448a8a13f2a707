"""The supervisor's side of the approved inference stack (issue 13 §3).

Order of steps:

1. at start, before the sandboxed worker runs, the supervisor probes the host itself
   (:class:`kontur.placement.probe.HostProbe`: installed metadata and the kernel's module
   versions; the worker is never asked) and pins what it found for the run;
2. it judges every platform (:func:`kontur.placement.allowlist.judge`) and archives the facts
   and verdicts (a ``stack_checked`` event);
3. the dispatcher is offered only platforms whose stack is approved. The CPU always stays:
   it is the fail-safe, and an unapproved CPU stack is a degradation trigger (step 4), not a
   refusal to start, so recording goes on;
4. while the run lasts, :meth:`StackWatch.problem` (polled by
   :class:`~kontur.degrade.StackMonitor`) probes again and judges every platform the worker
   has run on during this run. A problem raises ``driver_unapproved``: SAFE, the priority
   task moves to the CPU, and the trigger holds until that stack is approved again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from kontur.config import AllowlistConfig
from kontur.placement._platforms import PLATFORMS
from kontur.placement.allowlist import (
    DRIVER_MODULES,
    RUNTIME_MODULES,
    Allowlist,
    StackFacts,
    StackVerdict,
    judge,
)

__all__ = ["Probe", "StackWatch", "allowlist_from"]


class Probe(Protocol):
    """Where the facts come from: the host (:class:`~kontur.placement.probe.HostProbe`)."""

    def facts(self) -> StackFacts:
        """The versions installed and loaded now."""
        ...


def allowlist_from(cfg: AllowlistConfig) -> Allowlist:
    """The core's allow-list from the site config's ``placement.allowlist``."""
    return Allowlist(dict(cfg.runtimes), dict(cfg.drivers))


class StackWatch:
    """Facts pinned at start, verdicts per platform, the run-time check (see the module)."""

    def __init__(
        self,
        allow: Allowlist,
        runtime: str,
        probe: Probe,
        drivers: Mapping[tuple[str, str], str] = DRIVER_MODULES,
    ) -> None:
        if runtime not in RUNTIME_MODULES:
            raise ValueError(f"expected a runtime among {sorted(RUNTIME_MODULES)}, got {runtime!r}")
        self.allow, self.runtime, self.probe, self.drivers = allow, runtime, probe, drivers
        self.pinned = probe.facts()
        self.used: set[str] = set()
        """Every platform the worker has run on during this run."""

    def verdicts(self, facts: StackFacts | None = None) -> dict[str, StackVerdict]:
        """Each platform's verdict on ``facts`` (the pinned ones when omitted)."""
        facts = self.pinned if facts is None else facts
        return {
            p: judge(p, self.runtime, facts, self.allow, self.pinned, self.drivers)
            for p in PLATFORMS
        }

    def start_event(self) -> dict[str, Any]:
        """The ``stack_checked`` event archived at start."""
        return {
            "event": "stack_checked",
            "runtime": self.runtime,
            "facts": self.pinned.to_json(),
            "verdicts": [v.to_json() for v in self.verdicts().values()],
        }

    def approved(self, allowed: list[str] | None) -> list[str]:
        """``allowed`` (every platform when None) less the accelerators not approved."""
        verdicts = self.verdicts()
        candidates = list(PLATFORMS) if allowed is None else allowed
        return [p for p in candidates if p == "cpu" or verdicts[p].approved]

    def problem(self, platform: str) -> str | None:
        """Probe again; one line on what is not approved among the stacks of ``platform``
        and every platform run on before it this run, or None."""
        self.used.add(platform)
        facts = self.probe.facts()
        reasons = [
            reason
            for p in sorted(self.used)
            for reason in judge(
                p, self.runtime, facts, self.allow, self.pinned, self.drivers
            ).reasons
        ]
        return "; ".join(reasons) if reasons else None
