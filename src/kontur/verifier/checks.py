"""The verifier's checks: small, independent and deliberately simpler than the detector.

DESIGN.md §1 block 4 and the paper (section on the model, "CPU-верификатор выполняет
независимые и более простые проверки") name them: trajectory continuity, plausible speed and
size, class stability, sudden confidence jumps and scene liveness. This is the "simple
checker watching a complex doer" of the Simplex architecture (DESIGN.md §4): each check
needs only geometry, time and arithmetic, so it shares no code, weights or failure modes with
the detector it watches (ADR 0006).

Track checks follow the :class:`TrackCheck` protocol: ``check(track_id, history, current)``
returns None when ``current`` is plausible after ``history`` and otherwise one reason that
says what was expected and what was found. They hold only their thresholds and never change
the history they read. :class:`WellFormedBox` runs first; the other checks assume a box with
finite coordinates and positive width and height.

:class:`SceneLiveness` is the one frame-level check. It is stateful (it remembers the
previous thumbnail and a bounded set of thumbnail digests) and is fed one thumbnail per frame.
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from kontur.config import VerifierConfig
from kontur.verifier.history import ObservedBox, TrackHistory
from kontur.verifier.thumbnail import validate_thumbnail

__all__ = [
    "ClassStability",
    "ConfidenceJump",
    "PlausibleSizeChange",
    "PlausibleSpeed",
    "SceneLiveness",
    "TrackCheck",
    "TrajectoryContinuity",
    "WellFormedBox",
    "default_track_checks",
]


class TrackCheck(Protocol):
    """One plausibility check on a track's newest box, given what came before it."""

    name: ClassVar[str]
    """Short name used in summaries ("speed", "class", ...)."""

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """None when ``current`` is plausible, else a reason naming expected and found."""
        ...


class WellFormedBox:
    """A box must have finite coordinates and positive width and height."""

    name: ClassVar[str] = "box"

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Refuse NaN/inf coordinates and empty or inverted boxes."""
        if current.is_well_formed():
            return None
        shown = ", ".join(f"{v:.1f}" for v in current.xyxy)
        return f"track {track_id}: malformed box ({shown}), expected finite x1 < x2 and y1 < y2"


class TrajectoryContinuity:
    """The centre may move at most ``max_jump_ratio`` box diagonals per elapsed frame."""

    name: ClassVar[str] = "continuity"

    def __init__(self, max_jump_ratio: float) -> None:
        self.max_jump_ratio = max_jump_ratio

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Compare the centre jump with the previous box's diagonal × frames elapsed."""
        prev = history.last
        if prev is None:
            return None
        frames = current.frame_index - prev.frame_index
        jump = current.distance_to(prev)
        allowed = self.max_jump_ratio * prev.diagonal * frames
        if jump <= allowed:
            return None
        return (
            f"track {track_id}: trajectory discontinuity, centre jumped {jump:.1f} px in "
            f"{frames} frame(s), expected at most {allowed:.1f} px "
            f"({self.max_jump_ratio:g} box diagonals per frame)"
        )


class PlausibleSpeed:
    """The centre may move at most ``max_heights_per_s`` box heights per second of pts."""

    name: ClassVar[str] = "speed"

    def __init__(self, max_heights_per_s: float) -> None:
        self.max_heights_per_s = max_heights_per_s

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Speed = centre distance / pts elapsed / mean box height of the two observations."""
        prev = history.last
        if prev is None:
            return None
        elapsed = current.pts_s - prev.pts_s
        if not elapsed > 0:
            return (
                f"track {track_id}: time did not advance between frames {prev.frame_index} "
                f"and {current.frame_index} (pts {prev.pts_s:.3f} s -> {current.pts_s:.3f} s)"
            )
        # Box heights, not pixels: the limit holds near and far from the camera alike.
        heights = (prev.height + current.height) / 2.0
        speed = current.distance_to(prev) / elapsed / heights
        if speed <= self.max_heights_per_s:
            return None
        return (
            f"track {track_id}: speed {speed:.1f} box-heights/s exceeds {self.max_heights_per_s:g}"
        )


class PlausibleSizeChange:
    """The box area may grow or shrink at most ``max_area_ratio`` times per elapsed frame.

    Over a gap of *g* frames the limit is ``1 + (max_area_ratio − 1) · g``: linear, not
    compound. Compounding 3× per frame would allow 59049× over ten frames, which is no check
    at all across a short occlusion.
    """

    name: ClassVar[str] = "size"

    def __init__(self, max_area_ratio: float) -> None:
        self.max_area_ratio = max_area_ratio

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Compare max(new/old, old/new) area with the limit for the frames elapsed."""
        prev = history.last
        if prev is None:
            return None
        frames = current.frame_index - prev.frame_index
        ratio = max(current.area / prev.area, prev.area / current.area)
        allowed = 1.0 + (self.max_area_ratio - 1.0) * frames
        if ratio <= allowed:
            return None
        way = "grew" if current.area > prev.area else "shrank"
        return (
            f"track {track_id}: box area {way} {ratio:.1f}x in {frames} frame(s), "
            f"expected at most {allowed:.1f}x"
        )


