"""Users, machine tokens and sessions in ``DATA_DIR/users.sqlite`` (issue 11 §3).

There is no default user and no default password anywhere: the first user is added with
``kontur user add``, whose password is read from stdin or generated and printed once.

What is stored, and why it is safe to lose the file to a reader:

- ``users``: name, roles, an Argon2id hash (argon2-cffi's :class:`PasswordHasher`, RFC 9106
  parameters), ``disabled``, ``failed_count`` and ``locked_until`` (lockout), ``created``;
- ``tokens``: named machine tokens, only the SHA-256 of each token (a token is 256 random
  bits, so a fast hash is enough; it is shown once, at creation);
- ``sessions``: only the SHA-256 of each session token and of its CSRF token, and the expiry;
- ``audit_outbox``: audit events of changes made here while the archive was busy (the CLI
  with a running perimeter); the API block sends them to the supervisor, the CLI appends
  them to a free archive (at least once, like the camera inventory's outbox).

The file is 0600 in WAL mode, one connection per store behind a lock (the API calls it from
several threads; the CLI may write at the same time from another process). Every time comes
from the injected :class:`~kontur.clock.Clock`. Authentication looks the user up on every
request, so a disabled user's sessions and tokens stop working at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kontur.api.errors import (
    Unauthenticated,
    UserExists,
    UserInputError,
    UserStoreCorrupt,
    UserUnknown,
)
from kontur.api.rbac import Permission, check_roles, permissions_of
from kontur.clock import Clock, SystemClock
from kontur.wire.messages import AuditEvent

__all__ = [
    "DB_NAME",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "NAME_PATTERN",
    "TOKEN_PREFIX",
    "LoginRefused",
    "Principal",
    "Session",
    "User",
    "UserStore",
    "digest",
    "generate_password",
]

DB_NAME = "users.sqlite"
SCHEMA_VERSION = 1
#: User and token names: lower-case, no spaces (they appear in audit records and resolutions).
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
#: Every machine token starts with this, so secret scanners and log redaction can spot one.
TOKEN_PREFIX = "kontur_"
_MAX_CREDENTIAL = 256

_SCHEMA = (
    """CREATE TABLE users (
        name TEXT PRIMARY KEY, roles TEXT NOT NULL, hash TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0, failed_count INTEGER NOT NULL DEFAULT 0,
        locked_until REAL NOT NULL DEFAULT 0, created REAL NOT NULL)""",
    """CREATE TABLE tokens (
        digest TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name), name TEXT NOT NULL,
        created REAL NOT NULL, UNIQUE (user, name))""",
    """CREATE TABLE sessions (
        digest TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name),
        csrf TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL)""",
    "CREATE TABLE audit_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL)",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)


def digest(secret: str) -> str:
    """The stored form of a token, session or CSRF secret: hex SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_password() -> str:
    """A fresh password (144 random bits, URL-safe), for ``user add`` without one."""
    return secrets.token_urlsafe(18)


def check_name(name: str, what: str = "user name") -> str:
    """``name`` if it matches :data:`NAME_PATTERN`; UserInputError otherwise."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        shown = name[:40] if isinstance(name, str) else type(name).__name__
        raise UserInputError(f"{what}: expected {NAME_PATTERN.pattern.strip('^$')}, got {shown!r}")
    return name


def check_password(password: str) -> str:
    """``password`` if its length is within bounds; UserInputError otherwise."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserInputError(
            f"password: expected {MIN_PASSWORD} to {MAX_PASSWORD} characters, got {len(password)}"
        )
    return password


@dataclass(frozen=True, slots=True)
class User:
    """A user as listed (never with the hash)."""

    name: str
    roles: tuple[str, ...]
    disabled: bool
    locked_until: float
    created: float
    tokens: tuple[str, ...]

    def to_json(self, now: float) -> dict[str, object]:
        """The listing form (``locked`` is judged at ``now``)."""
        return {
            "name": self.name,
            "roles": list(self.roles),
            "disabled": self.disabled,
            "locked": self.locked_until > now,
            "created": self.created,
            "tokens": list(self.tokens),
        }


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an authenticated user, through a session cookie or a machine token."""

    name: str
    roles: tuple[str, ...]
    via: Literal["session", "token"]
    credential: str
    """The session's digest, or the token's name."""
    csrf_digest: str | None = None
    """The session's CSRF digest (sessions only)."""

    @property
    def permissions(self) -> frozenset[Permission]:
        """The union of the roles' permissions (:data:`kontur.api.rbac.ROLES`)."""
        return permissions_of(self.roles)

    def csrf_ok(self, header: str | None) -> bool:
        """True for a token (no cookie, no CSRF), or when ``header`` is this session's token."""
        if self.via == "token":
            return True
        if header is None or self.csrf_digest is None or len(header) > _MAX_CREDENTIAL:
            return False
        return hmac.compare_digest(digest(header), self.csrf_digest)


