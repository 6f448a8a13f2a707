"""Detectors: ``infer(frame) -> supervision.Detections``.

- :class:`YoloxOnnxDetector`: YOLOX on ONNX Runtime, built from the model *bytes* that were
  verified (``InferenceSession(bytes)``), never by re-reading a path (DESIGN.md §3).
  Input BGR 0..255 letterboxed (pad 114), no normalisation; raw grid output decoded with
  strides 8/16/32 (``../shared/data/MANIFEST.md``).
  The letterbox and decoder are the release runners' (:mod:`kontur.worker.runners`), which
  build detectors for signed releases of any supported format.
- :class:`HogPersonDetector`: OpenCV's HOG people detector; needs no downloaded weights and
  is the clearly labelled fallback when no model is given.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import numpy as np
import supervision as sv

from kontur.release.classes import COCO_CLASSES
from kontur.worker.errors import ModelFormatError
from kontur.worker.runners.decoders import decode_yolox, nms
from kontur.worker.runners.preprocess import letterbox, to_tensor

__all__ = ["COCO_CLASSES", "Detector", "HogPersonDetector", "YoloxOnnxDetector", "nms"]


class Detector(Protocol):
    """A detector stage."""

    name: str
    model_id: str
    class_names: tuple[str, ...]

    def infer(self, frame: np.ndarray) -> sv.Detections:
        """Detect objects in one BGR uint8 frame."""
        ...


class YoloxOnnxDetector:
    """YOLOX (raw grid output) on ONNX Runtime, CPU execution provider by default."""

    name = "yolox-onnx"
    class_names = COCO_CLASSES

    def __init__(
        self,
        model_bytes: bytes,
        *,
        score_threshold: float = 0.3,
        nms_threshold: float = 0.45,
        intra_op_threads: int = 1,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
    ) -> None:
        import onnxruntime as ort

        self.model_id = "sha256:" + hashlib.sha256(model_bytes).hexdigest()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(model_bytes, opts, providers=list(providers))
        except Exception as exc:  # ORT raises its own exception zoo for bad bytes
            raise ModelFormatError(
                f"model {self.model_id[:19]}…: expected an ONNX model, got bytes ONNX Runtime "
                f"refuses ({type(exc).__name__})"
            ) from None
        inp = self.session.get_inputs()[0]
        shape = inp.shape
        if len(shape) != 4 or not isinstance(shape[2], int) or shape[2] != shape[3]:
            raise ModelFormatError(
                f"model {self.model_id[:19]}…: expected a square NCHW input, got {shape}"
            )
        self.input_name, self.size = inp.name, int(shape[2])
        out = self.session.get_outputs()[0].shape
        if len(out) != 3 or out[2] != 5 + len(COCO_CLASSES):
            raise ModelFormatError(
                f"model {self.model_id[:19]}…: expected YOLOX output [1,N,85], got {out}"
            )
        self.score_threshold, self.nms_threshold = score_threshold, nms_threshold

    def infer(self, frame: np.ndarray) -> sv.Detections:
        """Letterbox, run, decode the grid, threshold and NMS (class-aware)."""
        image, transform = letterbox(frame, (self.size, self.size))
        raw = self.session.run(None, {self.input_name: to_tensor(image)})[0]
        dets = decode_yolox(
            raw,
            (self.size, self.size),
            self.score_threshold,
            self.nms_threshold,
            num_classes=len(COCO_CLASSES),
        )
        return transform.to_frame(dets)


#: The default people detector's window, (width, height) in pixels.
HOG_WINDOW = (64, 128)


class HogPersonDetector:
    """OpenCV HOG + linear SVM people detector: the weight-free fallback.

    Frames are upscaled so their height is about 480 px (the 64x128 window misses smaller
    people). The SVM margin ``w`` becomes a confidence with ``1 - exp(-w)``.
    """

    name = "hog-fallback"
    class_names: tuple[str, ...] = ("person",)

    def __init__(
        self,
        *,
        score_threshold: float = 0.3,
        nms_threshold: float = 0.45,
        threads: int | None = None,
    ) -> None:
        """``threads``: OpenCV's pool, for the whole process; the worker passes
        ``worker.intra_op_threads``, as it does to ONNX Runtime. Left alone (None), OpenCV
        takes every core, and analytics must leave the host's other cores to recording
        (ADR 0062)."""
        import cv2

        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads: expected >= 1, got {threads}")
            cv2.setNumThreads(threads)
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]
        self.model_id = "builtin:opencv-hog-people-" + cv2.__version__
        self.score_threshold, self.nms_threshold = score_threshold, nms_threshold

    def infer(self, frame: np.ndarray) -> sv.Detections:
        """Detect people."""
        import cv2

        h = frame.shape[0]
        up = min(2.0, max(1.0, 480.0 / h))
        img = cv2.resize(frame, None, fx=up, fy=up) if up > 1.0 else frame
        if img.shape[0] < HOG_WINDOW[1] or img.shape[1] < HOG_WINDOW[0]:
            # smaller than one window even upscaled: no person fits, and OpenCV's
            # detectMultiScale crashes the process (SIGSEGV) on such a picture
            return sv.Detections.empty()
        rects, weights = self._hog.detectMultiScale(
            img, winStride=(8, 8), padding=(8, 8), scale=1.05
        )
        if len(rects) == 0:
            return sv.Detections.empty()
        rects = np.asarray(rects, dtype=np.float32) / up
        xyxy = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], 1)
        conf = (1.0 - np.exp(-np.asarray(weights, dtype=np.float32).ravel())).clip(0, 1)
        m = conf >= self.score_threshold
        xyxy, conf = xyxy[m], conf[m]
        if not len(conf):
            return sv.Detections.empty()
        keep = nms(xyxy, conf, self.nms_threshold)
        return sv.Detections(
            xyxy=xyxy[keep], confidence=conf[keep], class_id=np.zeros(len(keep), dtype=int)
        )
