"""Per-camera degradation states (ADR 0040): a camera trigger moves that camera only, a site
trigger every camera; a camera's effective state is the more severe of the site's and its
own; recovery is hysteretic per scope. Pure: a manual clock, no process."""

from __future__ import annotations

import pytest
from degrade_clock import RECOVERY

from kontur.clock import ManualClock
from kontur.degrade import RECOVERED, DegradationMachine, ScopeError, State, Trigger
from kontur.wire import StateChanged, decode, encode


def test_only_the_camera_scoped_triggers_may_name_a_camera() -> None:
    assert {t for t in Trigger if t.camera_scoped} == {
        Trigger.CAMERA_TAMPER,
        Trigger.CAMERA_UNTRUSTED,
        Trigger.ANOMALOUS_RESULTS,
        Trigger.BLOCK_FAILED,
    }


def test_a_covered_camera_degrades_itself_and_no_other(machine: DegradationMachine) -> None:
    (t,) = machine.raise_trigger("camera_tamper", "cam1: covered since 3.2 s", camera="cam1")
    assert (t.camera, t.from_state, t.to_state, t.trigger) == (
        "cam1",
        State.NORMAL,
        State.DEGRADED,
        "camera_tamper",
    )
    assert machine.camera_state("cam1") is State.DEGRADED
    assert machine.camera_state("cam2") is State.NORMAL
    assert machine.site_state is State.NORMAL
    assert machine.state is State.DEGRADED  # the operator's view: the most severe
    assert dict(machine.camera_states) == {"cam1": State.DEGRADED}
    assert set(machine.active_for("cam1")) == {Trigger.CAMERA_TAMPER}
    assert machine.active_for("cam2") == {} and machine.active_for(None) == {}
    assert not machine.actions().move_priority_to_cpu  # the worker follows the site only


def test_a_site_trigger_degrades_every_camera(machine: DegradationMachine) -> None:
    (t,) = machine.raise_trigger("worker_crash", "worker exited with code -9")
    assert t.camera is None
    assert machine.camera_state("cam1") is State.DEGRADED
    assert machine.camera_state("any-camera") is State.DEGRADED
    assert dict(machine.camera_states) == {}  # no camera has a state of its own
    assert machine.actions().move_priority_to_cpu


def test_a_camera_raise_under_a_degraded_site_still_moves_the_camera(
    machine: DegradationMachine,
) -> None:
    machine.raise_trigger("clock_jump", "wall clock stepped 90 s")
    (t,) = machine.raise_trigger("camera_untrusted", "cam1: 3 failing GOPs", camera="cam1")
    assert (t.camera, t.from_state, t.to_state) == ("cam1", State.NORMAL, State.DEGRADED)
    assert machine.camera_state("cam1") is State.DEGRADED


def test_the_effective_state_is_the_more_severe_of_site_and_camera(
    machine: DegradationMachine, clock: ManualClock
) -> None:
    machine.raise_trigger("camera_tamper", "cam1: covered", camera="cam1")
    machine.raise_trigger("model_integrity", "model.onnx changed on disk")
    assert machine.camera_state("cam1") is State.SAFE
    assert machine.camera_state("cam2") is State.SAFE
    machine.clear_trigger("model_integrity")
    for _ in range(4):
        clock.advance(RECOVERY)
        machine.tick()
    assert machine.site_state is State.NORMAL
    assert machine.camera_state("cam1") is State.DEGRADED  # still covered
    assert machine.camera_state("cam2") is State.NORMAL


