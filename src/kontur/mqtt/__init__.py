"""MQTT for integrations: Frigate-style topics, Home Assistant discovery (issue 12 §3, ADR 0026).

Another sink (:mod:`kontur.gate.sinks`): the supervisor's recorder hands it every event once
the archive made its record durable (decide, record, then act), and the perimeter hands it
each run-state snapshot (:meth:`MqttSink.on_run_state`). Configured by ``sinks.mqtt``.

- :mod:`kontur.mqtt.topics`: every topic, retained flag and QoS (the table is there);
- :mod:`kontur.mqtt.payloads`: the frozen payload models a receiver parses;
- :mod:`kontur.mqtt.feed`: the pure core, events and run states in, messages out;
- :mod:`kontur.mqtt.discovery`: the Home Assistant discovery configs;
- :mod:`kontur.mqtt.sink`: :class:`MqttSink`, paho-mqtt in its own network thread.

Nothing published carries video, a frame or a person crop.
"""

from kontur.mqtt.errors import MqttConfigError
from kontur.mqtt.feed import Feed, Publication
from kontur.mqtt.payloads import (
    OFF,
    OFFLINE,
    ON,
    ONLINE,
    CameraStatePayload,
    EventMessage,
    PendingPayload,
    StatePayload,
    StatsPayload,
    TrackedEvent,
)
from kontur.mqtt.sink import MqttSink
from kontur.mqtt.topics import Topics

__all__ = [
    "OFF",
    "OFFLINE",
    "ON",
    "ONLINE",
    "CameraStatePayload",
    "EventMessage",
    "Feed",
    "MqttConfigError",
    "MqttSink",
    "PendingPayload",
    "Publication",
    "StatePayload",
    "StatsPayload",
    "Topics",
    "TrackedEvent",
]
