"""The temporal machine: warm-up, minimum duration, hysteresis, the rolling baseline.

Tampering here is done by hand on real PETS09 frames (a darkening between two times), so
each test controls exactly when the picture changes and when it recovers.
"""

from __future__ import annotations

import numpy as np
import pytest

from kontur.tamper import TamperConfig, TamperKind, TamperMonitor, Transition


def _dark(frame: np.ndarray, gain: float) -> np.ndarray:
    return (frame.astype(np.float32) * gain).astype(np.uint8)


def _feed(monitor: TamperMonitor, frames: list, gain_at) -> list:  # type: ignore[no-untyped-def]
    changes = []
    for frame, t in frames:
        g = gain_at(t)
        changes += monitor.observe(frame if g == 1.0 else _dark(frame, g), t)
    return changes


def test_warm_up_refuses_then_accepts(pets: list) -> None:
    monitor = TamperMonitor("cam")
    assert monitor.warming_up and not monitor.quality_ok
    assert monitor.quality.reasons == ("warming up: no baseline of this camera yet",)
    _feed(monitor, pets[:25], lambda t: 1.0)
    assert not monitor.warming_up
    assert monitor.quality_ok and monitor.quality.to_json() == {"ok": True, "reasons": []}


def test_event_starts_after_min_duration_and_clears_with_hysteresis(pets: list) -> None:
    monitor = TamperMonitor("cam")
    # Dark from 2.5 s to 4.5 s, then the picture recovers for good.
    changes = _feed(monitor, pets, lambda t: 0.15 if 2.5 <= t < 4.5 else 1.0)
    kinds = [(c.transition, c.event.kind) for c in changes]
    assert (Transition.START, TamperKind.LOW_LIGHT) in kinds
    start = next(c for c in changes if c.event.kind is TamperKind.LOW_LIGHT)
    assert start.event.start_s == pytest.approx(2.5, abs=0.11)
    assert start.at_s - start.event.start_s >= monitor.config.onset_s - 1e-9
    end = next(c for c in changes if c.transition is Transition.END)
    assert end.event.kind is TamperKind.LOW_LIGHT
    assert end.event.end_s == pytest.approx(4.5, abs=0.11)
    # It ends only once the picture stayed recovered for clear_s (hysteresis).
    assert end.at_s - end.event.end_s >= monitor.config.clear_s - 1e-9
    assert monitor.active == () and monitor.quality_ok


def test_a_brief_change_shorter_than_the_minimum_duration_is_no_event(pets: list) -> None:
    # Lights dip for 0.5 s (a bus's shadow, a switch): no alarm.
    changes = _feed(TamperMonitor("cam"), pets, lambda t: 0.15 if 3.0 <= t < 3.5 else 1.0)
    assert changes == []


def test_an_event_stays_open_while_the_tampering_lasts(pets: list) -> None:
    monitor = TamperMonitor("cam")
    changes = _feed(monitor, pets, lambda t: 0.15 if t >= 2.5 else 1.0)
    assert [c.transition for c in changes] == [Transition.START]
    assert [e.kind for e in monitor.active] == [TamperKind.LOW_LIGHT]
    assert monitor.active[0].open


def test_a_camera_dark_from_the_start_is_its_own_normal(pets: list) -> None:
    """A night camera: dark from frame 0 is no tampering, but it refuses to decide."""
    monitor = TamperMonitor("night")
    changes = _feed(monitor, pets, lambda t: 0.2)
    assert changes == []
    assert not monitor.quality_ok
    assert any(r.startswith("too dark: mean grey") for r in monitor.quality.reasons)


def test_a_sudden_darkening_of_a_dark_camera_is_tampering(pets: list) -> None:
    monitor = TamperMonitor("night")
    changes = _feed(monitor, pets, lambda t: 0.2 if t < 3.0 else 0.06)
    starts = [c for c in changes if c.transition is Transition.START]
    assert [c.event.kind for c in starts] == [TamperKind.LOW_LIGHT]
    assert 3.0 <= starts[0].at_s <= 5.0
    assert "the camera's own" in starts[0].event.reason


def test_enrol_accepts_the_new_view_and_ends_open_events(pets: list) -> None:
    monitor = TamperMonitor("cam")
    _feed(monitor, pets[:50], lambda t: 0.15 if t >= 2.5 else 1.0)
    assert monitor.active
    ended = monitor.enrol(pets[49][1])
    assert [c.transition for c in ended] == [Transition.END]
    assert monitor.active == () and monitor.warming_up
    later = [(f, 10.0 + 0.1 * i) for i, (f, _t) in enumerate(pets)]
    assert _feed(monitor, later, lambda t: 0.15) == []


def test_disabled_kinds_raise_nothing(pets: list) -> None:
    config = TamperConfig(kinds=frozenset({TamperKind.GLARE}))
    monitor = TamperMonitor("cam", config)
    assert _feed(monitor, pets, lambda t: 0.15 if t >= 2.5 else 1.0) == []
