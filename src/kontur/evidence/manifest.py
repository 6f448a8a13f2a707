"""The bundle's manifest and record lines: frozen dataclasses built only through ``from_json``.

``manifest.json`` is not signed: nothing in it is trusted for what it says. It tells the
verifier where things are (which record proves which segment, which proof belongs to which
record) and restates facts every one of which is re-derived from signed or hashed data
(``kontur.evidence.verify``). ``records.jsonl`` holds the records themselves, one JSON object
a line, each with the exact payload bytes the archive hashed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from kontur.archive.record import KIND_PATTERN
from kontur.evidence.errors import BundleInputError

__all__ = [
    "CERT_DIR",
    "CHECKPOINT_NAME",
    "CLIP_NAME",
    "FORMAT",
    "KEY_NAME",
    "MANIFEST_NAME",
    "README_NAME",
    "RECORDS_NAME",
    "SEGMENT_DIR",
    "VERSION",
    "BundleRecord",
    "CheckpointRef",
    "FileEntry",
    "FileRole",
    "GopEntry",
    "GopRole",
    "Manifest",
    "RecordProof",
    "RecordScope",
    "SegmentEntry",
    "Span",
    "segment_name",
]

FORMAT = "kontur-evidence-bundle"
VERSION = 1
MANIFEST_NAME = "manifest.json"
README_NAME = "README.txt"
CHECKPOINT_NAME = "checkpoint.txt"
KEY_NAME = "archive-key.txt"
RECORDS_NAME = "records.jsonl"
CLIP_NAME = "clip.mp4"
SEGMENT_DIR = "segments/"
CERT_DIR = "certificates/"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_T = TypeVar("_T")


class FileRole(StrEnum):
    """What a file of the bundle is."""

    CLIP = "clip"
    SEGMENT = "segment"
    RECORDS = "records"
    CHECKPOINT = "checkpoint"
    KEY = "key"
    CERTIFICATE = "certificate"


class GopRole(StrEnum):
    """Why a GOP is in the clip: it belongs to the span, or it carries the last one's SEI."""

    SPAN = "span"
    LEAD_OUT = "lead_out"


class RecordScope(StrEnum):
    """``range``: one of the contiguous records ``span.first_index..last_index``; ``anchor``:
    a record from before the range that the evidence leans on (the camera's enrolment)."""

    RANGE = "range"
    ANCHOR = "anchor"


def segment_name(sha256: str) -> str:
    """The bundle path of a segment file."""
    return f"{SEGMENT_DIR}{sha256}.kseg"


