"""PRADA's core on real frames: benign streams of every public clip stay quiet, in order and
shuffled, over their whole length (the benchmark's streams); each attack alarms by the query
number the benchmark reports, through the test that catches it."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pytest
from tests.extraction.streams import clip, jacobian, line, noise

from kontur.extraction import Prada, PradaConfig, PradaTest, query_features
from kontur.extraction.prada import PradaResult


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


def test_a_revisited_picture_counts_at_the_floor() -> None:
    a, b = clip("tud")[0], clip("tud")[30]
    results = _run([a, b, a, a])
    assert [(r.repeat, r.distance == 0.0, r.samples) for r in results[1:]] == [
        (False, False, 1),  # b: a new distance
        (False, True, 2),  # a again, after b: a revisit joins the distances
        (True, True, 2),  # a right after a: a repeat does not
    ]


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
    ],
)
def test_config_refuses_what_cannot_hold(kw: dict[str, float], fragment: str) -> None:
    with pytest.raises(ValueError, match="^" + fragment.replace("(", r"\(")):
        PradaConfig(**kw)  # type: ignore[arg-type]


def test_features_of_a_wrong_shape_are_a_callers_bug() -> None:
    with pytest.raises(ValueError, match=r"expected \(1024,\) uint8 features, got \(3,\) uint8"):
        Prada().observe("a", np.zeros(3, np.uint8))
