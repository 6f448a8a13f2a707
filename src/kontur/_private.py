"""Data at rest is the operator's alone: files 0600, write-once files 0400, dirs 0700 (ADR 0021).

The data dir holds video, the site CA's key, the camera inventory and the archive; a group or
other read bit on any of them leaks it. Every file and dir kontur creates there gets its mode
set explicitly (``fchmod``/``chmod`` after creating it), so the caller's umask neither widens
nor narrows it. SQLite's ``-wal`` and ``-shm`` files take the mode of their database, which
:func:`private_file` creates first.

A data dir an older kontur created with group or other bits (0755 under a umask of 022) is
tightened when it is opened (:func:`secure_data_dir`): the dir and everything under it lose
those bits, and the caller logs the returned warning. Tightening, not refusing: refusing
would stop a site at upgrade for a fix kontur can make itself, and the bits it removes
grant nothing kontur needs (only the one uid that owns the data dir reads it). Refused
(:class:`DataDirUnsafe`) are only a dir others may write (``/tmp``) and a loose dir holding
files that are not kontur's (a home dir given as ``--data-dir``): tightening those would
change what is not kontur's to change.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import stat
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from kontur.errors import KonturError

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "UNSAFE_CATEGORIES",
    "WRITE_ONCE_MODE",
    "DataDirUnsafe",
    "Tightened",
    "fsync_dir",
    "lazy_exports",
    "open_private",
    "printable",
    "private_dir",
    "private_file",
    "read_exact",
    "secure_data_dir",
    "unsafe_char",
]

#: Mode of every file kontur writes in the data dir.
FILE_MODE = 0o600
#: Mode of a write-once file (segments): the owner reads it, nobody writes it.
WRITE_ONCE_MODE = 0o400
#: Mode of every dir kontur creates in the data dir.
DIR_MODE = 0o700
_LOOSE = 0o077
#: Names that mark a dir as a kontur data dir (tightened, not refused, when found loose).
_OURS = frozenset(
    {"archive.sqlite", "archive.lock", "inventory.sqlite", "freshness.sqlite", "segments"}
)


class DataDirUnsafe(KonturError):
    """A data dir kontur may not make its own: shared with others, or holding foreign files."""


@dataclass(frozen=True, slots=True)
class Tightened:
    """What :func:`secure_data_dir` changed: the dir's old mode and the paths it chmodded."""

    data_dir: Path
    found_mode: int
    paths: tuple[Path, ...]
    failed: tuple[Path, ...] = ()

    @property
    def warning(self) -> str:
        """One line for the log: what was found, and what was done about it."""
        line = (
            f"{self.data_dir}: expected a data dir of mode 0700, got {self.found_mode:04o}: "
            f"removed group/other access from {len(self.paths)} path(s) (ADR 0021)"
        )
        if self.failed:
            line += f"; could not chmod {len(self.failed)}, e.g. {self.failed[0]}"
        return line


def lazy_exports(package: str, home: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's ``__getattr__`` (PEP 562) that imports each public name from its submodule
    (``home``: name -> submodule) on first use, so that mounting the command line, which
    imports every package's ``cli``, does not import what only the commands need.

    A lazy package must not export a name that is also one of its submodules: importing the
    submodule rebinds the package attribute to the module.
    """

    def __getattr__(name: str) -> Any:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__


def fsync_dir(path: Path) -> None:
    """Make a directory's entries durable (after a create, rename or unlink in it)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents as 0700; an existing dir is left as it is."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for p in reversed(missing):
        with contextlib.suppress(FileExistsError):
            p.mkdir(mode=DIR_MODE)
            os.chmod(p, DIR_MODE)  # mkdir's mode is masked by the umask
    return path


def private_file(path: Path) -> Path:
    """Create an empty ``path`` as 0600 unless it exists (before SQLite opens it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return Path(path)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return Path(path)


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_APPEND) -> int:
    """``os.open`` with mode 0600, tightening a file found with group/other bits; the fd."""
    fd = os.open(path, flags | os.O_CLOEXEC, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & _LOOSE:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def secure_data_dir(data_dir: Path) -> Tightened | None:
    """Create ``data_dir`` as 0700, or tighten one found with group/other bits.

    Returns what was tightened (log its :attr:`Tightened.warning`), or None when nothing
    needed it. Symlinks are never followed. Only a loose data dir is walked: inside a 0700
    dir nobody else reaches a file, so a tight one costs a single ``stat``. DataDirUnsafe for
    a dir others may write (``/tmp``), or a loose one holding files that are not kontur's.
    """
    data_dir = Path(data_dir)
    if not data_dir.exists():
        private_dir(data_dir)
        return None
    st = data_dir.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise DataDirUnsafe(f"{data_dir}: expected a data dir, got a file that is not one")
    found = stat.S_IMODE(st.st_mode)
    if not found & _LOOSE:
        return None
    if found & (stat.S_ISVTX | stat.S_IWOTH):
        raise DataDirUnsafe(
            f"{data_dir}: expected a data dir of kontur's own (mode 0700), got a shared dir "
            f"of mode {found:04o}"
        )
    entries = {p.name for p in data_dir.iterdir()}
    if entries and not entries & _OURS:
        raise DataDirUnsafe(
            f"{data_dir}: expected a kontur data dir or an empty one, got a dir of mode "
            f"{found:04o} holding other files (chmod 700 it, or choose a new dir)"
        )
    changed: list[Path] = []
    failed: list[Path] = []
    for p in (data_dir, *_walk(data_dir)):
        try:
            mode = stat.S_IMODE(p.lstat().st_mode)
            if mode & _LOOSE:
                os.chmod(p, mode & ~_LOOSE)
                changed.append(p)
        except OSError:
            failed.append(p)
    return Tightened(data_dir, found, tuple(changed), tuple(failed))


def _walk(root: Path) -> list[Path]:
    """Every file and dir under ``root``, symlinks excluded and not followed."""
    out: list[Path] = []
    for top, dirs, files in os.walk(root, followlinks=False):
        for name in (*dirs, *files):
            p = Path(top) / name
            if not p.is_symlink():
                out.append(p)
    return out


def read_exact(stream: BinaryIO, n: int) -> bytes:
    """Exactly ``n`` bytes from ``stream`` (a sandboxed child's stdin); EOFError when it ends
    first."""
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError(f"expected {n} bytes on stdin, got {n - left}")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def printable(text: str) -> str:
    """``text`` with every non-printable character (newlines, escapes) as ``?``: what a
    sandboxed child says goes into one-line errors, verdicts and logs."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


#: Unicode categories a one-line text (a reason, a name) may not hold: controls (a newline,
#: a terminal's escape), format characters (bidi overrides that reorder what is shown) and
#: the line and paragraph separators.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def unsafe_char(text: str) -> int | None:
    """The index of ``text``'s first character in :data:`UNSAFE_CATEGORIES`, or None."""
    for k, ch in enumerate(text):
        if unicodedata.category(ch) in UNSAFE_CATEGORIES:
            return k
    return None
