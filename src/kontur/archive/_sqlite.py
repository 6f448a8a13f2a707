"""The SQLite side of the archive: schema, connections, and the committed tail.

Every ``sqlite3`` error that means "this is not a (healthy) archive" becomes a one-line
:class:`ArchiveCorrupt`; callers never see a traceback from ``sqlite3``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from kontur.archive._chain import GENESIS, record_hash
from kontur.archive.errors import ArchiveCorrupt, ArchiveNotFound
from kontur.archive.record import RawRecord

__all__ = [
    "COLUMNS",
    "DB_NAME",
    "FORMAT_VERSION",
    "connect_readonly",
    "connect_writer",
    "iter_rows",
    "load_tail",
    "one_line",
]

DB_NAME = "archive.sqlite"
#: Stored in ``PRAGMA user_version``; bump it when the record hash or schema changes.
FORMAT_VERSION = 1
COLUMNS = ("idx", "kind", "at", "payload", "prev", "hash")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    idx     INTEGER PRIMARY KEY,
    kind    TEXT NOT NULL,
    at      REAL NOT NULL,
    payload BLOB NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL
)
"""
_SELECT = "SELECT idx, kind, at, payload, prev, hash FROM records"


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
            conn.execute(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
        check_schema(conn, db)
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
        conn = sqlite3.connect(
            f"{db.absolute().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise ArchiveCorrupt(f"{db}: expected an SQLite archive, got {one_line(exc)}") from None
    try:
        conn.execute("PRAGMA query_only = 1")
        check_schema(conn, db)
    except sqlite3.Error as exc:
        conn.close()
        raise ArchiveCorrupt(f"{db}: expected an SQLite archive, got {one_line(exc)}") from None
    except ArchiveCorrupt:
        conn.close()
        raise
    return conn


def check_schema(conn: sqlite3.Connection, db: Path) -> None:
    """Raise ArchiveCorrupt unless the format version and the records columns are ours."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != FORMAT_VERSION:
        raise ArchiveCorrupt(f"{db}: expected archive format {FORMAT_VERSION}, got {version}")
    cols = tuple(r[1] for r in conn.execute("PRAGMA table_info(records)"))
    if cols != COLUMNS:
        raise ArchiveCorrupt(f"{db}: expected records columns {COLUMNS}, got {cols or 'none'}")


def load_tail(conn: sqlite3.Connection, db: Path) -> tuple[int, bytes]:
    """Count and head of the committed records, after a cheap check of the tail.

    Checks that the indexes are ``0..count-1`` and that the last record's stored hash
    recomputes from its own fields; the full check is :func:`kontur.archive.verify_archive`.
    """
    try:
        count, last = conn.execute("SELECT COUNT(*), MAX(idx) FROM records").fetchone()
        if count == 0:
            return 0, GENESIS
        if last != count - 1:
            raise ArchiveCorrupt(f"{db}: expected indexes 0..{count - 1}, got max index {last}")
        row = conn.execute(f"{_SELECT} WHERE idx = ?", (last,)).fetchone()
    except sqlite3.Error as exc:
        raise ArchiveCorrupt(f"{db}: expected a readable archive, got {one_line(exc)}") from None
    raw = RawRecord.from_row(tuple(row))
    try:
        prev = bytes.fromhex(raw.prev)
        want = record_hash(prev, raw.index, raw.kind, raw.at, raw.payload).hex()
    except ValueError:
        raise ArchiveCorrupt(f"{db}: record {last}: expected prev as hex, got {raw.prev}") from None
    if want != raw.hash:
        raise ArchiveCorrupt(f"{db}: record {last}: expected hash {want}, got {raw.hash}")
    return count, bytes.fromhex(raw.hash)


def iter_rows(
    conn: sqlite3.Connection, start: int = 0, stop: int | None = None
) -> Iterator[tuple[object, ...]]:
    """Stored rows ``(idx, kind, at, payload, prev, hash)`` with ``start <= idx < stop``.

    In index order, within one read statement (so one consistent snapshot).
    """
    sql = f"{_SELECT} WHERE idx >= ? AND (? IS NULL OR idx < ?) ORDER BY idx"
    cur = conn.execute(sql, (start, stop, stop))
    with contextlib.closing(cur):
        for row in cur:
            yield tuple(row)
