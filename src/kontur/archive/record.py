"""Archive records: the stored row (:class:`RawRecord`) and its parsed form (:class:`Record`).

Both are built only through ``from_row`` / ``from_raw``, which check every invariant. The exact
payload bytes that were hashed stay next to the parsed payload (``Record.payload_bytes``).
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kontur.archive.errors import ArchiveCorrupt, ArchiveInputError
from kontur.archive.segments import SegmentRef

__all__ = [
    "KINDS",
    "KIND_PATTERN",
    "JsonObject",
    "RawRecord",
    "RawRecordV1",
    "Record",
    "canonical_json",
    "check_kind",
    "segment_ref_of",
]

#: A JSON object as Python sees it.
JsonObject = dict[str, Any]

#: Every kind must match this (it is hashed with 0x00 separators, so no 0x00 may occur).
KIND_PATTERN = re.compile(r"^[a-z_]{1,32}$")

#: The kinds the rest of kontur writes. Others that match :data:`KIND_PATTERN` are accepted.
KINDS = frozenset(
    {
        "segment",
        "verdict",
        "detections",
        "decision",
        "state",
        "config",
        "model",
        "placement",
        "event",
        "camera",
        "violation",
        "tombstone",
        "hold",
        "hold_release",
        "export",
        "audit",
        "operator",
        "incident",
        "tamper",
        "manifest",
        "manifest_change",
    }
)

_T = TypeVar("_T")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def check_kind(kind: object) -> str:
    """Return ``kind`` if it matches :data:`KIND_PATTERN`; raise ArchiveInputError otherwise."""
    if not isinstance(kind, str) or not KIND_PATTERN.fullmatch(kind):
        raise ArchiveInputError(f"kind: expected {KIND_PATTERN.pattern}, got {kind!r}")
    return kind


def canonical_json(obj: object) -> bytes:
    """The canonical JSON bytes of a payload object (sorted keys, no spaces, ASCII, no NaN)."""
    if not isinstance(obj, dict):
        raise ArchiveInputError(f"payload: expected a JSON object (dict), got {type(obj).__name__}")
    try:
        text = json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise ArchiveInputError(
            f"payload: expected a JSON-serialisable object, got {_one_line(exc)}"
        ) from None
    return text.encode("ascii")


def segment_ref_of(payload: JsonObject) -> SegmentRef:
    """The segment a "segment" payload points to; ArchiveInputError if it names none."""
    sha, size = payload.get("sha256"), payload.get("size")
    if not isinstance(sha, str) or not _HEX64.fullmatch(sha):
        raise ArchiveInputError(f"segment payload: expected sha256 as 64 hex digits, got {sha!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ArchiveInputError(f"segment payload: expected size as an int >= 0, got {size!r}")
    return SegmentRef(sha256=sha, size=size)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One format-2 row ``(idx, kind, at, payload, leaf)`` exactly as stored, types checked."""

    index: int
    kind: str
    at: float
    payload: bytes
    leaf: bytes

    @classmethod
    def from_row(cls, row: tuple[object, ...]) -> RawRecord:
        """Parse a stored row; ArchiveCorrupt on any wrong type."""
        if len(row) != 5:
            raise ArchiveCorrupt(f"expected 5 columns, got {len(row)}")
        idx, kind, at, payload = _common(row)
        leaf = _typed("leaf", row[4], bytes)
        if len(leaf) != 32:
            raise ArchiveCorrupt(f"expected a 32-byte leaf hash, got {len(leaf)} bytes")
        return cls(idx, kind, at, payload, leaf)


@dataclass(frozen=True, slots=True)
class RawRecordV1:
    """One format-1 row ``(idx, kind, at, payload, prev, hash)`` (the bare hash chain)."""

    index: int
    kind: str
    at: float
    payload: bytes
    prev: str
    hash: str

    @classmethod
    def from_row(cls, row: tuple[object, ...]) -> RawRecordV1:
        """Parse a stored row; ArchiveCorrupt on any wrong type."""
        if len(row) != 6:
            raise ArchiveCorrupt(f"expected 6 columns, got {len(row)}")
        idx, kind, at, payload = _common(row)
        prev, hsh = _typed("prev", row[4], str), _typed("hash", row[5], str)
        return cls(idx, kind, at, payload, prev, hsh)


def _common(row: tuple[object, ...]) -> tuple[int, str, float, bytes]:
    idx = _typed("idx", row[0], int)
    kind = row[1]
    if not isinstance(kind, str) or not KIND_PATTERN.fullmatch(kind):
        raise ArchiveCorrupt(f"expected kind matching {KIND_PATTERN.pattern}, got {kind!r}")
    at = _typed("at", row[2], float)
    if not math.isfinite(at):
        raise ArchiveCorrupt(f"expected a finite at, got {at!r}")
    return idx, kind, at, _typed("payload", row[3], bytes)


@dataclass(frozen=True)
class Record:
    """One archived fact, as committed (or about to be) to the log.

    ``payload`` is the payload as stored, i.e. parsed back from its canonical JSON (tuples
    come back as lists), on first use. ``payload_bytes`` are the exact bytes that were
    hashed. ``hash`` is the record's RFC 9162 leaf hash (format 2) or chain hash (format 1),
    64 lowercase hex digits. Treat ``payload`` as read-only.
    """

    index: int
    kind: str
    at: float
    hash: str
    payload_bytes: bytes = field(repr=False)

    @functools.cached_property
    def payload(self) -> JsonObject:
        """The payload object (parsed lazily: an append need not parse what it just wrote)."""
        obj: JsonObject = json.loads(self.payload_bytes)
        return obj

    @classmethod
    def from_raw(cls, raw: RawRecord | RawRecordV1) -> Record:
        """Parse a stored row's payload; ArchiveCorrupt unless it is a canonical JSON object."""
        try:
            obj = json.loads(raw.payload)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ArchiveCorrupt(f"expected a JSON payload, got {_one_line(exc)}") from None
        if not isinstance(obj, dict):
            raise ArchiveCorrupt(f"expected a JSON object payload, got {type(obj).__name__}")
        try:
            canonical = canonical_json(obj)
        except ArchiveInputError as exc:  # e.g. NaN, which json.loads accepts
            raise ArchiveCorrupt(str(exc)) from None
        if canonical != raw.payload:
            raise ArchiveCorrupt("expected a canonical JSON payload, got a non-canonical one")
        digest = raw.leaf.hex() if isinstance(raw, RawRecord) else raw.hash
        record = cls(raw.index, raw.kind, raw.at, digest, raw.payload)
        record.__dict__["payload"] = obj  # already parsed and checked
        return record


def _typed(column: str, value: object, kind: type[_T]) -> _T:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ArchiveCorrupt(f"expected {column} as {kind.__name__}, got {type(value).__name__}")
    return value


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
