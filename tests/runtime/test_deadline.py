"""A timed run's seconds count from its first frame, not from ingest's spawn (ADR 0061)."""

from __future__ import annotations

import pytest

from kontur.runtime.deadline import FIRST_FRAME_WAIT_S, SourceDeadline


def test_the_seconds_count_from_the_first_frame() -> None:
    d = SourceDeadline(2.0, spawned=100.0)
    assert not d.due(105.0, flowing=False)  # a slow start: 5 s of imports, no frame yet
    assert not d.due(105.5, flowing=True)  # the first frame: 2 s from here
    assert d.counting_since == 105.5
    assert not d.due(107.4, flowing=True)
    assert d.due(107.5, flowing=True)


def test_frames_that_stop_flowing_do_not_stop_the_count() -> None:
    d = SourceDeadline(3.0, spawned=0.0)
    assert not d.due(1.0, flowing=True)
    assert d.due(4.0, flowing=False)  # (a camera that paused: the run still ends on time)


def test_a_camera_that_never_sends_a_frame_does_not_hold_the_run() -> None:
    d = SourceDeadline(2.0, spawned=10.0)
    assert not d.due(10.0 + FIRST_FRAME_WAIT_S - 0.01, flowing=False)
    # the wait is over: the seconds count from its end, even when the loop looked late
    assert not d.due(10.0 + FIRST_FRAME_WAIT_S + 1.0, flowing=False)
    assert d.counting_since == 10.0 + FIRST_FRAME_WAIT_S
    assert d.due(10.0 + FIRST_FRAME_WAIT_S + 2.0, flowing=False)


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_a_run_time_must_be_positive(seconds: float) -> None:
    with pytest.raises(ValueError, match="expected a run time above 0 s"):
        SourceDeadline(seconds, spawned=0.0)
