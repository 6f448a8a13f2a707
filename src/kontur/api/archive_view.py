"""Read-only views of the archive for the API: pages of records, and inclusion proofs.

The API opens the archive with :meth:`kontur.archive.Archive.open_readonly` for each call (a
read-only SQLite connection sees only committed records; the supervisor is the one writer).
Records are only ever read through the archive's public surface (``iter_records``,
``inclusion_proof``, ``root_at``, ``checkpoints``), and every payload goes out through
:func:`kontur.redact.redact`, so a source URL with credentials never leaves in clear.

Paging is by archive index and bounded twice: at most ``limit`` records returned, at most
``scan_limit`` records of the asked kinds read (SQLite selects the kinds with the archive's
kind index, newest first for a tail). Without a start, a page is the *tail*: the newest
matching records among the last ``scan_limit`` of those kinds, newest last, and
``next_index`` is the tree size (poll from there).
With a start, it *follows* from there, and ``next_index`` is where the next page begins.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kontur.archive import Archive, Record, verify_inclusion
from kontur.archive.errors import ArchiveInputError
from kontur.redact import redact

__all__ = [
    "EVENT_KINDS",
    "PROOF_KINDS",
    "Page",
    "first_index_at",
    "inclusion",
    "open_archive",
    "page",
    "record_json",
]

#: What ``GET /events`` shows (never ``audit``: that is ``GET /audit``, audit:read).
EVENT_KINDS = frozenset({"decision", "verdict", "event", "violation", "camera", "state", "tamper"})
#: Records ``GET /events/{index}/proof`` proves (the events, and the segments they rest on).
PROOF_KINDS = EVENT_KINDS | {"segment"}


@contextlib.contextmanager
def open_archive(data_dir: Path) -> Iterator[Archive]:
    """The archive of ``data_dir``, read-only, closed on exit (ArchiveNotFound if none)."""
    arc = Archive.open_readonly(data_dir)
    try:
        yield arc
    finally:
        arc.close()


def record_json(rec: Record) -> dict[str, Any]:
    """A record as the API shows it: index, kind, at, redacted payload, leaf hash."""
    return {
        "index": rec.index,
        "kind": rec.kind,
        "at": rec.at,
        "payload": redact(rec.payload),
        "leaf": rec.hash,
    }


@dataclass(frozen=True, slots=True)
class Page:
    """One page of matching records (newest last) and where the next page starts."""

    records: tuple[Record, ...]
    next_index: int
    size: int

    def to_json(self, key: str) -> dict[str, Any]:
        """``{key: [...], "next_index": ..., "size": ...}``."""
        return {
            key: [record_json(r) for r in self.records],
            "next_index": self.next_index,
            "size": self.size,
        }


def page(
    arc: Archive,
    kinds: frozenset[str],
    accept: Callable[[Record], bool] | None = None,
    *,
    start: int | None,
    limit: int,
    scan_limit: int,
    until: float | None = None,
) -> Page:
    """The records of ``kinds`` that ``accept`` takes (all, without it; see the module for
    tail and follow); records after ``until`` (archive time) end a follow early.

    SQLite selects the kinds (the archive's kind index), so ``scan_limit`` bounds only the
    records of those kinds parsed and tested here.
    """
    size = arc.records
    take = accept or (lambda _r: True)
    if start is None:
        return Page(_tail(arc, kinds, take, limit, scan_limit, size), size, size)
    out: list[Record] = []
    nxt = max(start, 0)
    for n, rec in enumerate(arc.iter_records(nxt, kind=kinds)):
        if rec.index >= size or n == scan_limit:
            break
        if until is not None and rec.at > until:
            return Page(tuple(out), rec.index, size)
        nxt = rec.index + 1
        if take(rec):
            out.append(rec)
            if len(out) == limit:
                return Page(tuple(out), nxt, size)
    else:
        nxt = size  # no record of these kinds left: poll from the tree size
    return Page(tuple(out), nxt, size)


def _tail(
    arc: Archive,
    kinds: frozenset[str],
    take: Callable[[Record], bool],
    limit: int,
    scan_limit: int,
    size: int,
) -> tuple[Record, ...]:
    found: list[Record] = []  # newest first
    stop, scanned = size, 0
    while len(found) < limit and scanned < scan_limit:
        want = min(scan_limit - scanned, max(limit, 64))
        chunk = arc.tail(kinds, want, stop)
        found += [r for r in reversed(chunk) if take(r)]
        scanned += len(chunk)
        if len(chunk) < want:
            break
        stop = chunk[0].index
    return tuple(reversed(found[:limit]))


def first_index_at(arc: Archive, at: float) -> int:
    """The first index whose record is at or after ``at`` (bisect; records are in time order
    unless the supervisor's clock stepped back, which only shifts the page start)."""
    lo, hi = 0, arc.records
    while lo < hi:
        mid = (lo + hi) // 2
        rec = next(arc.iter_records(mid), None)
        if rec is None or rec.at >= at:
            hi = mid
        else:
            lo = mid + 1
    return lo


def inclusion(arc: Archive, index: int, size: int | None) -> dict[str, Any]:
    """An RFC 9162 inclusion proof of record ``index``, checked before it is handed out.

    Without ``size``, the proof is against the newest signed checkpoint that covers the
    record (so it verifies against a signed note), or the whole tree when none does yet.
    ArchiveInputError for an index or size outside the tree.
    """
    have = arc.records
    if not 0 <= index < have:
        raise ArchiveInputError(f"index: expected 0..{have - 1}, got {index}")
    checkpoints = {cp_size: note for cp_size, _at, note in arc.checkpoints() if cp_size <= have}
    if size is None:
        covering = [s for s in checkpoints if s > index]
        size = max(covering) if covering else have
    if not index < size <= have:
        raise ArchiveInputError(f"size: expected {index + 1}..{have}, got {size}")
    rec = next(arc.iter_records(index))
    proof = arc.inclusion_proof(index, size)
    root = arc.root_at(size)
    verify_inclusion(bytes.fromhex(rec.hash), index, size, proof, root)
    return {
        "index": index,
        "kind": rec.kind,
        "tree_size": size,
        "leaf": rec.hash,
        "root": root.hex(),
        "proof": [h.hex() for h in proof],
        "checkpoint": checkpoints.get(size),
        "origin": arc.origin,
        "key": str(arc.verifier_key),
    }
