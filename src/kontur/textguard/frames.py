"""One frame of a video file, by index or by time: what ``kontur text scan`` reads.

Decoded with PyAV, as ingest decodes, counting frames in decoder order from 0 (the order
ingest numbers them). Decoding stops at :data:`MAX_SCAN_FRAMES`: a clip cannot make the
command decode forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from kontur.textguard.errors import FrameSourceError

__all__ = ["MAX_SCAN_FRAMES", "VideoFrame", "read_frame"]

MAX_SCAN_FRAMES = 200_000


@dataclass(frozen=True)
class VideoFrame:
    """A decoded picture (BGR), its index in the clip and its time in seconds."""

    image: npt.NDArray[np.uint8]
    index: int
    time_s: float


def _wanted(index: int, t: float, frame: int | None, at: float | None, step: float) -> bool:
    if frame is not None:
        return index == frame
    assert at is not None
    return t >= at - step / 2


#: The latest ``--at`` taken, in seconds (about 115 days of video).
MAX_AT_S = 1e7


def read_frame(video: Path, *, frame: int | None = None, at: float | None = None) -> VideoFrame:
    """The frame numbered ``frame`` (from 0), or the first at or after ``at`` seconds.

    Exactly one of them; FrameSourceError (one line) when the clip cannot be decoded or
    ends before it.
    """
    if (frame is None) == (at is None):
        raise FrameSourceError("frame: expected exactly one of --frame N or --at SECONDS")
    if frame is not None and frame < 0:
        raise FrameSourceError(f"--frame: expected a frame >= 0, got {frame}")
    if at is not None and not 0 <= at < MAX_AT_S:
        raise FrameSourceError(f"--at: expected a time in [0, {MAX_AT_S:g}) seconds, got {at:g}")
    try:
        with av.open(str(video)) as container:
            stream: Any = container.streams.video[0]
            rate = float(stream.average_rate or 25)
            for n, picture in enumerate(container.decode(stream)):
                if n >= MAX_SCAN_FRAMES:
                    break
                t = float(picture.time) if picture.time is not None else n / rate
                if _wanted(n, t, frame, at, 1 / rate):
                    return VideoFrame(picture.to_ndarray(format="bgr24"), n, t)
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise FrameSourceError(f"video {video}: expected a decodable video, got {exc}") from None
    where = f"frame {frame}" if frame is not None else f"{at} s"
    raise FrameSourceError(f"video {video}: expected {where} in the clip, got its end first")
