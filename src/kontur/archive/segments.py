"""Content-addressed, write-once segment files.

A segment with SHA-256 ``ab12…`` lives at ``<root>/segments/ab/ab12…`` and is mode 0400 (its
dirs 0700: video is the operator's alone, ADR 0021).
:meth:`SegmentStore.put` makes it durable before returning: write a temporary file in the same
directory, fsync it, make it read-only, ``os.replace`` it into place, fsync the directory.
Putting the same bytes again is a no-op once the existing file is checked. Nothing here ever
rewrites a segment; :meth:`SegmentStore.remove` deletes one only after the archive has made a
tombstone record for it durable (retention, ADR 0015), so history is never rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kontur._private import DIR_MODE, WRITE_ONCE_MODE, fsync_dir
from kontur.archive.errors import ArchiveInputError, SegmentCorrupt, SegmentMissing

__all__ = ["SEGMENT_MODE", "SegmentRef", "SegmentStore"]

#: Mode of every stored segment file (write-once; no group/other bit: ADR 0021).
SEGMENT_MODE = WRITE_ONCE_MODE

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """A stored segment: its SHA-256 (64 lowercase hex digits) and its size in bytes."""

    sha256: str
    size: int

    def __post_init__(self) -> None:
        _check_sha(self.sha256)
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ArchiveInputError(f"segment size: expected an int >= 0, got {self.size!r}")


class SegmentStore:
    """Write-once segment files under ``root/segments``. Creates nothing until :meth:`put`."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)
        self._dir = self._root / "segments"

    @property
    def root(self) -> Path:
        """The data directory this store lives in."""
        return self._root

    def path(self, sha256: str) -> Path:
        """Where the segment with this SHA-256 lives (whether or not it exists)."""
        _check_sha(sha256)
        return self._dir / sha256[:2] / sha256

    def put(self, data: bytes) -> SegmentRef:
        """Store ``data`` durably and return its reference; idempotent for equal content.

        Raises SegmentCorrupt if a file already under that name holds other content.
        """
        ref = SegmentRef(hashlib.sha256(data).hexdigest(), len(data))
        final = self.path(ref.sha256)
        _mkdir_durable(final.parent)
        if os.path.lexists(final):
            self.check(ref.sha256, ref.size)
            _fsync_file(final)  # it may be a file whose writer died before its dir fsync
        else:
            _write_once(final, data)
        fsync_dir(final.parent)
        return ref

    def read(self, sha256: str) -> bytes:
        """The segment's bytes, after checking they still hash to ``sha256``."""
        path = self.path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SegmentMissing(_missing(sha256, path)) from None
        except IsADirectoryError:
            raise SegmentCorrupt(f"{_short(sha256)}: expected a file, got a directory") from None
        got = hashlib.sha256(data).hexdigest()
        if got != sha256:
            raise SegmentCorrupt(f"{_short(sha256)}: expected sha256 {sha256}, got {got}")
        return data

    def remove(self, sha256: str) -> bool:
        """Delete a segment file (retention; its tombstone must already be durable).

        Returns False when it was already gone. The directory is fsynced.
        """
        path = self.path(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        fsync_dir(path.parent)
        return True

    def check(self, sha256: str, size: int) -> None:
        """Raise unless the segment exists as a regular file of ``size`` bytes with this hash."""
        path = self.path(sha256)
        try:
            st = path.lstat()
        except FileNotFoundError:
            raise SegmentMissing(_missing(sha256, path)) from None
        if not stat.S_ISREG(st.st_mode):
            raise SegmentCorrupt(f"{_short(sha256)}: expected a regular file, got another type")
        if st.st_size != size:
            raise SegmentCorrupt(f"{_short(sha256)}: expected size {size}, got {st.st_size}")
        got = _sha256_file(path)
        if got != sha256:
            raise SegmentCorrupt(f"{_short(sha256)}: expected sha256 {sha256}, got {got}")


def _check_sha(sha256: object) -> None:
    if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256):
        raise ArchiveInputError(f"segment id: expected 64 lowercase hex digits, got {sha256!r}")


def _short(sha256: str) -> str:
    return f"segment {sha256[:12]}…"


def _missing(sha256: str, path: Path) -> str:
    rel = Path("segments") / path.parent.name / path.name
    return f"{_short(sha256)}: expected file {rel}, got none"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _write_once(final: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), SEGMENT_MODE)
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _mkdir_durable(path: Path) -> None:
    """Create ``path`` (and missing parents), fsyncing each parent whose entries changed."""
    if path.is_dir():
        return
    _mkdir_durable(path.parent)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=DIR_MODE)
        os.chmod(path, DIR_MODE)  # the umask must not widen or narrow it
    fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
