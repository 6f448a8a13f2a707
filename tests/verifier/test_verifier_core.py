"""The Verifier state machine: walking people agree, each tampered track disagrees.

Attack vectors are named after what they model and run through ``parametrize`` (STYLE.md).
From frame 20 on, track 7 of two people walking at 1 box height per second is tampered with;
track 3 stays honest throughout.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from verifier_sim import StreamSim, Walker, person, track_frame

from kontur.config import VerifierConfig
from kontur.errors import KonturError
from kontur.verifier import (
    FORGET_AFTER_FRAMES,
    FRAME_RECORDS,
    HISTORY_LENGTH,
    MAX_TRACKS,
    FrameStampError,
    ThumbnailError,
    Verifier,
    VerifierError,
)
from kontur.wire import TrackedObject, decode, encode

TAMPER_FROM = 20


def _shift(obj: TrackedObject, dx: float) -> TrackedObject:
    x1, y1, x2, y2 = obj.xyxy
    return obj.model_copy(update={"xyxy": (x1 + dx, y1, x2 + dx, y2)})


def _scale(obj: TrackedObject, k: float) -> TrackedObject:
    x1, y1, x2, y2 = obj.xyxy
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * k, (y2 - y1) * k
    return obj.model_copy(update={"xyxy": (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)})


Tamper = Callable[[TrackedObject, int], TrackedObject]

#: name -> (tamper applied to track 7 from frame 20, checks that must fire, reason fragment).
#: The finding judged is that of the last tampered frame: frame 20, or frame 23 for a sprint
#: (speed is measured over 0.3 s, so one frame of it is not yet one).
SPRINT_FRAMES = 4
ATTACKS: dict[str, tuple[Tamper, tuple[str, ...], str]] = {
    "track_teleport": (
        lambda o, f: _shift(o, 300.0),
        ("continuity", "speed"),
        "track 7: trajectory discontinuity, centre jumped 29",
    ),
    "track_speed_implausible": (
        lambda o, f: _shift(o, 150.0 * (f - TAMPER_FROM + 1)),
        ("speed",),
        "box sizes/s over 0.30 s exceeds 8",
    ),
    "track_size_blowup": (
        lambda o, f: _scale(o, 2.0),
        ("size",),
        "track 7: box area grew 4.",
    ),
    "track_class_flip": (
        lambda o, f: o.model_copy(update={"class_id": 2, "class_name": "car"}),
        ("class",),
        "track 7: class car differs from the track's majority class person (20 of 20 "
        "observations; into a watched class)",
    ),
    "track_confidence_jump": (
        lambda o, f: o.model_copy(update={"confidence": 0.10}),
        ("confidence",),
        "-> 0.10 (|Δ| 0.7",
    ),
}


def test_people_walking_at_one_box_height_per_second_agree(sim: StreamSim) -> None:
    walkers = [Walker(3, y=120.0), Walker(7, y=260.0, speed_h=-1.0, x=600.0)]
    findings = sim.walk(walkers, 100)
    assert [f for f in findings if not f.agree] == []
    assert all(f.reasons == () and f.track_reasons == {} for f in findings)


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_tampered_track_disagrees_with_the_right_reason_and_id(sim: StreamSim, attack: str) -> None:
    tamper, checks, fragment = ATTACKS[attack]
    honest, target = Walker(3, y=120.0), Walker(7, y=260.0)
    before = sim.walk([honest, target], TAMPER_FROM)
    assert all(f.agree for f in before)

    frames = SPRINT_FRAMES if attack == "track_speed_implausible" else 1
    for _ in range(frames):
        finding = sim.frame([honest.at(sim.pts), tamper(target.at(sim.pts), sim.index)])

    assert not finding.agree
    assert set(finding.track_reasons) == {7}
    assert len(finding.track_reasons[7]) == len(checks)
    assert any(fragment in r for r in finding.track_reasons[7]), finding.track_reasons[7]
    assert finding.reasons == (f"1 of 2 tracked object(s) disagree: track 7 ({', '.join(checks)})",)


def test_a_teleported_track_is_judged_from_where_it_landed_once_its_speed_baseline_passed(
    sim: StreamSim,
) -> None:
    target = Walker(7)
    sim.walk([target], TAMPER_FROM)
    jump = sim.frame([_shift(target.at(sim.pts), 300.0)])
    assert "continuity" in jump.reasons[0]
    # speed is measured against the box 0.3 s back: until that box is the landed one (frame
    # 20, three frames on), the jump still counts; after that, it is a walk again
    after = [sim.frame([_shift(target.at(sim.pts), 300.0)]) for _ in range(3)]
    assert [f.agree for f in after] == [False, False, True]
    assert all("(speed)" in f.reasons[0] for f in after[:2])


def test_a_frozen_scene_is_a_scene_reason_not_a_track_reason(sim: StreamSim) -> None:
    still = np.full((48, 64), 90, np.uint8)
    walker = Walker(3)
    findings = [sim.frame([walker.at(sim.pts)], thumbnail=still) for _ in range(40)]
    last = findings[-1]
    assert not last.agree
    assert last.track_reasons == {}
    assert len(last.reasons) == 1
    assert last.reasons[0].startswith("scene frozen for 3.9 s (mean abs diff 0.00 < 0.5)")


def test_cameras_are_checked_independently() -> None:
    verifier = Verifier(VerifierConfig())
    a, b = StreamSim(verifier, "cam-a"), StreamSim(verifier, "cam-b", seed=1)
    still = np.zeros((48, 64), np.uint8)
    walker = Walker(7)
    for _ in range(50):
        fa = a.frame(thumbnail=still)
        fb = b.frame([walker.at(b.pts)])
    assert not fa.agree and fa.camera_id == "cam-a"
    assert fb.agree and fb.camera_id == "cam-b"
    # The same track id on another camera is another track: no history carries over.
    assert a.frame([person(7, (400.0, 10.0, 440.0, 110.0))], thumbnail="noise").track_reasons == {}


@pytest.mark.parametrize("index", [4, 5], ids=["backwards", "repeated"])
def test_worker_repeating_or_reordering_frames_gets_a_disagreement_not_a_crash(
    sim: StreamSim, index: int
) -> None:
    """Issue 8 point 3: the worker sent the same frame index twice and crashed the verifier."""
    for _ in range(6):
        sim.frame()
    f = sim.verifier.check(track_frame(index, index / 10, ()))
    assert not f.agree
    assert f"expected tracks for a frame after 5, got frame {index}" in f.reasons[0]
    # and the verifier goes on: the next frame is checked normally
    assert sim.frame().camera_id == "cam-1"


def test_frames_observed_out_of_order_are_a_caller_bug(verifier: Verifier) -> None:
    verifier.observe_frame("cam-1", 10, 1.0, None)
    with pytest.raises(
        RuntimeError, match="camera 'cam-1': expected a frame after 10, got frame 9"
    ):
        verifier.observe_frame("cam-1", 9, 0.9, None)


@pytest.mark.parametrize(
    ("thumbnail", "fragment"),
    [
        (np.zeros((48, 64, 3), np.uint8), "expected a 2-D uint8 grayscale thumbnail, got shape"),
        (np.zeros((48, 64), np.float32), "got shape (48, 64) float32"),
        (np.zeros(3072, np.uint8), "got shape (3072,) uint8"),
        (np.zeros((4, 4), np.uint8), "between 8 and 512 pixels, got 4x4"),
        (np.zeros((1024, 1024), np.uint8), "got 1024x1024"),
        ([[0] * 64] * 48, "as a 2-D uint8 numpy array, got list"),
    ],
    ids=["bgr", "float", "flat", "too_small", "too_large", "not_array"],
)
def test_a_thumbnail_no_check_can_use_is_refused(
    verifier: Verifier, thumbnail: object, fragment: str
) -> None:
    with pytest.raises(ThumbnailError) as exc:
        verifier.observe_frame("cam-1", 0, 0.0, thumbnail)  # type: ignore[arg-type]
    assert fragment in str(exc.value)
    assert isinstance(exc.value, VerifierError) and isinstance(exc.value, KonturError)


@pytest.mark.parametrize(("index", "pts"), [(-1, 0.0), (0, float("nan")), (0, float("inf"))])
def test_an_impossible_frame_stamp_is_refused(verifier: Verifier, index: int, pts: float) -> None:
    with pytest.raises(FrameStampError, match="expected a frame index >= 0 and a finite pts"):
        verifier.observe_frame("cam-1", index, pts, None)


def test_tracks_for_a_camera_never_observed_disagree(verifier: Verifier) -> None:
    finding = verifier.check(track_frame(0, 0.0, [person(1, (0, 0, 10, 20))], "ghost"))
    assert not finding.agree
    assert finding.reasons == (
        "camera 'ghost': expected an observed camera, found none; the verifier vouches only "
        "for pictures it saw",
    )
    assert verifier.stats().cameras == 0


def test_tracks_for_a_frame_never_observed_disagree(sim: StreamSim) -> None:
    for _ in range(3):
        sim.frame()
    finding = sim.verifier.check(track_frame(7, 0.7, ()))
    assert not finding.agree
    assert finding.reasons == (
        "frame 7: expected a frame the verifier observed (held 0..2), found none; scene "
        "liveness unchecked",
    )


def test_tracks_stamped_with_another_pts_than_ingest_saw_disagree(sim: StreamSim) -> None:
    sim.observe()
    finding = sim.verifier.check(track_frame(0, 0.5, ()))
    assert finding.reasons == (
        "frame 0: tracks stamped pts 0.500000 s, expected 0.000000 s as ingest saw it",
    )


def test_missing_pictures_carry_the_last_verdict_then_disagree_after_frozen_seconds(
    sim: StreamSim,
) -> None:
    sim.frame()
    blind = [sim.frame(thumbnail=None) for _ in range(35)]  # frames 1..35, pts 0.1..3.5
    assert all(f.agree for f in blind[:30])
    assert blind[30].reasons == ("no picture seen for 3.1 s; scene liveness unchecked",)
    assert sim.frame().agree


def test_a_track_reported_twice_in_one_frame_disagrees(sim: StreamSim) -> None:
    box = (100.0, 100.0, 140.0, 200.0)
    finding = sim.frame([person(4, box), person(4, box), person(5, (300.0, 100.0, 340.0, 200.0))])
    assert finding.track_reasons == {
        4: ("track 4: reported more than once in frame 0, expected once",)
    }
    assert finding.reasons == ("1 of 3 tracked object(s) disagree: track 4 (duplicate)",)


def test_a_malformed_box_disagrees_without_entering_the_history(sim: StreamSim) -> None:
    walker = Walker(7)
    sim.walk([walker], 5)
    finding = sim.frame([person(7, (50.0, 0.0, 10.0, 10.0))])
    assert finding.reasons == ("1 of 1 tracked object(s) disagree: track 7 (box)",)
    assert sim.frame([walker.at(sim.pts)]).agree  # compared with frame 4, not with the inverted box


def test_a_finding_survives_the_wire(sim: StreamSim) -> None:
    walker = Walker(7)
    sim.walk([walker], 3)
    finding = sim.frame([_shift(walker.at(sim.pts), 400.0)])
    assert not finding.agree
    assert decode(encode(finding)) == finding


def test_state_stays_bounded_with_ever_new_track_ids(sim: StreamSim) -> None:
    """10,000 frames, three brand-new track ids each, plus one track that never ends. The
    new ones alternate between two places: three new ids where three vanished every frame
    would be a worker renaming its objects (``renamed``)."""
    walker = Walker(1, speed_h=0.0)
    for i in range(10_000):
        x = 300.0 * (i % 2)
        fresh = [
            person(10 + 3 * i + k, (x + 50 * k, 0.0, x + 50 * k + 40, 100.0)) for k in range(3)
        ]
        finding = sim.frame([walker.at(sim.pts), *fresh])
        assert finding.agree
    stats = sim.verifier.stats()
    assert stats.tracks <= 1 + 3 * (FORGET_AFTER_FRAMES + 1)
    assert stats.observations <= HISTORY_LENGTH + 3 * (FORGET_AFTER_FRAMES + 1)
    assert stats.frame_records == FRAME_RECORDS
    assert stats.digests <= 300


def test_a_flood_of_tracks_in_one_frame_is_capped(sim: StreamSim) -> None:
    flood = [person(i, (0.0, 0.0, 10.0, 20.0)) for i in range(MAX_TRACKS + 500)]
    sim.frame(flood)
    assert sim.verifier.stats().tracks == MAX_TRACKS
