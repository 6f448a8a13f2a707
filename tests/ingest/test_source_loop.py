"""A looped file source (``cameras[].loop``, ``kontur run``): one stream that never ends.

Presentation times go on one frame period after the last frame, frames keep their order,
each new pass starts a GOP with a note saying so, and a file without ``loop`` ends as before.
The clips are made here with PyAV/libx264 (tiny, synthetic), an MP4 (container times) and an
AVI (times synthesised in output order).
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from kontur.ingest.source import probe, read_gops

FPS, FRAMES, KEYINT = 25, 20, 10


def _clip(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.options = {
            "preset": "ultrafast",
            "x264-params": f"keyint={KEYINT}:min-keyint={KEYINT}:scenecut=0:bframes=0",
        }
        for i in range(FRAMES):
            img = np.full((48, 64, 3), 40 + 5 * i, np.uint8)
            vf = av.VideoFrame.from_ndarray(img, format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, FPS)
            for pkt in s.encode(vf):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_a_looped_file_goes_on_as_one_stream(tmp_path: Path, suffix: str) -> None:
    clip = str(_clip(tmp_path / f"c{suffix}"))
    times: list[float] = []
    gops = list(
        itertools.islice(
            read_gops(clip, probe(clip), on_frame=lambda f: times.append(f.pts_s), loop=True),
            3 * FRAMES // KEYINT,  # three passes
        )
    )
    assert [g.times.count for g in gops] == [KEYINT] * 6
    assert len(times) == 3 * FRAMES
    steps = np.diff(times)
    assert np.allclose(steps, 1 / FPS, atol=1e-3), steps
    looped = [i for i, g in enumerate(gops) if any("file looped" in n for n in g.notes)]
    assert looped == [2, 4]


def test_without_loop_the_file_ends(tmp_path: Path) -> None:
    clip = str(_clip(tmp_path / "c.mp4"))
    gops = list(read_gops(clip, probe(clip), on_frame=lambda f: None))
    assert len(gops) == FRAMES // KEYINT
    assert not any("file looped" in n for g in gops for n in g.notes)
