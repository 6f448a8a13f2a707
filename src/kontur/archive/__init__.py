"""Tamper-evident, crash-safe archive (DESIGN.md §3 "Tamper-evident archive", ADR 0004).

Every fact kontur records (a segment with its GOP verdict, detections, a decision, a state,
config or model change) is a record in an append-only RFC 9162 Merkle log stored in SQLite,
whose root is signed as a C2SP checkpoint with a key of the archive's own (ADR 0015). Video
segments are content-addressed, write-once files next to it. :func:`verify_archive`
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
from kontur.archive._tree import entry_leaf
from kontur.archive.archive import KEY_NAME, Archive, Signing
from kontur.archive.checkpoint import (
    ArchiveKey,
    Checkpoint,
    CheckpointError,
    KeyFileError,
    VerifierKey,
    note_signers,
    open_checkpoint,
    sign_checkpoint,
)
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
from kontur.archive.merkle import ProofError, verify_consistency, verify_inclusion
from kontur.archive.record import KINDS, Record, canonical_json
from kontur.archive.report import BadRecord, VerifyReport
from kontur.archive.retention import (
    Hold,
    RetentionPolicy,
    RetentionReport,
    apply_retention,
    place_hold,
    release_hold,
)
from kontur.archive.segments import SegmentRef, SegmentStore
from kontur.archive.verify import verify_archive
from kontur.archive.witness import WitnessError, probe_witness, read_witness, witness_line

__all__ = [
    "GENESIS",
    "KEY_NAME",
    "KINDS",
    "Archive",
    "ArchiveCorrupt",
    "ArchiveError",
    "ArchiveInputError",
    "ArchiveKey",
    "ArchiveLocked",
    "ArchiveNotFound",
    "ArchiveWriteError",
    "BadRecord",
    "ChainBroken",
    "Checkpoint",
    "CheckpointError",
    "HashChain",
    "Hold",
    "KeyFileError",
    "Log",
    "ProofError",
    "Record",
    "RetentionPolicy",
    "RetentionReport",
    "SegmentCorrupt",
    "SegmentMissing",
    "SegmentRef",
    "SegmentStore",
    "Signing",
    "VerifierKey",
    "VerifyReport",
    "WitnessError",
    "apply_retention",
    "canonical_at",
    "canonical_json",
    "entry_leaf",
    "note_signers",
    "open_checkpoint",
    "place_hold",
    "probe_witness",
    "read_witness",
    "record_hash",
    "release_hold",
    "sign_checkpoint",
    "verify_archive",
    "verify_consistency",
    "verify_inclusion",
    "witness_line",
]
