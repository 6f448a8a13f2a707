"""The analytics worker process: detector + ByteTrack over frames from the ingest rings.

Order of steps at start: read the model bytes from stdin, check their SHA-256 against the
digest the supervisor verified, build the detector *from those bytes*, announce
:class:`WorkerReady`. Then, per frame: read it from the ring (read-only mapping), detect,
track, send :class:`TrackFrame` to the verifier; per GOP, send a :class:`DetectionBatch`
to the supervisor for the archive.

The worker is treated as untrusted: everything it says is parsed, never unpickled, and its
results reach an action only through the verifier and the gate.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import sys
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from kontur.runtime.spec import install_stop_handler, read_spec, stop_requested
from kontur.wire import DetectionBatch, FrameReady, TrackFrame, WorkerReady
from kontur.wire.channel import Outbox
from kontur.wire.framering import RingReader, RingSlot
from kontur.worker.detectors import Detector, HogPersonDetector, YoloxOnnxDetector
from kontur.worker.errors import ModelIntegrityError
from kontur.worker.tracking import CameraTracker

__all__ = ["PROVIDERS", "build_detector", "main"]

#: Execution providers per platform (the dispatcher picks the platform).
PROVIDERS = {
    "cpu": ("CPUExecutionProvider",),
    "gpu": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "npu": ("OpenVINOExecutionProvider", "CPUExecutionProvider"),
}


def _read_model_bytes(expected_sha256: str) -> bytes:
    stdin = sys.stdin.buffer
    size = int.from_bytes(stdin.read(8), "big")
    data = stdin.read(size)
    got = hashlib.sha256(data).hexdigest()
    if got != expected_sha256:
        raise ModelIntegrityError(f"model bytes: expected sha256 {expected_sha256}, got {got}")
    return data


def build_detector(spec: dict[str, Any], model_bytes: bytes | None) -> Detector:
    """The detector the spec asks for, built from verified bytes."""
    w = spec["worker"]
    if spec["detector"] == "hog":
        return HogPersonDetector(
            score_threshold=w["score_threshold"], nms_threshold=w["nms_threshold"]
        )
    assert model_bytes is not None
    return YoloxOnnxDetector(
        model_bytes,
        score_threshold=w["score_threshold"],
        nms_threshold=w["nms_threshold"],
        intra_op_threads=w["intra_op_threads"],
        providers=PROVIDERS[spec["platform"]],
    )


@dataclass
class _Camera:
    reader: RingReader
    tracker: CameraTracker
    gop: int | None = None
    frames: int = 0
    detections: int = 0
    track_ids: set[int] = field(default_factory=set)


class WorkerLoop:
    """Runs the detector over every camera's ring."""

    def __init__(self, spec: dict[str, Any], detector: Detector) -> None:
        self.spec, self.detector = spec, detector
        self.platform: str = spec["platform"]
        self.config_id: str = spec["config_id"]
        self.wake_fd: int = spec["wake_fd"]
        os.set_blocking(self.wake_fd, False)
        self.to_verifier = Outbox(spec["verifier_fd"])
        self.to_supervisor = Outbox(spec["supervisor_fd"])
        self.cameras = {
            c["camera_id"]: _Camera(
                RingReader(c["ring"], spec["reader_index"]),
                CameraTracker(c["fps"], detector.class_names),
            )
            for c in spec["cameras"]
        }

    def _flush_batch(self, cam_id: str, cam: _Camera) -> None:
        if cam.gop is None:
            return
        self.to_supervisor.send(
            DetectionBatch(
                camera_id=cam_id,
                gop_index=cam.gop,
                model_id=self.detector.model_id,
                config_id=self.config_id,
                platform=self.platform,
                frames=cam.frames,
                detections=cam.detections,
                track_ids=tuple(sorted(cam.track_ids)),
            )
        )
        cam.frames, cam.detections, cam.track_ids = 0, 0, set()

    def _process(self, cam_id: str, cam: _Camera, slot: RingSlot) -> None:
        try:
            meta = FrameReady.model_validate_json(slot.meta)
        except ValidationError:
            return  # a torn or foreign slot: nothing to analyse
        if cam.gop is not None and meta.gop_index != cam.gop:
            self._flush_batch(cam_id, cam)
        cam.gop = meta.gop_index
        if not meta.analyse:
            return
        dets = self.detector.infer(slot.frame)
        objects = cam.tracker.update(dets)
        cam.frames += 1
        cam.detections += len(dets)
        cam.track_ids.update(o.track_id for o in objects)
        self.to_verifier.send(
            TrackFrame(
                camera_id=cam_id,
                frame_index=meta.frame_index,
                gop_index=meta.gop_index,
                pts_s=meta.pts_s,
                model_id=self.detector.model_id,
                config_id=self.config_id,
                platform=self.platform,
                objects=objects,
                detections=len(dets),
            )
        )

    def run(self) -> None:
        """Process frames until asked to stop."""
        while not stop_requested():
            select.select([self.wake_fd], [], [], 0.2)
            with contextlib.suppress(BlockingIOError):
                if os.read(self.wake_fd, 4096) == b"":
                    break  # every writer is gone (the supervisor died): stop, never spin
            for cam_id, cam in self.cameras.items():
                while (slot := cam.reader.read_next()) is not None:
                    self._process(cam_id, cam, slot)
                    if stop_requested():
                        break
        for cam_id, cam in self.cameras.items():
            self._flush_batch(cam_id, cam)


def main() -> int:
    """Entry point: ``python -m kontur.worker.process SPEC.json`` (model bytes on stdin)."""
    install_stop_handler()
    spec = read_spec()
    model = _read_model_bytes(spec["model_sha256"]) if spec["detector"] != "hog" else None
    detector = build_detector(spec, model)
    loop = WorkerLoop(spec, detector)
    loop.to_supervisor.send(
        WorkerReady(model_id=detector.model_id, platform=loop.platform, detector=detector.name)
    )
    loop.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
