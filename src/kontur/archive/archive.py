"""The archive: an append-only hash chain of records in SQLite, next to a segment store.

Layout of ``data_dir``::

    archive.sqlite          one table ``records(idx, kind, at, payload, prev, hash)``, WAL,
                            synchronous=FULL; record hash defined in ``_chain.py``
    archive.lock            flock held by the one writer
    segments/ab/<sha256>    write-once segment files, mode 0444 (``segments.py``)

Appends are batched: records go into one open SQLite transaction that commits when it holds
``batch_size`` records, when ``batch_interval_s`` has passed since its first record (checked
on the next append, on the monotonic clock), on :meth:`Archive.flush` and on
:meth:`Archive.close`. A crash loses at most the open batch; committed records and the segment
files they point to are already durable (ADR 0004). :attr:`Archive.head` and
:attr:`Archive.records` describe committed records only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

from kontur.archive._chain import HashChain
from kontur.archive._sqlite import (
    DB_NAME,
    connect_readonly,
    connect_writer,
    iter_rows,
    load_tail,
    one_line,
)
from kontur.archive.errors import ArchiveInputError, ArchiveLocked, ArchiveWriteError
from kontur.archive.record import (
    RawRecord,
    Record,
    canonical_json,
    check_kind,
    segment_ref_of,
)
from kontur.archive.segments import SegmentStore
from kontur.clock import Clock, SystemClock

__all__ = ["LOCK_NAME", "Archive"]

LOCK_NAME = "archive.lock"
_PAGE = 256
_INSERT = "INSERT INTO records (idx, kind, at, payload, prev, hash) VALUES (?, ?, ?, ?, ?, ?)"


class Archive:
    """A tamper-evident, crash-safe archive. Open it with :meth:`open` or :meth:`open_readonly`.

    There is no update or delete: history is only ever appended to. All methods are
    thread-safe. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        conn: sqlite3.Connection,
        clock: Clock,
        lock_fd: int | None,
        batch_size: int = 64,
        batch_interval_s: float = 0.25,
    ) -> None:
        """Internal: use :meth:`open` or :meth:`open_readonly`."""
        self._dir = data_dir
        self._conn: sqlite3.Connection | None = conn
        self._clock = clock
        self._lock_fd = lock_fd
        self._readonly = lock_fd is None
        self._batch_size = batch_size
        self._batch_interval_s = batch_interval_s
        self._store = SegmentStore(data_dir)
        self._lock = threading.RLock()
        self._log = HashChain(*load_tail(conn, data_dir / DB_NAME))
        self._committed = (self._log.size, self._log.head)
        self._batch_opened: float | None = None

    @classmethod
    def open(
        cls,
        data_dir: Path,
        clock: Clock | None = None,
        *,
        batch_size: int = 64,
        batch_interval_s: float = 0.25,
    ) -> Archive:
        """Open ``data_dir`` for appending, creating it if needed; continues an existing chain.

        Raises ArchiveLocked if another writer holds it and ArchiveCorrupt if
        ``archive.sqlite`` is not an archive or its last record does not check out.
        """
        if batch_size < 1 or not batch_interval_s >= 0:
            raise ValueError(
                f"expected batch_size >= 1 and batch_interval_s >= 0, "
                f"got {batch_size} and {batch_interval_s}"
            )
        data_dir = Path(data_dir)
        created = not data_dir.exists()
        data_dir.mkdir(parents=True, exist_ok=True)
        lock_fd = _acquire_lock(data_dir)
        try:
            conn = connect_writer(data_dir / DB_NAME)
        except BaseException:
            os.close(lock_fd)
            raise
        try:
            _fsync_dir(data_dir)
            if created:
                _fsync_dir(data_dir.parent)
            return cls(
                data_dir=data_dir,
                conn=conn,
                clock=clock if clock is not None else SystemClock(),
                lock_fd=lock_fd,
                batch_size=batch_size,
                batch_interval_s=batch_interval_s,
            )
        except BaseException:
            conn.close()
            os.close(lock_fd)
            raise

    @classmethod
    def open_readonly(cls, data_dir: Path) -> Archive:
        """Open an existing archive for reading only; creates nothing.

        Raises ArchiveNotFound if ``data_dir/archive.sqlite`` is absent.
        """
        data_dir = Path(data_dir)
        conn = connect_readonly(data_dir)
        try:
            return cls(data_dir=data_dir, conn=conn, clock=SystemClock(), lock_fd=None)
        except BaseException:
            conn.close()
            raise

    @property
    def data_dir(self) -> Path:
        """The archive's directory."""
        return self._dir

    @property
    def readonly(self) -> bool:
        """True when opened with :meth:`open_readonly`."""
        return self._readonly

    @property
    def segments(self) -> SegmentStore:
        """The segment store next to the records."""
        return self._store

    @property
    def head(self) -> str:
        """Hex hash of the last committed record, or 64 zeros for an empty archive."""
        return self._committed_state()[1].hex()

    @property
    def records(self) -> int:
        """Number of committed records."""
        return self._committed_state()[0]

    @property
    def pending(self) -> int:
        """Number of appended records not yet committed (lost if the process dies now)."""
        with self._lock:
            return self._log.size - self._committed[0]

    def append(self, kind: str, payload: Mapping[str, Any]) -> Record:
        """Append one record of ``kind`` with a JSON-object ``payload`` to the open batch.

        A "segment" payload must name a stored segment (``sha256``, ``size``); it is checked
        against the file first. Prefer :meth:`append_segment`, which stores the bytes too.
        Raises ArchiveInputError for a bad kind or payload, ArchiveWriteError if SQLite fails.
        """
        check_kind(kind)
        body = canonical_json(dict(payload) if isinstance(payload, Mapping) else payload)
        if kind == "segment":
            ref = segment_ref_of(json.loads(body))
            self._store.check(ref.sha256, ref.size)
        return self._append(kind, body)

    def append_segment(self, data: bytes, meta: Mapping[str, Any]) -> Record:
        """Store ``data`` durably, then append a "segment" record ``{sha256, size, **meta}``.

        The file is fsynced before the record is written, so a segment record never points to
        a file that is not on disk. ``meta`` (e.g. the GOP verdict) may not hold ``sha256`` or
        ``size``.
        """
        clash = sorted({"sha256", "size"} & set(meta))
        if clash:
            raise ArchiveInputError(f"segment meta: expected no sha256 or size key, got {clash}")
        canonical_json(dict(meta))  # refuse bad meta before writing a file
        ref = self._store.put(data)
        body = canonical_json({"sha256": ref.sha256, "size": ref.size, **meta})
        return self._append("segment", body)

    def flush(self) -> None:
        """Commit the open batch now; on return every appended record is durable."""
        with self._lock:
            self._writer()
            self._commit()

    def close(self) -> None:
        """Flush (when writing), close the database and release the writer lock. Idempotent."""
        with self._lock:
            conn = self._conn
            if conn is None:
                return
            try:
                if not self._readonly:
                    self._commit()
                    _leave_wal(conn)
            finally:
                self._conn = None
                conn.close()
                if self._lock_fd is not None:
                    os.close(self._lock_fd)  # releases the flock
                    self._lock_fd = None

    def iter_records(self, start: int = 0) -> Iterator[Record]:
        """Committed records from index ``start`` on, parsed but not chain-checked.

        Use :func:`kontur.archive.verify_archive` to check them.
        """
        pos = start
        while True:
            with self._lock:
                conn = self._open_conn()
                stop = self._committed_state()[0] if not self.readonly else None
                end = pos + _PAGE if stop is None else min(pos + _PAGE, stop)
                rows = list(iter_rows(conn, pos, end))
            if not rows:
                return
            for row in rows:
                yield Record.from_raw(RawRecord.from_row(row))
            pos += len(rows)

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _append(self, kind: str, body: bytes) -> Record:
        with self._lock:
            conn = self._writer()
            at = self._clock.wall()
            if not math.isfinite(at):
                raise ArchiveInputError(f"at: expected a finite wall time, got {at!r}")
            try:
                if self._batch_opened is None:
                    conn.execute("BEGIN IMMEDIATE")
                    self._batch_opened = self._clock.monotonic()
                link = self._log.append(kind, at, body)
                conn.execute(
                    _INSERT, (link.index, kind, at, body, link.prev.hex(), link.hash.hex())
                )
            except sqlite3.Error as exc:
                self._abort(exc)
            record = Record(
                link.index, kind, at, json.loads(body), link.prev.hex(), link.hash.hex(), body
            )
            if self.pending >= self._batch_size or self._interval_elapsed():
                self._commit()
            return record

    def _interval_elapsed(self) -> bool:
        opened = self._batch_opened
        return opened is not None and self._clock.monotonic() - opened >= self._batch_interval_s

    def _commit(self) -> None:
        conn = self._writer()
        if self._batch_opened is None:
            return
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._abort(exc)
        self._batch_opened = None
        self._committed = (self._log.size, self._log.head)

    def _abort(self, exc: sqlite3.Error) -> NoReturn:
        """Roll back the open batch, rewind the chain to the last commit, raise."""
        lost = self._log.size - self._committed[0]
        with contextlib.suppress(sqlite3.Error):
            self._writer().execute("ROLLBACK")
        self._batch_opened = None
        self._log = HashChain(*self._committed)
        raise ArchiveWriteError(
            f"expected SQLite to accept the write, got {one_line(exc)}; "
            f"{lost} uncommitted record(s) lost"
        ) from None

    def _committed_state(self) -> tuple[int, bytes]:
        with self._lock:
            conn = self._open_conn()
            if self.readonly:  # another process may be appending: ask the database
                return load_tail(conn, self._dir / DB_NAME)
            return self._committed

    def _open_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("expected an open archive, got a closed one")
        return self._conn

    def _writer(self) -> sqlite3.Connection:
        conn = self._open_conn()
        if self.readonly:
            raise RuntimeError("expected an archive opened for writing, got a read-only one")
        return conn


def _acquire_lock(data_dir: Path) -> int:
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ArchiveLocked(f"{data_dir}: expected no other writer, got one holding it") from None
    return fd


def _leave_wal(conn: sqlite3.Connection) -> None:
    """Checkpoint and drop the WAL, so a later read-only open creates no -wal/-shm files.

    Best effort: a concurrent reader keeps the database in WAL mode, which is harmless.
    """
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA busy_timeout = 100")
        conn.execute("PRAGMA journal_mode = DELETE")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
