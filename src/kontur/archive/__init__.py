"""Tamper-evident, crash-safe archive (DESIGN.md §3 "Tamper-evident archive", ADR 0004).

Every fact kontur records (a segment with its GOP verdict, detections, a decision, a state,
config or model change) is a record in an append-only SHA-256 hash chain stored in SQLite.
Video segments are content-addressed, write-once files next to it. :func:`verify_archive`
re-checks all of it offline, read-only.

Public surface:

- :class:`Archive` (``open``, ``open_readonly``, ``append``, ``append_segment``, ``flush``,
  ``close``, ``head``, ``records``, ``iter_records``) and :class:`Record`;
- :class:`SegmentStore` and :class:`SegmentRef`;
- :func:`verify_archive`, :class:`VerifyReport`, :class:`BadRecord`;
- the error tree rooted at :class:`ArchiveError` (see :mod:`kontur.archive.errors`).
"""

from __future__ import annotations

from kontur.archive._chain import GENESIS, HashChain, Log, canonical_at, record_hash
from kontur.archive.archive import Archive
from kontur.archive.errors import (
    ArchiveCorrupt,
    ArchiveError,
    ArchiveInputError,
    ArchiveLocked,
    ArchiveNotFound,
    ArchiveWriteError,
    ChainBroken,
    SegmentCorrupt,
    SegmentMissing,
)
from kontur.archive.record import KINDS, Record, canonical_json
from kontur.archive.segments import SegmentRef, SegmentStore
from kontur.archive.verify import BadRecord, VerifyReport, verify_archive

__all__ = [
    "GENESIS",
    "KINDS",
    "Archive",
    "ArchiveCorrupt",
    "ArchiveError",
    "ArchiveInputError",
    "ArchiveLocked",
    "ArchiveNotFound",
    "ArchiveWriteError",
    "BadRecord",
    "ChainBroken",
    "HashChain",
    "Log",
    "Record",
    "SegmentCorrupt",
    "SegmentMissing",
    "SegmentRef",
    "SegmentStore",
    "VerifyReport",
    "canonical_at",
    "canonical_json",
    "record_hash",
    "verify_archive",
]
