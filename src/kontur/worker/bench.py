"""The placement bench: L, V and A of the real detector on real frames, per platform.

It runs where inference may run: inside the worker's sandbox (:mod:`kontur.worker.prepare`
for ``kontur demo``), or in the ``kontur placement explain`` command; never in the
supervisor. Accuracy without ground truth is *agreement with the CPU reference* on the same
frames (box-matching F1 at IoU ≥ 0.5); the CPU is the reference and scores 1.0 by
construction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, BinaryIO

import av
import numpy as np

from kontur.ingest.source import _raw_format
from kontur.placement.errors import BenchError
from kontur.placement.measure import Measurement, bench, reference_agreement
from kontur.worker.errors import ModelError

log = logging.getLogger(__name__)

__all__ = ["bench_frames", "box_f1", "measure_platforms"]


def bench_frames(source: str, n: int, *, file: BinaryIO | None = None) -> list[np.ndarray]:
    """The first ``n`` decodable frames of ``source`` (BGR), read from ``file`` if given."""
    frames: list[np.ndarray] = []
    with av.open(file if file is not None else source, "r", format=_raw_format(source)) as c:
        for fr in c.decode(video=0):
            frames.append(fr.to_ndarray(format="bgr24"))
            if len(frames) >= n:
                break
    return frames


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    iou: np.ndarray = inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)
    return iou


def box_f1(out: Any, ref: Any) -> float:
    """F1 of greedy IoU ≥ 0.5 matching between two ``supervision.Detections``."""
    if len(out) == 0 and len(ref) == 0:
        return 1.0
    if len(out) == 0 or len(ref) == 0:
        return 0.0
    iou = _iou(np.asarray(out.xyxy), np.asarray(ref.xyxy))
    matched, used = 0, set()
    for i in np.argsort(-iou.max(1)):
        j = int(iou[i].argmax())
        if iou[i, j] >= 0.5 and j not in used:
            used.add(j)
            matched += 1
    return 2 * matched / (len(out) + len(ref))


def measure_platforms(
    platforms: dict[str, str],
    make_infer: Callable[[str], Callable[[np.ndarray], Any]],
    frames: list[np.ndarray],
) -> dict[str, Measurement | None]:
    """Bench every available platform (the CPU first: it is the accuracy reference)."""
    out: dict[str, Measurement | None] = {"cpu": None, "gpu": None, "npu": None}
    cpu_infer = make_infer("cpu")
    reference = [cpu_infer(f) for f in frames]
    for platform in sorted(platforms, key=lambda p: p != "cpu"):
        acc = reference_agreement(
            reference,
            box_f1,
            "reference platform" if platform == "cpu" else "agreement with cpu reference",
        )
        try:
            infer = cpu_infer if platform == "cpu" else make_infer(platform)
            m = bench(platform, infer, frames, acc)
        except (BenchError, ModelError) as exc:
            if platform == "cpu":
                raise
            log.warning("bench on %s failed, treating it as not present: %s", platform, exc)
            continue
        out[platform] = m
    return out
