"""Archive: appending, batching, reopening, input checks and the append-only surface."""

from __future__ import annotations

import math
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kontur.archive import (
    Archive,
    ArchiveCorrupt,
    ArchiveInputError,
    ArchiveLocked,
    ArchiveNotFound,
    SegmentMissing,
    SegmentStore,
    verify_archive,
)
from kontur.archive._tree import entry_leaf
from kontur.archive.merkle import EMPTY_ROOT, root_of
from kontur.archive.record import Record
from kontur.clock import ManualClock

ZERO = EMPTY_ROOT.hex()


def _root(*records: Record) -> str:
    return root_of([bytes.fromhex(r.hash) for r in records]).hex()


RunSql = Callable[..., list[tuple[Any, ...]]]


def test_append_returns_a_chained_record(archive: Archive, clock: ManualClock) -> None:
    first = archive.append("config", {"b": 2, "a": (1, 2)})
    clock.advance(1.5)
    second = archive.append("event", {"text": "x"})
    assert (first.index, first.kind, first.at) == (0, "config", clock.wall() - 1.5)
    assert first.hash == entry_leaf(0, "config", first.at, first.payload_bytes).hex()
    assert first.payload == {"a": [1, 2], "b": 2}  # as stored: canonical JSON parsed back
    assert first.payload_bytes == b'{"a":[1,2],"b":2}'
    assert (second.index, second.at) == (1, clock.wall())
    assert second.hash == entry_leaf(1, "event", second.at, second.payload_bytes).hex()


def test_head_and_records_count_committed_records_only(archive: Archive) -> None:
    assert (archive.head, archive.records, archive.pending) == (ZERO, 0, 0)
    rec = archive.append("event", {})
    assert (archive.head, archive.records, archive.pending) == (ZERO, 0, 1)
    archive.flush()
    assert (archive.head, archive.records, archive.pending) == (rec.hash, 1, 0)


def test_batch_commits_at_batch_size(data_dir: Path, clock: ManualClock) -> None:
    with Archive.open(data_dir, clock, batch_size=3, batch_interval_s=60) as arc:
        recs = [arc.append("event", {}) for _ in range(2)]
        assert arc.records == 0
        recs.append(arc.append("event", {}))
        assert (arc.records, arc.head) == (3, _root(*recs))


def test_batch_commits_when_the_interval_passed(archive: Archive, clock: ManualClock) -> None:
    archive.append("event", {"n": 0})
    clock.advance(0.2)
    archive.append("event", {"n": 1})
    assert archive.records == 0
    clock.advance(0.05)
    archive.append("event", {"n": 2})
    assert archive.records == 3


def test_close_flushes_and_reopen_continues_the_chain(data_dir: Path, clock: ManualClock) -> None:
    with Archive.open(data_dir, clock) as arc:
        last = arc.append("event", {"n": 0})
    with Archive.open(data_dir, clock) as arc:
        assert (arc.records, arc.head) == (1, last.hash)
        nxt = arc.append("event", {"n": 1})
        assert nxt.index == 1
    with Archive.open_readonly(data_dir) as arc:
        assert arc.head == _root(last, nxt)
    assert verify_archive(data_dir).records == 2


def test_append_segment_stores_the_file_before_the_record(archive: Archive) -> None:
    rec = archive.append_segment(b"gop bytes", {"verdict": "AUTHENTIC", "gop_index": 7})
    sha = rec.payload["sha256"]
    assert rec.kind == "segment"
    assert rec.payload == {"sha256": sha, "size": 9, "verdict": "AUTHENTIC", "gop_index": 7}
    path = archive.segments.path(sha)
    assert path.read_bytes() == b"gop bytes"
    assert stat.S_IMODE(path.stat().st_mode) == 0o400


def test_segment_record_must_point_to_a_stored_file(archive: Archive) -> None:
    with pytest.raises(SegmentMissing, match=r"expected file segments/ab/(ab)+, got none"):
        archive.append("segment", {"sha256": "ab" * 32, "size": 3})
    stored = archive.segments.put(b"abc")
    rec = archive.append("segment", {"sha256": stored.sha256, "size": 3, "verdict": "MISSING"})
    assert rec.index == 0
    with pytest.raises(ArchiveInputError, match="segment payload: expected size as an int >= 0"):
        archive.append("segment", {"sha256": stored.sha256, "size": "3"})


def test_segment_meta_may_not_override_the_reference(archive: Archive) -> None:
    with pytest.raises(
        ArchiveInputError, match=r"segment meta: expected no sha256 or size key, got \['size'\]"
    ):
        archive.append_segment(b"x", {"size": 99})


def test_bad_meta_is_refused_before_a_file_is_written(archive: Archive) -> None:
    with pytest.raises(ArchiveInputError, match="payload: expected a JSON-serialisable object"):
        archive.append_segment(b"x", {"verdict": object()})
    assert not (archive.data_dir / "segments").exists()


