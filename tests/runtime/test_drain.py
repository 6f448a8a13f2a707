"""The end of a run waits for the worker while it makes progress, never longer than the cap."""

from __future__ import annotations

from kontur.runtime.drain import DRAIN_STALL_S, DRAIN_TIMEOUT_S, DrainWatch


def test_a_worker_that_makes_no_progress_is_waited_for_the_stall_time_only() -> None:
    watch = DrainWatch(100.0)
    token = (41, 7)  # the frames the worker acknowledged, per ring
    assert watch.waiting(100.0, token)
    assert watch.waiting(100.0 + DRAIN_STALL_S - 0.01, token)
    assert not watch.waiting(100.0 + DRAIN_STALL_S, token)


def test_each_sign_of_progress_starts_the_stall_time_again() -> None:
    watch = DrainWatch(0.0)
    assert watch.waiting(0.0, (10, 3))
    assert watch.waiting(10.0, (11, 3))  # a frame acknowledged on the first ring
    assert watch.waiting(20.0, (11, 4))  # and one on the second
    assert watch.waiting(20.0 + DRAIN_STALL_S - 0.01, (11, 4))
    assert not watch.waiting(20.0 + DRAIN_STALL_S, (11, 4))


def test_progress_never_holds_the_end_past_the_cap() -> None:
    watch = DrainWatch(0.0)
    t = 0.0
    while t < DRAIN_TIMEOUT_S - 1.0:
        assert watch.waiting(t, (int(t),))
        t += 1.0
    assert not watch.waiting(DRAIN_TIMEOUT_S, (10_000,))


def test_the_limits_are_the_callers_to_set() -> None:
    watch = DrainWatch(0.0, timeout_s=5.0, stall_s=2.0)
    assert watch.waiting(0.0, "same")  # the first token seen is the start of the stall time
    assert watch.waiting(1.9, "same")
    assert not watch.waiting(2.0, "same")
    assert not DrainWatch(0.0, timeout_s=5.0, stall_s=2.0).waiting(5.0, "new")
