"""The track checks on their own: thresholds, gap scaling, and what they say when they fire."""

from __future__ import annotations

import math

import pytest

from kontur.config import VerifierConfig
from kontur.verifier import (
    ClassStability,
    ConfidenceJump,
    ForegroundSupport,
    FrozenBox,
    ObservedBox,
    PlausibleSizeChange,
    PlausibleSpeed,
    TrackHistory,
    TrajectoryContinuity,
    WellFormedBox,
    default_track_checks,
)
from kontur.verifier.watch import ClassGroups

GROUPS = ClassGroups(VerifierConfig().class_groups)
NAMES = {0: "person", 1: "bicycle", 2: "car", 5: "bus", 7: "truck", 10: "fire hydrant"}


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
    support: float | None = None,
    motion: float | None = None,
    clipped: bool = False,
) -> ObservedBox:
    """A box centred at (cx, cy) in frame ``frame`` of a ``fps`` stream."""
    xyxy = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    name = NAMES.get(class_id, "")
    return ObservedBox(
        frame, frame / fps, xyxy, class_id, confidence, name, support, motion, clipped
    )


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
        ForegroundSupport(0.5, 0.1),
        FrozenBox(),
    ],
    ids=lambda c: c.name,
)
def test_a_track_seen_for_the_first_time_passes_every_check(check: object) -> None:
    first = box(0, 100.0, class_id=5, confidence=0.01)
    assert check.check(1, TrackHistory(), first) is None  # type: ignore[attr-defined]


def test_continuity_allows_a_jump_proportional_to_the_time_elapsed() -> None:
    check = TrajectoryContinuity(2.0)
    jump = 3.0 * DIAG  # 323 px: three diagonals
    assert check.check(4, history(box(10, 100.0)), box(12, 100.0 + jump)) is None
    reason = check.check(4, history(box(10, 100.0)), box(11, 100.0 + jump))
    assert reason == (
        "track 4: trajectory discontinuity, centre jumped 323.1 px in 0.10 s, expected at "
        "most 215.4 px (2 box diagonals per 0.1 s)"
    )


def test_continuity_gives_a_fast_camera_the_same_allowance_per_observation() -> None:
    """Detector noise does not shrink with the frame interval: at 30 fps one frame may jump
    as far as at 10 fps; a teleport is still one."""
    check = TrajectoryContinuity(2.0)
    at30 = history(box(30, 100.0, fps=30))
    assert check.check(4, at30, box(31, 100.0 + 1.5 * DIAG, fps=30)) is None
    assert check.check(4, at30, box(31, 100.0 + 3.0 * DIAG, fps=30)) is not None


def test_speed_is_measured_in_box_sizes_per_second_over_a_baseline() -> None:
    check = PlausibleSpeed(8.0)
    # A sprint of 50 px a frame at 25 fps with a 100 px tall box: 12.5 sizes/s. Its first
    # frame is within the jitter allowed; measured over 0.32 s it is too fast.
    run = [box(i, 100.0 + 50.0 * i, fps=25) for i in range(8)]
    assert check.check(7, history(run[0]), run[1]) is None
    fast = check.check(7, history(*run[:-1]), run[-1])
    assert fast == "track 7: speed 12.5 box sizes/s over 0.28 s exceeds 8"


def test_a_pixel_of_jitter_at_30_fps_is_not_a_sprint() -> None:
    # 30 px in one frame at 30 fps is 9 heights/s over that frame, but no sprint at all.
    walk = [box(i, 100.0 + 3.0 * i, fps=30) for i in range(12)]
    jittered = box(12, 100.0 + 3.0 * 12 + 30.0, fps=30)
    assert PlausibleSpeed(8.0).check(7, history(*walk), jittered) is None


def test_a_car_is_measured_in_its_length_not_its_height() -> None:
    # A car 200 px long and 80 px tall driving 1000 px/s: 12.5 heights/s, 5 lengths/s.
    drive = [box(i, 100.0 + 100.0 * i, w=200.0, h=80.0, class_id=2) for i in range(5)]
    assert PlausibleSpeed(8.0).check(3, history(*drive[:-1]), drive[-1]) is None


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
    assert grew == "track 2: box area grew 4.0x in 0.10 s, expected at most 3.0x"
    assert shrank == "track 2: box area shrank 4.0x in 0.10 s, expected at most 3.0x"


def test_size_limit_grows_linearly_with_the_gap_not_compounded() -> None:
    check = PlausibleSizeChange(3.0)
    four_times = {"w": 80.0, "h": 200.0}
    # Two frames apart the limit is 1 + 2·2 = 5×: a 4× change passes.
    assert check.check(2, history(box(0, 100.0)), box(2, 100.0, **four_times)) is None
    # Compounding would allow 3^10 = 59049× over ten frames; linear allows 21×.
    huge = check.check(2, history(box(0, 100.0, w=4.0, h=10.0)), box(10, 100.0, w=40, h=100))
    assert huge == "track 2: box area grew 100.0x in 1.00 s, expected at most 21.0x"


def test_a_box_at_the_frame_border_may_change_size_at_any_rate() -> None:
    """An object entering the picture shows more of itself every frame."""
    check = PlausibleSizeChange(3.0)
    entering = box(1, 20.0, w=40.0, h=200.0, clipped=True)
    assert check.check(2, history(box(0, 5.0, w=10.0, h=50.0, clipped=True)), entering) is None


