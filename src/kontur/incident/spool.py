"""Request files: how ``kontur incident`` reaches a running site (ADR 0029). A trust boundary.

While ``kontur run`` holds the archive (it has one writer), ``kontur incident`` cannot act on
it. It drops its :class:`~kontur.wire.messages.IncidentRequest` as
``DATA_DIR/run/incidents/<request_id>.json`` with :func:`drop` (the dir 0700; a temporary
``.incident-*`` file 0600, fsynced, then renamed, so no reader ever sees half a request), and
the supervisor's loop takes it on its next tick with :func:`take`.

Whatever lies in that dir is read as hostile input: a stray or crafted entry must never crash
recording, nor make the supervisor follow a link or read without bound. :func:`take`, for each
entry (in name order, at most :data:`MAX_PER_TAKE` per call):

1. skips a temporary file younger than :data:`TEMP_GRACE_S` (a CLI mid-write);
2. checks the name (``<32 hex>.json``), opens it without following a link, insists on a
   regular file and reads at most :data:`MAX_REQUEST_BYTES`;
3. removes the entry, whatever it held (a dir too), before anything is acted on;
4. parses the bytes strictly with the wire's own model: its ``request_id`` must be the
   name's, and it must have been made within :data:`MAX_AGE_S` of now (a request a dead site
   never took must not run at the next start).

What it returns is the request, or a :class:`Refused` entry with a one-line reason that the
supervisor archives as a refused incident. An entry that could not be removed is reported
once and then skipped (the caller passes it back in ``skip``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from kontur._private import fsync_dir, private_dir
from kontur.wire.messages import IncidentRequest

__all__ = [
    "MAX_AGE_S",
    "MAX_PER_TAKE",
    "MAX_REQUEST_BYTES",
    "SPOOL_DIR",
    "Refused",
    "drop",
    "spool_dir",
    "take",
    "withdraw",
]

log = logging.getLogger("kontur.incident")

#: Where request files wait, relative to the data dir.
SPOOL_DIR = Path("run") / "incidents"
#: A request file is a few hundred bytes; anything larger than this is refused unread.
MAX_REQUEST_BYTES = 16 * 1024
#: Entries taken per call (the rest wait for the next tick: the loop's work stays bounded).
MAX_PER_TAKE = 8
#: A request made longer ago than this (or this far in the future) is refused.
MAX_AGE_S = 300.0
#: Temporary files: written by :func:`drop`, renamed once complete.
TEMP_PREFIX = ".incident-"
#: A temporary file older than this was left by a CLI that died mid-write: it is removed.
TEMP_GRACE_S = 60.0

_NAME = re.compile(r"^([0-9a-f]{32})\.json$")


@dataclass(frozen=True, slots=True)
class Refused:
    """A spool entry that was not a valid request: what it was called, and why."""

    name: str
    """The entry's name, printable (``ascii``) and clipped."""
    request_id: str | None
    """The id its name claims, when the name is a valid one."""
    reason: str
    removed: bool = True
    """False when the entry could not be removed (it is skipped from then on)."""
    entry: str = ""
    """The entry's name as it is in the dir (what ``skip`` takes)."""


def spool_dir(data_dir: Path) -> Path:
    """``DATA_DIR/run/incidents``."""
    return Path(data_dir) / SPOOL_DIR


def drop(data_dir: Path, request: IncidentRequest) -> Path:
    """Write ``request`` where the running site takes it (see the module); its path."""
    folder = private_dir(spool_dir(data_dir))
    path = folder / f"{request.request_id}.json"
    fd, name = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=".tmp")  # 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(request.model_dump_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    fsync_dir(folder)
    return path


def withdraw(data_dir: Path, request_id: str) -> bool:
    """Remove a request file the site has not taken yet; True if it was still there."""
    if not _NAME.fullmatch(f"{request_id}.json"):
        raise ValueError(f"request id: expected 32 hex digits, got {request_id[:40]!r}")
    try:
        (spool_dir(data_dir) / f"{request_id}.json").unlink()
    except FileNotFoundError:
        return False
    return True


def take(
    data_dir: Path, now: float, skip: frozenset[str] = frozenset()
) -> list[IncidentRequest | Refused]:
    """The requests waiting (see the module); every entry returned is gone from the dir."""
    folder = spool_dir(data_dir)
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("incident requests: expected a readable %s, got %s", folder, exc.strerror)
        return []
    out: list[IncidentRequest | Refused] = []
    for name in names:
        if len(out) >= MAX_PER_TAKE:
            break
        if name in skip or (name.startswith(TEMP_PREFIX) and _young(folder / name, now)):
            continue
        out.append(_take_one(folder, name, now))
    return out


def _young(path: Path, now: float) -> bool:
    try:
        return now - path.lstat().st_mtime < TEMP_GRACE_S
    except OSError:
        return True  # gone already: nothing to do


def _take_one(folder: Path, name: str, now: float) -> IncidentRequest | Refused:
    shown = ascii(name)[:80]
    match = _NAME.fullmatch(name)
    rid = match.group(1) if match else None
    data: bytes | None = None
    why = None
    if name.startswith(TEMP_PREFIX):
        why = f"expected a request, got a temporary file older than {TEMP_GRACE_S:g} s"
    elif rid is None:
        why = f"expected a file named <32 hex digits>.json, got {shown}"
    else:
        data, why = _read(folder / name)
    removed = _remove(folder / name)
    if why is None:
        assert data is not None and rid is not None
        parsed = _parse(data, rid, now)
        if isinstance(parsed, IncidentRequest):
            return parsed
        why = parsed
    log.warning("incident request %s refused: %s", shown, why)
    return Refused(shown, rid, why[:300], removed, name)


def _read(path: Path) -> tuple[bytes | None, str | None]:
    """The bytes of a regular file (never through a link), at most MAX_REQUEST_BYTES."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, "expected a regular file, got a symbolic link"
        return None, f"expected a readable file, got {exc.strerror}"
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            return None, f"expected a regular file, got {_kind(mode)}"
        chunks, size = [], 0
        while size <= MAX_REQUEST_BYTES:
            chunk = os.read(fd, MAX_REQUEST_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            return None, f"expected at most {MAX_REQUEST_BYTES} bytes, got more"
        return b"".join(chunks), None
    except OSError as exc:
        return None, f"expected a readable file, got {exc.strerror}"
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or another special file"


def _remove(path: Path) -> bool:
    """Remove the entry (a dir with what is in it, never following a link); True if gone."""
    try:
        if stat.S_ISDIR(path.lstat().st_mode):
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return True
    except OSError as exc:
        log.error("incident requests: expected to remove %s, got %s", path, exc.strerror)
        with contextlib.suppress(OSError):
            return not path.exists() and not path.is_symlink()
        return False
    return True


def _parse(data: bytes, rid: str, now: float) -> IncidentRequest | str:
    """The request, or why not (one line)."""
    try:
        request = IncidentRequest.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"]) or "<root>"
        return f"expected an incident request, got {loc}: {first['msg']}"
    if request.request_id != rid:
        return f"expected request_id {rid} (the file's name), got {request.request_id}"
    if abs(now - request.at) > MAX_AGE_S:
        return (
            f"expected a request made within {MAX_AGE_S:g} s of now, got one made "
            f"{now - request.at:.0f} s before"
        )
    return request
