"""verify_archive: the clean report, and one tamper vector per attack on records or segments.

Layout of the ``filled`` archive (conftest.LAYOUT): 0 config, 1 segment, 2 detections,
3 decision, 4 segment, 5 event, 6 state.
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

from kontur.archive import GENESIS, Archive, VerifyReport, record_hash, verify_archive

RunSql = Callable[..., list[tuple[Any, ...]]]
HEX = "[0-9a-f]{64}"


def _seg(i: int) -> str:
    return hashlib.sha256((f"gop {i} ".encode() * 997)[: 4000 + i]).hexdigest()


SEG1, SEG4 = _seg(1), _seg(4)


@dataclass
class Ctx:
    """What a tamper vector may touch: the archive directory, SQL access, the original hashes."""

    data_dir: Path
    sql: RunSql
    hashes: list[str]

    def seg_path(self, sha: str) -> Path:
        return self.data_dir / "segments" / sha[:2] / sha

    def rehash(self, idx: int) -> str:
        """Recompute and store record ``idx``'s own hash, as a careful attacker would."""
        ((kind, at, payload, prev),) = self.sql(
            self.data_dir, "SELECT kind, at, payload, prev FROM records WHERE idx = ?", (idx,)
        )
        new = record_hash(bytes.fromhex(str(prev)), idx, str(kind), float(at), bytes(payload))
        self.sql(self.data_dir, "UPDATE records SET hash = ? WHERE idx = ?", (new.hex(), idx))
        return new.hex()


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
    return 3, f"record 3: expected hash {HEX}, got {c.hashes[3]}"


def record_deleted(c: Ctx) -> tuple[int, str]:
    c.sql(c.data_dir, "DELETE FROM records WHERE idx = 2")
    return 2, "record 2: expected index 2, got 3"


def records_reordered(c: Ctx) -> tuple[int, str]:
    rows = c.sql(c.data_dir, "SELECT payload FROM records WHERE idx IN (2, 3) ORDER BY idx")
    c.sql(c.data_dir, "UPDATE records SET payload = ? WHERE idx = 2", (rows[1][0],))
    c.sql(c.data_dir, "UPDATE records SET payload = ? WHERE idx = 3", (rows[0][0],))
    return 2, f"record 2: expected hash {HEX}, got {c.hashes[2]}"


def record_kind_edited(c: Ctx) -> tuple[int, str]:
    c.sql(c.data_dir, "UPDATE records SET kind = 'event' WHERE idx = 0")
    return 0, f"record 0: expected hash {HEX}, got {c.hashes[0]}"


def record_time_edited(c: Ctx) -> tuple[int, str]:
    c.sql(c.data_dir, "UPDATE records SET at = at - 60 WHERE idx = 5")
    return 5, f"record 5: expected hash {HEX}, got {c.hashes[5]}"


def record_rehashed_after_edit(c: Ctx) -> tuple[int, str]:
    body = b'{"outcome":"DENY","reasons":[],"rule":"door"}'
    c.sql(c.data_dir, "UPDATE records SET payload = ? WHERE idx = 3", (body,))
    new = c.rehash(3)
    return 4, f"record 4: expected prev {new}, got {c.hashes[3]}"


def record_prev_edited(c: Ctx) -> tuple[int, str]:
    c.sql(c.data_dir, "UPDATE records SET prev = ? WHERE idx = 5", ("ab" * 32,))
    return 5, f"record 5: expected prev {c.hashes[4]}, got {'ab' * 32}"


def segment_record_repointed(c: Ctx) -> tuple[int, str]:
    rows = c.sql(c.data_dir, "SELECT payload FROM records WHERE idx = 4")
    body = bytes(rows[0][0]).replace(SEG4.encode(), SEG1.encode()).replace(b"4004", b"4001")
    c.sql(c.data_dir, "UPDATE records SET payload = ? WHERE idx = 4", (body,))
    return 4, f"record 4: expected hash {HEX}, got {c.hashes[4]}"


def record_payload_not_json(c: Ctx) -> tuple[int, str]:
    c.sql(c.data_dir, "UPDATE records SET payload = ? WHERE idx = 6", (b"{not json",))
    c.rehash(6)  # the last record: nothing after it links to its hash
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


VECTORS = [
    segment_byte_flipped,
    segment_deleted,
    segment_truncated,
    record_payload_edited,
    record_deleted,
    records_reordered,
    record_kind_edited,
    record_time_edited,
    record_rehashed_after_edit,
    record_prev_edited,
    segment_record_repointed,
    record_payload_not_json,
    record_payload_as_text,
    records_table_dropped,
    database_overwritten,
]


@pytest.mark.parametrize("tamper", VECTORS, ids=lambda f: f.__name__)
def test_tampering_is_found_at_the_first_bad_record(
    filled: Path, run_sql: RunSql, tamper: Callable[[Ctx], tuple[int, str]]
) -> None:
    hashes = [str(h) for (h,) in run_sql(filled, "SELECT hash FROM records ORDER BY idx")]
    index, fragment = tamper(Ctx(filled, run_sql, hashes))
    report = verify_archive(filled)
    assert not report.ok
    assert report.first_bad is not None
    assert report.first_bad.index == index
    pattern = re.escape(fragment.replace("{dir}", str(filled))).replace(re.escape(HEX), HEX)
    assert re.match(pattern, report.first_bad.reason), report.first_bad.reason
    assert "\n" not in report.first_bad.reason
    # The report describes the verified prefix: everything before the first bad record.
    assert report.records == index
    if index == 0:
        assert report.head == GENESIS.hex()
    else:
        ((head,),) = run_sql(filled, "SELECT hash FROM records WHERE idx = ?", (index - 1,))
        assert report.head == head


def test_clean_archive_verifies(filled: Path, run_sql: RunSql) -> None:
    ((head,),) = run_sql(filled, "SELECT hash FROM records WHERE idx = 6")
    report = verify_archive(filled)
    assert report == VerifyReport(ok=True, records=7, segments=2, head=str(head), first_bad=None)
    assert report.to_json() == {
        "ok": True,
        "records": 7,
        "first_bad": None,
        "segments": 2,
        "head": head,
    }
    assert list(report.to_json()) == ["ok", "records", "first_bad", "segments", "head"]


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
    assert verify_archive(data_dir).to_json() == {
        "ok": True,
        "records": 0,
        "first_bad": None,
        "segments": 0,
        "head": "0" * 64,
    }


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


def test_tail_truncation_is_not_detected_by_a_bare_chain(filled: Path, run_sql: RunSql) -> None:
    """Known limit (ADR 0004): only signed checkpoints (RFC 9162) reveal a cut-off tail."""
    run_sql(filled, "DELETE FROM records WHERE idx = 6")
    report = verify_archive(filled)
    assert (report.ok, report.records) == (True, 6)