class ClassStability:
    """The class must match the track's majority class over its history."""

    name: ClassVar[str] = "class"

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Compare ``current.class_id`` with the most frequent class in ``history``."""
        majority = history.majority_class()
        if majority is None or majority[0] == current.class_id:
            return None
        cls, count = majority
        return (
            f"track {track_id}: class {current.class_id} differs from the track's majority "
            f"class {cls} ({count} of {len(history)} observations)"
        )


class ConfidenceJump:
    """Confidence may change by at most ``max_jump`` between consecutive observations."""

    name: ClassVar[str] = "confidence"

    def __init__(self, max_jump: float) -> None:
        self.max_jump = max_jump

    def check(self, track_id: int, history: TrackHistory, current: ObservedBox) -> str | None:
        """Compare |Δconfidence| with the previous observation against ``max_jump``."""
        prev = history.last
        if prev is None:
            return None
        delta = abs(current.confidence - prev.confidence)
        if delta <= self.max_jump:
            return None
        return (
            f"track {track_id}: confidence jumped {prev.confidence:.2f} -> "
            f"{current.confidence:.2f} (|Δ| {delta:.2f} exceeds {self.max_jump:g})"
        )


def default_track_checks(config: VerifierConfig) -> tuple[TrackCheck, ...]:
    """The five track checks of DESIGN.md §1 block 4 with ``config``'s thresholds.

    :class:`WellFormedBox` is not among them: the verifier runs it first, on its own.
    """
    return (
        TrajectoryContinuity(config.max_jump_ratio),
        PlausibleSpeed(config.max_speed_heights_per_s),
        PlausibleSizeChange(config.max_area_ratio),
        ClassStability(),
        ConfidenceJump(config.max_confidence_jump),
    )


#: Thumbnail digests remembered for loop detection.
REPEAT_WINDOW = 300
#: A digest that recurs at most this many frames later is a still scene, not a loop.
MIN_REPEAT_GAP = 5


class SceneLiveness:
    """Is the picture alive? Flags a frozen scene and an exact replay of earlier pictures.

    Frozen: the mean absolute difference (MAD, grey levels) between consecutive thumbnails
    has stayed below ``frozen_mad_threshold`` (or at exactly 0) for longer than
    ``frozen_seconds`` of pts. Replayed: the thumbnail's digest equals that of a thumbnail
    seen more than ``min_repeat_gap`` frames ago, among the last ``window`` thumbnails, while
    the scene is not frozen.

    Limits: a truly static scene (an empty corridor at night, a skipped-block H.264 stream)
    looks frozen by design, and a loop that was re-encoded or slightly perturbed has new
    digests and is not recognised as a replay. This is a liveness *signal*; the gate decides
    what it means for an action (ADR 0006).
    """

    name: ClassVar[str] = "liveness"

    def __init__(
        self,
        frozen_seconds: float,
        frozen_mad_threshold: float,
        *,
        window: int = REPEAT_WINDOW,
        min_repeat_gap: int = MIN_REPEAT_GAP,
    ) -> None:
        if window < 1 or min_repeat_gap < 1:
            raise ValueError(
                f"expected window and min_repeat_gap of at least 1, got {window} and "
                f"{min_repeat_gap}"
            )
        self.frozen_seconds = frozen_seconds
        self.frozen_mad_threshold = frozen_mad_threshold
        self.min_repeat_gap = min_repeat_gap
        self._prev: npt.NDArray[np.uint8] | None = None
        self._prev_pts = 0.0
        self._last_index: int | None = None
        self._still_since: float | None = None
        self._order: deque[tuple[int, bytes]] = deque(maxlen=window)
        self._seen: dict[bytes, int] = {}

    @property
    def digests_held(self) -> int:
        """How many thumbnail digests are remembered (at most ``window``)."""
        return len(self._seen)

    def observe(
        self, frame_index: int, pts_s: float, thumbnail: npt.NDArray[np.uint8]
    ) -> str | None:
        """Feed the next frame's thumbnail; None when the scene looks alive, else the reason."""
        thumb = validate_thumbnail(thumbnail).copy()  # never alias the caller's buffer
        if self._last_index is not None and frame_index <= self._last_index:
            raise RuntimeError(
                f"expected a frame after {self._last_index}, got frame {frame_index}"
            )
        self._last_index = frame_index
        frozen = self._frozen(pts_s, thumb)
        repeat = self._repeat(frame_index, thumb)
        self._prev, self._prev_pts = thumb, pts_s
        return frozen if frozen is not None else repeat

    def _frozen(self, pts_s: float, thumb: npt.NDArray[np.uint8]) -> str | None:
        prev = self._prev
        if prev is None or prev.shape != thumb.shape:
            self._still_since = None
            return None
        mad = float(np.abs(thumb.astype(np.int16) - prev.astype(np.int16)).mean())
        if not (mad < self.frozen_mad_threshold or mad == 0.0):
            self._still_since = None
            return None
        if self._still_since is None:
            self._still_since = self._prev_pts
        still = pts_s - self._still_since
        if still <= self.frozen_seconds:
            return None
        if self.frozen_mad_threshold > 0:
            why = f"mean abs diff {mad:.2f} < {self.frozen_mad_threshold:g}"
        else:
            why = "identical pictures"
        return f"scene frozen for {still:.1f} s ({why})"

    def _repeat(self, frame_index: int, thumb: npt.NDArray[np.uint8]) -> str | None:
        digest = hashlib.blake2b(
            f"{thumb.shape}".encode() + thumb.tobytes(), digest_size=16
        ).digest()
        earlier = self._seen.get(digest)
        if len(self._order) == self._order.maxlen:
            old_index, old_digest = self._order[0]
            if self._seen.get(old_digest) == old_index:
                del self._seen[old_digest]
        self._order.append((frame_index, digest))
        self._seen[digest] = frame_index
        if earlier is None or self._still_since is not None:
            return None
        gap = frame_index - earlier
        if gap <= self.min_repeat_gap:
            return None
        return f"picture repeats frame {earlier} seen {gap} frames ago (replay or loop)"
