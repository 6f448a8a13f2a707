"""The camera inventory, the site CA and the freshness state: the I/O shell of ADR 0013.

Layout of the data dir (the archive's directory)::

    site-ca.pem          the site CA certificate (ECDSA P-256, self-signed), mode 0600
    site-ca.key          its private key, PKCS#8 PEM, mode 0600, no password (see the ADR)
    inventory.sqlite     WAL; tables site, cameras, events (outbox of archive records)
    freshness.sqlite     WAL; tables sessions, hashes, signed (replay/downgrade state)
    rtsps/ID.key, ID.pem kontur's RTSPS client key and certificate for camera ID, 0600
                         (``enroll --tls-client``; table rtsps holds the server pin, ADR 0037)

Every file is 0600 and the data dir 0700 whatever the umask; a data dir found with group or
other bits is tightened with a warning (:mod:`kontur._private`, ADR 0021).

:class:`Inventory` is written by ``kontur camera …`` and read, concurrently, by the running
ingest: :meth:`Inventory.camera` re-reads a camera only when ``PRAGMA data_version`` says
another connection committed, so a revocation made in another process applies to the next
GOP at the cost of one pragma per GOP. Every enrolment and revocation also goes into the
``events`` outbox; :meth:`Inventory.drain_to_archive` appends those as ``camera`` records to
the archive (the CLI does it when the archive is free, the running perimeter otherwise).

:class:`FreshnessStore` keeps, per session, the replay window, and, across all cameras, the
GOP hashes (indexed, on disk: memory stays bounded). :class:`FreshnessGuard` looks up the
prior state, runs the pure :func:`kontur.ingest.freshness.assess` and stores the outcome in
one ``BEGIN IMMEDIATE`` transaction, so two ingest processes cannot both accept one hash.

Errors::

    IngestError
    └── InventoryError                 camera inventory and site CA
        ├── InventoryInputError        a bad camera id, profile, reason or PEM file (exit 2)
        ├── InventoryCorrupt           a store that is not ours or does not open
        ├── SiteCaMissing              no site CA yet (kontur camera init-ca)
        ├── SiteCaExists               init-ca on a data dir that has one
        ├── CameraExists               a duplicate enrolment
        ├── CameraUnknown              no such camera
        ├── AlreadyRevoked             a second revocation
        └── ChainRejected              a chain that does not verify to the site CA
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kontur._private import FILE_MODE, private_dir, private_file, secure_data_dir, unsafe_char
from kontur.archive import Archive
from kontur.clock import Clock, SystemClock
from kontur.ingest.errors import IngestError
from kontur.ingest.freshness import (
    CameraProfile,
    ChainUntrusted,
    EnrolledCamera,
    FactsInvalid,
    FreshnessPolicy,
    FreshnessResult,
    HashSighting,
    PriorState,
    ReplayWindow,
    SignedGopFacts,
    assess,
    fingerprint,
    spki_of,
    verify_chain,
)
from kontur.ingest.oms.keys import make_ca, make_camera_certificate, private_key_pem
from kontur.ingest.revocation import Revocations
from kontur.ingest.tls import RtspsTrust, issue_client_certificate, leaf_sha256, parse_sha256
from kontur.ingest.verdict import Verdict

__all__ = [
    "CAMERA_ID",
    "CA_CERT_NAME",
    "CA_KEY_NAME",
    "FRESHNESS_DB",
    "INVENTORY_DB",
    "AlreadyRevoked",
    "CameraExists",
    "CameraUnknown",
    "ChainRejected",
    "FreshnessGuard",
    "FreshnessStore",
    "Inventory",
    "InventoryCorrupt",
    "InventoryError",
    "InventoryInputError",
    "IssuedCamera",
    "SiteCaExists",
    "SiteCaMissing",
    "check_camera_id",
    "default_data_dir",
    "parse_profile",
]

CA_CERT_NAME = "site-ca.pem"
CA_KEY_NAME = "site-ca.key"
INVENTORY_DB = "inventory.sqlite"
FRESHNESS_DB = "freshness.sqlite"
CAMERA_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_PROFILE = re.compile(r"^([A-Za-z0-9_.-]+),(\d{1,5})x(\d{1,5}),(\d+(?:\.\d+)?)$")
_INV_VERSION = 1
log = logging.getLogger("kontur.inventory")
_FRESH_VERSION = 1


class InventoryError(IngestError):
    """Root of inventory errors; refused operations exit 1."""

    exit_code = 1


class InventoryInputError(InventoryError):
    """A bad camera id, profile, reason or certificate file."""

    exit_code = 2


class InventoryCorrupt(InventoryError):
    """An inventory or freshness database that is not ours or does not open."""


class SiteCaMissing(InventoryError):
    """No site CA in the data dir yet."""


class SiteCaExists(InventoryError):
    """The data dir already holds a site CA."""


class CameraExists(InventoryError):
    """The camera is already enrolled."""


class CameraUnknown(InventoryError):
    """No camera with that id is enrolled."""


class AlreadyRevoked(InventoryError):
    """The camera was revoked before; revocation is irreversible."""


class ChainRejected(InventoryError):
    """The certificate chain does not verify to the site CA."""


@dataclass(frozen=True, slots=True)
class IssuedCamera:
    """Files written by :meth:`Inventory.issue`: the camera key and its chain (leaf, CA)."""

    key_path: Path
    chain_path: Path


def default_data_dir() -> Path:
    """``$KONTUR_DATA_DIR``, else ``~/.local/share/kontur``."""
    env = os.environ.get("KONTUR_DATA_DIR")
    return Path(env) if env else Path.home() / ".local" / "share" / "kontur"


def check_camera_id(camera_id: str) -> str:
    """Return ``camera_id`` if it matches :data:`CAMERA_ID`; InventoryInputError otherwise."""
    if not CAMERA_ID.fullmatch(camera_id) or camera_id in (".", ".."):
        raise InventoryInputError(
            f"camera id: expected [A-Za-z0-9_.-]{{1,64}}, got {camera_id[:80]!r}"
        )
    return camera_id


def parse_profile(text: str) -> CameraProfile:
    """Parse ``codec,WxH,fps`` (e.g. ``h264,1920x1080,25``); InventoryInputError if bad."""
    m = _PROFILE.fullmatch(text.strip())
    if m is None:
        raise InventoryInputError(
            f"profile: expected codec,WxH,fps (h264,1920x1080,25), got {text!r}"
        )
    try:
        return CameraProfile(m[1].lower(), int(m[2]), int(m[3]), float(m[4]))
    except FactsInvalid as exc:
        raise InventoryInputError(str(exc)) from None


_INV_SCHEMA = """
CREATE TABLE site (
    id INTEGER PRIMARY KEY CHECK (id = 1), ca_der BLOB NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE cameras (
    camera_id TEXT PRIMARY KEY, subject TEXT NOT NULL, leaf_der BLOB NOT NULL,
    key_der BLOB NOT NULL, chain_pem TEXT NOT NULL, profile TEXT, signing_required INTEGER
    NOT NULL, critical INTEGER NOT NULL, enrolled_at TEXT NOT NULL, revoked_at TEXT,
    revoked_reason TEXT);
CREATE TABLE events (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL, at TEXT NOT NULL,
    archived_idx INTEGER);
CREATE TRIGGER cameras_no_unrevoke BEFORE UPDATE ON cameras
    WHEN OLD.revoked_at IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'revocation is irreversible'); END;
