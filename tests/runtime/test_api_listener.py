"""The supervisor's side of the API block (ADR 0023): scheme, TLS, socket, row of the table,
and the block itself serving TLS on the socket it inherits, its audit reaching the inbox."""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import stat
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from pydantic import ValidationError

from kontur.archive import Archive
from kontur.clock import ManualClock
from kontur.config import ApiConfig, load_config
from kontur.degrade import DegradationMachine, Watchdog
from kontur.errors import ConfigError
from kontur.runtime.apiblock import _tls_material, attach_api, is_loopback, listen, tls_fingerprint
from kontur.runtime.health import MAX_API_RESTARTS, Health
from kontur.runtime.recorder import Recorder
from kontur.runtime.supervisor import Block, Supervisor
from kontur.runtime.wiring import Wiring
from kontur.wire import AuditEvent
from kontur.wire.channel import Outbox, wait_readable


def _wiring() -> Wiring:
    r, w = os.pipe()
    return Wiring(blocks=[], inboxes={}, to_gate=Outbox(w), to_ingest={}, rings={}, fds=[r, w])


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("192.168.1.10", False), ("::", False), ("cam.example", False)],
)  # fmt: skip
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_serves_plain_http_on_a_port_the_kernel_picks(tmp_path: Path) -> None:
    listener = listen(ApiConfig(port=0), tmp_path)
    try:
        port = listener.sock.getsockname()[1]
        assert port > 0 and listener.url == f"http://127.0.0.1:{port}"
        assert listener.tls_cert is None and listener.fingerprint is None
        assert listener.sock.get_inheritable()
    finally:
        listener.close()
    assert not (tmp_path / "api-tls").exists()


def test_off_loopback_a_self_signed_certificate_is_made_once(tmp_path: Path) -> None:
    cert, key, generated = _tls_material(ApiConfig(bind="0.0.0.0"), tmp_path)
    assert generated and cert is not None and key is not None
    assert (cert.parent, key.parent) == (tmp_path / "api-tls", tmp_path / "api-tls")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert.parent.stat().st_mode) == 0o700
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
    fp = tls_fingerprint(cert.read_bytes())
    assert len(fp.split(":")) == 32
    assert fp.replace(":", "").lower() == hashlib.sha256(parsed.public_bytes(_der())).hexdigest()
    again = _tls_material(ApiConfig(bind="0.0.0.0"), tmp_path)
    assert again == (cert, key, False)
    assert tls_fingerprint(cert.read_bytes()) == fp


def _der() -> object:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def test_plain_http_off_loopback_needs_the_unsafe_switch_and_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = ApiConfig(bind="0.0.0.0", unsafe_plain_http=True)
    assert _tls_material(cfg, tmp_path) == (None, None, False)
    assert "UNSAFE: the API serves plain HTTP on 0.0.0.0" in capsys.readouterr().err
    assert not (tmp_path / "api-tls").exists()


def test_a_configured_certificate_must_be_there_and_come_with_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"api.tls_cert: expected a readable PEM file"):
        _tls_material(ApiConfig(tls_cert=str(tmp_path / "no.pem"), tls_key="k.pem"), tmp_path)
    with pytest.raises(ValidationError, match=r"expected both api\.tls_cert and api\.tls_key"):
        ApiConfig(tls_cert="cert.pem")


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=rf"api: expected to listen on 127.0.0.1:{port}, got"):
            listen(ApiConfig(port=port), tmp_path)
    finally:
        taken.close()


def test_the_api_row_holds_two_descriptors_the_api_edge_and_no_credential(
    tmp_path: Path,
) -> None:
    cfg = load_config().model_copy(
        update={
            "sinks": load_config().sinks.model_validate(
                {"webhook": {"url": "https://user:hunter2@hooks.example/k"}}
            )
        }
    )
    wiring, listener = _wiring(), listen(ApiConfig(port=0), tmp_path)
    try:
        block = attach_api(wiring, listener, cfg, tmp_path)
        assert wiring.blocks[0] is block and block.name == "api"
        assert block.module == "kontur.api.process"
        assert block.pass_fds == (listener.sock.fileno(), block.spec["supervisor_fd"])
        assert block.minimal_env and block.restartable
        inbox = wiring.inboxes["api"]
        assert inbox.edge is not None
        assert inbox.edge.types == {
            "audit", "operator_verdict", "export_request", "incident_request"
        }  # fmt: skip
        assert "hunter2" not in repr(block.spec)
        assert block.spec["url"] == listener.url
    finally:
        listener.close()
        wiring.close()


