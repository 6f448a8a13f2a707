"""The worker analyses different cameras on different threads at once (``worker.analysis_threads``).

Each camera belongs to one thread, so its frames are analysed, tracked and sent in order;
two cameras' inference calls overlap in time. A failure on one thread (an accelerator
fault) stops the worker as it would the single-threaded loop.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from tests.worker.rings import loop_spec, publish

from kontur.wire import TrackFrame
from kontur.wire.channel import Inbox, wait_readable
from kontur.wire.framering import FrameRing
from kontur.worker.detectors import HogPersonDetector
from kontur.worker.errors import AcceleratorFault
from kontur.worker.process import WorkerLoop, analysis_threads

H, W, FRAMES = 480, 360, 6
_PIXELS = np.random.default_rng(7).integers(0, 255, (H, W, 3), dtype=np.uint8)


def _write(ring: FrameRing, camera_id: str, index: int) -> None:
    publish(ring, camera_id, index, _PIXELS)


def _fill(ring: FrameRing, camera_id: str) -> None:
    for i in range(FRAMES):
        _write(ring, camera_id, i)


def _fill_all(rings: list[FrameRing]) -> None:
    """Every camera's frames, published after the loop's readers attached."""
    for i, ring in enumerate(rings, 1):
        _fill(ring, f"cam{i}")


class _Timed(HogPersonDetector):
    """The HOG detector, with each call's thread and wall-clock interval noted."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__(score_threshold=0.3, nms_threshold=0.5)
        self.calls: list[tuple[str, float, float]] = []
        self.fail_on = fail_on

    def infer(self, frame: np.ndarray) -> Any:
        name = threading.current_thread().name
        if self.fail_on and name == self.fail_on:
            raise AcceleratorFault("simulated: expected an output, got a lost device")
        t0 = time.monotonic()
        out = super().infer(frame)
        self.calls.append((name, t0, time.monotonic()))
        return out


@pytest.fixture
def rings() -> Iterator[list[FrameRing]]:
    made = [FrameRing(f"kontur-thr-{secrets.token_hex(4)}", 8, H, W, readers=1) for _ in (1, 2)]
    try:
        yield made
    finally:
        for ring in made:
            ring.close(unlink=True)


def _loop(rings: list[FrameRing], detector: Any, threads: int | str) -> tuple[WorkerLoop, dict]:
    (wake_r, wake_w), (v_r, v_w), (s_r, s_w) = os.pipe(), os.pipe(), os.pipe()
    spec = loop_spec(rings, (wake_r, v_w, s_w), {"analysis_threads": threads})
    return WorkerLoop(spec, detector), {"wake_w": wake_w, "v_r": v_r, "others": (wake_r, s_r)}


