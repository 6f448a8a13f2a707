"""The outcome of archive verification (:func:`kontur.archive.verify_archive`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BadRecord", "VerifyReport"]


@dataclass(frozen=True, slots=True)
class BadRecord:
    """The first record that fails verification, and why."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What verification found.

    ``records`` and ``segments`` count the records and segment files whose own checks passed,
    ``head`` is their tree root (format 2) or last chain hash (format 1). ``removed`` counts
    segments whose bytes retention removed (each with its tombstone record). ``checkpoint``
    describes the newest signed checkpoint (``None`` when there is none or for format 1),
    ``witness`` the witness file when one was given.
    """

    ok: bool
    records: int
    segments: int
    head: str
    first_bad: BadRecord | None = None
    format: int = 2
    removed: int = 0
    checkpoint: dict[str, Any] | None = field(default=None, hash=False)
    witness: dict[str, Any] | None = field(default=None, hash=False)
    notes: tuple[str, ...] = ()
    """What verification saw that is not damage (e.g. a writer that died while opening)."""

    def to_json(self) -> dict[str, object]:
        """``{ok, records, first_bad, segments, head, checkpoint, witness, removed, format,
        notes}``."""
        bad = (
            None
            if self.first_bad is None
            else {"index": self.first_bad.index, "reason": self.first_bad.reason}
        )
        return {
            "ok": self.ok,
            "records": self.records,
            "first_bad": bad,
            "segments": self.segments,
            "head": self.head,
            "checkpoint": self.checkpoint,
            "witness": self.witness,
            "removed": self.removed,
            "format": self.format,
            "notes": list(self.notes),
        }
