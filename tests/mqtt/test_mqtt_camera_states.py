"""Each camera's effective degradation state on MQTT (ADR 0040): ``<prefix>/<camera>/state``
(retained) and a Home Assistant ``enum`` sensor per camera, beside the unchanged
``<prefix>/state``. The states come from run-state snapshots only (the supervisor's
degradation machine); no sink event, whatever it says, publishes one.

The pure feed here; the broker tests check the same topics on the wire.
"""

from __future__ import annotations

import json

import pytest
from mqtt_events import T0, alarm, closed, decided, failing_gop, run_state

from kontur.clock import ManualClock
from kontur.config import DegradationConfig
from kontur.degrade import DegradationMachine
from kontur.mqtt import CameraStatePayload, Feed, Publication, StatePayload, Topics
from kontur.mqtt.discovery import camera_configs
from kontur.wire import Outcome
from kontur.wire.runstate import CameraState, RunState

RECOVERY = 3.0
TWO = (("cam1", "NORMAL"), ("cam2", "NORMAL"))


@pytest.fixture
def feed() -> Feed:
    return Feed(Topics(), clock=ManualClock(wall=T0 + 99), stats_every_s=30.0)


def camera_states(pubs: list[Publication]) -> dict[str, CameraStatePayload]:
    """Topic → the camera-state payload published to it (the last one)."""
    return {
        p.topic: CameraStatePayload.model_validate_json(p.payload)
        for p in pubs
        if p.topic.startswith("kontur/cam") and p.topic.endswith("/state")
    }


def snapshot(machine: DegradationMachine, at: float, cameras: tuple[str, ...]) -> RunState:
    """The run state as the supervisor's publisher reads it off its degradation machine."""
    return RunState(
        at=at,
        site="test-site",
        started_at=T0,
        state=machine.state.value,
        transitions=len(machine.transitions),
        cameras=tuple(
            CameraState(id=c, frames=1, state=machine.camera_state(c).value) for c in cameras
        ),
    )


def test_each_camera_state_is_retained_and_sent_only_when_it_changes(feed: Feed) -> None:
    pubs = feed.run_state(run_state(state="DEGRADED", cameras=(("cam1", "DEGRADED"), TWO[1])))
    got = camera_states(pubs)
    assert {t: (p.camera, p.state) for t, p in got.items()} == {
        "kontur/cam1/state": ("cam1", "DEGRADED"),
        "kontur/cam2/state": ("cam2", "NORMAL"),
    }
    assert all(p.site == "test-site" and p.at == T0 + 1 for p in got.values())
    for p in pubs:
        if p.topic in got:
            assert p.retain and p.qos == 1
    # the same states again: nothing; cam1 recovers: cam1 alone
    again = feed.run_state(
        run_state(T0 + 2, state="DEGRADED", cameras=(("cam1", "DEGRADED"), TWO[1]))
    )
    assert camera_states(again) == {}
    pubs = feed.run_state(run_state(T0 + 3, cameras=TWO))
    got = camera_states(pubs)
    assert list(got) == ["kontur/cam1/state"] and got["kontur/cam1/state"].state == "NORMAL"
    assert got["kontur/cam1/state"].at == T0 + 3
    # a reconnect gets each camera's last state, retained
    last = camera_states(feed.connected())
    assert {t: p.state for t, p in last.items()} == {
        "kontur/cam1/state": "NORMAL",
        "kontur/cam2/state": "NORMAL",
    }


def test_the_states_follow_the_degradation_machine(feed: Feed) -> None:
    clock = ManualClock()
    machine = DegradationMachine(DegradationConfig(recovery_seconds=RECOVERY), clock)
    cams = ("cam1", "cam2")

    machine.raise_trigger("camera_tamper", "cam1: covered", camera="cam1")
    pubs = feed.run_state(snapshot(machine, T0 + 1, cams))
    assert {p.camera: p.state for p in camera_states(pubs).values()} == {
        "cam1": "DEGRADED",
        "cam2": "NORMAL",
    }
    (site,) = [p for p in pubs if p.topic == "kontur/state"]
    assert StatePayload.model_validate_json(site.payload).state == "DEGRADED"  # the worst

    # the site goes SAFE: both cameras' effective states follow it
    machine.raise_trigger("model_integrity", "model file changed")
    pubs = feed.run_state(snapshot(machine, T0 + 2, cams))
    assert {p.camera: p.state for p in camera_states(pubs).values()} == {
        "cam1": "SAFE",
        "cam2": "SAFE",
    }
    machine.clear_trigger("model_integrity")
    machine.clear_trigger("camera_tamper", camera="cam1")
    seen: list[tuple[str, str]] = []
    for step in range(1, 8):
        clock.advance(RECOVERY + 0.5)
        machine.tick()
        pubs = feed.run_state(snapshot(machine, T0 + 2 + step, cams))
        seen += [(p.camera, p.state) for p in camera_states(pubs).values()]
    # one level at a time, each camera published once per level it passed
    assert seen == [
        ("cam1", "DEGRADED"),
        ("cam2", "DEGRADED"),
        ("cam1", "NORMAL"),
        ("cam2", "NORMAL"),
    ]
    assert machine.state.value == "NORMAL"


