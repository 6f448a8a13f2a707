"""Safe degradation: a three-state machine with hysteresis (DESIGN.md §1, "Safe degradation").

The paper (section "Модель адаптивного доверенного контура видеоаналитики") puts it this way:
when the driver version is not approved, when the GPU/NPU resets, when the model's integrity is
broken, when time is lost or when the results turn anomalous, the priority tasks move to the
CPU; the other tasks are analysed less often or lose their secondary functions; and recording
of the source stream is kept. DESIGN.md adds that hysteresis and explicit recovery criteria
prevent flapping. ADR 0008 records the choices below.

States, least severe first: ``NORMAL`` < ``DEGRADED`` < ``SAFE``.

How the machine moves:

1. :meth:`DegradationMachine.raise_trigger` escalates at once, never waiting, to the trigger's
   target state when that is more severe than the current one, and records the trigger as
   active. Raising it again refreshes it (a trigger that keeps firing keeps the state up).
2. :meth:`DegradationMachine.clear_trigger` says the condition is gone.
3. :meth:`DegradationMachine.tick` recovers, one level at a time, and only when (a) no active
   trigger requires the current level and (b) ``recovery_seconds`` of the monotonic clock have
   passed both since the last trigger was raised or cleared and since the last transition.
   A transient trigger (a crash, a hang, a clock step, a reset, an anomaly) lapses by itself
   once it has not fired for ``recovery_seconds``. ``model_integrity``,
   ``driver_unapproved``, ``isolation_partial`` and ``camera_tamper`` never lapse: they need
   :meth:`~DegradationMachine.clear_trigger`, the explicit recovery criterion (the file
   matches its release again, the driver is approved, the camera's last open tamper event
   ended).

The core is pure: it reads only the injected :class:`~kontur.clock.Clock` (monotonic time for
every interval, wall time only to stamp transitions) and starts no thread. The supervisor
feeds it what the monitors report and calls :meth:`~DegradationMachine.tick` periodically.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from kontur.clock import Clock
from kontur.config import DegradationConfig
from kontur.degrade.errors import UnknownTriggerError
from kontur.wire import StateChanged
from kontur.wire.verdict import SystemState

__all__ = [
    "RECOVERED",
    "TRIGGER_TARGETS",
    "Actions",
    "ActiveTrigger",
    "DegradationMachine",
    "State",
    "Transition",
    "Trigger",
    "actions_for",
]

_log = logging.getLogger(__name__)

#: The ``trigger`` of a step-down transition.
RECOVERED = "recovered"


#: The perimeter's operating state; the enum lives in :mod:`kontur.wire.verdict` (shared).
State = SystemState


class Trigger(StrEnum):
    """An event that pushes the perimeter into degradation (the paper's list, plus a watchdog)."""

    MODEL_INTEGRITY = "model_integrity"
    """The model on disk no longer matches the verified release."""
    CLOCK_JUMP = "clock_jump"
    """The wall clock stepped against the monotonic clock (time lost or forged)."""
    WORKER_CRASH = "worker_crash"
    """The analytics worker exited without being asked to."""
    WORKER_HANG = "worker_hang"
    """The analytics worker stopped reporting progress."""
    ACCELERATOR_RESET = "accelerator_reset"
    """The GPU/NPU was reset (driver recovery, Xid, device lost): the worker placed on it
    exited because its execution provider failed."""
    DRIVER_UNAPPROVED = "driver_unapproved"
    """A runtime, execution provider or driver the analytics ran on is not on the approved
    list (``placement.allowlist``), or changed since start."""
    ANOMALOUS_RESULTS = "anomalous_results"
    """The verifier keeps disagreeing with the detector's results, or a camera's detection
    rate or class mix drifted from its baseline."""
    WORKER_MISBEHAVING = "worker_misbehaving"
    """The worker sent a message its edge does not allow (evidence of compromise)."""
    BLOCK_FAILED = "block_failed"
    """Ingest, the verifier or the gate crashed, hung or was restarted."""
    CAMERA_UNTRUSTED = "camera_untrusted"
    """A camera's GOPs keep failing verification (NOT_AUTHENTIC, MISSING, REPLAYED...)."""
    ISOLATION_PARTIAL = "isolation_partial"
    """The worker runs in a partial sandbox (``unsafe_allow_partial_isolation``)."""
    CAMERA_TAMPER = "camera_tamper"
    """A camera is covered, defocused, blinded, moved, frozen or shown a screen (ADR 0030);
    cleared when no camera has a tamper event open any more."""

    @property
    def target(self) -> State:
        """The state this trigger escalates to (its severity)."""
        return TRIGGER_TARGETS[self]

    @property
    def needs_explicit_clear(self) -> bool:
        """True when only :meth:`DegradationMachine.clear_trigger` ends it, never time alone."""
        return self in _EXPLICIT_CLEAR

    @classmethod
    def parse(cls, name: str | Trigger) -> Trigger:
        """The trigger called ``name``; raises :class:`UnknownTriggerError` for any other."""
        try:
            return cls(name)
        except ValueError:
            known = [t.value for t in cls]
            raise UnknownTriggerError(f"expected a trigger among {known}, got {name!r}") from None


#: Where each trigger takes the perimeter (ADR 0008's table).
TRIGGER_TARGETS: Mapping[Trigger, State] = MappingProxyType(
    {
        Trigger.MODEL_INTEGRITY: State.SAFE,
        Trigger.CLOCK_JUMP: State.DEGRADED,
        Trigger.WORKER_CRASH: State.DEGRADED,
        Trigger.WORKER_HANG: State.DEGRADED,
        Trigger.ACCELERATOR_RESET: State.DEGRADED,
        Trigger.DRIVER_UNAPPROVED: State.SAFE,
        Trigger.ANOMALOUS_RESULTS: State.DEGRADED,
        Trigger.WORKER_MISBEHAVING: State.DEGRADED,
        Trigger.BLOCK_FAILED: State.DEGRADED,
        Trigger.CAMERA_UNTRUSTED: State.DEGRADED,
        Trigger.ISOLATION_PARTIAL: State.DEGRADED,
        Trigger.CAMERA_TAMPER: State.DEGRADED,
    }
)

_EXPLICIT_CLEAR = frozenset(
    {
        Trigger.MODEL_INTEGRITY,
        Trigger.DRIVER_UNAPPROVED,
        Trigger.ISOLATION_PARTIAL,
        Trigger.CAMERA_TAMPER,
    }
)


@dataclass(frozen=True)
class ActiveTrigger:
    """A trigger that currently holds the state up, with the last detail it was raised with."""

    trigger: Trigger
    detail: str
    first_raised_at: float
    """Wall time of the first raise since it was last inactive."""
    last_raised_at: float
    """Wall time of the latest raise."""
    times_raised: int


@dataclass(frozen=True)
class Transition:
    """One move of the state machine, as the archive stores it and the operator reads it."""

    at: float
    """Wall time (seconds since the epoch) from the injected clock."""
    from_state: State
    to_state: State
    trigger: str
    """The trigger's name on escalation, :data:`RECOVERED` on a step down."""
    detail: str

    @property
    def escalation(self) -> bool:
        """True when the move went to a more severe state."""
        return self.to_state.level > self.from_state.level

    def to_message(self) -> StateChanged:
        """The wire message the supervisor sends to the gate and ingest (``detail`` stays here)."""
        return StateChanged(
            at=self.at,
            from_state=self.from_state.value,
            to_state=self.to_state.value,
            trigger=self.trigger,
        )


@dataclass(frozen=True)
class Actions:
    """What the rest of the perimeter must do in one state.

    ``keep_recording`` is always True and cannot be built False: the raw stream is the
    evidence that every later investigation needs, whatever else degrades (ADR 0008).
    """

    state: State
    analysis_stride_non_priority: int
    """Analyse every n-th frame of non-priority cameras; 0 means their analysis is off."""
    move_priority_to_cpu: bool
    """The supervisor restarts a worker that runs on an accelerator on the CPU (paper: move
    priority tasks to the CPU). Critical actions need no flag here: the gate reads the state
    itself and restricts them outside NORMAL (ADR 0007)."""
    keep_recording: bool = True

    def __post_init__(self) -> None:
        if not self.keep_recording:
            raise ValueError("expected keep_recording=True in every state, got False")
        if self.analysis_stride_non_priority < 0:
            raise ValueError(f"expected a stride >= 0, got {self.analysis_stride_non_priority}")

    @property
    def non_priority_analysis_off(self) -> bool:
        """True when non-priority cameras are recorded but not analysed."""
        return self.analysis_stride_non_priority == 0


def actions_for(state: State, config: DegradationConfig) -> Actions:
    """The actions the paper prescribes for ``state``, with the stride from ``config``."""
    if state is State.NORMAL:
        return Actions(state, 1, move_priority_to_cpu=False)
    if state is State.DEGRADED:
        return Actions(
            state,
            config.degraded_analysis_stride,
            move_priority_to_cpu=True,
        )
    return Actions(state, 0, move_priority_to_cpu=True)


class DegradationMachine:
    """NORMAL / DEGRADED / SAFE with immediate escalation and hysteretic recovery.

    See the module docstring for the rules. Not thread-safe: one supervisor loop owns it.
    """

    def __init__(self, config: DegradationConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._state = State.NORMAL
        self._active: dict[Trigger, ActiveTrigger] = {}
        self._raised_mono: dict[Trigger, float] = {}
        self._last_event: float | None = None
        self._last_transition: float | None = None
        self._history: list[Transition] = []
        self._raised: dict[Trigger, int] = {}

    @property
    def raised(self) -> Mapping[Trigger, int]:
        """How many times each trigger was raised since construction (a raise that moved
        nothing counts too: an accelerator that resets twice in DEGRADED reset twice)."""
        return MappingProxyType(dict(self._raised))

    @property
    def state(self) -> State:
        """The current state."""
        return self._state

    @property
    def active_triggers(self) -> Mapping[Trigger, ActiveTrigger]:
        """Triggers that hold the state up now (transient ones that lapsed are left out)."""
        now = self._clock.monotonic()
        return {t: a for t, a in self._active.items() if not self._lapsed(t, now)}

    @property
    def transitions(self) -> tuple[Transition, ...]:
        """Every transition since construction, oldest first."""
        return tuple(self._history)

    def actions(self, state: State | None = None) -> Actions:
        """The actions for ``state`` (the current state when omitted)."""
        return actions_for(self._state if state is None else state, self._config)

    def raise_trigger(self, name: str | Trigger, detail: str) -> list[Transition]:
        """Record ``name`` as active and escalate at once if its target is more severe.

        Returns the transition made (none when the state is already at or above the target).
        """
        trigger = Trigger.parse(name)
        mono, wall = self._clock.monotonic(), self._clock.wall()
        prev = None if self._lapsed(trigger, mono) else self._active.get(trigger)
        self._active[trigger] = ActiveTrigger(
            trigger=trigger,
            detail=detail,
            first_raised_at=wall if prev is None else prev.first_raised_at,
            last_raised_at=wall,
            times_raised=1 if prev is None else prev.times_raised + 1,
        )
        self._raised_mono[trigger] = mono
        self._raised[trigger] = self._raised.get(trigger, 0) + 1
        self._last_event = mono
        if trigger.target.level <= self._state.level:
            return []
        return [self._move(trigger.target, trigger.value, detail, mono, wall)]

    def clear_trigger(self, name: str | Trigger) -> None:
        """The condition behind ``name`` is gone; a no-op when it was not active.

        Clearing restarts the quiet period: recovery still waits ``recovery_seconds``.
        """
        trigger = Trigger.parse(name)
        mono = self._clock.monotonic()
        if trigger not in self._active:
            return
        lapsed = self._lapsed(trigger, mono)
        del self._active[trigger]
        del self._raised_mono[trigger]
        if not lapsed:
            self._last_event = mono

    def tick(self) -> list[Transition]:
        """Step down one level if the recovery criteria hold; returns the transition made."""
        mono = self._clock.monotonic()
        for trigger in [t for t in self._active if self._lapsed(t, mono)]:
            del self._active[trigger]
            del self._raised_mono[trigger]
        if self._state is State.NORMAL:
            return []
        required = max((t.target.level for t in self._active), default=State.NORMAL.level)
        if required >= self._state.level:
            return []
        if not (self._quiet(self._last_event, mono) and self._quiet(self._last_transition, mono)):
            return []
        lower = tuple(State)[self._state.level - 1]
        detail = (
            f"no active trigger requires {self._state.value}; no trigger raised or cleared "
            f"for {self._config.recovery_seconds:.1f} s"
        )
        return [self._move(lower, RECOVERED, detail, mono, self._clock.wall())]

    def _lapsed(self, trigger: Trigger, mono: float) -> bool:
        """A transient trigger lapses once it has not fired for ``recovery_seconds``."""
        if trigger.needs_explicit_clear or trigger not in self._raised_mono:
            return False
        return mono - self._raised_mono[trigger] >= self._config.recovery_seconds

    def _quiet(self, since: float | None, mono: float) -> bool:
        return since is None or mono - since >= self._config.recovery_seconds

    def _move(self, to: State, trigger: str, detail: str, mono: float, wall: float) -> Transition:
        transition = Transition(wall, self._state, to, trigger, detail)
        self._state = to
        self._last_transition = mono
        self._history.append(transition)
        level = logging.WARNING if transition.escalation else logging.INFO
        _log.log(
            level,
            "degradation %s -> %s (%s): %s",
            transition.from_state.value,
            to.value,
            trigger,
            detail,
        )
        return transition
