"""Tracks dropped over their own moving pixels, pixels of another object's box, and people
too tall for where they stand (issue 13 §2, ADR 0025).

Synthetic masks pin each rule down; PETS09-S2L1 with its MOTChallenge ground truth (an honest
worker) shows the rules on real footage: a worker that drops one real walker is caught, the
ground truth never is, and a phantom drawn at twice a person's height there is caught by the
perspective alone.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_verifier_pixels import FPS, ONSET, frames, run
from test_verifier_real_data import PETS_GT, PETS_VIDEO, _require, gt_tracks
from verifier_sim import person

from kontur.config import VerifierConfig
from kontur.verifier import (
    BoxMeter,
    InsidePicture,
    ObservedBox,
    PersonScale,
    PersonStature,
    SceneMasks,
    TrackHistory,
    VanishedTracks,
    WatchedZone,
)
from kontur.verifier.checks import TOO_TALL
from kontur.verifier.vanished import KEEP, MAX_GAP_S
from kontur.verifier.watch import ClassGroups

WHOLE = WatchedZone("whole-frame", "*", ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)), None)
H, W, STRIDE = 90, 160, 4  # picture pixels; the frame is 640×360


def masks(
    pts: float,
    fg_boxes: list[tuple[int, int, int, int]],
    moving: bool = True,
) -> SceneMasks:
    """Judged masks with foreground (and, if ``moving``, motion) filling the given picture
    rectangles (y0, x0, y1, x1)."""
    fg = np.zeros((H, W), bool)
    for y0, x0, y1, x1 in fg_boxes:
        fg[y0:y1, x0:x1] = True
    motion = fg if moving else np.zeros_like(fg)
    return SceneMasks(
        pts, (H, W), STRIDE, W * STRIDE, H * STRIDE, True, None, float(fg.mean()), False,
        np.packbits(fg).tobytes(), np.packbits(motion).tobytes(),
    )  # fmt: skip


#: A walker in frame pixels, and its blob in picture pixels.
WALKER = (200.0, 100.0, 240.0, 200.0)
BLOB = (25, 50, 50, 60)


def seen(pts: float = 0.0, support: float = 0.6, motion: float = 0.3) -> ObservedBox:
    return ObservedBox(0, pts, WALKER, 0, 0.9, "person", support=support, motion=motion)


def follow(
    ghosts: VanishedTracks,
    n: int,
    fg: list[tuple[int, int, int, int]],
    boxes: list[tuple[float, float, float, float]] | None = None,
    moving: bool = True,
) -> list[list[str]]:
    """Feed ``n`` frames at 10 fps after the track was last seen at 0 s."""
    out = []
    for k in range(1, n + 1):
        meter = BoxMeter(masks(k / 10, fg, moving))
        out.append(ghosts.observe(meter, boxes or [], k / 10))
    return out


def test_a_track_dropped_over_its_own_moving_pixels_raises_its_zone() -> None:
    ghosts = VanishedTracks((WHOLE,), 0.5, 0.1)
    ghosts.lost(7, seen(), 0.6)
    reasons = follow(ghosts, 6, [BLOB])
    assert [bool(r) for r in reasons] == [False] * 4 + [True] * 2  # from 0.5 s on
    assert reasons[4][0].startswith("zone whole-frame: track 7 (person) vanished 0.5 s ago")
    assert reasons[4][0].endswith("nothing-there is unverified (possible evasion)")


@pytest.mark.parametrize(
    ("case", "fg", "boxes", "moving"),
    [
        ("a new id over it", [BLOB], [(198.0, 104.0, 238.0, 202.0)], True),
        ("it stopped", [BLOB], None, False),
        ("it went away", [], None, True),
        ("half hidden", [(25, 50, 35, 60)], None, True),  # fit 0.4 < KEEP × 0.6
    ],
)
def test_a_track_lost_for_a_reason_a_tracker_has_raises_nothing(
    case: str,
    fg: list[tuple[int, int, int, int]],
    boxes: list[tuple[float, float, float, float]] | None,
    moving: bool,
) -> None:
    ghosts = VanishedTracks((WHOLE,), 0.5, 0.1)
    ghosts.lost(7, seen(), 0.6)
    assert follow(ghosts, 10, fg, boxes, moving) == [[]] * 10, case


def test_only_a_track_the_verifier_saw_whole_and_moving_leaves_a_ghost() -> None:
    for last in (
        seen(support=0.05),  # the verifier's foreground never carried it
        seen(motion=0.0),  # it stood still
        ObservedBox(0, 0.0, WALKER, 0, 0.9, "person", support=0.6, motion=0.3, clipped=True),
        ObservedBox(0, 0.0, WALKER, 0, 0.9, "person"),  # not judged
    ):
        ghosts = VanishedTracks((WHOLE,), 0.5, 0.1)
        ghosts.lost(7, last, 0.6)
        assert follow(ghosts, 8, [BLOB]) == [[]] * 8


def test_a_ghost_follows_its_object_and_is_dropped_after_a_gap() -> None:
    ghosts = VanishedTracks((WHOLE,), 0.5, 0.1)
    ghosts.lost(7, seen(), 0.6)
    out = []
    for k in range(1, 7):  # the blob walks a tenth of its width... a quarter, each frame
        x0 = 50 + 2 * k
        out.append(ghosts.observe(BoxMeter(masks(k / 10, [(25, x0, 50, x0 + 10)])), [], k / 10))
    assert out[-1] and "track 7" in out[-1][0]
    gap = round(MAX_GAP_S * 10) + 1
    assert follow(ghosts, gap, []) == [[]] * gap
    assert follow(ghosts, 6, [BLOB]) == [[]] * 6  # that ghost is gone for good


def test_keep_is_a_share_of_the_tracks_own_support() -> None:
    assert 0.5 < KEEP < 1.0


def test_pixels_under_another_objects_box_do_not_carry_a_box() -> None:
    car = (25, 40, 60, 80)  # picture pixels: a car's foreground, and its box
    car_box = (160.0, 100.0, 320.0, 240.0)
    m = masks(1.0, [car])
    phantom = (240.0, 120.0, 280.0, 300.0)  # straddles the car's box and empty road
    plain, own = BoxMeter(m).support(phantom), BoxMeter(m, (car_box,)).support(phantom)
    assert plain is not None and own is not None
    assert plain[0] > 0.3 and plain[1] > 0.3  # the car's pixels, counted as its own
    assert own == (0.0, 0.0)
    # a person wholly in front of the car cannot be told from it: not measured at all
    assert BoxMeter(m, (car_box,)).support((200.0, 110.0, 240.0, 220.0)) is None


def test_the_perspective_model_gives_a_persons_height_at_a_foot_point() -> None:
    scale = PersonScale(0.12)
    assert scale.height_at(0.5) is None  # not fitted yet
    for i in range(30):
        foot = 0.4 + 0.5 * i / 29
        scale.add(foot, 0.1 + 0.2 * (foot - 0.4))
    assert scale.height_at(0.9) == pytest.approx(0.2)
    assert scale.height_at(0.4) == pytest.approx(0.12)  # never below min_person_height


def _tall(frame: int, stature: float | None) -> ObservedBox:
    return ObservedBox(frame, frame / 10, WALKER, 0, 0.9, "person", stature=stature)


@pytest.mark.parametrize(
    ("statures", "flagged"),
    [
        ([2.0] * 6, True),
        ([2.0, 2.0, 1.5, 2.0, 2.0, 2.0], False),  # once a plausible height in the window
        ([2.0, 2.0], False),  # too few measured boxes
        ([0.3] * 6, False),  # too short is never flagged (legs hidden, a child)
        ([None] * 6, False),  # the model is not fitted
    ],
)
def test_a_person_too_tall_for_where_it_stands(statures: list[float | None], flagged: bool) -> None:
    check = PersonStature(0.5, ClassGroups(VerifierConfig().class_groups), frozenset({"person"}))
    history = TrackHistory()
    for i, s in enumerate(statures[:-1]):
        history.append(_tall(i, s))
    reason = check.check(3, history, _tall(len(statures) - 1, statures[-1]))
    assert (reason is not None) == flagged
    if reason:
        assert reason.startswith("track 3: box 2.0× or more the height of a person standing")
        assert f"expected at most {TOO_TALL:g}×" in reason


def test_a_walker_the_worker_drops_on_real_footage_is_caught() -> None:
    _require(PETS_VIDEO, PETS_GT)
    tracks = gt_tracks(PETS_GT, 0.625)
    target = 12  # a walker alone on the path at 4 s (ground-truth id), dropped by the worker
    assert target in {o.track_id for o in tracks[ONSET - 1]}
    for i in range(ONSET, 120):
        tracks[i] = [o for o in tracks[i] if o.track_id != target]
    findings = run(frames(PETS_VIDEO, 120), FPS, tracks)
    assert all(f.agree for f in findings[:ONSET])
    hits = [f for f in findings[ONSET:] if any(f"track {target} " in r for r in f.reasons)]
    assert hits and hits[0].frame_index - ONSET < FPS
    assert any(") vanished " in r for r in hits[0].reasons)


def test_a_phantom_twice_a_persons_height_is_caught_by_the_perspective() -> None:
    _require(PETS_VIDEO, PETS_GT)
    tracks = gt_tracks(PETS_GT, 0.625)
    start = 100  # the perspective model has learnt the walkers by then
    for i in range(start, 140):
        x = 300.0 - 4.0 * (i - start)  # a slow walker on the path, 120 px high at y = 200
        tracks[i] = [*tracks.get(i, []), person(999, (x, 80.0, x + 45.0, 200.0))]
    findings = run(frames(PETS_VIDEO, 140), FPS, tracks)
    flagged = [f for f in findings[start:] if 999 in f.track_reasons]
    assert flagged and flagged[0].frame_index - start < FPS
    assert any("the height of a person" in r for f in flagged for r in f.track_reasons[999])
    assert all(set(f.track_reasons) <= {999} for f in findings)


@pytest.mark.parametrize(
    ("outside", "label", "flagged"),
    [(0.2, "person", True), (0.05, "person", False), (0.0, "person", False), (0.5, "car", False)],
)
def test_a_box_drawn_outside_the_picture_was_not_found_in_it(
    outside: float, label: str, flagged: bool
) -> None:
    check = InsidePicture(ClassGroups(VerifierConfig().class_groups), frozenset({"person"}))
    box = ObservedBox(5, 0.5, (560.0, 0.0, 700.0, 272.0), 0, 0.9, label, outside=outside)
    reason = check.check(6, TrackHistory(), box)
    assert (reason is not None) == flagged
    if reason:
        assert reason == (
            "track 6: box (560, 0, 700, 272) lies 20% outside the picture, expected at most "
            "10%: a detector finds boxes in the picture it sees"
        )


def test_the_verifier_measures_how_much_of_a_box_lies_outside_its_picture() -> None:
    _require(PETS_VIDEO)
    clip = frames(PETS_VIDEO, 30)
    tracks = {i: [person(1, (400.0 + i, 100.0, 560.0 + i, 200.0))] for i in range(30)}
    findings = run(clip, FPS, tracks)  # 480 px wide: half the box is outside
    assert all(1 in f.track_reasons for f in findings)
    assert "outside the picture" in findings[-1].track_reasons[1][0]


def test_a_line_that_is_no_perspective_judges_no_height() -> None:
    scale = PersonScale(0.12)
    for i in range(30):  # taller the higher the foot: no camera above a ground sees that
        foot = 0.4 + 0.5 * i / 29
        scale.add(foot, 0.3 - 0.2 * (foot - 0.4))
    assert scale.span() != (0.12, 0.6)  # fitted: the evasion search still uses its band
    assert scale.height_at(0.9) is None
