"""Offline verification of an archive: a pure re-check that reads and never writes.

:func:`verify_archive` opens ``data_dir/archive.sqlite`` read-only inside one read
transaction (one consistent snapshot, so a live writer does not disturb it). A missing file
raises :class:`ArchiveNotFound`; anything that is not an archive of format 1 or 2 is a report
with ``ok=False``. Format 1 archives go to :mod:`kontur.archive.verify_v1`. For format 2:

1. **Key.** The archive's verifier key comes from ``meta`` (or is pinned by the caller).
2. **Records**, in index order. Record ``i`` must have ``idx == i`` (a deleted record shows),
   a leaf equal to the RFC 9162 leaf hash of its fields (an edited record shows), a
   canonical JSON payload, and for a "segment" a file of that size and sha256, unless a
   "tombstone" record names that very record as removed by retention (then it counts in
   ``removed``; without one a missing file is ``missing``). A tombstone must name an
   earlier segment.
3. **Tree.** Every interior node the records imply must be stored as such (proofs are
   built from them), and no other.
4. **Checkpoints.** Every stored checkpoint must carry a valid signature by the archive key
   and commit to the root the records give at its size. A checkpoint larger than the tree
   means the tail was deleted or the database rolled back; a root that differs means history
   was rewritten. Consecutive checkpoints must also pass an RFC 9162 consistency proof.
5. **Witness** (when given): every witnessed checkpoint must verify under the same key and be
   consistent with the tree, so a rolled-back copy or a re-signed history that also dropped
   the stored checkpoints is still named.

Reasons name what was expected and what was found, e.g. ``record 4: expected leaf b1…, got
77…`` or ``checkpoint 12 (signed 2026-12-05T03:00:00Z): expected the tree to hold 12
records, got 9 (tail deleted or database rolled back)``. On a record failure ``records``,
``segments`` and ``head`` describe the prefix before it; on a checkpoint or witness failure
they describe every record (each checked on its own) and ``first_bad`` is the first record
no valid checkpoint vouches for.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kontur.archive._sqlite import (
    DB_NAME,
    FORMAT_V1,
    check_schema,
    connect_readonly,
    hot_journal,
    iter_rows,
    one_line,
)
from kontur.archive._tree import SqliteNodes, entry_leaf
from kontur.archive.archive import load_meta
from kontur.archive.checkpoint import Checkpoint, VerifierKey, open_checkpoint
from kontur.archive.errors import ArchiveCorrupt, ArchiveError, SegmentMissing
from kontur.archive.merkle import EMPTY_ROOT, Frontier, consistency_proof, verify_consistency
from kontur.archive.record import RawRecord, Record, segment_ref_of
from kontur.archive.report import BadRecord, VerifyReport
from kontur.archive.segments import SegmentStore
from kontur.archive.verify_v1 import verify_rows_v1
from kontur.archive.witness import read_witness

__all__ = ["BadRecord", "VerifyReport", "verify_archive"]


def verify_archive(
    data_dir: Path, *, witness: Path | None = None, key: VerifierKey | None = None
) -> VerifyReport:
    """Re-check every record, node, checkpoint and segment in ``data_dir``; read-only.

    ``witness`` is a witness file to check the tree against; ``key`` pins the archive key
    (otherwise it is read from the archive). Raises ArchiveNotFound if there is no
    ``archive.sqlite`` and ArchiveError for an unreadable witness; every other problem is
    in the returned :class:`VerifyReport`.
    """
    data_dir = Path(data_dir)
    try:
        conn = connect_readonly(data_dir)
    except ArchiveCorrupt as exc:
        return VerifyReport(False, 0, 0, EMPTY_ROOT.hex(), BadRecord(0, f"record 0: {exc}"))
    try:
        conn.execute("BEGIN")  # one snapshot for every read below
        if check_schema(conn, data_dir / DB_NAME) == FORMAT_V1:
            return verify_rows_v1(iter_rows(conn, version=FORMAT_V1), SegmentStore(data_dir))
        report = _Verifier(conn, data_dir, key).run(witness)
        if hot_journal(data_dir):
            note = (
                "a writer died mid-transaction (archive.sqlite-journal): verified the archive "
                "as the next writer will see it, after replaying the journal on a copy"
            )
            report = dataclasses.replace(report, notes=(*report.notes, note))
        return report
    except sqlite3.Error as exc:
        reason = f"record 0: expected a readable archive.sqlite, got {one_line(exc)}"
        return VerifyReport(False, 0, 0, EMPTY_ROOT.hex(), BadRecord(0, reason))
    finally:
        conn.close()


@dataclass(frozen=True, slots=True)
class _Signed:
    """A checkpoint whose signature checked out, and where it came from."""

    where: str
    at: float
    checkpoint: Checkpoint


class _Fail(Exception):
    """Stops verification at a record (``index``) with a reason."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


