"""Frames published into real frame rings as ingest publishes them, and the spec of a worker
loop that reads them: shared by the worker loop tests (fairness, analysis threads)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kontur.wire import FrameReady
from kontur.wire.framering import FrameRing


def publish(ring: FrameRing, camera_id: str, index: int, frame: np.ndarray) -> None:
    """Frame ``index`` of ``camera_id`` (10 fps, GOP 0, to be analysed) into ``ring``."""
    height, width = frame.shape[:2]
    meta = FrameReady(
        camera_id=camera_id,
        seq=ring.seq + 1,
        frame_index=index,
        pts_s=index / 10,
        gop_index=0,
        slot=(ring.seq + 1) % ring.slots,
        width=width,
        height=height,
        analyse=True,
    )
    ring.write(frame, meta.model_dump_json().encode(), max_wait_s=0)


def loop_spec(
    rings: list[FrameRing], fds: tuple[int, int, int], worker: dict[str, Any]
) -> dict[str, Any]:
    """A worker loop's spec over ``rings`` (cameras ``cam1``, ``cam2``, ...); ``fds``: the
    wake pipe's read end and the write ends to the verifier and the supervisor."""
    wake_r, v_w, s_w = fds
    return {
        "platform": "cpu",
        "config_id": "sha256:worker-loop-test",
        "cameras": [
            {"camera_id": f"cam{i}", "ring": ring.name, "fps": 10.0}
            for i, ring in enumerate(rings, 1)
        ],
        "reader_index": 0,
        "wake_fd": wake_r,
        "verifier_fd": v_w,
        "supervisor_fd": s_w,
        "worker": worker,
    }
