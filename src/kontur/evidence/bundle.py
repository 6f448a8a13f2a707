"""Read a bundle file: the zip shell around :func:`kontur.evidence.verify.verify_bundle`.

Members are read by name and never extracted to disk. A file that is not a zip, holds a
member name twice (a reader would see only one of them), an absolute or ``..`` path, an
encrypted member, or more members or bytes than any export writes, is not a bundle
(:class:`~kontur.evidence.errors.BundleInputError`).
"""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from kontur.archive import VerifierKey
from kontur.evidence.errors import BundleInputError
from kontur.evidence.verify import VerifyReport, verify_bundle

__all__ = ["MAX_MEMBERS", "MAX_MEMBER_BYTES", "ZipBundle", "verify_file"]

MAX_MEMBERS = 1_000_000
MAX_MEMBER_BYTES = 1 << 36  # 64 GiB


class ZipBundle:
    """A bundle file opened for reading (a :class:`~kontur.evidence.verify.BundleSource`)."""

    def __init__(self, path: Path) -> None:
        try:
            self._zip = zipfile.ZipFile(path, "r")
        except (OSError, zipfile.BadZipFile, ValueError) as exc:
            raise BundleInputError(f"{path}: expected a zip bundle, got {_why(exc)}") from None
        try:
            self._infos = self._check(path)
        except BaseException:
            self._zip.close()
            raise

    def _check(self, path: Path) -> dict[str, zipfile.ZipInfo]:
        infos = self._zip.infolist()
        if len(infos) > MAX_MEMBERS:
            raise BundleInputError(f"{path}: expected at most {MAX_MEMBERS} members, got more")
        out: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            if name in out:
                raise BundleInputError(f"{path}: expected member {name!r} once, got it twice")
            if name.startswith("/") or ".." in name.split("/"):
                raise BundleInputError(f"{path}: expected relative member paths, got {name!r}")
            if info.flag_bits & 0x1:
                raise BundleInputError(f"{path}: expected no encrypted member, got {name!r}")
            if info.file_size > MAX_MEMBER_BYTES:
                raise BundleInputError(f"{path}: member {name!r} is larger than any export")
            out[name] = info
        return out

    def names(self) -> list[str]:
        """Every member name (directories excluded)."""
        return [n for n in self._infos if not n.endswith("/")]

    def size(self, name: str) -> int:
        """A member's uncompressed size."""
        return self._infos[name].file_size

    def read(self, name: str) -> bytes:
        """A member's bytes (KeyError if absent)."""
        try:
            return self._zip.read(self._infos[name])
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise BundleInputError(
                f"member {name!r}: expected readable bytes, got {_why(exc)}"
            ) from None

    def open(self, name: str) -> IO[bytes]:
        """A member as a seekable file (KeyError if absent)."""
        return self._zip.open(self._infos[name])

    def close(self) -> None:
        """Close the file."""
        self._zip.close()

    def __enter__(self) -> ZipBundle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def verify_file(path: Path, pinned: VerifierKey | None, reference_time: datetime) -> VerifyReport:
    """Open the bundle at ``path`` and verify it; BundleInputError when it is not one."""
    if path.is_dir():
        raise BundleInputError(f"{path}: expected a bundle file, got a directory")
    with ZipBundle(path) as bundle:
        try:
            return verify_bundle(bundle, pinned=pinned, reference_time=reference_time)
        except (zipfile.BadZipFile, NotImplementedError, EOFError) as exc:
            raise BundleInputError(f"{path}: expected readable members, got {_why(exc)}") from None


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__
