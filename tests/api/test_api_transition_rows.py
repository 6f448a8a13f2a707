"""The System screen's transition rows never fail on an odd archived value (ADR 0040)."""

from __future__ import annotations

from pathlib import Path

from kontur.api._routes_console import TransitionRow
from kontur.archive import Archive


def test_a_time_that_is_no_finite_float_falls_back_to_the_records_own(tmp_path: Path) -> None:
    with Archive.open(tmp_path) as arc:
        for at in (10**400, "yesterday", True, 1_700_000_000.5):
            arc.append("state", {"at": at, "from": "NORMAL", "to": "SAFE", "camera": 7})
        arc.flush()
        rows = [(r, TransitionRow.of(r).to_json()) for r in arc.tail("state", 10)]
    assert [row["at"] for _, row in rows[:3]] == [r.at for r, _ in rows[:3]]
    assert rows[3][1]["at"] == 1_700_000_000.5
    assert {row["camera"] for _, row in rows} == {"7"}  # shown as its text
    assert rows[0][1]["from"] == "NORMAL" and rows[0][1]["to"] == "SAFE"
