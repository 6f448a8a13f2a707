"""A box that jumps (ADR 0053): it lands farther from where its track's motion was taking it
than a person's motion can change in one step, or goes back against the way it was going
faster than a person turns round; honest motion, fast, stopping or turning, does not."""

from __future__ import annotations

import pytest
from test_verifier_checks import box, history

from kontur.verifier.history import ObservedBox
from kontur.verifier.jumps import (
    ACCELERATION,
    BACK_SIZES,
    JUMP_SIZES,
    MAX_STEP_S,
    Steady,
    jumped,
    offsets,
)


def _walk(speed_px: float, frames: int = 10, fps: float = 10.0) -> list[ObservedBox]:
    """A 40 × 100 px box walking ``speed_px`` a frame from x = 100."""
    return [box(i, 100.0 + speed_px * i, fps=fps) for i in range(frames)]


def _then(past: list[ObservedBox], dx: float, frames: int = 1, fps: float = 10.0) -> ObservedBox:
    """The box ``frames`` after the last of ``past``, ``dx`` px from it."""
    last = past[-1]
    return box(last.frame_index + frames, last.centre[0] + dx, fps=fps)


def _jumps(past: list[ObservedBox], now: ObservedBox, steady: Steady | None = None) -> bool:
    h = history(*past)
    return jumped(h, now) if steady is None else jumped(h, now, steady)


@pytest.mark.parametrize("speed_px", [0.0, 4.0, 20.0, 40.0])
def test_a_box_that_keeps_its_pace_does_not_jump_however_fast(speed_px: float) -> None:
    walk = _walk(speed_px, 11)  # standing, walking, jogging, sprinting a width a frame
    step, back = offsets(history(*walk[:-1]), walk[-1])
    assert step == pytest.approx(-ACCELERATION * 0.01 / 2)
    assert back is None if speed_px == 0.0 else back < 0  # standing: no way to go back
    assert not _jumps(walk[:-1], walk[-1])


def test_the_walker_behind_is_a_jump_at_any_frame_rate() -> None:
    """ADR 0050's tenth review: the box rides a walker at 4 px a frame and lands 52 px back,
    on the next one (1.3 widths). At 10 and at 15 frames a second."""
    for fps in (10.0, 15.0):
        walk = _walk(40.0 / fps, 12, fps)
        assert _jumps(walk, _then(walk, -52.0, fps=fps))
        assert not _jumps(walk, _then(walk, 40.0 / fps, fps=fps))


def test_a_jump_spread_over_frames_goes_back_against_the_way_it_was_going() -> None:
    """The same 52 px back over two frames is a jump at the first; over three or four, no
    one step tells, going back does."""
    glide = _walk(4.0, 12)
    assert _jumps(glide, _then(glide, -26.0))
    for frames in (3, 4):
        glide = _walk(4.0, 12)
        for _ in range(frames):
            now = _then(glide, -52.0 / frames)
            step, back = offsets(history(*glide), now)
            assert step is not None and step < JUMP_SIZES
            glide.append(now)
        assert back is not None and back >= BACK_SIZES


def test_a_walker_who_stops_or_turns_round_does_not_jump() -> None:
    walk = _walk(12.0)  # a brisk 3 widths a second
    stop = walk + [_then(walk, 4.0 * (3 - k), frames=k + 1) for k in range(3)]
    for k in range(len(walk), len(stop)):
        assert not _jumps(stop[:k], stop[k])
    turn = _walk(4.0)
    for k in range(5):  # a walker who turns round, and walks back as fast
        turn.append(_then(turn, 4.0 - 2.0 * k if k < 4 else -4.0))
        assert not _jumps(turn[:-1], turn[-1])


def test_a_sprinter_who_stops_dead_or_a_box_sent_back_does_jump() -> None:
    sprint = _walk(40.0)
    assert not _jumps(sprint, _then(sprint, 40.0))
    assert _jumps(sprint, _then(sprint, 0.0))  # stopped dead in 0.1 s
    walk = _walk(4.0)
    assert _jumps(walk, _then(walk, -24.0))  # 0.7 widths back in 0.1 s
    assert not _jumps(walk, _then(walk, -12.0))  # jitter


