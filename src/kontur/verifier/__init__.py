"""The independent CPU verifier (DESIGN.md §1, block 4; issue 13 §2).

A separate process that never loads a GPU/NPU driver or inference runtime: this package
imports numpy, pydantic, the standard library and :mod:`kontur.wire` / :mod:`kontur.config`
only. It checks the analytics worker's tracks with simpler, independent rules (trajectory
continuity, plausible speed and size, class stability within the groups a small detector
confuses, confidence jumps), looks at the pictures itself with a background model
(foreground under every moving box, untracked person-sized motion in a policy zone, boxes that
stop following their object) and without one (:mod:`kontur.verifier.coherence`: a box must
carry its own pixels along, which also holds on a moving camera), and checks the scene's
liveness (frozen or replayed picture).
It also watches each camera's detection rate and class mix against a rolling baseline
(:mod:`kontur.verifier.drift`), and a worker that keeps renaming its objects
(:mod:`kontur.verifier.renamed`, ADR 0042). It answers each ``TrackFrame`` with a
:class:`~kontur.wire.Finding` for the gate. ADR 0006 and ADR 0025 explain the checks and
their limits.
"""

from kontur.verifier.checks import (
    ClassStability,
    ConfidenceJump,
    ContentCoherence,
    ForegroundSupport,
    FrozenBox,
    InsidePicture,
    PersonStature,
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
    MASK_RECORDS,
    MAX_TRACKS,
    Verifier,
    VerifierStats,
)
from kontur.verifier.drift import DRIFT_REASON, CameraDrift
from kontur.verifier.errors import FrameStampError, ThumbnailError, VerifierError
from kontur.verifier.evasion import PersonScale, UnexplainedForeground
from kontur.verifier.foreground import (
    BoxMeter,
    ForegroundModel,
    SceneMasks,
    ScenePicture,
    make_picture,
)
from kontur.verifier.history import HISTORY_LENGTH, ObservedBox, TrackHistory
from kontur.verifier.thumbnail import THUMBNAIL_SHAPE, make_thumbnail, validate_thumbnail
from kontur.verifier.vanished import VanishedTracks
from kontur.verifier.watch import ClassGroups, Watch, WatchedZone

__all__ = [
    "DRIFT_REASON",
    "FORGET_AFTER_FRAMES",
    "FRAME_RECORDS",
    "HISTORY_LENGTH",
    "MASK_RECORDS",
    "MAX_TRACKS",
    "THUMBNAIL_SHAPE",
    "BoxMeter",
    "CameraDrift",
    "ClassGroups",
    "ClassStability",
    "ConfidenceJump",
    "ContentCoherence",
    "ForegroundModel",
    "ForegroundSupport",
    "FrameStampError",
    "FrozenBox",
    "InsidePicture",
    "ObservedBox",
    "PersonScale",
    "PersonStature",
    "PlausibleSizeChange",
    "PlausibleSpeed",
    "SceneLiveness",
    "SceneMasks",
    "ScenePicture",
    "ThumbnailError",
    "TrackCheck",
    "TrackHistory",
    "TrajectoryContinuity",
    "UnexplainedForeground",
    "VanishedTracks",
    "Verifier",
    "VerifierError",
    "VerifierStats",
    "Watch",
    "WatchedZone",
    "WellFormedBox",
    "default_track_checks",
    "make_picture",
    "make_thumbnail",
    "validate_thumbnail",
]
