"""Fixtures for the archive tests: a manual clock and a small archive with known contents."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kontur.archive import Archive
from kontur.clock import ManualClock

#: Records of :func:`filled` as (kind, payload); segments are stored with append_segment.
LAYOUT: list[tuple[str, dict[str, object]]] = [
    ("config", {"detector": "hog", "version": 1}),
    ("segment", {"camera_id": "cam-1", "gop_index": 0, "verdict": "AUTHENTIC"}),
    ("detections", {"camera_id": "cam-1", "gop_index": 0, "detections": 3}),
    ("decision", {"outcome": "ALLOW", "rule": "door", "reasons": []}),
    ("segment", {"camera_id": "cam-1", "gop_index": 1, "verdict": "NOT_AUTHENTIC"}),
    ("event", {"text": "operator looked"}),
    ("state", {"from_state": "NORMAL", "to_state": "DEGRADED"}),
]


def segment_bytes(i: int) -> bytes:
    """Distinct, deterministic segment content."""
    return (f"gop {i} ".encode() * 997)[: 4000 + i]


@pytest.fixture
def clock() -> ManualClock:
    """A clock that only moves when told to."""
    return ManualClock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Where the archive under test lives (not created yet)."""
    return tmp_path / "archive"


@pytest.fixture
def archive(data_dir: Path, clock: ManualClock) -> Iterator[Archive]:
    """An open, empty archive."""
    with Archive.open(data_dir, clock) as arc:
        yield arc


@pytest.fixture
def filled(data_dir: Path, clock: ManualClock) -> Path:
    """A closed archive holding :data:`LAYOUT` (records 1 and 4 are segments)."""
    with Archive.open(data_dir, clock) as arc:
        for i, (kind, payload) in enumerate(LAYOUT):
            clock.advance(0.5)
            if kind == "segment":
                arc.append_segment(segment_bytes(i), payload)
            else:
                arc.append(kind, payload)
    return data_dir


def _sql(data_dir: Path, query: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(data_dir / "archive.sqlite", isolation_level=None)
    try:
        return [tuple(r) for r in conn.execute(query, params)]
    finally:
        conn.close()


@pytest.fixture
def run_sql() -> Callable[..., list[tuple[Any, ...]]]:
    """``run_sql(data_dir, query, params)`` on archive.sqlite, as an attacker with file access."""
    return _sql