def _get(obj: Mapping[str, Any], key: str, kind: type[_T], where: str) -> _T:
    value = obj.get(key)
    ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise BundleInputError(
            f"{where}: expected {key} as {kind.__name__}, got {type(value).__name__}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise BundleInputError(f"{where}: expected {key} finite, got {value!r}")
    return value  # type: ignore[return-value]


def _index(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = _get(obj, key, int, where)
    if value < 0:
        raise BundleInputError(f"{where}: expected {key} >= 0, got {value}")
    return value


def _hex64(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = _get(obj, key, str, where)
    if not _HEX64.fullmatch(value):
        raise BundleInputError(f"{where}: expected {key} as 64 hex digits, got {value[:70]!r}")
    return value


def _objects(obj: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    items = _get(obj, key, list, where)
    if not all(isinstance(i, dict) for i in items):
        raise BundleInputError(f"{where}: expected {key} as a list of objects")
    return items


def _enum(obj: Mapping[str, Any], key: str, kind: type[StrEnum], where: str) -> Any:
    value = _get(obj, key, str, where)
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise BundleInputError(f"{where}: expected {key} among {allowed}, got {value!r}") from None


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A file of the bundle: its path inside the zip, SHA-256, size and role."""

    name: str
    sha256: str
    size: int
    role: FileRole

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> FileEntry:
        """Parse one ``files`` entry."""
        where = f"manifest file {str(obj.get('name'))[:80]!r}"
        name = _get(obj, "name", str, where)
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise BundleInputError(f"{where}: expected a relative path inside the bundle")
        size = _index(obj, "size", where)
        return cls(name, _hex64(obj, "sha256", where), size, _enum(obj, "role", FileRole, where))

    def to_json(self) -> dict[str, Any]:
        """The manifest form."""
        return {"name": self.name, "sha256": self.sha256, "size": self.size, "role": self.role}


@dataclass(frozen=True, slots=True)
class SegmentEntry:
    """A segment of a GOP: its SHA-256 and the index of the ``segment`` record naming it."""

    sha256: str
    record: int

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SegmentEntry:
        """Parse one segment reference."""
        where = "manifest segment"
        return cls(_hex64(obj, "sha256", where), _index(obj, "record", where))

    def to_json(self) -> dict[str, Any]:
        """The manifest form."""
        return {"sha256": self.sha256, "record": self.record}


@dataclass(frozen=True, slots=True)
class GopEntry:
    """One GOP of the clip, in clip order: its segments and its ``verdict`` record, if any."""

    gop_index: int
    role: GopRole
    segments: tuple[SegmentEntry, ...]
    verdict: int | None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> GopEntry:
        """Parse one ``gops`` entry."""
        where = f"manifest GOP {obj.get('gop_index')!r}"
        segments = tuple(SegmentEntry.from_json(s) for s in _objects(obj, "segments", where))
        if not segments:
            raise BundleInputError(f"{where}: expected at least one segment, got none")
        verdict = None if obj.get("verdict") is None else _index(obj, "verdict", where)
        role = _enum(obj, "role", GopRole, where)
        return cls(_index(obj, "gop_index", where), role, segments, verdict)

    def to_json(self) -> dict[str, Any]:
        """The manifest form."""
        return {
            "gop_index": self.gop_index,
            "role": self.role,
            "segments": [s.to_json() for s in self.segments],
            "verdict": self.verdict,
        }


@dataclass(frozen=True, slots=True)
class RecordProof:
    """A record's index, kind and leaf hash, and its RFC 9162 audit path (hex, leaf up)."""

    index: int
    kind: str
    leaf: str
    proof: tuple[str, ...]
    scope: RecordScope

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> RecordProof:
        """Parse one ``records`` entry."""
        where = f"manifest record {obj.get('index')!r}"
        path = _get(obj, "proof", list, where)
        if not all(isinstance(h, str) and _HEX64.fullmatch(h) for h in path):
            raise BundleInputError(f"{where}: expected proof as a list of 64-hex-digit hashes")
        return cls(
            _index(obj, "index", where),
            _get(obj, "kind", str, where),
            _hex64(obj, "leaf", where),
            tuple(path),
            _enum(obj, "scope", RecordScope, where),
        )

    def to_json(self) -> dict[str, Any]:
        """The manifest form."""
        return {
            "index": self.index,
            "kind": self.kind,
            "leaf": self.leaf,
            "proof": list(self.proof),
            "scope": self.scope,
        }


@dataclass(frozen=True, slots=True)
class Span:
    """The time span asked for (unix seconds, inclusive) and the record range that covers it."""

    start: float
    end: float
    first_index: int
    last_index: int

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Span:
        """Parse the ``span`` object."""
        where = "manifest span"
        span = cls(
            _get(obj, "from", float, where),
            _get(obj, "to", float, where),
            _index(obj, "first_index", where),
            _index(obj, "last_index", where),
        )
        if span.start > span.end or span.first_index > span.last_index:
            raise BundleInputError(f"{where}: expected from <= to and first <= last, got {obj}")
        return span

    def to_json(self) -> dict[str, Any]:
        """The manifest form."""
        return {
            "from": self.start,
            "to": self.end,
            "first_index": self.first_index,
            "last_index": self.last_index,
        }


@dataclass(frozen=True, slots=True)
class CheckpointRef:
    """What the manifest says the signed checkpoint commits to (re-read from the note)."""

    size: int
    root: str

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CheckpointRef:
        """Parse the ``checkpoint`` object."""
        where = "manifest checkpoint"
        return cls(_index(obj, "size", where), _hex64(obj, "root", where))

    def to_json(self) -> dict[str, Any]:
        """The manifest form."""
        return {"file": CHECKPOINT_NAME, "size": self.size, "root": self.root}


@dataclass(frozen=True, slots=True)
class Manifest:
    """``manifest.json``: what the bundle holds and how its parts prove each other."""

    origin: str
    key: str
    checkpoint: CheckpointRef
    camera: str
    span: Span
    created_at: float
    created_by: str
    export_record: int
    gops: tuple[GopEntry, ...]
    files: tuple[FileEntry, ...]
    records: tuple[RecordProof, ...]

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse ``manifest.json``; BundleInputError names the first thing wrong."""
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BundleInputError(f"manifest: expected JSON, got {_one_line(exc)}") from None
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise BundleInputError(f"manifest: expected format {FORMAT!r}, got another document")
        if obj.get("version") != VERSION:
            raise BundleInputError(
                f"manifest: expected version {VERSION}, got {obj.get('version')!r}"
            )
        created = _get(obj, "created", dict, "manifest")
        return cls(
            origin=_get(obj, "origin", str, "manifest"),
            key=_get(obj, "key", str, "manifest"),
            checkpoint=CheckpointRef.from_json(_get(obj, "checkpoint", dict, "manifest")),
            camera=_get(obj, "camera", str, "manifest"),
            span=Span.from_json(_get(obj, "span", dict, "manifest")),
            created_at=_get(created, "at", float, "manifest created"),
            created_by=_get(created, "by", str, "manifest created"),
            export_record=_index(created, "export_record", "manifest created"),
            gops=tuple(GopEntry.from_json(g) for g in _objects(obj, "gops", "manifest")),
            files=tuple(FileEntry.from_json(f) for f in _objects(obj, "files", "manifest")),
            records=tuple(RecordProof.from_json(r) for r in _objects(obj, "records", "manifest")),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object written as ``manifest.json``."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "origin": self.origin,
            "key": self.key,
            "checkpoint": self.checkpoint.to_json(),
            "camera": self.camera,
            "span": self.span.to_json(),
            "created": {
                "at": self.created_at,
                "by": self.created_by,
                "export_record": self.export_record,
            },
            "gops": [g.to_json() for g in self.gops],
            "files": [f.to_json() for f in self.files],
            "records": [r.to_json() for r in self.records],
        }

    def to_bytes(self) -> bytes:
        """The bytes of ``manifest.json``."""
        return (json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n").encode("ascii")


@dataclass(frozen=True, slots=True)
class BundleRecord:
    """One archive record as the bundle carries it: the exact payload bytes that were hashed."""

    index: int
    kind: str
    at: float
    payload: bytes
    leaf: str

    @classmethod
    def from_json(cls, line: bytes) -> BundleRecord:
        """Parse one line of ``records.jsonl``."""
        try:
            obj = json.loads(line)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BundleInputError(
                f"{RECORDS_NAME}: expected JSON lines, got {_one_line(exc)}"
            ) from None
        if not isinstance(obj, dict):
            raise BundleInputError(f"{RECORDS_NAME}: expected an object per line")
        where = f"{RECORDS_NAME} record {obj.get('index')!r}"
        payload = _get(obj, "payload", str, where)
        if not payload.isascii():
            raise BundleInputError(f"{where}: expected an ASCII payload (canonical JSON)")
        kind = _get(obj, "kind", str, where)
        if not KIND_PATTERN.fullmatch(kind):
            raise BundleInputError(f"{where}: expected kind {KIND_PATTERN.pattern}, got {kind!r}")
        return cls(
            _index(obj, "index", where),
            kind,
            _get(obj, "at", float, where),
            payload.encode("ascii"),
            _hex64(obj, "leaf", where),
        )

    def to_json(self) -> bytes:
        """One line of ``records.jsonl`` (with its newline)."""
        obj = {
            "index": self.index,
            "kind": self.kind,
            "at": self.at,
            "payload": self.payload.decode("ascii"),
            "leaf": self.leaf,
        }
        return (json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")

    def parsed(self) -> dict[str, Any]:
        """The payload as a JSON object (an empty dict when it is not one)."""
        try:
            obj = json.loads(self.payload)
        except ValueError:
            return {}
        return obj if isinstance(obj, dict) else {}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
