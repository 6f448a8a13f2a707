"""ADR 0043's parts on their own: when a box holds the verifier's foreground, when the
verifier vouches for a track anew, when it carries one, and which boxes stand alone."""

from __future__ import annotations

import pytest

from kontur.verifier import ForegroundSupport, ObservedBox, TrackHistory
from kontur.verifier.checks import FOOT_MIN, VOUCH_MOVE
from kontur.verifier.core import MAX_ALONE_PAIRS, _Alone
from kontur.wire import TrackedObject

SUPPORT = ForegroundSupport(0.5, 0.1)  # phantom_seconds 0.5, min_support 0.1


def obs(
    frame: int,
    cx: float = 100.0,
    *,
    support: float | None = 0.6,
    motion: float | None = 0.2,
    foot: float | None = 0.5,
) -> ObservedBox:
    """A 40 x 100 px person box at 10 fps, centred at (cx, 200)."""
    xyxy = (cx - 20.0, 150.0, cx + 20.0, 250.0)
    return ObservedBox(frame, frame / 10, xyxy, 0, 0.8, "person", support, motion, foot=foot)


def walk(frames: int, step: float = 5.0, **kw: float | None) -> TrackHistory:
    history = TrackHistory()
    for i in range(frames):
        history.append(obs(i, 100.0 + step * i, **kw))  # type: ignore[arg-type]
    return history


@pytest.mark.parametrize(
    ("support", "foot", "expected"),
    [
        (0.6, 0.5, True),
        (0.05, 0.5, False),  # too little foreground under the box
        (0.6, FOOT_MIN / 2, False),  # bare ground at its feet: stretched below its object
        (None, 0.5, None),  # the frame was not judged
        (0.6, None, None),  # its lowest rows were covered by another box
        (0.05, None, False),  # any measured shortfall decides
    ],
)
def test_a_box_holds_foreground_under_it_and_at_its_feet(
    support: float | None, foot: float | None, expected: bool | None
) -> None:
    assert SUPPORT.holds(obs(0, support=support, foot=foot)) is expected


def test_a_walker_with_its_own_moving_foreground_is_vouched_for() -> None:
    history = walk(6)
    assert SUPPORT.vouches(history, obs(6, 130.0))


@pytest.mark.parametrize(
    ("history", "current", "why"),
    [
        (walk(6, step=0.0), obs(6, 100.0), "stood still where people walk through it"),
        (walk(6, motion=0.0), obs(6, 130.0, motion=0.0), "slid over still foreground"),
        (walk(6, support=0.0), obs(6, 130.0), "one supported frame of six"),
        (walk(1), obs(1, 105.0), "judged twice only"),
        (walk(6), obs(6, 130.0, support=None), "the model abstained on this frame"),
    ],
)
def test_nothing_else_is_vouched_for(history: TrackHistory, current: ObservedBox, why: str) -> None:
    assert not SUPPORT.vouches(history, current), why


def test_vouching_needs_the_box_to_have_moved_a_tenth_of_its_size() -> None:
    size = 100.0  # the box's larger side
    short = VOUCH_MOVE * size * 0.9 / 5  # 5 steps over the 0.5 s window
    assert not SUPPORT.vouches(walk(6, step=short), obs(6, 100.0 + short * 6))
    long = VOUCH_MOVE * size * 1.2 / 5
    assert SUPPORT.vouches(walk(6, step=long), obs(6, 100.0 + long * 6))


def test_a_carried_track_stays_carried_while_it_holds_foreground_even_standing() -> None:
    history = walk(6, step=0.0)  # never vouched for: it stood still
    standing = obs(6, 100.0)
    assert not SUPPORT.carries(history, standing)
    history.carried = True  # ... but it walked here earlier, and the verifier saw it
    assert SUPPORT.carries(history, standing)
    assert not SUPPORT.carries(history, obs(6, 100.0, foot=0.0))  # its feet left the box
    assert not SUPPORT.carries(history, obs(6, 100.0, support=None))  # nobody looked


def test_a_track_is_carried_from_the_frame_it_is_vouched_for() -> None:
    history = walk(6)
    assert not history.carried
    assert SUPPORT.carries(history, obs(6, 130.0))


def _objects(*boxes: tuple[float, float, float, float]) -> tuple[TrackedObject, ...]:
    return tuple(
        TrackedObject.model_construct(
            track_id=i + 1, class_id=0, class_name="person", confidence=0.9, xyxy=b
        )
        for i, b in enumerate(boxes)
    )


