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

Scopes (ADR 0040): the machine keeps one state for the site and one for each camera that a
trigger concerned. A trigger raised with ``camera=`` (only the camera-scoped ones:
``camera_tamper``, ``camera_untrusted``, ``anomalous_results``, ``block_failed``, see
:attr:`Trigger.camera_scoped`) moves that camera's state only; every other raise moves the
site's. Each scope escalates, lapses and recovers by the rules above on its own (hysteresis
per camera as per site). A camera's *effective* state, the one the gate decides its
requests under, is the more severe of the site's and its own (:meth:`camera_state`);
:attr:`~DegradationMachine.state` is the most severe of all, the operator's at-a-glance view.

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
from kontur.degrade.errors import ScopeError, UnknownTriggerError
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
    raised for that camera, cleared when its last open tamper event ends (ADR 0040)."""

    @property
    def target(self) -> State:
        """The state this trigger escalates to (its severity)."""
        return TRIGGER_TARGETS[self]

    @property
    def camera_scoped(self) -> bool:
        """True when the condition may concern one camera only (ADR 0040): raised with a
        camera, it moves that camera's state and leaves the site's alone."""
        return self in _CAMERA_SCOPED

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

#: Triggers that may be raised for one camera (ADR 0040). The rest concern what every camera
#: shares (the model, the clock, the worker, the accelerator, the driver, the sandbox).
_CAMERA_SCOPED = frozenset(
    {
        Trigger.CAMERA_TAMPER,
        Trigger.CAMERA_UNTRUSTED,
        Trigger.ANOMALOUS_RESULTS,
        Trigger.BLOCK_FAILED,
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
    camera: str | None = None
    """The camera whose own state moved; None for the site's state (ADR 0040)."""

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
            camera_id=self.camera,
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


class _Scope:
    """One state with its active triggers and quiet periods: the site's or one camera's.

    Moves nothing outside itself: the machine records and logs the transitions it returns.
    """

    def __init__(self, camera: str | None, config: DegradationConfig) -> None:
        self.camera = camera
        self.config = config
        self.state = State.NORMAL
        self.active: dict[Trigger, ActiveTrigger] = {}
        self.raised_mono: dict[Trigger, float] = {}
        self.last_event: float | None = None
        self.last_transition: float | None = None

    def active_now(self, mono: float) -> dict[Trigger, ActiveTrigger]:
        """The active triggers, transient ones that lapsed left out."""
        return {t: a for t, a in self.active.items() if not self.lapsed(t, mono)}

    def raise_(self, trigger: Trigger, detail: str, mono: float, wall: float) -> Transition | None:
        """Record ``trigger`` as active; the escalation it causes, if any."""
        prev = None if self.lapsed(trigger, mono) else self.active.get(trigger)
        self.active[trigger] = ActiveTrigger(
            trigger=trigger,
            detail=detail,
            first_raised_at=wall if prev is None else prev.first_raised_at,
            last_raised_at=wall,
            times_raised=1 if prev is None else prev.times_raised + 1,
        )
        self.raised_mono[trigger] = mono
        self.last_event = mono
        if trigger.target.level <= self.state.level:
            return None
        return self.move(trigger.target, trigger.value, detail, mono, wall)

    def clear(self, trigger: Trigger, mono: float) -> None:
        """Forget ``trigger``; clearing a live one restarts the quiet period."""
        if trigger not in self.active:
            return
        lapsed = self.lapsed(trigger, mono)
        del self.active[trigger]
        del self.raised_mono[trigger]
        if not lapsed:
            self.last_event = mono

    def tick(self, mono: float, wall: float) -> Transition | None:
        """The one-level step down the recovery criteria allow now, if any."""
        for trigger in [t for t in self.active if self.lapsed(t, mono)]:
            del self.active[trigger]
            del self.raised_mono[trigger]
        if self.state is State.NORMAL:
            return None
        required = max((t.target.level for t in self.active), default=State.NORMAL.level)
        if required >= self.state.level:
            return None
        if not (self.quiet(self.last_event, mono) and self.quiet(self.last_transition, mono)):
            return None
        lower = tuple(State)[self.state.level - 1]
        detail = (
            f"no active trigger requires {self.state.value}; no trigger raised or cleared "
            f"for {self.config.recovery_seconds:.1f} s"
        )
        return self.move(lower, RECOVERED, detail, mono, wall)

    def lapsed(self, trigger: Trigger, mono: float) -> bool:
        """A transient trigger lapses once it has not fired for ``recovery_seconds``."""
        if trigger.needs_explicit_clear or trigger not in self.raised_mono:
            return False
        return mono - self.raised_mono[trigger] >= self.config.recovery_seconds

    def quiet(self, since: float | None, mono: float) -> bool:
        return since is None or mono - since >= self.config.recovery_seconds

    def move(self, to: State, trigger: str, detail: str, mono: float, wall: float) -> Transition:
        transition = Transition(wall, self.state, to, trigger, detail, self.camera)
        self.state = to
        self.last_transition = mono
        return transition

    @property
    def idle(self) -> bool:
        """NORMAL with nothing active: a camera's scope that can be forgotten."""
        return self.state is State.NORMAL and not self.active


