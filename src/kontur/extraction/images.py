"""Query images: bounded, header-first decoding of JPEG and PNG, and the PRADA feature.

Order of steps (:func:`decode_image`), each before anything costlier:

1. the byte count against ``max_bytes`` (:class:`ImageTooLarge`);
2. the format from the magic bytes: JPEG (``FF D8 FF``) or PNG (its 8-byte signature), nothing
   else (:class:`ImageInvalid`);
3. the dimensions from the header itself (PNG ``IHDR``; JPEG's first start-of-frame marker),
   parsed here without a decoder, against ``max_side`` and ``max_pixels``
   (:class:`ImageTooLarge`): a decompression bomb is refused before it is inflated;
4. OpenCV decodes to BGR ``uint8``; a refusal, or a picture whose size differs from what its
   header said, is :class:`ImageInvalid`.

:func:`query_features` is PRADA's fixed feature space (ADR 0031): the picture in greyscale,
area-downscaled to ``FEATURE_SIDE`` x ``FEATURE_SIDE``, one ``uint8`` per cell (distances are
taken on the cells / 255, so the space is normalised to [0, 1] per cell).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from kontur.extraction.errors import ImageInvalid, ImageTooLarge

__all__ = [
    "FEATURE_SIDE",
    "MAX_IMAGE_BYTES",
    "ImageLimits",
    "decode_image",
    "image_size",
    "query_features",
]

FEATURE_SIDE = 32
#: The most bytes a query image may have: the bound of ``POST /v1/detect``'s body.
MAX_IMAGE_BYTES = 8 << 20
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
#: JPEG start-of-frame markers (baseline, progressive, lossless...; not DHT/JPG/DAC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Bounds on one query image."""

    max_bytes: int = MAX_IMAGE_BYTES
    max_side: int = 4096
    max_pixels: int = 4096 * 4096

    def __post_init__(self) -> None:
        if self.max_bytes > MAX_IMAGE_BYTES:
            raise ValueError(
                f"image.max_bytes: expected at most {MAX_IMAGE_BYTES} (the route's body bound), "
                f"got {self.max_bytes}"
            )
        if min(self.max_bytes, self.max_side, self.max_pixels) < 1:
            raise ValueError(
                "image: expected positive max_bytes, max_side and max_pixels, got "
                f"{self.max_bytes}, {self.max_side}, {self.max_pixels}"
            )


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ImageInvalid("image: expected a PNG IHDR chunk first, got none")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg_size(data: bytes) -> tuple[int, int]:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise ImageInvalid(f"image: expected a JPEG marker at byte {at}, got 0x{data[at]:02x}")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _SOF:
            if at + 9 > len(data) or length < 7:
                break
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        if marker == 0xDA or length < 2:  # scan data before any frame header
            break
        at += 2 + length
    raise ImageInvalid("image: expected a JPEG start-of-frame header, got none")


def image_size(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` from the header alone; ImageInvalid if neither format."""
    if data.startswith(_PNG):
        return ("png", *_png_size(data))
    if data.startswith(_JPEG):
        return ("jpeg", *_jpeg_size(data))
    raise ImageInvalid(f"image: expected JPEG or PNG bytes, got {data[:4].hex() or 'none'}")


def decode_image(data: bytes, limits: ImageLimits = ImageLimits()) -> np.ndarray:
    """The picture as BGR ``uint8`` (H, W, 3), after the checks of the module docstring."""
    import cv2

    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"image: expected at most {limits.max_bytes} bytes, got {len(data)}")
    kind, width, height = image_size(data)
    if width < 1 or height < 1:
        raise ImageInvalid(f"image: expected a {kind} of at least 1x1, got {width}x{height}")
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"image: expected at most {limits.max_side} px a side and {limits.max_pixels} "
            f"pixels, got {width}x{height}"
        )
    picture = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if picture is None:
        raise ImageInvalid(f"image: expected a {kind} that decodes, got one OpenCV refuses")
    if picture.shape[:2] != (height, width):
        raise ImageInvalid(
            f"image: expected {width}x{height} as its header says, "
            f"got {picture.shape[1]}x{picture.shape[0]}"
        )
    return np.ascontiguousarray(picture)


def query_features(picture: np.ndarray) -> np.ndarray:
    """PRADA's feature of a BGR (or greyscale) ``uint8`` picture: ``FEATURE_SIDE**2`` cells."""
    import cv2

    if picture.dtype != np.uint8 or picture.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 picture, got {picture.dtype} {picture.shape}")
    grey = cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY) if picture.ndim == 3 else picture
    small = cv2.resize(grey, (FEATURE_SIDE, FEATURE_SIDE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small, dtype=np.uint8).reshape(-1)
