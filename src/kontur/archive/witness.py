"""The witness file: an append-only copy of every signed checkpoint, kept where the archive
writer cannot rewrite it (another mount, another host, a file with the append-only attribute).

One JSON object per line, ``{"at": <wall time>, "note": "<signed note>"}``. Lines are only
ever appended (``O_APPEND``, fsynced). A crash mid-write leaves a torn line; the next writer
first ends it with a newline, so its own line stays whole. Torn lines are reported by number
and skipped: they carry nothing signed, so skipping them cannot make a forgery pass, and
every line that does parse must hold a checkpoint signed by the archive key.
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
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = "\n" + line  # end a line torn by a crash, keep ours whole
        os.write(fd, line.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_witness(path: Path) -> tuple[list[WitnessLine], list[int]]:
    """Every witnessed checkpoint, and the numbers of the torn lines that were skipped."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise WitnessError(
            f"witness {path}: expected a readable file, got {exc.strerror}"
        ) from None
    out: list[WitnessLine] = []
    torn: list[int] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw:
            continue
        parsed = _parse(number, raw)
        if parsed is None:
            torn.append(number)
        else:
            out.append(parsed)
    return out, torn


def _parse(number: int, raw: bytes) -> WitnessLine | None:
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(obj, dict) or set(obj) != {"at", "note"}:
        return None
    at, note = obj["at"], obj["note"]
    if not isinstance(at, int | float) or isinstance(at, bool) or not isinstance(note, str):
        return None
    return WitnessLine(number, float(at), note)
