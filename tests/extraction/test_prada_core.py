"""PRADA's core on real frames: benign streams of every public clip stay quiet, in order and
shuffled, over their whole length (the benchmark's streams); each attack alarms by the query
number the benchmark reports, through the test that catches it."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pytest
from tests.extraction.streams import (
    art_fee,
    clip,
    jacobian,
    line,
    noise,
    static_scene,
    wandering_search,
)

from kontur.extraction import Prada, PradaConfig, PradaTest, query_features
from kontur.extraction.prada import PradaResult, QueryKind


def _run(pictures: Iterable[np.ndarray], config: PradaConfig | None = None) -> list[PradaResult]:
    prada = Prada(config or PradaConfig())
    return [prada.observe("integrator-a", query_features(p)) for p in pictures]


def _alarm(results: list[PradaResult]) -> PradaResult | None:
    return next((r for r in results if r.alarm is not None), None)


@pytest.mark.parametrize("name", ["pets", "car", "tud"])
@pytest.mark.parametrize("order", ["in_order", "shuffled"])
def test_benign_stream_of_a_public_clip_stays_quiet(name: str, order: str) -> None:
    frames = clip(name)
    index = (
        np.arange(len(frames))
        if order == "in_order"
        else np.random.default_rng(7).permutation(len(frames))
    )
    results = _run(frames[i] for i in index)
    assert _alarm(results) is None, _alarm(results)
    assert results[-1].query == len(frames)
    if len(frames) > PradaConfig().min_samples:  # TUD-Campus (71 frames) is never tested
        w = min(r.w for r in results if r.w is not None)
        assert w > PradaConfig().delta, w


@pytest.mark.parametrize(("seeds", "lam"), [(10, 0.05), (30, 0.01)])
def test_jacobian_augmentation_alarms_at_the_first_test(seeds: int, lam: float) -> None:
    frames = clip("pets")
    picked = [frames[i] for i in range(0, len(frames), len(frames) // seeds)][:seeds]
    alarm = _alarm(_run(jacobian(picked, lam, 200)))
    assert alarm is not None
    assert (alarm.alarm, alarm.query) == (PradaTest.SHAPIRO, PradaConfig().min_samples + 1)
    assert alarm.w is not None and alarm.w < PradaConfig().delta
    assert alarm.reason(PradaConfig()).startswith(
        f"PRADA shapiro: Shapiro-Wilk W {alarm.w:.3f} < delta"
    )


def test_points_on_lines_between_frames_alarm_within_two_lines() -> None:
    frames = clip("car")
    stream = line(frames[0], frames[400], 8) + line(frames[100], frames[800], 8)
    alarm = _alarm(_run(stream))
    assert alarm is not None and alarm.alarm is PradaTest.LINE
    assert alarm.query <= 16 and alarm.lines == PradaConfig().line_alarm


def test_random_noise_alarms_on_its_spread() -> None:
    alarm = _alarm(_run(noise(160, (120, 160, 3))))
    assert alarm is not None and alarm.alarm is PradaTest.SPREAD
    assert alarm.query == PradaConfig().min_samples + 1
    assert alarm.spread is not None and alarm.spread < PradaConfig().spread_floor


def test_a_repeated_picture_is_counted_but_adds_no_distance() -> None:
    frame = clip("tud")[0]
    results = _run([frame] * 5)
    assert [r.query for r in results] == [1, 2, 3, 4, 5]
    assert [r.repeat for r in results] == [False, True, True, True, True]
    assert results[-1].samples == 0 and results[-1].alarm is None


def test_a_picture_asked_again_is_a_repeat_a_replay_or_a_revisit() -> None:
    a, b, c = clip("tud")[0], clip("tud")[30], clip("tud")[60]
    results = _run([a, b, a, a, b, c, a, b])
    assert [(r.kind, r.samples) for r in results[1:]] == [
        (QueryKind.NEW, 1),  # b: a new distance
        (QueryKind.REVISIT, 1),  # a after b: a goes back, out of order (a came first)
        (QueryKind.REPEAT, 1),  # a right after a
        (QueryKind.REPLAY, 1),  # b after a, as before: the sequence again
        (QueryKind.NEW, 2),
        (QueryKind.REVISIT, 2),  # a after c: never before
        (QueryKind.REPLAY, 2),  # b after a: as before
    ]
    assert [r.revisits for r in results] == [0, 0, 1, 1, 1, 1, 2, 2]
    assert all(r.distance == 0.0 for r in results[2:5])


@pytest.mark.parametrize(
    "pattern", ["looping clip", "frozen feeds in turn", "stuck double buffer", "static scene"]
)
def test_pictures_asked_again_by_a_camera_stay_quiet(pattern: str) -> None:
    """What an integrator's cameras send again: a looping clip (4 passes), 4 frozen feeds
    queried in turn, a double buffer stuck on two frames, one scene under sensor noise
    (its distances are all at one scale, as random noise's are, but a hundred times closer
    than the pictures' contrast)."""
    tud, pets, car = clip("tud"), clip("pets"), clip("car")
    stream = {
        "looping clip": list(tud) * 4,
        "frozen feeds in turn": [tud[0], pets[0], car[0], car[-1]] * 75,
        "stuck double buffer": [pets[0], pets[400]] * 150,
        "static scene": list(static_scene(car[0], 3.0, 300)),
    }[pattern]
    results = _run(stream)
    assert _alarm(results) is None, _alarm(results)
    assert max(r.revisits for r in results) <= 1  # a replay's first wrap, at most
    if pattern == "static scene":
        last = results[-1]
        assert last.spread is not None and last.spread < PradaConfig().spread_floor
        assert last.novelty is not None and last.novelty < 0.05


def test_a_search_below_a_grey_level_alarms_on_its_revisits() -> None:
    """A search whose steps fell below a grey level asks pictures it asked before, out of
    order (as ART's FunctionallyEquivalentExtraction's do). W alone never sees it."""
    frames = clip("pets")
    stream = list(wandering_search(frames[0], frames[500], 200))
    first = _alarm(_run(stream))
    assert first is not None and first.query <= 200  # its points are on a line, too
    no_lines = PradaConfig(line_alarm=1 << 30)
    alarm = _alarm(_run(stream, no_lines))
    assert alarm is not None and alarm.alarm is PradaTest.REVISIT
    assert alarm.query <= 200 and alarm.revisits == no_lines.revisit_alarm
    assert alarm.reason(no_lines).startswith(
        f"PRADA revisit: 16 out-of-order revisits in 256 queries >= 16 at query {alarm.query}"
    )
    w_only = PradaConfig(spread_floor=0.0, line_alarm=1 << 30, revisit_alarm=1 << 30)
    assert _alarm(_run(stream, w_only)) is None


@pytest.mark.parametrize("run", [5, 8])
def test_art_fee_runs_that_stalled_below_a_grey_level_alarm_by_query_200(run: int) -> None:
    """The two runs of ART's FunctionallyEquivalentExtraction that the line test caught only at
    queries 439-441 (benchmarks/prada-results-2026-12-05.json), now by their revisits."""
    stream = art_fee(600, seed=run - 1)
    alarm = _alarm(_run(stream))
    assert alarm is not None and alarm.alarm is PradaTest.REVISIT, alarm
    assert alarm.query <= 200


def test_clips_queried_in_turn_make_no_lines() -> None:
    """A frame next to its clip's previous one is not "on a line" with it and a far frame of
    another clip: the triangle is degenerate, not flat."""
    tud, pets, car = clip("tud"), clip("pets"), clip("car")
    results = _run(p for trio in zip(tud, pets, car, strict=False) for p in trio)
    assert _alarm(results) is None and results[-1].lines < PradaConfig().line_alarm


def test_an_alarm_is_raised_once_and_the_stream_stays_alarmed() -> None:
    frames = clip("car")
    results = _run(
        line(frames[0], frames[400], 8) + line(frames[100], frames[800], 8) + list(frames[:5])
    )
    assert sum(r.alarm is not None for r in results) == 1
    first = next(i for i, r in enumerate(results) if r.alarmed)
    assert all(r.alarmed for r in results[first:])


def test_streams_are_per_principal_and_bounded() -> None:
    frames = clip("tud")
    prada = Prada(PradaConfig(max_principals=2, max_kept=4))
    for name in ("a", "b", "c"):
        prada.observe(name, query_features(frames[0]))
    assert prada.observe("a", query_features(frames[0])).query == 1, "a was forgotten first (LRU)"
    assert prada.observe("c", query_features(frames[0])).query == 2
    for f in frames[1:11]:
        result = prada.observe("c", query_features(f))
    assert result.query == 12 and result.samples == 10


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"delta": 1.5}, "prada.delta: expected 0 < delta < 1, got 1.5"),
        (
            {"min_samples": 2},
            "prada: expected 3 <= min_samples <= max_distances <= 5000, got 2, 5000",
        ),
        (
            {"line_ratio": 0.9},
            "prada: expected spread_floor >= 0 and line_ratio >= 1, got 0.2, 0.9",
        ),
        ({"max_kept": 0}, "prada.max_kept: expected a positive count, got 0"),
        ({"trim": 0.3}, "prada.trim: expected 0 <= trim < 0.25, got 0.3"),
        ({"revisit_alarm": 0}, "prada.revisit_alarm: expected a positive count, got 0"),
    ],
)
def test_config_refuses_what_cannot_hold(kw: dict[str, float], fragment: str) -> None:
    with pytest.raises(ValueError, match="^" + fragment.replace("(", r"\(")):
        PradaConfig(**kw)  # type: ignore[arg-type]


def test_features_of_a_wrong_shape_are_a_callers_bug() -> None:
    with pytest.raises(ValueError, match=r"expected \(1024,\) uint8 features, got \(3,\) uint8"):
        Prada().observe("a", np.zeros(3, np.uint8))
