"""Real footage for the tamper monitor's tests: the first seconds of PETS09 and TUD-Campus.

Frames are decoded once per session with the monitor's own decoder (PyAV, pts times) and
shared read-only; a test that tampers with them copies first (the injector returns new
arrays). Missing ``../shared/data`` skips with the reason (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from kontur.tamper.evaluate import decode

Frames = list[tuple[np.ndarray, float]]


def _load(path: Path, seconds: float) -> Frames:
    _fps, it = decode(path)
    frames = [(f, t) for f, t in islice(it, 2000) if t < seconds]
    for f, _t in frames:
        f.setflags(write=False)
    return frames


@pytest.fixture(scope="session")
def pets(shared_file: Callable[[str], Path]) -> Frames:
    """PETS09-S2L1 (480x360, 10 fps), its first 7 seconds: people walking, a fixed camera."""
    return _load(shared_file("video/pets09_s2l1_480x360.avi"), 7.0)


@pytest.fixture(scope="session")
def pets_path(shared_file: Callable[[str], Path]) -> Path:
    """The PETS09-S2L1 clip itself (for the CLI)."""
    return shared_file("video/pets09_s2l1_480x360.avi")


@pytest.fixture(scope="session")
def tud(shared_file: Callable[[str], Path]) -> Frames:
    """TUD-Campus (640x480, 25 fps, 2.8 s), played forward-backward-forward to 7 s.

    Each turn continues from the same frame, so the extension has no seam.
    """
    frames = _load(shared_file("mot15/TUD-Campus/TUD-Campus.mp4"), 10.0)
    seq = [f for f, _t in frames]
    out, forward = list(seq), False
    while len(out) < 7 * 25:
        out += seq[-2::-1] if not forward else seq[1:]
        forward = not forward
    return [(f, i / 25.0) for i, f in enumerate(out)]
