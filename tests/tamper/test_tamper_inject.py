"""The seeded tampering generator: deterministic per seed, varied across seeds, on time."""

from __future__ import annotations

import numpy as np
import pytest

from kontur.tamper import TamperInputError, TamperKind
from kontur.tamper.inject import Injector


@pytest.mark.parametrize("kind", list(TamperKind))
def test_same_seed_same_attack(kind: TamperKind, pets: list) -> None:
    frame, _ = pets[30]
    a, b = Injector(kind, 1.0, seed=5), Injector(kind, 1.0, seed=5)
    assert a.injection == b.injection
    out_a, out_b = a.apply(frame, 1.5), b.apply(frame, 1.5)
    assert out_a.shape == frame.shape and out_a.dtype == np.uint8
    if kind not in (
        TamperKind.COVERED,
        TamperKind.LOW_LIGHT,
        TamperKind.FROZEN,
        TamperKind.SCREEN,
    ):  # fmt: skip  (these draw fresh noise per frame)
        assert np.array_equal(out_a, out_b)
    assert not np.array_equal(out_a, frame)


@pytest.mark.parametrize("kind", list(TamperKind))
def test_strengths_vary_with_the_seed(kind: TamperKind) -> None:
    params = [Injector(kind, 0.0, seed=s).injection.params for s in range(6)]
    assert len({repr(p) for p in params}) > 1


def test_frames_before_the_onset_pass_untouched(pets: list) -> None:
    frame, _ = pets[10]
    injector = Injector("glare", 2.0, seed=1)
    assert injector.apply(frame, 1.99) is frame


def test_frozen_repeats_the_onset_frame(pets: list) -> None:
    injector = Injector("frozen", 1.0, seed=2)  # seed 2 draws bit-exact repetition
    assert injector.injection.params["noise"] == 0.0
    first = injector.apply(pets[10][0], 1.0)
    assert np.array_equal(injector.apply(pets[30][0], 3.0), first)


@pytest.mark.parametrize(
    ("kind", "at", "fragment"),
    [("smoke", 1.0, "expected a tamper kind among"), ("glare", -1.0, "--at: expected a time >= 0")],
)
def test_bad_injections_are_refused(kind: str, at: float, fragment: str) -> None:
    with pytest.raises(TamperInputError, match=fragment):
        Injector(kind, at, seed=0)
