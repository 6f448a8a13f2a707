"""Raw model outputs → :class:`~supervision.Detections` in input-tensor pixels.

Pure functions over numpy arrays. Each decoder first checks the output's shape against the
format it implements and raises :class:`~kontur.worker.errors.ModelFormatError` ("expected
…, got …") when it does not match, so that a release whose ``output_format`` lies about its
model fails loudly instead of producing plausible garbage.

- YOLOX (Ge et al. 2021, §2.1 "decoupled head", anchor-free): ``[1, N, 5 + C]`` over the
  grids of strides 8/16/32; ``xy = (p + grid) · s``, ``wh = exp(p) · s``,
  ``score = obj × cls``.
- YOLOv8 (Ultralytics): ``[1, 4 + C, N]``; ``cx, cy, w, h`` already in input pixels, then
  ``C`` class scores, no objectness.
- SSD (Liu et al. 2016; OpenVINO ``DetectionOutput``): ``[1, 1, K, 7]`` rows
  ``(image, label, conf, x1, y1, x2, y2)``, coordinates normalised to the input; label 0 is
  the background and dropped; an image id of -1 ends the list.

All three end in a class-aware greedy NMS (:func:`batched_nms`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import supervision as sv

from kontur.worker.errors import ModelFormatError

__all__ = [
    "DECODERS",
    "STRIDES",
    "Decoder",
    "batched_nms",
    "check_shape",
    "decode_ssd",
    "decode_yolov8",
    "decode_yolox",
    "expected_output_shape",
    "nms",
]

STRIDES: tuple[int, ...] = (8, 16, 32)
_SSD_FIELDS = 7

#: ``decoder(raw, input_hw, score, nms_iou, *, num_classes)``
Decoder = Callable[..., sv.Detections]


def nms(xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns the kept indices, best first."""
    order = scores.argsort()[::-1]
    areas = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(xyxy[i, 0], xyxy[rest, 0])
        yy1 = np.maximum(xyxy[i, 1], xyxy[rest, 1])
        xx2 = np.minimum(xyxy[i, 2], xyxy[rest, 2])
        yy2 = np.minimum(xyxy[i, 3], xyxy[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    xyxy: np.ndarray, scores: np.ndarray, class_id: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Class-aware NMS: boxes of different classes never suppress each other.

    Each class is shifted by more than the extent of all boxes (torchvision's
    ``batched_nms`` trick), so one greedy pass does every class at once.
    """
    if len(xyxy) == 0:
        return np.zeros(0, dtype=np.int64)
    xyxy = xyxy.astype(np.float64)
    extent = float(xyxy.max() - xyxy.min()) + 1.0
    shifted = xyxy + (class_id.astype(np.float64) * extent)[:, None]
    return nms(shifted, scores, iou_threshold)


def _finish(
    xyxy: np.ndarray, score: np.ndarray, class_id: np.ndarray, nms_iou: float
) -> sv.Detections:
    if len(score) == 0:
        return sv.Detections.empty()
    keep = batched_nms(xyxy, score, class_id, nms_iou)
    return sv.Detections(
        xyxy=xyxy[keep].astype(np.float32),
        confidence=score[keep].astype(np.float32),
        class_id=class_id[keep].astype(int),
    )


def _anchors(input_hw: tuple[int, int]) -> int:
    h, w = input_hw
    return sum((h // s) * (w // s) for s in STRIDES)


def expected_output_shape(
    output_format: str, input_hw: tuple[int, int], num_classes: int
) -> tuple[int | None, ...]:
    """The output shape a format implies; ``None`` where any size is accepted."""
    if output_format == "yolox":
        return (1, _anchors(input_hw), 5 + num_classes)
    if output_format == "yolov8":
        return (1, 4 + num_classes, _anchors(input_hw))
    if output_format == "ssd":
        return (1, 1, None, _SSD_FIELDS)
    raise ValueError(f"output format: expected one of {sorted(DECODERS)}, got {output_format!r}")


def check_shape(shape: tuple[int | None, ...], expected: tuple[int | None, ...], what: str) -> None:
    """Raise :class:`ModelFormatError` unless ``shape`` fits ``expected`` (``None`` = any)."""
    fits = len(shape) == len(expected) and all(
        e is None or s is None or s == e for s, e in zip(shape, expected, strict=True)
    )
    if not fits:
        want = "[" + ",".join("K" if e is None else str(e) for e in expected) + "]"
        got = "[" + ",".join("?" if s is None else str(s) for s in shape) + "]"
        raise ModelFormatError(f"{what}: expected output {want}, got {got}")


@lru_cache(maxsize=8)
def _yolox_grid(input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    grids, strides = [], []
    for s in STRIDES:
        nh, nw = input_hw[0] // s, input_hw[1] // s
        yv, xv = np.meshgrid(np.arange(nh), np.arange(nw), indexing="ij")
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((nh * nw, 1), s))
    grid = np.concatenate(grids).astype(np.float32)
    stride = np.concatenate(strides).astype(np.float32)
    grid.flags.writeable = stride.flags.writeable = False
    return grid, stride


def decode_yolox(
    raw: np.ndarray, input_hw: tuple[int, int], score: float, nms_iou: float, *, num_classes: int
) -> sv.Detections:
    """YOLOX raw grid output ``[1, N, 5 + C]`` → detections in input pixels."""
    check_shape(raw.shape, expected_output_shape("yolox", input_hw, num_classes), "YOLOX")
    p = raw[0].astype(np.float32, copy=False)
    cls_scores = p[:, 5:] * p[:, 4:5]
    class_id = cls_scores.argmax(1)
    conf = cls_scores[np.arange(len(cls_scores)), class_id]
    m = conf >= score
    grid, stride = _yolox_grid((int(input_hw[0]), int(input_hw[1])))
    xy = (p[m, :2] + grid[m]) * stride[m]
    wh = np.exp(p[m, 2:4]) * stride[m]
    xyxy = np.concatenate([xy - wh / 2, xy + wh / 2], 1)
    return _finish(xyxy, conf[m], class_id[m], nms_iou)


def decode_yolov8(
    raw: np.ndarray, input_hw: tuple[int, int], score: float, nms_iou: float, *, num_classes: int
) -> sv.Detections:
    """YOLOv8 output ``[1, 4 + C, N]`` (``cx, cy, w, h``, class scores) → detections."""
    check_shape(raw.shape, expected_output_shape("yolov8", input_hw, num_classes), "YOLOv8")
    p = raw[0].astype(np.float32, copy=False)
    cls_scores = p[4:]
    class_id = cls_scores.argmax(0)
    conf = cls_scores[class_id, np.arange(cls_scores.shape[1])]
    m = conf >= score
    cxcy, wh = p[:2, m].T, p[2:4, m].T
    xyxy = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], 1)
    return _finish(xyxy, conf[m], class_id[m], nms_iou)


def decode_ssd(
    raw: np.ndarray, input_hw: tuple[int, int], score: float, nms_iou: float, *, num_classes: int
) -> sv.Detections:
    """SSD ``DetectionOutput`` ``[1, 1, K, 7]`` → detections; ``class_id`` is the label."""
    check_shape(raw.shape, expected_output_shape("ssd", input_hw, num_classes), "SSD")
    rows = raw[0, 0].astype(np.float32, copy=False)
    end = np.flatnonzero(rows[:, 0] == -1)
    rows = rows[: end[0]] if len(end) else rows
    label = rows[:, 1].astype(np.int64)
    bad = (label < 0) | (label >= num_classes) | (rows[:, 1] != label)
    if bad.any():
        raise ModelFormatError(
            f"SSD: expected labels in 0..{num_classes - 1} (the release's class names), "
            f"got {rows[bad, 1][:5].tolist()}"
        )
    rows, label = rows[label != 0], label[label != 0]
    m = rows[:, 2] >= score
    h, w = input_hw
    xyxy = rows[m, 3:7] * np.array([w, h, w, h], dtype=np.float32)
    return _finish(xyxy, rows[m, 2], label[m], nms_iou)


DECODERS: dict[str, Decoder] = {
    "yolox": decode_yolox,
    "yolov8": decode_yolov8,
    "ssd": decode_ssd,
}
