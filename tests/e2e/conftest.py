"""Fixtures of the e2e runs: a short cut of PETS09 for the tests that check restarts, faults
or the archive rather than what is seen in the footage (a whole-clip run is about 2 minutes
of CPU on a 2-core machine; the cut is under half of that)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.e2e.pets_clip import key_flags, pets09_h264

#: Frames of the cut: 30 s at 10 fps, 15 GOPs of 2 s.
CUT_FRAMES = 300
CUT_FPS = 10


@dataclass(frozen=True)
class Clip:
    """A clip with the counts a run over it must record."""

    path: Path
    frames: int
    gops: int


@pytest.fixture(scope="session")
def pets09_cut(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """PETS09's first 30 s as H.264 with GOPs of 2 s, encoded once per session."""
    out = tmp_path_factory.mktemp("pets09_cut") / "pets09_30s.mp4"
    keys = key_flags(pets09_h264(out, CUT_FRAMES, CUT_FPS))
    return Clip(out, len(keys), sum(keys))
