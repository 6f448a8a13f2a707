"""verify_archive: the clean report, and one tamper vector per attack on records, tree,
checkpoints or segments (format 2, ADR 0015).

Layout of the ``filled`` archive (conftest.LAYOUT): 0 config, 1 segment, 2 detections,
3 decision, 4 segment, 5 event, 6 state; closing it signed one checkpoint at size 7.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kontur.archive import Archive, ArchiveKey, Signing, verify_archive
from kontur.archive._tree import entry_leaf
from kontur.archive.checkpoint import Checkpoint, sign_checkpoint
from kontur.archive.merkle import EMPTY_ROOT, Frontier, root_of
from kontur.clock import ManualClock

RunSql = Callable[..., list[tuple[Any, ...]]]
HEX = "[0-9a-f]{64}"


def _seg(i: int) -> str:
    return hashlib.sha256((f"gop {i} ".encode() * 997)[: 4000 + i]).hexdigest()


SEG1, SEG4 = _seg(1), _seg(4)


@dataclass
class Ctx:
    """What a tamper vector may touch: the archive directory, SQL access, the original leaves."""

    data_dir: Path
    sql: RunSql
    leaves: list[str]

    def seg_path(self, sha: str) -> Path:
        return self.data_dir / "segments" / sha[:2] / sha

    def releaf(self, idx: int) -> str:
        """Recompute and store record ``idx``'s leaf hash, as a careful attacker would."""
        ((kind, at, payload),) = self.sql(
            self.data_dir, "SELECT kind, at, payload FROM records WHERE idx = ?", (idx,)
        )
        new = entry_leaf(idx, str(kind), float(at), bytes(payload))
        self.sql(self.data_dir, "UPDATE records SET leaf = ? WHERE idx = ?", (new, idx))
        return new.hex()

    def rebuild_tree(self) -> None:
        """Recompute every leaf and node from the records, as an attacker rewriting history."""
        rows = self.sql(self.data_dir, "SELECT idx, kind, at, payload FROM records ORDER BY idx")
        self.sql(self.data_dir, "DELETE FROM nodes")
        frontier = Frontier()
        for idx, kind, at, payload in rows:
            leaf = entry_leaf(int(idx), str(kind), float(at), bytes(payload))
            self.sql(self.data_dir, "UPDATE records SET leaf = ? WHERE idx = ?", (leaf, idx))
            for node in frontier.push(leaf)[1:]:
                self.sql(self.data_dir, "INSERT INTO nodes VALUES (?, ?, ?)", node)


def segment_byte_flipped(c: Ctx) -> tuple[int, str]:
    path = c.seg_path(SEG4)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    got = hashlib.sha256(bytes(data)).hexdigest()
    return 4, f"record 4: segment {SEG4[:12]}…: expected sha256 {SEG4}, got {got}"


def segment_deleted(c: Ctx) -> tuple[int, str]:
    c.seg_path(SEG1).unlink()
    return 1, f"record 1: segment {SEG1[:12]}…: expected file segments/{SEG1[:2]}/{SEG1}, got none"


def segment_truncated(c: Ctx) -> tuple[int, str]:
    path = c.seg_path(SEG4)
    path.chmod(0o644)
    os.truncate(path, 10)
    return 4, f"record 4: segment {SEG4[:12]}…: expected size 4004, got 10"


def record_payload_edited(c: Ctx) -> tuple[int, str]:
    body = b'{"outcome":"DENY","reasons":[],"rule":"door"}'
    c.sql(c.data_dir, "UPDATE records SET payload = ? WHERE idx = 3", (body,))
    return 3, f"record 3: expected leaf {HEX}, got {c.leaves[3]}"


def record_deleted(c: Ctx) -> tuple[int, str]:
    c.sql(c.data_dir, "DELETE FROM records WHERE idx = 2")
    return 2, "record 2: expected index 2, got 3"


def records_reordered(c: Ctx) -> tuple[int, str]:
    rows = c.sql(c.data_dir, "SELECT payload FROM records WHERE idx IN (2, 3) ORDER BY idx")
    c.sql(c.data_dir, "UPDATE records SET payload = ? WHERE idx = 2", (rows[1][0],))
    c.sql(c.data_dir, "UPDATE records SET payload = ? WHERE idx = 3", (rows[0][0],))
    return 2, f"record 2: expected leaf {HEX}, got {c.leaves[2]}"


