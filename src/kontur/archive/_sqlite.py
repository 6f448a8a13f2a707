"""The SQLite side of the archive: schema, connections, and the committed tail.

Format 2 (RFC 9162 Merkle log, ADR 0015)::

    records(idx, kind, at, payload, leaf)   leaf = RFC 9162 leaf hash of the entry (_tree.py)
    nodes(level, idx, hash)                 every complete subtree above the leaves
    checkpoints(size, at, note)             signed checkpoints (checkpoint.py)
    meta(key, value)                        "origin" and "vkey" (the archive's public key)

Format 1 (the bare hash chain, ADR 0004) is still read and verified, never written.

Every ``sqlite3`` error that means "this is not a (healthy) archive" becomes a one-line
:class:`ArchiveCorrupt`; callers never see a traceback from ``sqlite3``.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kontur.archive.errors import ArchiveCorrupt, ArchiveNotFound

__all__ = [
    "COLUMNS",
    "COLUMNS_V1",
    "DB_NAME",
    "FORMAT_V1",
    "FORMAT_VERSION",
    "connect_readonly",
    "connect_writer",
    "hot_journal",
    "iter_rows",
    "one_line",
]

DB_NAME = "archive.sqlite"
#: Stored in ``PRAGMA user_version``; bump it when the record hash or schema changes.
FORMAT_VERSION = 2
FORMAT_V1 = 1
COLUMNS = ("idx", "kind", "at", "payload", "leaf")
COLUMNS_V1 = ("idx", "kind", "at", "payload", "prev", "hash")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS records (
        idx     INTEGER PRIMARY KEY,
        kind    TEXT NOT NULL,
        at      REAL NOT NULL,
        payload BLOB NOT NULL,
        leaf    BLOB NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS nodes (
        level INTEGER NOT NULL,
        idx   INTEGER NOT NULL,
        hash  BLOB NOT NULL,
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        size INTEGER PRIMARY KEY,
        at   REAL NOT NULL,
        note TEXT NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
#: Derived data, not part of the format (no hash covers it): made on every writable open.
_KIND_INDEX = "CREATE INDEX IF NOT EXISTS records_kind ON records (kind, idx)"
_SELECT_V1 = "SELECT idx, kind, at, payload, prev, hash FROM records"
_SELECT = "SELECT idx, kind, at, payload, leaf FROM records"


def one_line(exc: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def connect_writer(db: Path) -> sqlite3.Connection:
    """Open (creating if needed) the archive for writing: WAL, synchronous=FULL, schema."""
    try:
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise ArchiveCorrupt(f"{db}: expected an SQLite archive, got {one_line(exc)}") from None
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise ArchiveCorrupt(f"{db}: expected journal_mode wal, got {mode}")
        conn.execute("PRAGMA synchronous = FULL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
            conn.execute("COMMIT")
        if check_schema(conn, db) != FORMAT_VERSION:
            raise ArchiveCorrupt(
                f"{db}: expected archive format {FORMAT_VERSION} to append to, got format "
                f"{FORMAT_V1} (verify it with `kontur archive verify`; start a new data dir)"
            )
        conn.execute(_KIND_INDEX)
    except sqlite3.Error as exc:
        conn.close()
        raise ArchiveCorrupt(f"{db}: expected an SQLite archive, got {one_line(exc)}") from None
    except ArchiveCorrupt:
        conn.close()
        raise
    return conn


def connect_readonly(data_dir: Path) -> sqlite3.Connection:
    """Open an existing archive read-only; creates no file or directory of its own.

    Raises ArchiveNotFound if ``data_dir/archive.sqlite`` is absent and ArchiveCorrupt if it is
    not an archive of this format.
    """
    db = Path(data_dir) / DB_NAME
    if not db.is_file():
        raise ArchiveNotFound(f"{data_dir}: expected {DB_NAME}, got none")
    try:
        return _open_ro(db, "mode=ro")
    except sqlite3.OperationalError as exc:
        if not hot_journal(data_dir):
            raise ArchiveCorrupt(f"{db}: expected an SQLite archive, got {one_line(exc)}") from None
    # A writer died mid-transaction outside WAL mode (kontur's writer only writes outside WAL
    # while switching a closed archive back to it), leaving a rollback journal that only a
    # writer may replay. Replay it on a private copy, as the next writer will, and read that.
    return _rolled_back_copy(db)


def _rolled_back_copy(db: Path) -> sqlite3.Connection:
    """An in-memory, read-only copy of ``db`` after SQLite replays its hot journal."""
    try:
        with tempfile.TemporaryDirectory(prefix="kontur-verify-") as tmp:
            copy = Path(tmp) / DB_NAME
            shutil.copyfile(db, copy)
            shutil.copyfile(db.parent / f"{DB_NAME}-journal", Path(tmp) / f"{DB_NAME}-journal")
            work = sqlite3.connect(copy, isolation_level=None)
            try:
                work.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # replays it
                data = work.serialize()
            finally:
                work.close()
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        conn.deserialize(data)
        conn.execute("PRAGMA query_only = 1")
        check_schema(conn, db)
    except (OSError, sqlite3.Error) as exc:
        raise ArchiveCorrupt(f"{db}: expected an SQLite archive, got {one_line(exc)}") from None
    return conn


def hot_journal(data_dir: Path) -> bool:
    """True if a writer died mid-transaction outside WAL mode (a non-empty rollback journal)."""
    journal = Path(data_dir) / f"{DB_NAME}-journal"
    try:
        return journal.stat().st_size > 0
    except OSError:
        return False


def _open_ro(db: Path, query: str) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(
            f"{db.absolute().as_uri()}?{query}", uri=True, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise ArchiveCorrupt(f"{db}: expected an SQLite archive, got {one_line(exc)}") from None
    try:
        conn.execute("PRAGMA query_only = 1")
        check_schema(conn, db)
    except sqlite3.OperationalError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise ArchiveCorrupt(f"{db}: expected an SQLite archive, got {one_line(exc)}") from None
    except ArchiveCorrupt:
        conn.close()
        raise
    return conn


def check_schema(conn: sqlite3.Connection, db: Path) -> int:
    """The format version (1 or 2); ArchiveCorrupt unless it and the tables are ours."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version not in (FORMAT_V1, FORMAT_VERSION):
        raise ArchiveCorrupt(
            f"{db}: expected archive format {FORMAT_V1} or {FORMAT_VERSION}, got {version}"
        )
    want = COLUMNS if version == FORMAT_VERSION else COLUMNS_V1
    cols = tuple(r[1] for r in conn.execute("PRAGMA table_info(records)"))
    if cols != want:
        raise ArchiveCorrupt(f"{db}: expected records columns {want}, got {cols or 'none'}")
    if version == FORMAT_VERSION:
        for table in ("nodes", "checkpoints", "meta"):
            if not conn.execute("PRAGMA table_info(" + table + ")").fetchall():
                raise ArchiveCorrupt(f"{db}: expected a {table} table, got none")
    return int(version)


