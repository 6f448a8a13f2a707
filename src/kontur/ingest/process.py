"""The ingest process for one camera: demux, check, archive, and publish frames.

Steps per GOP, in order: demux the GOP's packets (:func:`read_gops`); publish each decoded
frame to the shared-memory ring and wake the readers; close the GOP with
:class:`GopChecker` (its verdict); store its raw packets as a write-once segment (fsynced
before anyone hears of it); send :class:`GopClosed` to the supervisor (archive) and the gate.

Recording never waits on analytics: the ring's back-pressure is bounded and ignores dead
readers, so a crashed worker cannot stop the raw stream from being archived.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from kontur.archive import SegmentStore
from kontur.config import Profile
from kontur.errors import KonturError
from kontur.ingest.checks import GopChecker
from kontur.ingest.segment import pack_segment
from kontur.ingest.source import RawGop, probe, read_gops
from kontur.runtime.spec import install_stop_handler, read_spec, stop_requested
from kontur.wire import ControlMessage, FrameReady, GopClosed, SourceEnded
from kontur.wire.channel import Inbox, Outbox
from kontur.wire.framering import FrameRing

__all__ = ["IngestLoop", "main"]


class IngestLoop:
    """One camera's ingest, wired to its ring and pipes."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.camera_id: str = spec["camera_id"]
        self.source: str = spec["source"]
        self.profile = Profile.model_validate(spec["profile"])
        self.checker = GopChecker(self.camera_id, self.profile)
        self.store = SegmentStore(Path(spec["data_dir"]))
        self.ring = FrameRing(
            spec["ring"],
            spec["slots"],
            self.profile.height,
            self.profile.width,
            spec["readers"],
            create=False,
        )
        self.wake_fds: list[int] = list(spec["wake_fds"])
        for fd in self.wake_fds:
            os.set_blocking(fd, False)
        self.to_supervisor = Outbox(spec["supervisor_fd"])
        self.to_gate = Outbox(spec["gate_fd"])
        self.control = Inbox(spec["control_fd"], "control")
        os.set_blocking(spec["control_fd"], False)
        self.max_wait_s: float = spec.get("max_wait_s", 5.0)
        self.realtime: bool = spec.get("realtime", False)
        self.stride = 1
        self.frames = 0
        self.gops = 0
        self._t0: float | None = None

    def _poll_control(self) -> None:
        for msg in self.control.drain():
            if isinstance(msg, ControlMessage) and msg.command == "analysis_stride":
                self.stride = max(0, msg.value or 0)

    def _fit(self, image: np.ndarray) -> np.ndarray:
        if image.shape[:2] == (self.profile.height, self.profile.width):
            return image
        import cv2  # only when a resolution change must be fitted into the ring

        return cv2.resize(image, (self.profile.width, self.profile.height))

    def _publish(self, image: np.ndarray, pts_s: float, gop_index: int) -> None:
        if self.realtime:
            if self._t0 is None:
                self._t0 = time.monotonic() - pts_s
            delay = self._t0 + pts_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        seq = self.ring.seq + 1
        analyse = self.stride > 0 and self.frames % self.stride == 0
        meta = (
            FrameReady(
                camera_id=self.camera_id,
                seq=seq,
                frame_index=self.frames,
                pts_s=pts_s,
                gop_index=gop_index,
                slot=seq % self.ring.slots,
                width=self.profile.width,
                height=self.profile.height,
                analyse=analyse,
            )
            .model_dump_json()
            .encode()
        )
        self.ring.write(self._fit(image), meta, max_wait_s=self.max_wait_s)
        for fd in self.wake_fds:
            # the ring is the truth; a full or closed wake pipe loses nothing
            with contextlib.suppress(BlockingIOError, BrokenPipeError):
                os.write(fd, b"\x01")

    def _handle_gop(self, gop: RawGop) -> None:
        index = self.checker.begin(gop.info)
        first = self.frames
        for fr in gop.frames:
            self.checker.frame(fr.pts_s, fr.image is not None)
            if fr.image is not None and not stop_requested():
                self._publish(fr.image, fr.pts_s, index)
            self.frames += 1
            self._poll_control()
        verdict = self.checker.close()
        header = dict(gop.header, camera_id=self.camera_id, gop_index=index)
        ref = self.store.put(pack_segment(header, gop.packets))
        pts = [f.pts_s for f in gop.frames] or [0.0]
        msg = GopClosed(
            verdict=verdict,
            first_frame=first,
            last_frame=max(first, self.frames - 1),
            start_pts_s=min(pts),
            end_pts_s=max(pts),
            segment_sha256=ref.sha256,
            segment_size=ref.size,
        )
        self.to_supervisor.send(msg)
        self.to_gate.send(msg)
        self.gops += 1

    def run(self) -> str | None:
        """Ingest until the source ends or a stop is requested; returns an error or None."""
        error: str | None = None
        try:
            for gop in read_gops(self.source, probe(self.source)):
                self._handle_gop(gop)
                if stop_requested():
                    break
        except KonturError as exc:
            error = str(exc)
        end = SourceEnded(camera_id=self.camera_id, frames=self.frames, gops=self.gops, error=error)
        self.to_supervisor.send(end)
        self.to_gate.send(end)
        return error


def main() -> int:
    """Entry point: ``python -m kontur.ingest.process SPEC.json``."""
    install_stop_handler()
    loop = IngestLoop(read_spec())
    try:
        loop.run()
    finally:
        # the supervisor owns the ring files; if it died (kill -9), nobody else will remove them
        loop.ring.close(unlink=os.getppid() == 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
