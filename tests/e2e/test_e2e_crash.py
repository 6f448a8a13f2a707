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

pytestmark = pytest.mark.e2e


def test_kill_9_supervisor_leaves_a_verifiable_archive(tmp_path: Path) -> None:
    video = shared("video", "pets09_s2l1_480x360.avi")
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
        # wait until the first GOP has been archived (PETS09 GOPs are ~25 s at real time)
        while time.monotonic() < deadline:
            children = psutil.Process(proc.pid).children(recursive=True)
            if (data / "segments").exists() and any((data / "segments").rglob("*")):
                break
            time.sleep(0.5)
        time.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    _, alive = psutil.wait_procs(children, timeout=15)
    assert alive == [], f"orphaned blocks still running: {[p.pid for p in alive]}"
    r = run_kontur("archive", "verify", str(data), "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["ok"], report
    assert report["records"] >= 3  # config, placement, … and at least one segment
    assert report["segments"] >= 1