def record_kind_edited(c: Ctx) -> tuple[int, str]:
    c.sql(c.data_dir, "UPDATE records SET kind = 'event' WHERE idx = 0")
    return 0, f"record 0: expected leaf {HEX}, got {c.leaves[0]}"


def record_time_edited(c: Ctx) -> tuple[int, str]:
    c.sql(c.data_dir, "UPDATE records SET at = at - 60 WHERE idx = 5")
    return 5, f"record 5: expected leaf {HEX}, got {c.leaves[5]}"


def record_releafed_after_edit(c: Ctx) -> tuple[int, str]:
    body = b'{"outcome":"DENY","reasons":[],"rule":"door"}'
    c.sql(c.data_dir, "UPDATE records SET payload = ? WHERE idx = 3", (body,))
    c.releaf(3)
    return 3, f"record 3: expected tree node level 1 index 1 hash {HEX}, got index 1 hash {HEX}"


def tree_node_edited(c: Ctx) -> tuple[int, str]:
    c.sql(c.data_dir, "UPDATE nodes SET hash = ? WHERE level = 2 AND idx = 0", (bytes(32),))
    return (
        3,
        f"record 3: expected tree node level 2 index 0 hash {HEX}, got index 0 hash {'0' * 64}",
    )


def history_rewritten(c: Ctx) -> tuple[int, str]:
    body = b'{"outcome":"DENY","reasons":[],"rule":"door"}'
    c.sql(c.data_dir, "UPDATE records SET payload = ? WHERE idx = 3", (body,))
    c.rebuild_tree()
    return 0, (
        f"checkpoint 7 (signed {ISO}): expected root {HEX} at size 7, "
        f"the records give {HEX} (history rewritten)"
    )


def tail_deleted(c: Ctx) -> tuple[int, str]:
    c.sql(c.data_dir, "DELETE FROM records WHERE idx = 6")
    return 6, (
        f"checkpoint 7 (signed {ISO}): expected the tree to hold 7 records, got 6 "
        "(tail deleted or database rolled back)"
    )


def checkpoint_forged(c: Ctx) -> tuple[int, str]:
    ((note,),) = c.sql(c.data_dir, "SELECT note FROM checkpoints WHERE size = 7")
    lines = str(note).split("\n")
    lines[2] = "A" * 43 + "="  # another root, the signature kept
    c.sql(c.data_dir, "UPDATE checkpoints SET note = ? WHERE size = 7", ("\n".join(lines),))
    return 0, (
        f"checkpoint 7 (signed {ISO}): expected a valid signature by archive key [0-9a-f]{{8}}, "
        "got none (forged or from another archive)"
    )


def checkpoint_from_another_key(c: Ctx) -> tuple[int, str]:
    ((origin,),) = c.sql(c.data_dir, "SELECT value FROM meta WHERE key = 'origin'")
    note = sign_checkpoint(Checkpoint(str(origin), 7, bytes(32)), ArchiveKey.generate())
    c.sql(c.data_dir, "UPDATE checkpoints SET note = ? WHERE size = 7", (note,))
    return 0, f"checkpoint 7 (signed {ISO}): expected a valid signature by archive key"


def segment_record_repointed(c: Ctx) -> tuple[int, str]:
    rows = c.sql(c.data_dir, "SELECT payload FROM records WHERE idx = 4")
    body = bytes(rows[0][0]).replace(SEG4.encode(), SEG1.encode()).replace(b"4004", b"4001")
    c.sql(c.data_dir, "UPDATE records SET payload = ? WHERE idx = 4", (body,))
    return 4, f"record 4: expected leaf {HEX}, got {c.leaves[4]}"


def record_payload_not_json(c: Ctx) -> tuple[int, str]:
    c.sql(c.data_dir, "UPDATE records SET payload = ? WHERE idx = 6", (b"{not json",))
    c.releaf(6)  # the last record completes no node
    return 6, "record 6: expected a JSON payload, got Expecting property name"


def record_payload_as_text(c: Ctx) -> tuple[int, str]:
    c.sql(c.data_dir, "UPDATE records SET payload = CAST(payload AS TEXT) WHERE idx = 3")
    return 3, "record 3: expected payload as bytes, got str"