class DegradationMachine:
    """NORMAL / DEGRADED / SAFE with immediate escalation and hysteretic recovery, for the
    site and for each camera (ADR 0040).

    See the module docstring for the rules. Not thread-safe: one supervisor loop owns it.
    """

    def __init__(self, config: DegradationConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._site = _Scope(None, config)
        self._cameras: dict[str, _Scope] = {}
        """Cameras whose own state is not NORMAL or that hold a trigger; an idle one is
        dropped at the next tick (memory is bounded by the cameras in trouble)."""
        self._history: list[Transition] = []
        self._raised: dict[Trigger, int] = {}

    @property
    def raised(self) -> Mapping[Trigger, int]:
        """How many times each trigger was raised since construction, over every scope (a
        raise that moved nothing counts too: an accelerator that resets twice in DEGRADED
        reset twice)."""
        return MappingProxyType(dict(self._raised))

    @property
    def state(self) -> State:
        """The most severe state of the site and of every camera: the operator's view."""
        return max((self._site.state, *(c.state for c in self._cameras.values())),
                   key=lambda s: s.level)  # fmt: skip

    @property
    def site_state(self) -> State:
        """The site's own state: what every camera shares (the worker's placement follows it)."""
        return self._site.state

    def camera_state(self, camera: str) -> State:
        """``camera``'s effective state: the more severe of the site's and its own."""
        own = self._cameras.get(camera)
        if own is None or own.state.level <= self._site.state.level:
            return self._site.state
        return own.state

    @property
    def camera_states(self) -> Mapping[str, State]:
        """The own state of every camera that has one apart from NORMAL, or a trigger."""
        return MappingProxyType({c: s.state for c, s in sorted(self._cameras.items())})

    @property
    def active_triggers(self) -> Mapping[Trigger, ActiveTrigger]:
        """Triggers that hold a state up now, over every scope (when several scopes hold one
        trigger, the latest raise); transient ones that lapsed are left out."""
        mono = self._clock.monotonic()
        out: dict[Trigger, ActiveTrigger] = {}
        for scope in (self._site, *self._cameras.values()):
            for t, a in scope.active_now(mono).items():
                if t not in out or a.last_raised_at > out[t].last_raised_at:
                    out[t] = a
        return out

    def active_for(self, camera: str | None = None) -> Mapping[Trigger, ActiveTrigger]:
        """The triggers that hold ``camera``'s own state up (the site's when None)."""
        scope = self._site if camera is None else self._cameras.get(camera)
        return {} if scope is None else scope.active_now(self._clock.monotonic())

    @property
    def transitions(self) -> tuple[Transition, ...]:
        """Every transition of every scope since construction, oldest first."""
        return tuple(self._history)

    def actions(self, state: State | None = None) -> Actions:
        """The actions for ``state`` (the site's state when omitted)."""
        return actions_for(self._site.state if state is None else state, self._config)

    def raise_trigger(
        self, name: str | Trigger, detail: str, camera: str | None = None
    ) -> list[Transition]:
        """Record ``name`` as active and escalate at once if its target is more severe.

        With ``camera``, only that camera's state moves; ``name`` must then be camera-scoped
        (:class:`ScopeError` otherwise). Returns the transition made (none when the scope is
        already at or above the target).
        """
        trigger = Trigger.parse(name)
        scope = self._scope(trigger, camera)
        self._raised[trigger] = self._raised.get(trigger, 0) + 1
        moved = scope.raise_(trigger, detail, self._clock.monotonic(), self._clock.wall())
        return [] if moved is None else [self._record(moved)]

    def clear_trigger(self, name: str | Trigger, camera: str | None = None) -> None:
        """The condition behind ``name`` is gone (for ``camera``, or the site when None); a
        no-op when it was not active there.

        Clearing restarts the quiet period: recovery still waits ``recovery_seconds``.
        """
        trigger = Trigger.parse(name)
        scope = self._site if camera is None else self._cameras.get(camera)
        if scope is not None:
            scope.clear(trigger, self._clock.monotonic())

    def tick(self) -> list[Transition]:
        """Step each scope down one level where its recovery criteria hold; returns the
        transitions made (the site's first, then the cameras' by name)."""
        mono, wall = self._clock.monotonic(), self._clock.wall()
        moved: list[Transition] = []
        for scope in (self._site, *(self._cameras[c] for c in sorted(self._cameras))):
            t = scope.tick(mono, wall)
            if t is not None:
                moved.append(self._record(t))
        for cam in [c for c, s in self._cameras.items() if s.idle]:
            del self._cameras[cam]
        return moved

    def _scope(self, trigger: Trigger, camera: str | None) -> _Scope:
        if camera is None:
            return self._site
        if not trigger.camera_scoped:
            scoped = sorted(t.value for t in _CAMERA_SCOPED)
            raise ScopeError(
                f"camera {camera!r}: expected a camera-scoped trigger among {scoped}, "
                f"got {trigger.value!r} (it concerns the whole site: raise it without a camera)"
            )
        if not camera:
            raise ScopeError("expected a camera id or None for the site, got ''")
        return self._cameras.setdefault(camera, _Scope(camera, self._config))

    def _record(self, transition: Transition) -> Transition:
        self._history.append(transition)
        level = logging.WARNING if transition.escalation else logging.INFO
        where = "site" if transition.camera is None else f"camera {transition.camera}"
        _log.log(
            level,
            "degradation (%s) %s -> %s (%s): %s",
            where,
            transition.from_state.value,
            transition.to_state.value,
            transition.trigger,
            transition.detail,
        )
        return transition