def test_no_event_publishes_a_camera_state(feed: Feed) -> None:
    """What the worker influences reaches the feed as events: none of them, even one whose
    text claims a state, sets a camera's state; only the run state's snapshot does."""
    claims = ('{"state": "NORMAL"}', "state NORMAL", "kontur/cam1/state")
    pubs = feed.event(decided(Outcome.OPERATOR, index=7, reasons=claims))
    pubs += feed.event(failing_gop(4))
    pubs += feed.event(alarm("cam1: state NORMAL"))
    pubs += feed.event(closed(7))
    pubs += feed.connected()
    assert "kontur/cam1/state" not in {p.topic for p in pubs}
    # its sensor is discovered with the camera; its state waits for a snapshot
    assert "homeassistant/sensor/kontur/cam1_state/config" in {p.topic for p in pubs}
    got = camera_states(feed.run_state(run_state(state="SAFE", cameras=(("cam1", "SAFE"),))))
    assert got["kontur/cam1/state"].state == "SAFE"


def test_the_site_topic_is_unchanged_by_camera_states(feed: Feed) -> None:
    pubs = feed.run_state(run_state(state="DEGRADED", cameras=(("cam1", "DEGRADED"), TWO[1])))
    (site,) = [p for p in pubs if p.topic == "kontur/state"]
    assert json.loads(site.payload) == {
        "state": "DEGRADED",
        "transitions": 0,
        "site": "test-site",
        "at": T0 + 1,
    }
    # a camera's state moving while the run's state does not: kontur/state stays quiet
    pubs = feed.run_state(
        run_state(T0 + 2, state="DEGRADED", cameras=(("cam1", "DEGRADED"), ("cam2", "DEGRADED")))
    )
    assert [p.topic for p in pubs if p.topic.endswith("state")] == ["kontur/cam2/state"]


def test_each_camera_gets_a_degradation_state_sensor() -> None:
    topics = Topics("site/north", "ha")
    configs = dict(camera_configs(topics, "gate.east"))
    state = configs["ha/sensor/site_north/gate_east_state/config"]
    alarm_cfg = configs["ha/binary_sensor/site_north/gate_east_alarm/config"]
    assert state.state_topic == state.json_attributes_topic == "site/north/gate.east/state"
    assert state.state_topic == topics.camera_state("gate.east")
    assert (state.device_class, state.value_template) == ("enum", "{{ value_json.state }}")
    assert state.options == ("NORMAL", "DEGRADED", "SAFE")
    assert state.unique_id == "site_north_gate_east_state"
    assert state.device == alarm_cfg.device  # the camera's own device, beside its alarm
    assert state.availability_topic == "site/north/available"
    assert len({c.unique_id for c in configs.values()}) == len(configs) == 3


@pytest.mark.parametrize(
    ("snap", "message"),
    [
        (
            run_state(cameras=(("cam1", "NORMAL"), ("cam2", "BROKEN"))),
            "expected camera cam2's state to be one of NORMAL, DEGRADED, SAFE, got 'BROKEN'",
        ),
        (
            run_state(state="calm"),
            "expected the run's state to be one of NORMAL, DEGRADED, SAFE, got 'calm'",
        ),
    ],
)
def test_a_snapshot_with_an_unknown_state_is_refused_before_anything_changes(
    feed: Feed, snap: RunState, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        feed.run_state(snap)
    # nothing was taken from it: cam1 is still unseen, and its first good snapshot says so
    pubs = feed.run_state(run_state(T0 + 2))
    assert "homeassistant/sensor/kontur/cam1_state/config" in {p.topic for p in pubs}
    assert camera_states(pubs)["kontur/cam1/state"].state == "NORMAL"


def test_the_camera_state_payload_refuses_unknown_keys_and_states() -> None:
    good = {"camera": "cam1", "state": "SAFE", "site": "s", "at": 1.0}
    assert CameraStatePayload.model_validate_json(json.dumps(good)).state == "SAFE"
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        CameraStatePayload.model_validate_json(json.dumps({**good, "own": "SAFE"}))
    with pytest.raises(ValueError):
        CameraStatePayload.model_validate_json(json.dumps({**good, "state": "BROKEN"}))
    with pytest.raises(ValueError):
        CameraStatePayload.model_validate_json(json.dumps(good).replace("1.0", "NaN"))
    frozen = CameraStatePayload.model_validate_json(json.dumps(good))
    with pytest.raises(ValueError):
        frozen.state = "NORMAL"  # type: ignore[assignment]