def records_table_dropped(c: Ctx) -> tuple[int, str]:
    c.sql(c.data_dir, "DROP TABLE records")
    return 0, "record 0: {dir}/archive.sqlite: expected records columns ('idx', "


def database_overwritten(c: Ctx) -> tuple[int, str]:
    (c.data_dir / "archive.sqlite").write_bytes(os.urandom(8192))
    return 0, "record 0: {dir}/archive.sqlite: expected an SQLite archive, got file is not a"


ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"

KEYID = "[0-9a-f]{8}"

VECTORS = [
    segment_byte_flipped,
    segment_deleted,
    segment_truncated,
    record_payload_edited,
    record_deleted,
    records_reordered,
    record_kind_edited,
    record_time_edited,
    record_releafed_after_edit,
    tree_node_edited,
    history_rewritten,
    tail_deleted,
    checkpoint_forged,
    checkpoint_from_another_key,
    segment_record_repointed,
    record_payload_not_json,
    record_payload_as_text,
    records_table_dropped,
    database_overwritten,
]


def _leaves(run_sql: RunSql, data_dir: Path) -> list[bytes]:
    return [bytes(h) for (h,) in run_sql(data_dir, "SELECT leaf FROM records ORDER BY idx")]


@pytest.mark.parametrize("tamper", VECTORS, ids=lambda f: f.__name__)
def test_tampering_is_found_at_the_first_bad_record(
    filled: Path, run_sql: RunSql, tamper: Callable[[Ctx], tuple[int, str]]
) -> None:
    leaves = _leaves(run_sql, filled)
    index, fragment = tamper(Ctx(filled, run_sql, [h.hex() for h in leaves]))
    report = verify_archive(filled)
    assert not report.ok
    assert report.first_bad is not None
    assert report.first_bad.index == index
    pattern = re.escape(fragment.replace("{dir}", str(filled)))
    for rx in (HEX, ISO, KEYID):
        pattern = pattern.replace(re.escape(rx), rx)
    assert re.match(pattern, report.first_bad.reason), report.first_bad.reason
    assert "\n" not in report.first_bad.reason
    if "checkpoint" in fragment:  # every record checked on its own; the signature says no
        return
    # The report describes the verified prefix: everything before the first bad record.
    assert report.records == index
    assert report.head == root_of(leaves[:index]).hex()


def test_clean_archive_verifies(filled: Path, run_sql: RunSql) -> None:
    root = root_of(_leaves(run_sql, filled)).hex()
    report = verify_archive(filled)
    assert (report.ok, report.records, report.segments, report.head) == (True, 7, 2, root)
    got = report.to_json()
    assert list(got)[:5] == ["ok", "records", "first_bad", "segments", "head"]
    assert got["checkpoint"]["size"] == 7  # type: ignore[index]
    assert got["checkpoint"]["root"] == root  # type: ignore[index]
    assert got["checkpoint"]["unsigned_tail"] == 0  # type: ignore[index]
    assert (got["first_bad"], got["witness"], got["removed"], got["format"]) == (None, None, 0, 2)


def test_report_json_names_the_first_bad_record(filled: Path) -> None:
    segment_deleted(Ctx(filled, lambda *a: [], []))
    got = verify_archive(filled).to_json()
    assert got["first_bad"] == {
        "index": 1,
        "reason": f"record 1: segment {SEG1[:12]}…: expected file segments/{SEG1[:2]}/{SEG1}, "
        "got none",
    }
    assert (got["ok"], got["records"], got["segments"]) == (False, 1, 0)


def test_empty_archive_verifies(data_dir: Path) -> None:
    Archive.open(data_dir).close()
    report = verify_archive(data_dir)
    assert (report.ok, report.records, report.head, report.checkpoint) == (
        True,
        0,
        EMPTY_ROOT.hex(),
        None,
    )


