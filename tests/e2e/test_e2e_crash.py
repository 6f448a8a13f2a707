"""``kill -9`` of the supervisor mid-run: what was archived stays verifiable, no orphans."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from tests.conftest import KONTUR, run_kontur, shared
from tests.e2e.conftest import Clip

pytestmark = pytest.mark.e2e


def _committed_segments(data: Path) -> int:
    import sqlite3

    db = data / "archive.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("SELECT count(*) FROM records WHERE kind = 'segment'").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0])


def test_kill_9_supervisor_leaves_a_verifiable_archive(tmp_path: Path, pets09_cut: Clip) -> None:
    video = pets09_cut.path
    model = shared("models", "yolox_nano.onnx")
    data = tmp_path / "d"
    proc = subprocess.Popen(
        [
            str(KONTUR),
            "demo",
            "--source",
            str(video),
            "--model",
            str(model),
            "--realtime",
            "--data-dir",
            str(data),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 90
        # wait until the first GOP's segment is archived and committed (the cut's GOPs are 2 s
        # at real time; the segment record is written as soon as the segment file is durable)
        while time.monotonic() < deadline:
            children = psutil.Process(proc.pid).children(recursive=True)
            if _committed_segments(data) > 0:
                break
            time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    _, alive = psutil.wait_procs(children, timeout=15)
    assert alive == [], f"orphaned blocks still running: {[p.pid for p in alive]}"
    r = run_kontur("archive", "verify", str(data), "--json", "-")
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["ok"], report
    assert report["records"] >= 3  # config, placement, … and at least one segment
    assert report["segments"] >= 1
