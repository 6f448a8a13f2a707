"""The pure core of the MQTT sink: sink events and run states in, messages out.

No broker here: the feed is fed what the recorder and the perimeter hand the sink, and what
it returns is checked against the payload models (the broker tests check the wire).
"""

from __future__ import annotations

import json

import pytest
from mqtt_events import (
    CAM_URL,
    T0,
    alarm,
    closed,
    decided,
    failing_gop,
    pending,
    run_state,
)

import kontur.mqtt.feed as feed_module
from kontur.clock import ManualClock
from kontur.gate.sinks import checkpoint_event, parse_event
from kontur.mqtt import (
    OFF,
    OFFLINE,
    ON,
    ONLINE,
    EventMessage,
    Feed,
    PendingPayload,
    Publication,
    StatePayload,
    StatsPayload,
    Topics,
)
from kontur.mqtt.topics import check_level
from kontur.wire import Outcome
from kontur.wire.verdict import SystemState


@pytest.fixture
def feed() -> Feed:
    return Feed(Topics(), clock=ManualClock(wall=T0 + 99), stats_every_s=30.0)


def events(pubs: list[Publication]) -> list[EventMessage]:
    return [EventMessage.model_validate_json(p.payload) for p in pubs if p.topic == "kontur/events"]


def on(pubs: list[Publication], topic: str) -> list[bytes]:
    return [p.payload for p in pubs if p.topic == topic]


def test_a_request_opens_is_updated_and_ends(feed: Feed) -> None:
    pubs = feed.event(decided(Outcome.OPERATOR, index=7))
    # a camera seen first: its discovery and OFF states, then the decision and the event
    assert [p.topic for p in pubs] == [
        "homeassistant/binary_sensor/kontur/cam1_alarm/config",
        "homeassistant/binary_sensor/kontur/cam1_tamper/config",
        "homeassistant/sensor/kontur/cam1_state/config",
        "kontur/cam1/alarm",
        "kontur/cam1/tamper",
        "kontur/decisions",
        "kontur/events",
        "kontur/cam1/alarm",
    ]
    assert parse_event(on(pubs, "kontur/decisions")[0]).archive_index == 7
    (new,) = events(pubs)
    assert new.type == "new" and new.before == new.after
    assert new.after.id == "op-7" and new.after.kind == "operator"
    assert (new.after.label, new.after.rule, new.after.end_time) == ("alarm", "person-dwell", None)
    assert on(pubs, "kontur/cam1/alarm") == [OFF.encode(), ON.encode()]

    # the desk shows its deadline, then a first confirmation (four eyes)
    pubs = feed.run_state(run_state(records=8, pending_requests=(pending(7),)))
    (update,) = events(pubs)
    assert update.type == "update" and update.after.deadline == T0 + 60
    assert (
        PendingPayload.model_validate_json(on(pubs, "kontur/operator/pending")[0]).requests[0].id
        == "op-7"
    )
    pubs = feed.run_state(run_state(records=9, pending_requests=(pending(7, ("ana",)),)))
    (update,) = events(pubs)
    assert update.before.confirmations == () and update.after.confirmations == ("ana",)
    assert update.after.updates == 2

    pubs = feed.event(closed(7, "confirmed", ("ana", "bo")))
    (end,) = events(pubs)
    assert end.type == "end" and end.after.outcome == "confirmed"
    assert (end.after.executed, end.after.operators) == ("alarm", ("ana", "bo"))
    assert end.after.end_time == T0 + 30 and end.after.resolution == "seen on the monitor"
    assert on(pubs, "kontur/cam1/alarm") == [OFF.encode()]
    assert feed.open_events == ()


def test_a_request_no_desk_took_ends_not_queued(feed: Feed) -> None:
    feed.event(decided(Outcome.OPERATOR, index=7))
    # the snapshot was taken before the decision's record: nothing to conclude yet
    assert events(feed.run_state(run_state(records=7))) == []
    # its record is in the snapshot's archive and no desk lists it: a run without the API
    (end,) = events(feed.run_state(run_state(records=8)))
    assert end.type == "end" and end.after.outcome == "not_queued"
    assert "no operator desk" in (end.after.resolution or "")


def test_a_camera_alarm_clears_only_after_a_passing_gop_it_could_not_have_preceded(
    feed: Feed,
) -> None:
    pubs = feed.event(alarm())
    (new,) = events(pubs)
    assert (new.after.kind, new.after.label) == ("camera_alarm", "camera_untrusted")
    assert on(pubs, "kontur/cam1/tamper")[-1] == ON.encode()
    # first snapshot after the raise: its passing GOPs are the baseline, not a clear
    assert events(feed.run_state(run_state(authentic=5))) == []
    (update,) = events(feed.event(alarm("cam1: 4 consecutive failing GOPs")))
    assert (
        update.type == "update" and update.after.reasons[-1] == "cam1: 4 consecutive failing GOPs"
    )
    # raised again: the count starts over from the next snapshot
    assert events(feed.run_state(run_state(authentic=6))) == []
    pubs = feed.run_state(run_state(authentic=7))
    (end,) = events(pubs)
    assert end.after.outcome == "cleared" and end.after.updates == 1
    assert on(pubs, "kontur/cam1/tamper") == [OFF.encode()]
    assert on(pubs, "kontur/cam1/alarm") == [OFF.encode()]


def test_failing_verdicts_go_to_the_camera_topic(feed: Feed) -> None:
    pubs = feed.event(failing_gop(4))
    (payload,) = on(pubs, "kontur/cam1/verdict")
    got = parse_event(payload)
    assert got.type == "gop_verdict" and got.gop_index == 4 and got.verdict == "NOT_AUTHENTIC"
    assert all(not p.retain for p in pubs if p.topic == "kontur/cam1/verdict")