def iter_rows(
    conn: sqlite3.Connection,
    start: int = 0,
    stop: int | None = None,
    *,
    version: int = 2,
    kinds: tuple[str, ...] | None = None,
    limit: int = -1,
    newest_first: bool = False,
) -> Iterator[tuple[object, ...]]:
    """Stored rows with ``start <= idx < stop`` (of one of ``kinds``, at most ``limit``; -1:
    all), in index order (``newest_first``: reversed), in one read statement.

    Format 2 rows are ``(idx, kind, at, payload, leaf)``; format 1 rows
    ``(idx, kind, at, payload, prev, hash)``. The ``records_kind`` index (format 2 archives
    opened for writing since it exists) makes a scan for a rare kind cheap.
    """
    select = _SELECT if version == FORMAT_VERSION else _SELECT_V1
    where = "idx >= ? AND (? IS NULL OR idx < ?)"
    args: list[object] = [start, stop, stop]
    if kinds is not None:
        where += f" AND kind IN ({','.join('?' * len(kinds))})"
        args += kinds
    order = "DESC" if newest_first else ""
    cur = conn.execute(f"{select} WHERE {where} ORDER BY idx {order} LIMIT ?", (*args, limit))
    with contextlib.closing(cur):
        for row in cur:
            yield tuple(row)
