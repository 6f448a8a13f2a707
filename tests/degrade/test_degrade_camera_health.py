"""The supervisor's part of per-camera states (ADR 0040): ``Health`` fed what ingest and the
verifier send, on a real archive, machine, recorder and pipes (no process is needed). A
covered or failing camera degrades itself only: its own ``state`` record and message, its
own analysis stride; a site trigger reaches every camera."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from kontur.archive import Archive
from kontur.clock import ManualClock
from kontur.config import Config
from kontur.degrade import DegradationMachine, State, Watchdog
from kontur.runtime.health import Health
from kontur.runtime.recorder import CameraStats, Recorder
from kontur.runtime.supervisor import Block, Supervisor
from kontur.runtime.wiring import Wiring
from kontur.wire import ControlMessage, GopClosed, Message, StateChanged, decode
from kontur.wire.channel import Outbox
from kontur.wire.edges import Violation
from kontur.wire.messages import Finding, TamperAlarm
from kontur.wire.verdict import GopVerdict, Verdict

CAMS = ("cam1", "cam2")
WINDOW = 10


@dataclass
class Rig:
    health: Health
    archive: Archive
    clock: ManualClock
    supervisor: Supervisor
    gate_fd: int
    ingest_fd: dict[str, int]


def _config() -> Config:
    raw = yaml.safe_load(resources.files("kontur").joinpath("defaults/kontur.yaml").read_text())
    raw["cameras"] = [{"id": c, "priority": False} for c in CAMS]
    raw["degradation"]["anomalous_window"] = WINDOW
    return Config.model_validate(raw)


def _pipe(fds: list[int]) -> tuple[int, Outbox]:
    r, w = os.pipe()
    os.set_blocking(r, False)
    fds += [r, w]
    return r, Outbox(w)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    cfg, clock, fds = _config(), ManualClock(), []
    archive = Archive.open(tmp_path / "d", clock)
    stats = {c: CameraStats(source="test") for c in CAMS}
    gate_fd, to_gate = _pipe(fds)
    ingest = {c: _pipe(fds) for c in CAMS}
    wiring = Wiring(blocks=[], inboxes={}, to_gate=to_gate,
                    to_ingest={c: out for c, (_, out) in ingest.items()}, rings={})  # fmt: skip
    sup = Supervisor(tmp_path / "run")
    h = Health(
        cfg, DegradationMachine(cfg.degradation, clock),
        Watchdog(clock, cfg.degradation.watchdog_timeout_s), [], sup,
        wiring, archive, Recorder(archive, stats, []), stats, lambda: "cpu",
    )  # fmt: skip
    yield Rig(h, archive, clock, sup, gate_fd, {c: r for c, (r, _) in ingest.items()})
    sup.stop_all(grace_s=2.0)
    archive.close()
    for fd in fds:
        os.close(fd)


def _read(fd: int) -> list[Message]:
    try:
        data = os.read(fd, 1 << 16)
    except BlockingIOError:
        return []
    return [decode(line) for line in data.splitlines()]


def _states(rig: Rig) -> list[tuple[str | None, str, str]]:
    msgs = [m for m in _read(rig.gate_fd) if isinstance(m, StateChanged)]
    return [(m.camera_id, m.to_state, m.trigger) for m in msgs]


def _strides(rig: Rig) -> dict[str, list[int | None]]:
    out: dict[str, list[int | None]] = {}
    for cam, fd in rig.ingest_fd.items():
        ctl = [m for m in _read(fd) if isinstance(m, ControlMessage)]
        out[cam] = [m.value for m in ctl if m.command == "analysis_stride"]
    return out


def _records(rig: Rig) -> list[dict[str, Any]]:
    rig.archive.flush()
    return [r.payload for r in rig.archive.iter_records() if r.kind == "state"]


def _tamper(cam: str, transition: str = "start") -> TamperAlarm:
    fields: dict[str, Any] = {
        "camera_id": cam, "transition": transition, "kind": "covered", "score": 4.2,
        "reason": "covered seen", "start_s": 3.2, "at_s": 4.2, "first_frame": 31,
        "quality_ok": True,
    }  # fmt: skip
    if transition == "end":
        fields.update(end_s=9.0, last_frame=89)
    return TamperAlarm(**fields)


def _gop(cam: str, i: int, verdict: Verdict) -> GopClosed:
    return GopClosed(
        verdict=GopVerdict(camera_id=cam, gop_index=i, verdict=verdict, reasons=("r",)),
        first_frame=i * 10, last_frame=i * 10 + 9, start_pts_s=i, end_pts_s=i + 0.9,
        segment_sha256="0" * 64, segment_size=1,
    )  # fmt: skip


def test_a_covered_camera_degrades_itself_only(rig: Rig) -> None:
    stride = rig.health.config.degradation.degraded_analysis_stride
    rig.health.on_message(_tamper("cam1"))
    assert rig.health.camera_states() == {"cam1": "DEGRADED", "cam2": "NORMAL"}
    assert rig.health.machine.site_state is State.NORMAL
    assert _states(rig) == [("cam1", "DEGRADED", "camera_tamper")]
    assert _strides(rig) == {"cam1": [stride], "cam2": [1]}  # cam2 keeps its full rate
    (rec,) = _records(rig)
    assert (rec["camera"], rec["from"], rec["to"], rec["trigger"]) == (
        "cam1",
        "NORMAL",
        "DEGRADED",
        "camera_tamper",
    )
    assert rec["detail"].startswith("cam1: covered since 3.2 s")


def test_a_camera_recovers_once_its_own_tamper_ends(rig: Rig) -> None:
    rig.health.on_message(_tamper("cam1"))
    rig.health.on_message(_tamper("cam2"))
    rig.health.on_message(_tamper("cam1", "end"))
    rig.clock.advance(rig.health.config.degradation.recovery_seconds)
    rig.health.poll()
    assert rig.health.camera_states() == {"cam1": "NORMAL", "cam2": "DEGRADED"}
    moved = _states(rig)
    assert moved[-1] == ("cam1", "NORMAL", "recovered")
    assert [r.get("camera") for r in _records(rig)] == ["cam1", "cam2", "cam1"]


def test_failing_gops_and_drift_degrade_their_camera(rig: Rig) -> None:
    n = rig.health.config.degradation.camera_failing_gops
    for i in range(n):
        rig.health.on_message(_gop("cam2", i, Verdict.NOT_AUTHENTIC))
    finding = Finding(camera_id="cam1", frame_index=5, agree=True, reasons=("drift: x3 rate",))
    rig.health.on_message(finding)
    assert _states(rig) == [
        ("cam2", "DEGRADED", "camera_untrusted"),
        ("cam1", "DEGRADED", "anomalous_results"),
    ]
    assert rig.health.machine.site_state is State.NORMAL


def test_a_site_trigger_degrades_every_camera(rig: Rig) -> None:
    rig.health.on_message(_tamper("cam1"))
    rig.health.on_violation(Violation("worker", "supervisor", "decision", "not its edge"))
    assert rig.health.camera_states() == {"cam1": "DEGRADED", "cam2": "DEGRADED"}
    assert _states(rig)[-1] == (None, "DEGRADED", "worker_misbehaving")
    assert "camera" not in _records(rig)[-1]  # a site record is what it always was


def _findings(rig: Rig, cam: str, agree: bool) -> None:
    for i in range(WINDOW):
        reasons = () if agree else ("track 3: jumped",)
        rig.health.on_message(Finding(camera_id=cam, frame_index=i, agree=agree, reasons=reasons))


def test_a_camera_the_verifier_keeps_disagreeing_on_degrades_alone(rig: Rig) -> None:
    _findings(rig, "cam2", agree=True)
    _findings(rig, "cam1", agree=False)
    assert _states(rig) == [("cam1", "DEGRADED", "anomalous_results")]
    assert rig.health.machine.site_state is State.NORMAL
    assert _records(rig)[0]["detail"] == "cam1: verifier disagreed on 100% of the last 10"


def test_a_majority_of_cameras_disagreeing_degrades_the_site(rig: Rig) -> None:
    _findings(rig, "cam1", agree=False)
    _findings(rig, "cam2", agree=False)  # the shared worker is wrong, not one scene
    assert _states(rig) == [
        ("cam1", "DEGRADED", "anomalous_results"),
        (None, "DEGRADED", "anomalous_results"),
    ]
    assert _records(rig)[-1]["detail"] == (
        "verifier disagreed on 100% of the last 10 (2 of 2 cameras, last cam2)"
    )


def test_cameras_drifting_together_degrade_the_site(rig: Rig) -> None:
    """A worker skewed on every camera (drift reasons on every finding) is the site's
    problem: the drifting cameras' findings count in the majority, so the worker can move."""
    for cam in CAMS:
        for i in range(WINDOW):
            rig.health.on_message(
                Finding(camera_id=cam, frame_index=i, agree=False, reasons=("drift: x3 rate",))
            )
    assert rig.health.machine.site_state is State.DEGRADED
    assert [(c, t) for c, _, t in _states(rig)][-1] == (None, "anomalous_results")


def test_a_restarted_gate_is_told_the_site_state_and_each_cameras(rig: Rig) -> None:
    # a stand-in gate that waits to be stopped (its spec says "cpu"), then dies unasked
    rig.supervisor.start([Block("gate", "tests.runtime.exiting_block", {"platform": "cpu"}, ())])
    rig.health.on_message(_tamper("cam1"))
    proc = rig.supervisor.running["gate"].proc
    proc.kill()
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    rig.health.poll()
    told = "gate restarted: the current state"
    assert _states(rig) == [
        ("cam1", "DEGRADED", "camera_tamper"),
        (None, "NORMAL", told),
        ("cam1", "DEGRADED", told),
        (None, "DEGRADED", "block_failed"),  # the crash itself, once the gate is back
    ]
