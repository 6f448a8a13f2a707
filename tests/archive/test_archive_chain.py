"""Format 1 (the hash chain) against its known-answer vector, still verified; format 2 leaves
against the spec's formula computed independently."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
from pathlib import Path
from typing import Any

import pytest

from kontur.archive import (
    GENESIS,
    Archive,
    ArchiveCorrupt,
    ChainBroken,
    HashChain,
    canonical_json,
    record_hash,
    verify_archive,
)
from kontur.archive._chain import ChainChecker, Log
from kontur.clock import ManualClock

VECTOR = json.loads((Path(__file__).parent / "vectors" / "chain_known_answer.json").read_text())
RECORDS = VECTOR["records"]


@pytest.mark.parametrize("rec", RECORDS, ids=lambda r: f"record_{r['index']}")
def test_record_hash_matches_known_answer(rec: dict[str, Any]) -> None:
    payload = canonical_json(rec["payload"])
    assert payload == rec["payload_bytes"].encode()
    got = record_hash(bytes.fromhex(rec["prev"]), rec["index"], rec["kind"], rec["at"], payload)
    assert got.hex() == rec["hash"]


def _legacy_archive(data_dir: Path) -> None:
    """A format-1 archive exactly as kontur wrote it before the Merkle log (ADR 0004)."""
    data_dir.mkdir()
    conn = sqlite3.connect(data_dir / "archive.sqlite", isolation_level=None)
    conn.execute(
        "CREATE TABLE records (idx INTEGER PRIMARY KEY, kind TEXT NOT NULL, at REAL NOT NULL, "
        "payload BLOB NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL)"
    )
    for rec in RECORDS:
        row = (rec["index"], rec["kind"], rec["at"], rec["payload_bytes"].encode())
        conn.execute(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", (*row, rec["prev"], rec["hash"])
        )
    conn.execute("PRAGMA user_version = 1")
    conn.close()


def test_format_1_archives_still_verify(tmp_path: Path) -> None:
    _legacy_archive(tmp_path / "old")
    report = verify_archive(tmp_path / "old")
    assert (report.ok, report.records, report.head, report.format) == (
        True,
        len(RECORDS),
        RECORDS[-1]["hash"],
        1,
    )
    conn = sqlite3.connect(tmp_path / "old" / "archive.sqlite", isolation_level=None)
    conn.execute("UPDATE records SET at = at + 1 WHERE idx = 1")
    conn.close()
    bad = verify_archive(tmp_path / "old")
    assert bad.first_bad is not None and bad.first_bad.index == 1
    assert bad.first_bad.reason.startswith("record 1: expected hash ")


def test_format_1_archives_are_verify_only(tmp_path: Path) -> None:
    _legacy_archive(tmp_path / "old")
    with pytest.raises(
        ArchiveCorrupt, match="expected archive format 2 to append to, got format 1"
    ):
        Archive.open(tmp_path / "old")
    with pytest.raises(ArchiveCorrupt, match="expected archive format 2 to read, got format 1"):
        Archive.open_readonly(tmp_path / "old")


def test_archive_writes_the_known_answer_leaves(tmp_path: Path) -> None:
    """Format 2 leaves from the spec's formula, computed here with hashlib alone (ADR 0015)."""
    clock = ManualClock(wall=1_700_000_000.0)
    with Archive.open(tmp_path, clock) as arc:
        for rec in RECORDS:
            got = arc.append(rec["kind"], rec["payload"])
            entry = b"".join(
                (
                    struct.pack(">Q", rec["index"]),
                    rec["kind"].encode(),
                    b"\x00",
                    repr(rec["at"]).encode(),
                    b"\x00",
                    rec["payload_bytes"].encode(),
                )
            )
            assert got.hash == hashlib.sha256(b"\x00" + entry).hexdigest()
            clock.advance(0.25)
    leaves = [bytes.fromhex(r.hash) for r in Archive.open_readonly(tmp_path).iter_records()]
    assert Archive.open_readonly(tmp_path).head == _mth(leaves).hex()


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 MTH, written out here independently of kontur.archive.merkle."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def test_genesis_and_resume() -> None:
    chain: Log = HashChain()
    assert (chain.size, chain.head) == (0, GENESIS)
    link = chain.append("event", 1.0, b"{}")
    assert (link.index, link.prev) == (0, GENESIS)
    resumed = HashChain(1, link.hash)
    assert resumed.append("event", 2.0, b"{}") == chain.append("event", 2.0, b"{}")


def test_checker_refuses_to_go_on_after_a_broken_link() -> None:
    checker = ChainChecker(HashChain())
    with pytest.raises(ChainBroken, match="expected index 0, got 1"):
        checker.feed(1, "event", 1.0, b"{}", GENESIS.hex(), "00" * 32)
    with pytest.raises(RuntimeError, match="after a broken link"):
        checker.feed(0, "event", 1.0, b"{}", GENESIS.hex(), "00" * 32)


def test_record_hash_refuses_a_short_prev() -> None:
    with pytest.raises(ValueError, match="expected a 32-byte prev hash, got 31 bytes"):
        record_hash(bytes(31), 0, "event", 1.0, b"{}")
