"""Issue 8: recording continues through an ingest fault on a live camera.

A real gst-rtsp-server streams real footage in real time; the whole perimeter ingests it; the
test kills the camera's ingest with ``kill -9`` mid-stream. The supervisor restarts it (a
``block_failed`` trigger), and the new ingest numbers its frames and GOPs after the last ones
published, so no frame or GOP index is used twice and the archive stays verifiable.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import run_kontur, shared
from tests.ingest.conftest import RtspServer

from kontur.config import load_config
from kontur.runtime.perimeter import Perimeter, RunOptions


def _verdict_gops(data_dir: Path) -> list[int]:
    import json

    with sqlite3.connect(f"file:{data_dir / 'archive.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT payload FROM records WHERE kind = 'verdict' ORDER BY idx")
        return [json.loads(r[0])["verdict"]["gop_index"] for r in rows]


def test_a_killed_ingest_of_a_live_camera_is_restarted_and_recording_goes_on(
    rtsp_server: Callable[..., RtspServer], tmp_path: Path
) -> None:
    clip = shared("video", "car_traffic_640x360.mp4")
    server = rtsp_server(clip, "h264", fast=False)  # real time, like a camera
    killed: dict[str, Any] = {}

    def kill_ingest(p: Perimeter) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            health = getattr(p, "health", None)
            if health is not None and "ingest:cam1" in p.supervisor.running:
                ring = health.wiring.rings["cam1"]
                if ring.published >= 60:
                    killed["at"] = ring.published
                    os.kill(p.supervisor.running["ingest:cam1"].proc.pid, signal.SIGKILL)
                    return
            time.sleep(0.05)

    data = tmp_path / "d"
    p = Perimeter(
        RunOptions(config=load_config(None), data_dir=data, source=server.url, seconds=14.0)
    )
    threading.Thread(target=kill_ingest, args=(p,), daemon=True).start()
    summary = p.run()
    assert killed, "the ingest was never killed"
    ingest = next(x for x in summary["processes"] if x["name"] == "ingest:cam1")
    assert ingest["restarts"] == 1 and len(ingest["pids"]) == 2
    cam = summary["cameras"][0]
    assert cam["error"] is None
    # the new ingest recorded well past the frames published before the kill
    assert cam["frames"] > killed["at"] + 60
    assert "block_failed" in [t["trigger"] for t in summary["degradation"]["transitions"]]
    gops = _verdict_gops(data)
    assert len(gops) == len(set(gops)) and gops == sorted(gops), gops
    assert run_kontur("archive", "verify", str(data)).returncode == 0


pytestmark = pytest.mark.e2e
