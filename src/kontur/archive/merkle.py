"""RFC 9162 Merkle tree hashing and proofs. Pure: no I/O, no clock.

Definitions (RFC 9162 §2.1.1)::

    leaf hash   = SHA-256(0x00 ‖ entry)
    node hash   = SHA-256(0x01 ‖ left ‖ right)
    MTH({})     = SHA-256()                     (the empty tree)
    MTH(D[n])   = node(MTH(D[0:k]), MTH(D[k:n]))  with k the largest power of 2 below n

Proof *generation* reads complete subtrees through a ``NodeSource``: ``node(level, index)``
returns the hash of the perfect subtree holding leaves ``[index·2^level, (index+1)·2^level)``,
which the archive stores as it appends (so a proof costs O(log n) look-ups). Proof
*verification* is the RFC's own algorithm (§2.1.3.2 inclusion, §2.1.4.2 consistency) and
needs nothing but the proof; a failure raises :class:`ProofError` naming what differs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from kontur.archive.errors import ArchiveError

__all__ = [
    "EMPTY_ROOT",
    "Frontier",
    "NodeSource",
    "ProofError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_of",
    "subtree_root",
    "verify_consistency",
    "verify_inclusion",
]

#: ``node(level, index)`` → the stored hash of that perfect subtree.
NodeSource = Callable[[int, int], bytes]

#: MTH of the empty tree: SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ArchiveError):
    """An inclusion or consistency proof does not check out."""


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash of one log entry."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes, by the RFC's recursive definition (reference form)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


def subtree_root(node: NodeSource, start: int, end: int) -> bytes:
    """MTH of leaves ``[start, end)`` from stored perfect subtrees.

    ``start`` must be aligned the way RFC 9162's recursion aligns it (a multiple of the
    largest power of two that fits ``end - start``), which every range below satisfies.
    """
    size = end - start
    if size <= 0:
        raise ValueError(f"expected a non-empty range, got [{start}, {end})")
    if size & (size - 1) == 0:
        level = size.bit_length() - 1
        return node(level, start >> level)
    k = _split(size)
    return node_hash(subtree_root(node, start, start + k), subtree_root(node, start + k, end))


def inclusion_proof(node: NodeSource, index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < size:
        raise ValueError(f"expected 0 <= index < size, got index {index}, size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(subtree_root(node, start + k, end))
            end = start + k
        else:
            path.append(subtree_root(node, start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof(node: NodeSource, old: int, new: int) -> list[bytes]:
    """The proof that the tree of ``old`` leaves is a prefix of ``new`` (RFC 9162 §2.1.4.1)."""
    if not 0 < old <= new:
        raise ValueError(f"expected 0 < old <= new, got old {old}, new {new}")
    if old == new:
        return []
    proof: list[bytes] = []
    start, end, complete = 0, new, True
    while True:
        if old - start == end - start:  # SUBPROOF(m, D[m], b)
            if not complete:
                proof.append(subtree_root(node, start, end))
            break
        k = _split(end - start)
        if old - start <= k:
            proof.append(subtree_root(node, start + k, end))
            end = start + k
        else:
            proof.append(subtree_root(node, start, start + k))
            start, complete = start + k, False
    proof.reverse()
    return proof


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2; raises ProofError unless ``proof`` puts ``leaf`` at ``index``."""
    if not 0 <= index < size:
        raise ProofError(f"inclusion: expected index below tree size {size}, got {index}")
    if len(leaf) != 32 or len(root) != 32 or any(len(p) != 32 for p in proof):
        raise ProofError("inclusion: expected 32-byte leaf, root and proof hashes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError(
                f"inclusion: expected a shorter proof for size {size}, got {len(proof)}"
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"inclusion: expected a longer proof for size {size}, got {len(proof)}")
    if r != root:
        raise ProofError(f"inclusion: expected root {root.hex()}, got {r.hex()}")


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2; raises ProofError unless tree ``old`` is a prefix of tree ``new``."""
    if not 0 < old <= new:  # RFC 9162 defines consistency from a non-empty tree only
        raise ProofError(f"consistency: expected 0 < old <= new, got {old} and {new}")
    if old == new:
        if proof or old_root != new_root:
            raise ProofError("consistency: expected equal roots and an empty proof, got others")
        return
    if len(old_root) != 32 or len(new_root) != 32 or any(len(p) != 32 for p in proof):
        raise ProofError("consistency: expected 32-byte roots and proof hashes")
    if not proof:
        raise ProofError("consistency: expected a proof, got an empty one")
    path = list(proof)
    if old & (old - 1) == 0:  # old is a power of two: its root starts the path
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency: expected a shorter proof, got extra hashes")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency: expected a longer proof, got too few hashes")
    if fr != old_root:
        raise ProofError(f"consistency: expected old root {old_root.hex()}, got {fr.hex()}")
    if sr != new_root:
        raise ProofError(f"consistency: expected new root {new_root.hex()}, got {sr.hex()}")


class Frontier:
    """The right edge of a growing tree: the perfect subtrees whose sizes sum to ``size``.

    ``push(leaf)`` returns the nodes the append completes, as ``(level, index, hash)``
    (the leaf itself first), for the caller to store; ``root`` folds the edge right to left.
    """

    def __init__(self, size: int = 0, edge: Sequence[bytes] = ()) -> None:
        if len(edge) != bin(size).count("1"):
            raise ValueError(f"expected {bin(size).count('1')} edge hashes, got {len(edge)}")
        self._size = size
        self._edge = list(edge)  # largest subtree first

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    @property
    def edge(self) -> tuple[bytes, ...]:
        """The perfect subtree roots of the right edge, largest first."""
        return tuple(self._edge)

    def push(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash; return every node it completes, lowest level first."""
        index, h, level = self._size, leaf, 0
        made = [(0, index, h)]
        while index & 1:
            h = node_hash(self._edge.pop(), h)
            index >>= 1
            level += 1
            made.append((level, index, h))
        self._edge.append(h)
        self._size += 1
        return made

    @property
    def root(self) -> bytes:
        """MTH of the leaves pushed so far."""
        if not self._edge:
            return EMPTY_ROOT
        r = self._edge[-1]
        for h in reversed(self._edge[:-1]):
            r = node_hash(h, r)
        return r

    @staticmethod
    def edge_nodes(size: int) -> list[tuple[int, int]]:
        """The ``(level, index)`` of each edge subtree of a tree of ``size``, largest first."""
        out: list[tuple[int, int]] = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                out.append((level, start >> level))
                start += 1 << level
        return out
