"""Crash safety: SIGKILL a writer at an arbitrary moment; what was committed stays verifiable.

The writer is a real separate process appending records and segments as fast as it can; it
is killed with SIGKILL (no cleanup, no flush) while batches and segment writes are in flight.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kontur.archive import Archive, verify_archive, verify_consistency
from kontur.clock import ManualClock

WRITER = """
import os, sys
from pathlib import Path
from kontur.archive import Archive

arc = Archive.open(Path(sys.argv[1]), batch_size=int(sys.argv[2]), batch_interval_s=0.05)
print("ready", flush=True)
n = 0
while True:
    if n % 3 == 0:
        arc.append_segment(os.urandom(1 + n % 50_000), {"verdict": "AUTHENTIC", "gop_index": n})
    else:
        arc.append("detections", {"n": n, "camera_id": "cam-1", "track_ids": list(range(n % 7))})
    n += 1
"""


def run_and_kill(data_dir: Path, after_s: float, batch_size: int = 64) -> None:
    """Start a writer on ``data_dir``, let it append for ``after_s`` seconds, SIGKILL it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data_dir), str(batch_size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == b"ready\n", proc.stderr.read() if proc.stderr else line
        time.sleep(after_s)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive whose writer was killed mid-flight."""
    data_dir = tmp_path_factory.mktemp("crashed") / "archive"
    run_and_kill(data_dir, 0.8)
    return data_dir


def test_committed_records_survive_sigkill(crashed: Path) -> None:
    report = verify_archive(crashed)
    assert report.ok, report.first_bad
    assert report.records > 0
    assert report.segments > 0


def test_reopen_after_crash_continues_the_chain(crashed: Path) -> None:
    before = verify_archive(crashed)
    with Archive.open(crashed, ManualClock()) as arc:
        assert (arc.records, arc.head) == (before.records, before.head)
        rec = arc.append("event", {"text": "writer restarted after a crash"})
        assert rec.index == before.records
        arc.flush()
        proof = arc.consistency_proof(before.records)
        old, new = bytes.fromhex(before.head), bytes.fromhex(arc.head)
        verify_consistency(before.records, arc.records, old, new, proof)  # the old tree survives
    after = verify_archive(crashed)
    assert (after.ok, after.records) == (True, before.records + 1)
    assert after.checkpoint is not None and after.checkpoint["size"] == after.records


@pytest.mark.parametrize("batch_size", [1, 64])
def test_repeated_crashes_keep_one_verifiable_chain(tmp_path: Path, batch_size: int) -> None:
    data_dir = tmp_path / "archive"
    seen = 0
    for after_s in (0.15, 0.4, 0.25):
        run_and_kill(data_dir, after_s, batch_size)
        report = verify_archive(data_dir)
        assert report.ok, report.first_bad
        assert report.records > seen  # each run committed more on top of the last
        seen = report.records


def test_a_writer_killed_outside_wal_leaves_a_verifiable_archive(filled: Path) -> None:
    """A writer that dies mid-transaction outside WAL mode (kontur's only such write is the
    switch of a closed archive back to WAL) leaves a journal only a writer may replay. Verify
    replays it on a copy and checks what the next writer will see (found by the export kill
    harness: before, verify called such an archive BROKEN at record 0)."""
    db = filled / "archive.sqlite"
    code = (
        "import os, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('PRAGMA cache_size = 2')\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "c.execute(\"UPDATE records SET payload = payload || ' '\")\n"  # spills: a hot journal
        "os._exit(9)\n"
    )
    before = verify_archive(filled)
    assert subprocess.run([sys.executable, "-c", code, str(db)], check=False).returncode == 9
    assert (filled / "archive.sqlite-journal").stat().st_size > 0
    report = verify_archive(filled)
    assert (report.ok, report.records, report.head) == (True, before.records, before.head)
    assert report.notes and "archive.sqlite-journal" in report.notes[0]
    assert (filled / "archive.sqlite-journal").exists()  # verify changed nothing there
    with Archive.open(filled, ManualClock()) as arc:  # the next writer rolls it back
        assert (arc.records, arc.head) == (before.records, before.head)
    assert verify_archive(filled).notes == ()
