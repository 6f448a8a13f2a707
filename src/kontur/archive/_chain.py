"""Record hashing for the archive's hash chain. Pure: no I/O, no clock.

The hash of record ``i`` is defined exactly as::

    hash_i = SHA-256( prev_i ‖ uint64be(i) ‖ kind ‖ 0x00 ‖ at ‖ 0x00 ‖ payload )

where

- ``prev_i`` is the raw 32-byte hash of record ``i-1``; for ``i = 0`` (genesis) it is 32 zero
  bytes. The ``prev`` and ``hash`` columns store these as 64 lowercase hex digits;
- ``uint64be(i)`` is the 0-based record index as an 8-byte unsigned big-endian integer;
- ``kind`` is the ASCII kind, which matches ``^[a-z_]{1,32}$`` and so never holds 0x00;
- ``at`` is ``repr(at)`` in ASCII: Python's shortest round-trip form of the IEEE-754 double
  stored in the ``at REAL`` column (``1700000000.0``, ``1700000000.25``; exponent form such as
  ``1e+16`` only outside ``1e-4 <= |at| < 1e16``). It never holds 0x00;
- ``payload`` is the exact stored bytes of the canonical JSON object,
  ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
  allow_nan=False)``. It comes last, so its length needs no prefix.

The fixed-width prefix and the two 0x00 separators make the encoding unambiguous.

:class:`Log` is the seam for the RFC 9162 Merkle log that replaces this chain (ADR 0004):
``append`` returns the :class:`Link` the ``prev`` and ``hash`` columns store, and ``head`` is
the value that commits to every entry so far (the last hash here; the tree root there).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Protocol

from kontur.archive.errors import ChainBroken

__all__ = ["GENESIS", "ChainChecker", "HashChain", "Link", "Log", "canonical_at", "record_hash"]

#: ``prev`` of record 0.
GENESIS = bytes(32)


def canonical_at(at: float) -> bytes:
    """The canonical byte form of a record's wall time (see the module docstring)."""
    return repr(float(at)).encode("ascii")


def record_hash(prev: bytes, index: int, kind: str, at: float, payload: bytes) -> bytes:
    """SHA-256 of one record, chained to ``prev`` (the formula in the module docstring)."""
    if len(prev) != 32:
        raise ValueError(f"expected a 32-byte prev hash, got {len(prev)} bytes")
    h = hashlib.sha256(prev)
    h.update(struct.pack(">Q", index))
    h.update(kind.encode("ascii"))
    h.update(b"\x00")
    h.update(canonical_at(at))
    h.update(b"\x00")
    h.update(payload)
    return h.digest()


@dataclass(frozen=True, slots=True)
class Link:
    """What one append adds to a log: the entry's index, the head before it, and its hash."""

    index: int
    prev: bytes
    hash: bytes


class Log(Protocol):
    """An append-only log of archive records (a hash chain now, an RFC 9162 tree later)."""

    @property
    def size(self) -> int:
        """Number of entries appended so far."""
        ...

    @property
    def head(self) -> bytes:
        """The value that commits to every entry so far (the last hash, or a tree root)."""
        ...

    def append(self, kind: str, at: float, payload: bytes) -> Link:
        """Append one record and return the link the archive stores for it."""
        ...


class HashChain:
    """The bare hash chain: ``head`` is the hash of the last record, or :data:`GENESIS`.

    ``HashChain(size, head)`` resumes a chain that already holds ``size`` records.
    """

    def __init__(self, size: int = 0, head: bytes = GENESIS) -> None:
        if size < 0 or len(head) != 32:
            raise ValueError(f"expected size >= 0 and a 32-byte head, got {size}, {len(head)}")
        self._size = size
        self._head = head

    @property
    def size(self) -> int:
        """Number of records in the chain."""
        return self._size

    @property
    def head(self) -> bytes:
        """Hash of the last record, or :data:`GENESIS` for an empty chain."""
        return self._head

    def append(self, kind: str, at: float, payload: bytes) -> Link:
        """Hash the next record onto the chain and return its link."""
        link = Link(self._size, self._head, record_hash(self._head, self._size, kind, at, payload))
        self._size += 1
        self._head = link.hash
        return link


class ChainChecker:
    """Re-checks stored records against a fresh :class:`Log`, in order.

    Each :meth:`feed` checks, in this order: the index is the next one (contiguity), the
    stored ``prev`` equals the log's head, the stored ``hash`` equals the recomputed one. The
    first failure raises :class:`ChainBroken`; feeding after that is a caller's bug
    (``RuntimeError``), because nothing after a broken link can be trusted.
    """

    def __init__(self, log: Log) -> None:
        self._log = log
        self._broken = False

    def feed(self, index: int, kind: str, at: float, payload: bytes, prev: str, hash: str) -> None:
        """Check one stored record (``prev`` and ``hash`` as stored, in hex)."""
        if self._broken:
            raise RuntimeError("expected no records after a broken link, got another")
        self._broken = True
        if index != self._log.size:
            raise ChainBroken(f"expected index {self._log.size}, got {index}")
        if prev != self._log.head.hex():
            raise ChainBroken(f"expected prev {self._log.head.hex()}, got {prev}")
        link = self._log.append(kind, at, payload)
        if hash != link.hash.hex():
            raise ChainBroken(f"expected hash {link.hash.hex()}, got {hash}")
        self._broken = False