CREATE TRIGGER cameras_no_delete BEFORE DELETE ON cameras
    BEGIN SELECT RAISE(ABORT, 'cameras are never deleted, only revoked'); END;
"""

_RTSPS_SCHEMA = """
CREATE TABLE IF NOT EXISTS rtsps (
    camera_id TEXT PRIMARY KEY, server_sha256 TEXT, client_cert TEXT, client_key TEXT,
    client_sha256 TEXT, set_at TEXT NOT NULL)"""
RTSPS_DIR = "rtsps"

_CAMERA_COLS = (
    "camera_id, subject, leaf_der, key_der, profile, signing_required, critical, "
    "enrolled_at, revoked_at, revoked_reason"
)


def _connect(db: Path, schema: str, version: int) -> sqlite3.Connection:
    """Open (creating) an SQLite store in WAL mode with our schema; InventoryCorrupt if not."""
    try:
        private_file(db)  # 0600 first: SQLite gives its -wal and -shm files the db's mode
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    except OSError as exc:
        raise InventoryInputError(f"{db}: expected a writable path, got {exc.strerror}") from None
    except sqlite3.Error as exc:
        raise InventoryCorrupt(f"{db}: expected an SQLite database, got {_one_line(exc)}") from None
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("BEGIN IMMEDIATE")
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found == 0:
            for stmt in _statements(schema):
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {version}")
            found = version
        conn.execute("COMMIT")
        if found != version:
            raise InventoryCorrupt(f"{db}: expected store format {version}, got {found}")
    except sqlite3.Error as exc:
        conn.close()
        raise InventoryCorrupt(f"{db}: expected a kontur store, got {_one_line(exc)}") from None
    except InventoryCorrupt:
        conn.close()
        raise
    return conn


def _statements(schema: str) -> list[str]:
    """Split a schema into statements (triggers keep their inner ``;``)."""
    out, buf = [], ""
    for line in schema.strip().splitlines():
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return out


class Inventory:
    """The camera inventory and site CA of one data dir; use it from one thread at a time."""

    def __init__(self, data_dir: Path, conn: sqlite3.Connection, clock: Clock) -> None:
        """Internal: use :meth:`open`."""
        self._dir = data_dir
        self._conn = conn
        self._clock = clock
        self._version: int | None = None
        self._cache: dict[str, EnrolledCamera | None] = {}
        self._site: bytes | None = None

    @classmethod
    def open(cls, data_dir: Path, clock: Clock | None = None) -> Inventory:
        """Open (creating) the inventory of ``data_dir``."""
        data_dir = Path(data_dir)
        _secure(data_dir)
        conn = _connect(data_dir / INVENTORY_DB, _INV_SCHEMA, _INV_VERSION)
        try:
            conn.execute(_RTSPS_SCHEMA)  # added after format 1: created on first open
        except sqlite3.Error as exc:
            conn.close()
            raise InventoryCorrupt(f"{data_dir / INVENTORY_DB}: {_one_line(exc)}") from None
        return cls(data_dir, conn, clock if clock is not None else SystemClock())

    @property
    def data_dir(self) -> Path:
        """The data dir."""
        return self._dir

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    def __enter__(self) -> Inventory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.wall(), UTC)

    # -- site CA -------------------------------------------------------------------------

    def init_ca(self, name: str = "kontur site CA", days: int = 3650) -> x509.Certificate:
        """Create the site CA (key file 0600, certificate); SiteCaExists if there is one."""
        if self._site_row() is not None or (self._dir / CA_KEY_NAME).exists():
            raise SiteCaExists(f"{self._dir}: expected no site CA, got one ({CA_CERT_NAME})")
        now = self._now()
        key, cert = make_ca(
            name, now - timedelta(minutes=5), now + timedelta(days=days), path_length=0
        )
        pem = private_key_pem(key)
        _write_new(self._dir / CA_KEY_NAME, pem, FILE_MODE)
        _write_new(
            self._dir / CA_CERT_NAME, cert.public_bytes(serialization.Encoding.PEM), FILE_MODE
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        with self._tx():
            self._conn.execute(
                "INSERT INTO site (id, ca_der, created_at) VALUES (1, ?, ?)", (der, now.isoformat())
            )
            self._event("init_ca", {"ca_sha256": fingerprint(der), "subject": name})
        return cert

    def import_ca(self, cert_pem: bytes) -> x509.Certificate:
        """Adopt an existing CA certificate (no key) as the site CA; SiteCaExists if there is one.

        For a site whose cameras carry certificates from its own PKI (or the vendor's): kontur
        then verifies chains to it but cannot issue camera keys (``issue`` is refused).
        """
        if self._site_row() is not None or (self._dir / CA_KEY_NAME).exists():
            raise SiteCaExists(f"{self._dir}: expected no site CA, got one ({CA_CERT_NAME})")
        try:
            certs = x509.load_pem_x509_certificates(cert_pem)
        except ValueError:
            raise InventoryInputError(
                "--import: expected one PEM CA certificate, got data that does not parse"
            ) from None
        if len(certs) != 1:
            raise InventoryInputError(
                f"--import: expected one PEM CA certificate, got {len(certs)}"
            )
        cert = certs[0]
        if not _is_ca_cert(cert):
            raise InventoryInputError(
                f"--import: expected a CA certificate (basicConstraints CA:TRUE), got "
                f"{cert.subject.rfc4514_string()} without it"
            )
        now = self._now()
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise InventoryInputError(
                f"--import: expected a CA certificate valid now, got one valid "
                f"{cert.not_valid_before_utc:%Y-%m-%d} .. {cert.not_valid_after_utc:%Y-%m-%d}"
            )
        _write_new(
            self._dir / CA_CERT_NAME, cert.public_bytes(serialization.Encoding.PEM), FILE_MODE
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        with self._tx():
            self._conn.execute(
                "INSERT INTO site (id, ca_der, created_at) VALUES (1, ?, ?)", (der, now.isoformat())
            )
            self._event(
                "import_ca",
                {"ca_sha256": fingerprint(der), "subject": cert.subject.rfc4514_string()},
            )
        return cert

    def site_ca_der(self) -> bytes:
        """The site CA certificate, DER; SiteCaMissing if none."""
        if self._site is None:
            row = self._site_row()
            if row is None:
                raise SiteCaMissing(
                    f"{self._dir}: expected a site CA, got none (run kontur camera init-ca)"
                )
            self._site = bytes(row[0])
        return self._site

    def _site_row(self) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._conn.execute(
            "SELECT ca_der FROM site WHERE id = 1"
        ).fetchone()
        return row

    # -- cameras -------------------------------------------------------------------------

    def enroll(
        self,
        camera_id: str,
        chain_pem: bytes,
        *,
        profile: CameraProfile | None = None,
        signing_required: bool = False,
        critical: bool = False,
    ) -> EnrolledCamera:
        """Enrol a camera whose chain (PEM, leaf first) verifies to the site CA now."""
        check_camera_id(camera_id)
        site = self.site_ca_der()
        certs = _load_pem_chain(chain_pem)
        now = self._now()
        ders = tuple(c.public_bytes(serialization.Encoding.DER) for c in certs)
        try:
            verify_chain(ders, site, now)
        except ChainUntrusted as exc:
            raise ChainRejected(f"camera {camera_id}: {exc}") from None
        leaf = certs[0]
        key_der = spki_of(leaf)
        subject = leaf.subject.rfc4514_string()
        if _is_ca_cert(leaf):  # a camera's key signs video, never certificates
            raise ChainRejected(
                f"camera {camera_id}: expected the camera's own certificate (CA:FALSE) first, "
                f"got a CA certificate ({subject})"
            )
        with self._tx():
            if self._row(camera_id) is not None:
                raise CameraExists(
                    f"camera {camera_id}: expected a new camera id, got an enrolled one"
                )
            other = self._conn.execute(
                "SELECT camera_id FROM cameras WHERE key_der = ?", (key_der,)
            ).fetchone()
            if other is not None:
                raise CameraExists(
                    f"camera {camera_id}: expected a key not enrolled before, got the key of "
                    f"camera {other[0]} (revoked keys stay refused)"
                )
            self._conn.execute(
                "INSERT INTO cameras (camera_id, subject, leaf_der, key_der, chain_pem, profile, "
                "signing_required, critical, enrolled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    camera_id, subject, ders[0], key_der, chain_pem.decode("ascii", "replace"),
                    str(profile) if profile else None, int(signing_required), int(critical),
                    now.isoformat(),
                ),
            )  # fmt: skip
            self._event(
                "enrol",
                {
                    "camera_id": camera_id,
                    "subject": subject,
                    "key_sha256": fingerprint(key_der),
                    "leaf_sha256": fingerprint(ders[0]),
                    "profile": str(profile) if profile else None,
                    "signing_required": signing_required,
                    "critical": critical,
                },
            )
        self._cache.pop(camera_id, None)
        return self._must(camera_id)

    def issue(self, camera_id: str, out_dir: Path, days: int = 825) -> IssuedCamera:
        """Make a camera key and a leaf signed by the site CA; write ``ID.key`` and ``ID.pem``."""
        check_camera_id(camera_id)
        self.site_ca_der()
        if self._row(camera_id) is not None:
            raise CameraExists(f"camera {camera_id}: expected a new camera id, got an enrolled one")
        if not (self._dir / CA_KEY_NAME).exists():
            raise SiteCaMissing(
                f"{self._dir}: expected the site CA's key to issue a camera certificate, got an "
                "imported CA without one (issue it with your PKI, then enroll --cert)"
            )
        ca_key = _load_ca_key(self._dir / CA_KEY_NAME)
        ca_cert = x509.load_pem_x509_certificate((self._dir / CA_CERT_NAME).read_bytes())
        now = self._now()
        key, leaf = make_camera_certificate(
            ca_key, ca_cert, camera_id, now - timedelta(minutes=5), now + timedelta(days=days)
        )
        try:
            private_dir(out_dir)
        except OSError as exc:
            raise InventoryInputError(
                f"--out {out_dir}: expected a directory, got {exc.strerror}"
            ) from None
        pem = private_key_pem(key)
        issued = IssuedCamera(out_dir / f"{camera_id}.key", out_dir / f"{camera_id}.pem")
        chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, ca_cert))
        _write_new(issued.key_path, pem, FILE_MODE)
        _write_new(issued.chain_path, chain, FILE_MODE)
        return issued

    # -- RTSPS (ADR 0037) ---------------------------------------------------------------

    def set_rtsps(
        self, camera_id: str, *, server_sha256: str | None = None, issue_client: bool = False
    ) -> None:
        """Record the camera's pinned server fingerprint and/or issue kontur's client
        certificate for it (key and certificate 0600 under ``rtsps/``; never in the database
        or the archive, which get the certificate's fingerprint only). What is not given
        stays as it was."""
        check_camera_id(camera_id)
        pin = _parse_pin(server_sha256) if server_sha256 is not None else None
        old = self._conn.execute(
            "SELECT server_sha256, client_cert, client_key, client_sha256 FROM rtsps "
            "WHERE camera_id = ?",
            (camera_id,),
        ).fetchone() or (None, None, None, None)
        pin = pin or old[0]
        paths, client_fp = (old[1], old[2]), old[3]
        if issue_client:
            paths, client_fp = self._issue_rtsps_client(camera_id)
        with self._tx():
            self._conn.execute(
                "INSERT OR REPLACE INTO rtsps VALUES (?, ?, ?, ?, ?, ?)",
                (camera_id, pin, *paths, client_fp, self._now().isoformat()),
            )
            self._event(
                "rtsps",
                {"camera_id": camera_id, "server_sha256": pin, "client_sha256": client_fp},
            )

    def rtsps_trust(self, camera_id: str) -> RtspsTrust | None:
        """How camera ``camera_id``'s RTSPS peer is verified (site CA, pin, client pair), or
        None when there is neither a site CA nor a pin."""
        row = self._conn.execute(
            "SELECT server_sha256, client_cert, client_key FROM rtsps WHERE camera_id = ?",
            (camera_id,),
        ).fetchone()
        try:
            site: bytes | None = self.site_ca_der()
        except SiteCaMissing:
            site = None
        pin, cert, key = row if row is not None else (None, None, None)
        if site is None and pin is None:
            return None
        return RtspsTrust(
            ca_der=site,
            server_sha256=pin,
            client_cert=Path(cert) if cert else None,
            client_key=Path(key) if key else None,
        )

    def _issue_rtsps_client(self, camera_id: str) -> tuple[tuple[str | None, str | None], str]:
        """Write ``rtsps/ID.key`` and ``rtsps/ID.pem``; returns their paths and the cert hash."""
        self.site_ca_der()
        if not (self._dir / CA_KEY_NAME).exists():
            raise SiteCaMissing(
                f"{self._dir}: expected the site CA's key to issue an RTSPS client certificate, "
                "got an imported CA without one"
            )
        ca_key = _load_ca_key(self._dir / CA_KEY_NAME)
        ca_cert = x509.load_pem_x509_certificate((self._dir / CA_CERT_NAME).read_bytes())
        key_pem, cert_pem = issue_client_certificate(ca_key, ca_cert, camera_id, self._now())
        out = self._dir / RTSPS_DIR
        try:
            private_dir(out)
        except OSError as exc:
            raise InventoryInputError(f"{out}: expected a directory, got {exc.strerror}") from None
        key_path, cert_path = out / f"{camera_id}.key", out / f"{camera_id}.pem"
        _write_new(key_path, key_pem, FILE_MODE)
        _write_new(cert_path, cert_pem, FILE_MODE)
        der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
        return (str(cert_path), str(key_path)), leaf_sha256(der)

    def revoke(self, camera_id: str, reason: str) -> EnrolledCamera:
        """Revoke a camera, irreversibly; AlreadyRevoked on a second revocation."""
        check_camera_id(camera_id)
        reason = " ".join(reason.split())
        if not reason or len(reason) > 500:
            raise InventoryInputError(
                f"--reason: expected 1..500 characters of text, got {len(reason)}"
            )
        if (k := unsafe_char(reason)) is not None:  # a terminal escape, a bidi override
            raise InventoryInputError(
                f"--reason: expected text without control or format characters, got "
                f"{reason[k]!r} at character {k}"
            )
        now = self._now()
        with self._tx():
            row = self._row(camera_id)
            if row is None:
                raise CameraUnknown(f"camera {camera_id}: expected an enrolled camera, got none")
            if row[8] is not None:
                raise AlreadyRevoked(
                    f"camera {camera_id}: expected a camera not yet revoked, got one revoked "
                    f"at {row[8]} ({row[9]})"
                )
            self._conn.execute(
                "UPDATE cameras SET revoked_at = ?, revoked_reason = ? WHERE camera_id = ?",
                (now.isoformat(), reason, camera_id),
            )
            self._event("revoke", {"camera_id": camera_id, "reason": reason})
        self._cache.pop(camera_id, None)
        return self._must(camera_id)

    def camera(self, camera_id: str) -> EnrolledCamera | None:
        """The camera's entry, re-read only when another connection has committed since."""
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._cache.clear()
            self._version = version
        if camera_id not in self._cache:
            row = self._row(camera_id)
            self._cache[camera_id] = _camera_of(row) if row is not None else None
        return self._cache[camera_id]

    def cameras(self) -> list[EnrolledCamera]:
        """All enrolled cameras (revoked ones included), by id."""
        rows = self._conn.execute(f"SELECT {_CAMERA_COLS} FROM cameras ORDER BY camera_id")
        return [_camera_of(r) for r in rows]

    def _must(self, camera_id: str) -> EnrolledCamera:
        camera = self.camera(camera_id)
        assert camera is not None  # just written in this connection
        return camera

    def _row(self, camera_id: str) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._conn.execute(
            f"SELECT {_CAMERA_COLS} FROM cameras WHERE camera_id = ?", (camera_id,)
        ).fetchone()
        return row

    # -- archive outbox ------------------------------------------------------------------

    def pending_events(self) -> list[tuple[int, dict[str, Any]]]:
        """Events not yet in the archive: ``(event id, payload)``, oldest first."""
        rows = self._conn.execute(
            "SELECT id, payload FROM events WHERE archived_idx IS NULL ORDER BY id"
        )
        return [(int(i), json.loads(p)) for i, p in rows]

    def drain_to_archive(self, archive: Archive) -> int:
        """Append pending events as ``camera`` records, flush, mark them; returns how many.

        At-least-once: a crash between the flush and the mark re-appends the event on the next
        drain; ``event_id`` in the payload identifies such a duplicate.
        """
        pending = self.pending_events()
        marks = [(archive.append("camera", payload).index, eid) for eid, payload in pending]
        if not marks:
            return 0
        archive.flush()
        with self._tx():
            self._conn.executemany("UPDATE events SET archived_idx = ? WHERE id = ?", marks)
        return len(marks)

    def _event(self, action: str, body: dict[str, Any]) -> None:
        now = self._now().isoformat()
        nxt = self._conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM events").fetchone()[0]
        payload = {"action": action, "event_id": nxt, "at": now, **body}
        self._conn.execute(
            "INSERT INTO events (id, kind, payload, at) VALUES (?, 'camera', ?, ?)",
            (nxt, json.dumps(payload, sort_keys=True), now),
        )

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise InventoryCorrupt(f"{self._dir / INVENTORY_DB}: {_one_line(exc)}") from None
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")


_FRESH_SCHEMA = """
CREATE TABLE sessions (
    camera_id TEXT NOT NULL, session_id TEXT NOT NULL, highest TEXT NOT NULL,
    mask BLOB NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (camera_id, session_id)
) WITHOUT ROWID;
CREATE TABLE hashes (
    gop_hash BLOB PRIMARY KEY, camera_id TEXT NOT NULL, session_id TEXT NOT NULL,
    gop_index INTEGER NOT NULL, gop_counter TEXT, seen_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX hashes_seen_at ON hashes (seen_at);
CREATE TABLE signed (camera_id TEXT PRIMARY KEY, first_at REAL NOT NULL) WITHOUT ROWID;
"""


class FreshnessStore:
    """Replay windows, GOP hashes and signed history, persisted in ``freshness.sqlite``."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        """Internal: use :meth:`open`."""
        self._conn = conn
        self._path = path

    @classmethod
    def open(cls, data_dir: Path) -> FreshnessStore:
        """Open (creating) the freshness state of ``data_dir``."""
        _secure(Path(data_dir))
        path = Path(data_dir) / FRESHNESS_DB
        return cls(_connect(path, _FRESH_SCHEMA, _FRESH_VERSION), path)

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction: lookups and writes inside it are atomic."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def prior(self, facts: SignedGopFacts) -> PriorState:
        """The session's window, the first sighting of the hash, and the signed history."""
        c = self._conn
        row = c.execute(
            "SELECT highest, mask, size FROM sessions WHERE camera_id = ? AND session_id = ?",
            (facts.camera_id, facts.session_id),
        ).fetchone()
        window = (
            ReplayWindow(int(row[0]), int.from_bytes(row[1], "big"), int(row[2])) if row else None
        )
        seen = None
        if facts.gop_hash is not None:
            h = c.execute(
                "SELECT camera_id, session_id, gop_index, gop_counter FROM hashes "
                "WHERE gop_hash = ?",
                (facts.gop_hash,),
            ).fetchone()
            if h is not None:
                counter = int(h[3]) if h[3] is not None else None
                seen = HashSighting(h[0], h[1], int(h[2]), counter)
        signed = c.execute("SELECT 1 FROM signed WHERE camera_id = ?", (facts.camera_id,))
        return PriorState(
            window=window, hash_seen=seen, signed_before=signed.fetchone() is not None
        )

    def apply(self, result: FreshnessResult, at: float) -> None:
        """Persist what a committed result accepted (window, hash, signed history)."""
        if not result.commit:
            return
        c = self._conn
        if result.window is not None:
            w = result.window
            c.execute(
                "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?)",
                (result.camera_id, result.session_id, str(w.highest),
                 w.mask.to_bytes((w.size + 7) // 8, "big"), w.size),
            )  # fmt: skip
        if result.gop_hash is not None:
            counter = str(result.gop_counter) if result.gop_counter is not None else None
            c.execute(
                "INSERT OR IGNORE INTO hashes VALUES (?, ?, ?, ?, ?, ?)",
                (result.gop_hash, result.camera_id, result.session_id, result.gop_index,
                 counter, at),
            )  # fmt: skip
        c.execute("INSERT OR IGNORE INTO signed VALUES (?, ?)", (result.camera_id, at))

    def absorb(self, payload: Mapping[str, Any], window: int) -> None:
        """Re-apply one :meth:`FreshnessResult.seen_payload` (rebuilding from the archive).

        Payloads of GOPs that were not committed are ignored; applying one twice is harmless.
        """
        if payload.get("commit") is not True:
            return
        try:
            counter = payload["gop_counter"]
            digest = payload["gop_hash"]
            facts = SignedGopFacts(
                camera_id=str(payload["camera_id"]),
                session_id=str(payload["session_id"]),
                gop_index=int(payload["gop_index"]),
                signed=True,
                signature_ok=True,
                gop_counter=int(counter) if counter is not None else None,
                gop_hash=bytes.fromhex(digest) if digest is not None else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InventoryCorrupt(
                f"gop_seen payload: expected the seen fields, got {exc!r}"
            ) from None
        with self.transaction():
            prior = self.prior(facts)
            win = prior.window
            if facts.gop_counter is not None:
                c = facts.gop_counter
                win = win.accept(c) if win is not None else ReplayWindow.first(c, window)
            result = FreshnessResult(
                facts.camera_id, facts.session_id, facts.gop_index, Verdict.AUTHENTIC,
                ("rebuilt",), commit=True, window=win, gop_counter=facts.gop_counter,
                gop_hash=facts.gop_hash,
            )  # fmt: skip
            self.apply(result, 0.0)

    def hashes(self) -> int:
        """How many GOP hashes are kept."""
        return int(self._conn.execute("SELECT COUNT(*) FROM hashes").fetchone()[0])

    def prune_hashes(self, before: float) -> int:
        """Forget hashes first seen before ``before`` (epoch s); returns how many.

        Safe once ``before`` is older than the policy's ``max_delay_s``: a replay of such a GOP
        carries a signed capture time outside the window and is STALE (untrusted) anyway.
        """
        with self.transaction():
            cur = self._conn.execute("DELETE FROM hashes WHERE seen_at < ?", (before,))
        return cur.rowcount


class FreshnessGuard:
    """The shell around :func:`kontur.ingest.freshness.assess`: one call per closed GOP."""

    def __init__(
        self,
        inventory: Inventory,
        store: FreshnessStore,
        policy: FreshnessPolicy | None = None,
        clock: Clock | None = None,
        revocations: Revocations | None = None,
    ) -> None:
        """Check GOPs against ``inventory``, ``store`` and the archive's ``revocations``
        (ADR 0021) with the trusted ``clock``."""
        self._inventory = inventory
        self._store = store
        self._policy = policy if policy is not None else FreshnessPolicy()
        self._clock = clock if clock is not None else SystemClock()
        self.revocations = revocations if revocations is not None else Revocations()
        """The archive's revocations; replaced when one is archived while ingest runs."""

    def check(self, facts: SignedGopFacts) -> FreshnessResult:
        """The verdict of one GOP; the accepted state is stored before it returns."""
        camera = self._inventory.camera(facts.camera_id)
        try:
            site: bytes | None = self._inventory.site_ca_der()
        except SiteCaMissing:
            site = None
        revoked = self._archive_revocation(facts, camera)
        wall = self._clock.wall()
        now = datetime.fromtimestamp(wall, UTC)
        with self._store.transaction():
            prior = self._store.prior(facts)
            result = assess(facts, camera, prior, self._policy, site, now, revoked)
            self._store.apply(result, wall)
        return result

    def _archive_revocation(
        self, facts: SignedGopFacts, camera: EnrolledCamera | None
    ) -> str | None:
        """The archive's revocation of this camera or its key, unless the inventory shows it."""
        if camera is not None and camera.revoked_at is not None:
            return None
        keys = (
            camera.key_fingerprint if camera is not None else None,
            fingerprint(facts.signer_key_der) if facts.signer_key_der is not None else None,
        )
        hit = self.revocations.find(facts.camera_id, keys)
        if hit is None:
            return None
        return (
            f"{hit.describe()}; expected {INVENTORY_DB} to show it, got no revocation there "
            "(inventory tampered: the archive is the authority)"
        )


def _camera_of(row: tuple[Any, ...]) -> EnrolledCamera:
    return EnrolledCamera(
        camera_id=row[0],
        subject=row[1],
        leaf_der=bytes(row[2]),
        key_der=bytes(row[3]),
        profile=parse_profile(row[4]) if row[4] else None,
        signing_required=bool(row[5]),
        critical=bool(row[6]),
        enrolled_at=datetime.fromisoformat(row[7]),
        revoked_at=datetime.fromisoformat(row[8]) if row[8] else None,
        revoked_reason=row[9],
    )


def _is_ca_cert(cert: x509.Certificate) -> bool:
    """``cert`` says it is a CA (basicConstraints CA:TRUE)."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _load_pem_chain(data: bytes) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise InventoryInputError(
            f"--cert: expected PEM certificates (leaf first), got {_one_line(exc)}"
        ) from None
    return certs


def _parse_pin(text: str) -> str:
    try:
        return parse_sha256(text)
    except ValueError as exc:
        raise InventoryInputError(f"--tls-pin: {exc}") from None


def _load_ca_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SiteCaMissing(f"{path}: expected the site CA key, got {_one_line(exc)}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SiteCaMissing(f"{path}: expected an ECDSA key, got {type(key).__name__}")
    return key


def _secure(data_dir: Path) -> None:
    """Create the data dir 0700, or tighten a loose one with a warning (ADR 0021)."""
    try:
        tightened = secure_data_dir(data_dir)
    except OSError as exc:
        raise InventoryInputError(
            f"{data_dir}: expected a writable data dir, got {exc.strerror}"
        ) from None
    if tightened is not None:
        log.warning("%s", tightened.warning)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` (refusing an existing file), write and fsync it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise InventoryInputError(f"{path}: expected no file there, got one") from None
    except OSError as exc:
        raise InventoryInputError(f"{path}: expected a writable path, got {exc.strerror}") from None
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow it
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
