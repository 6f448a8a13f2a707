"""bench() on real callables and the Measurement invariants."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest

from kontur.clock import ManualClock
from kontur.placement import (
    BenchError,
    Measurement,
    MeasurementError,
    UnknownPlatform,
    bench,
    reference_agreement,
)

KERNEL = np.ones((5, 5), dtype=np.float32) / 25.0


def box_blur(frame: np.ndarray) -> np.ndarray:
    """A real 5x5 box filter over a grey frame: enough work to time."""
    grey = frame.mean(axis=2, dtype=np.float32)
    padded = np.pad(grey, 2, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (5, 5))
    out: np.ndarray = np.einsum("ijkl,kl->ij", windows, KERNEL)
    return out


def frames(n: int, seed: int = 7) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(n)]


class Ticker:
    """A timer that only moves when the callable under test says how long it took."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def mean_abs_agreement(out: np.ndarray, ref: np.ndarray) -> float:
    return float(max(0.0, 1.0 - np.abs(out - ref).mean() / 255.0))


# --- bench -------------------------------------------------------------------------------------


def test_bench_real_convolution() -> None:
    clock = ManualClock(wall=1_700_000_123.0)
    m = bench("cpu", box_blur, frames(6), clock=clock)
    assert m.platform == "cpu"
    assert m.latency_ms > 0
    assert m.throughput_fps > 0
    assert m.frames == 6
    assert m.measured_at == 1_700_000_123.0
    assert m.accuracy is None and m.accuracy_basis == "not measured"
    # throughput and median latency describe the same calls
    assert m.throughput_fps < 1000.0 / m.latency_ms * 3


def test_bench_excludes_warm_up_from_timing() -> None:
    calls: list[int] = []

    def slow_first(frame: np.ndarray) -> np.ndarray:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.3)  # lazy initialisation on the first call only
        return box_blur(frame)

    m = bench("cpu", slow_first, frames(4))
    assert len(calls) == 5  # one warm-up + one timed call per frame
    assert m.frames == 4
    assert m.latency_ms < 300.0
    assert m.throughput_fps > 4 / 0.3


def test_bench_median_and_throughput_exact_with_injected_timer() -> None:
    ticker = Ticker()
    durations = iter([100.0, 0.010, 0.030, 0.020, 0.040])  # warm-up takes 100 s

    def infer(frame: np.ndarray) -> int:
        ticker.now += next(durations)
        return int(frame[0, 0, 0])

    m = bench("gpu", infer, frames(4), timer=ticker, clock=ManualClock())
    assert m.latency_ms == pytest.approx(25.0)  # median of 10, 30, 20, 40 ms
    assert m.throughput_fps == pytest.approx(4 / 0.100)


def test_bench_accuracy_from_callable_with_basis() -> None:
    seen: list[int] = []

    def acc(outputs: list[Any]) -> tuple[float, str]:
        seen.append(len(outputs))
        return 0.875, "ground-truth F1"

    m = bench("cpu", box_blur, frames(3), acc)
    assert seen == [3]
    assert (m.accuracy, m.accuracy_basis) == (0.875, "ground-truth F1")


def test_bench_agreement_with_cpu_reference() -> None:
    fs = frames(3)
    reference = [box_blur(f) for f in fs]
    same = bench("npu", box_blur, fs, reference_agreement(reference, mean_abs_agreement))
    assert same.accuracy == pytest.approx(1.0)
    assert same.accuracy_basis == "agreement with cpu reference"
    off = bench(
        "npu", lambda f: box_blur(f) + 51.0, fs, reference_agreement(reference, mean_abs_agreement)
    )
    assert off.accuracy == pytest.approx(0.8, abs=1e-4)


def test_bench_infer_raising_becomes_bench_error() -> None:
    def broken(frame: np.ndarray) -> None:
        raise ValueError("CUDA out of memory")

    with pytest.raises(
        BenchError, match="bench on gpu: expected infer to return, it raised ValueError"
    ):
        bench("gpu", broken, frames(2))


def test_bench_no_frames_refused() -> None:
    with pytest.raises(BenchError, match="expected at least 1 frame, got 0"):
        bench("cpu", box_blur, [])


def test_bench_accuracy_out_of_range_refused() -> None:
    with pytest.raises(
        BenchError, match=r"expected accuracy_fn to return a value in \[0, 1\], got 1\.5"
    ):
        bench("cpu", box_blur, frames(2), lambda outs: (1.5, "bogus"))


def test_bench_timer_that_does_not_advance_refused() -> None:
    with pytest.raises(BenchError, match="expected the timer to advance"):
        bench("cpu", box_blur, frames(2), timer=lambda: 0.0)


def test_bench_unknown_platform_refused() -> None:
    with pytest.raises(UnknownPlatform, match="got 'fpga'"):
        bench("fpga", box_blur, frames(2))


def test_reference_agreement_length_mismatch_refused() -> None:
    fn = reference_agreement([1, 2, 3], lambda a, b: 1.0)
    with pytest.raises(BenchError, match="expected 3 outputs to compare with the reference, got 2"):
        fn([1, 2])


# --- Measurement -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("latency_ms", -1.0, "expected a finite latency_ms >= 0, got -1.0"),
        ("latency_ms", float("nan"), "expected a finite latency_ms >= 0, got nan"),
        ("throughput_fps", float("inf"), "expected a finite throughput_fps >= 0, got inf"),
        ("accuracy", 1.2, "expected accuracy in [0, 1] or None, got 1.2"),
        ("frames", 0, "expected frames >= 1, got 0"),
    ],
)
def test_malformed_measurement_refused(field: str, value: object, fragment: str) -> None:
    good: dict[str, Any] = {
        "platform": "cpu",
        "latency_ms": 10.0,
        "throughput_fps": 50.0,
        "accuracy": 0.9,
        "accuracy_basis": "ground-truth F1",
        "frames": 12,
        "measured_at": 0.0,
    }
    with pytest.raises(MeasurementError) as info:
        Measurement(**{**good, field: value})
    assert fragment in str(info.value)


def test_measurement_json_round_trip() -> None:
    m = Measurement("gpu", 12.5, 80.0, None, "not measured", 12, 1.5)
    assert Measurement.from_json(json.loads(json.dumps(m.to_json()))) == m


def test_measurement_from_json_with_extra_key_refused() -> None:
    raw = {**Measurement("cpu", 1.0, 1.0, 1.0, "x", 1, 0.0).to_json(), "trusted": True}
    with pytest.raises(MeasurementError, match="expected a mapping with keys"):
        Measurement.from_json(raw)
