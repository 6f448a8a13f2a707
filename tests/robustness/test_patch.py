"""The black-box adversarial patch on real footage with a real detector (YOLOX-Nano, PETS09)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest
import supervision as sv
from tests.conftest import shared

from kontur.release import ReleaseFiles, preset
from kontur.robustness.errors import AuditFramesError
from kontur.robustness.frames import AuditFrame, load_audit_frames
from kontur.robustness.patch import (
    PALETTE,
    TORSO,
    PatchResult,
    apply_patch,
    attack_patch,
    placements,
)
from kontur.worker.detectors import Detector
from kontur.worker.runners import build_detector

BUDGET = 400
SEARCH, TEST = 4, 20


class Recorder:
    """The real detector, noting which audit frame each image it is shown was made from.

    A patched image keeps every pixel of its frame outside the small patches, so the frame
    it shares most pixels with is its source.
    """

    def __init__(self, inner: Detector, frames: Sequence[AuditFrame]) -> None:
        self.inner = inner
        self.class_names = inner.class_names
        self.name, self.model_id = "recorder", inner.model_id
        self.frames = frames
        self.seen: list[tuple[int, float]] = []

    def infer(self, frame: np.ndarray) -> sv.Detections:
        same = [float(np.mean(frame == f.image)) for f in self.frames]
        best = int(np.argmax(same))
        self.seen.append((self.frames[best].index, same[best]))
        return self.inner.infer(frame)


@pytest.fixture(scope="module")
def yolox() -> tuple[Detector, float]:
    """YOLOX-Nano as the release runner builds it, threshold lowered to 0.01."""
    blob = shared("models", "yolox_nano.onnx").read_bytes()
    manifest = preset(
        "yolox", name="t", version=1, files=ReleaseFiles(runtime="onnx", model="model.onnx")
    )
    det = build_detector(
        manifest,
        {"model.onnx": blob},
        model_id="sha256:" + hashlib.sha256(blob).hexdigest(),
        intra_op_threads=1,
    )
    own = float(det.score_threshold)  # type: ignore[attr-defined]
    det.score_threshold = 0.01  # type: ignore[attr-defined]
    return det, own


@pytest.fixture(scope="module")
def frames() -> tuple[list[AuditFrame], list[AuditFrame]]:
    """Search frames from the first half of PETS09-S2L1, test frames from the second."""
    got = load_audit_frames(
        shared("video", "pets09_s2l1_480x360.avi"),
        shared("mot15", "PETS09-S2L1", "gt", "gt.txt"),
        scale=0.625,
        count=40,
        min_persons=4,
    )
    return list(got[:16:4]), list(got[20:40])


@pytest.fixture(scope="module")
def attacked(
    yolox: tuple[Detector, float], frames: tuple[list[AuditFrame], list[AuditFrame]]
) -> tuple[PatchResult, Recorder]:
    det, own = yolox
    search, test = frames
    spy = Recorder(det, [*search, *test])
    result = attack_patch(
        spy,
        search,
        test,
        score_threshold=own,
        queries=BUDGET,
        rng=np.random.default_rng(1),
        rel_size=0.35,
    )
    return result, spy


def test_patch_beats_a_control_patch_of_the_same_size_and_places(
    attacked: tuple[PatchResult, Recorder],
) -> None:
    result, _ = attacked
    assert result.objective_end < result.objective_start
    assert result.recall_patch < result.recall_control
    assert result.drop == pytest.approx(result.recall_control - result.recall_patch)
    assert result.recall_clean > 0.8  # YOLOX-Nano finds these persons unpatched


def test_search_spends_the_budget_on_search_frames_and_measures_on_test_frames(
    attacked: tuple[PatchResult, Recorder], frames: tuple[list[AuditFrame], list[AuditFrame]]
) -> None:
    result, spy = attacked
    search, test = frames
    assert BUDGET - SEARCH < result.queries <= BUDGET
    assert len(spy.seen) == result.queries + 3 * TEST
    assert min(share for _, share in spy.seen) > 0.9  # only the patches differ
    searched = {index for index, _ in spy.seen[: result.queries]}
    measured = [index for index, _ in spy.seen[result.queries :]]
    assert searched == {f.index for f in search}
    assert sorted(measured) == sorted(3 * [f.index for f in test])
    assert result.train_frames == tuple(f.index for f in search)
    assert result.test_frames == tuple(f.index for f in test)
    assert result.persons == sum(len(f.boxes) for f in test)


def test_patch_is_printable(attacked: tuple[PatchResult, Recorder]) -> None:
    result, _ = attacked
    for patch in (result.patch, result.control):
        assert patch.dtype == np.uint8 and patch.shape == (8, 8, 3)
        assert (patch[..., None, :] == PALETTE).all(axis=-1).any(axis=-1).all()
    assert not np.array_equal(result.patch, result.control)


def test_same_seed_same_result(
    yolox: tuple[Detector, float], frames: tuple[list[AuditFrame], list[AuditFrame]]
) -> None:
    det, own = yolox
    search, test = frames[0][:2], frames[1][:2]
    runs = [
        attack_patch(
            det,
            search,
            test,
            score_threshold=own,
            queries=12,
            rng=np.random.default_rng(3),
        )
        for _ in range(2)
    ]
    assert np.array_equal(runs[0].patch, runs[1].patch)
    assert runs[0].recall_patch == runs[1].recall_patch
    assert runs[0].objective_end == runs[1].objective_end


def test_frames_without_persons_are_refused(
    yolox: tuple[Detector, float], frames: tuple[list[AuditFrame], list[AuditFrame]]
) -> None:
    det, own = yolox
    empty = [AuditFrame(f.index, f.image, np.zeros((0, 4))) for f in frames[0]]
    with pytest.raises(AuditFramesError, match="expected ground-truth persons in the search"):
        attack_patch(
            det,
            empty,
            frames[1],
            score_threshold=own,
            queries=100,
            rng=np.random.default_rng(0),
        )


def test_a_frame_in_both_sets_is_refused(
    yolox: tuple[Detector, float], frames: tuple[list[AuditFrame], list[AuditFrame]]
) -> None:
    det, own = yolox
    search, test = frames
    with pytest.raises(AuditFramesError, match="expected disjoint train and test frames"):
        attack_patch(
            det,
            search,
            [*test, search[-1]],
            score_threshold=own,
            queries=100,
            rng=np.random.default_rng(0),
        )


def test_a_budget_below_two_passes_is_refused(
    yolox: tuple[Detector, float], frames: tuple[list[AuditFrame], list[AuditFrame]]
) -> None:
    det, own = yolox
    with pytest.raises(AuditFramesError, match=r"at least two passes .* got 7"):
        attack_patch(
            det,
            *frames,
            score_threshold=own,
            queries=7,
            rng=np.random.default_rng(0),
        )


def test_patch_lands_on_the_torso_at_its_size() -> None:
    box = np.array([[40.0, 20.0, 60.0, 70.0]])  # 20 x 50 px person
    where = placements(box, 0.32, None)
    assert where.tolist() == [[50.0, 20.0 + TORSO * 50, 16.0, 0.0, 1.0]]
    image = np.zeros((100, 100, 3), np.uint8)
    worn = apply_patch(image, np.full((8, 8, 3), 255, np.uint8), where)
    ys, xs = np.nonzero(worn[..., 0] > 127)
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (42, 58, 32, 48)
    assert not image.any()  # the input is not changed
