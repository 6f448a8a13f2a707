"""The record hash and the chain, against a known-answer vector computed independently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kontur.archive import GENESIS, Archive, ChainBroken, HashChain, canonical_json, record_hash
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


def test_archive_writes_the_known_answer_chain(tmp_path: Path) -> None:
    clock = ManualClock(wall=1_700_000_000.0)
    with Archive.open(tmp_path, clock) as arc:
        for rec in RECORDS:
            got = arc.append(rec["kind"], rec["payload"])
            assert (got.index, got.prev, got.hash) == (rec["index"], rec["prev"], rec["hash"])
            assert got.payload_bytes == rec["payload_bytes"].encode()
            clock.advance(0.25)
    with Archive.open_readonly(tmp_path) as ro:
        assert ro.head == RECORDS[-1]["hash"]
        assert [r.hash for r in ro.iter_records()] == [r["hash"] for r in RECORDS]


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
