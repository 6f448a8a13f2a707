"""Ingest's tamper shell (issue 13 §1, ADR 0030) on real footage: PETS09's first 10 s.

:class:`TamperWatch` is fed decoded frames as ingest publishes them; the alarms it sends
the supervisor and the gate, the order in which GOP verdicts reach the gate, the demo fault's
tampering and a failing monitor are checked here. The last test runs the real ingest process
with ``tamper-covered`` armed: recording is untouched, the frames in the ring are tampered.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import shared
from tests.e2e.pets_clip import pets09_h264
from tests.ingest.ingest_harness import IngestRig

from kontur.config import load_config
from kontur.errors import ConfigError
from kontur.ingest.tamperwatch import TamperWatch
from kontur.ingest.verdict import Verdict
from kontur.runtime.tamper_faults import TAMPER_FAULTS, ingest_tamper_spec, tamper_fault_spec
from kontur.tamper import TamperKind
from kontur.wire import FrameReady, GopClosed, SegmentStored, WireError, decode
from kontur.wire.messages import TAMPER_ALARM_KINDS, TamperAlarm
from kontur.wire.verdict import GopVerdict

av = pytest.importorskip("av")

FPS = 10
FRAMES = 100  # 10 s
GOP = 20  # 2 s GOPs


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """PETS09's first 10 s, decoded (BGR), at 10 fps: frame i is shown at i / 10 s."""
    src = shared("video", "pets09_s2l1_480x360.avi")
    out: list[np.ndarray] = []
    with av.open(str(src)) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="bgr24"))
            if len(out) == FRAMES:
                break
    return out


class Pipes:
    """What the watch sent the supervisor and the gate, in order (ingest's two outboxes)."""

    def __init__(self) -> None:
        self.supervisor: list[Any] = []
        self.gate: list[Any] = []


def _watch(spec: dict[str, Any] | None = None) -> tuple[TamperWatch, Pipes]:
    pipes = Pipes()
    return TamperWatch("cam1", spec, pipes.supervisor.append, pipes.gate.append), pipes


def _gop(index: int) -> GopClosed:
    first, last = index * GOP, index * GOP + GOP - 1
    return GopClosed(
        verdict=GopVerdict(camera_id="cam1", gop_index=index, verdict=Verdict.UNSIGNED,
                           reasons=("no signature",)),
        first_frame=first, last_frame=last, start_pts_s=first / FPS, end_pts_s=last / FPS,
        segment_sha256="0" * 64, segment_size=1,
    )  # fmt: skip


def _run(watch: TamperWatch, frames: list[np.ndarray]) -> list[np.ndarray]:
    """Frames through the watch as ingest publishes them; each GOP's verdict after it."""
    out = []
    for i, img in enumerate(frames):
        out.append(watch.frame(img, i / FPS, i))
        if i % GOP == GOP - 1:
            watch.to_gate(_gop(i // GOP))
    watch.finish()
    return out


def _alarms(msgs: list[Any]) -> list[TamperAlarm]:
    return [m for m in msgs if isinstance(m, TamperAlarm)]


def test_wire_kinds_are_the_monitors_and_every_fault_names_one() -> None:
    assert set(TAMPER_ALARM_KINDS) == {k.value for k in TamperKind} | {"low_quality"}
    kinds = {(tamper_fault_spec(f) or {}).get("kind") for f in TAMPER_FAULTS}
    assert kinds == {k.value for k in TamperKind}
    assert tamper_fault_spec("worker-freeze") is None


_START: dict[str, Any] = {
    "type": "tamper", "camera_id": "cam1", "transition": "start", "kind": "covered",
    "score": 1.5, "reason": "r", "start_s": 3.2, "at_s": 4.2, "first_frame": 31,
    "quality_ok": True,
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"end_s": 5.0}, "tamper: Value error, start: expected end_s and last_frame null"),
        ({"transition": "end", "end_s": 3.0, "last_frame": 40}, "expected >= start_s 3.2"),
        ({"transition": "end", "end_s": 5.0, "last_frame": 30}, "expected >= first_frame 31"),
        ({"kind": "hand"}, "tamper.kind: Input should be 'covered'"),
        ({"reason": "two\nlines"}, "reason: expected one line, got several"),
        ({"reason": "x" * 301}, "tamper.reason: String should have at most 300 characters"),
        ({"score": -1}, "tamper.score: Input should be greater than or equal to 0"),
        ({"score": float("nan")}, "tamper.score: Input should be a finite number"),
        ({"forged": 1}, "tamper.forged: Extra inputs are not permitted"),
    ],
    ids=[
        "start_with_an_end",
        "end_before_start",
        "last_before_first",
        "unknown_kind",
        "multi_line_reason",
        "unbounded_reason",
        "negative_score",
        "nan_score",
        "extra_field",
    ],
)
def test_a_malformed_tamper_alarm_is_refused(change: dict[str, Any], fragment: str) -> None:
    data = json.dumps({**_START, **change}).encode()
    with pytest.raises(WireError, match="malformed message at ") as err:
        decode(data)
    assert fragment in str(err.value)
    assert isinstance(decode(json.dumps(_START).encode()), TamperAlarm)  # the control


