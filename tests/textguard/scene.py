"""Real footage with text put into it: the signs the text-guard tests read.

Frames come from ../shared/data (PETS09 S2L1, the car-traffic clip). Latin text is drawn
with OpenCV (``cv2.putText``, Hershey simplex); text with Cyrillic or Greek letters, which
the Hershey fonts lack, with PIL and the DejaVu Sans Bold TrueType font. Each sign is black
on a white board, large enough for the OCR to read (about 20 px capitals).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from tests.conftest import shared

Image = npt.NDArray[np.uint8]

PETS09 = ("video", "pets09_s2l1_480x360.avi")
TRAFFIC = ("video", "car_traffic_640x360.mp4")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


def need_ocr() -> None:
    """Skip without rapidocr-onnxruntime; under CI its absence is a failure."""
    if importlib.util.find_spec("rapidocr_onnxruntime") is None:
        why = "needs rapidocr-onnxruntime (pip install rapidocr-onnxruntime)"
        if os.environ.get("CI"):
            pytest.fail(f"{why}: CI installs it, so its absence is a bug")
        pytest.skip(why)


def frame_of(clip: tuple[str, str], index: int) -> Image:
    """Frame ``index`` of a shared clip (BGR), or a skip when the data is absent."""
    cap = cv2.VideoCapture(str(shared(*clip)))
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = cap.read()
    finally:
        cap.release()
    assert ok, f"{clip[1]}: no frame {index}"
    return np.ascontiguousarray(image)


def board(image: Image, lines: list[str], *, top: int = 16, scale: float = 0.8) -> Image:
    """``image`` with a white board holding ``lines`` (Latin only), one per row."""
    out = image.copy()
    y = top
    for text in lines:
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        cv2.rectangle(out, (8, y), (20 + w, y + h + base + 12), (255, 255, 255), -1)
        cv2.putText(
            out, text, (14, y + h + 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2, cv2.LINE_AA
        )
        y += h + base + 24
    return out


def ttf_board(image: Image, lines: list[str], *, top: int = 16, size: int = 22) -> Image:
    """``image`` with ``lines`` drawn by PIL in DejaVu Sans Bold (Cyrillic, Greek); or a skip."""
    if not DEJAVU.exists():
        pytest.skip(f"needs {DEJAVU} to draw Cyrillic and Greek letters")
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont

    font = ImageFont.truetype(str(DEJAVU), size)
    pil = PILImage.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    draw = ImageDraw.Draw(pil)
    y = top
    for text in lines:
        _, y1, x2, y2 = draw.textbbox((14, y), text, font=font)
        draw.rectangle((8, y1 - 6, x2 + 8, y2 + 6), fill="white")
        draw.text((14, y), text, font=font, fill="black")
        y = int(y2) + 20
    return np.ascontiguousarray(cv2.cvtColor(np.array(pil), cv2.COLOR_RGB2BGR))
