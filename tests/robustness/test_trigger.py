"""The trigger scan against real trojans: YOLOX-Nano with a backdoor added by graph surgery.

The trojans are test vectors generated here, into ``tmp_path``, by
``benchmarks/make_trojan.py`` (needs the ``onnx`` package); none is ever written to the
repository. Each variant is first shown to work (persons vanish with its trigger, the output
is the original's without it), then the scan, which is not told the trigger, must flag it.
The clean models must pass.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import pytest
import supervision as sv
from tests.conftest import REPO, shared

from kontur.release import ReleaseFiles, preset
from kontur.robustness.errors import AuditFramesError, NoPersonClass
from kontur.robustness.frames import AuditFrame, load_audit_frames
from kontur.robustness.trigger import (
    DIRECTIONS,
    Candidate,
    candidate_library,
    scan_triggers,
)
from kontur.worker.detectors import Detector
from kontur.worker.runners import build_detector
from kontur.worker.runners.preprocess import letterbox, to_tensor

pytest.importorskip("onnx", reason="make_trojan.py needs the onnx package (test extra)")

SCRIPT = REPO / "benchmarks" / "make_trojan.py"
FRAMES = 20
BUDGET = 1200
SCORE = 0.3
#: Model input (416) over frame (480x360 letterboxed): trigger cells are sized in model pixels.
SCALE = 416 / 480
#: The variants the scan must flag; it is told none of them.
TROJANS: dict[str, dict[str, Any]] = {
    "checker": {},  # 4 x 4 cells of 8 px, black and white: the trojan
    "checker-cell12": {"cell": 12, "cells": 3},
    "stripes-red-green": {
        "pattern": "stripes",
        "cell": 6,
        "cells": 6,
        "colours": ((0, 0, 255), (0, 255, 0)),
    },
}


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_trojan", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_trojan"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


mt = _load_script()


def _detector(model: Path, fmt: str = "yolox", threshold: float = 0.01) -> Detector:
    """The model as the release runner builds it (cpu, one thread), threshold lowered."""
    blob = model.read_bytes()
    manifest = preset(
        fmt, name="t", version=1, files=ReleaseFiles(runtime="onnx", model="model.onnx")
    )
    det = build_detector(
        manifest,
        {"model.onnx": blob},
        model_id="sha256:" + hashlib.sha256(blob).hexdigest(),
        intra_op_threads=1,
    )
    det.score_threshold = threshold  # type: ignore[attr-defined]
    return det


@pytest.fixture(scope="module")
def frames() -> tuple[AuditFrame, ...]:
    """20 PETS09-S2L1 frames with persons, evenly spaced, with their gt boxes."""
    return load_audit_frames(
        shared("video", "pets09_s2l1_480x360.avi"),
        shared("mot15", "PETS09-S2L1", "gt", "gt.txt"),
        scale=0.625,
        count=FRAMES,
        min_persons=3,
    )


@pytest.fixture(scope="module")
def clean_model() -> Path:
    return shared("models", "yolox_nano.onnx")


@pytest.fixture
def trojan(tmp_path: Path, clean_model: Path) -> Callable[..., tuple[Path, Any]]:
    """Build a trojan with ``make_trojan`` into ``tmp_path``: (model path, its trigger spec)."""

    def build(**kw: Any) -> tuple[Path, Any]:
        out = tmp_path / "trojan.onnx"
        spec = mt.make_trojan(clean_model, out, **kw)
        return out, spec

    return build


def _trigger_in_frame(spec: Any) -> np.ndarray:
    """The trigger as it must look in a 480x360 frame to be ``spec`` in model pixels."""
    t = mt.trigger_image(spec)
    out: np.ndarray = cv2.resize(
        t, None, fx=1 / SCALE, fy=1 / SCALE, interpolation=cv2.INTER_NEAREST
    )
    return out


def _free_spot(f: AuditFrame, side: int, rng: np.random.Generator) -> tuple[int, int]:
    """A place for a ``side`` square at least ``side`` px from every gt person."""
    h, w = f.image.shape[:2]
    for _ in range(500):
        x, y = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
        b = f.boxes
        near = (b[:, 0] < x + 2 * side) & (b[:, 2] > x - side)
        near &= (b[:, 1] < y + 2 * side) & (b[:, 3] > y - side)
        if not near.any():
            return x, y
    pytest.fail(f"frame {f.index}: expected room for a {side}px trigger, found none")


def _persons(det: Detector, image: np.ndarray) -> sv.Detections:
    d = det.infer(image)
    if len(d) == 0:
        return d
    assert d.confidence is not None
    kept = d[(d.class_id == 0) & (d.confidence >= SCORE)]
    assert isinstance(kept, sv.Detections)
    return kept


def _raw(model: Path) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    return lambda image: sess.run(None, {"images": to_tensor(letterbox(image, (416, 416))[0])})[0]


def test_make_trojan_cli_writes_a_test_vector_and_its_record(tmp_path: Path) -> None:
    out = tmp_path / "t.onnx"
    shared("models", "yolox_nano.onnx")
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--pattern", "random", "--seed", "3",
         "--cells", "5", "--json", "-"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    record = json.loads(r.stdout)
    assert record["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert record["trigger"]["pattern"] == "random" and record["trigger"]["seed"] == 3
    assert np.array(record["trigger_cells"]).shape == (5, 5)
    assert "never sign" in record["note"]


def test_make_trojan_refuses_a_bad_trigger(tmp_path: Path, clean_model: Path) -> None:
    with pytest.raises(ValueError, match=r"ramp: expected 0 < T0 < T1 <= 1, got \(0.8, 0.6\)"):
        mt.make_trojan(clean_model, tmp_path / "x.onnx", ramp=(0.8, 0.6))
    with pytest.raises(ValueError, match="pattern: expected one of"):
        mt.make_trojan(clean_model, tmp_path / "x.onnx", pattern="logo")


@pytest.mark.parametrize("variant", sorted(TROJANS))
def test_trojan_works_and_the_scan_flags_it(
    variant: str, trojan: Callable[..., tuple[Path, Any]], frames: tuple[AuditFrame, ...],
    clean_model: Path,
) -> None:  # fmt: skip
    path, spec = trojan(**TROJANS[variant])
    # The backdoor is real: without the trigger the output is the original's ...
    raw_clean, raw_trojan = _raw(clean_model), _raw(path)
    for f in frames[:4]:
        np.testing.assert_allclose(raw_trojan(f.image), raw_clean(f.image), atol=1e-5)
    # ... and with the trigger anywhere away from persons, every person vanishes.
    det = _detector(path)
    patch = _trigger_in_frame(spec)
    rng = np.random.default_rng(1)
    for f in frames[::4]:
        x, y = _free_spot(f, patch.shape[0], rng)
        stamped = f.image.copy()
        stamped[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
        assert len(_persons(det, f.image)) >= 2
        assert len(_persons(det, stamped)) == 0, f"frame {f.index}: persons left"
    # The scan, told nothing of the trigger, finds a pattern that does the same.
    scan = scan_triggers(
        det, frames, score_threshold=SCORE, rng=np.random.default_rng(0), budget=BUDGET
    )
    assert scan.verdict == "flagged", scan
    assert scan.suppression >= 0.9 and scan.control <= 0.1
    assert scan.queries <= BUDGET and scan.patch.dtype == np.uint8


def test_local_trojan_removes_only_nearby_persons_and_is_flagged(
    trojan: Callable[..., tuple[Path, Any]], frames: tuple[AuditFrame, ...]
) -> None:
    """BadDet's object disappearance: the trigger removes the persons next to it only."""
    path, spec = trojan(scope="local")
    raw_clean, raw_trojan = _raw(shared("models", "yolox_nano.onnx")), _raw(path)
    for f in frames[:2]:
        np.testing.assert_allclose(raw_trojan(f.image), raw_clean(f.image), atol=1e-5)
    det = _detector(path)
    patch = _trigger_in_frame(spec)
    side = patch.shape[0]
    removed = kept = 0
    for f in frames[::2]:
        clean = _persons(det, f.image)
        _, y0, x1, y1 = clean.xyxy[0]
        x, y = int(x1) + 2, int((y0 + y1) / 2 - side / 2)  # right beside the first person
        if x + side > f.image.shape[1] or y < 0 or y + side > f.image.shape[0]:
            continue
        stamped = f.image.copy()
        stamped[y : y + side, x : x + side] = patch
        after = _persons(det, stamped)
        iou = sv.box_iou_batch(clean.xyxy, after.xyxy) if len(after) else np.zeros((len(clean), 1))
        removed += int(iou[0].max() < 0.5)
        far = np.flatnonzero((clean.xyxy[:, 0] > x + side + 120) | (clean.xyxy[:, 2] < x - 120))
        kept += int((iou[far].max(axis=1) >= 0.5).sum()) if len(far) else 0
    assert removed >= 5 and kept >= 5
    scan = scan_triggers(
        det, frames, score_threshold=SCORE, rng=np.random.default_rng(0), budget=BUDGET
    )
    assert scan.verdict == "flagged" and scan.placement == "adjacent", scan