def _run(loop: WorkerLoop, fds: dict, expect: int) -> tuple[list[TrackFrame], BaseException | None]:
    """Wake the loop, collect ``expect`` TrackFrames (or stop at a 60 s bound), then close
    the wake pipe (every writer gone) so that ``run`` returns."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            loop.run()
        except BaseException as exc:
            errors.append(exc)

    os.write(fds["wake_w"], b"\x01")
    runner = threading.Thread(target=target)
    runner.start()
    os.set_blocking(fds["v_r"], False)
    inbox, got = Inbox(fds["v_r"], "worker"), []
    deadline = time.monotonic() + 60
    while len(got) < expect and runner.is_alive() and time.monotonic() < deadline:
        if wait_readable([inbox], 0.2):
            got += [m for m in inbox.drain() if isinstance(m, TrackFrame)]
    os.close(fds["wake_w"])
    runner.join(30)
    assert not runner.is_alive(), "the worker loop did not stop when its wake pipe closed"
    loop.to_verifier.close()
    got += [m for m in inbox.drain() if isinstance(m, TrackFrame)]
    for fd in (fds["v_r"], *fds["others"]):
        os.close(fd)
    return got, errors[0] if errors else None


def test_auto_is_one_thread_per_camera_up_to_the_cpus() -> None:
    cpus = len(os.sched_getaffinity(0))
    assert analysis_threads("auto", 1) == 1
    assert analysis_threads("auto", 64) == cpus
    assert analysis_threads(3, 2) == 2
    assert analysis_threads(1, 14) == 1


def test_two_cameras_are_analysed_at_once_each_in_order(rings: list[FrameRing]) -> None:
    detector = _Timed()
    loop, fds = _loop(rings, detector, 2)
    _fill_all(rings)
    assert [list(s) for s in loop.shards()] == [["cam1"], ["cam2"]]
    got, error = _run(loop, fds, 2 * FRAMES)
    assert error is None
    for cam in ("cam1", "cam2"):
        assert [m.frame_index for m in got if m.camera_id == cam] == list(range(FRAMES))
    threads = {name for name, _, _ in detector.calls}
    assert threads == {"analysis-0", "analysis-1"}, threads
    a = [(t0, t1) for name, t0, t1 in detector.calls if name == "analysis-0"]
    b = [(t0, t1) for name, t0, t1 in detector.calls if name == "analysis-1"]
    overlaps = sum(1 for s0, e0 in a for s1, e1 in b if s0 < e1 and s1 < e0)
    assert overlaps > 0, "the two cameras' inference calls never ran at the same time"


def test_one_thread_keeps_the_round_robin_on_the_calling_thread(rings: list[FrameRing]) -> None:
    detector = _Timed()
    loop, fds = _loop(rings, detector, 1)
    _fill_all(rings)
    got, error = _run(loop, fds, 2 * FRAMES)
    assert error is None
    assert len(got) == 2 * FRAMES
    assert len({name for name, _, _ in detector.calls}) == 1  # the thread that called run()
    assert [(m.camera_id, m.frame_index) for m in got[:4]] == [
        ("cam1", 0), ("cam2", 0), ("cam1", 1), ("cam2", 1)
    ]  # fmt: skip


def test_a_fault_on_one_thread_stops_the_worker_with_that_fault(rings: list[FrameRing]) -> None:
    detector = _Timed(fail_on="analysis-1")
    loop, fds = _loop(rings, detector, 2)
    _fill_all(rings)
    got, error = _run(loop, fds, 2 * FRAMES)
    assert isinstance(error, AcceleratorFault), error
    assert all(m.camera_id == "cam1" for m in got)


def test_a_fault_stops_the_worker_while_another_camera_keeps_it_busy(
    rings: list[FrameRing],
) -> None:
    """cam1's ring refills without end (an overloaded site): cam2's thread fails, and the
    worker must still stop with that fault rather than analyse cam1 for ever."""
    detector = _Timed(fail_on="analysis-1")
    loop, fds = _loop(rings, detector, 2)
    _fill_all(rings)
    stop_feeding, bound_hit = threading.Event(), threading.Event()

    def feed() -> None:
        i, end = FRAMES, time.monotonic() + 30
        while not stop_feeding.is_set():
            if time.monotonic() > end:
                bound_hit.set()
                return
            _write(rings[0], "cam1", i)
            i += 1
            time.sleep(0.005)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        _, error = _run(loop, fds, 10**9)
    finally:
        stop_feeding.set()
        feeder.join()
    assert isinstance(error, AcceleratorFault), error
    assert not bound_hit.is_set(), "the worker ran on while one of its threads had failed"


def test_a_thread_that_cannot_start_leaves_none_running(
    rings: list[FrameRing], monkeypatch: pytest.MonkeyPatch
) -> None:
    start = threading.Thread.start

    def refuse_the_second(self: threading.Thread) -> None:
        if self.name == "analysis-1":
            raise RuntimeError("can't start new thread")
        start(self)

    loop, fds = _loop(rings, _Timed(), 2)
    monkeypatch.setattr(threading.Thread, "start", refuse_the_second)
    _, error = _run(loop, fds, 1)
    assert isinstance(error, RuntimeError) and "can't start" in str(error), error
    assert not [t for t in threading.enumerate() if t.name.startswith("analysis-")]