class _Verifier:
    def __init__(self, conn: sqlite3.Connection, data_dir: Path, key: VerifierKey | None) -> None:
        self._conn = conn
        self._dir = data_dir
        self._store = SegmentStore(data_dir)
        self._pinned = key
        self._frontier = Frontier()
        self._roots: dict[int, bytes] = {0: EMPTY_ROOT}
        self._good: tuple[int, bytes] = (0, EMPTY_ROOT)
        self.segments = 0
        self.removed = 0

    def run(self, witness: Path | None) -> VerifyReport:
        try:
            vkey = self._key()
            signed = self._stored_checkpoints(vkey)
            witnessed, torn = self._witnessed(witness, vkey)
            for cp in signed + witnessed:
                self._roots.setdefault(cp.checkpoint.size, b"")
            self._records()
        except _Fail as fail:
            return self._report(BadRecord(fail.index, fail.reason), self._good)
        whole = (self._frontier.size, self._frontier.root)
        try:
            newest = self._check_signed(signed)
            self._check_signed(witnessed)
            if witness is not None and not witnessed:
                _check_unwritten(witness, signed)
        except _Fail as fail:
            return self._report(BadRecord(fail.index, fail.reason), whole)
        wit = None
        if witness is not None:
            wit = {
                "path": str(witness),
                "checkpoints": len(witnessed),
                "newest_size": max((w.checkpoint.size for w in witnessed), default=0),
                "torn_lines": torn,
            }
        return self._report(None, whole, newest, wit)

    def _report(
        self,
        bad: BadRecord | None,
        prefix: tuple[int, bytes],
        newest: _Signed | None = None,
        wit: dict[str, object] | None = None,
    ) -> VerifyReport:
        cp = None
        if newest is not None:
            c = newest.checkpoint
            cp = {
                "size": c.size,
                "root": c.root.hex(),
                "at": newest.at,
                "origin": c.origin,
                "unsigned_tail": self._frontier.size - c.size,
            }
        return VerifyReport(
            bad is None,
            prefix[0],
            self.segments,
            prefix[1].hex(),
            bad,
            removed=self.removed,
            checkpoint=cp,
            witness=wit,
        )

    def _key(self) -> VerifierKey:
        try:
            if not self._conn.execute("SELECT 1 FROM meta LIMIT 1").fetchone():
                if self._conn.execute("SELECT 1 FROM records LIMIT 1").fetchone():
                    raise _Fail(0, "expected the archive's origin and key in meta, got none")
                return self._pinned or VerifierKey("", bytes(32))
            _origin, vkey = load_meta(self._conn, self._dir / DB_NAME)
        except ArchiveError as exc:
            raise _Fail(0, f"meta: {exc}") from None
        if self._pinned is not None and self._pinned != vkey:
            raise _Fail(0, f"meta: expected the pinned archive key {self._pinned}, got {vkey}")
        return vkey

    def _stored_checkpoints(self, vkey: VerifierKey) -> list[_Signed]:
        out = []
        for size, at, note in self._conn.execute(
            "SELECT size, at, note FROM checkpoints ORDER BY size"
        ):
            where = f"checkpoint {size} (signed {_iso(at)})"
            try:
                cp = open_checkpoint(str(note), vkey)
            except ArchiveError as exc:
                raise _Fail(0, f"{where}: {exc} (forged or from another archive)") from None
            if cp.size != size:
                raise _Fail(0, f"{where}: expected the note to say size {size}, got {cp.size}")
            out.append(_Signed(where, float(at), cp))
        return out

    def _witnessed(
        self, witness: Path | None, vkey: VerifierKey
    ) -> tuple[list[_Signed], list[int]]:
        if witness is None:
            return [], []
        lines, torn = read_witness(witness)
        out = []
        for line in lines:
            where = f"witness {witness.name} line {line.line} (signed {_iso(line.at)})"
            try:
                out.append(_Signed(where, line.at, open_checkpoint(line.note, vkey)))
            except ArchiveError as exc:
                raise _Fail(0, f"{where}: {exc}") from None
        return out, torn

    def _records(self) -> None:
        tombstoned = self._tombstones()
        seen: dict[int, str] = {}
        nodes = _NodeCheck(self._conn)
        for row in iter_rows(self._conn):
            i = self._frontier.size
            edge = self._frontier.edge
            try:
                raw = RawRecord.from_row(row)
                if raw.index != i:
                    raise ArchiveCorrupt(f"expected index {i}, got {raw.index}")
                want = entry_leaf(raw.index, raw.kind, raw.at, raw.payload)
                if raw.leaf != want:
                    raise ArchiveCorrupt(f"expected leaf {want.hex()}, got {raw.leaf.hex()}")
                self._content(Record.from_raw(raw), tombstoned, seen)
                for level, idx, h in self._frontier.push(raw.leaf)[1:]:
                    nodes.expect(level, idx, h)
            except ArchiveError as exc:
                self._good = (i, Frontier(i, edge).root)
                raise _Fail(i, f"record {i}: {exc}") from None
            if self._frontier.size in self._roots:
                self._roots[self._frontier.size] = self._frontier.root
        self._good = (self._frontier.size, self._frontier.root)
        nodes.finish(self._frontier.size)

    def _content(self, record: Record, tombstoned: set[int], seen: dict[int, str]) -> None:
        if record.kind == "segment":
            ref = segment_ref_of(record.payload)
            seen[record.index] = ref.sha256
            try:
                self._store.check(ref.sha256, ref.size)
            except SegmentMissing:
                if record.index not in tombstoned:
                    raise
                self.removed += 1
            self.segments += 1
        elif record.kind == "tombstone":
            at, sha = record.payload.get("segment_index"), record.payload.get("sha256")
            if not isinstance(at, int) or seen.get(at) != sha:
                raise ArchiveCorrupt(f"tombstone: expected an earlier segment record, got {at!r}")

    def _tombstones(self) -> set[int]:
        """Indexes of the segment records a tombstone names (each one record, ADR 0015)."""
        rows = self._conn.execute("SELECT payload FROM records WHERE kind = 'tombstone'")
        out: set[int] = set()
        for (payload,) in rows:
            try:
                index = json.loads(payload).get("segment_index")
            except (ValueError, AttributeError, TypeError):
                continue  # the record pass names it
            if isinstance(index, int):
                out.add(index)
        return out

    def _check_signed(self, signed: list[_Signed]) -> _Signed | None:
        size = self._frontier.size
        good = 0
        newest = None
        for s in sorted(signed, key=lambda s: s.checkpoint.size):
            cp = s.checkpoint
            if cp.size > size:
                raise _Fail(
                    size,
                    f"{s.where}: expected the tree to hold {cp.size} records, got {size} "
                    "(tail deleted or database rolled back)",
                )
            root = self._roots[cp.size]
            if root != cp.root:
                raise _Fail(
                    good,
                    f"{s.where}: expected root {cp.root.hex()} at size {cp.size}, the records "
                    f"give {root.hex()} (history rewritten)",
                )
            if newest is not None:
                self._consistent(newest, s)
            good, newest = cp.size, s
        return newest

    def _consistent(self, old: _Signed, new: _Signed) -> None:
        a, b = old.checkpoint, new.checkpoint
        try:
            proof = consistency_proof(SqliteNodes(self._conn, self._dir / DB_NAME), a.size, b.size)
            verify_consistency(a.size, b.size, a.root, b.root, proof)
        except (ArchiveError, ValueError) as exc:
            raise _Fail(a.size, f"{new.where}: not consistent with {old.where}: {exc}") from None


