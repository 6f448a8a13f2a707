"""Shared fixtures for the placement tests: the tiny hand-computable catalogue and an SLA."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kontur.config import SlaConfig
from kontur.placement import Catalogue, Measurement, load_catalogue

VECTORS = Path(__file__).parent / "vectors"

MeasurementFactory = Callable[..., Measurement]


@pytest.fixture
def tiny() -> Catalogue:
    return load_catalogue(VECTORS / "tiny.yaml")


@pytest.fixture
def sla() -> SlaConfig:
    return SlaConfig(latency_ms_max=250.0, throughput_fps_min=5.0, accuracy_min=0.8)


@pytest.fixture
def measured() -> MeasurementFactory:
    """``measured("gpu", latency_ms=40.0)``: a measurement that passes the SLA unless told."""

    def make(
        platform: str,
        latency_ms: float = 100.0,
        throughput_fps: float = 25.0,
        accuracy: float | None = 0.9,
    ) -> Measurement:
        return Measurement(
            platform=platform,  # type: ignore[arg-type]
            latency_ms=latency_ms,
            throughput_fps=throughput_fps,
            accuracy=accuracy,
            accuracy_basis="ground-truth F1",
            frames=12,
            measured_at=1_700_000_000.0,
        )

    return make
