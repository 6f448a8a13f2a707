"""``sinks.mqtt``: refused when unsafe or incomplete, one line each; wired into build_sinks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from mosquitto_broker import free_port

from kontur.config import MqttConfig, load_config
from kontur.errors import ConfigError
from kontur.gate import SinkConfigError
from kontur.gate.sinks import LogSink, build_sinks, run_state_sinks
from kontur.mqtt import MqttConfigError, MqttSink


def _load(tmp_path: Path, mqtt: dict[str, Any]) -> Any:
    path = tmp_path / "k.yaml"
    path.write_text(yaml.safe_dump({"sinks": {"mqtt": mqtt}}))
    return load_config(path)


def test_off_by_default() -> None:
    assert load_config().sinks.mqtt is None


def test_a_loopback_broker_needs_no_tls(tmp_path: Path) -> None:
    cfg = _load(tmp_path, {"host": "127.0.0.1"}).sinks.mqtt
    assert (cfg.prefix, cfg.discovery, cfg.discovery_prefix, cfg.tls) == (
        "kontur",
        True,
        "homeassistant",
        None,
    )


@pytest.mark.parametrize(
    ("mqtt", "fragment"),
    [
        (
            {"host": "broker.lan"},
            "expected sinks.mqtt.tls for broker 'broker.lan' off loopback "
            "(or unsafe_plain_mqtt: true), got plain TCP",
        ),
        ({"host": "::1", "password_env": "PW"}, "expected sinks.mqtt.username with password_env"),
        (
            {"host": "broker.lan", "tls": {"cert": "c.pem"}},
            "expected both sinks.mqtt.tls.cert and tls.key, or neither",
        ),
        ({"host": "localhost", "prefix": "kontur/#"}, "key sinks.mqtt.prefix"),
        ({"host": "localhost", "prefix": "/kontur"}, "key sinks.mqtt.prefix"),
        ({"host": "localhost", "password": "hunter2"}, "key sinks.mqtt.password: expected a known"),
        ({"host": "localhost", "queue_max": 0}, "key sinks.mqtt.queue_max"),
    ],
)
def test_refused_on_one_line(tmp_path: Path, mqtt: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, mqtt)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_plain_off_loopback_warns_at_every_start(capsys: pytest.CaptureFixture[str]) -> None:
    # TEST-NET-1 (RFC 5737): nothing answers there; the sink never blocks its caller anyway
    cfg = MqttConfig(host="192.0.2.1", unsafe_plain_mqtt=True)
    for _ in range(2):
        MqttSink(cfg, environ={}).close(timeout=0)
        err = capsys.readouterr().err
        assert "kontur: warning: UNSAFE: mqtt broker 192.0.2.1 is reached over plain TCP" in err


def test_the_sink_rechecks_what_the_config_checks() -> None:
    cfg = MqttConfig(host="127.0.0.1").model_copy(update={"host": "broker.lan"})
    with pytest.raises(MqttConfigError, match=r"expected tls for broker 'broker\.lan'"):
        MqttSink(cfg, environ={})


def test_an_unset_password_variable_is_refused() -> None:
    cfg = MqttConfig(host="127.0.0.1", username="kontur", password_env="KONTUR_TEST_UNSET_PW")
    with pytest.raises(SinkConfigError) as err:
        MqttSink(cfg, environ={})
    assert str(err.value) == (
        "mqtt: expected environment variable KONTUR_TEST_UNSET_PW to hold the broker password, "
        "found it unset"
    )


def test_an_unreadable_ca_is_refused(tmp_path: Path) -> None:
    cfg = MqttConfig(host="127.0.0.1", tls={"ca": str(tmp_path / "missing.pem")})  # type: ignore[arg-type]
    with pytest.raises(MqttConfigError, match="expected readable PEM files for tls"):
        MqttSink(cfg, environ={})


def test_build_sinks_adds_mqtt_which_follows_the_run_state(tmp_path: Path) -> None:
    config = _load(tmp_path, {"host": "127.0.0.1", "port": free_port()}).sinks
    sinks = build_sinks(config, tmp_path / "data", environ={})
    try:
        assert [type(s) for s in sinks] == [LogSink, MqttSink]
        assert run_state_sinks(sinks) == [sinks[1]]
    finally:
        sinks[0].close()
        sinks[1].close(timeout=0)  # type: ignore[call-arg]  # nobody listens: nothing to wait for
