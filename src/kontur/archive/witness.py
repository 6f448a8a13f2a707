"""The witness file: an append-only copy of every signed checkpoint, kept where the archive
writer cannot rewrite it (another mount, another host, a file with the append-only attribute).

One JSON object per line, ``{"at": <wall time>, "note": "<signed note>"}``. Lines are only
ever appended (``O_APPEND``, fsynced). A torn last line, from a crash mid-write, is reported
and skipped; every other malformed line is an error, because a witness that can be edited
silently proves nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from kontur.archive.errors import ArchiveError

__all__ = ["WitnessError", "WitnessLine", "append_witness", "read_witness"]


class WitnessError(ArchiveError):
    """The witness file is unreadable or holds a line that is not a witnessed checkpoint."""


@dataclass(frozen=True, slots=True)
class WitnessLine:
    """One witnessed checkpoint: its 1-based line number, when it was written, the note."""

    line: int
    at: float
    note: str


def append_witness(path: Path, at: float, note: str) -> None:
    """Append one checkpoint and fsync; creates the file (0600) on first use."""
    line = json.dumps({"at": at, "note": note}, sort_keys=True, separators=(",", ":")) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_witness(path: Path) -> tuple[list[WitnessLine], bool]:
    """Every witnessed checkpoint, and whether a torn last line was skipped."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise WitnessError(
            f"witness {path}: expected a readable file, got {exc.strerror}"
        ) from None
    lines = data.split(b"\n")
    torn = lines[-1] != b""
    out: list[WitnessLine] = []
    for number, raw in enumerate(lines[:-1], start=1):
        out.append(_parse(path, number, raw))
    return out, torn


def _parse(path: Path, number: int, raw: bytes) -> WitnessLine:
    try:
        obj = json.loads(raw)
    except ValueError:
        raise WitnessError(
            f"witness {path}: line {number}: expected JSON, got other bytes"
        ) from None
    if not isinstance(obj, dict) or set(obj) != {"at", "note"}:
        raise WitnessError(
            f"witness {path}: line {number}: expected {{at, note}}, got {raw[:60]!r}"
        )
    at, note = obj["at"], obj["note"]
    if not isinstance(at, int | float) or isinstance(at, bool) or not isinstance(note, str):
        raise WitnessError(f"witness {path}: line {number}: expected a number and a note")
    return WitnessLine(number, float(at), note)
