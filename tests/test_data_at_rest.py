"""Data at rest is the operator's alone (ADR 0021): files 0600, write-once 0400, dirs 0700.

Every store is opened under a umask of 0o022 (the usual one, which would leave 0644 files and
0755 dirs); a data dir an older kontur left loose is tightened with a warning, and a dir that
is not kontur's to tighten is refused.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from kontur._private import DataDirUnsafe, secure_data_dir
from kontur.archive import Archive
from kontur.clock import ManualClock
from kontur.gate.sinks import LogSink
from kontur.ingest.inventory import FreshnessStore, Inventory
from kontur.runtime.supervisor import Supervisor

T0 = 1_790_000_000.0


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, int]:
    """``relative path: mode`` of the root and everything under it."""
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for p in root.rglob("*"):
        out[str(p.relative_to(root))] = stat.S_IMODE(p.lstat().st_mode)
    return out


def loose(root: Path) -> dict[str, str]:
    """Paths whose mode is not 0700 (dirs), 0400 (segments) or 0600 (other files)."""
    bad = {}
    for rel, mode in modes(root).items():
        p = root / rel
        if p.is_symlink():
            continue
        want = 0o700 if p.is_dir() else 0o400 if rel.startswith("segments/") else 0o600
        if mode != want:
            bad[rel] = f"expected {want:04o}, got {mode:04o}"
    return bad


def test_every_store_creates_private_files_under_umask_022(tmp_path: Path, umask_022: None) -> None:
    data, clock = tmp_path / "site" / "data", ManualClock(wall=T0)
    archive = Archive.open(data)
    archive.append_segment(b"gop bytes", {"gop_index": 0})
    inv = Inventory.open(data, clock)
    inv.init_ca()
    issued = inv.issue("cam1", data / "demo-camera")
    inv.enroll("cam1", issued.chain_path.read_bytes())
    inv.drain_to_archive(archive)
    fresh = FreshnessStore.open(data)
    sink = LogSink(data / "actions.jsonl")
    Supervisor(data / "run")
    (data / "run" / "logs" / "x.log").touch()  # a file the test makes: the helper must flag it
    try:
        names = set(modes(data))
        assert {"inventory.sqlite-wal", "inventory.sqlite-shm", "archive.sqlite-wal"} <= names
        assert {"site-ca.key", "site-ca.pem", "demo-camera/cam1.key", "run/specs"} <= names
        assert loose(data) == {"run/logs/x.log": "expected 0600, got 0644"}
    finally:
        sink.close()
        fresh.close()
        inv.close()
        archive.close()
    assert stat.S_IMODE((tmp_path / "site").stat().st_mode) == 0o700  # a parent it created


def test_a_loose_data_dir_is_tightened_with_a_warning(
    tmp_path: Path, umask_022: None, caplog: pytest.LogCaptureFixture
) -> None:
    # what an older kontur left: 0755 dirs, 0644 files, 0444 segments
    data = tmp_path / "old"
    (data / "segments" / "ab").mkdir(parents=True)
    (data / "segments" / "ab" / "ab12").write_bytes(b"video")
    (data / "segments" / "ab" / "ab12").chmod(0o444)
    (data / "inventory.sqlite").touch()
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    (data / "elsewhere").symlink_to(outside)
    with caplog.at_level(logging.WARNING), Inventory.open(data, ManualClock(wall=T0)):
        pass
    assert "expected a data dir of mode 0700, got 0755" in caplog.text
    assert "removed group/other access from 5 path(s)" in caplog.text
    assert loose(data) == {}
    assert stat.S_IMODE(outside.stat().st_mode) == 0o755  # a symlink is never followed
    caplog.clear()
    with caplog.at_level(logging.WARNING), Archive.open(data):
        pass
    assert caplog.text == ""  # a tight data dir costs one stat and says nothing


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        ("shared", "expected a data dir of kontur's own (mode 0700), got a shared dir of mode 17"),
        ("foreign", "expected a kontur data dir or an empty one, got a dir of mode 0755 holding"),
    ],
)
def test_a_dir_that_is_not_konturs_to_tighten_is_refused(
    tmp_path: Path, umask_022: None, setup: str, fragment: str
) -> None:
    target = tmp_path / setup
    target.mkdir()
    if setup == "shared":
        target.chmod(0o1777)
    else:
        (target / "notes.txt").write_text("mine")
    before = modes(target)
    with pytest.raises(DataDirUnsafe, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        secure_data_dir(target)
    with pytest.raises(DataDirUnsafe):
        Archive.open(target)
    assert modes(target) == before


def test_a_file_is_not_a_data_dir(tmp_path: Path) -> None:
    """A one-line KonturError (``kontur archive init FILE`` printed a traceback)."""
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataDirUnsafe, match="expected a data dir, got a file"):
        secure_data_dir(tmp_path / "f")
    with pytest.raises(DataDirUnsafe, match="expected a data dir, got a file"):
        Archive.open(tmp_path / "f")
