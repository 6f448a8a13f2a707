"""The MQTT sink against a real Mosquitto broker on loopback (started by the fixture).

Topics, payload schemas and retained flags as a subscriber sees them; Home Assistant
discovery; the last will when kontur dies; TLS and password; a wrong password or an
untrusted broker certificate reported on one line; the broker stopped and started again on
the same port without losing a QoS-1 message; no credential in any payload.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mosquitto_broker import PASSWORD, USER, Message, Mosquitto, Recorder, free_port
from mqtt_events import CAM_URL, alarm, closed, decided, failing_gop, pending, run_state

from kontur.clock import ManualClock
from kontur.config import MqttConfig
from kontur.gate.sinks import parse_event
from kontur.mqtt import (
    CameraStatePayload,
    EventMessage,
    MqttSink,
    PendingPayload,
    StatePayload,
    StatsPayload,
)
from kontur.mqtt.payloads import DiscoveryConfig
from kontur.wire import Outcome

HERE = Path(__file__).parent
PW_ENV = "KONTUR_TEST_MQTT_PASSWORD"

#: Topic → retained, for everything the scenario below publishes.
RETAINED = {
    "kontur/available": True,
    "kontur/state": True,
    "kontur/operator/pending": True,
    "kontur/cam1/alarm": True,
    "kontur/cam1/tamper": True,
    "kontur/cam1/state": True,
    "homeassistant/sensor/kontur/state/config": True,
    "homeassistant/sensor/kontur/cam1_state/config": True,
    "homeassistant/binary_sensor/kontur/cam1_alarm/config": True,
    "homeassistant/binary_sensor/kontur/cam1_tamper/config": True,
    "kontur/stats": False,
    "kontur/events": False,
    "kontur/decisions": False,
    "kontur/cam1/verdict": False,
}


@pytest.fixture
def make_sink() -> Iterator[Callable[..., MqttSink]]:
    """Build sinks in a test; every one is closed after it."""
    made: list[MqttSink] = []

    def make(port: int, env: dict[str, str] | None = None, **kw: Any) -> MqttSink:
        cfg = MqttConfig(host="127.0.0.1", port=port, stats_every_s=1, **kw)
        sink = MqttSink(cfg, environ=env or {}, clock=ManualClock())
        made.append(sink)
        return sink

    yield make
    for s in made:
        s.close(timeout=2)


@pytest.fixture
def recorder(broker: Mosquitto) -> Iterator[Recorder]:
    rec = Recorder(broker.ports["plain"])
    rec.wait_subscribed()
    yield rec
    rec.close()


def _scenario(sink: MqttSink) -> None:
    """What a run hands the sink: decisions, a failing GOP, an alarm, requests, run states."""
    sink.on_run_state(run_state(records=1))
    sink.emit(decided(Outcome.DENY, index=3))
    sink.emit(decided(Outcome.OPERATOR, index=7))
    sink.emit(failing_gop(4))
    sink.emit(alarm())
    sink.on_run_state(run_state(at=run_state().at + 5, records=8, pending_requests=(pending(7),)))
    sink.emit(closed(7))
    degraded = (("cam1", "DEGRADED"),)  # its effective state follows (ADR 0040)
    sink.on_run_state(
        run_state(at=run_state().at + 9, records=20, state="DEGRADED", cameras=degraded)
    )


def test_topics_payloads_and_retained_flags(
    broker: Mosquitto, recorder: Recorder, make_sink: Callable[..., MqttSink]
) -> None:
    sink = make_sink(broker.ports["plain"])
    assert sink.wait_connected(60), sink.failures
    _scenario(sink)
    sink.close()
    assert sink.stats().dropped == 0 and sink.stats().queued == 0
    got = recorder.wait_for(
        "offline last", lambda ms: ms[-1:] != [] and ms[-1].payload == b"offline"
    )
    assert {m.topic for m in got} == set(RETAINED)
    for m in got:
        assert m.retain is RETAINED[m.topic], m.topic
        assert m.qos == 1, m.topic
    assert [m.payload for m in recorder.on("kontur/available")] == [b"online", b"offline"]

    states = [StatePayload.model_validate_json(m.payload) for m in recorder.on("kontur/state")]
    assert [s.state for s in states] == ["NORMAL", "DEGRADED"]
    cam_states = [
        CameraStatePayload.model_validate_json(m.payload) for m in recorder.on("kontur/cam1/state")
    ]
    assert [(c.camera, c.state) for c in cam_states] == [("cam1", "NORMAL"), ("cam1", "DEGRADED")]
    assert [parse_event(m.payload).archive_index for m in recorder.on("kontur/decisions")] == [3, 7]
    (verdict,) = [parse_event(m.payload) for m in recorder.on("kontur/cam1/verdict")]
    assert verdict.type == "gop_verdict" and verdict.gop_index == 4
    pend = [
        PendingPayload.model_validate_json(m.payload)
        for m in recorder.on("kontur/operator/pending")
    ]
    assert [[r.id for r in p.requests] for p in pend] == [[], ["op-7"], []]
    stats = [StatsPayload.model_validate_json(m.payload) for m in recorder.on("kontur/stats")]
    assert stats and stats[0].cameras[0].id == "cam1"

    evs = [EventMessage.model_validate_json(m.payload) for m in recorder.on("kontur/events")]
    seen = [(e.type, e.after.kind, e.after.outcome) for e in evs]
    assert seen == [
        ("new", "operator", None),
        ("new", "camera_alarm", None),
        ("update", "operator", None),  # the desk's deadline
        ("end", "operator", "confirmed"),
        ("end", "camera_alarm", "stopped"),  # kontur stopped with the alarm open
    ]
    assert [m.payload for m in recorder.on("kontur/cam1/tamper")] == [b"OFF", b"ON", b"OFF"]

    # a subscriber that comes later gets exactly the retained topics, their last values
    late = Recorder(broker.ports["plain"])
    try:
        late.wait_subscribed()
        want = {t for t, retained in RETAINED.items() if retained}
        retained = late.wait_for("the retained set", lambda ms: {m.topic for m in ms} >= want)
    finally:
        late.close()
    assert {m.topic for m in retained} == want
    last = {m.topic: m.payload for m in retained}
    assert last["kontur/available"] == b"offline" and last["kontur/cam1/alarm"] == b"OFF"
    assert StatePayload.model_validate_json(last["kontur/state"]).state == "DEGRADED"
    assert CameraStatePayload.model_validate_json(last["kontur/cam1/state"]).state == "DEGRADED"


def test_home_assistant_discovery(
    broker: Mosquitto, recorder: Recorder, make_sink: Callable[..., MqttSink]
) -> None:
    sink = make_sink(broker.ports["plain"], prefix="site/north", discovery_prefix="ha")
    sink.emit(alarm())
    sink.on_run_state(run_state(state="SAFE", cameras=(("cam1", "SAFE"),)))
    assert sink.drain(60), sink.stats()
    got = recorder.wait_for(
        "4 discovery configs, tamper ON and cam1's state",
        lambda ms: (
            len(_configs(ms)) == 4
            and b"ON" in _payloads(ms, "site/north/cam1/tamper")
            and bool(_payloads(ms, "site/north/cam1/state"))
        ),
    )
    configs = _configs(got)
    system = configs["ha/sensor/site_north/state/config"]
    assert system.state_topic == "site/north/state" and system.device_class == "enum"
    assert system.options == ("NORMAL", "DEGRADED", "SAFE")
    assert system.value_template == "{{ value_json.state }}"
    alarm_cfg = configs["ha/binary_sensor/site_north/cam1_alarm/config"]
    tamper_cfg = configs["ha/binary_sensor/site_north/cam1_tamper/config"]
    assert (alarm_cfg.device_class, tamper_cfg.device_class) == ("safety", "tamper")
    assert alarm_cfg.state_topic == "site/north/cam1/alarm"
    assert tamper_cfg.state_topic == "site/north/cam1/tamper"
    assert (tamper_cfg.payload_on, tamper_cfg.payload_off) == ("ON", "OFF")
    assert tamper_cfg.device.via_device == "site_north"
    cam_state_cfg = configs["ha/sensor/site_north/cam1_state/config"]
    assert cam_state_cfg.state_topic == "site/north/cam1/state"
    assert cam_state_cfg.device_class == "enum" and cam_state_cfg.device == tamper_cfg.device
    assert cam_state_cfg.options == system.options
    assert cam_state_cfg.value_template == "{{ value_json.state }}"
    # once, or again with the retained set when the sink's connection came up after it
    cam_states = _payloads(got, "site/north/cam1/state")
    assert cam_states and all(
        CameraStatePayload.model_validate_json(p).state == "SAFE" for p in cam_states
    )
    for cfg in configs.values():
        assert cfg.availability_topic == "site/north/available"
        assert cfg.unique_id.startswith("site_north_")
    # every state topic named is one kontur publishes to
    published = {m.topic for m in got}
    assert {alarm_cfg.state_topic, tamper_cfg.state_topic, cam_state_cfg.state_topic} <= published


def _configs(messages: list[Message]) -> dict[str, DiscoveryConfig]:
    return {
        m.topic: DiscoveryConfig.model_validate_json(m.payload)
        for m in messages
        if m.topic.startswith("ha/")
    }


def test_discovery_can_be_turned_off(
    broker: Mosquitto, recorder: Recorder, make_sink: Callable[..., MqttSink]
) -> None:
    sink = make_sink(broker.ports["plain"], discovery=False)
    sink.emit(alarm())
    sink.close()
    got = recorder.wait_for("offline", lambda ms: any(m.payload == b"offline" for m in ms))
    assert not [m for m in got if m.topic.startswith("homeassistant/")]


def test_last_will_when_kontur_dies(broker: Mosquitto, recorder: Recorder) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "will_client.py"), str(broker.ports["plain"]), "willtest"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "connected"
        recorder.wait_for("online", lambda ms: _payloads(ms, "willtest/available") == [b"online"])
        proc.kill()  # SIGKILL: no DISCONNECT, the broker sees the socket die
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    got = recorder.wait_for(
        "the will", lambda ms: _payloads(ms, "willtest/available") == [b"online", b"offline"]
    )
    (will,) = [m for m in got if m.topic == "willtest/available" and m.payload == b"offline"]
    assert will.retain and will.qos == 1


def _payloads(messages: list[Message], topic: str) -> list[bytes]:
    return [m.payload for m in messages if m.topic == topic]


def test_tls_and_password(
    broker: Mosquitto,
    recorder: Recorder,
    make_sink: Callable[..., MqttSink],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sink = make_sink(
        broker.ports["tls"],
        {PW_ENV: PASSWORD},
        username=USER,
        password_env=PW_ENV,
        tls={"ca": str(broker.certs["ca"])},
    )
    assert sink.wait_connected(60), sink.failures
    sink.emit(decided(Outcome.DENY, index=3, reasons=(f"source {CAM_URL}",)))
    sink.on_run_state(run_state(error=f"could not open {CAM_URL}"))
    sink.close()
    assert sink.stats().delivered > 0 and sink.stats().dropped == 0 and sink.failures == ()
    got = recorder.wait_for("the decision", lambda ms: bool(_payloads(ms, "kontur/decisions")))
    recorder.wait_for("offline", lambda ms: b"offline" in _payloads(ms, "kontur/available"))
    blob = b"\n".join(m.payload for m in got)
    for secret in (PASSWORD, "cam-secret-pw", "admin:"):
        assert secret.encode() not in blob
        assert secret not in caplog.text
    assert b"rtsp://***@10.0.0.7:554/stream1" in blob


def test_a_wrong_password_is_one_line_and_no_crash(
    broker: Mosquitto, make_sink: Callable[..., MqttSink], caplog: pytest.LogCaptureFixture
) -> None:
    sink = make_sink(
        broker.ports["auth"], {PW_ENV: "not-the-password"}, username=USER, password_env=PW_ENV
    )
    port = broker.ports["auth"]
    want = (
        f"mqtt 127.0.0.1:{port}: expected the broker to accept the connection, got Not authorized"
    )
    _wait_failure(sink, want)
    sink.emit(decided(Outcome.DENY, index=3))  # queued, never raises
    assert not sink.connected and sink.stats().failed >= 1
    assert [r.getMessage() for r in caplog.records if "Not authorized" in r.getMessage()] == [want]
    assert "not-the-password" not in caplog.text
    sink.close(timeout=0.5)
    assert sink.stats().dropped >= 1 and sink.stats().queued == 0


def test_a_broker_certificate_not_trusted_is_refused(
    broker: Mosquitto, make_sink: Callable[..., MqttSink]
) -> None:
    sink = make_sink(
        broker.ports["tls"], {PW_ENV: PASSWORD}, username=USER, password_env=PW_ENV, tls={}
    )
    port = broker.ports["tls"]
    _wait_failure(
        sink, f"mqtt 127.0.0.1:{port}: expected a connection, got SSLCertVerificationError"
    )
    assert "certificate verify failed" in sink.failures[0]
    assert not sink.connected


def _wait_failure(sink: MqttSink, prefix: str) -> None:
    end = time.monotonic() + 60
    while not sink.failures and time.monotonic() < end:
        time.sleep(0.05)
    assert sink.failures and sink.failures[0].startswith(prefix), sink.failures
    assert "\n" not in sink.failures[0]


def test_broker_restart_loses_no_qos1_message(
    broker: Mosquitto, make_sink: Callable[..., MqttSink]
) -> None:
    # a subscriber with a persistent session: the broker keeps its subscription and queue
    rec = Recorder(broker.ports["plain"], client_id="kontur-test-persistent", persistent=True)
    try:
        rec.wait_subscribed()
        sink = make_sink(broker.ports["plain"])
        assert sink.wait_connected(60), sink.failures
        assert sink.drain(60)
        broker.stop()
        sent = [decided(Outcome.DENY, index=i, frame=i) for i in range(40)]
        sent.insert(20, alarm())
        for event in sent:
            sink.emit(event)  # the broker is gone: paho holds them
        assert sink.stats().queued >= len(sent) and sink.stats().dropped == 0
        broker.start()  # same ports, same persistence
        assert sink.drain(120), sink.stats()
        ids = [e.id for e in sent if e.type == "decision"]
        got = rec.wait_for(
            "every decision", lambda ms: len(_payloads(ms, "kontur/decisions")) >= len(ids)
        )
    finally:
        rec.close()
    received = [json.loads(p)["id"] for p in _payloads(got, "kontur/decisions")]
    assert received == ids  # all of them, once each, in order
    news = [EventMessage.model_validate_json(p) for p in _payloads(got, "kontur/events")]
    assert [(e.type, e.after.kind) for e in news] == [("new", "camera_alarm")]
    assert sink.stats().failed >= 1 and "lost the connection" in sink.failures[0]


def test_a_full_queue_drops_and_counts(make_sink: Callable[..., MqttSink]) -> None:
    sink = make_sink(free_port(), queue_max=5)  # nobody listens there
    for i in range(10):
        sink.emit(decided(Outcome.DENY, index=i))
    stats = sink.stats()
    assert stats.queued == 5 and stats.dropped > 0 and stats.delivered == 0
    assert any("queue full" in f for f in sink.failures)