def test_a_camera_recovers_on_its_own_quiet_period(
    machine: DegradationMachine, clock: ManualClock
) -> None:
    machine.raise_trigger("camera_tamper", "cam1: covered", camera="cam1")
    machine.clear_trigger("camera_tamper", camera="cam1")
    clock.advance(RECOVERY - 0.5)
    machine.raise_trigger("camera_tamper", "cam2: frozen", camera="cam2")
    machine.raise_trigger("worker_hang", "no progress")  # the site's events do not delay it
    assert machine.tick() == []  # cam1's quiet period is not over yet
    clock.advance(0.5)
    (back,) = machine.tick()
    assert (back.camera, back.from_state, back.to_state, back.trigger) == (
        "cam1",
        State.DEGRADED,
        State.NORMAL,
        RECOVERED,
    )
    assert machine.camera_state("cam2") is State.DEGRADED
    assert dict(machine.camera_states) == {"cam2": State.DEGRADED}  # cam1 forgotten


def test_a_camera_trigger_that_keeps_firing_keeps_only_its_camera_up(
    machine: DegradationMachine, clock: ManualClock
) -> None:
    # hysteresis per camera: a drifting camera flaps nothing, and holds no other camera
    machine.raise_trigger("anomalous_results", "cam2: drift x3", camera="cam2")
    machine.raise_trigger("anomalous_results", "cam1: drift x3", camera="cam1")
    for _ in range(20):
        clock.advance(RECOVERY / 2)
        machine.raise_trigger("anomalous_results", "cam1: drift x3", camera="cam1")
        machine.tick()
    assert machine.camera_state("cam1") is State.DEGRADED
    assert machine.camera_state("cam2") is State.NORMAL  # lapsed and recovered long ago
    moves = [(t.camera, t.to_state) for t in machine.transitions]
    assert moves == [("cam2", State.DEGRADED), ("cam1", State.DEGRADED), ("cam2", State.NORMAL)]


def test_clearing_one_camera_leaves_the_same_trigger_on_another(
    machine: DegradationMachine, clock: ManualClock
) -> None:
    machine.raise_trigger("camera_tamper", "cam1: covered", camera="cam1")
    machine.raise_trigger("camera_tamper", "cam2: frozen", camera="cam2")
    machine.clear_trigger("camera_tamper", camera="cam1")
    machine.clear_trigger("camera_tamper")  # the site holds none: a no-op
    assert machine.active_triggers[Trigger.CAMERA_TAMPER].detail == "cam2: frozen"
    clock.advance(10 * RECOVERY)
    assert [t.camera for t in machine.tick()] == ["cam1"]
    assert machine.camera_state("cam2") is State.DEGRADED  # never lapses by time alone


def test_a_site_trigger_for_a_camera_is_refused(machine: DegradationMachine) -> None:
    with pytest.raises(ScopeError) as err:
        machine.raise_trigger("model_integrity", "model.onnx changed", camera="cam1")
    assert str(err.value).startswith(
        "camera 'cam1': expected a camera-scoped trigger among ['anomalous_results', "
        "'block_failed', 'camera_tamper', 'camera_untrusted'], got 'model_integrity'"
    )
    with pytest.raises(ScopeError, match="expected a camera id or None for the site, got ''"):
        machine.raise_trigger("camera_tamper", "covered", camera="")
    assert machine.state is State.NORMAL and machine.transitions == ()
    assert dict(machine.raised) == {}


def test_raises_are_counted_over_every_scope(machine: DegradationMachine) -> None:
    machine.raise_trigger("camera_tamper", "cam1: covered", camera="cam1")
    machine.raise_trigger("camera_tamper", "cam2: covered", camera="cam2")
    machine.raise_trigger("camera_tamper", "covered")
    assert dict(machine.raised) == {Trigger.CAMERA_TAMPER: 3}
    assert [t.camera for t in machine.transitions] == ["cam1", "cam2", None]


def test_a_camera_transition_names_its_camera_on_the_wire(machine: DegradationMachine) -> None:
    (t,) = machine.raise_trigger("camera_untrusted", "cam1: 3 failing GOPs", camera="cam1")
    msg = t.to_message()
    assert msg.camera_id == "cam1"
    back = decode(encode(msg))
    assert isinstance(back, StateChanged) and back == msg
    (s,) = machine.raise_trigger("worker_crash", "exit -9")
    assert s.to_message().camera_id is None