def test_verification_creates_and_changes_nothing(filled: Path) -> None:
    def snapshot() -> dict[str, tuple[int, int]]:
        return {
            str(p.relative_to(filled)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in filled.rglob("*")
        }

    before = snapshot()
    assert verify_archive(filled).ok
    assert snapshot() == before


def test_verification_runs_beside_a_live_writer(filled: Path) -> None:
    with Archive.open(filled) as arc:
        arc.append("event", {"n": 1})
        arc.flush()
        arc.append("event", {"n": 2})  # uncommitted: not part of the verified snapshot
        report = verify_archive(filled)
        assert (report.ok, report.records, report.head) == (True, 8, arc.head)
        assert report.checkpoint is not None and report.checkpoint["unsigned_tail"] == 1


def test_a_careful_tail_cut_is_named_by_the_checkpoint(filled: Path, run_sql: RunSql) -> None:
    """The attack format 1 could not see (ADR 0004): records and their nodes cut off the tail."""
    run_sql(filled, "DELETE FROM records WHERE idx >= 4")
    run_sql(filled, "DELETE FROM nodes WHERE (idx + 1) << level > 4")
    report = verify_archive(filled)
    assert report.first_bad is not None and report.first_bad.index == 4
    assert "expected the tree to hold 7 records, got 4" in report.first_bad.reason


def test_a_pinned_key_names_a_resigned_history(filled: Path, run_sql: RunSql) -> None:
    """An attacker who rewrites history and re-signs it with a key of their own passes a
    verify that trusts the archive's meta, but not one that pins the archive's real key."""
    with Archive.open_readonly(filled) as arc:
        real = arc.verifier_key
    ((origin,),) = run_sql(filled, "SELECT value FROM meta WHERE key = 'origin'")
    body = b'{"outcome":"DENY","reasons":[],"rule":"door"}'
    run_sql(filled, "UPDATE records SET payload = ? WHERE idx = 3", (body,))
    Ctx(filled, run_sql, []).rebuild_tree()
    fake = ArchiveKey.generate()
    root = root_of(_leaves(run_sql, filled))
    note = sign_checkpoint(Checkpoint(str(origin), 7, root), fake)
    run_sql(filled, "UPDATE checkpoints SET note = ? WHERE size = 7", (note,))
    run_sql(
        filled, "UPDATE meta SET value = ? WHERE key = 'vkey'", (str(fake.verifier(str(origin))),)
    )
    assert verify_archive(filled).ok  # self-consistent: why the key must be pinned or witnessed
    report = verify_archive(filled, key=real)
    assert report.first_bad is not None
    assert report.first_bad.reason.startswith(f"meta: expected the pinned archive key {real}")


def test_a_witness_that_was_never_written_fails_the_verify(tmp_path: Path) -> None:
    """A witness that cannot be written never stops recording (the archive says why), and a
    witness that holds none of the archive's signed checkpoints fails ``verify --witness``:
    "0 checkpoint(s) agree" on an emptied witness proved nothing."""
    data, witness = tmp_path / "archive", tmp_path / "witness"
    full = Signing(every_records=1, witness=Path("/dev/full"))  # every write: ENOSPC
    with Archive.open(data, ManualClock(), signing=full) as arc:
        arc.append("event", {"n": 1})
        arc.append("event", {"n": 2})
        arc.flush()
        assert arc.witness_error == "witness /dev/full: No space left on device"
        assert arc.records == 2
    witness.write_bytes(b"")
    os.utime(witness, (1.6e9, 1.6e9))  # last written before the archive signed anything
    report = verify_archive(data, witness=witness)
    assert not report.ok and report.first_bad is not None
    assert report.first_bad.reason.startswith(
        "witness witness: expected the archive's signed checkpoints witnessed (the newest "
        "covers 2 records, signed after the witness was last written), got none"
    )
    assert verify_archive(data).ok  # the records themselves are whole
    fresh = tmp_path / "fresh"  # a witness configured now, after every checkpoint so far:
    fresh.write_bytes(b"")  # it has missed nothing yet
    assert verify_archive(data, witness=fresh).ok
    with Archive.open(
        data, ManualClock(), signing=Signing(every_records=1, witness=witness)
    ) as arc:
        arc.append("event", {"n": 3})
        arc.flush()
    assert verify_archive(data, witness=witness).ok  # witnessed from here on
    young = tmp_path / "young"
    with Archive.open(young, ManualClock()):
        pass  # no checkpoint signed yet: an empty witness has nothing to miss
    (tmp_path / "none-yet").write_bytes(b"")
    assert verify_archive(young, witness=tmp_path / "none-yet").ok
