"""The degradation state machine: immediate escalation, hysteretic recovery, actions."""

from __future__ import annotations

import pytest
from degrade_clock import RECOVERY

from kontur.clock import ManualClock
from kontur.config import DegradationConfig
from kontur.degrade import (
    RECOVERED,
    TRIGGER_TARGETS,
    Actions,
    DegradationMachine,
    State,
    Transition,
    Trigger,
    UnknownTriggerError,
    actions_for,
)
from kontur.wire import StateChanged, decode, encode

# Each trigger, named after the fault it models, with the state the paper's rule requires.
ESCALATIONS = [
    pytest.param("model_integrity", State.SAFE, id="model_swapped_on_disk"),
    pytest.param("clock_jump", State.DEGRADED, id="wall_clock_stepped"),
    pytest.param("worker_crash", State.DEGRADED, id="worker_killed"),
    pytest.param("worker_hang", State.DEGRADED, id="worker_stalled"),
    pytest.param("accelerator_reset", State.DEGRADED, id="gpu_reset"),
    pytest.param("driver_unapproved", State.SAFE, id="driver_not_whitelisted"),
    pytest.param("anomalous_results", State.DEGRADED, id="verifier_disagrees"),
    pytest.param("worker_misbehaving", State.DEGRADED, id="edge_violation"),
    pytest.param("block_failed", State.DEGRADED, id="ingest_verifier_gate_fault"),
    pytest.param("camera_untrusted", State.DEGRADED, id="sustained_failing_gops"),
    pytest.param("isolation_partial", State.DEGRADED, id="partial_sandbox"),
    pytest.param("camera_tamper", State.DEGRADED, id="camera_covered"),
]


def test_trigger_table_covers_every_trigger() -> None:
    assert set(TRIGGER_TARGETS) == set(Trigger)
    assert {t for t in Trigger if t.needs_explicit_clear} == {
        Trigger.MODEL_INTEGRITY,
        Trigger.DRIVER_UNAPPROVED,
        Trigger.ISOLATION_PARTIAL,
        Trigger.CAMERA_TAMPER,
    }


@pytest.mark.parametrize(("name", "target"), ESCALATIONS)
def test_each_trigger_escalates_to_its_target_at_once(
    machine: DegradationMachine, clock: ManualClock, name: str, target: State
) -> None:
    moved = machine.raise_trigger(name, "seen by a test")

    assert moved == [Transition(clock.wall(), State.NORMAL, target, name, "seen by a test")]
    assert machine.state is target
    assert Trigger(name).target is target
    assert set(machine.active_triggers) == {Trigger(name)}
    assert machine.active_triggers[Trigger(name)].detail == "seen by a test"


def test_escalation_goes_straight_past_degraded_and_from_degraded_to_safe(
    machine: DegradationMachine,
) -> None:
    machine.raise_trigger("worker_crash", "worker exited with code 1")
    moved = machine.raise_trigger(Trigger.MODEL_INTEGRITY, "model file m.onnx: expected …")

    assert [(t.from_state, t.to_state, t.trigger) for t in moved] == [
        (State.DEGRADED, State.SAFE, "model_integrity")
    ]
    assert moved[0].escalation


def test_a_trigger_no_more_severe_than_the_state_makes_no_transition(
    machine: DegradationMachine,
) -> None:
    machine.raise_trigger("driver_unapproved", "driver 550.1 not approved")

    assert machine.raise_trigger("worker_hang", "worker: no heartbeat") == []
    assert machine.raise_trigger("driver_unapproved", "driver 550.1 not approved") == []
    assert machine.state is State.SAFE
    assert len(machine.transitions) == 1
    assert machine.active_triggers[Trigger.DRIVER_UNAPPROVED].times_raised == 2


def test_recovery_waits_for_recovery_seconds_of_quiet(
    machine: DegradationMachine, clock: ManualClock
) -> None:
    machine.raise_trigger("worker_crash", "worker exited with code -9 (SIGKILL)")

    clock.advance(2.5)
    assert machine.tick() == []
    assert machine.state is State.DEGRADED

    clock.advance(0.5)
    moved = machine.tick()
    assert [(t.from_state, t.to_state, t.trigger) for t in moved] == [
        (State.DEGRADED, State.NORMAL, RECOVERED)
    ]
    assert "no active trigger requires DEGRADED" in moved[0].detail
    assert not moved[0].escalation
    assert machine.active_triggers == {}


