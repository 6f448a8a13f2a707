"""The independent CPU verifier process.

It imports numpy, pydantic and kontur's pure verifier core only: never an inference
runtime or a GPU stack (a test reads ``/proc/<pid>/maps`` to prove it). Order of steps:
read every new frame from the ingest rings (read-only) and feed its thumbnail to the scene
liveness check and its small grey picture to the background model; then check each
:class:`TrackFrame` from the worker and send the
:class:`Evidence` (ingest's stamp of the frame + tracks + finding) to the gate and the
:class:`Finding` to the supervisor. Tracks for a frame the verifier did not observe get a
disagreeing finding and no evidence: the gate only ever decides on frames ingest stamped.
The worker's inbox enforces its edge (:mod:`kontur.wire.edges`); what it refuses is reported
to the supervisor as :class:`ProtocolViolation`.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np
from pydantic import ValidationError

from kontur.config import PolicyConfig, VerifierConfig, ZoneConfig
from kontur.runtime.spec import install_stop_handler, read_spec, stop_requested, wait_or_stop
from kontur.verifier.core import Verifier
from kontur.verifier.foreground import make_picture
from kontur.verifier.thumbnail import make_thumbnail
from kontur.verifier.watch import Watch
from kontur.wire import Evidence, Finding, FrameReady, ProtocolViolation, TrackFrame
from kontur.wire.channel import Inbox, Outbox, forward_violations, wait_readable
from kontur.wire.edges import edge
from kontur.wire.framering import RingReader

__all__ = ["THUMB_SIZE", "main", "thumbnail", "watch_from_spec"]

#: Thumbnail (width, height) the liveness check compares.
THUMB_SIZE = (64, 48)


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """A small grayscale copy (numpy only, no OpenCV): what scene liveness compares."""
    return make_thumbnail(frame, shape=(THUMB_SIZE[1], THUMB_SIZE[0]))


def watch_from_spec(spec: dict[str, Any]) -> Watch:
    """The policies' zones and classes from the spec (``zones`` and ``policies``, as in the
    config); without them, everything is watched (the strictest verifier)."""
    if "zones" not in spec or "policies" not in spec:
        return Watch.everything()
    zones = [ZoneConfig.model_validate(z) for z in spec["zones"]]
    policies = [PolicyConfig.model_validate(p) for p in spec["policies"]]
    return Watch.from_policies(zones, policies)


class VerifierLoop:
    """Reads frames and tracks, emits findings."""

    def __init__(self, spec: dict[str, Any]) -> None:
        config = VerifierConfig.model_validate(spec["verifier"])
        self.core = Verifier(config, watch_from_spec(spec))
        self.readers = {
            c["camera_id"]: RingReader(c["ring"], spec["reader_index"]) for c in spec["cameras"]
        }
        self.wake_fd: int = spec["wake_fd"]
        os.set_blocking(self.wake_fd, False)
        os.set_blocking(spec["worker_fd"], False)
        self.from_worker = Inbox(
            spec["worker_fd"], "worker", edge=edge("worker", "verifier"), cameras=self.readers
        )
        self.to_gate = Outbox(spec["gate_fd"])
        self.to_supervisor = Outbox(spec["supervisor_fd"])
        self.last_frame: dict[str, int] = {}
        self.bad_meta = 0
        self.orphaned = False

    def _read_frames(self) -> None:
        with contextlib.suppress(BlockingIOError):
            if os.read(self.wake_fd, 4096) == b"":
                self.orphaned = True  # every writer is gone (the supervisor died)
        for cam_id, reader in self.readers.items():
            while (slot := reader.read_next()) is not None:
                try:
                    meta = FrameReady.model_validate_json(slot.meta)
                except ValidationError:
                    self.bad_meta += 1
                    continue
                last = self.last_frame.get(cam_id)
                if last is not None and meta.frame_index <= last:
                    self.core.forget_camera(cam_id)  # ingest restarted: a new stream
                self.core.observe_frame(
                    cam_id,
                    meta.frame_index,
                    meta.pts_s,
                    thumbnail(slot.frame),
                    meta.gop_index,
                    picture=make_picture(slot.frame),
                )
                self.last_frame[cam_id] = meta.frame_index

    def _check(self, tracks: TrackFrame) -> None:
        try:
            finding = self.core.check(tracks)
        except (ArithmeticError, ValueError, IndexError) as exc:
            # a defect the worker's message reached: its tracks are unverified, never a crash
            # that a hostile worker could repeat to keep the verifier down
            finding = Finding(
                camera_id=tracks.camera_id, frame_index=tracks.frame_index, agree=False,
                reasons=(f"verifier could not check frame {tracks.frame_index}: "
                         f"{type(exc).__name__}: {str(exc)[:200]}",),
            )  # fmt: skip
        stamp = self.core.stamp(tracks.camera_id, tracks.frame_index)
        if stamp is not None:
            self.to_gate.send(Evidence(frame=stamp, tracks=tracks, finding=finding))
        self.to_supervisor.send(finding)

    def _from_worker(self, inbox: Inbox) -> None:
        for msg in inbox.drain():
            if not isinstance(msg, TrackFrame):
                continue
            if self.core.repeats(msg.camera_id, msg.frame_index):
                # a duplicate or a reorder is a protocol violation, not evidence: the gate
                # never sees it (it would reset every dwell of the camera)
                self.to_supervisor.send(
                    ProtocolViolation(
                        sender="worker", receiver="verifier", message_type=msg.type,
                        detail=f"tracks for {msg.camera_id} frame {msg.frame_index} repeated "
                        "or out of order",
                    )
                )  # fmt: skip
                continue
            self._read_frames()
            self._check(msg)
        forward_violations(inbox, "verifier", self.to_supervisor)

    def run(self) -> None:
        """Verify until asked to stop."""
        while not stop_requested() and not self.orphaned:
            wait_or_stop([self.wake_fd, self.from_worker.fd], 0.2)
            self._read_frames()
            self._from_worker(self.from_worker)
        # final drain: what the worker already sent is still checked
        for r in wait_readable([self.from_worker], 0.0):
            self._from_worker(r)


def main() -> int:
    """Entry point: ``python -m kontur.verifier.process SPEC.json``."""
    install_stop_handler()
    VerifierLoop(read_spec()).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
