"""The archive: an RFC 9162 Merkle log of records in SQLite, next to a segment store.

Layout of ``data_dir`` (mode 0700)::

    archive.sqlite          records, tree nodes, signed checkpoints, meta (``_sqlite.py``),
                            WAL, synchronous=FULL, mode 0600; leaf hash in ``_tree.py``
    archive.lock            flock held by the one writer
    archive.key             the archive's Ed25519 checkpoint key, 0600, unless
                            :class:`Signing` puts it elsewhere (it should: ADR 0015)
    segments/ab/<sha256>    write-once segment files, mode 0400, dirs 0700 (``segments.py``)

Signed checkpoints (``checkpoint.py``) are issued after a commit once ``Signing.every_records``
records or ``Signing.every_s`` seconds have passed since the last one, and at close. A
checkpoint only ever covers committed records. Each one is also appended to the witness file
(``witness.py``) and handed to ``on_checkpoint`` (the webhook sink), when configured.

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
import logging
import math
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

from kontur._private import fsync_dir, private_file, secure_data_dir
from kontur.archive._sqlite import (
    DB_NAME,
    FORMAT_VERSION,
    check_schema,
    connect_readonly,
    connect_writer,
    iter_rows,
    one_line,
)
from kontur.archive._tree import MerkleLog, SqliteNodes
from kontur.archive.checkpoint import (
    ArchiveKey,
    Checkpoint,
    KeyFileError,
    VerifierKey,
    sign_checkpoint,
)
from kontur.archive.errors import (
    ArchiveCorrupt,
    ArchiveInputError,
    ArchiveLocked,
    ArchiveWriteError,
)
from kontur.archive.merkle import consistency_proof, inclusion_proof
from kontur.archive.record import (
    RawRecord,
    Record,
    canonical_json,
    check_kind,
    segment_ref_of,
)
from kontur.archive.segments import SegmentStore
from kontur.archive.witness import append_witness
from kontur.clock import Clock, SystemClock

__all__ = ["KEY_NAME", "LOCK_NAME", "Archive", "Signing", "load_meta"]

LOCK_NAME = "archive.lock"
KEY_NAME = "archive.key"
_PAGE = 256
log = logging.getLogger("kontur.archive")
_INSERT = "INSERT INTO records (idx, kind, at, payload, leaf) VALUES (?, ?, ?, ?, ?)"
_INSERT_NODE = "INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)"


@dataclass(frozen=True, slots=True)
class Signing:
    """Where the checkpoint key lives, how often checkpoints are issued, and the witness.

    ``key_path`` None means ``data_dir/archive.key``, created with a new archive. A site
    should keep it outside the data dir, so that write access there gives no signing power.
    """

    key_path: Path | None = None
    every_records: int = 1000
    every_s: float = 60.0
    witness: Path | None = None

    def __post_init__(self) -> None:
        if self.every_records < 1 or not self.every_s > 0:
            raise ValueError(
                f"expected every_records >= 1 and every_s > 0, "
                f"got {self.every_records} and {self.every_s}"
            )


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
        signer: _Signer | None = None,
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
        self._meta = load_meta(conn, data_dir / DB_NAME)
        self._log = MerkleLog.load(conn, data_dir / DB_NAME)
        self._committed = (self._log.size, self._log.head)
        self._rewind = self._log.frontier
        self._batch_opened: float | None = None
        self._signer = signer
        if signer is not None:
            signer.resume(conn, clock.monotonic())

    @classmethod
    def open(
        cls,
        data_dir: Path,
        clock: Clock | None = None,
        *,
        batch_size: int = 64,
        batch_interval_s: float = 0.25,
        signing: Signing | None = None,
        on_checkpoint: Callable[[str], None] | None = None,
    ) -> Archive:
        """Open ``data_dir`` for appending, creating it (mode 0700) and its key if needed.

        Raises ArchiveLocked if another writer holds it, ArchiveCorrupt if ``archive.sqlite``
        is not an archive of format 2 or its tail does not check out, and KeyFileError if
        the checkpoint key is missing or is not this archive's.
        """
        if batch_size < 1 or not batch_interval_s >= 0:
            raise ValueError(
                f"expected batch_size >= 1 and batch_interval_s >= 0, "
                f"got {batch_size} and {batch_interval_s}"
            )
        signing = signing if signing is not None else Signing()
        data_dir = Path(data_dir)
        created = not data_dir.exists()
        tightened = secure_data_dir(data_dir)
        if tightened is not None:
            log.warning("%s", tightened.warning)
        lock_fd = _acquire_lock(data_dir)
        try:
            # created 0600 first: SQLite gives its -wal and -shm files the database's mode
            conn = connect_writer(private_file(data_dir / DB_NAME))
        except BaseException:
            os.close(lock_fd)
            raise
        try:
            _private(data_dir / DB_NAME)
            signer = _Signer.start(conn, data_dir, signing, on_checkpoint)
            fsync_dir(data_dir)
            if created:
                fsync_dir(data_dir.parent)
            return cls(
                data_dir=data_dir,
                conn=conn,
                clock=clock if clock is not None else SystemClock(),
                lock_fd=lock_fd,
                batch_size=batch_size,
                batch_interval_s=batch_interval_s,
                signer=signer,
            )
        except BaseException:
            conn.close()
            os.close(lock_fd)
            raise

    @classmethod
    def open_readonly(cls, data_dir: Path) -> Archive:
        """Open an existing format-2 archive for reading only; creates nothing.

        Raises ArchiveNotFound if ``data_dir/archive.sqlite`` is absent.
        """
        data_dir = Path(data_dir)
        conn = connect_readonly(data_dir)
        try:
            if check_schema(conn, data_dir / DB_NAME) != FORMAT_VERSION:
                raise ArchiveCorrupt(
                    f"{data_dir}: expected archive format {FORMAT_VERSION} to read, got format 1 "
                    "(`kontur archive verify` still checks it)"
                )
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
    def origin(self) -> str:
        """The archive's checkpoint origin (its name in every signed checkpoint)."""
        return self._meta[0]

    @property
    def verifier_key(self) -> VerifierKey:
        """The public key that signs this archive's checkpoints."""
        return self._meta[1]

    @property
    def witness_error(self) -> str | None:
        """The last failure to append to the witness file, if any (checkpoints go on)."""
        return None if self._signer is None else self._signer.witness_error

    @property
    def head(self) -> str:
        """Hex tree root over the committed records (SHA-256 of nothing when empty)."""
        return self._committed_state()[1].hex()

    @property
    def records(self) -> int:
        """Number of committed records (the tree size)."""
        return self._committed_size()

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

    def checkpoint(self) -> str | None:
        """Commit, then sign a checkpoint of the whole tree now; returns its note.

        None when the tree is empty or already checkpointed at this size.
        """
        with self._lock:
            self._writer()
            self._commit()
            return self._sign_now()

    def close(self) -> None:
        """Flush and checkpoint (when writing), close, release the writer lock. Idempotent."""
        with self._lock:
            conn = self._conn
            if conn is None:
                return
            try:
                if not self._readonly:
                    self._commit()
                    self._sign_now()
                    _leave_wal(conn)
            finally:
                self._conn = None
                conn.close()
                if self._lock_fd is not None:
                    os.close(self._lock_fd)  # releases the flock
                    self._lock_fd = None

    def iter_records(
        self, start: int = 0, kind: str | Collection[str] | None = None
    ) -> Iterator[Record]:
        """Committed records from index ``start`` on (only those of ``kind``, one or several,
        if given), parsed but not proof-checked.

        Use :func:`kontur.archive.verify_archive` to check them. A ``kind`` is selected by
        SQLite, so a scan for a rare kind does not parse the whole history.
        """
        kinds = _kinds(kind)
        pos = start
        while True:
            with self._lock:
                conn = self._open_conn()
                stop = self._committed_size() if not self.readonly else None
                if kinds is None:
                    stop = pos + _PAGE if stop is None else min(pos + _PAGE, stop)
                rows = list(iter_rows(conn, pos, stop, kinds=kinds, limit=_PAGE))
            if not rows:
                return
            for row in rows:
                record = Record.from_raw(RawRecord.from_row(row))
                yield record
            pos = record.index + 1

    def tail(
        self, kind: str | Collection[str] | None, limit: int, stop: int | None = None
    ) -> list[Record]:
        """The newest ``limit`` committed records (of ``kind``, if given) below index ``stop``
        (default: all), newest last; selected by SQLite, newest first, so a page of recent
        events costs ``limit`` rows, not a scan of the history."""
        kinds = _kinds(kind)
        with self._lock:
            conn = self._open_conn()
            size = self._committed_size() if not self.readonly else None
            end = stop if size is None or (stop is not None and stop < size) else size
            rows = list(iter_rows(conn, 0, end, kinds=kinds, limit=limit, newest_first=True))
        return [Record.from_raw(RawRecord.from_row(row)) for row in reversed(rows)]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The RFC 9162 audit path of record ``index`` in the tree of ``size`` (default: all)."""
        with self._lock:
            size = self._committed_size() if size is None else size
            self._check_size(size)
            return inclusion_proof(self._nodes(), index, size)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """The RFC 9162 proof that the tree of ``old`` is a prefix of the tree of ``new``."""
        with self._lock:
            new = self._committed_size() if new is None else new
            self._check_size(new)
            return consistency_proof(self._nodes(), old, new)

    def root_at(self, size: int) -> bytes:
        """The tree root over the first ``size`` committed records."""
        from kontur.archive.merkle import EMPTY_ROOT, subtree_root

        with self._lock:
            self._check_size(size)
            return EMPTY_ROOT if size == 0 else subtree_root(self._nodes(), 0, size)

    def checkpoints(self) -> list[tuple[int, float, str]]:
        """Stored checkpoints ``(size, at, note)``, oldest first (not verified here)."""
        with self._lock:
            rows = self._open_conn().execute("SELECT size, at, note FROM checkpoints ORDER BY size")
            return [(int(r[0]), float(r[1]), str(r[2])) for r in rows]

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _nodes(self) -> SqliteNodes:
        return SqliteNodes(self._open_conn(), self._dir / DB_NAME)

    def _check_size(self, size: int) -> None:
        have = self._committed_size()
        if not 0 <= size <= have:
            raise ArchiveInputError(f"tree size: expected 0..{have}, got {size}")

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
                added = self._log.append(kind, at, body)
                conn.execute(_INSERT, (added.index, kind, at, body, added.leaf))
                if added.nodes:
                    conn.executemany(_INSERT_NODE, added.nodes)
            except sqlite3.Error as exc:
                self._abort(exc)
            record = Record(added.index, kind, at, added.leaf.hex(), body)
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
        self._rewind = self._log.frontier
        if self._signer is not None and self._signer.due(self._log.size, self._clock.monotonic()):
            self._sign_now()

    def _sign_now(self) -> str | None:
        if self._signer is None:
            return None
        size, root = self._committed
        return self._signer.sign(self._writer(), Checkpoint(self.origin, size, root), self._clock)

    def _abort(self, exc: sqlite3.Error) -> NoReturn:
        """Roll back the open batch, rewind the tree to the last commit, raise."""
        lost = self._log.size - self._committed[0]
        with contextlib.suppress(sqlite3.Error):
            self._writer().execute("ROLLBACK")
        self._batch_opened = None
        self._log = MerkleLog(self._rewind)
        self._rewind = self._log.frontier
        raise ArchiveWriteError(
            f"expected SQLite to accept the write, got {one_line(exc)}; "
            f"{lost} uncommitted record(s) lost"
        ) from None

    def _committed_size(self) -> int:
        with self._lock:
            conn = self._open_conn()
            if not self.readonly:
                return self._committed[0]
            try:  # MAX, not COUNT: O(log n) on the primary key (verify checks contiguity)
                (last,) = conn.execute("SELECT MAX(idx) FROM records").fetchone()
            except sqlite3.Error as exc:
                raise ArchiveCorrupt(
                    f"{self._dir}: expected a readable archive, got {exc}"
                ) from None
            return 0 if last is None else int(last) + 1

    def _committed_state(self) -> tuple[int, bytes]:
        with self._lock:
            conn = self._open_conn()
            if self.readonly:  # another process may be appending: ask the database
                log = MerkleLog.load(conn, self._dir / DB_NAME)
                return log.size, log.head
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


class _Signer:
    """Issues signed checkpoints for one open archive (writer side)."""

    def __init__(
        self, key: ArchiveKey, signing: Signing, on_checkpoint: Callable[[str], None] | None
    ) -> None:
        self._key = key
        self._signing = signing
        self._on_checkpoint = on_checkpoint
        self._last_size = 0
        self._last_time = 0.0
        self.witness_error: str | None = None

    @classmethod
    def start(
        cls,
        conn: sqlite3.Connection,
        data_dir: Path,
        signing: Signing,
        on_checkpoint: Callable[[str], None] | None,
    ) -> _Signer:
        """Load (or, for a new archive, create) the key; bind it to the archive's meta."""
        path = signing.key_path if signing.key_path is not None else data_dir / KEY_NAME
        db = data_dir / DB_NAME
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if "vkey" not in meta:
            key = ArchiveKey.load(path) if path.exists() else _new_key(path)
            origin = f"kontur.archive/{secrets.token_hex(8)}"
            vkey = key.verifier(origin)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO meta VALUES ('origin', ?), ('vkey', ?)", (origin, str(vkey)))
            conn.execute("COMMIT")
            return cls(key, signing, on_checkpoint)
        origin, vkey = load_meta(conn, db)
        if not path.exists():
            raise KeyFileError(f"archive key {path}: expected the key of {vkey}, got no file")
        key = ArchiveKey.load(path)
        if key.verifier(origin) != vkey:
            raise KeyFileError(
                f"archive key {path}: expected key id {vkey.key_id.hex()}, "
                f"got {key.verifier(origin).key_id.hex()}"
            )
        return cls(key, signing, on_checkpoint)

    def resume(self, conn: sqlite3.Connection, now: float) -> None:
        row = conn.execute("SELECT MAX(size) FROM checkpoints").fetchone()
        self._last_size = int(row[0] or 0)
        self._last_time = now

    def due(self, size: int, now: float) -> bool:
        if size <= self._last_size:
            return False
        s = self._signing
        return size - self._last_size >= s.every_records or now - self._last_time >= s.every_s

    def sign(self, conn: sqlite3.Connection, cp: Checkpoint, clock: Clock) -> str | None:
        """Sign ``cp``, store it, witness it; None if that size is already checkpointed."""
        if cp.size == 0 or cp.size <= self._last_size:
            return None
        note = sign_checkpoint(cp, self._key)
        at = clock.wall()
        try:
            conn.execute(
                "INSERT INTO checkpoints (size, at, note) VALUES (?, ?, ?)", (cp.size, at, note)
            )
        except sqlite3.Error as exc:
            raise ArchiveWriteError(
                f"expected SQLite to store checkpoint {cp.size}, got {one_line(exc)}"
            ) from None
        self._last_size, self._last_time = cp.size, clock.monotonic()
        if self._signing.witness is not None:
            try:
                append_witness(self._signing.witness, at, note)
            except OSError as exc:  # recording never waits on the witness; verify shows the gap
                self.witness_error = f"witness {self._signing.witness}: {exc.strerror}"
        if self._on_checkpoint is not None:
            self._on_checkpoint(note)
        return note