@dataclass(frozen=True, slots=True)
class Session:
    """A new session: its token (the cookie) and CSRF token, shown once at login."""

    token: str
    csrf: str
    expires: float
    principal: Principal


class LoginRefused(Unauthenticated):
    """A refused login; ``lockout`` is True when this very failure locked the account."""

    def __init__(self, message: str, actor: str, *, lockout: bool = False) -> None:
        super().__init__(message, actor)
        self.lockout = lockout


class UserStore:
    """The user store of one data dir. Open it with :meth:`open`; thread-safe."""

    def __init__(self, conn: sqlite3.Connection, path: Path, clock: Clock, ph: PasswordHasher):
        """Internal: use :meth:`open`."""
        self._conn = conn
        self._path = path
        self._clock = clock
        self._ph = ph
        self._lock = threading.RLock()
        self._dummy: str | None = None  # hashed on first use: equal work for unknown names

    @classmethod
    def open(
        cls, data_dir: Path, clock: Clock | None = None, hasher: PasswordHasher | None = None
    ) -> UserStore:
        """Open (creating, 0600, WAL) ``data_dir/users.sqlite``; UserStoreCorrupt if not ours."""
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = data_dir / DB_NAME
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise UserStoreCorrupt(f"{path}: expected an SQLite user store, got {exc}") from None
        try:
            _prepare(conn, path)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, clock if clock is not None else SystemClock(), hasher or _hasher())

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def clock(self) -> Clock:
        """The store's clock (every stored time comes from it)."""
        return self._clock

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise UserStoreCorrupt(
                    f"{self._path}: expected a writable store, got {exc}"
                ) from None
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return list(self._conn.execute(sql, args))
            except sqlite3.Error as exc:
                raise UserStoreCorrupt(
                    f"{self._path}: expected a readable store, got {exc}"
                ) from None

    # --- users -------------------------------------------------------------------------

    def add_user(self, name: str, roles: tuple[str, ...] | list[str], password: str) -> User:
        """Add a user with Argon2id of ``password``; UserExists if the name is taken."""
        check_name(name)
        try:
            roles = check_roles(roles)
        except ValueError as exc:
            raise UserInputError(str(exc)) from None
        hashed = self._ph.hash(check_password(password))
        now = self._clock.wall()
        with self._tx() as c:
            if c.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UserExists(f"user: expected a new name, got {name!r}, which exists")
            c.execute(
                "INSERT INTO users (name, roles, hash, created) VALUES (?, ?, ?, ?)",
                (name, json.dumps(list(roles)), hashed, now),
            )
        return User(name, roles, False, 0.0, now, ())

    def disable_user(self, name: str) -> User:
        """Disable ``name`` and end its sessions; its tokens stop working (UserUnknown if none)."""
        with self._tx() as c:
            if c.execute("UPDATE users SET disabled = 1 WHERE name = ?", (name,)).rowcount != 1:
                raise UserUnknown(f"user: expected an existing user, got {name[:64]!r}")
            # ended, not deleted: a call with one is still refused as this user's (audit)
            c.execute("UPDATE sessions SET expires = 0 WHERE user = ?", (name,))
        return self.user(name)

    def user(self, name: str) -> User:
        """One user; UserUnknown if none."""
        for u in self.list_users(name):
            return u
        raise UserUnknown(f"user: expected an existing user, got {name[:64]!r}")

    def list_users(self, only: str | None = None) -> list[User]:
        """Every user (or only ``only``), by name, with their token names."""
        rows = self._read(
            "SELECT name, roles, disabled, locked_until, created FROM users "
            "WHERE ? IS NULL OR name = ? ORDER BY name",
            (only, only),
        )
        tokens: dict[str, list[str]] = {}
        for user, tname in self._read("SELECT user, name FROM tokens ORDER BY name"):
            tokens.setdefault(str(user), []).append(str(tname))
        return [
            User(
                str(r[0]),
                tuple(json.loads(str(r[1]))),
                bool(r[2]),
                float(r[3]),  # type: ignore[arg-type]
                float(r[4]),  # type: ignore[arg-type]
                tuple(tokens.get(str(r[0]), ())),
            )
            for r in rows
        ]

    # --- machine tokens ----------------------------------------------------------------

    def create_token(self, user: str, token_name: str) -> str:
        """A new named token for an enabled ``user``; returns it (only its digest is kept)."""
        check_name(token_name, "token name")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._tx() as c:
            row = c.execute("SELECT disabled FROM users WHERE name = ?", (user,)).fetchone()
            if row is None:
                raise UserUnknown(f"user: expected an existing user, got {user[:64]!r}")
            if row[0]:
                raise UserInputError(f"user: expected an enabled user, got {user!r}, disabled")
            if c.execute(
                "SELECT 1 FROM tokens WHERE user = ? AND name = ?", (user, token_name)
            ).fetchone():
                raise UserExists(f"token: expected a new name for {user}, got {token_name!r}")
            c.execute(
                "INSERT INTO tokens (digest, user, name, created) VALUES (?, ?, ?, ?)",
                (digest(token), user, token_name, self._clock.wall()),
            )
        return token

    def revoke_token(self, user: str, token_name: str) -> None:
        """Delete ``user``'s token ``token_name``; UserUnknown if there is none."""
        with self._tx() as c:
            cur = c.execute("DELETE FROM tokens WHERE user = ? AND name = ?", (user, token_name))
            if cur.rowcount != 1:
                raise UserUnknown(f"token: expected a token of {user[:64]!r}, got {token_name!r}")

    def authenticate_token(self, token: str) -> Principal:
        """The principal of a bearer token; Unauthenticated if unknown or its user disabled."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_CREDENTIAL:
            raise Unauthenticated("expected a kontur bearer token, got another string")
        rows = self._read(
            "SELECT u.name, u.roles, u.disabled, t.name FROM tokens t "
            "JOIN users u ON u.name = t.user WHERE t.digest = ?",
            (digest(token),),
        )
        if not rows:
            raise Unauthenticated("expected a known bearer token, got an unknown or revoked one")
        name, roles, disabled, tname = rows[0]
        if disabled:
            raise Unauthenticated(f"expected an enabled user, got {name}, disabled", str(name))
        return Principal(str(name), tuple(json.loads(str(roles))), "token", str(tname))

    # --- sessions ----------------------------------------------------------------------

    def login(
        self, name: str, password: str, *, max_failed: int, lockout_s: float, ttl_s: float
    ) -> Session:
        """Check ``password``; a new session, or LoginRefused (lockout after ``max_failed``)."""
        now = self._clock.wall()
        rows = self._read(
            "SELECT hash, disabled, locked_until, roles FROM users WHERE name = ?", (name,)
        )
        if not rows or rows[0][1]:
            self._verify(self._dummy_hash(), password)  # the same work as for a real user
            why = "unknown" if not rows else "disabled"
            raise LoginRefused(f"expected a valid name and password, got a {why} user", name)
        hashed, _, locked_until, roles = rows[0]
        if float(locked_until) > now:  # type: ignore[arg-type]
            raise LoginRefused(
                f"expected an unlocked account, got one locked until {locked_until}", name
            )
        if not self._verify(str(hashed), password):
            self._failed(name, now, max_failed, lockout_s)
        return self._open_session(name, tuple(json.loads(str(roles))), str(hashed), password, ttl_s)

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self._ph.hash(secrets.token_urlsafe(16))
        return self._dummy

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return bool(self._ph.verify(hashed, password))
        except (VerificationError, InvalidHashError):
            return False

    def _failed(self, name: str, now: float, max_failed: int, lockout_s: float) -> NoReturn:
        with self._tx() as c:
            c.execute("UPDATE users SET failed_count = failed_count + 1 WHERE name = ?", (name,))
            (count,) = c.execute(
                "SELECT failed_count FROM users WHERE name = ?", (name,)
            ).fetchone()
            lock = int(count) >= max_failed
            if lock:
                c.execute(
                    "UPDATE users SET failed_count = 0, locked_until = ? WHERE name = ?",
                    (now + lockout_s, name),
                )
        detail = f"locked for {lockout_s:g} s after {count} failures" if lock else "wrong password"
        raise LoginRefused(
            f"expected a valid name and password, got a {detail}", name, lockout=lock
        )

    def _open_session(
        self, name: str, roles: tuple[str, ...], hashed: str, password: str, ttl_s: float
    ) -> Session:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self._clock.wall()
        rehash = self._ph.hash(password) if self._ph.check_needs_rehash(hashed) else None
        with self._tx() as c:
            c.execute("UPDATE users SET failed_count = 0 WHERE name = ?", (name,))
            if rehash is not None:
                c.execute("UPDATE users SET hash = ? WHERE name = ?", (rehash, name))
            c.execute("DELETE FROM sessions WHERE expires <= ?", (now,))
            c.execute(
                "INSERT INTO sessions (digest, user, csrf, created, expires) VALUES (?,?,?,?,?)",
                (digest(token), name, digest(csrf), now, now + ttl_s),
            )
        principal = Principal(name, roles, "session", digest(token), digest(csrf))
        return Session(token, csrf, now + ttl_s, principal)

    def authenticate_session(self, token: str) -> Principal:
        """The principal of a session cookie; Unauthenticated if unknown, expired or disabled."""
        if len(token) > _MAX_CREDENTIAL:
            raise Unauthenticated("expected a session token, got an oversized string")
        rows = self._read(
            "SELECT u.name, u.roles, u.disabled, s.csrf, s.expires FROM sessions s "
            "JOIN users u ON u.name = s.user WHERE s.digest = ?",
            (digest(token),),
        )
        if not rows:
            raise Unauthenticated("expected a live session, got an unknown or ended one")
        name, roles, disabled, csrf, expires = (str(rows[0][0]), *rows[0][1:])
        if disabled:
            raise Unauthenticated(f"expected an enabled user, got {name}, disabled", name)
        if float(expires) <= self._clock.wall():  # type: ignore[arg-type]
            self.end_session(digest(token))
            raise Unauthenticated(f"expected a live session, got one expired at {expires}", name)
        return Principal(name, tuple(json.loads(str(roles))), "session", digest(token), str(csrf))

    def end_session(self, session_digest: str) -> bool:
        """Revoke one session (logout); False if it was already gone."""
        with self._tx() as c:
            cur = c.execute("DELETE FROM sessions WHERE digest = ?", (session_digest,))
            return cur.rowcount == 1

    # --- the audit outbox ----------------------------------------------------------------

    def queue_audit(self, event: AuditEvent) -> None:
        """Keep ``event`` until :meth:`drain_audit` hands it on."""
        with self._tx() as c:
            c.execute("INSERT INTO audit_outbox (event) VALUES (?)", (event.model_dump_json(),))

    def drain_audit(
        self, send: Callable[[AuditEvent], None], before_commit: Callable[[], None] | None = None
    ) -> int:
        """Hand every queued event to ``send``, then forget them; returns how many.

        One transaction: if ``send`` (or ``before_commit``, e.g. an archive flush) raises,
        nothing is forgotten and the error propagates. A crash after ``send`` re-sends.
        """
        with self._tx() as c:
            rows = c.execute("SELECT id, event FROM audit_outbox ORDER BY id LIMIT 512").fetchall()
            for _, text in rows:
                send(AuditEvent.model_validate_json(str(text)))
            if rows and before_commit is not None:
                before_commit()
            c.executemany("DELETE FROM audit_outbox WHERE id = ?", [(r[0],) for r in rows])
        return len(rows)


def _hasher() -> PasswordHasher:
    """Argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile)."""
    return PasswordHasher()


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise UserStoreCorrupt(f"{path}: expected journal_mode wal, got {mode}")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN IMMEDIATE")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            for statement in _SCHEMA:
                conn.execute(statement)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise UserStoreCorrupt(f"{path}: expected an SQLite user store, got {exc}") from None
    if version not in (0, SCHEMA_VERSION):
        raise UserStoreCorrupt(
            f"{path}: expected user store version {SCHEMA_VERSION}, got {version}"
        )