def test_state_is_retained_and_sent_only_when_it_changes(feed: Feed) -> None:
    first = on(feed.run_state(run_state(T0 + 1)), "kontur/state")
    assert StatePayload.model_validate_json(first[0]).state == "NORMAL"
    assert on(feed.run_state(run_state(T0 + 2)), "kontur/state") == []
    pubs = feed.run_state(run_state(T0 + 3, state="DEGRADED"))
    (p,) = [p for p in pubs if p.topic == "kontur/state"]
    assert p.retain and p.qos == 1
    assert StatePayload.model_validate_json(p.payload).state == "DEGRADED"


def test_stats_every_interval_of_snapshot_time(feed: Feed) -> None:
    sent = [
        bool(on(feed.run_state(run_state(T0 + t)), "kontur/stats")) for t in (0, 10, 29, 30, 45)
    ]
    assert sent == [True, False, False, True, False]
    # the wall clock stepped back: stats go on at once rather than stop for the step
    assert on(feed.run_state(run_state(T0 - 100)), "kontur/stats")
    stats = StatsPayload.model_validate_json(
        on(feed.run_state(run_state(T0 + 500)), "kontur/stats")[0]
    )
    assert stats.cameras[0].latency_p50_s == 0.2 and stats.cameras[0].latency_max_s == 0.3
    assert stats.uptime_s == 500 and stats.site == "test-site"


def test_stop_sends_the_last_stats_the_interval_held_back(feed: Feed) -> None:
    assert on(feed.run_state(run_state(T0)), "kontur/stats")
    assert on(feed.run_state(run_state(T0 + 10)), "kontur/stats") == []  # within 30 s
    (last,) = on(feed.stop(), "kontur/stats")  # the run's final figures, not 10 s stale
    assert StatsPayload.model_validate_json(last).uptime_s == 10


def test_stop_sends_no_stats_twice(feed: Feed) -> None:
    assert on(feed.stop(), "kontur/stats") == []  # no run state seen: nothing to report
    again = Feed(Topics(), clock=ManualClock(wall=T0 + 99), stats_every_s=30.0)
    assert on(again.run_state(run_state(T0)), "kontur/stats")
    assert on(again.stop(), "kontur/stats") == []  # already sent


def test_stop_ends_every_open_event_then_goes_offline(feed: Feed) -> None:
    feed.event(decided(Outcome.OPERATOR, index=7))
    feed.event(alarm())
    pubs = feed.stop()
    ends = events(pubs)
    assert [e.type for e in ends] == ["end", "end"]
    assert {e.after.outcome for e in ends} == {"stopped"}
    assert all(e.after.end_time == T0 + 99 for e in ends)
    assert pubs[-1] == Publication("kontur/available", OFFLINE.encode(), retain=True)
    with pytest.raises(RuntimeError, match="expected a running MQTT feed, got one already stopped"):
        feed.event(alarm())


def test_connected_sends_online_then_everything_retained(feed: Feed) -> None:
    feed.event(decided(Outcome.ALLOW, index=3))
    feed.run_state(run_state())
    pubs = feed.connected()
    assert pubs[0] == Publication("kontur/available", ONLINE.encode(), retain=True)
    assert all(p.retain for p in pubs)
    topics = {p.topic for p in pubs}
    assert {"kontur/state", "kontur/operator/pending", "kontur/cam1/alarm"} <= topics
    assert "kontur/cam1/state" in topics  # each camera's degradation state (ADR 0040)
    assert "homeassistant/sensor/kontur/state/config" in topics
    assert "homeassistant/sensor/kontur/cam1_state/config" in topics
    assert not topics & {"kontur/events", "kontur/decisions", "kontur/stats"}


def test_camera_credentials_are_never_published(feed: Feed) -> None:
    reasons = (f"source {CAM_URL} stalled",)
    pubs = feed.event(decided(Outcome.OPERATOR, index=7, reasons=reasons))
    pubs += feed.run_state(run_state(error=f"ingest: could not open {CAM_URL}", records=7))
    pubs += feed.stop()
    blob = b"\n".join(p.payload for p in pubs)
    assert b"cam-secret-pw" not in blob and b"admin" not in blob
    assert b"rtsp://***@10.0.0.7:554/stream1" in blob
    stats = StatsPayload.model_validate_json(on(pubs, "kontur/stats")[0])
    assert stats.cameras[0].error == "ingest: could not open rtsp://***@10.0.0.7:554/stream1"


def test_a_checkpoint_publishes_nothing(feed: Feed) -> None:
    assert feed.event(checkpoint_event("note\n", "kontur/test")) == []


def test_open_events_are_bounded(feed: Feed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "MAX_OPEN", 2)
    for i in (1, 2, 3):
        pubs = feed.event(decided(Outcome.OPERATOR, index=i))
    ends = [e for e in events(pubs) if e.type == "end"]
    assert [(e.after.id, e.after.outcome) for e in ends] == [("op-1", "overflow")]
    assert [e.id for e in feed.open_events] == ["op-2", "op-3"]


def test_payloads_refuse_unknown_keys_and_nan() -> None:
    payload = StatePayload(state=SystemState.NORMAL, transitions=0, site="s", at=1.0)
    good = json.loads(payload.model_dump_json())
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        StatePayload.model_validate_json(json.dumps({**good, "x": 1}))
    with pytest.raises(ValueError):
        StatePayload.model_validate_json(json.dumps(good).replace("1.0", "NaN"))


@pytest.mark.parametrize("level", ["a/b", "+", "#", "", "cam 1", "x" * 65])
def test_a_camera_id_that_is_no_safe_topic_level_is_refused(level: str) -> None:
    with pytest.raises(ValueError, match=r"expected a topic level of \[A-Za-z0-9_.-\]"):
        check_level(level)