def test_the_api_block_serves_tls_on_the_inherited_socket_and_audits_to_the_pipe(
    tmp_path: Path,
) -> None:
    """The real block (uvicorn, the app), TLS with a generated certificate, on loopback."""
    cert, key, _ = _tls_material(ApiConfig(bind="0.0.0.0"), tmp_path)
    cfg = ApiConfig(port=0, tls_cert=str(cert), tls_key=str(key))
    wiring, listener = _wiring(), listen(cfg, tmp_path)
    supervisor = Supervisor(tmp_path / "run")
    try:
        assert listener.url.startswith("https://127.0.0.1:")
        block = attach_api(wiring, listener, load_config(), tmp_path)
        supervisor.start([block])
        tls = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=listener.url, verify=tls, timeout=10) as client:
            r = _retry(lambda: client.get("/healthz"))
            assert (r.status_code, r.json()) == (200, {"ok": True})
            served = ssl.get_server_certificate(("127.0.0.1", listener.sock.getsockname()[1]))
            assert tls_fingerprint(served.encode()) == listener.fingerprint
            r = client.post("/auth/login", json={"name": "nobody", "password": "x" * 12})
            assert r.status_code == 401
        audits = _read_audits(wiring)
        assert any(a.action == "login_failed" and a.actor == "nobody" for a in audits), audits
    finally:
        supervisor.stop_all(grace_s=5.0)
        listener.close()
        wiring.close()


def _retry(call: object, seconds: float = 30.0) -> httpx.Response:
    end = time.monotonic() + seconds
    while True:
        try:
            return call()  # type: ignore[operator,no-any-return]
        except httpx.TransportError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def _read_audits(wiring: Wiring, seconds: float = 10.0) -> list[AuditEvent]:
    inbox, got = wiring.inboxes["api"], []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not got:
        for ready in wait_readable([inbox], 0.2):
            got += [m for m in ready.drain() if isinstance(m, AuditEvent)]
    assert not inbox.take_violations()
    return got


def test_health_restarts_a_dead_api_without_degrading_and_gives_up_on_a_crash_loop(
    tmp_path: Path,
) -> None:
    """An outsider who can crash the API must not be able to degrade the site (ADR 0023)."""
    cfg = load_config()
    clock = ManualClock()
    archive = Archive.open(tmp_path / "d", clock)
    supervisor = Supervisor(tmp_path / "run")
    wiring = _wiring()
    h = Health(
        cfg,
        DegradationMachine(cfg.degradation, clock),
        Watchdog(clock, cfg.degradation.watchdog_timeout_s),
        [],
        supervisor,
        wiring,
        archive,
        Recorder(archive, {}, []),
        {},
        lambda: "cpu",
    )
    # a stand-in that exits at once, unasked: `python -m json.tool SPEC.json`
    supervisor.start([Block("api", "json.tool", {"x": 1}, (), restartable=True)])
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            h.poll()
            archive.flush()
            events = [r.payload for r in archive.iter_records() if r.kind == "event"]
            if any(e["event"] == "block_failed" for e in events):
                break
            time.sleep(0.05)
        assert h.machine.state.value == "NORMAL" and not h.machine.transitions
        assert supervisor.running["api"].restarts == MAX_API_RESTARTS
        restarted = [e for e in events if e["event"] == "api_restarted"]
        assert len(restarted) == MAX_API_RESTARTS
        assert restarted[0]["why"] == "api exited with code 0"
        (failed,) = [e for e in events if e["event"] == "block_failed"]
        assert failed["block"] == "api" and failed["detail"].endswith("given up")
    finally:
        supervisor.stop_all(grace_s=1.0)
        archive.close()
        wiring.close()
