"""Bad input to the monitor, its config and its typed results: one line, expected vs got."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kontur.errors import ConfigError
from kontur.tamper import (
    TamperChange,
    TamperConfig,
    TamperConfigError,
    TamperEvent,
    TamperInputError,
    TamperKind,
    TamperMonitor,
    TamperOrderError,
    Transition,
)

GREY = np.full((120, 160, 3), 128, np.uint8)


@pytest.mark.parametrize(
    ("frame", "fragment"),
    [
        ([[1, 2], [3, 4]], "expected a numpy image, got list"),
        (np.zeros((120, 160, 3), np.float32), "expected dtype uint8, got float32"),
        (np.zeros((120, 160, 4), np.uint8), "expected HxW or HxWx3, got shape (120, 160, 4)"),
        (np.zeros((16, 160, 3), np.uint8), "expected sides of at least 32 px, got 160x16"),
    ],
    ids=["not_an_array", "float_frame", "four_channels", "too_small"],
)
def test_unusable_frames_are_refused(frame: object, fragment: str) -> None:
    with pytest.raises(TamperInputError, match="frame: ") as exc:
        TamperMonitor("cam").observe(frame, 0.0)
    assert fragment in str(exc.value)


@pytest.mark.parametrize("t", [math.nan, math.inf, "1.0", True])
def test_times_must_be_finite_numbers(t: object) -> None:
    with pytest.raises(TamperInputError, match="t: expected a finite time in seconds"):
        TamperMonitor("cam").observe(GREY, t)  # type: ignore[arg-type]


def test_time_must_increase() -> None:
    monitor = TamperMonitor("cam")
    monitor.observe(GREY, 1.0)
    with pytest.raises(TamperOrderError, match=r"expected a time after 1\.000000 s, got 0\.5"):
        monitor.observe(GREY, 0.5)
    with pytest.raises(TamperOrderError):
        monitor.observe(GREY, 1.0)


def test_a_grey_frame_camera_is_judged_for_quality_not_tampering() -> None:
    monitor = TamperMonitor("flat")
    for i in range(40):
        assert monitor.observe(GREY, i * 0.1) == []
    assert not monitor.quality_ok
    assert any(r.startswith("too flat: grey std") for r in monitor.quality.reasons)


def test_camera_id_must_be_named() -> None:
    with pytest.raises(TamperInputError, match="camera_id: expected a non-empty string"):
        TamperMonitor("")


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"onset_s": 0}, "tamper.onset_s: expected 0 < onset_s <= 10 s, got 0"),
        ({"clear_ratio": 1.5}, "tamper.clear_ratio: expected 0 < clear_ratio < 1, got 1.5"),
        ({"low_light_ratio": -1}, "tamper.low_light_ratio: expected a finite number >= 0"),
        ({"width": 10}, "tamper.width: expected an int 32..640, got 10"),
        ({"warmup_s": math.nan}, "tamper.warmup_s: expected a finite number >= 0, got nan"),
        ({"gap_s": 2.0}, "tamper.gap_s: expected less than every onset, got 2.0"),
        ({"screen_moire": "x"}, "tamper.screen_moire: expected a number, got 'x'"),
        ({"kinds": ["covered", "bogus"]}, "tamper.kinds: expected a tamper kind among"),
        ({"kinds": "covered"}, "tamper.kinds: expected a list of kinds, got 'covered'"),
        ({"nope": 1}, "tamper.nope: expected one of"),
    ],
)
def test_config_errors_say_which_key(settings: dict, fragment: str) -> None:
    with pytest.raises(TamperConfigError) as exc:
        TamperConfig.from_mapping(settings)
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)
    assert isinstance(exc.value, ConfigError)


def test_config_maps_from_a_site_section() -> None:
    config = TamperConfig.from_mapping({"onset_s": 1.5, "kinds": ["covered", "glare"]})
    assert config.onset_s == 1.5
    assert config.kinds == frozenset({TamperKind.COVERED, TamperKind.GLARE})
    assert TamperConfig.from_mapping(None) == TamperConfig()
    doc = config.to_json()
    assert doc["kinds"] == ["covered", "glare"] and doc["onset_s"] == 1.5


def _event(**kw: object) -> TamperEvent:
    base = {"camera_id": "cam", "kind": TamperKind.GLARE, "score": 2.0, "start_s": 1.0,
            "end_s": None, "reason": "30% saturated"}  # fmt: skip
    base.update(kw)
    return TamperEvent(**base)  # type: ignore[arg-type]


def test_results_round_trip_through_json() -> None:
    change = TamperChange(Transition.END, 5.0, _event(end_s=4.0))
    assert TamperChange.from_json(change.to_json()) == change
    assert change.to_json()["event"]["kind"] == "glare"
    assert TamperEvent.from_json(_event().to_json()) == _event()


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({**_event().to_json(), "kind": "smoke"}, "expected a tamper kind among"),
        ({**_event().to_json(), "score": math.inf}, "score: expected a finite number"),
        ({**_event().to_json(), "end_s": 0.5}, "end_s: expected >= start_s 1.0, got 0.5"),
        ({**_event().to_json(), "reason": "a\nb"}, "reason: expected one line"),
        ({**_event().to_json(), "extra": 1}, "tamper event: expected keys"),
        ([], "tamper event: expected a JSON object, got list"),
    ],
)
def test_event_json_is_checked(doc: object, fragment: str) -> None:
    with pytest.raises(TamperInputError) as exc:
        TamperEvent.from_json(doc)
    assert fragment in str(exc.value)


def test_change_json_checks_its_transition_against_the_event() -> None:
    doc = TamperChange(Transition.START, 2.0, _event()).to_json()
    doc["transition"] = "end"
    with pytest.raises(TamperInputError, match=r"event\.end_s: expected a time for an end"):
        TamperChange.from_json(doc)
