"""The fixed camera the verifier cannot judge (ADR 0058): :class:`Blindness`, fed pts alone."""

from __future__ import annotations

import pytest

from kontur.verifier.blind import BLIND_SHARE, BLIND_WINDOW_S, FIXED_S, Blindness

FPS = 10
NOTE = "relearning the background: the picture shifted by (1, 0) pixels (the camera moved)"


def feed(blindness: Blindness, start_s: float, seconds: float, judged: bool) -> list[str | None]:
    """Pictures at ``FPS`` from ``start_s`` for ``seconds``, all judged or none."""
    n = round(seconds * FPS)
    return [
        blindness.observe(start_s + k / FPS, judged, None if judged else NOTE) for k in range(n)
    ]


def shown_fixed() -> Blindness:
    blindness = Blindness()
    assert not any(feed(blindness, 0.0, FIXED_S + 1.0, True))
    return blindness


def test_a_fixed_camera_that_stops_being_judged_is_blind_once_half_the_window_is_lost() -> None:
    blindness = shown_fixed()
    out = feed(blindness, FIXED_S + 1.0, 4.0, False)
    first = next(k for k, r in enumerate(out) if r is not None)
    # the share falls under one half once more than half of the window went unjudged
    assert first / FPS == pytest.approx(BLIND_WINDOW_S * (1 - BLIND_SHARE), abs=1.5 / FPS)
    assert all(out[first:])
    assert out[-1] is not None
    assert out[-1].startswith("blind: the background model judged ")
    assert NOTE in out[-1]  # why the model did not judge, as it said so


def test_blindness_clears_when_the_model_judges_again() -> None:
    blindness = shown_fixed()
    feed(blindness, FIXED_S + 1.0, BLIND_WINDOW_S, False)
    out = feed(blindness, FIXED_S + 1.0 + BLIND_WINDOW_S, BLIND_WINDOW_S, True)
    cleared = next(k for k, r in enumerate(out) if r is None)
    assert cleared / FPS == pytest.approx(BLIND_WINDOW_S * BLIND_SHARE, abs=1.5 / FPS)
    assert not any(out[cleared:])


@pytest.mark.parametrize("unjudged_s", [0.3, 1.6, 2.3])
def test_a_knock_a_cut_or_a_relearn_is_not_blindness(unjudged_s: float) -> None:
    """One relearn (1.5 s, and the frame that ends it) or a knock and back: most of any
    window is still judged."""
    blindness = shown_fixed()
    t = FIXED_S + 1.0
    assert not any(feed(blindness, t, unjudged_s, False))
    assert not any(feed(blindness, t + unjudged_s, 2 * BLIND_WINDOW_S, True))


def test_a_camera_never_shown_fixed_is_not_blind() -> None:
    """Handheld or on a tour from the start: the tamper monitor's (ADR 0055), not the
    verifier's."""
    blindness = Blindness()
    assert not any(feed(blindness, 0.0, FIXED_S - 1.0, True))
    assert not any(feed(blindness, FIXED_S - 1.0, 3 * BLIND_WINDOW_S, False))
    # judged now and then, never for FIXED_S in all
    always = Blindness()
    for k in range(20):
        assert not any(feed(always, 2.0 * k, 0.2, True))
        assert not any(feed(always, 2.0 * k + 0.2, 1.8, False))


def test_a_gap_between_pictures_counts_for_at_most_max_step() -> None:
    """Frames that did not come (a stalled stream) are not time the model failed to judge."""
    blindness = shown_fixed()
    t = FIXED_S + 1.0
    assert blindness.observe(t + 60.0, False, NOTE) is None  # one picture after a minute
    out = feed(blindness, t + 60.0 + 1 / FPS, BLIND_WINDOW_S, True)
    assert not any(out)
