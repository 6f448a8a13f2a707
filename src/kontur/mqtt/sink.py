"""The MQTT sink: the thin shell around :class:`~kontur.mqtt.feed.Feed` (ADR 0026).

A paho-mqtt 2.x client runs in its own network thread (``loop_start``), connects in the
background and reconnects with backoff (1 s doubling to 30 s) for as long as the sink lives.
:meth:`MqttSink.emit` and :meth:`MqttSink.on_run_state` only translate (the feed) and hand
the messages to the client: they never block on the network and never raise on delivery.

**Nothing marked QoS 1 is lost while the broker is away.** Every message is QoS 1. paho
keeps each one in its own queue until the broker acknowledges it (PUBACK), across
disconnections, and sends them again, in order, once it is connected again. That queue is
bounded by ``queue_max``: a message that does not fit is dropped and counted
(:meth:`MqttSink.stats`), and so is one still unacknowledged when :meth:`MqttSink.close`
gives up waiting. A kontur process that dies loses what it held: the archive has it all.

**Secure by default.** No default credentials. The password comes from the environment
variable ``password_env`` names, never from the config file, and is never logged. Plain TCP
to a broker off loopback is refused unless ``unsafe_plain_mqtt: true``, which warns at every
start. With ``tls`` the broker's certificate and host name are verified (the system's trust
store, or ``tls.ca``), TLS 1.2 at least, with an optional client certificate.

**Failures** (a refused login, an unreachable broker, a TLS error, a lost connection) are
logged on one line, once for each new kind in a row, kept in :attr:`MqttSink.failures` and
counted as ``failed`` in :meth:`MqttSink.stats` (connection attempts, not messages).
"""

from __future__ import annotations

import logging
import os
import ssl
import sys
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from kontur.clock import Clock, SystemClock
from kontur.config import MqttConfig, is_loopback_host
from kontur.gate.sinks import (
    CameraAlarmEvent,
    CheckpointEvent,
    DecisionEvent,
    GopVerdictEvent,
    OperatorEvent,
    SinkEvent,
    SinkStats,
)
from kontur.mqtt.errors import MqttConfigError
from kontur.mqtt.feed import Feed, Publication
from kontur.mqtt.payloads import OFFLINE
from kontur.mqtt.topics import Topics
from kontur.wire.runstate import RunState

__all__ = ["MqttSink"]

_log = logging.getLogger(__name__)
_FAILURES_KEPT = 100
_EVENTS = (DecisionEvent, GopVerdictEvent, CameraAlarmEvent, CheckpointEvent, OperatorEvent)
_ACCEPTED = (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN)


class _Client(mqtt.Client):
    """paho's client, keeping why the last connection attempt failed (paho drops it)."""

    last_error: str | None = None

    def reconnect(self) -> MQTTErrorCode:
        """paho's reconnect; an OSError (refused, unreachable, TLS) is noted, then raised."""
        try:
            return super().reconnect()
        except OSError as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            raise


def _password(config: MqttConfig, environ: Mapping[str, str]) -> str | None:
    if config.password_env is None:
        return None
    value = environ.get(config.password_env)
    if not value:
        raise MqttConfigError(
            f"mqtt: expected environment variable {config.password_env} to hold the broker "
            "password, found it unset"
        )
    return value


def _tls_context(config: MqttConfig) -> ssl.SSLContext | None:
    tls = config.tls
    if tls is None:
        return None
    try:
        ctx = ssl.create_default_context(cafile=tls.ca)
        if tls.cert is not None:
            ctx.load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as exc:
        raise MqttConfigError(
            f"mqtt: expected readable PEM files for tls (ca, cert, key), got {exc}"
        ) from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _checked_transport(config: MqttConfig) -> None:
    """Refuse plain TCP off loopback unless unsafe; warn loudly when it is allowed."""
    if config.tls is not None or is_loopback_host(config.host):
        return
    if not config.unsafe_plain_mqtt:
        raise MqttConfigError(
            f"mqtt: expected tls for broker {config.host!r} off loopback "
            "(or unsafe_plain_mqtt: true), got plain TCP"
        )
    warning = (
        f"UNSAFE: mqtt broker {config.host} is reached over plain TCP (unsafe_plain_mqtt is "
        "on): events and the broker password travel in clear text"
    )
    _log.warning("%s", warning)
    # also straight to stderr: a site that logs to a file must still see it at every start
    print(f"kontur: warning: {warning}", file=sys.stderr, flush=True)


