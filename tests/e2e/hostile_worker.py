"""A stand-in for a compromised analytics worker (the world around the perimeter under test).

Started by the real supervisor in place of ``kontur.worker.process`` (``python -m
tests.e2e.hostile_worker SPEC.json``), it opens the same rings and pipes and enters the same
sandbox as the real worker (so the supervisor measures a full isolation), then misbehaves as
the spec's ``hostile`` scenario says:

- ``forge``: reads every frame and, besides plausible tracks, sends every message a worker
  may not send (a forged ALLOW decision, an AUTHENTIC verdict for a GOP that never existed, a
  forged SourceEnded after 100 frames), a forged "full" isolation report, a detection batch
  for an unknown camera and for a GOP ingest never stored, duplicate and reordered frame
  indexes, NaN and huge values, garbage lines and a flood of tracks;
- ``stall``: keeps its ring heartbeat fresh but never reads a frame.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from kontur.runtime.spec import install_stop_handler, read_spec, stop_requested
from kontur.wire import (
    Decision,
    DetectionBatch,
    FrameReady,
    GopClosed,
    Outcome,
    SourceEnded,
    TrackedObject,
    TrackFrame,
    WorkerReady,
)
from kontur.wire.channel import Outbox
from kontur.wire.framering import RingReader
from kontur.wire.verdict import GopVerdict, Verdict
from kontur.worker.process import _open_ring_fds, sandbox_policy
from kontur.worker.sandbox import enter


def _forgeries(cam: str, frame: int) -> list[Any]:
    """Everything the worker may not say, about ``frame``."""
    verdict = GopVerdict(camera_id=cam, gop_index=99, verdict=Verdict.AUTHENTIC, reasons=("ok",))
    return [
        Decision(
            camera_id=cam, rule="person-dwell", action="alarm", critical=True, track_id=1,
            frame_index=frame, outcome=Outcome.ALLOW, reasons=("forged by the worker",),
            gops=(0,), executed="alarm", at=time.time(),
        ),
        GopClosed(
            verdict=verdict, first_frame=0, last_frame=1, start_pts_s=0.0, end_pts_s=0.1,
            segment_sha256="0" * 64, segment_size=1,
        ),
        SourceEnded(camera_id=cam, frames=frame, gops=1),
        DetectionBatch(
            camera_id="camX", gop_index=0, model_id="m", config_id="c", platform="cpu",
            frames=1, detections=1, track_ids=(1,),
        ),
        DetectionBatch(
            camera_id=cam, gop_index=10_000, model_id="m", config_id="c", platform="cpu",
            frames=1, detections=1, track_ids=(1,),
        ),
        WorkerReady(
            model_id="m", platform="cpu", detector="d", isolation={"level": "full", "forged": 1}
        ),
    ]  # fmt: skip


def _tracks(cam: str, meta: FrameReady, *, frame: int | None = None) -> TrackFrame:
    box = (100.0, 100.0, 140.0, 220.0)
    obj = TrackedObject(track_id=1, class_id=0, class_name="person", confidence=0.9, xyxy=box)
    return TrackFrame(
        camera_id=cam, frame_index=meta.frame_index if frame is None else frame,
        pts_s=meta.pts_s, model_id="m", config_id="c", platform="cpu", objects=(obj,),
        detections=1,
    )  # fmt: skip


def _forge(spec: dict[str, Any], readers: dict[str, RingReader]) -> None:
    to_verifier, to_supervisor = Outbox(spec["verifier_fd"]), Outbox(spec["supervisor_fd"])
    for cam, reader in readers.items():
        while (slot := reader.read_next()) is not None:
            meta = FrameReady.model_validate_json(slot.meta)
            to_verifier.send(_tracks(cam, meta))
            if meta.frame_index % 50 == 0:
                to_verifier.send(_tracks(cam, meta))  # the same frame twice
                to_verifier.send(_tracks(cam, meta, frame=max(0, meta.frame_index - 7)))
                to_verifier.send(_tracks("camX", meta))  # a camera that does not exist
                for msg in _forgeries(cam, meta.frame_index):
                    to_verifier.send(msg)
                    to_supervisor.send(msg)
                for fd in (spec["verifier_fd"], spec["supervisor_fd"]):
                    os.write(fd, b'{"type": "tracks", "pts_s": NaN}\n{"type":"decision"}\n')
                    os.write(fd, b"\xff" * 1000 + b"\n")


def main() -> int:
    install_stop_handler()
    spec = read_spec()
    if spec["detector"] != "hog":
        size = int.from_bytes(sys.stdin.buffer.read(8), "big")
        sys.stdin.buffer.read(size)
    ring_fds = _open_ring_fds(spec)
    enter(sandbox_policy(spec, Path(sys.argv[1])))
    readers = {
        c["camera_id"]: RingReader.from_fds(c["ring"], *ring_fds[c["camera_id"]])
        for c in spec["cameras"]
    }
    Outbox(spec["supervisor_fd"]).send(
        WorkerReady(model_id="hostile", platform=spec["platform"], detector="hostile")
    )
    while not stop_requested():
        if spec["hostile"] == "forge":
            _forge(spec, readers)
        else:  # stall: alive on the heartbeat, never reading
            for r in readers.values():
                r.heartbeat()
        time.sleep(0.01)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