def test_a_clean_camera_raises_nothing_and_is_analysed_by_time(frames: list[np.ndarray]) -> None:
    watch, pipes = _watch({"max_fps": 5.0})
    out = _run(watch, frames)
    assert all(a is b for a, b in zip(out, frames, strict=True))  # no fault: untouched
    assert _alarms(pipes.supervisor) == [] and watch.errors == 0
    assert watch.analysed == FRAMES // 2  # 5 of every 10 fps, by stream time
    assert [g.verdict.gop_index for g in pipes.gate] == [0, 1, 2, 3, 4]


def test_a_covered_camera_is_alarmed_before_its_verdicts_reach_the_gate(
    frames: list[np.ndarray],
) -> None:
    watch, pipes = _watch({"fault": tamper_fault_spec("tamper-covered")})
    out = _run(watch, frames)
    assert np.array_equal(out[29], frames[29]) and not np.array_equal(out[40], frames[40])
    (start,) = _alarms(pipes.supervisor)
    assert (start.transition, start.kind, start.quality_ok) == ("start", "covered", True)
    assert 3.0 <= start.start_s < 5.0 and start.at_s <= start.start_s + 2.0  # within 2 s
    # the frame after the last one analysed clean (every other frame is analysed)
    assert start.first_frame == round(start.start_s * FPS) - 1
    assert _alarms(pipes.gate) == [start]
    # every GOP whose frames the event may touch reaches the gate after the alarm
    order = [m.verdict.gop_index if isinstance(m, GopClosed) else "alarm" for m in pipes.gate]
    touched = [g for g in range(5) if (g + 1) * GOP - 1 >= start.first_frame]
    assert order.index("alarm") < min(order.index(g) for g in touched), order


def test_a_verdict_waits_for_the_monitor_to_see_past_its_gop(frames: list[np.ndarray]) -> None:
    watch, pipes = _watch()
    for i in range(GOP):
        watch.frame(frames[i], i / FPS, i)
    watch.to_gate(_gop(0))  # its last frame at 1.9 s
    assert pipes.gate == []
    i = GOP
    while not pipes.gate:
        watch.frame(frames[i], i / FPS, i)
        i += 1
    assert (i - 1) / FPS >= 1.9 + watch.horizon_s
    watch.to_gate(_gop(1))
    watch.finish()  # the source ended: the rest go, in order
    assert [g.verdict.gop_index for g in pipes.gate] == [0, 1]


def test_low_quality_refuses_at_once_and_clears_with_hysteresis(frames: list[np.ndarray]) -> None:
    dark = [(f * 0.05).astype(np.uint8) for f in frames[:30]]
    watch, pipes = _watch()
    _run(watch, dark + frames[30:])
    # (the monitor enrolled on the dark picture; what it makes of the light is its own call)
    start, end = [a for a in _alarms(pipes.supervisor) if a.kind == "low_quality"]
    assert (start.transition, start.kind, start.quality_ok) == ("start", "low_quality", False)
    assert start.first_frame == 0 and "too dark" in start.reason
    assert (end.transition, end.kind, end.quality_ok) == ("end", "low_quality", True)
    assert end.end_s == 3.0 and end.last_frame == 29  # the picture came back at frame 30
    assert end.at_s >= 3.0 + watch.clear_s  # ... and stayed good this long


