"""A real Mosquitto broker on loopback for the tests, and a subscriber that records.

:class:`Mosquitto` writes a config with three listeners on free loopback ports:

- ``plain``: anonymous, plain TCP (loopback: what kontur allows without TLS);
- ``auth``: plain TCP, username and password (a password file made by ``mosquitto_passwd``);
- ``tls``: TLS with a certificate for 127.0.0.1 and localhost signed by a throwaway CA
  (made with ``cryptography``), username and password.

Persistence is on (``persistence_location`` in its folder): stopped with SIGTERM and started
again on the same ports, it keeps retained messages and the sessions of persistent clients
and the messages queued for them.

:class:`Recorder` subscribes to ``#`` at QoS 1 with MQTT 5's *retain as published*, so the
retained flag of every message is what the publisher set.
"""

from __future__ import annotations

import datetime
import getpass
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

USER = "kontur"
PASSWORD = "broker-pw-correct-horse-42"
WAIT_S = 60.0


def mosquitto_binary() -> str | None:
    """The ``mosquitto`` executable (Debian puts it in /usr/sbin), or None."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()),
        None,
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def make_certs(folder: Path, cn: str = "kontur test CA") -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost: ``ca``, ``cert``, ``key``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(san, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, paths["key"])
    return paths


class Mosquitto:
    """One broker process; :meth:`start`, :meth:`stop`, and again on the same ports."""

    def __init__(self, folder: Path, binary: str) -> None:
        self.folder = folder
        self.binary = binary
        self.ports = {"plain": free_port(), "auth": free_port(), "tls": free_port()}
        self.certs = make_certs(folder / "certs")
        self.proc: subprocess.Popen[bytes] | None = None
        passwd = folder / "passwd"
        subprocess.run(
            ["mosquitto_passwd", "-b", "-c", str(passwd), USER, PASSWORD],
            check=True,
            capture_output=True,
        )
        (folder / "db").mkdir()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(self._config(passwd))

    def _config(self, passwd: Path) -> str:
        p = self.ports
        return "\n".join(
            [
                f"user {getpass.getuser()}",
                "per_listener_settings true",
                "persistence true",
                f"persistence_location {self.folder / 'db'}/",
                f"log_dest file {self.folder / 'mosquitto.log'}",
                "log_type all",
                f"listener {p['plain']} 127.0.0.1",
                "allow_anonymous true",
                f"listener {p['auth']} 127.0.0.1",
                "allow_anonymous false",
                f"password_file {passwd}",
                f"listener {p['tls']} 127.0.0.1",
                "allow_anonymous false",
                f"password_file {passwd}",
                f"cafile {self.certs['ca']}",
                f"certfile {self.certs['cert']}",
                f"keyfile {self.certs['key']}",
                "",
            ]
        )

    def start(self) -> None:
        """Start it and wait until every listener accepts connections."""
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {self.log()}")
            if all(_accepts(port) for port in self.ports.values()):
                return
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen within {WAIT_S} s: {self.log()}")

    def stop(self) -> None:
        """SIGTERM (it saves its persistence database), and wait for it to exit."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        """The last lines of the broker's log."""
        path = self.folder / "mosquitto.log"
        return "\n".join(path.read_text().splitlines()[-20:]) if path.exists() else ""


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Message:
    """One message the recorder received."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


class Recorder:
    """A subscriber to ``#`` (QoS 1, retain as published) that keeps every message."""

    def __init__(
        self,
        port: int,
        *,
        client_id: str | None = None,
        persistent: bool = False,
        topic: str = "#",
    ) -> None:
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self._subscribed = False
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"rec-{os.getpid()}-{id(self)}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.topic = topic
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        props = None
        if persistent:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect_async(
            "127.0.0.1", port, keepalive=10, clean_start=not persistent, properties=props
        )
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason, props) -> None:  # type: ignore[no-untyped-def]
        if not reason.is_failure and not flags.session_present:
            client.subscribe(self.topic, options=SubscribeOptions(qos=1, retainAsPublished=True))
        elif not reason.is_failure:
            with self._cond:
                self._subscribed = True
                self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reasons, props) -> None:  # type: ignore[no-untyped-def]
        with self._cond:
            self._subscribed = True
            self._cond.notify_all()

    def _on_message(self, client, userdata, msg) -> None:  # type: ignore[no-untyped-def]
        with self._cond:
            self.messages.append(Message(msg.topic, msg.payload, msg.qos, bool(msg.retain)))
            self._cond.notify_all()

    def wait_subscribed(self) -> None:
        """Wait until the subscription is in place (or the session held it)."""
        with self._cond:
            assert self._cond.wait_for(lambda: self._subscribed, WAIT_S), "no subscription"

    def wait_for(self, what: str, probe: Callable[[list[Message]], bool]) -> list[Message]:
        """Wait until ``probe(messages)`` holds; fails naming ``what`` after a long bound."""
        with self._cond:
            ok = self._cond.wait_for(lambda: probe(self.messages), WAIT_S)
            assert ok, f"expected {what}, got {[(m.topic, m.payload[:60]) for m in self.messages]}"
            return list(self.messages)

    def on(self, topic: str) -> list[Message]:
        """The messages received on ``topic`` so far."""
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()