def test_boxes_alone_are_those_no_other_box_overlaps() -> None:
    alone = _Alone(
        _objects(
            (0, 0, 40, 100),  # 1: 2 covers 0.75 of it
            (10, 0, 50, 100),  # 2
            (45, 0, 85, 100),  # 3: touches 2, which covers 0.125 of it
            (200, 0, 400, 150),  # 4: a car, 0.09 of it covered by...
            (300, 50, 330, 140),  # 5: ... a box inside it (IoU 0.09)
            (600, 0, 640, 100),  # 6: far away
        )
    )
    assert [alone(t) for t in range(1, 7)] == [False, False, True, True, False, True]


def test_a_crowded_frame_has_no_box_alone() -> None:
    row = [(float(i), 0.0, i + 1000.0, 100.0) for i in range(0, 1000, 20)]  # 50, side by side
    far = (5000.0, 0.0, 5040.0, 100.0)
    objects = _objects(*row, far)
    pairs = sum(1 for a in row for b in row if a < b and b[0] < a[2])
    assert pairs > MAX_ALONE_PAIRS
    assert not _Alone(objects)(len(objects))  # even the far box: the frame is too crowded


def test_malformed_boxes_are_left_out_of_the_sweep() -> None:
    objects = _objects((0, 0, 40, 100), (float("nan"), 0, 40, 100), (30, 0, 10, 100))
    assert _Alone(objects)(1)  # the NaN box and the inverted one overlap nothing


def test_a_scored_box_keeps_every_other_field() -> None:
    """``ObservedBox.scored`` is ``dataclasses.replace`` written out: a field it forgot (as
    ``covered`` once was) would be lost on every box the verifier scores."""
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(ObservedBox)}
    box = ObservedBox(
        3, 0.3, (1.0, 2.0, 30.0, 80.0), 0, 0.8, "person", 0.6, 0.2, True, 0.1,
        stature=1.1, coherence=0.5, foot=0.4, foot_motion=0.05, covered=True,
    )  # fmt: skip
    assert all(getattr(box, n) != f.default for n, f in fields.items() if n in {
        "support", "motion", "clipped", "outside", "stature", "coherence", "foot",
        "foot_motion", "covered"})  # fmt: skip
    assert box.scored(stature=1.3) == dataclasses.replace(box, stature=1.3)
    assert box.scored(coherence=-0.2) == dataclasses.replace(box, coherence=-0.2)


def test_where_a_track_is_does_not_follow_a_box_moved_for_a_frame_or_two() -> None:
    """ADR 0050: the median of a track's last boxes: a box drawn half its width off for one
    or two frames does not move it; a track that walks there does."""
    from kontur.verifier.core import WHERE_BOXES, _where

    history = walk(10, step=0.0)  # standing at x = 80..120
    jumped = obs(10, 128.0)  # 28 px off, this frame only
    assert _where(history, jumped) == obs(9).xyxy
    history.append(obs(10, 128.0))
    assert _where(history, obs(11, 128.0)) == obs(9).xyxy  # two frames off
    for i in range(11, 10 + WHERE_BOXES):
        history.append(obs(i, 128.0))
    assert _where(history, obs(10 + WHERE_BOXES, 128.0)) == obs(0, 128.0).xyxy  # it moved


def test_raw_motion_counts_only_while_the_track_is_younger_than_the_shortest_lag() -> None:
    """ADR 0050's young-track exemption: a track whose history does not reach back
    ``HOLD_LAGS_S[0]`` counts its motion alone. At a frame rate so high that a full history is
    younger than that lag, the exemption would hold forever: it fails closed instead."""
    from kontur.verifier.checks import OWN_MOTION
    from kontur.verifier.core import HOLD_LAGS_S, _moves_on_its_own
    from kontur.verifier.history import HISTORY_LENGTH

    fps = 2 * HISTORY_LENGTH / HOLD_LAGS_S[0]  # a full history spans half the lag
    young, full = TrackHistory(), TrackHistory()
    for i in range(HISTORY_LENGTH):
        box = ObservedBox(i, i / fps, (80.0, 150.0, 120.0, 250.0), 0, 0.8, "person", 0.6, 0.3)
        full.append(box)
        if i < HISTORY_LENGTH // 2:
            young.append(box)
    now = ObservedBox(
        HISTORY_LENGTH, HISTORY_LENGTH / fps, (80.0, 150.0, 120.0, 250.0), 0, 0.8, "person",
        0.6, OWN_MOTION * 2,
    )  # fmt: skip
    assert _moves_on_its_own(None, young, now)  # type: ignore[arg-type]
    assert full.full and not young.full
    assert not _moves_on_its_own(None, full, now)  # type: ignore[arg-type]