class _NodeCheck:
    """Streams the stored ``nodes`` level by level and matches them to recomputed ones."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._levels: dict[int, Iterator[tuple[int, bytes]]] = {}

    def _level(self, level: int) -> Iterator[tuple[int, bytes]]:
        if level not in self._levels:
            cur = self._conn.execute(
                "SELECT idx, hash FROM nodes WHERE level = ? ORDER BY idx", (level,)
            )
            self._levels[level] = ((int(r[0]), bytes(r[1])) for r in cur)
        return self._levels[level]

    def expect(self, level: int, idx: int, h: bytes) -> None:
        got = next(self._level(level), None)
        if got != (idx, h):
            shown = "none" if got is None else f"index {got[0]} hash {got[1].hex()}"
            want = f"tree node level {level} index {idx} hash {h.hex()}"
            raise ArchiveCorrupt(f"expected {want}, got {shown}")

    def finish(self, size: int) -> None:
        levels = [int(r[0]) for r in self._conn.execute("SELECT DISTINCT level FROM nodes")]
        for level in levels:
            extra = next(self._level(level), None)
            if extra is not None:
                where = f"tree node level {level} index {extra[0]}"
                raise _Fail(size, f"{where}: expected none beyond the records, got one")


def _iso(at: float) -> str:
    try:
        return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return repr(at)


def _check_unwritten(witness: Path, signed: list[_Signed]) -> None:
    """A witness holding no checkpoint fails when the archive signed one after the witness
    file was last written: it was never written, or was emptied. One configured after the
    newest checkpoint has missed nothing yet (the next checkpoint is its first)."""
    late = [s for s in signed if s.at > witness.stat().st_mtime]
    if late:
        raise _Fail(
            0,
            f"witness {witness.name}: expected the archive's signed checkpoints witnessed "
            f"(the newest covers {late[-1].checkpoint.size} records, signed after the witness "
            "was last written), got none: the witness was not written, or was emptied",
        )