def _settled(class_id: int, frames: int = 12) -> list[ObservedBox]:
    """A track seen as ``class_id`` for 1.2 s: old enough for its class to be judged."""
    return [box(i, 100.0, class_id=class_id) for i in range(frames)]


@pytest.mark.parametrize(
    ("before", "now", "watched", "fragment"),
    [
        (0, 1, None, None),  # person -> bicycle: one group, the detector's usual confusion
        (2, 7, None, None),  # car -> truck
        (2, 0, None, "class person differs from the track's majority class car (12 of 12"),
        (2, 0, frozenset({"person"}), "into a watched class"),  # a car starts a person dwell
        (2, 10, frozenset({"person"}), None),  # car -> fire hydrant: no policy cares
        (0, 2, frozenset({"person"}), None),  # out of the watched group: not yet 0.3 s
    ],
    ids=["same_group", "vehicles", "into_everything", "into_watched", "unwatched", "out_young"],
)
def test_class_stability_tolerates_confusions_and_cares_for_watched_classes(
    before: int, now: int, watched: frozenset[str] | None, fragment: str | None
) -> None:
    check = ClassStability(GROUPS, watched, flip_seconds=0.3)
    reason = check.check(9, history(*_settled(before)), box(12, 100.0, class_id=now))
    if fragment is None:
        assert reason is None
    else:
        assert reason is not None and fragment in reason, reason


def test_a_flip_out_of_a_watched_class_disagrees_once_it_lasted() -> None:
    check = ClassStability(GROUPS, frozenset({"person"}), flip_seconds=0.3)
    track = [*_settled(0), *(box(i, 100.0, class_id=2) for i in range(12, 15))]
    assert check.check(9, history(*track[:13]), track[13]) is None  # 0.1 s a car
    reason = check.check(9, history(*track[:14]), track[14])  # 0.2 s... then 0.3 s:
    assert reason is None
    late = check.check(9, history(*track), box(15, 100.0, class_id=2))
    assert late == (
        "track 9: class car differs from the track's majority class person (12 of 15 "
        "observations; out of a watched class for 0.3 s)"
    )


def test_a_young_track_whose_detector_had_not_settled_is_not_judged() -> None:
    check = ClassStability(GROUPS, None)
    unsure = [box(i, 100.0, class_id=2, confidence=0.4) for i in range(5)]  # 0.4 s of guesses
    assert check.check(9, history(*unsure), box(5, 100.0, class_id=0)) is None
    brief = history(*_settled(2, frames=2))  # sure, but for 0.1 s only
    assert check.check(9, brief, box(2, 100.0, class_id=0)) is None


def test_a_young_track_changes_class_against_the_run_its_detector_was_sure_of() -> None:
    """A worker that relabels a person seen for 0.4 s as a car is not shielded by the track's
    youth, nor by the new class outnumbering the old one once it has lasted."""
    check = ClassStability(GROUPS, frozenset({"person"}), flip_seconds=0.3)
    person = list(_settled(0, frames=5))  # 0.4 s, confidence 0.8
    cars = [box(i, 100.0, class_id=2) for i in range(5, 12)]
    assert check.check(9, history(*person, *cars[:2]), cars[2]) is None  # a car for 0.2 s
    reason = check.check(9, history(*person, *cars[:-1]), cars[-1])  # 0.6 s: 7 cars to 5
    assert reason == (
        "track 9: class car differs from the track's settled class person (5 observations "
        "over 0.4 s; out of a watched class for 0.6 s)"
    )
    watched_in = ClassStability(GROUPS, frozenset({"person"}))
    car = list(_settled(2, frames=5))
    assert "into a watched class" in (watched_in.check(9, history(*car), box(5, 100.0)) or "")


def test_a_tracker_handing_an_id_to_another_object_is_not_a_class_change() -> None:
    check = ClassStability(GROUPS, None)
    car = list(_settled(2, frames=5))
    elsewhere = box(5, 400.0, class_id=0)  # the id now follows a person 300 px away
    assert check.check(9, history(*car), elsewhere) is None
    back = box(6, 100.0, class_id=0)  # ... but one displaced box does not hide a relabel
    assert "into a watched class" in (check.check(9, history(*car, elsewhere), back) or "")


def test_a_fade_before_the_change_does_not_unsettle_what_the_detector_was_sure_of() -> None:
    check = ClassStability(GROUPS, frozenset({"person"}), flip_seconds=0.3)
    person = [box(i, 100.0, confidence=0.9 if i < 5 else 0.3) for i in range(8)]  # fading
    cars = [box(i, 100.0, class_id=2) for i in range(8, 18)]  # 10 cars to 8: the majority
    reason = check.check(9, history(*person, *cars[:-1]), cars[-1])
    assert reason is not None and "settled class person (7 observations" in reason, reason


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
    assert list(checks) == [
        "continuity",
        "speed",
        "size",
        "class",
        "confidence",
        "foreground",
        "frozen",
        "coherence",
        "stature",
        "picture",
    ]
    # 3 sizes/s over 0.3 s: plausible under the default 8, implausible under 2.
    walk = [box(i, 100.0 + 30.0 * i) for i in range(4)]
    reason = checks["speed"].check(5, history(*walk[:-1]), walk[-1])
    assert reason == "track 5: speed 3.0 box sizes/s over 0.30 s exceeds 2"
