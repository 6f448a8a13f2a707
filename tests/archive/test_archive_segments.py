"""SegmentStore: content-addressed, durable, write-once files."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from kontur.archive import (
    ArchiveCorrupt,
    ArchiveInputError,
    SegmentCorrupt,
    SegmentMissing,
    SegmentRef,
    SegmentStore,
)

DATA = b"\x00\x00\x00\x01\x65" + bytes(range(256)) * 40
SHA = hashlib.sha256(DATA).hexdigest()


def test_put_stores_content_addressed_read_only_file(tmp_path: Path) -> None:
    store = SegmentStore(tmp_path)
    ref = store.put(DATA)
    assert ref == SegmentRef(SHA, len(DATA))
    path = tmp_path / "segments" / SHA[:2] / SHA
    assert store.path(SHA) == path
    assert path.read_bytes() == DATA
    assert stat.S_IMODE(path.stat().st_mode) == 0o400  # write-once, no group/other bit (ADR 0021)
    assert os.listdir(path.parent) == [SHA]  # no temporary file left behind
    assert store.read(SHA) == DATA
    store.check(SHA, len(DATA))


def test_put_is_idempotent_for_equal_content(tmp_path: Path) -> None:
    store = SegmentStore(tmp_path)
    first = store.put(DATA)
    mtime = store.path(SHA).stat().st_mtime_ns
    assert store.put(DATA) == first
    assert store.path(SHA).stat().st_mtime_ns == mtime


def test_put_refuses_to_adopt_a_file_with_other_content(tmp_path: Path) -> None:
    store = SegmentStore(tmp_path)
    path = store.path(SHA)
    path.parent.mkdir(parents=True)
    path.write_bytes(DATA[:-1] + b"\x00")
    with pytest.raises(ArchiveCorrupt, match=f"segment {SHA[:12]}…: expected sha256 {SHA}, got "):
        store.put(DATA)
    assert path.read_bytes() == DATA[:-1] + b"\x00"  # the evidence is left as found


def test_store_creates_nothing_until_put(tmp_path: Path) -> None:
    SegmentStore(tmp_path / "absent").path(SHA)
    assert not (tmp_path / "absent").exists()


def test_check_missing(tmp_path: Path) -> None:
    with pytest.raises(SegmentMissing, match=f"expected file segments/{SHA[:2]}/{SHA}, got none"):
        SegmentStore(tmp_path).check(SHA, len(DATA))
    with pytest.raises(SegmentMissing):
        SegmentStore(tmp_path).read(SHA)


def test_check_size_differs(tmp_path: Path) -> None:
    store = SegmentStore(tmp_path)
    store.put(DATA)
    with pytest.raises(SegmentCorrupt, match=f"expected size {len(DATA) + 1}, got {len(DATA)}"):
        store.check(SHA, len(DATA) + 1)


def test_check_and_read_hash_differs(tmp_path: Path) -> None:
    store = SegmentStore(tmp_path)
    store.put(DATA)
    path = store.path(SHA)
    path.chmod(0o644)
    path.write_bytes(b"\x01" + DATA[1:])
    bad = hashlib.sha256(b"\x01" + DATA[1:]).hexdigest()
    expected = f"segment {SHA[:12]}…: expected sha256 {SHA}, got {bad}"
    with pytest.raises(SegmentCorrupt) as info:
        store.check(SHA, len(DATA))
    assert str(info.value) == expected
    with pytest.raises(SegmentCorrupt, match="expected sha256"):
        store.read(SHA)


def test_check_refuses_a_directory(tmp_path: Path) -> None:
    store = SegmentStore(tmp_path)
    store.path(SHA).mkdir(parents=True)
    with pytest.raises(SegmentCorrupt, match="expected a regular file"):
        store.check(SHA, 0)


@pytest.mark.parametrize("sha", ["", "AB" * 32, "g" * 64, SHA[:-1], "../" + SHA[3:]])
def test_path_refuses_a_bad_segment_id(tmp_path: Path, sha: str) -> None:
    with pytest.raises(ArchiveInputError, match="segment id: expected 64 lowercase hex digits"):
        SegmentStore(tmp_path).path(sha)


def test_empty_segment(tmp_path: Path) -> None:
    store = SegmentStore(tmp_path)
    ref = store.put(b"")
    assert ref.size == 0
    assert store.read(ref.sha256) == b""
