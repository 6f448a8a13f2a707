"""The archive's RFC 9162 Merkle log over SQLite (format 2, ADR 0015).

The log entry of record ``i`` is exactly::

    entry_i = uint64be(i) ‖ kind ‖ 0x00 ‖ at ‖ 0x00 ‖ payload

with ``kind``, ``at`` (``repr`` of the double) and ``payload`` (canonical JSON bytes) as in
format 1 (``_chain.py``); its leaf hash is ``SHA-256(0x00 ‖ entry_i)``. ``records.leaf`` holds
that hash, ``nodes`` every complete subtree above it, so an inclusion or consistency proof is
O(log n) primary-key look-ups. :class:`MerkleLog` keeps the right edge in memory and returns,
per append, the rows to insert; the tree root is the archive's head.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kontur.archive._chain import canonical_at
from kontur.archive.errors import ArchiveCorrupt
from kontur.archive.merkle import Frontier, leaf_hash

__all__ = ["Appended", "MerkleLog", "SqliteNodes", "entry_bytes", "entry_leaf"]


def entry_bytes(index: int, kind: str, at: float, payload: bytes) -> bytes:
    """The log entry of one record (see the module docstring)."""
    return b"".join(
        (
            struct.pack(">Q", index),
            kind.encode("ascii"),
            b"\x00",
            canonical_at(at),
            b"\x00",
            payload,
        )
    )


def entry_leaf(index: int, kind: str, at: float, payload: bytes) -> bytes:
    """RFC 9162 leaf hash of one record."""
    return leaf_hash(entry_bytes(index, kind, at, payload))


class SqliteNodes:
    """Reads stored subtree hashes: level 0 from ``records.leaf``, higher from ``nodes``."""

    def __init__(self, conn: sqlite3.Connection, db: Path) -> None:
        self._conn = conn
        self._db = db

    def __call__(self, level: int, index: int) -> bytes:
        if level == 0:
            row = self._conn.execute("SELECT leaf FROM records WHERE idx = ?", (index,)).fetchone()
        else:
            row = self._conn.execute(
                "SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, index)
            ).fetchone()
        if row is None or not isinstance(row[0], bytes) or len(row[0]) != 32:
            raise ArchiveCorrupt(
                f"{self._db}: expected a stored tree node at level {level} index {index}, got "
                f"{'none' if row is None else 'a malformed one'}"
            )
        return bytes(row[0])


@dataclass(frozen=True, slots=True)
class Appended:
    """One append: the record's index and leaf hash, and the interior nodes it completed."""

    index: int
    leaf: bytes
    nodes: Sequence[tuple[int, int, bytes]]


class MerkleLog:
    """The growing tree's right edge (size, root) plus the rows each append adds."""

    def __init__(self, frontier: Frontier | None = None) -> None:
        self._frontier = frontier if frontier is not None else Frontier()

    @classmethod
    def load(cls, conn: sqlite3.Connection, db: Path) -> MerkleLog:
        """Resume from the committed records: size, the stored edge, and a check of the tail."""
        try:
            count, last = conn.execute("SELECT COUNT(*), MAX(idx) FROM records").fetchone()
            if count and last != count - 1:
                raise ArchiveCorrupt(f"{db}: expected indexes 0..{count - 1}, got max index {last}")
            if count:
                _check_last(conn, db, last)
            nodes = SqliteNodes(conn, db)
            edge = [nodes(level, idx) for level, idx in Frontier.edge_nodes(count)]
        except sqlite3.Error as exc:
            raise ArchiveCorrupt(f"{db}: expected a readable archive, got {exc}") from None
        return cls(Frontier(count, edge))

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._frontier.size

    @property
    def head(self) -> bytes:
        """The tree root."""
        return self._frontier.root

    @property
    def frontier(self) -> Frontier:
        """A copy of the right edge (to rewind to after a failed batch)."""
        return Frontier(self._frontier.size, self._frontier.edge)

    def append(self, kind: str, at: float, payload: bytes) -> Appended:
        """Add one record's leaf; return what to store."""
        index = self._frontier.size
        leaf = entry_leaf(index, kind, at, payload)
        made = self._frontier.push(leaf)
        return Appended(index, leaf, made[1:])


def _check_last(conn: sqlite3.Connection, db: Path, last: int) -> None:
    row = conn.execute(
        "SELECT kind, at, payload, leaf FROM records WHERE idx = ?", (last,)
    ).fetchone()
    kind, at, payload, leaf = row
    if not (isinstance(kind, str) and isinstance(at, float) and isinstance(payload, bytes)):
        raise ArchiveCorrupt(f"{db}: record {last}: expected kind, at and payload, got other types")
    want = entry_leaf(last, kind, at, payload)
    if leaf != want:
        got = leaf.hex() if isinstance(leaf, bytes) else repr(leaf)
        raise ArchiveCorrupt(f"{db}: record {last}: expected leaf {want.hex()}, got {got}")