def load_meta(conn: sqlite3.Connection, db: Path) -> tuple[str, VerifierKey]:
    """The archive's origin and checkpoint verifier key, from its ``meta`` table."""
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    origin, vkey = meta.get("origin"), meta.get("vkey")
    if not isinstance(origin, str) or not isinstance(vkey, str):
        raise ArchiveCorrupt(f"{db}: expected meta origin and vkey, got {sorted(meta)}")
    key = VerifierKey.parse(vkey)
    if key.name != origin:
        raise ArchiveCorrupt(f"{db}: expected the key named {origin}, got {key.name}")
    return origin, key


def _new_key(path: Path) -> ArchiveKey:
    key = ArchiveKey.generate()
    key.save(path)
    return key


def _private(db: Path) -> None:
    """The database is the operator's alone (issue 9: archives are 0600)."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(db, 0o600)


def _acquire_lock(data_dir: Path) -> int:
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ArchiveLocked(f"{data_dir}: expected no other writer, got one holding it") from None
    return fd


def _kinds(kind: str | Collection[str] | None) -> tuple[str, ...] | None:
    if kind is None:
        return None
    kinds = (kind,) if isinstance(kind, str) else tuple(sorted(kind))
    return tuple(check_kind(k) for k in kinds)


def _leave_wal(conn: sqlite3.Connection) -> None:
    """Checkpoint and drop the WAL, so a later read-only open creates no -wal/-shm files.

    Best effort: a concurrent reader keeps the database in WAL mode, which is harmless.
    """
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA busy_timeout = 100")
        conn.execute("PRAGMA journal_mode = DELETE")
