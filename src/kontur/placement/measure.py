"""Measured SLA figures L, V, A (paper, "Модель адаптивного доверенного контура видеоаналитики":
a platform is admissible when L_j(p) ≤ Lmax, V_j(p) ≥ Vmin and A_j(p) ≥ Amin).

The figures come from a bench run on this machine, never from a datasheet (DESIGN.md §1 block 2,
Table 3: "Сначала стенд CPU"). :func:`bench` times a caller-supplied ``infer`` callable, so this
package never imports a GPU runtime: the caller builds the detector for the platform and hands
it over.

Bench steps, in order: one warm-up call on the first frame (untimed, output discarded); one
timed call per frame; latency is the median per-frame time in ms, throughput is the number of
frames over the total timed seconds; accuracy comes from the caller's ``accuracy_fn``.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kontur.clock import Clock, SystemClock
from kontur.placement._platforms import Platform, check_platform
from kontur.placement.errors import BenchError, MeasurementError

__all__ = [
    "AccuracyFn",
    "Measurement",
    "bench",
    "reference_agreement",
]

log = logging.getLogger(__name__)

#: ``accuracy_fn(outputs) -> (accuracy in [0, 1], basis)``, e.g. ``(0.93, "ground-truth F1")``.
AccuracyFn = Callable[[list[Any]], tuple[float, str]]

_FIELDS = (
    "platform",
    "latency_ms",
    "throughput_fps",
    "accuracy",
    "accuracy_basis",
    "frames",
    "measured_at",
)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Measurement:
    """What a bench run measured for one platform on this machine.

    ``accuracy`` is None when it was not measured; such a platform is admissible only when
    the SLA asks for no accuracy at all (``Amin == 0``).
    """

    platform: Platform
    latency_ms: float
    throughput_fps: float
    accuracy: float | None
    accuracy_basis: str
    frames: int
    measured_at: float

    def __post_init__(self) -> None:
        check_platform(self.platform)
        if not _finite(self.latency_ms) or self.latency_ms < 0:
            raise MeasurementError(f"expected a finite latency_ms >= 0, got {self.latency_ms!r}")
        if not _finite(self.throughput_fps) or self.throughput_fps < 0:
            raise MeasurementError(
                f"expected a finite throughput_fps >= 0, got {self.throughput_fps!r}"
            )
        if self.accuracy is not None and not (_finite(self.accuracy) and 0 <= self.accuracy <= 1):
            raise MeasurementError(f"expected accuracy in [0, 1] or None, got {self.accuracy!r}")
        if not isinstance(self.frames, int) or isinstance(self.frames, bool) or self.frames < 1:
            raise MeasurementError(f"expected frames >= 1, got {self.frames!r}")
        if not _finite(self.measured_at):
            raise MeasurementError(f"expected a finite measured_at, got {self.measured_at!r}")
        if not isinstance(self.accuracy_basis, str):
            raise MeasurementError(
                f"expected accuracy_basis as text, got {type(self.accuracy_basis).__name__}"
            )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping of every field."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: object) -> Measurement:
        """Build from :meth:`to_json`'s output; anything else raises :class:`MeasurementError`."""
        if not isinstance(raw, dict) or set(raw) != set(_FIELDS):
            found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
            raise MeasurementError(f"expected a mapping with keys {list(_FIELDS)}, got {found}")
        try:
            return cls(**raw)
        except TypeError as exc:
            raise MeasurementError(f"expected well-typed measurement fields, got {exc}") from None


def reference_agreement(
    reference: Sequence[Any],
    agree: Callable[[Any, Any], float],
    basis: str = "agreement with cpu reference",
) -> AccuracyFn:
    """An ``accuracy_fn`` scoring the mean ``agree(output, reference_output)`` per frame.

    Use it when there is no ground truth: the CPU's outputs on the same frames are the
    reference, and ``agree`` returns a score in [0, 1] for one frame (e.g. box-matching F1).
    """

    def accuracy(outputs: list[Any]) -> tuple[float, str]:
        """Mean per-frame agreement of ``outputs`` with the reference outputs."""
        if len(outputs) != len(reference):
            raise BenchError(
                f"expected {len(reference)} outputs to compare with the reference, "
                f"got {len(outputs)}"
            )
        scores = [float(agree(out, ref)) for out, ref in zip(outputs, reference, strict=True)]
        return (statistics.fmean(scores) if scores else 0.0), basis

    return accuracy


def _call(platform: str, infer: Callable[[np.ndarray], Any], frame: np.ndarray) -> Any:
    try:
        return infer(frame)
    except Exception as exc:
        raise BenchError(
            f"bench on {platform}: expected infer to return, it raised {type(exc).__name__}: {exc}"
        ) from exc


def _accuracy(outputs: list[Any], accuracy_fn: AccuracyFn | None) -> tuple[float | None, str]:
    if accuracy_fn is None:
        return None, "not measured"
    value, basis = accuracy_fn(outputs)
    if not (_finite(value) and 0 <= value <= 1):
        raise BenchError(f"expected accuracy_fn to return a value in [0, 1], got {value!r}")
    return float(value), basis


def bench(
    platform: str,
    infer: Callable[[np.ndarray], Any],
    frames: Sequence[np.ndarray],
    accuracy_fn: AccuracyFn | None = None,
    *,
    clock: Clock | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> Measurement:
    """Time ``infer`` on ``frames`` (one untimed warm-up first) and return a :class:`Measurement`.

    ``accuracy_fn`` receives the outputs of the timed calls, in frame order, and returns the
    accuracy with its basis; without it, accuracy is None ("not measured"). ``clock`` stamps
    ``measured_at`` (wall time); ``timer`` times the calls (monotonic, high resolution).
    An exception from ``infer`` becomes :class:`BenchError` with the original as its cause.
    """
    name = check_platform(platform)
    if len(frames) < 1:
        raise BenchError(f"bench on {name}: expected at least 1 frame, got 0")
    _call(name, infer, frames[0])  # warm-up: lazy init, allocator, caches; never timed
    outputs: list[Any] = []
    per_frame: list[float] = []
    for frame in frames:
        start = timer()
        outputs.append(_call(name, infer, frame))
        per_frame.append(timer() - start)
    total = math.fsum(per_frame)
    if not total > 0:
        raise BenchError(
            f"bench on {name}: expected the timer to advance, got {total!r} s in total"
        )
    accuracy, basis = _accuracy(outputs, accuracy_fn)
    return Measurement(
        platform=name,
        latency_ms=statistics.median(per_frame) * 1000.0,
        throughput_fps=len(frames) / total,
        accuracy=accuracy,
        accuracy_basis=basis,
        frames=len(frames),
        measured_at=(clock or SystemClock()).wall(),
    )
