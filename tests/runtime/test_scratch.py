"""A killed supervisor's scratch root and frame rings are swept by the next run; a live
run's, and roots not known to be stale, are left alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kontur.runtime.scratch import SCRATCH_PREFIX, make_scratch, ring_name, sweep_stale
from kontur.wire.framering import FrameRing, shm_path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_dead_owners_root_and_rings_are_swept(tmp_path: Path) -> None:
    stale = make_scratch(tmp_path)
    ring = FrameRing(ring_name(stale, "cam1"), 2, 8, 8, 1)
    ring.close(unlink=False)  # what a kill -9 leaves in /dev/shm
    assert shm_path(ring_name(stale, "cam1")).exists()
    start = (stale / "owner").read_text().split()[1]
    (stale / "owner").write_text(f"{_dead_pid()} {start}\n")
    (stale / "worker").mkdir()
    (stale / "worker" / "scratch.bin").write_bytes(b"x" * 100)

    live = make_scratch(tmp_path)  # sweeps first
    assert not stale.exists()
    assert not shm_path(ring_name(stale, "cam1")).exists()
    assert not list(Path("/dev/shm").glob(ring_name(stale, "cam1") + "*"))
    assert live.exists() and live.name.startswith(SCRATCH_PREFIX)
    assert oct(live.stat().st_mode & 0o777) == "0o711"


def test_a_live_owner_a_recycled_pid_and_an_unknown_root(tmp_path: Path) -> None:
    mine = make_scratch(tmp_path)
    recycled = make_scratch(tmp_path)
    pid = os.getpid()  # alive, but not the process that made the root: another start time
    (recycled / "owner").write_text(f"{pid} 1\n")
    unknown = tmp_path / (SCRATCH_PREFIX + "nobody")
    unknown.mkdir()
    assert sweep_stale(tmp_path) == [recycled]
    assert mine.exists() and unknown.exists() and not recycled.exists()
