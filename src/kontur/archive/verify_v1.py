"""Offline verification of a format-1 archive (the bare hash chain of ADR 0004).

Kept so that archives written before format 2 still verify. For record ``i``, in order:
the row's column types and kind parse; ``idx == i``; ``prev`` equals the hash of record
``i-1`` (32 zero bytes for record 0); ``hash`` recomputes from ``prev``, ``idx``, ``kind``,
``at`` and the payload bytes; the payload is canonical JSON; a "segment" record's file exists
with its size and sha256. A bare chain cannot see records cut off its tail; format 2's
signed checkpoints can.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from kontur.archive._chain import GENESIS, ChainChecker, HashChain
from kontur.archive._sqlite import one_line
from kontur.archive.errors import ArchiveError
from kontur.archive.record import RawRecordV1, Record, segment_ref_of
from kontur.archive.report import BadRecord, VerifyReport
from kontur.archive.segments import SegmentStore

__all__ = ["verify_rows_v1"]


def verify_rows_v1(rows: Iterable[tuple[object, ...]], store: SegmentStore) -> VerifyReport:
    """Check format-1 rows ``(idx, kind, at, payload, prev, hash)`` in index order."""
    records = segments = 0
    head = GENESIS.hex()
    checker = ChainChecker(HashChain())

    def fail(reason: str) -> VerifyReport:
        bad = BadRecord(records, f"record {records}: {reason}")
        return VerifyReport(False, records, segments, head, bad, format=1)

    try:
        for row in rows:
            try:
                raw = RawRecordV1.from_row(row)
                checker.feed(raw.index, raw.kind, raw.at, raw.payload, raw.prev, raw.hash)
                record = Record.from_raw(raw)
                if record.kind == "segment":
                    ref = segment_ref_of(record.payload)
                    store.check(ref.sha256, ref.size)
            except ArchiveError as exc:
                return fail(str(exc))
            records += 1
            segments += record.kind == "segment"
            head = raw.hash
    except sqlite3.Error as exc:
        return fail(f"expected a readable archive.sqlite, got {one_line(exc)}")
    return VerifyReport(True, records, segments, head, None, format=1)