@pytest.mark.parametrize("kind", ["", "Segment", "gop-closed", "x" * 33, "kind1", "café", None])
def test_kind_must_match_the_pattern(archive: Archive, kind: object) -> None:
    with pytest.raises(ArchiveInputError, match=r"kind: expected \^\[a-z_\]\{1,32\}\$, got "):
        archive.append(kind, {})  # type: ignore[arg-type]
    assert archive.pending == 0


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"x": object()}, "expected a JSON-serialisable object, got Object of type object"),
        ({"x": math.nan}, "expected a JSON-serialisable object, got Out of range float"),
        ({"x": {1, 2}}, "expected a JSON-serialisable object, got Object of type set"),
        ([1, 2], "expected a JSON object (dict), got list"),
    ],
    ids=["object", "nan", "set", "list"],
)
def test_payload_must_be_a_json_object(archive: Archive, payload: object, fragment: str) -> None:
    with pytest.raises(ArchiveInputError) as info:
        archive.append("event", payload)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert archive.pending == 0


def test_the_surface_is_append_only() -> None:
    public = {n for n in dir(Archive) if not n.startswith("_")}
    assert public == {
        "append",
        "append_segment",
        "checkpoint",
        "checkpoints",
        "close",
        "consistency_proof",
        "data_dir",
        "flush",
        "head",
        "inclusion_proof",
        "iter_records",
        "open",
        "open_readonly",
        "origin",
        "pending",
        "readonly",
        "records",
        "root_at",
        "segments",
        "verifier_key",
        "witness_error",
        "tail",
    }
    store_public = {n for n in dir(SegmentStore) if not n.startswith("_")}
    # remove: retention only, after the tombstone is durable (kontur.archive.retention)
    assert store_public == {"check", "path", "put", "read", "remove", "root"}


def test_open_readonly_needs_an_archive_and_creates_nothing(tmp_path: Path) -> None:
    absent = tmp_path / "nowhere"
    with pytest.raises(ArchiveNotFound) as info:
        Archive.open_readonly(absent)
    assert str(info.value) == f"{absent}: expected archive.sqlite, got none"
    assert not absent.exists()
    with pytest.raises(ArchiveNotFound):
        verify_archive(absent)
    assert not absent.exists()


def test_readonly_archive_reads_but_refuses_to_write(filled: Path) -> None:
    before = sorted(p.name for p in filled.iterdir())
    with Archive.open_readonly(filled) as ro:
        assert ro.readonly
        assert ro.records == 7
        assert [r.kind for r in ro.iter_records(5)] == ["event", "state"]
        with pytest.raises(RuntimeError, match="got a read-only one"):
            ro.append("event", {})
    assert sorted(p.name for p in filled.iterdir()) == before


def test_closed_archive_refuses_use(data_dir: Path, clock: ManualClock) -> None:
    arc = Archive.open(data_dir, clock)
    arc.close()
    arc.close()
    with pytest.raises(RuntimeError, match="expected an open archive, got a closed one"):
        arc.append("event", {})


def test_one_writer_at_a_time(archive: Archive, data_dir: Path) -> None:
    with pytest.raises(ArchiveLocked, match="expected no other writer"):
        Archive.open(data_dir)
    archive.close()
    Archive.open(data_dir).close()


def test_open_refuses_a_file_that_is_not_an_archive(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "archive.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(ArchiveCorrupt) as info:
        Archive.open(data_dir)
    assert "expected an SQLite archive, got file is not a database" in str(info.value)
    assert "\n" not in str(info.value)


def test_open_refuses_a_broken_tail(filled: Path, run_sql: RunSql) -> None:
    run_sql(filled, "UPDATE records SET payload = CAST('{}' AS BLOB) WHERE idx = 6")
    with pytest.raises(ArchiveCorrupt, match=r"record 6: expected leaf [0-9a-f]{64}, got "):
        Archive.open(filled)


def test_appends_from_many_threads_form_one_chain(data_dir: Path) -> None:
    with Archive.open(data_dir, batch_size=16) as arc:

        def work(t: int) -> None:
            for n in range(50):
                arc.append("event", {"thread": t, "n": n})

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    report = verify_archive(data_dir)
    assert (report.ok, report.records) == (True, 400)


def test_records_are_immutable(archive: Archive) -> None:
    rec = archive.append("event", {"n": 1})
    with pytest.raises(AttributeError):
        rec.hash = "00"  # type: ignore[misc]


def test_wall_clock_jumps_are_recorded_as_is(archive: Archive, clock: ManualClock) -> None:
    clock.jump_wall(-3600)
    rec = archive.append("state", {"to_state": "DEGRADED"})
    assert rec.at == 1_700_000_000.0 - 3600


def test_tail_and_kind_sets_select_by_kind_newest_last(tmp_path: Path) -> None:
    arc = Archive.open(tmp_path)
    try:
        for i in range(30):
            arc.append(("a", "b", "c")[i % 3], {"i": i})
        arc.flush()
        tail = arc.tail({"a", "c"}, 4)
        assert [r.payload["i"] for r in tail] == [24, 26, 27, 29]
        assert [r.payload["i"] for r in arc.tail("b", 2, stop=10)] == [4, 7]
        assert [r.payload["i"] for r in arc.tail(None, 2)] == [28, 29]
        assert arc.tail(set(), 5) == []
        got = [r.payload["i"] for r in arc.iter_records(20, kind=("b", "c"))]
        assert got == [20, 22, 23, 25, 26, 28, 29]
        with pytest.raises(ArchiveInputError):
            arc.tail({"no spaces allowed"}, 1)
    finally:
        arc.close()
    ro = Archive.open_readonly(tmp_path)
    try:
        assert [r.payload["i"] for r in ro.tail("a", 3)] == [21, 24, 27]
    finally:
        ro.close()