class MqttSink:
    """Publishes every sink event and the run state to an MQTT broker (see the module).

    ``clock`` stamps what the events do not carry (an alarm's start, the end at a stop).
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Refuses plain TCP off loopback without ``unsafe_plain_mqtt`` (and warns with it),
        a ``password_env`` naming an unset variable, or TLS files that cannot be loaded."""
        _checked_transport(config)
        password = _password(config, os.environ if environ is None else environ)
        context = _tls_context(config)
        self.host = config.host
        self.port = config.port or (8883 if config.tls is not None else 1883)
        self.topics = Topics(config.prefix, config.discovery_prefix)
        self._feed = Feed(
            self.topics,
            clock=clock if clock is not None else SystemClock(),
            discovery=config.discovery,
            stats_every_s=config.stats_every_s,
        )
        self._feed_lock = threading.Lock()
        self._cond = threading.Condition()  # counters and connection state, never held in paho
        self._accepted = self._delivered = self._dropped = self._failed = 0
        self._connected = self._closed = False
        self._failures: deque[str] = deque(maxlen=_FAILURES_KEPT)
        self._last_failure: str | None = None
        self._client = self._make_client(config, password, context)
        self._client.connect_async(self.host, self.port, keepalive=config.keepalive_s)
        self._client.loop_start()

    def _make_client(
        self, config: MqttConfig, password: str | None, context: ssl.SSLContext | None
    ) -> _Client:
        client_id = config.client_id or "kontur-" + config.prefix.replace("/", "-")
        client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        client.max_queued_messages_set(config.queue_max)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.will_set(self.topics.available, OFFLINE, qos=1, retain=True)
        if config.username is not None:
            client.username_pw_set(config.username, password)
        if context is not None:
            client.tls_set_context(context)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    # ---- paho's callbacks (its network thread) ------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            self._fail(f"expected the broker to accept the connection, got {reason}")
            return
        with self._cond:
            self._connected = True
            self._last_failure = None
            self._cond.notify_all()
        _log.info("mqtt connected to %s:%d", self.host, self.port)
        with self._feed_lock:
            if not self._closed:
                self._publish(self._feed.connected())

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        why = self._client.last_error or "no answer"
        self._fail(f"expected a connection, got {why}")

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        with self._cond:
            was, self._connected = self._connected, False
            closing = self._closed
        if was and not closing:
            self._fail(f"lost the connection ({reason}), reconnecting")

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        with self._cond:
            self._delivered += 1
            self._cond.notify_all()

    def _fail(self, why: str) -> None:
        """Count a failed connection; log it once for each new reason in a row."""
        msg = f"mqtt {self.host}:{self.port}: {why}"
        with self._cond:
            self._failed += 1
            repeated, self._last_failure = msg == self._last_failure, msg
            self._failures.append(msg)
        if not repeated:
            _log.warning("%s", msg)

    # ---- the sink -----------------------------------------------------------------------
    @property
    def failures(self) -> tuple[str, ...]:
        """The most recent failures (at most 100), oldest first, one line each."""
        with self._cond:
            return tuple(self._failures)

    @property
    def connected(self) -> bool:
        """Whether the broker accepted the connection and it is up now."""
        return self._connected

    def _publish(self, pubs: list[Publication]) -> None:
        """Hand ``pubs`` to paho in order (the feed lock held: one order per topic)."""
        for pub in pubs:
            info = self._client.publish(pub.topic, pub.payload, qos=pub.qos, retain=pub.retain)
            with self._cond:
                if info.rc in _ACCEPTED:
                    self._accepted += 1
                    continue
                self._dropped += 1
                first = self._dropped == 1 or self._dropped % 1000 == 0
            why = "queue full" if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE else str(info.rc)
            msg = f"mqtt {self.host}:{self.port}: {why}, message to {pub.topic} dropped"
            self._failures.append(msg)
            if first:
                _log.warning("%s (%d dropped so far)", msg, self._dropped)

    def _feed_with(self, step: str, arg: Any) -> None:
        with self._feed_lock:
            if self._closed:
                with self._cond:
                    self._dropped += 1
                return
            try:
                pubs = self._feed.event(arg) if step == "event" else self._feed.run_state(arg)
            except Exception as exc:  # a sink must never take the recorder down with it
                msg = f"mqtt: expected to translate the {step}, got {type(exc).__name__}: {exc}"
                self._failures.append(msg)
                _log.warning("%s", msg)
                return
            self._publish(pubs)

    def emit(self, event: SinkEvent) -> None:
        """Publish ``event`` (queued while the broker is away); never blocks, never raises
        on delivery. Raises only TypeError for something that is not a sink event."""
        if not isinstance(event, _EVENTS):
            raise TypeError(f"expected a sink event, got {type(event).__name__}")
        self._feed_with("event", event)

    def on_run_state(self, state: RunState) -> None:
        """Publish what the run state changed (``state``, each camera's ``<camera>/state``,
        ``operator/pending``, ``stats``)."""
        self._feed_with("run state", state)

    def stats(self) -> SinkStats:
        """Messages acknowledged by the broker, dropped, waiting; ``failed``: connection
        attempts refused or lost."""
        with self._cond:
            return SinkStats(
                f"mqtt {self.host}:{self.port}",
                delivered=self._delivered,
                failed=self._failed,
                dropped=self._dropped,
                queued=max(0, self._accepted - self._delivered),
            )

    def wait_connected(self, timeout: float) -> bool:
        """Wait until the broker accepted the connection; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._connected, timeout)

    def drain(self, timeout: float) -> bool:
        """Wait until the broker acknowledged every message handed over; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._delivered >= self._accepted, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """End the open events, publish ``offline``, wait at most ``timeout`` for the broker
        to acknowledge what is queued (the rest is dropped and counted), then disconnect."""
        with self._feed_lock:
            if self._closed:
                return
            self._publish(self._feed.stop())
            with self._cond:
                self._closed = True
        self.drain(timeout)
        with self._cond:
            lost = self._accepted - self._delivered
            self._dropped += lost
            self._accepted -= lost
        if lost:
            msg = f"mqtt {self.host}:{self.port}: {lost} message(s) unacknowledged at close"
            self._failures.append(msg)
            _log.warning("%s", msg)
        self._client.disconnect()
        self._client.loop_stop()
