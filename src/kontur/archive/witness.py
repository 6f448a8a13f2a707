"""The witness file: an append-only copy of every signed checkpoint, kept where the archive
writer cannot rewrite it (another mount, another host, a file with the append-only attribute).

One JSON object per line, ``{"at": <wall time>, "note": "<signed note>"}``. Lines are only
ever appended (``O_APPEND``, fsynced). A crash mid-write leaves a torn line; the next writer
first ends it with a newline, so its own line stays whole. Torn lines (the start of a line,
cut short) are reported by number and skipped: they carry nothing signed, so skipping them
cannot make a forgery pass, and every line that does parse must hold a checkpoint signed by
the archive key. Any other line is not a witness's: the file is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kontur.archive.errors import ArchiveError

__all__ = [
    "WitnessError",
    "WitnessLine",
    "append_witness",
    "probe_witness",
    "read_witness",
    "witness_line",
]


class WitnessError(ArchiveError):
    """The witness file is unreadable or holds a line that is not a witnessed checkpoint."""


@dataclass(frozen=True, slots=True)
class WitnessLine:
    """One witnessed checkpoint: its 1-based line number, when it was written, the note."""

    line: int
    at: float
    note: str


def probe_witness(path: Path) -> None:
    """WitnessError unless kontur can append to ``path`` (created, 0600, when missing): a
    site is not started with a witness it would fail to write at its first checkpoint."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
    except OSError as exc:
        raise WitnessError(
            f"witness {path}: expected a file kontur can append to, got {exc.strerror}"
        ) from None


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
        if parsed is not None:
            out.append(parsed)
        elif raw.startswith(_HEAD) or _HEAD.startswith(raw):
            torn.append(number)  # the start of a line a crash cut short
        else:
            raise WitnessError(
                f"witness {path} line {number}: expected a witnessed checkpoint or the start "
                f"of one a crash cut short, got {raw[:40]!r}"
            )
    return out, torn


#: How every line :func:`append_witness` writes begins (sorted keys, no spaces).
_HEAD = b'{"at":'


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


def witness_line(report: Mapping[str, Any]) -> str:
    """One summary line of a verify report's ``witness`` part: how many checkpoints agree,
    and the torn lines skipped, by number."""
    torn = list(report.get("torn_lines") or [])
    shown = ", ".join(map(str, torn[:5])) + (", …" if len(torn) > 5 else "")
    cut = f"; skipped {len(torn)} line(s) a crash cut short ({shown})" if torn else ""
    return f"witness: {report['checkpoints']} checkpoint(s) agree{cut}"