def test_a_box_that_grows_to_the_whole_body_does_not_jump() -> None:
    stand = [box(i, 100.0, 180.0, h=60.0) for i in range(8)]  # half-hidden: 60 px of 100
    assert not _jumps(stand, box(8, 100.0, 200.0, h=100.0))  # the legs come out
    assert not _jumps(stand, box(8, 108.0, 188.0, w=48.0, h=70.0))
    assert _jumps(stand, box(8, 100.0, 120.0, h=60.0))  # moved a height up in one step


def test_what_time_allows_grows_with_the_step() -> None:
    walk = _walk(4.0)
    for frames, dx in ((1, -28.0), (3, -30.0), (5, -40.0)):
        step, _ = offsets(history(*walk), _then(walk, dx, frames))
        t = frames / 10
        assert step == pytest.approx(abs(dx - 40.0 * t) / 40.0 - ACCELERATION * t * t / 2)
    assert _jumps(walk, _then(walk, -28.0))
    assert not _jumps(walk, _then(walk, -40.0, 5))  # a turn in half a second
    late = _then(walk, 4.0 * 6, round(MAX_STEP_S * 10) + 1)  # a gap: judged on its path
    assert offsets(history(*walk), late) == (pytest.approx(0.0), None)
    gap = [*walk[:3], box(9, 136.0)]  # half a second unreported: no velocity to go by
    assert offsets(history(*gap), _then(gap, 400.0))[0] is None
    assert offsets(history(), walk[0]) == (None, None)
    assert JUMP_SIZES > BACK_SIZES > 0


def test_after_a_gap_a_box_must_land_on_the_path_it_was_on() -> None:
    """A worker that leaves its box out for 0.6 s and brings it back on the walker behind
    (ADR 0053's review): over a gap a person could have done anything acceleration allows,
    so the landing is judged against the path instead, between where the track was and
    where its motion would have taken it: a hidden person kept going, or stopped."""
    walk = _walk(4.0)
    gap = round(MAX_STEP_S * 10) + 1  # frames, 0.6 s
    for dx in (4.0 * gap, 10.0, 0.0, 4.0 * gap + 20.0):  # kept going, slowed, stopped, ran
        assert not _jumps(walk, _then(walk, dx, gap)), dx
    assert _jumps(walk, _then(walk, -28.0, gap))  # 0.7 widths back onto the one behind
    assert _jumps(walk, _then(walk, 4.0 * gap + 30.0, gap))  # ahead of any walker's pace
    stand = [box(i, 100.0) for i in range(8)]
    assert not _jumps(stand, box(16, 104.0))  # hidden for 0.8 s, and still there
    assert _jumps(stand, box(16, 128.0))
    sparse = [box(8 * i, 100.0 + 32.0 * i) for i in range(4)]  # reported every 0.8 s
    assert not _jumps(sparse, box(32, 228.0)) and not _jumps(sparse, box(32, 196.0))
    assert _jumps(sparse, box(32, 160.0))  # 1.6 widths back onto the walker behind
    young = [box(0, 100.0), box(1, 104.0)]  # no velocity yet: it stood, for the path
    assert _jumps(young, box(8, 132.0)) and not _jumps(young, box(8, 108.0))


def test_spans_over_which_the_camera_moved_are_not_judged() -> None:
    """A camera that pans moves every box with it: a span it moved over says nothing."""
    walk = _walk(4.0, 12)
    panned = _then(walk, 4.0 - 60.0)  # the camera panned 60 px right, or the box jumped
    assert _jumps(walk, panned)
    last = walk[-1].frame_index
    assert not _jumps(walk, panned, lambda first, second: first != last)  # moved since
    assert offsets(history(*walk), panned, lambda first, second: False) == (None, None)
    step, back = offsets(history(*walk), panned, lambda first, second: first == last)
    assert step is not None and back is None  # the longer span began before it stood
