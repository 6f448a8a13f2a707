"""The track checks on their own: thresholds, gap scaling, and what they say when they fire."""

from __future__ import annotations

import math

import pytest

from kontur.config import VerifierConfig
from kontur.verifier import (
    ClassStability,
    ConfidenceJump,
    ObservedBox,
    PlausibleSizeChange,
    PlausibleSpeed,
    TrackHistory,
    TrajectoryContinuity,
    WellFormedBox,
    default_track_checks,
)


def box(
    frame: int,
    cx: float,
    cy: float = 200.0,
    w: float = 40.0,
    h: float = 100.0,
    *,
    fps: float = 10.0,
    class_id: int = 0,
    confidence: float = 0.8,
) -> ObservedBox:
    """A box centred at (cx, cy) in frame ``frame`` of a ``fps`` stream."""
    xyxy = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    return ObservedBox(frame, frame / fps, xyxy, class_id, confidence)


def history(*boxes: ObservedBox) -> TrackHistory:
    h = TrackHistory()
    for b in boxes:
        h.append(b)
    return h


DIAG = math.hypot(40.0, 100.0)  # 107.7 px


@pytest.mark.parametrize(
    "check",
    [
        TrajectoryContinuity(2.0),
        PlausibleSpeed(8.0),
        PlausibleSizeChange(3.0),
        ClassStability(),
        ConfidenceJump(0.6),
    ],
    ids=lambda c: c.name,
)
def test_a_track_seen_for_the_first_time_passes_every_check(check: object) -> None:
    first = box(0, 100.0, class_id=5, confidence=0.01)
    assert check.check(1, TrackHistory(), first) is None  # type: ignore[attr-defined]


def test_continuity_allows_a_jump_proportional_to_the_frames_elapsed() -> None:
    check = TrajectoryContinuity(2.0)
    jump = 3.0 * DIAG  # 323 px: three diagonals
    assert check.check(4, history(box(10, 100.0)), box(12, 100.0 + jump)) is None
    reason = check.check(4, history(box(10, 100.0)), box(11, 100.0 + jump))
    assert reason == (
        "track 4: trajectory discontinuity, centre jumped 323.1 px in 1 frame(s), expected at "
        "most 215.4 px (2 box diagonals per frame)"
    )


def test_speed_is_measured_in_box_heights_per_second_of_pts() -> None:
    check = PlausibleSpeed(8.0)
    # 50 px per frame with a 100 px tall box: 5 h/s at 10 fps, 12.5 h/s at 25 fps.
    assert check.check(7, history(box(0, 100.0)), box(1, 150.0)) is None
    fast = check.check(7, history(box(0, 100.0, fps=25)), box(1, 150.0, fps=25))
    assert fast == "track 7: speed 12.5 box-heights/s exceeds 8"


def test_speed_refuses_a_pts_that_did_not_advance() -> None:
    prev = box(3, 100.0)
    same_time = ObservedBox(4, prev.pts_s, box(4, 101.0).xyxy, 0, 0.8)
    reason = PlausibleSpeed(8.0).check(7, history(prev), same_time)
    assert reason is not None
    assert "time did not advance between frames 3 and 4 (pts 0.300 s -> 0.300 s)" in reason


def test_size_change_is_flagged_in_both_directions() -> None:
    check = PlausibleSizeChange(3.0)
    grew = check.check(2, history(box(0, 100.0)), box(1, 100.0, w=80.0, h=200.0))
    shrank = check.check(2, history(box(0, 100.0, w=80.0, h=200.0)), box(1, 100.0))
    assert grew == "track 2: box area grew 4.0x in 1 frame(s), expected at most 3.0x"
    assert shrank == "track 2: box area shrank 4.0x in 1 frame(s), expected at most 3.0x"


def test_size_limit_grows_linearly_with_the_gap_not_compounded() -> None:
    check = PlausibleSizeChange(3.0)
    four_times = {"w": 80.0, "h": 200.0}
    # Two frames apart the limit is 1 + 2·2 = 5×: a 4× change passes.
    assert check.check(2, history(box(0, 100.0)), box(2, 100.0, **four_times)) is None
    # Compounding would allow 3^10 = 59049× over ten frames; linear allows 21×.
    huge = check.check(2, history(box(0, 100.0, w=4.0, h=10.0)), box(10, 100.0, w=40, h=100))
    assert huge == "track 2: box area grew 100.0x in 10 frame(s), expected at most 21.0x"


def test_class_must_match_the_majority_of_the_history() -> None:
    check = ClassStability()
    mixed = history(
        box(0, 100.0, class_id=0),
        box(1, 100.0, class_id=2),
        box(2, 100.0, class_id=0),
    )
    assert check.check(9, mixed, box(3, 100.0, class_id=0)) is None
    reason = check.check(9, mixed, box(3, 100.0, class_id=2))
    assert (
        reason == "track 9: class 2 differs from the track's majority class 0 (2 of 3 observations)"
    )


def test_confidence_jump_is_flagged_above_the_threshold_only() -> None:
    check = ConfidenceJump(0.6)
    before = history(box(0, 1.0, confidence=0.9))
    assert check.check(1, before, box(1, 1.0, confidence=0.35)) is None
    reason = check.check(1, before, box(1, 1.0, confidence=0.2))
    assert reason == "track 1: confidence jumped 0.90 -> 0.20 (|Δ| 0.70 exceeds 0.6)"


@pytest.mark.parametrize(
    ("xyxy", "fragment"),
    [
        ((10.0, 10.0, float("nan"), 50.0), "malformed box (10.0, 10.0, nan, 50.0)"),
        ((10.0, 10.0, float("inf"), 50.0), "malformed box (10.0, 10.0, inf, 50.0)"),
        ((50.0, 10.0, 10.0, 50.0), "malformed box (50.0, 10.0, 10.0, 50.0)"),
        ((10.0, 10.0, 10.0, 50.0), "malformed box (10.0, 10.0, 10.0, 50.0)"),
        ((0.0, 0.0, 1e-200, 1e-200), "expected finite x1 < x2 and y1 < y2"),
    ],
    ids=["nan", "inf", "inverted", "zero_width", "area_underflows"],
)
def test_well_formed_box_refuses_boxes_no_other_check_could_measure(
    xyxy: tuple[float, float, float, float], fragment: str
) -> None:
    reason = WellFormedBox().check(3, TrackHistory(), ObservedBox(0, 0.0, xyxy, 0, 0.5))
    assert reason is not None
    assert reason.startswith("track 3: ")
    assert fragment in reason


def test_history_is_bounded_and_refuses_an_observation_out_of_order() -> None:
    h = TrackHistory(maxlen=64)
    for i in range(200):
        h.append(box(i, float(i)))
    assert len(h) == 64
    assert next(iter(h)).frame_index == 136
    with pytest.raises(
        RuntimeError, match="expected an observation after frame 199, got frame 199"
    ):
        h.append(box(199, 1.0))


def test_default_checks_take_their_thresholds_from_the_config() -> None:
    strict = VerifierConfig(max_speed_heights_per_s=2.0)
    checks = {c.name: c for c in default_track_checks(strict)}
    assert list(checks) == ["continuity", "speed", "size", "class", "confidence"]
    # 3 h/s: plausible under the default 8, implausible under 2.
    reason = checks["speed"].check(5, history(box(0, 100.0)), box(1, 130.0))
    assert reason == "track 5: speed 3.0 box-heights/s exceeds 2"
