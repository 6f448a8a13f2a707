"""Properties over seeded random inputs: any JSON payloads chain and verify, and any single
flipped payload byte is found at exactly its record. (Seeded ``random``, so a failure replays.)
"""

from __future__ import annotations

import random
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from kontur.archive import Archive, verify_archive
from kontur.archive.merkle import root_of
from kontur.clock import ManualClock

SEEDS = range(12)


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value: unicode (lone surrogates included), big ints, odd floats, nesting."""
    pick = rng.randrange(8 if depth < 3 else 5)
    if pick == 0:
        return rng.choice([None, True, False])
    if pick == 1:
        return rng.choice([0, -1, 2**63, -(2**70), rng.randrange(-(10**6), 10**6)])
    if pick == 2:
        return rng.choice([0.0, -0.0, 1e-300, 1e300, 1 / 3, sys.float_info.max, rng.random()])
    if pick in (3, 4):
        return "".join(
            chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x10FFFF)]))
            for _ in range(rng.randrange(6))
        )
    if pick == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return random_object(rng, depth + 1)


def random_object(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """A random JSON object (what ``append`` takes)."""
    keys = [
        random_json(rng, 99) if rng.random() < 0.5 else f"k{i}" for i in range(rng.randrange(5))
    ]
    return {str(k): random_json(rng, depth) for k in keys}


@pytest.mark.parametrize("seed", SEEDS)
def test_any_json_payloads_chain_and_verify(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    payloads = [random_object(rng) for _ in range(rng.randrange(1, 13))]
    flush_every = rng.randrange(1, 6)
    clock = ManualClock()
    leaves: list[bytes] = []
    with Archive.open(tmp_path, clock, batch_size=3) as arc:
        for n, payload in enumerate(payloads):
            rec = arc.append("event", payload)
            assert rec.payload == payload
            leaves.append(bytes.fromhex(rec.hash))
            clock.advance(rng.random())
            if n % flush_every == 0:
                arc.flush()
                assert arc.head == root_of(leaves).hex()
    report = verify_archive(tmp_path)
    assert (report.ok, report.records, report.head) == (True, len(payloads), root_of(leaves).hex())


@pytest.mark.parametrize("seed", SEEDS)
def test_any_flipped_payload_byte_is_found_at_its_record(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randrange(1, 9)
    with Archive.open(tmp_path, ManualClock()) as arc:
        for _ in range(n):
            arc.append("event", random_object(rng))
    idx = rng.randrange(n)
    conn = sqlite3.connect(tmp_path / "archive.sqlite")
    (payload,) = conn.execute("SELECT payload FROM records WHERE idx = ?", (idx,)).fetchone()
    flipped = bytearray(payload)
    flipped[rng.randrange(len(payload))] ^= rng.randrange(1, 256)
    conn.execute("UPDATE records SET payload = ? WHERE idx = ?", (bytes(flipped), idx))
    conn.commit()
    conn.close()
    report = verify_archive(tmp_path)
    assert report.first_bad is not None
    assert report.first_bad.index == idx
    assert report.first_bad.reason.startswith(f"record {idx}: expected leaf ")
