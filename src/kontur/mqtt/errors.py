"""Errors of the MQTT sink.

::

    KonturError
    └── GateError
        └── SinkConfigError         (kontur.gate) a sink that cannot be built
            └── MqttConfigError     (kontur.mqtt) an MQTT sink that cannot be built: plain TCP
                                    off loopback, an unset password variable, a TLS file
                                    that cannot be read

Nothing is raised once the sink runs: a broker that refuses or goes away is a failure the
sink records (:attr:`~kontur.mqtt.MqttSink.failures`) and logs on one line, and it keeps
retrying with backoff. Messages say what was expected and what was found.
"""

from __future__ import annotations

from kontur.gate.errors import SinkConfigError

__all__ = ["MqttConfigError"]


class MqttConfigError(SinkConfigError):
    """An MQTT sink that cannot be built as configured."""