def test_recovery_steps_down_one_level_at_a_time(
    machine: DegradationMachine, clock: ManualClock
) -> None:
    machine.raise_trigger("model_integrity", "model file m.onnx: got nothing (file missing)")
    machine.clear_trigger("model_integrity")

    clock.advance(RECOVERY)
    assert [t.to_state for t in machine.tick()] == [State.DEGRADED]
    assert machine.tick() == []  # never two levels in one go

    clock.advance(2.5)
    assert machine.tick() == []  # the last transition restarts the quiet period
    clock.advance(0.5)
    assert [t.to_state for t in machine.tick()] == [State.NORMAL]
    assert machine.tick() == []
    assert [(t.from_state, t.to_state) for t in machine.transitions] == [
        (State.NORMAL, State.SAFE),
        (State.SAFE, State.DEGRADED),
        (State.DEGRADED, State.NORMAL),
    ]


def test_any_trigger_still_firing_holds_the_state_where_it_is(
    machine: DegradationMachine, clock: ManualClock
) -> None:
    # The quiet period counts every trigger: a perimeter still throwing faults does not get
    # its non-priority analysis back, even once the SAFE trigger is cleared (ADR 0008).
    machine.raise_trigger("driver_unapproved", "driver 550.1 not approved")
    machine.clear_trigger("driver_unapproved")
    for _ in range(10):
        machine.raise_trigger("accelerator_reset", "GPU 0 reset (Xid 79)")
        clock.advance(1.0)
        assert machine.tick() == []
    assert machine.state is State.SAFE

    clock.advance(2.0)
    assert [t.to_state for t in machine.tick()] == [State.DEGRADED]
    clock.advance(RECOVERY)
    assert [t.to_state for t in machine.tick()] == [State.NORMAL]


@pytest.mark.parametrize("name", ["model_integrity", "driver_unapproved"])
def test_explicit_triggers_never_clear_by_time_alone(
    machine: DegradationMachine, clock: ManualClock, name: str
) -> None:
    machine.raise_trigger(name, "the release no longer verifies")
    for _ in range(24):
        clock.advance(3600.0)
        assert machine.tick() == []
    assert machine.state is State.SAFE
    assert set(machine.active_triggers) == {Trigger(name)}

    machine.clear_trigger(name)
    assert machine.tick() == []  # clearing restarts the quiet period
    clock.advance(RECOVERY)
    assert [t.to_state for t in machine.tick()] == [State.DEGRADED]
    clock.advance(RECOVERY)
    assert [t.to_state for t in machine.tick()] == [State.NORMAL]


def test_a_transient_trigger_lapses_once_it_stops_firing(
    machine: DegradationMachine, clock: ManualClock
) -> None:
    machine.raise_trigger("clock_jump", "wall clock stepped +3600.0 s")
    clock.advance(2.5)
    assert set(machine.active_triggers) == {Trigger.CLOCK_JUMP}
    clock.advance(0.5)
    assert machine.active_triggers == {}


def test_a_trigger_flapping_every_second_makes_one_transition_not_many(
    machine: DegradationMachine, clock: ManualClock
) -> None:
    # Raised and cleared alternately every 1 s for 30 s, the machine ticked every 0.5 s:
    # without hysteresis this would be 30 transitions.
    for second in range(30):
        if second % 2 == 0:
            machine.raise_trigger("worker_hang", "worker: no heartbeat for 6.5 s")
        else:
            machine.clear_trigger("worker_hang")
        for _ in range(2):
            clock.advance(0.5)
            machine.tick()
        assert machine.state is State.DEGRADED
    assert len(machine.transitions) == 1

    clock.advance(2.0)  # 3 s since the last clear
    assert [t.to_state for t in machine.tick()] == [State.NORMAL]
    assert len(machine.transitions) == 2


def test_a_trigger_that_keeps_refiring_keeps_the_state_up(
    machine: DegradationMachine, clock: ManualClock
) -> None:
    for _ in range(60):
        machine.raise_trigger("anomalous_results", "verifier: speed 40 heights/s")
        clock.advance(1.0)
        assert machine.tick() == []
    assert machine.state is State.DEGRADED
    assert machine.active_triggers[Trigger.ANOMALOUS_RESULTS].times_raised == 60


