"""Health and issue 13 §3's triggers: an accelerator whose EP failed, a camera whose results
drifted. A real supervisor, archive, machine and pipes; the worker is a stand-in process
(:mod:`tests.runtime.exiting_block`) placed on "gpu", an accelerator this machine lacks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kontur.archive import Archive
from kontur.clock import ManualClock
from kontur.config import load_config
from kontur.degrade import DegradationMachine, Watchdog
from kontur.runtime.health import Health
from kontur.runtime.recorder import CameraStats, Recorder
from kontur.runtime.supervisor import Block, Supervisor
from kontur.runtime.wiring import Wiring
from kontur.wire import Finding
from kontur.wire.channel import Outbox
from kontur.worker.errors import ACCELERATOR_FAULT_EXIT


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[Health, Supervisor, Archive]]:
    cfg = load_config(None)
    clock = ManualClock()
    archive = Archive.open(tmp_path / "d", clock)
    stats = {"cam1": CameraStats(source="test")}
    r, w = os.pipe()
    os.set_blocking(r, False)
    sup = Supervisor(tmp_path / "run")
    wiring = Wiring(blocks=[], inboxes={}, to_gate=Outbox(w), to_ingest={}, rings={})
    health = Health(
        cfg, DegradationMachine(cfg.degradation, clock),
        Watchdog(clock, cfg.degradation.watchdog_timeout_s), [], sup, wiring, archive,
        Recorder(archive, stats, []), stats, lambda: "cpu",
    )  # fmt: skip
    yield health, sup, archive
    sup.stop_all(grace_s=2.0)
    archive.close()
    os.close(r)
    os.close(w)


def _start_worker(sup: Supervisor, platform: str, exit_code: int, spec_platform: str = "") -> None:
    """The stand-in placed on ``platform`` (the supervisor's table) exits with ``exit_code``
    (its spec says ``spec_platform``, else ``platform``: anything but "cpu" makes it exit)."""
    spec = {"platform": spec_platform or platform, "exit_code": exit_code}
    sup.start([Block("worker", "tests.runtime.exiting_block", spec, (), platform=platform)])
    proc = sup.running["worker"].proc
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() == exit_code


def _events(archive: Archive, name: str) -> list[dict[str, object]]:
    archive.flush()
    return [r.payload for r in archive.iter_records(kind="event") if r.payload["event"] == name]


def test_an_ep_failure_on_the_accelerator_is_a_reset_and_the_worker_moves_once(
    parts: tuple[Health, Supervisor, Archive],
) -> None:
    health, sup, archive = parts
    _start_worker(sup, "gpu", ACCELERATOR_FAULT_EXIT)
    health.poll()
    machine = health.machine
    [moved] = machine.transitions
    assert (moved.to_state.value, moved.trigger) == ("DEGRADED", "accelerator_reset")
    assert moved.detail == "worker on gpu: its execution provider failed (exit 75)"
    assert machine.raised["accelerator_reset"] == 1  # kontur_accelerator_resets_total
    running = sup.running["worker"]
    assert running.block.platform == "cpu" and running.restarts == 1  # moved once, not twice
    [reset] = _events(archive, "accelerator_reset")
    assert reset["platform"] == "gpu"
    [restarted] = _events(archive, "worker_restarted")
    assert restarted["platform"] == "cpu"
    health.poll()  # the crash itself, queued by the watchdog
    assert machine.raised["worker_crash"] == 1


def test_a_worker_on_the_cpu_claiming_a_reset_is_only_a_crash(
    parts: tuple[Health, Supervisor, Archive],
) -> None:
    """Its exit status is the worker's word: believed only where the supervisor's own table
    says an accelerator was in use, and even then it can only degrade."""
    health, sup, archive = parts
    _start_worker(sup, "cpu", ACCELERATOR_FAULT_EXIT, spec_platform="claims-a-gpu")
    health.poll()
    health.poll()
    assert "accelerator_reset" not in health.machine.raised
    assert health.machine.raised["worker_crash"] == 1
    assert _events(archive, "accelerator_reset") == []


def test_another_exit_on_the_accelerator_is_a_crash_not_a_reset(
    parts: tuple[Health, Supervisor, Archive],
) -> None:
    health, sup, _ = parts
    _start_worker(sup, "gpu", 1)
    health.poll()
    health.poll()
    assert "accelerator_reset" not in health.machine.raised
    assert health.machine.raised["worker_crash"] == 1
    assert sup.running["worker"].block.platform == "cpu"


def test_a_drifting_camera_degrades_with_its_reason(
    parts: tuple[Health, Supervisor, Archive],
) -> None:
    health, _, _ = parts
    reason = (
        "drift: the last 60 s against the baseline: other 38% of 21 objects in 60 s, expected "
        "0% of 234 (class mix test p=1.3e-07) < 1.1e-06 (since 960.0 s)"
    )
    health.on_message(Finding(camera_id="cam1", frame_index=5, agree=True))
    assert health.machine.transitions == ()
    health.on_message(
        Finding(camera_id="cam1", frame_index=6, agree=False, reasons=("track 3: jumped",))
    )
    assert health.machine.transitions == ()  # one disagreement is not drift
    health.on_message(Finding(camera_id="cam1", frame_index=7, agree=False, reasons=(reason,)))
    [moved] = health.machine.transitions
    assert (moved.to_state.value, moved.trigger) == ("DEGRADED", "anomalous_results")
    assert moved.detail == f"cam1: {reason}"
