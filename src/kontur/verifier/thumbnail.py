"""Thumbnails for the scene-liveness check: small grayscale pictures made with numpy alone.

The verifier never decodes video and never loads an image library (DESIGN.md §1, block 4:
no GPU/NPU stack, and nothing that could pull one in). Its shell reads the decoded BGR frame
from the shared-memory ring and calls :func:`make_thumbnail`, which samples a fixed grid of
pixels (nearest neighbour, no averaging) and converts them to grey with integer BT.601
weights. Sampling without averaging keeps the thumbnail a deterministic function of the
sampled pixels, so a bit-exact replay of a frame gives a bit-exact thumbnail — what the loop
detector in :class:`~kontur.verifier.SceneLiveness` relies on.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from kontur.verifier.errors import ThumbnailError

__all__ = [
    "MAX_THUMBNAIL_SIDE",
    "MIN_THUMBNAIL_SIDE",
    "THUMBNAIL_SHAPE",
    "make_thumbnail",
    "validate_thumbnail",
]

#: The thumbnail shape the verifier expects by default: (height, width) = 48 × 64 pixels.
THUMBNAIL_SHAPE = (48, 64)
#: Smallest side a thumbnail may have: fewer pixels would make the mean difference noisy.
MIN_THUMBNAIL_SIDE = 8
#: Largest side a thumbnail may have: bounds the verifier's CPU cost per frame.
MAX_THUMBNAIL_SIDE = 512


def validate_thumbnail(thumbnail: object) -> npt.NDArray[np.uint8]:
    """Return ``thumbnail`` as a 2-D uint8 array, or raise :class:`ThumbnailError`."""
    if not isinstance(thumbnail, np.ndarray):
        raise ThumbnailError(
            f"expected a thumbnail as a 2-D uint8 numpy array, got {type(thumbnail).__name__}"
        )
    if thumbnail.ndim != 2 or thumbnail.dtype != np.uint8:
        raise ThumbnailError(
            f"expected a 2-D uint8 grayscale thumbnail, got shape {thumbnail.shape} "
            f"{thumbnail.dtype}"
        )
    h, w = thumbnail.shape
    if not (MIN_THUMBNAIL_SIDE <= h <= MAX_THUMBNAIL_SIDE) or not (
        MIN_THUMBNAIL_SIDE <= w <= MAX_THUMBNAIL_SIDE
    ):
        raise ThumbnailError(
            f"expected thumbnail sides between {MIN_THUMBNAIL_SIDE} and {MAX_THUMBNAIL_SIDE} "
            f"pixels, got {h}x{w} (height x width)"
        )
    return thumbnail


def make_thumbnail(
    frame: npt.NDArray[np.uint8], shape: tuple[int, int] = THUMBNAIL_SHAPE
) -> npt.NDArray[np.uint8]:
    """A fresh ``shape`` (height, width) uint8 grey thumbnail of a BGR or grey uint8 ``frame``.

    ``frame`` may be a read-only view of shared memory: only the sampled pixels are read and
    the result never aliases it.
    """
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise ThumbnailError(
            f"expected a uint8 frame, got {getattr(frame, 'dtype', type(frame).__name__)}"
        )
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)):
        raise ThumbnailError(f"expected a frame of shape (h, w) or (h, w, 3), got {frame.shape}")
    th, tw = shape
    fh, fw = frame.shape[:2]
    if fh < th or fw < tw:
        raise ThumbnailError(f"expected a frame of at least {th}x{tw} pixels, got {fh}x{fw}")
    ys, xs, flat = _grid(fh, fw, th, tw)
    if frame.ndim == 3 and frame.flags.c_contiguous:
        # one gather of whole pixels by flat index: the same pixels, a third of the cost
        return validate_thumbnail(bt601_grey(frame.reshape(-1, 3).take(flat, axis=0)))
    picked = frame[ys[:, None], xs[None, :]]
    if picked.ndim == 2:
        return validate_thumbnail(np.ascontiguousarray(picked))
    return validate_thumbnail(bt601_grey(picked))


@functools.lru_cache(maxsize=16)
def _grid(
    fh: int, fw: int, th: int, tw: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The sampled rows and columns of a ``fh`` × ``fw`` frame, and the (th, tw) flat pixel
    indices of the grid (read-only: cached per frame size)."""
    ys = np.linspace(0, fh - 1, th).round().astype(np.intp)
    xs = np.linspace(0, fw - 1, tw).round().astype(np.intp)
    flat = ys[:, None] * fw + xs[None, :]
    for a in (ys, xs, flat):
        a.setflags(write=False)
    return ys, xs, flat


def bt601_grey(picked: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """A fresh grey (h, w) picture of BGR pixels ``picked`` (h, w, 3), any strides.

    ITU-R BT.601 luma in 8-bit fixed point: 0.114 B + 0.587 G + 0.299 R ≈ (29, 150, 77) / 256,
    in uint16 (the sum stays below 2**16), one channel at a time and in place.
    """
    grey = picked[..., 0].astype(np.uint16)
    grey *= 29
    green = picked[..., 1].astype(np.uint16)
    green *= 150
    red = picked[..., 2].astype(np.uint16)
    red *= 77
    grey += green
    grey += red
    grey >>= 8
    return grey.astype(np.uint8)
