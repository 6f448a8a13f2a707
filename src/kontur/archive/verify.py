"""Offline verification of an archive: a pure re-check that reads and never writes.

:func:`verify_archive` takes these steps, in this order, and stops at the first failure:

1. Find ``data_dir/archive.sqlite``. If it is absent, raise :class:`ArchiveNotFound` (a
   caller's mistake, not evidence); nothing is created.
2. Open it read-only and check it is an SQLite database of our format (``user_version``) with
   the ``records`` columns. If not (garbage bytes, another database), the report says
   ``ok=False`` with ``first_bad`` index 0 and the reason; no exception, no traceback.
3. Read every record in ``idx`` order within one read statement (one consistent snapshot,
   so a live writer does not disturb it). For record ``i``:

   a. the row's column types and its kind (``^[a-z_]{1,32}$``) parse;
   b. ``idx == i``: indexes are contiguous from 0 (a deleted record shows here);
   c. ``prev`` equals the hash of record ``i-1`` (32 zero bytes for record 0);
   d. ``hash`` equals the hash recomputed from ``prev``, ``idx``, ``kind``, ``at`` and the
      stored payload bytes (an edited or swapped record shows here);
   e. the payload is a canonical JSON object;
   f. for a "segment" record: its payload names ``sha256`` and ``size``, and the segment file
      exists, is a regular file of that size, and re-hashes to that sha256.

4. Report. ``records``, ``segments`` and ``head`` describe the verified prefix: on success,
   the whole archive; on failure, the records before ``first_bad``.

Reasons name what was expected and what was found, prefixed with the record index, e.g.
``record 4: expected prev b1…, got 77…``. A bare chain cannot see records cut off the tail;
signed checkpoints (RFC 9162, ADR 0004) will.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kontur.archive._chain import GENESIS, ChainChecker, HashChain
from kontur.archive._sqlite import connect_readonly, iter_rows, one_line
from kontur.archive.errors import ArchiveCorrupt, ArchiveError
from kontur.archive.record import RawRecord, Record, segment_ref_of
from kontur.archive.segments import SegmentStore

__all__ = ["BadRecord", "VerifyReport", "verify_archive"]


@dataclass(frozen=True, slots=True)
class BadRecord:
    """The first record that fails verification, and why."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of :func:`verify_archive`.

    ``records`` and ``segments`` count the verified records and segment files, and ``head``
    is the hex hash of the last verified record (64 zeros if none).
    """

    ok: bool
    records: int
    segments: int
    head: str
    first_bad: BadRecord | None = None

    def to_json(self) -> dict[str, object]:
        """``{"ok", "records", "first_bad": null | {"index", "reason"}, "segments", "head"}``."""
        bad = (
            None
            if self.first_bad is None
            else {
                "index": self.first_bad.index,
                "reason": self.first_bad.reason,
            }
        )
        return {
            "ok": self.ok,
            "records": self.records,
            "first_bad": bad,
            "segments": self.segments,
            "head": self.head,
        }


def verify_archive(data_dir: Path) -> VerifyReport:
    """Re-check every record and segment of the archive in ``data_dir``; read-only.

    Raises ArchiveNotFound if there is no ``archive.sqlite``; every other problem is reported
    in the returned :class:`VerifyReport`.
    """
    data_dir = Path(data_dir)
    try:
        conn = connect_readonly(data_dir)
    except ArchiveCorrupt as exc:
        return VerifyReport(False, 0, 0, GENESIS.hex(), BadRecord(0, f"record 0: {exc}"))
    try:
        return _verify_rows(iter_rows(conn), SegmentStore(data_dir))
    finally:
        conn.close()


class _Progress:
    """The verified prefix so far."""

    def __init__(self) -> None:
        self.records = 0
        self.segments = 0
        self.head = GENESIS.hex()

    def report(self, bad: BadRecord | None = None) -> VerifyReport:
        return VerifyReport(bad is None, self.records, self.segments, self.head, bad)

    def fail(self, reason: str) -> VerifyReport:
        return self.report(BadRecord(self.records, f"record {self.records}: {reason}"))


def _verify_rows(rows: Iterable[tuple[object, ...]], store: SegmentStore) -> VerifyReport:
    progress = _Progress()
    checker = ChainChecker(HashChain())
    try:
        for row in rows:
            try:
                _check_record(row, checker, store)
            except ArchiveError as exc:
                return progress.fail(str(exc))
            progress.records += 1
            if row[1] == "segment":
                progress.segments += 1
            progress.head = str(row[5])
    except sqlite3.Error as exc:
        return progress.fail(f"expected a readable archive.sqlite, got {one_line(exc)}")
    return progress.report()


def _check_record(row: tuple[object, ...], checker: ChainChecker, store: SegmentStore) -> None:
    """Steps 3a-3f for one row; raises an ArchiveError naming what differs."""
    raw = RawRecord.from_row(row)
    checker.feed(raw.index, raw.kind, raw.at, raw.payload, raw.prev, raw.hash)
    record = Record.from_raw(raw)
    if record.kind == "segment":
        ref = segment_ref_of(record.payload)
        store.check(ref.sha256, ref.size)
