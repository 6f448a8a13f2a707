"""Camera tamper faults for ``kontur demo --inject-fault tamper-…`` and ingest's tamper spec.

A ``tamper-…`` fault tampers the decoded frames of the first camera inside its ingest, from
:data:`TAMPER_FAULT_START_S` of stream time on, with the seeded generator
:class:`kontur.tamper.inject.Injector`: the worker and the verifier see what a covered,
defocused, blinded, moved, frozen or screen-fooled camera would send, while the recorded
bitstream stays the camera's own. The camera's tamper monitor must raise the event, the
supervisor archive it and degrade, and the gate refuse every automatic critical action on the
camera from then on (``tests/e2e/test_e2e_tamper.py``, ADR 0030). The fault is armed in
ingest's spec at start (:func:`ingest_tamper_spec`), so
:func:`kontur.runtime.faults.inject` has nothing left to do for it.

This module imports no image code: the supervisor loads none.
"""

from __future__ import annotations

from typing import Any

from kontur.config import TamperSettings

__all__ = [
    "TAMPER_FAULTS",
    "TAMPER_FAULT_SEED",
    "TAMPER_FAULT_START_S",
    "ingest_tamper_spec",
    "tamper_fault_spec",
]

#: ``--inject-fault`` names, one per kind of the tamper monitor.
TAMPER_FAULTS = (
    "tamper-covered",
    "tamper-defocus",
    "tamper-glare",
    "tamper-low-light",
    "tamper-shifted",
    "tamper-frozen",
    "tamper-screen",
)
#: Stream time (pts) from which the frames are tampered: after the monitor's warm-up (its
#: enrolled reference view) and the first honest dwells.
TAMPER_FAULT_START_S = 3.0
#: The generator's seed: one fixed draw per kind, so a demo run is repeatable.
TAMPER_FAULT_SEED = 1


def tamper_fault_spec(fault: str | None) -> dict[str, Any] | None:
    """``{kind, at_s, seed}`` for a ``tamper-…`` fault (the kind as the monitor names it)."""
    if fault not in TAMPER_FAULTS:
        return None
    kind = fault.removeprefix("tamper-").replace("-", "_")
    return {"kind": kind, "at_s": TAMPER_FAULT_START_S, "seed": TAMPER_FAULT_SEED}


def ingest_tamper_spec(settings: TamperSettings, fault: str | None = None) -> dict[str, Any]:
    """The ``tamper`` entry of a camera's ingest spec: the ``tamper:`` settings, the
    monitor's own settings, and the demo fault to apply to this camera's frames (if any)."""
    return {
        "enabled": settings.enabled,
        "max_fps": settings.max_fps,
        "monitor": settings.monitor,
        "fault": tamper_fault_spec(fault),
    }
