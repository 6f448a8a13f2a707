"""Real footage for the incident tests: PETS09, re-encoded with a GOP every second."""

from __future__ import annotations

from pathlib import Path

import av
from tests.conftest import shared


def short_clip(out: Path, frames: int) -> Path:
    """The first ``frames`` frames of PETS09 (10 fps), H.264 with a keyframe every 10."""
    with (
        av.open(str(shared("video", "pets09_s2l1_480x360.avi"))) as src,
        av.open(str(out), "w") as dst,
    ):
        stream = dst.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 480, 360, "yuv420p"
        stream.options = {"g": "10", "keyint_min": "10", "bf": "0", "sc_threshold": "0"}
        for i, frame in enumerate(src.decode(video=0)):
            if i >= frames:
                break
            picture = frame.reformat(format="yuv420p")
            picture.pts = None
            for packet in stream.encode(picture):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    return out
