"""Frame → model input tensor, as a release's :class:`Preprocessing` says, and the way back.

Steps, in this order (the order of the publishers' own pipelines):

1. geometry: *letterbox* (keep the aspect ratio, image in the top-left corner, the rest
   filled with ``pad_value``, as YOLOX's ``preproc`` does) or a plain resize to the input
   size;
2. colour order: the frame is BGR; swap to RGB when the release says ``rgb``;
3. values: ``x' = (x * scale - mean[c]) / std[c]``, channels in the order of step 2;
4. layout: HWC → NCHW float32, C-contiguous, batch of one.

:class:`Transform` maps boxes from input-tensor pixels back to frame pixels (the inverse of
step 1), clipped to the frame. Pure numpy + OpenCV; no model, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import supervision as sv

from kontur.worker.errors import ModelFormatError

if TYPE_CHECKING:
    from kontur.release.manifest import Preprocessing

__all__ = ["Transform", "check_input", "letterbox", "prepare", "resize", "to_tensor"]


@dataclass(frozen=True)
class Transform:
    """Frame → input geometry: ``input = frame * scale + pad``, per axis."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    frame_width: int
    frame_height: int

    def boxes_to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """``(n, 4)`` boxes in input pixels → frame pixels, clipped to the frame, float32."""
        pad = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], dtype=np.float64)
        scale = np.array([self.scale_x, self.scale_y, self.scale_x, self.scale_y])
        out = (np.asarray(xyxy, dtype=np.float64).reshape(-1, 4) - pad) / scale
        w, h = self.frame_width, self.frame_height
        clipped: np.ndarray = np.clip(out, 0, [w, h, w, h])
        return clipped.astype(np.float32)

    def to_frame(self, detections: sv.Detections) -> sv.Detections:
        """A new :class:`~supervision.Detections` in frame pixels; the input is not changed."""
        if len(detections) == 0:
            return sv.Detections.empty()
        return sv.Detections(
            xyxy=self.boxes_to_frame(detections.xyxy),
            confidence=detections.confidence,
            class_id=detections.class_id,
        )


def _check_frame(frame: np.ndarray) -> None:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(
            f"frame: expected BGR uint8 of shape (H, W, 3), got {frame.dtype} {frame.shape}"
        )


def letterbox(
    frame: np.ndarray, input_hw: tuple[int, int], pad_value: int = 114
) -> tuple[np.ndarray, Transform]:
    """Scale ``frame`` to fit ``input_hw`` keeping its aspect ratio; pad right and bottom."""
    import cv2

    _check_frame(frame)
    h, w = frame.shape[:2]
    ih, iw = input_hw
    r = min(ih / h, iw / w)
    nh, nw = min(ih, round(h * r)), min(iw, round(w * r))
    out = np.full((ih, iw, 3), pad_value, dtype=np.uint8)
    out[:nh, :nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
    # The effective scale is the one actually applied after rounding to whole pixels.
    return out, Transform(nw / w, nh / h, 0.0, 0.0, w, h)


def resize(frame: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, Transform]:
    """Stretch ``frame`` to ``input_hw`` (the aspect ratio is not kept)."""
    import cv2

    _check_frame(frame)
    h, w = frame.shape[:2]
    ih, iw = input_hw
    out = cv2.resize(frame, (iw, ih), interpolation=cv2.INTER_LINEAR)
    return out, Transform(iw / w, ih / h, 0.0, 0.0, w, h)


def to_tensor(
    image: np.ndarray,
    *,
    colour: str = "bgr",
    scale: float = 1.0,
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0),
    std: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """BGR uint8 HWC image → ``(1, 3, H, W)`` float32 with the value mapping applied."""
    if colour not in ("bgr", "rgb"):
        raise ValueError(f"colour: expected 'bgr' or 'rgb', got {colour!r}")
    chw = image[:, :, ::-1] if colour == "rgb" else image
    blob = chw.transpose(2, 0, 1).astype(np.float32)
    if scale != 1.0:
        blob *= np.float32(scale)
    if any(mean):
        blob -= np.asarray(mean, dtype=np.float32)[:, None, None]
    if any(s != 1.0 for s in std):
        blob /= np.asarray(std, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray(blob[None])


def prepare(frame: np.ndarray, pre: Preprocessing) -> tuple[np.ndarray, Transform]:
    """The input tensor for ``frame`` and the transform back to frame coordinates."""
    hw = (pre.input_height, pre.input_width)
    image, transform = letterbox(frame, hw, pre.pad_value) if pre.letterbox else resize(frame, hw)
    blob = to_tensor(image, colour=pre.colour, scale=pre.scale, mean=pre.mean, std=pre.std)
    return blob, transform


def check_input(shape: tuple[int | None, ...], input_hw: tuple[int, int], what: str) -> None:
    """The model's input must be NCHW ``[1, 3, H, W]`` with the release's ``H, W``."""
    expected = (1, 3, *input_hw)
    fits = len(shape) == 4 and all(
        s is None or s == e for s, e in zip(shape, expected, strict=True)
    )
    if not fits:
        got = "[" + ",".join("?" if s is None else str(s) for s in shape) + "]"
        raise ModelFormatError(
            f"{what}: expected input [1,3,{input_hw[0]},{input_hw[1]}] (the release's "
            f"preprocessing), got {got}"
        )