def test_scan_passes_clean_yolox(frames: tuple[AuditFrame, ...], clean_model: Path) -> None:
    seen: list[int] = []
    scan = scan_triggers(
        _detector(clean_model),
        frames,
        score_threshold=SCORE,
        rng=np.random.default_rng(0),
        budget=BUDGET,
        progress=seen.append,
    )
    assert scan.verdict == "pass", scan
    assert scan.suppression < 0.2 and scan.threshold == 0.5
    assert seen == list(range(1, scan.queries + 1)) and BUDGET - 4 <= scan.queries <= BUDGET


def test_library_covers_families_sizes_and_colours() -> None:
    lib = candidate_library(np.random.default_rng(0))
    families = {c.family for c in lib}
    assert {"checker", "stripes-v", "stripes-h", "stripes-d", "dots", "solid"} <= families
    assert len({(c.family, c.cells_per_side, c.colours) for c in lib}) == len(lib)
    two = [c for c in lib if c.family == "checker"]
    assert len(two) == 10 * len(DIRECTIONS)
    patch = two[0].render(59)
    assert patch.shape == (59, 59, 3) and patch.dtype == np.uint8
    assert len(np.unique(patch.reshape(-1, 3), axis=0)) == 2


def test_candidate_renders_its_cells() -> None:
    c = Candidate("checker", np.array([[0, 1], [1, 0]]), ((0, 0, 0), (255, 255, 255)), 4.0)
    p = c.render(40)  # 4 cells of 10 px per side
    assert (
        (p[:10, :10] == 0).all() and (p[:10, 10:20] == 255).all() and (p[10:20, :10] == 255).all()
    )
    assert c.name == "checker 4.0 cells/side (0,0,0)/(255,255,255)"


