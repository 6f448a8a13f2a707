"""The run state the supervisor publishes (issue 11 §8): a real Recorder fed synthetic
messages, a real StatePublisher, the snapshot read back, and its Prometheus exposition."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kontur.api.metrics import exposition
from kontur.archive import Archive
from kontur.clock import ManualClock
from kontur.config import load_config
from kontur.degrade import DegradationMachine
from kontur.runtime.publish import StatePublisher
from kontur.runtime.recorder import RECENT_LATENCIES, CameraStats, Recorder
from kontur.runtime.supervisor import Supervisor
from kontur.wire import Decision, DetectionBatch, GopClosed, Outcome, SegmentStored
from kontur.wire.runstate import read_run_state
from kontur.wire.verdict import GopVerdict, Verdict

GOP_FRAMES = 10


class _Clock:
    """The recorder's arrival clock, moved by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class _Run:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = _Clock()
        self.archive = Archive.open(tmp_path / "data", ManualClock())
        self.stats = {"cam1": CameraStats(source="test"), "cam2": CameraStats(source="test")}
        self.recorder = Recorder(self.archive, self.stats, [], clock=self.clock)
        self.data_dir = tmp_path / "data"
        self.publisher = StatePublisher(
            self.data_dir,
            "site",
            1.0,
            stats=self.stats,
            supervisor=Supervisor(tmp_path / "run"),
            machine=DegradationMachine(load_config().degradation, ManualClock()),
            archive=self.archive,
            desk=None,
            rings={},
        )

    def gop(self, cam: str, g: int, *, close: bool = True) -> None:
        """Ingest stored GOP ``g`` (frames g*10 .. g*10+9), then (``close``) its verdict."""
        ref = self.archive.segments.put(f"{cam} gop {g}".encode())
        seg = SegmentStored(
            camera_id=cam, gop_index=g, segment_sha256=ref.sha256, segment_size=ref.size
        )
        assert self.recorder.on_message(f"ingest:{cam}", seg) is None
        if close:
            self.recorder.on_message(f"ingest:{cam}", _closed(cam, g, ref.sha256, ref.size))

    def decide(self, cam: str, frame: int, gops: tuple[int, ...]) -> None:
        self.recorder.on_message("gate", _decision(cam, frame, gops))


def _closed(cam: str, g: int, sha256: str, size: int) -> GopClosed:
    return GopClosed(
        verdict=GopVerdict(camera_id=cam, gop_index=g, verdict=Verdict.UNSIGNED, reasons=("r",)),
        first_frame=g * GOP_FRAMES, last_frame=g * GOP_FRAMES + GOP_FRAMES - 1,
        start_pts_s=float(g), end_pts_s=g + 0.9, segment_sha256=sha256, segment_size=size,
    )  # fmt: skip


def _decision(cam: str, frame: int, gops: tuple[int, ...]) -> Decision:
    return Decision(
        camera_id=cam, rule="r", action="alarm", critical=False, track_id=1, frame_index=frame,
        outcome=Outcome.OPERATOR, reasons=("why",), gops=gops, at=5.0,
    )  # fmt: skip


@pytest.fixture
def run(tmp_path: Path) -> Iterator[_Run]:
    r = _Run(tmp_path)
    yield r
    r.archive.close()


def test_latency_runs_from_the_frames_gop_stored_to_the_decision_received(run: _Run) -> None:
    run.gop("cam1", 0)
    run.clock.t += 0.5
    run.gop("cam1", 1)
    run.clock.t += 0.25
    # the frame (15) is in GOP 1 by ingest's range, whatever order the gate names GOPs in
    run.decide("cam1", 15, (0, 1))
    run.clock.t += 1.0
    run.decide("cam1", 3, (0,))  # GOP 0, stored 1.75 s ago
    cam = run.publisher.snapshot(200.0).cameras[0]
    assert cam.id == "cam1"
    assert cam.latency_s == pytest.approx((0.25, 1.75))
    assert run.publisher.snapshot(200.0).cameras[1].latency_s == ()


def test_a_decision_read_before_its_gops_verdict_uses_the_gop_the_gate_names(run: _Run) -> None:
    """The gate's pipe may be read before ingest's GopClosed: the newest named GOP, stored
    and not closed yet, holds the frame."""
    run.gop("cam1", 0)
    run.gop("cam1", 1, close=False)
    run.clock.t += 0.125
    run.decide("cam1", 12, (0, 1))
    assert tuple(run.stats["cam1"].latency_s) == (0.125,)
    assert run.stats["cam1"].unmeasured == 0


