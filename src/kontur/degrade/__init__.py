"""Safe degradation: health monitors and the NORMAL / DEGRADED / SAFE state machine.

When the driver is not approved, the accelerator resets, the model loses its integrity, time
is lost or the results turn anomalous, the paper moves priority tasks to the CPU, analyses
the rest less often or not at all, and keeps recording the source stream. Escalation is
immediate; recovery is hysteretic and explicit (ADR 0008).

Typical supervisor loop::

    machine = DegradationMachine(config.degradation, clock)
    monitors = [ModelIntegrityMonitor(...), ClockJumpMonitor(...), watchdog]
    for transition in step(machine, monitors):
        publish(transition.to_message())
"""

from kontur.degrade.errors import (
    DegradationError,
    MonitorSetupError,
    ScopeError,
    UnknownTriggerError,
)
from kontur.degrade.machine import (
    RECOVERED,
    TRIGGER_TARGETS,
    Actions,
    ActiveTrigger,
    DegradationMachine,
    State,
    Transition,
    Trigger,
    actions_for,
)
from kontur.degrade.monitors import (
    ClockJumpMonitor,
    ModelIntegrityMonitor,
    Monitor,
    StackMonitor,
    Watchdog,
    step,
)

__all__ = [
    "RECOVERED",
    "TRIGGER_TARGETS",
    "Actions",
    "ActiveTrigger",
    "ClockJumpMonitor",
    "DegradationError",
    "DegradationMachine",
    "ModelIntegrityMonitor",
    "Monitor",
    "MonitorSetupError",
    "ScopeError",
    "StackMonitor",
    "State",
    "Transition",
    "Trigger",
    "UnknownTriggerError",
    "Watchdog",
    "actions_for",
    "step",
]
