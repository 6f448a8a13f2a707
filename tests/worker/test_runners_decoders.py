"""Decoders and preprocessing on synthetic tensors: known boxes, shape errors, NMS."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from kontur.release.manifest import Preprocessing
from kontur.worker import detectors
from kontur.worker.errors import ModelFormatError
from kontur.worker.runners.decoders import (
    Decoder,
    batched_nms,
    decode_ssd,
    decode_yolov8,
    decode_yolox,
    nms,
)
from kontur.worker.runners.preprocess import Transform, letterbox, prepare, resize, to_tensor

COCO = 80
YOLOX_HW, YOLOV8_HW, SSD_HW = (416, 416), (640, 640), (384, 672)


def _yolox_raw() -> np.ndarray:
    return np.zeros((1, 3549, 5 + COCO), dtype=np.float32)


# --- YOLOX ------------------------------------------------------------------------------


def test_yolox_cell_decodes_through_the_letterbox_to_frame_pixels() -> None:
    raw = _yolox_raw()
    # stride 16 level: after the 52x52 cells of stride 8; cell (gx 5, gy 10) of 26x26
    i = 52 * 52 + 10 * 26 + 5
    raw[0, i, :4] = [0.5, 0.5, np.log(4.0), np.log(8.0)]  # xy=(p+grid)*16, wh=exp(p)*16
    raw[0, i, 4], raw[0, i, 5 + 5] = 0.9, 0.8  # objectness, class 5 ("bus")
    dets = decode_yolox(raw, YOLOX_HW, 0.3, 0.45, num_classes=COCO)
    # centre (5.5*16, 10.5*16) = (88, 168), size (64, 128)
    np.testing.assert_allclose(dets.xyxy, [[56, 104, 120, 232]], atol=1e-4)
    np.testing.assert_allclose(dets.confidence, [0.72], atol=1e-6)
    assert dets.class_id.tolist() == [5]
    # an 832x624 frame letterboxes at ratio 0.5 into the top-left 416x312 of the input
    _, transform = letterbox(np.zeros((624, 832, 3), np.uint8), YOLOX_HW)
    np.testing.assert_allclose(transform.to_frame(dets).xyxy, [[112, 208, 240, 464]], atol=1e-3)


def test_yolox_score_is_objectness_times_class_score() -> None:
    raw = _yolox_raw()
    raw[0, 0, 4], raw[0, 0, 5] = 0.5, 0.5  # 0.25: below a 0.3 threshold
    raw[0, 1, 4], raw[0, 1, 5] = 0.6, 0.6  # 0.36: above it
    dets = decode_yolox(raw, YOLOX_HW, 0.3, 0.45, num_classes=COCO)
    np.testing.assert_allclose(dets.confidence, [0.36], atol=1e-6)


def test_yolox_nothing_above_threshold_is_empty() -> None:
    dets = decode_yolox(_yolox_raw(), YOLOX_HW, 0.3, 0.45, num_classes=COCO)
    assert len(dets) == 0


# --- YOLOv8 -----------------------------------------------------------------------------


def test_yolov8_decodes_centre_size_and_nms_is_class_aware() -> None:
    raw = np.zeros((1, 4 + COCO, 8400), dtype=np.float32)
    raw[0, :4, 100] = [320, 240, 100, 50]
    raw[0, 4 + 2, 100] = 0.9  # car
    raw[0, :4, 101] = [322, 241, 100, 50]  # duplicate car, lower score: suppressed
    raw[0, 4 + 2, 101] = 0.6
    raw[0, :4, 102] = [320, 240, 100, 50]  # same box, another class: kept
    raw[0, 4 + 7, 102] = 0.5
    raw[0, :4, 103] = [10, 10, 4, 4]
    raw[0, 4 + 0, 103] = 0.2  # below 0.25
    dets = decode_yolov8(raw, YOLOV8_HW, 0.25, 0.45, num_classes=COCO)
    assert dets.class_id.tolist() == [2, 7]
    np.testing.assert_allclose(dets.xyxy, [[270, 215, 370, 265]] * 2, atol=1e-4)
    np.testing.assert_allclose(dets.confidence, [0.9, 0.5], atol=1e-6)


# --- SSD --------------------------------------------------------------------------------


def _ssd_raw(rows: list[list[float]]) -> np.ndarray:
    raw = np.zeros((1, 1, 200, 7), dtype=np.float32)
    raw[0, 0, : len(rows)] = rows
    return raw


def test_ssd_rows_decode_through_a_plain_resize() -> None:
    raw = _ssd_raw(
        [
            [0, 1, 0.9, 0.1, 0.2, 0.3, 0.6],  # person
            [0, 0, 0.95, 0.0, 0.0, 0.5, 0.5],  # background: dropped
            [0, 1, 0.3, 0.5, 0.5, 0.6, 0.9],  # below 0.5
            [-1, 0, 0, 0, 0, 0, 0],  # end of the list
            [0, 1, 0.99, 0.7, 0.1, 0.8, 0.5],  # after the end: ignored
        ]
    )
    dets = decode_ssd(raw, SSD_HW, 0.5, 0.45, num_classes=2)
    np.testing.assert_allclose(dets.xyxy, [[67.2, 76.8, 201.6, 230.4]], atol=1e-3)
    assert dets.class_id.tolist() == [1]  # the label indexes the release's class names
    _, transform = resize(np.zeros((768, 1344, 3), np.uint8), SSD_HW)
    frame_box = transform.to_frame(dets).xyxy
    np.testing.assert_allclose(frame_box, [[134.4, 153.6, 403.2, 460.8]], atol=1e-2)


def test_ssd_label_outside_the_class_names_is_refused() -> None:
    raw = _ssd_raw([[0, 3, 0.9, 0.1, 0.2, 0.3, 0.6]])
    with pytest.raises(ModelFormatError, match=r"SSD: expected labels in 0\.\.1 .*got \[3\.0\]"):
        decode_ssd(raw, SSD_HW, 0.5, 0.45, num_classes=2)


# --- shape checks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decoder", "hw", "shape", "message"),
    [
        (decode_yolox, YOLOX_HW, (1, 84, 8400), r"YOLOX: expected output \[1,3549,85\], got "),
        (decode_yolox, YOLOX_HW, (1, 3549, 84), r"expected output \[1,3549,85\], got \[1,3549,"),
        (decode_yolox, (640, 640), (1, 3549, 85), r"expected output \[1,8400,85\], got \[1,3549"),
        (decode_yolov8, YOLOV8_HW, (1, 3549, 85), r"YOLOv8: expected output \[1,84,8400\], got"),
        (decode_yolov8, YOLOV8_HW, (84, 8400), r"expected output \[1,84,8400\], got \[84,8400\]"),
        (decode_ssd, SSD_HW, (1, 200, 7), r"SSD: expected output \[1,1,K,7\], got \[1,200,7\]"),
        (decode_ssd, SSD_HW, (1, 1, 200, 6), r"expected output \[1,1,K,7\], got \[1,1,200,6\]"),
    ],
    ids=[
        "yolox_given_yolov8",
        "yolox_wrong_classes",
        "yolox_wrong_input_size",
        "yolov8_given_yolox",
        "yolov8_no_batch",
        "ssd_flat",
        "ssd_six_fields",
    ],
)
def test_output_of_the_wrong_shape_is_refused(
    decoder: Decoder, hw: tuple[int, int], shape: tuple[int, ...], message: str
) -> None:
    raw = np.zeros(shape, dtype=np.float32)
    num_classes = 2 if decoder is decode_ssd else COCO
    with pytest.raises(ModelFormatError, match=message):
        decoder(raw, hw, 0.3, 0.45, num_classes=num_classes)


# --- NMS --------------------------------------------------------------------------------


def test_nms_stays_importable_from_the_detectors_module() -> None:
    assert detectors.nms is nms


def test_batched_nms_never_suppresses_across_classes() -> None:
    xyxy = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7], dtype=np.float32)
    keep = batched_nms(xyxy, scores, np.array([0, 1, 0]), 0.45)
    assert keep.tolist() == [0, 1]
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), 0.5).tolist() == []


# --- preprocessing ----------------------------------------------------------------------


def test_letterbox_keeps_the_image_top_left_and_pads_the_rest() -> None:
    frame = np.full((100, 200, 3), 7, dtype=np.uint8)
    image, transform = letterbox(frame, (64, 64), pad_value=114)
    assert image.shape == (64, 64, 3)
    assert (image[:32] == 7).all() and (image[32:] == 114).all()
    assert transform == Transform(0.32, 0.32, 0.0, 0.0, 200, 100)


def test_to_tensor_swaps_colour_then_scales_and_normalises() -> None:
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30  # B, G, R
    bgr = to_tensor(image)
    assert bgr.shape == (1, 3, 2, 3) and bgr.dtype == np.float32 and bgr.flags.c_contiguous
    assert bgr[0, :, 0, 0].tolist() == [10, 20, 30]
    rgb = to_tensor(image, colour="rgb", scale=0.1, mean=(1, 1, 1), std=(2, 2, 2))
    np.testing.assert_allclose(rgb[0, :, 0, 0], [1.0, 0.5, 0.0], atol=1e-6)


def test_prepare_follows_the_preprocessing_record() -> None:
    pre = Preprocessing(
        input_width=64, input_height=32, colour="rgb", scale=1 / 255, letterbox=False
    )
    frame = np.zeros((90, 160, 3), dtype=np.uint8)
    frame[..., 2] = 255  # red
    blob, transform = prepare(frame, pre)
    assert blob.shape == (1, 3, 32, 64)
    np.testing.assert_allclose(blob[0, :, 5, 5], [1.0, 0.0, 0.0])
    assert (transform.scale_x, transform.scale_y) == (0.4, 32 / 90)


def test_transform_clips_to_the_frame_and_leaves_its_input_alone() -> None:
    dets = sv.Detections(
        xyxy=np.array([[-10, 5, 50, 400]], dtype=np.float32),
        confidence=np.array([0.9], dtype=np.float32),
        class_id=np.array([0]),
    )
    out = Transform(0.5, 0.5, 0.0, 0.0, 100, 100).to_frame(dets)
    assert out.xyxy.tolist() == [[0, 10, 100, 100]]
    assert dets.xyxy.tolist() == [[-10, 5, 50, 400]]


def test_a_frame_that_is_not_bgr_uint8_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match=r"expected BGR uint8 of shape \(H, W, 3\), got float32"):
        letterbox(np.zeros((10, 10, 3), np.float32), YOLOX_HW)
    with pytest.raises(ValueError, match=r"got uint8 \(10, 10\)"):
        resize(np.zeros((10, 10), np.uint8), SSD_HW)
