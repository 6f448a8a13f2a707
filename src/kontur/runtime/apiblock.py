"""The supervisor's side of the API block (issue 11 §2, ADR 0023): listener, TLS, table row.

Order of steps, before the process tree starts:

1. :func:`listen`: decide the scheme. Loopback may serve plain HTTP (TLS when a certificate
   is configured). Any other address needs TLS: ``api.tls_cert``/``api.tls_key``, or a
   self-signed pair generated at first start into ``DATA_DIR/api-tls/`` (key 0600), whose
   SHA-256 fingerprint is logged at every start so a client can pin it. Plain HTTP off
   loopback only with ``api.unsafe_plain_http``, which warns at every start.
2. The supervisor binds the listening socket itself (port 0: the kernel picks one) and the
   API process inherits it: the port is known before the block starts, stays the same across
   restarts of the block, and the block needs no right to bind.
3. :func:`attach_api`: one row more in the process table. The block gets exactly two
   descriptors, the listening socket and the write end of its pipe to the supervisor (read
   by an :class:`~kontur.wire.channel.Inbox` holding the ``api -> supervisor`` edge); no
   ring, no channel to the worker, the verifier or the gate. It starts before the other
   blocks and stops after them, and inherits only a minimal environment (no webhook key).
4. With it, the model ``POST /v1/detect`` runs (:class:`QueryModel`, ADR 0031): the site's
   own detector, the analytics worker's entries (``detector``, ``model_id``, the bundle
   index) in the spec's ``query_worker`` with the worker's sandbox policy (a scratch dir of
   its own under the run's scratch root, the data dir denied), and the verified release
   bundle on the block's stdin, framed as the worker's (:mod:`kontur.worker.bundle`). The
   API re-checks every digest and hands the bytes to its sandboxed query worker; it never
   loads the model itself. The spec's ``extraction`` is ``api.extraction`` (ADR 0031).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import logging
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kontur.config import ApiConfig, Config
from kontur.errors import ConfigError
from kontur.redact import redact
from kontur.runtime.supervisor import Block
from kontur.runtime.wiring import Wiring, sandbox_spec
from kontur.wire.channel import Inbox
from kontur.wire.edges import edge

__all__ = ["ApiListener", "QueryModel", "attach_api", "is_loopback", "listen", "tls_fingerprint"]

log = logging.getLogger("kontur.api")

#: Where a generated certificate and key live, relative to the data dir.
TLS_DIR = "api-tls"


@dataclass
class ApiListener:
    """The bound socket the API block serves on, and how it is reached."""

    sock: socket.socket
    url: str
    tls_cert: Path | None
    tls_key: Path | None
    fingerprint: str | None
    """SHA-256 of the certificate (DER), colon-separated hex: pin it in clients."""
    generated: bool = False

    def close(self) -> None:
        """Close the supervisor's copy of the socket (after the block stopped)."""
        with contextlib.suppress(OSError):
            self.sock.close()

    def summary(self) -> dict[str, Any]:
        """``api`` in the JSON summary."""
        return {
            "url": self.url,
            "tls": self.tls_cert is not None,
            "fingerprint": self.fingerprint,
            "certificate": str(self.tls_cert) if self.tls_cert else None,
            "generated": self.generated,
        }


@dataclass(frozen=True)
class QueryModel:
    """What the API's query worker runs (step 4 of the module): the site's own detector."""

    entries: dict[str, Any]
    """The analytics worker's detector entries: ``{"detector": "hog"}``, or ``release`` with
    its ``model_id`` and ``bundle`` index (:meth:`PreparedRelease.worker_spec`)."""
    blob: bytes | None
    """The verified release bundle (None for the built-in detector)."""
    scratch: Path
    """The run's scratch root (outside the data dir): the query worker's scratch goes under it."""

    def spec(self, config: Config, data_dir: Path) -> dict[str, Any]:
        """The API spec's ``query_worker``: what :class:`QueryWorkerSpec` is built from."""
        w = config.worker
        return {
            "detector": self.entries["detector"],
            "model_id": self.entries.get("model_id", "builtin:hog"),
            "bundle": list(self.entries.get("bundle", ())),
            "platform": "cpu",  # no device node in its sandbox: the release must allow the CPU
            "score_threshold": w.score_threshold,
            "nms_threshold": w.nms_threshold,
            "intra_op_threads": w.intra_op_threads,
            "sandbox": sandbox_spec(config, data_dir, self.scratch / "query-worker"),
        }


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of a PEM certificate's DER bytes, as ``AB:CD:…``."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.DER)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def _alt_names(bind: str) -> list[Any]:
    from cryptography import x509

    names: list[Any] = [x509.DNSName("localhost"), x509.DNSName(socket.gethostname())]
    for host in {bind, "127.0.0.1"}:
        with contextlib.suppress(ValueError):
            addr = ipaddress.ip_address(host)
            if not addr.is_unspecified:
                names.append(x509.IPAddress(addr))
    return names


