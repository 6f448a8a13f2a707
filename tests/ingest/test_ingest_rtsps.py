"""RTSPS with mutual TLS against a real gst-rtsp-server on loopback (issue 15 §2, ADR 0037).

The server (tests/rtsp_server.py ``--tls-cert --tls-key --client-ca``) serves RTSP over TLS
and demands a client certificate that chains to the site CA. kontur terminates TLS itself
(site CA or pinned fingerprint from the inventory, client certificate issued by ``kontur
camera enroll --tls-client``) and hands FFmpeg a plain RTSP URL on a loopback relay.

What we show: the right certificates connect and the stream's per-GOP verdicts equal the
file's; a server certificate from another CA, or one that does not match the pin, is refused
with one line; the server refuses kontur without (or with a foreign) client certificate;
``encryption_required`` refuses plain ``rtsp://``; no password or key reaches a log line, an
error line or an archive record; the relay serves no other process; a camera that drops
reconnects over a fresh, verified TLS session.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import json
import logging
import os
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import pytest
import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import ValidationError
from tests.conftest import shared
from tests.ingest.conftest import SYSTEM_PYTHON, RtspServer
from typer.testing import CliRunner

from kontur.archive import Archive
from kontur.config import CameraConfig
from kontur.ingest._rtsps_relay import RtspRelay
from kontur.ingest.camera_cli import camera_app
from kontur.ingest.checks import merge_findings
from kontur.ingest.inventory import Inventory
from kontur.ingest.oms.keys import make_ca, private_key_pem
from kontur.ingest.recording import check_recording
from kontur.ingest.rtsp import RtspPolicy, SourceUnreachable, camera_policy, open_rtsp
from kontur.ingest.source import probe, read_gops
from kontur.ingest.tls import (
    EncryptionRequired,
    RtspsTrust,
    TlsNotConfigured,
    TlsRefused,
    connect_tls,
    leaf_sha256,
)
from kontur.ingest.trust import CameraTrust
from kontur.ingest.verdict import Verdict

ONE_SHOT = RtspPolicy(open_timeout_s=3, read_timeout_s=2, max_attempts=0)
PASSWORD = "s3cret-Pa55"

_cli = typer.Typer()
_cli.add_typer(camera_app, name="camera")


def kontur(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(_cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


# --- certificates ------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, out: Path
) -> tuple[Path, Path]:
    """A camera's TLS server certificate for 127.0.0.1, issued by ``ca_cert``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "camera 127.0.0.1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "server.key").write_bytes(private_key_pem(key))
    (out / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out / "server.pem", out / "server.key"


def _fingerprint(pem: Path) -> str:
    cert = x509.load_pem_x509_certificate(pem.read_bytes())
    return leaf_sha256(cert.public_bytes(serialization.Encoding.DER))


class Site:
    """A data dir with a site CA, camera ``cam`` enrolled with ``--tls-client``, and server
    certificates: ``good`` from the site CA, ``foreign`` from another CA."""

    def __init__(self, tmp: Path) -> None:
        self.data = tmp / "data"
        code, _, err = kontur("camera", "init-ca", "--data-dir", self.data)
        assert code == 0, err
        code, out, err = kontur(
            "camera", "enroll", "cam", "--issue", "--out", tmp / "keys", "--tls-client",
            "--data-dir", self.data, "--json", "-",
        )  # fmt: skip
        assert code == 0, err
        self.enrol_out = out
        ca_key = serialization.load_pem_private_key((self.data / "site-ca.key").read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_cert = x509.load_pem_x509_certificate((self.data / "site-ca.pem").read_bytes())
        self.good = _server_cert(ca_key, ca_cert, tmp / "good")
        other_key, other_cert = make_ca("another CA", _now() - dt.timedelta(minutes=5),
                                        _now() + dt.timedelta(days=1))  # fmt: skip
        self.foreign = _server_cert(other_key, other_cert, tmp / "foreign")
        (tmp / "other-ca.pem").write_bytes(other_cert.public_bytes(serialization.Encoding.PEM))
        self.other_ca = tmp / "other-ca.pem"

    def site_ca(self) -> bytes:
        """The site CA certificate, DER."""
        with Inventory.open(self.data) as inv:
            return inv.site_ca_der()

    def policy(self, camera_id: str = "cam") -> RtspPolicy:
        """The camera's policy as ingest builds it: trust from the inventory."""
        return camera_policy(self.data, camera_id, base=ONE_SHOT)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


@pytest.fixture(scope="session")
def gst_tls(gst_rtsp: None) -> None:
    """Skip (fail under CI) when GLib has no TLS backend (``glib-networking``)."""
    check = "from gi.repository import Gio; assert Gio.TlsBackend.get_default().supports_tls()"
    run = subprocess.run([SYSTEM_PYTHON, "-c", check], capture_output=True, timeout=30)
    if run.returncode == 0:
        return
    message = "the RTSPS tests need GLib's TLS backend: apt-get install -y glib-networking"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the RTSPS tests: {message}")
    pytest.skip(message)


@pytest.fixture
def rtsps_server(gst_tls: None) -> Iterator[Callable[..., tuple[RtspServer, str]]]:
    """``rtsps_server(file, codec, cert=(pem, key), client_ca=PEM|None)``: a TLS server on
    loopback and its ``rtsps://`` URL; killed at teardown."""
    servers: list[RtspServer] = []

    def start(
        file: Path, codec: str, cert: tuple[Path, Path], client_ca: Path | None
    ) -> tuple[RtspServer, str]:
        server = RtspServer(file, codec, fast=True)
        extra = ["--tls-cert", str(cert[0]), "--tls-key", str(cert[1])]
        server.extra = (*extra, *(["--client-ca", str(client_ca)] if client_ca else []))
        servers.append(server)
        server.start()
        return server, f"rtsps://127.0.0.1:{server.port}/stream"

    yield start
    for server in servers:
        server.stop()


Server = Callable[..., tuple[RtspServer, str]]
PETS_H264 = ("pets_h264_default.mp4", "h264")


def _mutual(rtsps_server: Server, site: Site, vector: tuple[str, str] = PETS_H264) -> str:
    """A server with the site's good certificate, demanding a site-CA client certificate."""
    path = shared("oms", "streams", vector[0])
    return rtsps_server(path, vector[1], site.good, site.data / "site-ca.pem")[1]


def _verdicts(url: str, policy: RtspPolicy, anchors: list[x509.Certificate]) -> list[Verdict]:
    """Per-GOP verdicts of one RTSP(S) session, as test_ingest_rtsp_oms computes them."""
    trust: CameraTrust | None = None
    decided = []
    with pytest.raises(SourceUnreachable):  # one session, no reconnect: it ends with the file
        gops = read_gops(url, probe(url, policy=policy), policy=policy, decode=False)
        for index, gop in enumerate(gops):
            if trust is None:
                trust = CameraTrust("cam", gop.info.codec, gop.header, guard=None, anchors=anchors)
            decided += trust.push(index, gop.packets, gop.info)
    assert trust is not None
    decided += trust.finish()
    return [
        merge_findings("cam", t.gop_index, list(t.findings)).verdict
        for t in sorted(decided, key=lambda t: t.gop_index)
    ]


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


# --- the right certificates connect ---------------------------------------------------


@pytest.mark.parametrize(
    "vector", [("pets_h264_default.mp4", "h264"), ("pets_h265_default.mp4", "h265")]
)
def test_mutual_tls_connects_and_the_verdicts_equal_the_files(
    rtsps_server: Server, site: Site, vector: tuple[str, str]
) -> None:
    path = shared("oms", "streams", vector[0])
    anchors = x509.load_pem_x509_certificates(shared("oms", "keys", "ca_ec.pem").read_bytes())
    from_file = [
        g.verdict.verdict for g in check_recording(path, "cam", guard=None, anchors=anchors)
    ]
    assert from_file == [Verdict.AUTHENTIC] * 10
    policy = site.policy()
    assert policy.tls is not None and policy.tls.client_cert is not None
    over_rtsps = _verdicts(_mutual(rtsps_server, site, vector), policy, anchors)
    assert len(over_rtsps) == len(from_file)
    assert over_rtsps[:-1] == from_file[:-1]
    assert over_rtsps[-1] is Verdict.PENDING  # as over plain RTSP: BYE before the last SEI


def test_a_pinned_self_signed_camera_connects_and_decodes(rtsps_server: Server, site: Site) -> None:
    with Inventory.open(site.data) as inv:  # the camera's certificate is not from the site CA
        inv.set_rtsps("pinned", server_sha256=f"sha256:{_fingerprint(site.foreign[0])}")
    path = shared("oms", "streams", PETS_H264[0])
    _, url = rtsps_server(path, "h264", site.foreign, None)
    policy = site.policy("pinned")
    gops, frames = 0, 0
    with pytest.raises(SourceUnreachable, match="expected the stream back"):
        for gop in read_gops(url, probe(url, policy=policy), policy=policy):
            gops, frames = gops + 1, frames + len(gop.frames)
    assert gops == 10 and frames >= 198


def test_a_dropped_rtsps_camera_reconnects_over_a_fresh_verified_session(
    rtsps_server: Server, site: Site
) -> None:
    server, url = rtsps_server(
        shared("video", "car_traffic_640x360.mp4"), "h264", site.good, site.data / "site-ca.pem"
    )
    policy = camera_policy(
        site.data,
        "cam",
        base=RtspPolicy(open_timeout_s=3, read_timeout_s=2, backoff_initial_s=0.2, jitter=0.1),
    )
    gops = read_gops(url, probe(url, policy=policy), policy=policy)
    next(gops)
    server.stop()  # the camera drops off the network mid-stream...
    restart = threading.Timer(0.8, server.start)
    restart.start()  # ...and is back a little later
    try:
        after = next(g for g in gops if g.notes)
    finally:
        restart.join()
    gops.close()
    assert re.fullmatch(
        r"source reconnected after \d+\.\d s \((\d+) attempt\(s\).*", after.notes[0]
    )
    assert after.packets[0].keyframe and after.frames


# --- a wrong server certificate is refused --------------------------------------------


def test_a_server_certificate_from_another_ca_is_refused(rtsps_server: Server, site: Site) -> None:
    _, url = rtsps_server(shared("oms", "streams", PETS_H264[0]), "h264", site.foreign, None)
    with pytest.raises(TlsRefused) as err:
        probe(url, policy=site.policy())
    assert _one_line(err.value) == (
        f"source {url}: camera TLS at 127.0.0.1:{url.split(':')[2].split('/')[0]}: expected a "
        "server certificate that chains to the site CA and names the host, got one that does "
        "not verify (unable to get local issuer certificate)"
    )


def test_a_fingerprint_mismatch_is_refused(rtsps_server: Server, site: Site) -> None:
    wrong = _fingerprint(site.foreign[0])
    with Inventory.open(site.data) as inv:
        inv.set_rtsps("cam2", server_sha256=wrong)
    _, url = rtsps_server(shared("oms", "streams", PETS_H264[0]), "h264", site.good, None)
    with pytest.raises(TlsRefused) as err:
        probe(url, policy=site.policy("cam2"))
    message = _one_line(err.value)
    assert message.endswith(
        f"expected the pinned server certificate sha256:{wrong}, "
        f"got sha256:{_fingerprint(site.good[0])}"
    )


def test_a_host_the_certificate_does_not_name_is_refused(rtsps_server: Server, site: Site) -> None:
    _, url = rtsps_server(shared("oms", "streams", PETS_H264[0]), "h264", site.good, None)
    with pytest.raises(TlsRefused, match=r"Hostname mismatch.*'localhost'"):
        probe(url.replace("127.0.0.1", "localhost"), policy=site.policy())


# --- the camera refuses kontur without its client certificate ------------------------


def test_a_missing_client_certificate_is_refused_by_the_server(
    rtsps_server: Server, site: Site
) -> None:
    url = _mutual(rtsps_server, site)
    with Inventory.open(site.data) as inv:
        trust = inv.rtsps_trust("no-client")  # site CA only: nothing issued for it
    assert trust is not None and trust.client_cert is None
    with pytest.raises(TlsRefused) as err:
        open_rtsp(url, RtspPolicy(open_timeout_s=3, read_timeout_s=2, tls=trust))
    assert _one_line(err.value) == (
        f"source {url}: expected the camera to accept the TLS session (kontur has no client "
        "certificate for this camera: enroll --tls-client), got: the camera closed the TLS "
        "session before answering any request"
    )


def test_a_client_certificate_from_another_ca_is_refused_by_the_server(
    rtsps_server: Server, site: Site
) -> None:
    url = _mutual(rtsps_server, site)
    pem, key = site.foreign  # a certificate the camera's CA did not issue
    trust = RtspsTrust(ca_der=site.site_ca(), client_cert=pem, client_key=key)
    with pytest.raises(TlsRefused, match="with kontur's client certificate, got: the camera"):
        open_rtsp(url, RtspPolicy(open_timeout_s=3, read_timeout_s=2, tls=trust))


# --- encryption_required, and rtsps never unverified --------------------------------


def test_encryption_required_refuses_plain_rtsp() -> None:
    source = f"rtsp://admin:{PASSWORD}@127.0.0.1:8554/stream"
    with pytest.raises(EncryptionRequired) as err:
        open_rtsp(source, RtspPolicy(encryption_required=True))
    assert _one_line(err.value) == (
        "source rtsp://***@127.0.0.1:8554/stream: expected rtsps:// "
        "(encryption_required: true), got rtsp://"
    )
    with pytest.raises(ValidationError) as bad:
        CameraConfig.model_validate({"id": "c", "source": source, "encryption_required": True})
    assert "expected an rtsps:// source (encryption_required: true), got rtsp://" in str(bad.value)
    assert PASSWORD not in str(bad.value)
    ok = CameraConfig.model_validate(
        {"id": "c", "source": "rtsps://cam/stream", "encryption_required": True}
    )
    assert ok.encryption_required


def test_rtsps_without_a_site_ca_or_pin_is_refused_not_opened_unverified(tmp_path: Path) -> None:
    with Inventory.open(tmp_path / "d") as inv:
        assert inv.rtsps_trust("cam") is None
    policy = camera_policy(tmp_path / "d", "cam", base=ONE_SHOT)
    with pytest.raises(TlsNotConfigured, match="expected the camera's TLS trust"):
        open_rtsp("rtsps://127.0.0.1:9/stream", policy)


# --- no credential or key in logs, errors or records ----------------------------------


def test_passwords_and_keys_stay_out_of_logs_errors_and_records(
    rtsps_server: Server, site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key_pem = (site.data / "rtsps" / "cam.key").read_bytes()
    key_body = key_pem.decode().splitlines()[1]
    assert stat.S_IMODE((site.data / "rtsps" / "cam.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((site.data / "rtsps").stat().st_mode) == 0o700
    url = _mutual(rtsps_server, site).replace("rtsps://", f"rtsps://admin:{PASSWORD}@")
    errors = []
    probe(url, policy=site.policy())  # the right certificates: connects
    for policy in (
        RtspPolicy(open_timeout_s=3, tls=RtspsTrust(ca_der=site.site_ca())),
        RtspPolicy(open_timeout_s=3, tls=RtspsTrust(server_sha256="0" * 64)),
    ):
        with pytest.raises(TlsRefused) as err:
            probe(url, policy=policy)
        errors.append(str(err.value))
    assert all("rtsps://***@127.0.0.1" in e for e in errors)
    shown = "\n".join([*errors, caplog.text, repr(site.policy()), site.enrol_out])
    assert PASSWORD not in shown and key_body not in shown and "PRIVATE KEY" not in shown
    enrolled = json.loads(site.enrol_out)
    assert enrolled["rtsps"]["client_cert"] == str(site.data / "rtsps" / "cam.pem")
    with Archive.open_readonly(site.data) as archive:
        records = [r.payload for r in archive.iter_records() if r.kind == "camera"]
    assert [r["action"] for r in records] == ["init_ca", "enrol", "rtsps"]
    assert records[2]["client_sha256"] == _fingerprint(site.data / "rtsps" / "cam.pem")
    dumped = json.dumps(records)
    assert key_body not in dumped and "PRIVATE KEY" not in dumped


# --- kontur camera tls -----------------------------------------------------------------


def test_camera_tls_pins_rotates_and_refuses_a_bad_pin(site: Site) -> None:
    d = str(site.data)
    code, out, err = kontur("camera", "tls", "cam", "--data-dir", d)
    assert code == 0, err
    assert out.strip() == (
        f"cam rtsps: server check site-ca, client certificate {site.data / 'rtsps' / 'cam.pem'}"
    )
    pin = "ab" * 32
    code, out, err = kontur("camera", "tls", "cam", "--pin", f"sha256:{pin}", "--data-dir", d)
    assert code == 0, err
    assert f"server check pin sha256:{pin}, client certificate " in out  # the client stays
    code, _, err = kontur("camera", "tls", "cam", "--pin", "sha256:1234", "--data-dir", d)
    assert code == 2
    assert err.strip() == (
        "kontur: error: --pin: expected a SHA-256 fingerprint (sha256: and 64 hex digits), "
        "got 'sha256:1234'"
    )
    code, _, err = kontur("camera", "tls", "cam", "--issue-client", "--data-dir", d)
    assert code == 2 and err.count("\n") == 1  # the issued key is never overwritten
    assert "rtsps/cam.key: expected no file there, got one" in err
    with Archive.open_readonly(site.data) as archive:
        actions = [r.payload for r in archive.iter_records() if r.kind == "camera"]
    assert [a["server_sha256"] for a in actions if a["action"] == "rtsps"] == [None, pin]


# --- the relay ---------------------------------------------------------------------------


def test_the_relay_serves_only_this_process_on_one_connection(
    rtsps_server: Server, site: Site
) -> None:
    url = _mutual(rtsps_server, site)
    trust = site.policy().tls
    assert trust is not None
    port = int(url.split(":")[2].split("/")[0])
    relay = RtspRelay(connect_tls("127.0.0.1", port, trust, 3.0), accept_timeout_s=10)
    try:
        intruder = (
            f"import socket\ns = socket.create_connection(('127.0.0.1', {relay.port}))\n"
            "s.sendall(b'OPTIONS * RTSP/1.0\\r\\nCSeq: 1\\r\\n\\r\\n')\n"
            "try:\n    print('closed' if s.recv(100) == b'' else 'answered')\n"
            "except ConnectionResetError:\n    print('closed')\n"
        )
        run = subprocess.run(
            [sys.executable, "-c", intruder], capture_output=True, text=True, timeout=20
        )
        assert run.stdout.strip() == "closed", run.stderr  # closed unanswered
        with av.open(relay.url_for(url), options={"rtsp_transport": "tcp"}) as container:
            packets = list(itertools.islice(container.demux(container.streams.video[0]), 30))
            # FFmpeg is in: the listener is closed, nobody else gets a connection
            late = subprocess.run(
                [sys.executable, "-c", intruder], capture_output=True, text=True, timeout=20
            )
            assert "ConnectionRefusedError" in late.stderr
    finally:
        relay.close()
    assert relay.foreign_peers == 1
    assert len(packets) == 30 and relay.answered and relay.failure is None


# --- end to end: kontur demo on an rtsps:// camera ------------------------------------


@pytest.mark.e2e
def test_kontur_demo_runs_an_encrypted_camera_and_refuses_a_plain_one(
    rtsps_server: Server, site: Site, tmp_path: Path
) -> None:
    from tests.conftest import run_kontur

    url = _mutual(rtsps_server, site, ("pets_h264_default.mp4", "h264"))
    url = url.replace("rtsps://", f"rtsps://admin:{PASSWORD}@")
    runs = []
    for source in (url, url.replace("rtsps://", "rtsp://")):
        cfg = tmp_path / "cfg.yaml"
        camera = {"id": "cam", "source": source, "encryption_required": True}
        cfg.write_text(json.dumps({"cameras": [camera], "tamper": {"enabled": False}}))
        out = tmp_path / "s.json"
        out.unlink(missing_ok=True)
        runs.append(run_kontur(
            "demo", "--model", str(shared("models", "yolox_nano.onnx")), "--config", str(cfg),
            "--data-dir", str(site.data), "--seconds", "6", "--no-sign", "--json", str(out),
        ))  # fmt: skip
        if source == url:
            assert runs[-1].returncode == 0, runs[-1].stderr
            cam = json.loads(out.read_text())["cameras"][0]
            assert cam["error"] is None and cam["frames"] > 50
            assert cam["source"] == url.replace(f"admin:{PASSWORD}", "***")
    plain = runs[1]
    assert plain.returncode != 0
    assert "expected an rtsps:// source (encryption_required: true), got rtsp://" in plain.stderr
    assert "Traceback" not in plain.stderr
    shown = "".join(r.stdout + r.stderr for r in runs)
    with Archive.open_readonly(site.data) as archive:
        shown += json.dumps([r.payload for r in archive.iter_records()], default=str)
    assert PASSWORD not in shown
