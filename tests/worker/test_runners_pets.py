"""Person precision / recall of each release format on PETS09-S2L1 against MOT15 gt.

Every 10th frame (80 of 795) keeps this to a few seconds; on that subset the figures are
within 0.04 of the whole clip's (measured both ways, see the table in each case).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from kontur.release.manifest import ReleaseFiles, preset
from kontur.worker.runners import build_detector

STEP = 10
PETS_SCALE = 0.625  # gt is in 768x576, the video 480x360
SSD_IR = "pedestrian-detection-adas-0002"

Frames = list[tuple[int, np.ndarray]]
Gt = dict[int, np.ndarray]


@pytest.fixture(scope="module")
def frames(shared_file: Callable[[str], Path]) -> Frames:
    """(MOT frame number, BGR frame) for every STEP-th frame of the clip."""
    out: Frames = []
    with av.open(str(shared_file("video/pets09_s2l1_480x360.avi"))) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % STEP == 0:
                out.append((index + 1, frame.to_ndarray(format="bgr24")))  # MOT counts from 1
    assert len(out) == 80
    return out


@pytest.fixture(scope="module")
def gt(shared_file: Callable[[str], Path]) -> Gt:
    """Ground-truth person boxes (xyxy, video pixels) per MOT frame number."""
    rows = np.loadtxt(shared_file("mot15/PETS09-S2L1/gt/gt.txt"), delimiter=",", usecols=range(6))
    out: Gt = {}
    for frame in np.unique(rows[:, 0]).astype(int):
        r = rows[rows[:, 0] == frame]
        xyxy = np.column_stack([r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5]])
        out[int(frame)] = xyxy * PETS_SCALE
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _matches(pred: np.ndarray, truth: np.ndarray) -> int:
    """Greedy one-to-one matching at IoU >= 0.5, best-scored prediction first."""
    if not len(pred) or not len(truth):
        return 0
    matched: set[int] = set()
    for row in _iou(pred, truth):
        for j in np.argsort(-row):
            if row[j] < 0.5:
                break
            if int(j) not in matched:
                matched.add(int(j))
                break
    return len(matched)


def _precision_recall(
    fmt: str, files: dict[str, bytes], release_files: ReleaseFiles, frames: Frames, gt: Gt
) -> tuple[float, float]:
    manifest = preset(fmt, name=fmt, version=1, files=release_files)
    det = build_detector(manifest, files, model_id="x", intra_op_threads=2)
    person = det.class_names.index("person")
    tp = fp = fn = 0
    for number, frame in frames:
        dets = det.infer(frame)
        assert dets.class_id is not None and dets.confidence is not None
        mine = dets.class_id == person
        pred = dets.xyxy[mine][np.argsort(-dets.confidence[mine])]
        truth = gt.get(number, np.zeros((0, 4)))
        hit = _matches(pred, truth)
        tp, fp, fn = tp + hit, fp + len(pred) - hit, fn + len(truth) - hit
    return tp / (tp + fp), tp / (tp + fn)


def _onnx(shared_file: Callable[[str], Path], name: str) -> tuple[dict[str, bytes], ReleaseFiles]:
    files = {"model.onnx": shared_file(f"models/{name}").read_bytes()}
    return files, ReleaseFiles(runtime="onnx", model="model.onnx")


def test_yolov8_int8_matches_the_reference_figures(
    shared_file: Callable[[str], Path], frames: Frames, gt: Gt
) -> None:
    # MANIFEST (all 795 frames, conf 0.25): P 0.88 / R 0.91.
    # Measured here: all frames P 0.915 / R 0.909; every 10th frame P 0.916 / R 0.910.
    p, r = _precision_recall("yolov8", *_onnx(shared_file, "yolov8n_int8.onnx"), frames, gt)
    assert p == pytest.approx(0.88, abs=0.05), f"P {p:.3f}"
    assert r == pytest.approx(0.91, abs=0.05), f"R {r:.3f}"


def test_yolox_matches_the_reference_figures(
    shared_file: Callable[[str], Path], frames: Frames, gt: Gt
) -> None:
    # MANIFEST (all 795 frames, conf 0.3): P 0.75 / R 0.90.
    # Measured here: all frames P 0.779 / R 0.902; every 10th frame P 0.776 / R 0.906.
    p, r = _precision_recall("yolox", *_onnx(shared_file, "yolox_nano.onnx"), frames, gt)
    assert p == pytest.approx(0.75, abs=0.05), f"P {p:.3f}"
    assert r == pytest.approx(0.90, abs=0.05), f"R {r:.3f}"


def test_pedestrian_ssd_stays_above_its_measured_floor(
    shared_file: Callable[[str], Path], frames: Frames, gt: Gt
) -> None:
    # No reference figure. Measured here at conf 0.5: all frames P 0.929 / R 0.646; every
    # 10th frame P 0.941 / R 0.685. The ADAS SSD misses the small, distant walkers (recall),
    # but what it reports is right (precision). Floors a little below the subset figures.
    files = {
        "model.xml": shared_file(f"models/{SSD_IR}.xml").read_bytes(),
        "model.bin": shared_file(f"models/{SSD_IR}.bin").read_bytes(),
    }
    release_files = ReleaseFiles(runtime="openvino", model="model.xml", weights="model.bin")
    p, r = _precision_recall("ssd", files, release_files, frames, gt)
    assert p >= 0.90, f"P {p:.3f}"
    assert r >= 0.63, f"R {r:.3f}"
