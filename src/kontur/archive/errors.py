"""Errors of the tamper-evident archive.

One root, one leaf per check::

    ArchiveError                    (kontur.errors.KonturError) archive store and verification
    ├── ArchiveNotFound             no archive.sqlite where one was expected
    ├── ArchiveLocked               another writer holds the archive
    ├── ArchiveInputError           a kind, payload or segment id the archive refuses
    ├── ArchiveWriteError           SQLite refused a write; the uncommitted batch is lost
    └── ArchiveCorrupt              stored data is not what was written
        ├── ChainBroken             a record's index, prev or hash does not check out
        ├── SegmentMissing          a referenced segment file is gone
        └── SegmentCorrupt          a segment file's type, size or sha256 differs

Messages say what was expected and what was found, on one line, e.g.
``segment 3fa2c1d09e7b…: expected sha256 3fa2…, got 9c01…``.
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = [
    "ArchiveCorrupt",
    "ArchiveError",
    "ArchiveInputError",
    "ArchiveLocked",
    "ArchiveNotFound",
    "ArchiveWriteError",
    "ChainBroken",
    "SegmentCorrupt",
    "SegmentMissing",
]


class ArchiveError(KonturError):
    """Root of every error the archive raises on purpose."""


class ArchiveNotFound(ArchiveError):
    """``archive.sqlite`` is absent where an existing archive was expected."""


class ArchiveLocked(ArchiveError):
    """Another writer (in this or another process) already holds the archive open."""


class ArchiveInputError(ArchiveError):
    """The caller passed a kind, payload or segment id that the archive refuses."""


class ArchiveWriteError(ArchiveError):
    """SQLite refused an insert or a commit; the records of the open batch are lost."""


class ArchiveCorrupt(ArchiveError):
    """What is stored is not what was written (tampering, bit rot, or not an archive)."""


class ChainBroken(ArchiveCorrupt):
    """A record's index, prev link or hash differs from what the chain says it must be."""


class SegmentMissing(ArchiveCorrupt):
    """A segment file that a record points to does not exist."""


class SegmentCorrupt(ArchiveCorrupt):
    """A segment file exists but is not a regular file, or its size or sha256 differ."""
