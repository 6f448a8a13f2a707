"""Query images: real JPEG and PNG decode; bombs, lies and junk are refused before decoding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from tests.conftest import shared
from tests.extraction.streams import png_claiming

from kontur.extraction import ImageInvalid, ImageLimits, ImageTooLarge, decode_image, query_features
from kontur.extraction.images import FEATURE_SIDE, image_size


def test_real_jpeg_and_png_decode_to_bgr() -> None:
    data = shared("images", "bus.jpg").read_bytes()
    assert image_size(data) == ("jpeg", 810, 1080)
    picture = decode_image(data)
    assert picture.shape == (1080, 810, 3) and picture.dtype == np.uint8
    ok, png = cv2.imencode(".png", picture[:100, :120])
    assert ok and decode_image(png.tobytes()).shape == (100, 120, 3)
    assert query_features(picture).shape == (FEATURE_SIDE * FEATURE_SIDE,)


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    with pytest.raises(
        ImageTooLarge,
        match=r"^image: expected at most 4096 px a side and 16777216 pixels, got 100000x100000$",
    ):
        decode_image(png_claiming(100_000, 100_000))


def test_too_many_bytes_are_refused_first() -> None:
    data = shared("images", "bus.jpg").read_bytes()
    with pytest.raises(
        ImageTooLarge, match=rf"^image: expected at most 1000 bytes, got {len(data)}$"
    ):
        decode_image(data, ImageLimits(max_bytes=1000))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a\x01\x00\x01\x00", "image: expected JPEG or PNG bytes, got 47494638"),
        (b"", "image: expected JPEG or PNG bytes, got none"),
        (b"\x89PNG\r\n\x1a\nxxxx", "image: expected a PNG IHDR chunk first, got none"),
        (b"\xff\xd8\xff\xe0\x00\x02", "image: expected a JPEG start-of-frame header, got none"),
    ],
)
def test_junk_is_refused_in_one_line(data: bytes, message: str) -> None:
    with pytest.raises(ImageInvalid, match="^" + message + "$"):
        decode_image(data)


def test_a_truncated_jpeg_or_a_png_whose_data_breaks_its_header_is_invalid() -> None:
    data = shared("images", "bus.jpg").read_bytes()
    with pytest.raises(
        ImageInvalid, match=r"^image: expected a jpeg that decodes, got one OpenCV refuses$"
    ):
        decode_image(data[: data.find(b"\xff\xda") + 2])  # cut at the start of its scan
    with pytest.raises(
        ImageInvalid, match=r"^image: expected a png that decodes, got one OpenCV refuses$"
    ):
        decode_image(png_claiming(64, 64))  # 64 bytes of pixel data for a 64x64 picture
