"""Pictures from the archive: decode a GOP's segment into frames, draw a box, crop, JPEG.

Used by the API's snapshot, crop and clip routes (ADR 0028). The segment bytes are what
ingest stored and the archive's hash still covers (:meth:`kontur.archive.SegmentStore.read`
checks it), decoded with PyAV from the segment's own codec facts; nothing is re-encoded but
the JPEG handed to a person.

A frame is found by its position in the GOP's decoder output (``frame_index`` minus the GOP's
``first_frame``), the order ingest numbered frames in. The box is the worker's claim of where
the track was: it is drawn and cropped for a person to judge, clamped to the picture, and
never used to decide anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt

from kontur.decoder.packets import padded_packet
from kontur.evidence.clip import clip_stream, write_mp4
from kontur.evidence.errors import ExportError
from kontur.ingest.segment import unpack_segment

__all__ = ["MAX_FRAMES", "Box", "crop", "decode_frame", "jpeg", "segments_clip"]

Box = tuple[float, float, float, float]
Image = npt.NDArray[np.uint8]

#: A GOP longer than this is not decoded past it (a hostile stream's endless GOP).
MAX_FRAMES = 1200
_JPEG_QUALITY = 85
_BOX_COLOUR = (0, 0, 255)  # red, BGR
_CROP_MARGIN = 0.15


def decode_frame(segment: bytes, position: int) -> Image:
    """The picture at ``position`` (0: the GOP's first) of one GOP's segment, BGR.

    A position past the GOP's end gives its last picture. ExportError (one line) when the
    segment does not parse, names no codec PyAV decodes, or yields no picture.
    """
    if not 0 <= position < MAX_FRAMES:
        raise ExportError(f"frame position: expected 0..{MAX_FRAMES - 1}, got {position}")
    try:
        header, packets = unpack_segment(segment)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExportError(f"segment: expected a kontur segment, got {exc}") from None
    codec = header.get("codec") if isinstance(header, dict) else None
    if not isinstance(codec, str):
        raise ExportError(f"segment: expected a codec in its header, got {codec!r}")
    last: Image | None = None
    try:
        ctx: Any = av.CodecContext.create(codec, "r")
        extradata = str(header.get("extradata") or "")
        if extradata:
            ctx.extradata = bytes.fromhex(extradata)
        seen = 0
        for pkt in (*(padded_packet(p.data) for p in packets), None):
            for frame in ctx.decode(pkt):
                last = frame.to_ndarray(format="bgr24")
                if seen == position:
                    return last
                seen += 1
    except (av.FFmpegError, ValueError) as exc:
        if last is None:
            raise ExportError(f"segment: expected a decodable {codec} GOP, got {exc}") from None
    if last is None:
        raise ExportError(f"segment: expected at least one {codec} picture, got none")
    return last


def _clamped(box: Box, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    h, w = shape[:2]
    x1, y1, x2, y2 = (round(v) for v in box)
    x1, x2 = sorted((min(max(x1, 0), w), min(max(x2, 0), w)))
    y1, y2 = sorted((min(max(y1, 0), h), min(max(y2, 0), h)))
    return None if x2 - x1 < 1 or y2 - y1 < 1 else (x1, y1, x2, y2)


def jpeg(image: Image, box: Box | None = None) -> bytes:
    """``image`` as JPEG, with ``box`` drawn (clamped to the picture) when given."""
    out = image
    where = None if box is None else _clamped(box, image.shape)
    if where is not None:
        out = image.copy()
        thick = max(2, image.shape[0] // 180)
        cv2.rectangle(out, where[:2], where[2:], _BOX_COLOUR, thick)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise ExportError(f"jpeg: expected an encodable picture, got shape {image.shape}")
    return bytes(buf)


def crop(image: Image, box: Box) -> Image:
    """The part of ``image`` under ``box`` with a margin of 15 % of its size each side.

    ExportError when the box lies outside the picture (nothing to crop)."""
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * _CROP_MARGIN, (y2 - y1) * _CROP_MARGIN
    where = _clamped((x1 - mx, y1 - my, x2 + mx, y2 + my), image.shape)
    if where is None:
        raise ExportError(
            f"crop: expected a box inside the {image.shape[1]}x{image.shape[0]} "
            f"picture, got {tuple(round(v, 1) for v in box)}"
        )
    a, b, c, d = where
    return np.ascontiguousarray(image[b:d, a:c])


def segments_clip(gops: Sequence[bytes]) -> bytes:
    """The GOPs (one segment each, in order) as one MP4, nothing re-encoded."""
    return write_mp4(clip_stream([[g] for g in gops]))
