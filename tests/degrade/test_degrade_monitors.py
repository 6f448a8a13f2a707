"""Health monitors on real files and real processes, timed by a ManualClock."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kontur.clock import ManualClock
from kontur.config import DegradationConfig
from kontur.degrade import (
    ClockJumpMonitor,
    DegradationMachine,
    ModelIntegrityMonitor,
    Monitor,
    MonitorSetupError,
    State,
    Watchdog,
    step,
)

INTERVAL = 0.5
MODEL = bytes(range(256)) * 64  # 16 KiB stand-in for an installed model file


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "detector.onnx"
    path.write_bytes(MODEL)
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _flip_byte(path: Path, at: int) -> bytes:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    return bytes(data)


def test_model_swapped_on_disk_raises_then_restored_clears(model: Path, clock: ManualClock) -> None:
    monitor = ModelIntegrityMonitor(model, _sha(MODEL), clock, INTERVAL)
    assert monitor.poll() == []

    tampered = _flip_byte(model, 1000)
    clock.advance(INTERVAL)
    assert monitor.poll() == [
        (
            "model_integrity",
            f"model file {model}: expected sha256 {_sha(MODEL)[:12]}…, got {_sha(tampered)[:12]}…",
        )
    ]
    assert monitor.take_cleared() == []
    clock.advance(INTERVAL)
    assert [t for t, _ in monitor.poll()] == ["model_integrity"]  # raised while it lasts

    model.write_bytes(MODEL)
    clock.advance(INTERVAL)
    assert monitor.poll() == []
    assert monitor.take_cleared() == ["model_integrity"]
    assert monitor.take_cleared() == []  # reported once


def test_model_deleted_raises_missing(model: Path, clock: ManualClock) -> None:
    monitor = ModelIntegrityMonitor(model, _sha(MODEL), clock, INTERVAL)
    model.unlink()

    ((trigger, detail),) = monitor.poll()

    assert trigger == "model_integrity"
    assert detail == (
        f"model file {model}: expected sha256 {_sha(MODEL)[:12]}…, got nothing (file missing)"
    )


def test_model_unreadable_raises(tmp_path: Path, clock: ManualClock) -> None:
    monitor = ModelIntegrityMonitor(tmp_path, _sha(MODEL), clock, INTERVAL)  # a directory

    ((trigger, detail),) = monitor.poll()

    assert trigger == "model_integrity"
    assert "got an unreadable file (IsADirectoryError" in detail


def test_model_is_not_rehashed_more_often_than_interval(model: Path, clock: ManualClock) -> None:
    monitor = ModelIntegrityMonitor(model, _sha(MODEL), clock, INTERVAL)
    assert monitor.poll() == []
    _flip_byte(model, 0)

    for _ in range(5):  # polled again and again within the interval: no new hash
        clock.advance(INTERVAL / 8)
        assert monitor.poll() == []
    assert monitor.checks == 1

    clock.advance(INTERVAL * 3 / 8)
    assert [t for t, _ in monitor.poll()] == ["model_integrity"]
    assert monitor.checks == 2
    assert monitor.poll() == []
    assert monitor.checks == 2


def test_an_unchanged_model_is_not_read_again_until_the_rehash(
    model: Path, clock: ManualClock
) -> None:
    monitor = ModelIntegrityMonitor(model, _sha(MODEL), clock, INTERVAL, rehash_s=INTERVAL * 10)
    assert monitor.poll() == []
    for _ in range(9):  # each check only stats the unchanged file
        clock.advance(INTERVAL)
        assert monitor.poll() == []
    assert monitor.checks == 1
    clock.advance(INTERVAL)  # rehash_s since the last hash: read again, whatever the metadata
    assert monitor.poll() == []
    assert monitor.checks == 2


def test_a_write_that_restores_the_mtime_is_still_found(model: Path, clock: ManualClock) -> None:
    monitor = ModelIntegrityMonitor(model, _sha(MODEL), clock, INTERVAL, rehash_s=3600.0)
    assert monitor.poll() == []
    st = model.stat()
    _flip_byte(model, 1000)
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: ctime moved
    clock.advance(INTERVAL)
    assert [t for t, _ in monitor.poll()] == ["model_integrity"]
    assert monitor.checks == 2


def test_model_interval_runs_on_the_monotonic_clock(model: Path, clock: ManualClock) -> None:
    monitor = ModelIntegrityMonitor(model, _sha(MODEL), clock, INTERVAL)
    monitor.poll()
    clock.jump_wall(3600.0)
    monitor.poll()
    assert monitor.checks == 1


def test_model_larger_than_one_chunk_is_hashed_whole(tmp_path: Path, clock: ManualClock) -> None:
    big = tmp_path / "big.onnx"
    data = MODEL * 200  # 3.2 MiB: several 1 MiB chunks
    big.write_bytes(data)
    monitor = ModelIntegrityMonitor(big, _sha(data).upper(), clock, INTERVAL)
    assert monitor.poll() == []

    _flip_byte(big, len(data) - 1)  # the last byte of the last chunk
    clock.advance(INTERVAL)
    assert [t for t, _ in monitor.poll()] == ["model_integrity"]


@pytest.mark.parametrize(
    ("digest", "interval", "message"),
    [
        ("ab12", INTERVAL, "expected a sha256 of 64 hex digits, got 'ab12'"),
        ("z" * 64, INTERVAL, "expected a sha256 of 64 hex digits"),
        (_sha(MODEL), 0.0, "expected interval_s > 0, got 0.0"),
    ],
)
def test_model_monitor_refuses_impossible_settings(
    model: Path, clock: ManualClock, digest: str, interval: float, message: str
) -> None:
    with pytest.raises(MonitorSetupError, match=message):
        ModelIntegrityMonitor(model, digest, clock, interval)


def test_clock_stepped_forward_raises(clock: ManualClock) -> None:
    monitor = ClockJumpMonitor(clock, threshold_s=2.0)
    clock.advance(10.0)
    assert monitor.poll() == []

    clock.jump_wall(3600.0)
    assert monitor.poll() == [
        ("clock_jump", "wall clock stepped +3600.0 s against the monotonic clock")
    ]
    clock.advance(1.0)
    assert monitor.poll() == []  # the step is reported once, against the previous poll
    assert monitor.take_cleared() == []


def test_clock_stepped_back_raises(clock: ManualClock) -> None:
    monitor = ClockJumpMonitor(clock, threshold_s=2.0)
    clock.jump_wall(-5.0)
    assert monitor.poll() == [
        ("clock_jump", "wall clock stepped -5.0 s against the monotonic clock")
    ]


def test_clock_step_within_threshold_is_tolerated(clock: ManualClock) -> None:
    monitor = ClockJumpMonitor(clock, threshold_s=2.0)
    clock.jump_wall(1.5)
    clock.advance(1.0)
    assert monitor.poll() == []
    with pytest.raises(MonitorSetupError, match="expected threshold_s > 0, got -1"):
        ClockJumpMonitor(clock, threshold_s=-1)


def test_worker_without_heartbeat_is_reported_hung(clock: ManualClock) -> None:
    dog = Watchdog(clock, timeout_s=6.0)
    dog.expect("worker")
    clock.advance(5.9)
    assert dog.poll() == []

    clock.advance(1.3)
    assert dog.poll() == [("worker_hang", "worker: no progress for 7.2 s (timeout 6.0 s)")]
    assert dog.take_cleared() == []

    dog.beat("worker")
    assert dog.poll() == []
    assert dog.take_cleared() == ["worker_hang"]
    assert dog.take_cleared() == []


def test_heartbeats_keep_a_worker_alive(clock: ManualClock) -> None:
    dog = Watchdog(clock, timeout_s=6.0)
    dog.expect("worker")
    for _ in range(20):
        clock.advance(5.0)
        dog.beat("worker")
        assert dog.poll() == []


def test_worker_hang_clears_when_the_worker_progresses_other_blocks_fail(
    clock: ManualClock,
) -> None:
    dog = Watchdog(clock, timeout_s=6.0)
    dog.expect("worker")
    dog.expect("verifier")
    clock.advance(7.0)
    assert [(t, d.split(":")[0]) for t, d in dog.poll()] == [
        ("block_failed", "verifier"),
        ("worker_hang", "worker"),
    ]

    assert dog.hung == {"verifier", "worker"}
    dog.beat("worker")
    assert [(t, d.split(":")[0]) for t, d in dog.poll()] == [("block_failed", "verifier")]
    assert dog.take_cleared() == ["worker_hang"] and dog.hung == {"verifier"}

    dog.forget("verifier")
    dog.beat("ghost")  # a beat from a process nobody expects is ignored
    assert dog.poll() == []
    assert dog.take_cleared() == []


def test_a_crash_of_another_block_than_the_worker_is_block_failed(clock: ManualClock) -> None:
    dog = Watchdog(clock, timeout_s=6.0)
    dog.expect("ingest:cam1")
    assert dog.report_exit("ingest:cam1", 1) == ("block_failed", "ingest:cam1 exited with code 1")
    assert dog.poll() == [("block_failed", "ingest:cam1 exited with code 1")]


def test_worker_killed_by_sigkill_is_reported_crashed_with_signal_name(
    clock: ManualClock,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL
    dog = Watchdog(clock, timeout_s=6.0)
    dog.expect("worker")

    event = dog.report_exit("worker", proc.returncode)

    assert event == ("worker_crash", "worker exited with code -9 (SIGKILL)")
    assert dog.poll() == [event]
    clock.advance(60.0)
    assert dog.poll() == []  # a dead process is not also reported hung


@pytest.mark.parametrize(
    ("exitcode", "detail"),
    [
        (1, "worker exited with code 1"),
        (0, "worker exited with code 0"),
        (-int(signal.SIGSEGV), "worker exited with code -11 (SIGSEGV)"),
        (-200, "worker exited with code -200 (unknown signal 200)"),
    ],
)
def test_exit_codes_are_decoded(clock: ManualClock, exitcode: int, detail: str) -> None:
    assert Watchdog(clock, 6.0).report_exit("worker", exitcode) == ("worker_crash", detail)


def test_step_drives_the_machine_from_the_monitors(model: Path, clock: ManualClock) -> None:
    config = DegradationConfig(recovery_seconds=3.0, model_check_interval_s=INTERVAL)
    machine = DegradationMachine(config, clock)
    dog = Watchdog(clock, config.watchdog_timeout_s)
    dog.expect("worker")
    monitors: list[Monitor] = [
        ModelIntegrityMonitor(model, _sha(MODEL), clock, config.model_check_interval_s),
        ClockJumpMonitor(clock, config.clock_jump_threshold_s),
        dog,
    ]
    assert step(machine, monitors) == []

    _flip_byte(model, 7)
    clock.advance(1.0)
    dog.beat("worker")
    assert [(t.to_state, t.trigger) for t in step(machine, monitors)] == [
        (State.SAFE, "model_integrity")
    ]

    model.write_bytes(MODEL)
    seen: list[tuple[State, State]] = []
    for _ in range(16):
        clock.advance(0.5)
        dog.beat("worker")
        seen += [(t.from_state, t.to_state) for t in step(machine, monitors)]
    assert seen == [(State.SAFE, State.DEGRADED), (State.DEGRADED, State.NORMAL)]
    assert machine.active_triggers == {}


def test_hung_worker_killed_by_the_supervisor_turns_hang_into_crash(clock: ManualClock) -> None:
    dog = Watchdog(clock, timeout_s=6.0)
    dog.expect("worker")
    clock.advance(7.0)
    assert [t for t, _ in dog.poll()] == ["worker_hang"]

    dog.report_exit("worker", -int(signal.SIGKILL))

    assert dog.poll() == [("worker_crash", "worker exited with code -9 (SIGKILL)")]
    assert dog.take_cleared() == ["worker_hang"]
