"""Person detection quality against ground truth: precision, recall and AP at IoU >= 0.5.

Per frame, detections are matched greedily in descending score order (COCO's rule): each
takes the still-unmatched gt box it overlaps most, if that IoU is at least ``iou``; otherwise
it is a false positive. Equal scores keep the caller's order (a stable sort).

- Precision and recall count only the detections scoring at least ``score_threshold`` (the
  release's own threshold). Greedy matching in score order means the lower-scoring
  detections never change how the higher-scoring ones matched, so one matching serves both.
- AP50 is the area under the precision/recall curve of *all* detections given, pooled over
  the frames and ranked by score, with all-point interpolation (PASCAL VOC 2010 onwards:
  precision made monotone from the right, summed over every recall step). Callers pass
  detections down to a low score (e.g. 0.05) for a meaningful AP.

Where a ratio has nothing to count (no detections at the threshold, or no gt) it is 0.0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import supervision as sv

from kontur.robustness.errors import NoPersonClass

__all__ = [
    "DetectionQuality",
    "average_precision",
    "box_iou",
    "detection_quality",
    "person_detections",
]


@dataclass(frozen=True)
class DetectionQuality:
    """Detection quality over a set of frames.

    ``tp``/``fp`` count the detections at or above ``score_threshold``; ``fn`` the gt boxes
    none of them matched; ``gt`` all gt boxes (``tp + fn``). ``ap50`` uses every detection.
    """

    precision: float
    recall: float
    ap50: float
    tp: int
    fp: int
    fn: int
    gt: int
    frames: int
    score_threshold: float
    iou: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    out: np.ndarray = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return out


def _match(dets: np.ndarray, scores: np.ndarray, gt: np.ndarray, iou: float) -> np.ndarray:
    """Whether each detection (in the given order, sorted by score) is a true positive."""
    order = np.argsort(-scores, kind="stable")
    hit = np.zeros(len(dets), dtype=bool)
    if not len(gt):
        return hit
    overlaps = box_iou(dets[order], gt)
    free = np.ones(len(gt), dtype=bool)
    for rank, row in enumerate(overlaps):
        cand = np.where(free, row, -1.0)
        best = int(np.argmax(cand))
        if cand[best] >= iou:
            free[best] = False
            hit[order[rank]] = True
    return hit


def average_precision(scores: np.ndarray, hits: np.ndarray, num_gt: int) -> float:
    """All-point interpolated AP of ranked detections (``hits``: true positive or not)."""
    if num_gt == 0 or not len(scores):
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(hits[order])
    # VOC's sentinels: recall 0 and 1 at the ends; precision 0 at recall 1 adds no area.
    recall = np.concatenate([[0.0], tp / num_gt, [1.0]])
    precision = np.concatenate([[0.0], tp / np.arange(1, len(tp) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def _arrays(d: Any, s: Any, g: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dets, scores, gt = (np.asarray(a, dtype=np.float64) for a in (d, s, g))
    return (
        dets.reshape(0, 4) if dets.size == 0 else dets,
        scores.reshape(0) if scores.size == 0 else scores,
        gt.reshape(0, 4) if gt.size == 0 else gt,
    )


def _check(dets: np.ndarray, scores: np.ndarray, gt: np.ndarray, frame: int) -> None:
    if dets.shape != (len(scores), 4) or scores.ndim != 1 or gt.shape[1:] != (4,):
        raise ValueError(
            f"frame {frame}: expected (n, 4) detections, (n,) scores and (m, 4) gt, "
            f"got {dets.shape}, {scores.shape}, {gt.shape}"
        )


def detection_quality(
    pairs: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    score_threshold: float,
    iou: float = 0.5,
) -> DetectionQuality:
    """Precision/recall at ``score_threshold`` and AP50 over frames of ``(dets, scores, gt)``.

    ``dets`` and ``gt`` are xyxy in the same pixels. Pass every detection down to a low score
    for AP; precision and recall only count those at or above ``score_threshold``.
    """
    all_scores: list[np.ndarray] = []
    all_hits: list[np.ndarray] = []
    num_gt = tp = fp = frames = 0
    for frames, (d, s, g) in enumerate(pairs, 1):
        dets, scores, gt = _arrays(d, s, g)
        _check(dets, scores, gt, frames - 1)
        hits = _match(dets, scores, gt, iou)
        kept = scores >= score_threshold
        tp += int(np.count_nonzero(hits & kept))
        fp += int(np.count_nonzero(~hits & kept))
        num_gt += len(gt)
        all_scores.append(scores)
        all_hits.append(hits)
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    hits = np.concatenate(all_hits) if all_hits else np.zeros(0, dtype=bool)
    return DetectionQuality(
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / num_gt if num_gt else 0.0,
        ap50=average_precision(scores, hits, num_gt),
        tp=tp,
        fp=fp,
        fn=num_gt - tp,
        gt=num_gt,
        frames=frames,
        score_threshold=score_threshold,
        iou=iou,
    )


def person_detections(
    dets: sv.Detections, class_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The ``person`` boxes (n, 4) xyxy and their scores (n,) out of ``dets``."""
    if "person" not in class_names:
        raise NoPersonClass(
            f"detector classes: expected one named 'person', got {list(class_names)[:8]}"
        )
    if not len(dets) or dets.class_id is None:
        return np.zeros((0, 4)), np.zeros(0)
    mask = dets.class_id == list(class_names).index("person")
    scores = dets.confidence[mask] if dets.confidence is not None else np.ones(int(mask.sum()))
    return np.asarray(dets.xyxy[mask], dtype=np.float64), np.asarray(scores, dtype=np.float64)
