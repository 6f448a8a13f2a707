"""The motion mask compares each picture with the one :data:`MOTION_INTERVAL_S` earlier.

At a frame rate whose period is that interval, ``i / fps - (i - 1) / fps`` rounds below it on
about a third of the frames (``0.3 - 0.2`` is ``0.0999…``). The reference must still be the
previous frame there, not the one before it: a mask taken over twice the interval doubles
every walker's motion on those frames.
"""

from __future__ import annotations

import numpy as np
import pytest

from kontur.verifier.foreground import (
    MOTION_INTERVAL_S,
    ForegroundModel,
    ScenePicture,
    make_picture,
)

_SCENE = np.random.default_rng(11).integers(90, 200, (360, 640), np.uint8)


def _picture(marks: list[int]) -> ScenePicture:
    """The scene with a dark 40-pixel square painted at each column of ``marks``."""
    grey = _SCENE.copy()
    for x in marks:
        grey[100:140, x : x + 40] = 20
    return make_picture(np.repeat(grey[..., None], 3, axis=2))


@pytest.mark.parametrize("fps", [1 / MOTION_INTERVAL_S, 30.0])
def test_motion_is_what_changed_since_the_frame_one_interval_back(fps: float) -> None:
    """Frame i paints a new square at column 40·i (each stays): its motion must hold its own
    square only, never the previous frame's, on every frame, whatever the rounding."""
    model = ForegroundModel()
    step = max(1, round(MOTION_INTERVAL_S * fps))  # frames per interval
    checked = 0
    for i in range(12 * step):
        masks = model.observe(i / fps, _picture([40 * (k // step) for k in range(i + 1)]))
        if i < step or i % step:
            continue  # a new square appears once per interval
        motion = masks.motion()
        stride = masks.stride
        new = motion[100 // stride : 140 // stride, (40 * (i // step)) // stride :]
        older = motion[100 // stride : 140 // stride, : (40 * (i // step - 1) + 40) // stride - 1]
        assert new[:, : 40 // stride].mean() > 0.9, f"frame {i}: its own square did not move"
        assert not older.any(), f"frame {i}: the square of one interval before counted as motion"
        checked += 1
    assert checked >= 10
