"""Detectors on real models and real footage (skipped when ``../shared/data`` is absent)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from kontur.worker.detectors import COCO_CLASSES, HogPersonDetector, YoloxOnnxDetector, nms
from kontur.worker.errors import ModelFormatError

cv2 = pytest.importorskip("cv2")

PERSON, BUS = COCO_CLASSES.index("person"), COCO_CLASSES.index("bus")


@pytest.fixture(scope="module")
def yolox(shared_file: Callable[[str], Path]) -> YoloxOnnxDetector:
    return YoloxOnnxDetector(shared_file("models/yolox_nano.onnx").read_bytes())


@pytest.fixture(scope="module")
def bus(shared_file: Callable[[str], Path]) -> np.ndarray:
    img = cv2.imread(str(shared_file("images/bus.jpg")))
    assert img is not None and img.shape == (1080, 810, 3)
    return img


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes a (n,4) and b (m,4)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


# --- YOLOX ------------------------------------------------------------------------------


def test_yolox_finds_the_people_and_the_bus(yolox: YoloxOnnxDetector, bus: np.ndarray) -> None:
    dets = yolox.infer(bus)
    people = dets[(dets.class_id == PERSON) & (dets.confidence >= 0.5)]
    assert len(people) >= 3
    assert (dets.class_id == BUS).any()
    assert dets.xyxy.dtype == np.float32
    assert (dets.xyxy[:, :2] >= 0).all()
    assert (dets.xyxy[:, 2] <= 810).all() and (dets.xyxy[:, 3] <= 1080).all()
    assert (dets.confidence >= yolox.score_threshold).all()


def test_yolox_model_id_is_the_sha256_of_its_bytes(
    yolox: YoloxOnnxDetector, shared_file: Callable[[str], Path]
) -> None:
    digest = hashlib.sha256(shared_file("models/yolox_nano.onnx").read_bytes()).hexdigest()
    assert yolox.model_id == "sha256:" + digest
    assert yolox.size == 416


def test_yolox_on_an_empty_frame_finds_nothing(yolox: YoloxOnnxDetector) -> None:
    dets = yolox.infer(np.full((360, 480, 3), 114, dtype=np.uint8))
    assert len(dets) == 0


def _gt_boxes(path: Path, scale: float) -> dict[int, np.ndarray]:
    rows = np.loadtxt(path, delimiter=",", usecols=range(6))
    out: dict[int, np.ndarray] = {}
    for frame in np.unique(rows[:, 0]).astype(int):
        r = rows[rows[:, 0] == frame]
        out[frame] = np.column_stack([r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5]])
        out[frame] *= scale
    return out


def test_yolox_person_precision_recall_on_pets09(
    yolox: YoloxOnnxDetector, shared_file: Callable[[str], Path]
) -> None:
    # MANIFEST: YOLOX-Nano at conf 0.3 gives P 0.75 / R 0.90 over all 795 frames at IoU >= 0.5.
    # On the first 50 frames we measured P 0.70 / R 0.85; the floor below allows 0.15 under
    # the manifest figures, which still catches a broken decode (wrong stride, RGB input,
    # normalised input, unscaled boxes all fall far below it).
    video = shared_file("video/pets09_s2l1_480x360.avi")
    gt = _gt_boxes(shared_file("mot15/PETS09-S2L1/gt/gt.txt"), 0.625)
    tp = fp = fn = 0
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index == 50:
                break
            dets = yolox.infer(frame.to_ndarray(format="bgr24"))
            pred = dets.xyxy[dets.class_id == PERSON]
            pred = pred[np.argsort(-dets.confidence[dets.class_id == PERSON])]
            truth = gt.get(index + 1, np.zeros((0, 4)))  # MOT frames start at 1
            matched: set[int] = set()
            if len(pred) and len(truth):
                iou = _iou(pred, truth)
                for row in iou:  # greedy, best-scored prediction first
                    for j in np.argsort(-row):
                        if row[j] < 0.5:
                            break
                        if j not in matched:
                            matched.add(int(j))
                            break
            tp += len(matched)
            fp += len(pred) - len(matched)
            fn += len(truth) - len(matched)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert precision >= 0.6, f"P {precision:.2f} (tp {tp}, fp {fp})"
    assert recall >= 0.75, f"R {recall:.2f} (tp {tp}, fn {fn})"


def test_bytes_that_are_not_onnx_are_refused() -> None:
    junk = b"GIF89a" + bytes(range(256)) * 8
    digest = hashlib.sha256(junk).hexdigest()
    with pytest.raises(ModelFormatError, match="expected an ONNX model, got bytes ONNX Runtime"):
        YoloxOnnxDetector(junk)
    with pytest.raises(ModelFormatError, match=f"model sha256:{digest[:12]}"):
        YoloxOnnxDetector(junk)


def test_real_onnx_model_of_another_family_is_refused(shared_file: Callable[[str], Path]) -> None:
    v8 = shared_file("models/yolov8n_int8.onnx").read_bytes()
    with pytest.raises(ModelFormatError, match=r"expected YOLOX output \[1,N,85\], got \[1, 84"):
        YoloxOnnxDetector(v8)


# --- NMS --------------------------------------------------------------------------------


def test_nms_keeps_the_best_of_overlapping_boxes_best_first() -> None:
    xyxy = np.array(
        [
            [0, 0, 10, 10],  # 0: duplicate of 1, lower score
            [0, 0, 10, 11],  # 1: best of the cluster
            [20, 20, 30, 30],  # 2: alone
            [5, 0, 15, 10],  # 3: IoU 1/3 with 0, kept at threshold 0.45
        ],
        dtype=np.float32,
    )
    scores = np.array([0.8, 0.9, 0.5, 0.7], dtype=np.float32)
    keep = nms(xyxy, scores, 0.45)
    assert keep.tolist() == [1, 3, 2]
    assert keep.dtype == np.int64


def test_nms_suppresses_only_overlaps_above_the_threshold() -> None:
    xyxy = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], dtype=np.float32)  # IoU exactly 1/3
    scores = np.array([0.9, 0.8], dtype=np.float32)
    assert nms(xyxy, scores, 1 / 3 + 1e-6).tolist() == [0, 1]
    assert nms(xyxy, scores, 0.3).tolist() == [0]


def test_nms_of_nothing_is_nothing() -> None:
    keep = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5)
    assert keep.tolist() == []


# --- HOG --------------------------------------------------------------------------------


def test_hog_finds_a_person_on_the_bus_photo(bus: np.ndarray) -> None:
    hog = HogPersonDetector()
    dets = hog.infer(bus)
    assert len(dets) >= 1
    assert hog.class_names[0] == "person"
    assert set(dets.class_id.tolist()) == {0}
    assert ((dets.confidence >= 0.3) & (dets.confidence <= 1.0)).all()
    # the left-most pedestrian, measured by hand on bus.jpg
    pedestrian = np.array([[50, 400, 215, 900]], dtype=np.float32)
    assert _iou(dets.xyxy.astype(np.float32), pedestrian).max() >= 0.3
    assert hog.model_id.startswith("builtin:opencv-hog-people-")


def test_hog_on_a_blank_frame_finds_nothing() -> None:
    dets = HogPersonDetector().infer(np.zeros((240, 320, 3), dtype=np.uint8))
    assert len(dets) == 0


@pytest.mark.parametrize("shape", [(48, 64, 3), (16, 16, 3), (480, 40, 3)])
def test_hog_on_a_frame_smaller_than_its_window_finds_nothing_and_lives(
    shape: tuple[int, int, int],
) -> None:
    """OpenCV's detectMultiScale kills the process (SIGSEGV) on a picture smaller than its
    64x128 window: a 64x48 camera crashed the sandboxed bench. Run apart, so that a crash
    fails this test rather than the test process."""
    code = (
        "import numpy as np; from kontur.worker.detectors import HogPersonDetector; "
        f"print(len(HogPersonDetector().infer(np.zeros({shape}, np.uint8))))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout.strip()) == (0, "0"), r.stderr[-500:]