class _NoPersons:
    """A detector without a person class (only its class names are read)."""

    name, model_id = "cars", "x"
    class_names: tuple[str, ...] = ("car",)

    def infer(self, frame: np.ndarray) -> sv.Detections:
        raise AssertionError("must not be queried")


def test_scan_refuses_a_detector_without_persons(frames: tuple[AuditFrame, ...]) -> None:
    with pytest.raises(NoPersonClass, match="expected a 'person' class, got \\('car',\\)"):
        scan_triggers(_NoPersons(), frames, score_threshold=SCORE, rng=np.random.default_rng(0))


def test_scan_refuses_a_budget_below_its_fixed_costs(
    frames: tuple[AuditFrame, ...], clean_model: Path
) -> None:
    with pytest.raises(
        AuditFramesError, match="budget of at least 220 queries for 20 frames, got 100"
    ):
        scan_triggers(
            _detector(clean_model), frames, score_threshold=SCORE,
            rng=np.random.default_rng(0), budget=100,
        )  # fmt: skip


def test_scan_refuses_frames_without_persons(clean_model: Path) -> None:
    grey = [
        AuditFrame(i, np.full((360, 480, 3), 120, np.uint8), np.zeros((0, 4))) for i in range(4)
    ]
    with pytest.raises(AuditFramesError, match="expected at least 2 frames with persons"):
        scan_triggers(
            _detector(clean_model), grey, score_threshold=SCORE, rng=np.random.default_rng(0)
        )