def test_a_failing_monitor_is_counted_and_recording_goes_on(frames: list[np.ndarray]) -> None:
    watch, pipes = _watch()
    tiny = np.zeros((16, 16, 3), np.uint8)  # no check can use it: the monitor raises
    assert watch.frame(tiny, 0.0, 0) is tiny
    for i in range(1, FRAMES):
        watch.frame(frames[i], i / FPS, i)
    assert watch.errors == 1 and watch.analysed == FRAMES // 2
    assert _alarms(pipes.supervisor) == []


def test_a_bad_fault_or_a_disabled_monitor_never_stops_a_frame(frames: list[np.ndarray]) -> None:
    watch, pipes = _watch({"fault": {"kind": "hand", "at_s": 0.0, "seed": 1}})
    assert watch.errors == 1 and watch.injector is None and watch.monitor is not None
    assert watch.frame(frames[0], 0.0, 0) is frames[0]
    watch, pipes = _watch({"enabled": False})
    assert watch.monitor is None
    watch.to_gate(_gop(0))
    assert [g.verdict.gop_index for g in pipes.gate] == [0]  # nothing to wait for


def test_the_ingest_process_tampers_what_it_publishes_never_what_it_records(
    tmp_path: Path,
) -> None:
    clip = pets09_h264(tmp_path / "pets09_10s.mp4", FRAMES, FPS)  # GOPs of 2 s
    with av.open(str(clip)) as c:
        source = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    seen: dict[int, np.ndarray] = {}
    spec = {"tamper": {"enabled": True, "max_fps": 5.0, "monitor": {},
                       "fault": tamper_fault_spec("tamper-covered")}}  # fmt: skip
    with IngestRig(tmp_path, clip, spec=spec) as rig:
        reader, stop = rig.reader(1), threading.Event()

        def consume() -> None:
            while not stop.is_set():
                slot = reader.read_next()
                if slot is None:
                    time.sleep(0.001)
                    continue
                meta = decode(slot.meta)
                assert isinstance(meta, FrameReady)
                seen[meta.frame_index] = slot.frame.reshape(360, 480, 3)

        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        try:
            run = rig.run(timeout=120)
            deadline = time.monotonic() + 10
            while len(seen) < FRAMES and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            stop.set()
            thread.join()
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert run.ended.frames == FRAMES and run.ended.error is None
    # recording: every GOP stored, as the camera sent it
    assert [m.gop_index for m in run.of(SegmentStored) if not m.end_of_stream] == [0, 1, 2, 3, 4]
    covered = [a for a in run.of(TamperAlarm) if a.kind == "covered"]
    assert covered and covered[0].transition == "start"
    # analysis: the verifier's (and the worker's) frames are the tampered ones from 3 s on
    assert np.array_equal(seen[10], source[10])
    diff = np.abs(seen[60].astype(np.int16) - source[60].astype(np.int16)).mean()
    assert diff > 10, diff


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("tamper:\n  clear_ratio: 1.5\n", "key tamper.clear_ratio: expected"),
        ("tamper:\n  onsett_s: 1\n", "key tamper.onsett_s: expected a known key"),
        ("tamper:\n  kinds: [hand]\n", "key tamper.kinds: expected a tamper kind among"),
        ("tamper:\n  on_critical: maybe\n", "key tamper.on_critical: Input should be"),
        ("tamper:\n  max_fps: 0\n", "key tamper.max_fps: Input should be greater than 0"),
    ],
    ids=["out_of_range", "typo", "unknown_kind", "unknown_answer", "no_rate"],
)
def test_tamper_settings_are_checked_at_config_load(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "kontur.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"config {path}: ")
    assert fragment in message, message


def test_the_monitor_settings_reach_ingest(tmp_path: Path) -> None:
    path = tmp_path / "kontur.yaml"
    path.write_text("tamper:\n  on_critical: deny\n  clear_s: 4.0\n  kinds: [covered, frozen]\n")
    cfg = load_config(path)
    assert cfg.tamper.on_critical == "deny" and cfg.tamper.max_fps == 5.0
    spec = ingest_tamper_spec(cfg.tamper, "tamper-frozen")
    assert spec["monitor"] == {"clear_s": 4.0, "kinds": ["covered", "frozen"]}
    assert spec["fault"] == {"kind": "frozen", "at_s": 3.0, "seed": 1}
    watch, _ = _watch(spec)
    assert watch.errors == 0 and watch.clear_s == 4.0 and watch.monitor is not None
    assert watch.monitor.config.kinds == {TamperKind.COVERED, TamperKind.FROZEN}
