"""Fixtures shared by the degradation tests: a manual clock, and a machine timed by it."""

from __future__ import annotations

import pytest
from degrade_clock import RECOVERY

from kontur.clock import ManualClock
from kontur.config import DegradationConfig
from kontur.degrade import DegradationMachine


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def machine(clock: ManualClock) -> DegradationMachine:
    """A machine whose recoveries take :data:`degrade_clock.RECOVERY` seconds of ``clock``."""
    return DegradationMachine(DegradationConfig(recovery_seconds=RECOVERY), clock)
