"""Per-frame accumulation of CLEAR MOT, identity and HOTA metrics.

CLEAR MOT (MOTA, ID switches, MT/ML) and identity metrics (IDF1) come from py-motmetrics,
with the MOTChallenge matching rule: IoU distance, pairs with IoU < 0.5 cannot match.
HOTA (Luiten et al., IJCV 2021) comes from TrackEval's reference implementation when the
``trackeval`` package is installed, otherwise from the clean-room port in ``trackers.eval``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CLEAR_METRICS", "HotaFigures", "MotAccumulator", "iou_xywh"]

CLEAR_METRICS: tuple[str, ...] = (
    "mota",
    "motp",
    "idf1",
    "idp",
    "idr",
    "precision",
    "recall",
    "num_switches",
    "num_fragmentations",
    "num_false_positives",
    "num_misses",
    "num_objects",
    "num_predictions",
    "num_unique_objects",
    "mostly_tracked",
    "partially_tracked",
    "mostly_lost",
    "num_frames",
)


def _motmetrics() -> Any:
    # motmetrics 1.4.0's iou_matrix calls np.asfarray, which NumPy 2.0 removed (NEP 52);
    # restore the one-line equivalent before motmetrics is imported.
    if not hasattr(np, "asfarray"):
        setattr(np, "asfarray", lambda a, dtype=np.float64: np.asarray(a, dtype=dtype))  # noqa: B010
    import motmetrics

    return motmetrics


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of (n,4) and (m,4) boxes given as x, y, w, h."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = a[:, 2:].prod(1)[:, None] + b[:, 2:].prod(1)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


@dataclass(frozen=True)
class HotaFigures:
    """HOTA and its detection / association parts, averaged over IoU thresholds 0.05..0.95."""

    hota: float
    deta: float
    assa: float
    loca: float
    implementation: str


def _relabel(ids: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Map arbitrary ids to 0..n-1, as TrackEval expects."""
    allids = np.unique(np.concatenate(ids)) if ids else np.zeros(0, dtype=np.int64)
    return [np.searchsorted(allids, i).astype(np.int64) for i in ids], len(allids)


class MotAccumulator:
    """Feed one frame at a time; read the figures at the end."""

    def __init__(self) -> None:
        self._mm = _motmetrics()
        self._acc = self._mm.MOTAccumulator(auto_id=True)
        self._gt_ids: list[np.ndarray] = []
        self._hyp_ids: list[np.ndarray] = []
        self._sims: list[np.ndarray] = []

    def update(
        self, gt_ids: np.ndarray, gt_xywh: np.ndarray, hyp_ids: np.ndarray, hyp_xywh: np.ndarray
    ) -> None:
        """Add one frame: gt and hypothesis ids with their (x, y, w, h) boxes."""
        gt_xywh = np.asarray(gt_xywh, dtype=np.float64).reshape(-1, 4)
        hyp_xywh = np.asarray(hyp_xywh, dtype=np.float64).reshape(-1, 4)
        dist = self._mm.distances.iou_matrix(gt_xywh, hyp_xywh, max_iou=0.5)
        self._acc.update(list(map(int, gt_ids)), list(map(int, hyp_ids)), dist)
        self._gt_ids.append(np.asarray(gt_ids, dtype=np.int64))
        self._hyp_ids.append(np.asarray(hyp_ids, dtype=np.int64))
        self._sims.append(iou_xywh(gt_xywh, hyp_xywh))

    def clear(self) -> dict[str, float]:
        """CLEAR MOT and identity metrics (motmetrics names, see :data:`CLEAR_METRICS`)."""
        mh = self._mm.metrics.create()
        summary = mh.compute(self._acc, metrics=list(CLEAR_METRICS), name="seq")
        row = summary.loc["seq"]
        return {k: float(row[k]) for k in CLEAR_METRICS}

    def hota(self, implementation: str = "auto") -> HotaFigures:
        """HOTA via ``trackeval`` (``auto`` falls back to ``trackers.eval``)."""
        gt_ids, n_gt = _relabel(self._gt_ids)
        hyp_ids, n_hyp = _relabel(self._hyp_ids)
        if implementation in ("auto", "trackeval"):
            try:
                from trackeval.metrics import HOTA
            except ImportError:
                if implementation == "trackeval":
                    raise
            else:
                data = {
                    "num_gt_dets": int(sum(len(i) for i in gt_ids)),
                    "num_tracker_dets": int(sum(len(i) for i in hyp_ids)),
                    "num_gt_ids": n_gt,
                    "num_tracker_ids": n_hyp,
                    "gt_ids": gt_ids,
                    "tracker_ids": hyp_ids,
                    "similarity_scores": self._sims,
                }
                res = HOTA().eval_sequence(data)
                return _figures({k: float(np.mean(res[k])) for k in _HOTA_KEYS}, "trackeval")
        from trackers.eval import compute_hota_metrics

        out = compute_hota_metrics(gt_ids, hyp_ids, self._sims)
        return _figures({k: float(out[k]) for k in _HOTA_KEYS}, "trackers.eval")


_HOTA_KEYS = ("HOTA", "DetA", "AssA", "LocA")


def _figures(v: dict[str, float], implementation: str) -> HotaFigures:
    return HotaFigures(v["HOTA"], v["DetA"], v["AssA"], v["LocA"], implementation)
