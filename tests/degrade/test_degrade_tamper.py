"""``camera_tamper``: a degradation trigger that only the end of the last open tamper event
clears (issue 13 §1, ADR 0030); archived first, then to the sinks.

The machine alone, then the supervisor's part on a real archive, degradation machine, recorder,
log sink and gate pipe (no process is needed): ``Health`` and ``Recorder`` fed the
``TamperAlarm`` messages ingest sends.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from degrade_clock import RECOVERY

from kontur.archive import Archive
from kontur.clock import ManualClock
from kontur.config import DegradationConfig, load_config
from kontur.degrade import RECOVERED, DegradationMachine, State, Trigger, Watchdog
from kontur.gate.sinks import LogSink, SinkEvent, SinkStats
from kontur.runtime.health import Health
from kontur.runtime.recorder import CameraStats, Recorder
from kontur.runtime.supervisor import Supervisor
from kontur.runtime.wiring import Wiring
from kontur.wire import StateChanged, decode
from kontur.wire.channel import Outbox
from kontur.wire.messages import TamperAlarm


def test_camera_tamper_degrades_and_never_lapses_by_time_alone() -> None:
    clock = ManualClock()
    m = DegradationMachine(DegradationConfig(recovery_seconds=RECOVERY), clock)
    assert Trigger.CAMERA_TAMPER.target is State.DEGRADED
    assert Trigger.CAMERA_TAMPER.needs_explicit_clear
    (t,) = m.raise_trigger("camera_tamper", "cam1: covered since 3.2 s")
    assert (t.from_state, t.to_state, t.trigger) == (State.NORMAL, State.DEGRADED, "camera_tamper")
    clock.advance(10 * RECOVERY)
    assert m.tick() == [] and m.state is State.DEGRADED  # still covered: no recovery
    m.clear_trigger(Trigger.CAMERA_TAMPER)
    assert m.tick() == []  # hysteresis: the quiet period starts at the clear
    clock.advance(RECOVERY)
    (back,) = m.tick()
    assert (back.to_state, back.trigger) == (State.NORMAL, RECOVERED)


class CommittedAtEmit:
    """A sink that reads the archive on another connection whenever it fires: what was
    committed by then (decide, record, then act)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.seen: list[tuple[SinkEvent, list[str]]] = []

    def emit(self, event: SinkEvent) -> None:
        reader = Archive.open_readonly(self.data_dir)
        try:
            self.seen.append((event, [r.kind for r in reader.iter_records()]))
        finally:
            reader.close()

    def stats(self) -> SinkStats:
        return SinkStats(sink="committed-at-emit", delivered=len(self.seen))

    def close(self) -> None:
        pass


@dataclass
class Site:
    health: Health
    archive: Archive
    gate_fd: int
    log: Path
    stats: dict[str, CameraStats]
    committed: CommittedAtEmit


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    cfg = load_config(None)
    clock = ManualClock()
    # a long batch interval: nothing is committed unless the recorder commits it
    archive = Archive.open(tmp_path / "d", clock, batch_size=10_000, batch_interval_s=3600)
    stats = {c: CameraStats(source="test") for c in ("cam1", "cam2")}
    log = tmp_path / "d" / "actions.jsonl"
    committed = CommittedAtEmit(tmp_path / "d")
    recorder = Recorder(archive, stats, [LogSink(log), committed])
    r, w = os.pipe()
    os.set_blocking(r, False)
    wiring = Wiring(blocks=[], inboxes={}, to_gate=Outbox(w), to_ingest={}, rings={})
    machine = DegradationMachine(cfg.degradation, clock)
    h = Health(
        cfg, machine, Watchdog(clock, cfg.degradation.watchdog_timeout_s), [],
        Supervisor(tmp_path / "run"), wiring, archive, recorder, stats, lambda: "cpu",
    )  # fmt: skip
    yield Site(h, archive, r, log, stats, committed)
    recorder.close()
    archive.close()
    os.close(r)
    os.close(w)


def _alarm(cam: str, kind: str, transition: str = "start", **kw: Any) -> TamperAlarm:
    fields: dict[str, Any] = {
        "camera_id": cam, "transition": transition, "kind": kind, "score": 4.2,
        "reason": f"{kind} seen", "start_s": 3.2, "at_s": 4.2, "first_frame": 31,
        "quality_ok": True,
    }  # fmt: skip
    if transition == "end":
        fields.update(end_s=9.0, last_frame=89)
    return TamperAlarm(**{**fields, **kw})


def _feed(s: Site, msg: TamperAlarm) -> None:
    """What the supervisor's loop does with a message from ingest: record, then health."""
    assert s.health.recorder.on_message(f"ingest:{msg.camera_id}", msg) is None
    s.health.on_message(msg)


def _states(fd: int) -> list[StateChanged]:
    data = os.read(fd, 1 << 16)
    return [m for ln in data.splitlines() if isinstance(m := decode(ln), StateChanged)]


def test_the_trigger_clears_only_when_the_last_open_event_ends(site: Site) -> None:
    m = site.health.machine
    _feed(site, _alarm("cam1", "covered"))
    assert m.state is State.DEGRADED
    (s,) = _states(site.gate_fd)
    assert (s.to_state, s.trigger) == ("DEGRADED", "camera_tamper")
    _feed(site, _alarm("cam2", "frozen"))
    _feed(site, _alarm("cam1", "covered", "end"))
    assert Trigger.CAMERA_TAMPER in m.active_triggers  # cam2 is still frozen
    _feed(site, _alarm("cam2", "frozen", "end"))
    assert Trigger.CAMERA_TAMPER not in m.active_triggers
    assert m.state is State.DEGRADED  # recovery still waits its quiet period (hysteresis)


def test_low_quality_refuses_decisions_but_does_not_degrade(site: Site) -> None:
    _feed(site, _alarm("cam1", "low_quality", quality_ok=False))
    assert site.health.machine.state is State.NORMAL
    assert site.stats["cam1"].tamper[0]["kind"] == "low_quality"
    assert not site.log.read_text()  # archived only: night is not an attack


def test_each_alarm_is_archived_and_a_start_reaches_the_sinks_once_committed(site: Site) -> None:
    _feed(site, _alarm("cam1", "covered"))
    _feed(site, _alarm("cam1", "covered", "end", score=5.0))
    ((_, committed),) = site.committed.seen  # the start only, once durable
    assert committed == ["tamper"]
    site.archive.flush()
    records = [r for r in site.archive.iter_records() if r.kind == "tamper"]
    assert [(r.payload["transition"], r.payload["kind"]) for r in records] == [
        ("start", "covered"),
        ("end", "covered"),
    ]
    (line,) = site.log.read_text().splitlines()  # the start only
    event = json.loads(line)
    assert (event["type"], event["camera_id"], event["trigger"]) == (
        "camera_alarm",
        "cam1",
        "camera_tamper",
    )
    assert event["detail"] == "covered since 3.2 s (score 4.20): covered seen"
    assert event["archive_index"] == records[0].index
    # the summary's entry: opened by the start, closed by the end with its peak score
    assert site.stats["cam1"].tamper == [
        {"kind": "covered", "start_s": 3.2, "end_s": 9.0, "score": 5.0, "reason": "covered seen"}
    ]
