"""Health: the triggers nothing raised before issue 8 (camera failing, anomalous results,
violations), on a real archive, machine and pipes; no process is needed for these."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kontur.archive import Archive
from kontur.clock import ManualClock
from kontur.config import load_config
from kontur.degrade import DegradationMachine, Watchdog
from kontur.runtime.health import Health
from kontur.runtime.recorder import CameraStats, Recorder
from kontur.runtime.supervisor import Supervisor
from kontur.runtime.wiring import Wiring
from kontur.wire import Finding, GopClosed, StateChanged, decode
from kontur.wire.channel import Outbox
from kontur.wire.edges import Violation
from kontur.wire.verdict import GopVerdict, Verdict


@pytest.fixture
def health(tmp_path: Path) -> Iterator[tuple[Health, int, Archive]]:
    cfg = load_config(None)
    clock = ManualClock()
    archive = Archive.open(tmp_path / "d", clock)
    stats = {"cam1": CameraStats(source="test")}
    recorder = Recorder(archive, stats, [])
    r, w = os.pipe()
    os.set_blocking(r, False)
    wiring = Wiring(blocks=[], inboxes={}, to_gate=Outbox(w), to_ingest={}, rings={})
    h = Health(
        cfg,
        DegradationMachine(cfg.degradation, clock),
        Watchdog(clock, cfg.degradation.watchdog_timeout_s),
        [],
        Supervisor(tmp_path / "run"),
        wiring,
        archive,
        recorder,
        stats,
        lambda: "cpu",
    )
    yield h, r, archive
    archive.close()
    os.close(r)
    os.close(w)


def _gop(i: int, verdict: Verdict) -> GopClosed:
    return GopClosed(
        verdict=GopVerdict(camera_id="cam1", gop_index=i, verdict=verdict, reasons=("r",)),
        first_frame=i * 10, last_frame=i * 10 + 9, start_pts_s=i, end_pts_s=i + 0.9,
        segment_sha256="0" * 64, segment_size=1,
    )  # fmt: skip


def _states(fd: int) -> list[StateChanged]:
    data = os.read(fd, 1 << 16)
    return [m for line in data.splitlines() if isinstance(m := decode(line), StateChanged)]


def test_consecutive_failing_gops_of_a_camera_degrade_and_alarm(
    health: tuple[Health, int, Archive],
) -> None:
    h, gate_fd, archive = health
    n = h.config.degradation.camera_failing_gops
    for i in range(n - 1):
        h.on_message(_gop(i, Verdict.MISSING))
    h.on_message(_gop(n - 1, Verdict.AUTHENTIC))  # a good GOP breaks the streak
    for i in range(n, 2 * n - 1):
        h.on_message(_gop(i, Verdict.REPLAYED))
    assert h.machine.state.value == "NORMAL"
    h.on_message(_gop(2 * n - 1, Verdict.NOT_AUTHENTIC))
    assert h.machine.state.value == "DEGRADED"
    (s,) = _states(gate_fd)
    assert s.trigger == "camera_untrusted"
    archive.flush()
    events = [r.payload for r in archive.iter_records() if r.kind == "event"]
    assert events[-1]["event"] == "camera_alarm"
    assert events[-1]["detail"] == f"cam1: {n} consecutive failing GOPs, last NOT_AUTHENTIC"


def test_unsigned_and_pending_gops_are_no_attack(health: tuple[Health, int, Archive]) -> None:
    h, _, _ = health
    for i in range(10):
        h.on_message(_gop(i, Verdict.UNSIGNED if i % 2 else Verdict.PENDING))
    assert h.machine.state.value == "NORMAL"


def test_persistent_verifier_disagreement_is_anomalous_results(
    health: tuple[Health, int, Archive],
) -> None:
    h, gate_fd, _ = health
    window = h.config.degradation.anomalous_window
    assert h.config.degradation.anomalous_disagree_ratio > 1 / 3

    def finding(i: int, agree: bool) -> Finding:
        return Finding(
            camera_id="cam1", frame_index=i, agree=agree, reasons=() if agree else ("x",)
        )

    for i in range(window):  # a clean-footage rate of false alarms: a third
        h.on_message(finding(i, agree=i % 3 != 0))
    assert h.machine.state.value == "NORMAL"
    for i in range(window, 2 * window):  # then the worker goes wrong
        h.on_message(finding(i, agree=False))
    assert h.machine.state.value == "DEGRADED"
    assert _states(gate_fd)[0].trigger == "anomalous_results"


@pytest.mark.parametrize(
    ("sender", "trigger"), [("worker", "worker_misbehaving"), ("gate", "block_failed")]
)
def test_a_violation_is_archived_and_names_its_sender(
    health: tuple[Health, int, Archive], sender: str, trigger: str
) -> None:
    h, gate_fd, archive = health
    h.on_violation(Violation(sender, "supervisor", "decision", "expected one of [...]"))
    assert _states(gate_fd)[0].trigger == trigger
    archive.flush()
    (v,) = [r.payload for r in archive.iter_records() if r.kind == "violation"]
    assert v == {
        "sender": sender,
        "receiver": "supervisor",
        "message_type": "decision",
        "detail": "expected one of [...]",
    }


def test_a_flood_of_violations_is_counted_not_stored_one_by_one(
    health: tuple[Health, int, Archive],
) -> None:
    h, _, archive = health
    now = [1000.0]
    h.machine_clock = lambda: now[0]
    v = Violation("worker", "supervisor", "decision", "forged")
    for _ in range(50):
        h.on_violation(v)
    now[0] += 1.0
    h.on_violation(v)
    archive.flush()
    stored = [r.payload for r in archive.iter_records() if r.kind == "violation"]
    assert len(stored) == 21
    assert stored[-1]["suppressed_before"] == 30
    assert h.recorder.violations == 51
