"""The OCR engine, built when this module is imported: only ever inside the OCR sandbox.

The sandbox policy names this module in its ``preload`` (:mod:`kontur.worker.sandbox`, step
8), so it is imported inside Landlock and seccomp but before the drop to uid 65534, which may
not be able to read the interpreter's tree or the OCR's model files. Importing it therefore
reads the models, builds the sessions and runs the engine once on a drawn test string, so
that every module the engine imports lazily is loaded while it still can be. kontur's own
process never imports it (``tests/textguard/test_sandbox.py`` checks).
"""

from __future__ import annotations

import os
from importlib import metadata
from typing import Any

import cv2
import numpy as np
from rapidocr_onnxruntime import RapidOCR

__all__ = ["ENGINE", "THREADS_ENV", "recognise"]

ENGINE = f"rapidocr-onnxruntime {metadata.version('rapidocr-onnxruntime')}"
#: Inference threads: the child sets this variable from its request before the import.
THREADS_ENV = "KONTUR_OCR_THREADS"


def _build(threads: int) -> Any:
    return RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)


def _warm_up(ocr: Any) -> None:
    image = np.full((64, 320, 3), 255, np.uint8)
    cv2.putText(image, "KONTUR 2024", (8, 44), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2)
    ocr(image)


def recognise(frame: np.ndarray[Any, np.dtype[np.uint8]]) -> list[dict[str, Any]]:
    """Each string in ``frame`` (BGR): ``{"text", "box": [[x, y]×4], "score"}``."""
    result, _ = _OCR(frame)
    out = []
    for box, text, score in result or ():
        out.append(
            {
                "text": str(text),
                "box": [[float(x), float(y)] for x, y in box],
                "score": float(score),
            }
        )
    return out


_OCR = _build(max(1, min(int(os.environ.get(THREADS_ENV, "1")), 64)))
_warm_up(_OCR)
