"""Motion gating on synthetic footage: a grey scene, sensor noise, and a bright square.

The "detector" of this synthetic world finds bright squares (thresholding plus connected
components), so crops, offsets and merging are exercised on a real computation.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import supervision as sv
import yaml

from kontur.config import MotionConfig, load_config
from kontur.errors import ConfigError
from kontur.worker.motion import Motion, MotionDetector, MotionGate, _uncut, plan_regions

W, H, SIDE = 320, 240, 30


class SquareDetector:
    """Finds bright blobs; counts what it was shown."""

    name, model_id, class_names = "squares", "test:squares", ("person",)

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def infer(self, frame: np.ndarray) -> sv.Detections:
        self.shapes.append(frame.shape)
        mask = (frame[..., 0] > 200).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes = [(x, y, x + w, y + h) for x, y, w, h, _ in stats[1:n]]
        if not boxes:
            return sv.Detections.empty()
        return sv.Detections(
            xyxy=np.asarray(boxes, dtype=np.float32),
            confidence=np.full(len(boxes), 0.9, dtype=np.float32),
            class_id=np.zeros(len(boxes), dtype=int),
        )


def _scene(squares: list[tuple[int, int]], seed: int, bright: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = np.clip(100 + bright + rng.normal(0, 2, (H, W, 1)), 0, 255).astype(np.uint8)
    frame = np.repeat(frame, 3, axis=2)
    for x, y in squares:
        frame[y : y + SIDE, x : x + SIDE] = 240
    return frame


def _touches(boxes: np.ndarray, x: int, y: int) -> bool:
    """Some motion box overlaps the square at (x, y).

    A flat square moving less than its side only differs at its leading and trailing edges,
    so the motion boxes are two strips; they must overlap the square, not contain it.
    """
    x_overlap = (boxes[:, 0] < x + SIDE) & (x < boxes[:, 2])
    y_overlap = (boxes[:, 1] < y + SIDE) & (y < boxes[:, 3])
    return bool((x_overlap & y_overlap).any())


def test_moving_square_is_motion() -> None:
    md = MotionDetector()
    first = md.detect(_scene([(20, 100)], seed=0))
    assert first.calibrating and len(first.boxes) == 0
    for i in range(1, 15):
        pos = (20 + 8 * i, 100)
        m = md.detect(_scene([pos], seed=i))
        assert not m.calibrating
        assert len(m.boxes) >= 1 and _touches(m.boxes, *pos), f"frame {i}: {m.boxes}"
        assert 0 < m.area < 0.1


def test_static_scene_gives_no_motion() -> None:
    md = MotionDetector()
    for i in range(20):
        m = md.detect(_scene([(150, 100)], seed=i))  # a square that never moves, and noise
        assert len(m.boxes) == 0 and m.area == 0.0
        assert plan_regions(m, (H, W, 3), md.params) == (None if i == 0 else ())


def test_full_frame_pass_happens_periodically_on_a_static_scene() -> None:
    det = SquareDetector()
    gate = MotionGate(det, MotionConfig(full_frame_every=5))
    found = [len(gate.infer(_scene([(150, 100)], seed=i))) for i in range(12)]
    # Frame 1 builds the background; then every 5th frame re-finds the square standing still.
    assert found == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]
    s = gate.stats
    assert (s.frames, s.full_frame_passes, s.idle_frames, s.detector_calls) == (12, 3, 9, 3)
    assert det.shapes == [(H, W, 3)] * 3
    assert s.analysed_ratio == pytest.approx(3 / 12)


def test_gate_detects_in_crops_and_maps_boxes_back() -> None:
    det = SquareDetector()
    gate = MotionGate(det, MotionConfig(full_frame_every=100))
    assert (gate.name, gate.model_id, gate.class_names) == (
        "squares+motion",
        "test:squares",
        ("person",),
    )
    for i in range(12):
        x, y = 20 + 8 * i, 100
        dets = gate.infer(_scene([(x, y)], seed=i))
        assert len(dets) == 1, f"frame {i}"
        np.testing.assert_allclose(dets.xyxy[0], [x, y, x + SIDE, y + SIDE])
    # Every frame after the first ran on one crop, never the whole frame.
    assert det.shapes[0] == (H, W, 3)
    assert all(s[0] < H or s[1] < W for s in det.shapes[1:])
    assert all(min(s[:2]) >= 128 for s in det.shapes[1:])  # min_crop: the model sees context
    assert gate.stats.detector_calls == 12 and gate.stats.full_frame_passes == 1
    assert gate.stats.analysed_ratio < 0.5


def test_two_movers_two_crops_merged() -> None:
    det = SquareDetector()
    gate = MotionGate(det, MotionConfig(full_frame_every=100, max_regions=2, min_crop=64))
    for i in range(6):
        a, b = (10 + 6 * i, 20), (260 - 6 * i, 190)
        dets = gate.infer(_scene([a, b], seed=i))
        got = sorted(map(tuple, dets.xyxy.tolist()))
        assert got == sorted([(a[0], a[1], a[0] + SIDE, a[1] + SIDE),
                              (b[0], b[1], b[0] + SIDE, b[1] + SIDE)])  # fmt: skip
    assert gate.stats.detector_calls == 1 + 5 * 2


def test_sudden_global_change_forces_a_full_frame_pass() -> None:
    det = SquareDetector()
    gate = MotionGate(det, MotionConfig(full_frame_every=100))
    gate.infer(_scene([(150, 100)], seed=0))
    gate.infer(_scene([(150, 100)], seed=1))
    assert gate.stats.full_frame_passes == 1
    gate.infer(_scene([(150, 100)], seed=2, bright=60))  # the lights come on
    assert gate.stats.full_frame_passes == 2


def _motion(*boxes: tuple[float, float, float, float], area: float = 0.01) -> Motion:
    return Motion(np.asarray(boxes, dtype=np.float32).reshape(-1, 4), area, calibrating=False)


def test_plan_regions_rules() -> None:
    p = MotionConfig(min_crop=64, margin=0.25, max_regions=2, full_frame_area=0.7)
    shape = (H, W, 3)
    assert plan_regions(Motion(np.zeros((0, 4)), 0.0, True), shape, p) is None  # calibrating
    assert plan_regions(_motion((0, 0, 10, 10), area=0.8), shape, p) is None  # lightning
    two = plan_regions(_motion((10, 10, 30, 50), (250, 150, 270, 190)), shape, p)
    assert two is not None and len(two) == 2
    for x1, y1, x2, y2 in two:
        assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H and min(x2 - x1, y2 - y1) >= 64
    # Near a corner the crop slides inside the frame and keeps its minimum size.
    assert plan_regions(_motion((0, 0, 8, 8)), shape, p) == ((0, 0, 64, 64),)
    # Overlapping grown boxes merge into one.
    assert plan_regions(_motion((100, 100, 120, 140), (125, 100, 145, 140)), shape, p) == (
        (78, 88, 167, 152),  # two 64x64 crops around x=110 and x=135
    )
    apart = _motion((100, 60, 120, 100), (180, 120, 200, 160))
    assert len(plan_regions(apart, shape, p) or ()) == 2
    one = plan_regions(apart, shape, p.model_copy(update={"max_regions": 1}))
    assert one == ((78, 48, 222, 172),)  # their union: 144x124, 23% of the frame
    big = p.model_copy(update={"max_regions": 1, "full_frame_area": 0.2})
    assert plan_regions(apart, shape, big) is None


def test_boxes_cut_by_an_inner_crop_edge_are_dropped() -> None:
    dets = sv.Detections(
        xyxy=np.asarray([[0, 10, 20, 40], [40, 10, 60, 40], [80, 10, 100, 40]], np.float32),
        confidence=np.full(3, 0.9, np.float32),
        class_id=np.zeros(3, dtype=int),
    )
    # Crop (50, 0)-(150, 100) of a 320x240 frame: left edge inside, top edge on the frame edge.
    assert _uncut(dets, (50, 0, 150, 100), W, H).tolist() == [False, True, False]
    # The same boxes in a crop on the frame's left edge: the left-cut box stays.
    assert _uncut(dets, (0, 0, 100, 100), W, H).tolist() == [True, True, False]


def test_motion_gating_is_a_camera_setting() -> None:
    cfg = load_config()
    assert cfg.cameras[0].motion_gating is False
    assert cfg.worker.motion == MotionConfig()


def _defaults() -> dict[str, Any]:
    raw = yaml.safe_load(resources.files("kontur").joinpath("defaults/kontur.yaml").read_text())
    assert isinstance(raw, dict)
    return raw


@pytest.mark.parametrize(
    ("section", "key", "value", "fragment"),
    [
        ("camera", "motion_gating", "sometimes", "key cameras.0.motion_gating"),
        ("motion", "max_regions", 0, "key worker.motion.max_regions"),
        ("motion", "frame_alpha", 2, "key worker.motion.frame_alpha"),
    ],
    ids=["camera_flag_not_bool", "zero_regions", "alpha_above_one"],
)
def test_bad_motion_settings_are_refused(
    tmp_path: Path, section: str, key: str, value: object, fragment: str
) -> None:
    raw = _defaults()
    target = raw["cameras"][0] if section == "camera" else raw["worker"].setdefault("motion", {})
    target[key] = value
    path = tmp_path / "kontur.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert fragment in str(exc.value)


def test_motion_settings_are_read(tmp_path: Path) -> None:
    raw = _defaults()
    raw["cameras"][0]["motion_gating"] = True
    raw["worker"]["motion"] = {"threshold": 40, "max_regions": 3}
    path = tmp_path / "kontur.yaml"
    path.write_text(yaml.safe_dump(raw))
    cfg = load_config(path)
    assert cfg.cameras[0].motion_gating is True
    assert (cfg.worker.motion.threshold, cfg.worker.motion.max_regions) == (40, 3)
    assert cfg.worker.motion.min_crop == MotionConfig().min_crop
