"""Home Assistant MQTT discovery: the configs kontur publishes (retained) when enabled.

- kontur itself is one device with a ``sensor`` of the degradation state (``NORMAL``,
  ``DEGRADED``, ``SAFE``; an ``enum`` sensor whose attributes are the whole ``state``
  payload): ``<discovery_prefix>/sensor/<node>/state/config``;
- each camera is a device (``via_device`` kontur) with two ``binary_sensor``:
  ``<discovery_prefix>/binary_sensor/<node>/<camera>_alarm/config`` (device class
  ``safety``: on while any event on the camera is open) and ``..._tamper/config`` (device
  class ``tamper``: on while a camera alarm is open; today the stream's own alarm,
  ``camera_untrusted``, later also the tamper monitors' events), and a ``sensor`` of its
  effective degradation state (ADR 0040; an ``enum`` sensor like kontur's, its attributes
  the whole ``<camera>/state`` payload):
  ``<discovery_prefix>/sensor/<node>/<camera>_state/config``.

Every entity names ``<prefix>/available`` as its availability topic, so Home Assistant shows
it unavailable once kontur stops or its connection dies (the last will).
"""

from __future__ import annotations

from kontur.mqtt.payloads import OFF, ON, DiscoveryConfig, DiscoveryDevice
from kontur.mqtt.topics import Topics
from kontur.wire.verdict import SystemState

__all__ = ["camera_configs", "object_id", "system_config"]


def object_id(camera: str) -> str:
    """A camera id as Home Assistant's object ids allow it (``.`` becomes ``_``)."""
    return camera.replace(".", "_")


def _system_device(topics: Topics) -> DiscoveryDevice:
    return DiscoveryDevice(
        identifiers=(topics.node,),
        name=f"kontur {topics.prefix}",
        model="trusted video-analytics perimeter",
    )


def _state_config(
    topics: Topics, name: str, key: str, state_topic: str, device: DiscoveryDevice
) -> DiscoveryConfig:
    """An ``enum`` sensor of a degradation state whose JSON payload has ``state``."""
    return DiscoveryConfig(
        name=name,
        unique_id=f"{topics.node}_{key}",
        object_id=f"{topics.node}_{key}",
        state_topic=state_topic,
        value_template="{{ value_json.state }}",
        json_attributes_topic=state_topic,
        device_class="enum",
        options=tuple(s.value for s in SystemState),
        icon="mdi:shield-half-full",
        availability_topic=topics.available,
        device=device,
    )


def system_config(topics: Topics) -> tuple[str, DiscoveryConfig]:
    """The degradation-state sensor: its config topic and payload."""
    config = _state_config(
        topics, "Degradation state", "state", topics.state, _system_device(topics)
    )
    return topics.discovery("sensor", "state"), config


def camera_configs(topics: Topics, camera: str) -> list[tuple[str, DiscoveryConfig]]:
    """The alarm and tamper binary sensors and the degradation-state sensor of ``camera``:
    config topics and payloads."""
    node, obj = topics.node, object_id(camera)
    device = DiscoveryDevice(
        identifiers=(f"{node}_{obj}",),
        name=camera,
        model="camera",
        via_device=node,
    )
    out = []
    for kind, device_class, state_topic in (
        ("alarm", "safety", topics.alarm(camera)),
        ("tamper", "tamper", topics.tamper(camera)),
    ):
        config = DiscoveryConfig(
            name=f"{camera} {kind}",
            unique_id=f"{node}_{obj}_{kind}",
            object_id=f"{node}_{obj}_{kind}",
            state_topic=state_topic,
            payload_on=ON,
            payload_off=OFF,
            device_class=device_class,
            availability_topic=topics.available,
            device=device,
        )
        out.append((topics.discovery("binary_sensor", f"{obj}_{kind}"), config))
    name = f"{camera} degradation state"
    state = _state_config(topics, name, f"{obj}_state", topics.camera_state(camera), device)
    out.append((topics.discovery("sensor", f"{obj}_state"), state))
    return out