def test_clearing_a_trigger_that_is_not_active_does_not_restart_the_quiet_period(
    machine: DegradationMachine, clock: ManualClock
) -> None:
    machine.raise_trigger("worker_crash", "worker exited with code 1")
    clock.advance(2.5)
    machine.clear_trigger("model_integrity")
    clock.advance(0.5)
    assert [t.to_state for t in machine.tick()] == [State.NORMAL]


def test_clearing_a_trigger_that_already_lapsed_does_not_restart_the_quiet_period(
    machine: DegradationMachine, clock: ManualClock
) -> None:
    machine.raise_trigger("worker_crash", "worker exited with code 1")
    clock.advance(RECOVERY)
    machine.clear_trigger("worker_crash")  # reported late, after it had lapsed
    assert [t.to_state for t in machine.tick()] == [State.NORMAL]


def test_recovery_is_timed_on_the_monotonic_clock(
    machine: DegradationMachine, clock: ManualClock
) -> None:
    machine.raise_trigger("clock_jump", "wall clock stepped -3600.0 s")
    clock.jump_wall(+7200.0)  # a forward step must not buy an early recovery
    assert machine.tick() == []
    clock.advance(RECOVERY)
    assert [t.to_state for t in machine.tick()] == [State.NORMAL]
    assert machine.transitions[-1].at == clock.wall()


def test_unknown_trigger_is_refused(machine: DegradationMachine) -> None:
    with pytest.raises(
        UnknownTriggerError, match=r"expected a trigger among \[.*\], got 'gpu_on_fire'"
    ):
        machine.raise_trigger("gpu_on_fire", "?")
    with pytest.raises(UnknownTriggerError, match="got 'MODEL_INTEGRITY'"):
        machine.clear_trigger("MODEL_INTEGRITY")
    assert machine.state is State.NORMAL


@pytest.mark.parametrize("state", list(State))
def test_recording_never_stops(machine: DegradationMachine, state: State) -> None:
    assert machine.actions(state).keep_recording is True


def test_actions_refuse_to_stop_recording() -> None:
    with pytest.raises(ValueError, match="expected keep_recording=True in every state, got False"):
        Actions(State.SAFE, 0, True, keep_recording=False)


def test_actions_per_state() -> None:
    config = DegradationConfig(degraded_analysis_stride=5)
    table = {
        s: (
            a.analysis_stride_non_priority,
            a.move_priority_to_cpu,
            a.non_priority_analysis_off,
        )
        for s in State
        for a in [actions_for(s, config)]
    }
    assert table == {
        State.NORMAL: (1, False, False),
        State.DEGRADED: (5, True, False),
        State.SAFE: (0, True, True),
    }


def test_actions_follow_the_current_state(machine: DegradationMachine) -> None:
    assert not machine.actions().move_priority_to_cpu
    machine.raise_trigger("accelerator_reset", "GPU 0 reset")
    assert machine.actions() == machine.actions(State.DEGRADED)
    assert machine.actions().state is State.DEGRADED


def test_transition_round_trips_through_the_wire(machine: DegradationMachine) -> None:
    (transition,) = machine.raise_trigger("driver_unapproved", "driver 550.1 not approved")

    message = transition.to_message()
    back = decode(encode(message))

    assert isinstance(back, StateChanged)
    assert back == message
    assert (back.at, back.from_state, back.to_state, back.trigger) == (
        transition.at,
        "NORMAL",
        "SAFE",
        "driver_unapproved",
    )


def test_every_raise_is_counted_even_when_it_moves_nothing(
    machine: DegradationMachine, clock: ManualClock
) -> None:
    machine.raise_trigger(Trigger.ACCELERATOR_RESET, "Xid 79")
    clock.advance(1.0)
    machine.raise_trigger(Trigger.ACCELERATOR_RESET, "Xid 79 again")
    machine.raise_trigger(Trigger.WORKER_CRASH, "exit -9")
    assert len(machine.transitions) == 1
    assert dict(machine.raised) == {Trigger.ACCELERATOR_RESET: 2, Trigger.WORKER_CRASH: 1}
