"""Installed model releases: write-once directories and a rollback-proof version index.

Layout under the store root::

    ROOT/
      _index.json             highest version per name, digests recorded at install
      _lock                   serialises installs (flock)
      <name>/<version>/       release.json, model file(s), release.sig; files 0400, dir 0500

Rules (ADR 0009):

- a release is verified before it is installed, and the bytes written are the verified
  bytes held in memory, never a second read of the source directory; the caller names the
  releases it accepts (``expected_names``), so a validly signed other model is refused;
- a version directory is written to a temporary directory beside it and renamed into place
  in one step, so a reader sees either nothing or the whole release;
- a version strictly lower than the highest one ever installed for its name is refused
  (:class:`RollbackRefused`); the highest is the larger of the index's record and the
  version directories on disk, so deleting ``_index.json`` does not reopen old versions;
- installing the same version again is a no-op when the release digest is the same and
  refused otherwise (:class:`VersionConflict`);
- :meth:`ReleaseStore.load` re-verifies from disk and checks the digest recorded at
  install; :meth:`ReleaseStore.recheck` only re-hashes the files (for a background monitor).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kontur._private import FILE_MODE, WRITE_ONCE_MODE, fsync_dir, open_private, private_dir
from kontur.clock import Clock
from kontur.release.audit import AuditPolicy, check_audit
from kontur.release.errors import (
    ReleaseNotFound,
    RollbackRefused,
    SignatureInvalid,
    StoreCorrupt,
    VersionConflict,
)
from kontur.release.manifest import MANIFEST_NAME
from kontur.release.signing import SIGNATURE_NAME, Trust, VerifiedRelease, verify_release

__all__ = ["INDEX_NAME", "InstalledRelease", "ReleaseStore", "default_store_root"]

#: Release names start with [a-z0-9], so ``_index.json`` and ``_lock`` never collide with one.
INDEX_NAME = "_index.json"
LOCK_NAME = "_lock"
_INDEX_SCHEMA = "kontur.release-store/1"


def default_store_root() -> Path:
    """``$KONTUR_DATA_DIR/releases``, else ``$XDG_DATA_HOME/kontur/releases``
    (``~/.local/share/kontur/releases``)."""
    if data := os.environ.get("KONTUR_DATA_DIR"):
        return Path(data) / "releases"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kontur" / "releases"


@dataclass(frozen=True)
class InstalledRelease:
    """What the index records for one installed version."""

    name: str
    version: int
    digest: str
    signer: str
    #: SHA-256 hex of every file in the version directory, ``release.sig`` included.
    files: dict[str, str]

    def to_json(self) -> dict[str, object]:
        return {"digest": self.digest, "signer": self.signer, "files": self.files}


def _write_file(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _rmtree(path: Path) -> None:
    for p in (path, *path.rglob("*")):
        with contextlib.suppress(OSError):
            p.chmod(0o700 if p.is_dir() else 0o600)
    shutil.rmtree(path, ignore_errors=True)


def _hash_file(path: Path) -> str:
    """SHA-256 hex of a regular file, streamed; a symlink is refused, not followed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise SignatureInvalid(f"{path}: expected a regular file, got {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class ReleaseStore:
    """Installed releases under ``root`` (created on first install)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- index -------------------------------------------------------------------------

    def _read_index(self) -> dict[str, dict[str, object]]:
        path = self.root / INDEX_NAME
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StoreCorrupt(f"{path}: expected a readable index, got {exc.strerror}") from None
        try:
            obj = json.loads(raw)
            if obj["schema"] != _INDEX_SCHEMA or not isinstance(obj["releases"], dict):
                raise ValueError(f"schema {obj['schema']!r}")
            releases: dict[str, dict[str, object]] = obj["releases"]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreCorrupt(f"{path}: expected a {_INDEX_SCHEMA} index, got {exc!r}") from None
        return releases

    def _write_index(self, releases: dict[str, dict[str, object]]) -> None:
        data = {"schema": _INDEX_SCHEMA, "releases": releases}
        tmp = self.root / f".{INDEX_NAME}.{secrets.token_hex(4)}"
        _write_file(tmp, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), FILE_MODE)
        os.replace(tmp, self.root / INDEX_NAME)
        fsync_dir(self.root)

    def _record(self, name: str, version: int) -> InstalledRelease | None:
        entry = self._read_index().get(name, {})
        versions = entry.get("versions", {})
        rec = versions.get(str(version)) if isinstance(versions, dict) else None
        if rec is None:
            return None
        try:
            return InstalledRelease(
                name, version, str(rec["digest"]), str(rec["signer"]), dict(rec["files"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreCorrupt(
                f"index entry {name}@{version}: expected a record, got {exc!r}"
            ) from None

    # -- queries -----------------------------------------------------------------------

    def installed(self, name: str) -> tuple[int, ...]:
        """The versions of ``name`` recorded as installed, ascending."""
        versions = self._read_index().get(name, {}).get("versions", {})
        return tuple(sorted(int(v) for v in versions)) if isinstance(versions, dict) else ()

    def highest(self, name: str) -> int | None:
        """The highest version ever installed for ``name`` (index or disk), or ``None``."""
        recorded = self._read_index().get(name, {}).get("highest")
        found = [int(recorded)] if isinstance(recorded, int) else []
        base = self.root / name
        if base.is_dir():
            found += [int(p.name) for p in base.iterdir() if p.name.isdigit()]
        return max(found, default=None)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        private_dir(self.root)
        with os.fdopen(open_private(self.root / LOCK_NAME), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- install -----------------------------------------------------------------------

    def install(
        self,
        directory: Path,
        trust: Trust,
        clock: Clock,
        *,
        expected_names: tuple[str, ...],
        platform: str | None = None,
        audit_policy: AuditPolicy | None = None,
    ) -> VerifiedRelease:
        """Verify the release in ``directory`` and install it write-once; see the module rules.

        ``expected_names``: the release names this caller runs; any other is refused
        (:class:`~kontur.release.errors.ReleaseNameMismatch`), an empty tuple refuses all.
        ``audit_policy``: the site's floor on the release's robustness audit (ADR 0033),
        checked before anything is written (:class:`~kontur.release.errors.AuditRefused`).
        """
        release = verify_release(
            directory,
            public_key=trust.public_key,
            ca_certs=trust.ca_certs,
            platform=platform,
            expected_names=expected_names,
            signer_policy=trust.signer_policy,
            clock=clock,
        )
        m = release.manifest.manifest
        if audit_policy is not None:
            check_audit(m, release.file_digests, audit_policy)
        with self._locked():
            existing = self._record(m.name, m.version)
            if existing is not None:
                if existing.digest != release.digest:
                    raise VersionConflict(
                        f"release {release.model_id}: expected digest {existing.digest} "
                        f"(installed), got {release.digest}"
                    )
                self.recheck(m.name, m.version)
                return release
            highest = self.highest(m.name)
            if highest is not None and m.version < highest:
                raise RollbackRefused(
                    f"release {m.name}: expected version >= {highest} (installed), got {m.version}"
                )
            record = self._place(release)
            self._remember(record)
        return release

    def _place(self, release: VerifiedRelease) -> InstalledRelease:
        """Write the verified bytes to a temporary directory, then rename it into place."""
        m = release.manifest.manifest
        contents = {
            MANIFEST_NAME: release.manifest.raw,
            **release.files,
            SIGNATURE_NAME: release.signature,
        }
        record = InstalledRelease(
            m.name,
            m.version,
            release.digest,
            release.signer,
            {n: hashlib.sha256(b).hexdigest() for n, b in sorted(contents.items())},
        )
        base = self.root / m.name
        final = base / str(m.version)
        if final.exists():
            # Left by an install that stopped before the index was written.
            self._adopt(final, record)
            return record
        private_dir(base)
        tmp = base / f".tmp-{m.version}-{secrets.token_hex(4)}"
        tmp.mkdir(mode=0o700)
        try:
            for fname, data in contents.items():
                _write_file(tmp / fname, data, WRITE_ONCE_MODE)
            fsync_dir(tmp)
            tmp.chmod(0o500)  # write-once: no group/other bit (ADR 0021)
            os.rename(tmp, final)
        except BaseException:
            _rmtree(tmp)
            raise
        fsync_dir(base)
        return record

    def _adopt(self, final: Path, record: InstalledRelease) -> None:
        present = {p.name: _hash_file(p) for p in final.iterdir() if p.is_file()}
        if present != record.files:
            raise VersionConflict(
                f"release {record.name}@{record.version}: expected {final} to be absent or to "
                f"hold digest {record.digest}, got other files"
            )

    def _remember(self, record: InstalledRelease) -> None:
        releases = self._read_index()
        entry = releases.setdefault(record.name, {})
        versions = entry.setdefault("versions", {})
        assert isinstance(versions, dict)
        versions[str(record.version)] = record.to_json()
        highest = entry.get("highest")
        entry["highest"] = max(record.version, highest if isinstance(highest, int) else 0)
        self._write_index(releases)

    # -- load and recheck --------------------------------------------------------------

    def record(self, name: str, version: int | None = None) -> InstalledRelease:
        """What the index recorded at install (the highest version when ``version`` is None);
        :class:`ReleaseNotFound` when not installed."""
        return self._require(name, version)

    def _require(self, name: str, version: int | None) -> InstalledRelease:
        if version is None:
            versions = self.installed(name)
            if not versions:
                raise ReleaseNotFound(f"release {name}: expected an installed version, got none")
            version = versions[-1]
        record = self._record(name, version)
        if record is None:
            raise ReleaseNotFound(
                f"release {name}@{version}: expected installed, got not installed"
            )
        return record

    def load(
        self,
        name: str,
        version: int | None = None,
        *,
        trust: Trust,
        clock: Clock,
        platform: str | None = None,
    ) -> VerifiedRelease:
        """Re-verify an installed release from disk (the highest when ``version`` is None)."""
        record = self._require(name, version)
        release = verify_release(
            self.root / name / str(record.version),
            public_key=trust.public_key,
            ca_certs=trust.ca_certs,
            platform=platform,
            expected_names=(name,),
            signer_policy=trust.signer_policy,
            clock=clock,
        )
        m = release.manifest.manifest
        if (m.name, m.version, release.digest) != (record.name, record.version, record.digest):
            raise SignatureInvalid(
                f"installed release {record.name}@{record.version}: expected digest "
                f"{record.digest} (recorded at install), got {release.model_id} {release.digest}"
            )
        return release

    def recheck(self, name: str, version: int) -> None:
        """Re-hash the installed files against the digests recorded at install; raise on any
        changed, missing or extra file. Cheap: no signature check, no manifest parse."""
        record = self._require(name, version)
        where = self.root / name / str(version)
        try:
            present = sorted(p.name for p in where.iterdir())
        except OSError as exc:
            raise SignatureInvalid(
                f"installed release {name}@{version}: expected {where}, got {exc.strerror}"
            ) from None
        if present != sorted(record.files):
            raise SignatureInvalid(
                f"installed release {name}@{version}: expected files {sorted(record.files)}, "
                f"got {present}"
            )
        for fname, want in sorted(record.files.items()):
            got = _hash_file(where / fname)
            if got != want:
                raise SignatureInvalid(
                    f"installed release {name}@{version}: changed file {fname} "
                    f"(expected sha256 {want}, got {got})"
                )