def test_a_decision_that_cannot_be_placed_is_counted_not_guessed(run: _Run) -> None:
    run.gop("cam1", 0)
    run.decide("cam1", 55, (0,))  # frame 55 is in no GOP ingest told of
    run.decide("cam1", 5, (7,))  # GOP 0 holds frame 5: its range wins over the named GOP
    run.decide("cam2", 5, (0,))  # nothing stored for cam2
    assert tuple(run.stats["cam1"].latency_s) == (0.0,)
    assert run.stats["cam1"].unmeasured == 1 and run.stats["cam2"].unmeasured == 1


def test_latencies_keep_the_newest_256(run: _Run) -> None:
    run.gop("cam1", 0)
    for i in range(RECENT_LATENCIES + 10):
        run.clock.t = 100.0 + i
        run.decide("cam1", 1, (0,))
    lat = run.publisher.snapshot(0.0).cameras[0].latency_s
    assert len(lat) == RECENT_LATENCIES == 256
    assert lat[0] == 10.0 and lat[-1] == RECENT_LATENCIES + 9


def test_the_class_mix_is_summed_from_the_workers_batches(run: _Run) -> None:
    """The class mix is the worker's claim per GOP, summed per camera (monitoring only)."""
    run.gop("cam1", 0)
    run.gop("cam1", 1)
    for gop, classes in ((0, {"person": 3}), (1, {"person": 1, "car": 2})):
        batch = DetectionBatch(
            camera_id="cam1", gop_index=gop, model_id="m", config_id="c", platform="cpu",
            frames=10, detections=4, track_ids=(1, 2), classes=classes,
        )  # fmt: skip
        assert run.recorder.on_message("worker", batch) is None
    cam = run.publisher.snapshot(0.0).cameras[0]
    assert cam.detections == 8 and cam.classes == {"person": 4, "car": 2}


def test_published_snapshot_and_metrics_show_latency_buckets_and_classes(run: _Run) -> None:
    run.gop("cam1", 0)
    for dt in (0.03, 0.2, 0.7, 3.0):
        run.clock.t = 100.0 + dt
        run.decide("cam1", 2, (0,))
    # the worker's claim, when its batch carries one (the recorder's counter is what publishes)
    run.stats["cam1"].classes.update({"person": 3, "car": 1})
    run.publisher.publish(150.0)
    state = read_run_state(run.data_dir)
    assert state is not None
    cam = state.cameras[0]
    assert cam.latency_s == pytest.approx((0.03, 0.2, 0.7, 3.0))
    assert cam.classes == {"person": 3, "car": 1}
    text = exposition(state, 150.0).decode()
    lines = set(text.splitlines())
    for le, n in (("0.05", 1), ("0.25", 2), ("0.5", 2), ("1.0", 3), ("5.0", 4), ("+Inf", 4)):
        assert f'kontur_decision_latency_seconds_bucket{{camera="cam1",le="{le}"}} {n}.0' in lines
    assert 'kontur_decision_latency_seconds_gcount{camera="cam1"} 4.0' in lines
    assert 'kontur_detections_by_class_total{camera="cam1",class="person"} 3.0' in lines
    assert "worker's claim" in text


def test_each_cameras_own_state_is_published(run: _Run) -> None:
    """ADR 0040: cam1 covered degrades cam1 only; the snapshot and the metrics say so."""
    run.publisher.machine.raise_trigger("camera_tamper", "cam1: covered", camera="cam1")
    run.publisher.publish(150.0)
    state = read_run_state(run.data_dir)
    assert state is not None
    assert [(c.id, c.state) for c in state.cameras] == [("cam1", "DEGRADED"), ("cam2", "NORMAL")]
    lines = set(exposition(state, 150.0).decode().splitlines())
    assert 'kontur_camera_degradation_state{camera="cam1",state="DEGRADED"} 1.0' in lines
    assert 'kontur_camera_degradation_state{camera="cam1",state="NORMAL"} 0.0' in lines
    assert 'kontur_camera_degradation_state{camera="cam2",state="NORMAL"} 1.0' in lines
