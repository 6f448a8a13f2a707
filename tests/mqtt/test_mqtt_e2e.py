"""End to end: ``kontur demo`` on real footage with ``sinks.mqtt`` pointing at a real broker.

PETS09 (unsigned, ``--no-sign``) with YOLOX-Nano for a few seconds: people dwell, so the gate
asks for an operator. Without the API no desk takes the requests, so each one's event ends
``not_queued`` at the next run-state snapshot. A subscriber sees ``online`` first, then the
degradation ``state`` and the camera's own (``<camera>/state``, ADR 0040), then the
decisions as the archive recorded them, and ``offline`` last.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from mosquitto_broker import Mosquitto, Recorder
from tests.conftest import run_kontur, shared

from kontur.archive import Archive
from kontur.gate.sinks import DecisionEvent, parse_event
from kontur.mqtt import CameraStatePayload, EventMessage, StatePayload, StatsPayload

pytestmark = pytest.mark.e2e


def test_a_demo_run_publishes_to_mqtt(tmp_path: Path, broker: Mosquitto) -> None:
    video = shared("video", "pets09_s2l1_480x360.avi")
    model = shared("models", "yolox_nano.onnx")
    rec = Recorder(broker.ports["plain"])
    rec.wait_subscribed()
    mqtt = {"host": "127.0.0.1", "port": broker.ports["plain"], "stats_every_s": 1}
    config = tmp_path / "kontur.yaml"
    config.write_text(yaml.safe_dump({"sinks": {"mqtt": mqtt}}))
    data_dir, out = tmp_path / "data", tmp_path / "summary.json"
    try:
        r = run_kontur(
            "demo",
            "--source",
            str(video),
            "--model",
            str(model),
            "--no-sign",
            "--seconds",
            "8",
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "--json",
            str(out),
        )
        assert r.returncode == 0, r.stderr
        got = rec.wait_for("offline", lambda ms: bool(ms) and ms[-1].payload == b"offline")
    finally:
        rec.close()
    summary = json.loads(out.read_text())
    (mqtt_stats,) = [s for s in summary["sinks"] if s["sink"].startswith("mqtt ")]
    assert mqtt_stats["delivered"] > 0 and mqtt_stats["dropped"] == 0

    topics = [m.topic for m in got]
    assert got[0].topic == "kontur/available" and got[0].payload == b"online"
    first_decision = topics.index("kontur/decisions")
    assert topics.index("kontur/state") < first_decision
    state = StatePayload.model_validate_json(got[topics.index("kontur/state")].payload)
    assert state.site == "demo-site"
    # the camera's own effective state (ADR 0040), from the same snapshot as the site's
    camera = summary["cameras"][0]
    cam_topic = f"kontur/{camera['id']}/state"
    assert topics.index(cam_topic) < first_decision
    cam_states = [
        CameraStatePayload.model_validate_json(m.payload) for m in got if m.topic == cam_topic
    ]
    assert all(c.camera == camera["id"] and c.site == "demo-site" for c in cam_states)
    assert got[topics.index(cam_topic)].retain
    assert cam_states[-1].state == camera["state"]

    decisions = [parse_event(m.payload) for m in got if m.topic == "kontur/decisions"]
    assert len(decisions) == summary["cameras"][0]["decisions"]["OPERATOR"] > 0
    archive = Archive.open_readonly(data_dir)
    try:
        recorded = {r.index: r for r in archive.iter_records(kind="decision")}
    finally:
        archive.close()
    for d in decisions:  # each one is an archive record, already committed when published
        assert isinstance(d, DecisionEvent) and d.archive_index in recorded
        assert recorded[d.archive_index].hash == d.archive_hash

    events = [
        EventMessage.model_validate_json(m.payload) for m in got if m.topic == "kontur/events"
    ]
    assert {e.after.id for e in events if e.type == "new"} == {
        f"op-{d.archive_index}" for d in decisions
    }
    assert {e.after.outcome for e in events if e.type == "end"} == {"not_queued"}
    stats = [StatsPayload.model_validate_json(m.payload) for m in got if m.topic == "kontur/stats"]
    # the last stats are the run's final figures (sent at the stop if the interval held them)
    assert stats and stats[-1].cameras[0].frames == camera["frames"] > 0
    assert b"\n".join(m.payload for m in got).count(str(data_dir).encode()) == 0
