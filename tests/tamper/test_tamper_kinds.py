"""Every tamper kind on real footage: injected, it is detected within 2 s; clean, nothing.

The attack vectors are the seeded generator's (``kontur.tamper.inject``), each applied to
real frames from 3.0 s on, after the monitor's 2 s warm-up; they run through ``parametrize``
on PETS09 (480x360, 10 fps) and TUD-Campus (640x480, 25 fps, extended without a seam).
"""

from __future__ import annotations

import pytest

from kontur.tamper import TamperKind, TamperMonitor, Transition
from kontur.tamper.inject import Injector

ONSET_S = 3.0
WINDOW_S = 2.0


def _run(frames: list, injector: Injector | None) -> tuple[list, TamperMonitor]:
    monitor = TamperMonitor("cam-test")
    changes = []
    for frame, t in frames:
        if t > ONSET_S + WINDOW_S + 0.5:
            break
        shown = injector.apply(frame, t) if injector is not None else frame
        changes += monitor.observe(shown, t)
    return changes, monitor


@pytest.mark.parametrize("clip", ["pets", "tud"])
def test_clean_footage_raises_nothing(clip: str, request: pytest.FixtureRequest) -> None:
    frames = request.getfixturevalue(clip)
    changes, monitor = _run(frames, None)
    assert changes == []
    assert monitor.active == ()
    assert monitor.quality_ok, monitor.quality.reasons


@pytest.mark.parametrize("clip", ["pets", "tud"])
@pytest.mark.parametrize("kind", list(TamperKind))
def test_injected_kind_is_detected_within_2s(
    kind: TamperKind, clip: str, request: pytest.FixtureRequest
) -> None:
    frames = request.getfixturevalue(clip)
    changes, monitor = _run(frames, Injector(kind, ONSET_S, seed=7))
    starts = [c for c in changes if c.transition is Transition.START and c.event.kind is kind]
    assert starts, f"{kind.value} not detected; scores {dict(monitor.scores)}"
    first = starts[0]
    assert ONSET_S <= first.at_s <= ONSET_S + WINDOW_S
    assert first.event.start_s >= ONSET_S - 0.05
    assert first.event.end_s is None and first.event.score >= 1.0
    assert first.event.camera_id == "cam-test" and "\n" not in first.event.reason
    assert not monitor.quality_ok
    assert any(r.startswith(f"tamper: {kind.value} since") for r in monitor.quality.reasons)


def test_nothing_is_raised_before_the_onset(pets: list) -> None:
    changes, _ = _run(pets, Injector("covered", ONSET_S, seed=3))
    assert changes and all(c.at_s >= ONSET_S for c in changes)
