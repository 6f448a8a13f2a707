"""The independent CPU verifier (DESIGN.md §1, block 4).

A separate process that never loads a GPU/NPU driver or inference runtime: this package
imports numpy, pydantic, the standard library and :mod:`kontur.wire` / :mod:`kontur.config`
only. It checks the analytics worker's tracks with simpler, independent rules (trajectory
continuity, plausible speed and size, class stability, confidence jumps) and the scene's
liveness (frozen or replayed picture), and answers each ``TrackFrame`` with a
:class:`~kontur.wire.Finding` for the gate. ADR 0006 explains the checks and their limits.
"""

from kontur.verifier.checks import (
    ClassStability,
    ConfidenceJump,
    PlausibleSizeChange,
    PlausibleSpeed,
    SceneLiveness,
    TrackCheck,
    TrajectoryContinuity,
    WellFormedBox,
    default_track_checks,
)
from kontur.verifier.core import (
    FORGET_AFTER_FRAMES,
    FRAME_RECORDS,
    MAX_TRACKS,
    Verifier,
    VerifierStats,
)
from kontur.verifier.errors import FrameStampError, ThumbnailError, VerifierError
from kontur.verifier.history import HISTORY_LENGTH, ObservedBox, TrackHistory
from kontur.verifier.thumbnail import THUMBNAIL_SHAPE, make_thumbnail, validate_thumbnail

__all__ = [
    "FORGET_AFTER_FRAMES",
    "FRAME_RECORDS",
    "HISTORY_LENGTH",
    "MAX_TRACKS",
    "THUMBNAIL_SHAPE",
    "ClassStability",
    "ConfidenceJump",
    "FrameStampError",
    "ObservedBox",
    "PlausibleSizeChange",
    "PlausibleSpeed",
    "SceneLiveness",
    "ThumbnailError",
    "TrackCheck",
    "TrackHistory",
    "TrajectoryContinuity",
    "Verifier",
    "VerifierError",
    "VerifierStats",
    "WellFormedBox",
    "default_track_checks",
    "make_thumbnail",
    "validate_thumbnail",
]
