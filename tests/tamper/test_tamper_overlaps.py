"""Neighbouring cameras: sustained disagreement between paired zones is a finding for both."""

from __future__ import annotations

import pytest

from kontur.tamper import TamperConfigError, TamperInputError, TamperOrderError, Transition
from kontur.tamper.overlaps import Overlap, OverlapConfig, OverlapMonitor

PAIR = Overlap("cam-a", "gate", "cam-b", "gate-seen-from-b")


def _feed(monitor: OverlapMonitor, seconds: float, a: float, b: float, t0: float = 0.0,
          counts: tuple[int, int] | None = None) -> list:  # fmt: skip
    changes = []
    steps = round(seconds * 10)
    for i in range(steps):
        t = t0 + i * 0.1
        ca, cb = counts if counts else (None, None)
        changes += monitor.observe("cam-a", t, a, ca)
        changes += monitor.observe("cam-b", t + 0.02, b, cb)
    return changes


def test_agreeing_zones_raise_nothing() -> None:
    monitor = OverlapMonitor(PAIR)
    assert _feed(monitor, 20, 0.3, 0.25) == []
    assert _feed(monitor, 20, 0.0, 0.001, t0=20) == []


def test_sustained_disagreement_is_a_finding_for_both_cameras() -> None:
    monitor = OverlapMonitor(PAIR)
    changes = _feed(monitor, 8, 0.3, 0.0)
    assert [c.transition for c in changes] == [Transition.START]
    finding = changes[0].finding
    assert finding.cameras == ("cam-a", "cam-b") and finding.start_s == pytest.approx(0.02)
    assert changes[0].at_s >= OverlapConfig().min_disagreement_s
    assert finding.reason == "cam-a sees activity 30.0% where cam-b sees 0.0%"
    assert finding.to_json()["overlap"] == "cam-a/gate~cam-b/gate-seen-from-b"


def test_a_brief_disagreement_is_not_a_finding() -> None:
    # Someone crosses the edge of one zone before the other camera sees them.
    assert _feed(OverlapMonitor(PAIR), 3, 0.0, 0.3) == []


def test_the_finding_clears_after_agreement_holds() -> None:
    monitor = OverlapMonitor(PAIR)
    _feed(monitor, 8, 0.0, 0.3)
    assert monitor.finding is not None
    changes = _feed(monitor, 5, 0.2, 0.3, t0=8.0)
    assert [c.transition for c in changes] == [Transition.END]
    assert changes[0].finding.end_s == pytest.approx(8.02, abs=0.05)
    assert monitor.finding is None


def test_counts_that_keep_differing_disagree() -> None:
    monitor = OverlapMonitor(PAIR)
    assert _feed(monitor, 8, 0.3, 0.3, counts=(3, 2)) == []  # within tolerance
    changes = _feed(monitor, 8, 0.3, 0.3, t0=8, counts=(4, 1))
    assert changes
    assert changes[0].finding.reason == "cam-a/gate counts 4, cam-b/gate-seen-from-b counts 1"


def test_readings_too_far_apart_are_not_compared() -> None:
    monitor = OverlapMonitor(PAIR)
    changes = []
    for i in range(100):
        changes += monitor.observe("cam-a", i * 0.1, 0.5)
    changes += monitor.observe("cam-b", 0.0, 0.0)
    assert changes == []


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda m: m.observe("cam-c", 0.0, 0.1), TamperInputError, "expected 'cam-a' or 'cam-b'"),
        (lambda m: m.observe("cam-a", 0.0, 1.5), TamperInputError, "activity: expected a fraction"),
        (lambda m: m.observe("cam-a", 0.0, 0.1, -1), TamperInputError, "count: expected an int"),
    ],
)
def test_bad_readings_are_refused(call, error, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=fragment):
        call(OverlapMonitor(PAIR))


def test_time_goes_forward_per_camera() -> None:
    monitor = OverlapMonitor(PAIR)
    monitor.observe("cam-a", 2.0, 0.1)
    with pytest.raises(TamperOrderError, match=r"expected cam-a at or after 2\.0 s, got 1\.0 s"):
        monitor.observe("cam-a", 1.0, 0.1)


def test_bad_pairings_and_settings_are_refused() -> None:
    with pytest.raises(TamperConfigError, match="expected two different cameras"):
        Overlap("cam-a", "z1", "cam-a", "z2")
    with pytest.raises(TamperConfigError, match=r"overlaps\.zone_b: expected a non-empty"):
        Overlap("cam-a", "z1", "cam-b", "")
    with pytest.raises(TamperConfigError, match=r"overlaps\.min_disagreement_s: expected a num"):
        OverlapConfig(min_disagreement_s=0)
