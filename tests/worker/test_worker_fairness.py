"""The worker shares its analysis fairly between cameras.

With two rings full (a backlog, as when one camera is an unpaced file), the worker takes one
frame per camera in turn; before, it drained the first ring completely, and a looping file
camera could starve the others of analysis for minutes. A camera whose ring keeps filling
does not hold back a frame another camera publishes meanwhile either.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from tests.worker.rings import loop_spec, publish

from kontur.wire import TrackFrame
from kontur.wire.channel import Inbox
from kontur.wire.framering import FrameRing
from kontur.worker.detectors import HogPersonDetector
from kontur.worker.process import WorkerLoop

H, W, FRAMES = 64, 96, 6


def _write(ring: FrameRing, camera_id: str, index: int) -> None:
    publish(ring, camera_id, index, np.zeros((H, W, 3), np.uint8))


def _fill(ring: FrameRing, camera_id: str) -> None:
    for i in range(FRAMES):
        _write(ring, camera_id, i)


def _spec(rings: list[FrameRing], wake_r: int, v_w: int, s_w: int) -> dict[str, Any]:
    return loop_spec(rings, (wake_r, v_w, s_w), {})


@pytest.fixture
def rings() -> Iterator[list[FrameRing]]:
    made = [FrameRing(f"kontur-fair-{secrets.token_hex(4)}", 8, H, W, readers=1) for _ in (1, 2)]
    try:
        yield made
    finally:
        for ring in made:
            ring.close(unlink=True)


def test_a_backlog_is_worked_off_one_frame_per_camera_in_turn(rings: list[FrameRing]) -> None:
    (wake_r, wake_w), (v_r, v_w), (s_r, s_w) = os.pipe(), os.pipe(), os.pipe()
    spec = _spec(rings, wake_r, v_w, s_w)
    loop = WorkerLoop(spec, HogPersonDetector(score_threshold=0.3, nms_threshold=0.5))
    for i, ring in enumerate(rings, 1):
        _fill(ring, f"cam{i}")
    loop.drain()
    os.close(v_w)
    got = [m for m in Inbox(v_r, "worker").drain() if isinstance(m, TrackFrame)]
    order = [(m.camera_id, m.frame_index) for m in got]
    assert len(order) == 2 * FRAMES, order
    assert order[:4] == [("cam1", 0), ("cam2", 0), ("cam1", 1), ("cam2", 1)], order
    for fd in (wake_r, wake_w, v_r, s_r, s_w):
        os.close(fd)


class _Refilling(HogPersonDetector):
    """The detector, wrapped so that each inference is a moment in which cameras publish:
    ``cam1`` (an unpaced file) refills its ring after every call for ``calls`` calls, and
    ``cam2`` (a paced camera) publishes one frame after its ring was drained."""

    def __init__(self, rings: list[FrameRing], calls: int) -> None:
        super().__init__(score_threshold=0.3, nms_threshold=0.5)
        self.rings, self.calls, self.n = rings, calls, 0

    def infer(self, frame: np.ndarray) -> Any:
        self.n += 1
        if self.n < self.calls:
            _write(self.rings[0], "cam1", 100 + self.n)
        if self.n == 4:
            _write(self.rings[1], "cam2", 99)
        return super().infer(frame)


def test_a_camera_that_keeps_its_ring_full_does_not_starve_a_paced_one(
    rings: list[FrameRing],
) -> None:
    (wake_r, wake_w), (v_r, v_w), (s_r, s_w) = os.pipe(), os.pipe(), os.pipe()
    spec = _spec(rings, wake_r, v_w, s_w)
    detector = _Refilling(rings, calls=30)
    loop = WorkerLoop(spec, detector)
    _write(rings[0], "cam1", 0)
    _write(rings[1], "cam2", 0)
    loop.drain()
    os.close(v_w)
    order = [(m.camera_id, m.frame_index) for m in Inbox(v_r, "worker").drain()
             if isinstance(m, TrackFrame)]  # fmt: skip
    late = order.index(("cam2", 99))  # published while cam1's ring was never empty
    assert late <= 6, order  # the next round, not after cam1's whole backlog
    assert order[-1][0] == "cam1" and len(order) >= 30
    for fd in (wake_r, wake_w, v_r, s_r, s_w):
        os.close(fd)