def _generate_tls(folder: Path, bind: str) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate and its key (0600), valid for two years."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kontur api (self-signed)")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=730))
        .add_extension(x509.SubjectAlternativeName(_alt_names(bind)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = folder / "key.pem", folder / "cert.pem"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _tls_material(cfg: ApiConfig, data_dir: Path) -> tuple[Path | None, Path | None, bool]:
    """(cert, key, generated) per step 1 of the module; (None, None, False): plain HTTP."""
    if cfg.tls_cert is not None and cfg.tls_key is not None:
        cert, key = Path(cfg.tls_cert), Path(cfg.tls_key)
        for what, path in (("api.tls_cert", cert), ("api.tls_key", key)):
            if not path.is_file():
                raise ConfigError(f"{what}: expected a readable PEM file, found nothing at {path}")
        return cert, key, False
    if is_loopback(cfg.bind):
        return None, None, False
    if cfg.unsafe_plain_http:
        warning = (
            f"UNSAFE: the API serves plain HTTP on {cfg.bind} (api.unsafe_plain_http is on): "
            "passwords, tokens and video travel in clear text"
        )
        log.warning("%s", warning)
        print(f"kontur: warning: {warning}", file=sys.stderr, flush=True)
        return None, None, False
    folder = data_dir / TLS_DIR
    cert, key = folder / "cert.pem", folder / "key.pem"
    if cert.is_file() and key.is_file():
        return cert, key, False
    return (*_generate_tls(folder, cfg.bind), True)


def _bind(cfg: ApiConfig) -> socket.socket:
    family = socket.AF_INET6 if ":" in cfg.bind else socket.AF_INET
    host = "127.0.0.1" if cfg.bind == "localhost" else cfg.bind
    try:
        sock = socket.create_server((host, cfg.port), family=family, backlog=128)
    except OSError as exc:
        raise ConfigError(
            f"api: expected to listen on {cfg.bind}:{cfg.port}, got {exc.strerror or exc}"
        ) from None
    sock.set_inheritable(True)
    return sock


def listen(cfg: ApiConfig, data_dir: Path) -> ApiListener:
    """Steps 1 and 2 of the module: the scheme, the TLS material and the bound socket."""
    cert, key, generated = _tls_material(cfg, data_dir)
    sock = _bind(cfg)
    port = sock.getsockname()[1]
    scheme = "https" if cert is not None else "http"
    host = f"[{cfg.bind}]" if ":" in cfg.bind else cfg.bind
    fingerprint = tls_fingerprint(cert.read_bytes()) if cert is not None else None
    listener = ApiListener(sock, f"{scheme}://{host}:{port}", cert, key, fingerprint, generated)
    if fingerprint is not None:
        made = "generated a self-signed certificate; " if generated else ""
        log.info("api TLS: %scertificate %s, SHA-256 fingerprint %s", made, cert, fingerprint)
    return listener


def attach_api(
    wiring: Wiring,
    listener: ApiListener,
    config: Config,
    data_dir: Path,
    model: QueryModel | None = None,
) -> Block:
    """Steps 3-4 of the module: the API's pipe, its inbox and its row, first in the table;
    with ``model``, what its query worker runs (without: ``POST /v1/detect`` answers 503)."""
    r, w = os.pipe()
    os.set_inheritable(w, True)
    wiring.fds += [r, w]
    wiring.inboxes["api"] = Inbox(r, "api", edge=edge("api", "supervisor"), cameras=[])
    spec = {
        "data_dir": str(data_dir),
        "site": config.site,
        "url": listener.url,
        "socket_fd": listener.sock.fileno(),
        "supervisor_fd": w,
        "tls_cert": str(listener.tls_cert) if listener.tls_cert else None,
        "tls_key": str(listener.tls_key) if listener.tls_key else None,
        # what the API may show of the configuration: never a credential (ADR 0019)
        "config": redact(config.model_dump(mode="json")),
        "extraction": config.api.extraction,
        "query_worker": None if model is None else model.spec(config, data_dir),
    }
    block = Block(
        "api",
        "kontur.api.process",
        spec,
        (listener.sock.fileno(), w),
        stdin_data=None if model is None else model.blob,
        restartable=True,
        minimal_env=True,
    )
    wiring.blocks.insert(0, block)
    return block
