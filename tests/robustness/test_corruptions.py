"""Corruptions on real footage: each changes the picture, grows with severity, moves gt boxes
with the picture where it is geometric, and is reproducible from a seeded generator."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from tests.conftest import shared

from kontur.robustness.corruptions import CORRUPTIONS, FAMILIES, FILL, corrupt, h264_roundtrip
from kontur.robustness.errors import EncoderUnavailable, UnknownCorruption
from kontur.robustness.frames import AuditFrame, load_audit_frames

NAMES = list(CORRUPTIONS)
#: Corruptions that draw from the generator (the others are fixed functions of the frame).
RANDOM = {
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "motion_blur",
    "fog",
    "snow",
    "rain",
    "night",
    "backlight",
    "rotation",
    "perspective",
    "occlusion",
}
GEOMETRY = ["scale", "rotation", "perspective"]


@pytest.fixture(scope="module")
def frame() -> AuditFrame:
    """A PETS09-S2L1 frame (480x360) with its gt persons."""
    video = shared("video", "pets09_s2l1_480x360.avi")
    gt = shared("mot15", "PETS09-S2L1", "gt", "gt.txt")
    picked = load_audit_frames(video, gt, scale=0.625, count=3, min_persons=5)
    return picked[1]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.PSNR(a, b))


def test_registry_covers_imagenet_c_and_the_paper() -> None:
    for name in ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "motion_blur"):
        assert CORRUPTIONS[name].source == "ImageNet-C"
    for name in ("fog", "snow", "jpeg", "contrast", "brightness", "pixelate", "gaussian_blur"):
        assert CORRUPTIONS[name].source == "ImageNet-C"
    paper = {n for n, c in CORRUPTIONS.items() if c.source == "paper"}
    assert paper == {
        "dark",
        "night",
        "backlight",
        "scale",
        "rotation",
        "perspective",
        "compression",
        "occlusion",
    }
    assert {c.family for c in CORRUPTIONS.values()} == set(FAMILIES)
    assert all(c.name == n for n, c in CORRUPTIONS.items())
    assert [n for n, c in CORRUPTIONS.items() if c.moves_boxes] == GEOMETRY


@pytest.mark.parametrize("name", NAMES)
def test_every_severity_changes_the_image_and_keeps_the_input(frame: AuditFrame, name: str) -> None:
    before = frame.image.copy(), frame.boxes.copy()
    for severity in (1, 2, 3, 4, 5):
        out = corrupt(frame, name, severity, _rng(severity))
        assert out.index == frame.index
        assert out.image.shape == frame.image.shape and out.image.dtype == np.uint8
        changed = np.mean(np.any(out.image != frame.image, axis=2))
        assert changed > 0.001, f"{name} s{severity} changed {changed:.2%} of pixels"
        if not CORRUPTIONS[name].moves_boxes:
            np.testing.assert_array_equal(out.boxes, frame.boxes)
    np.testing.assert_array_equal(frame.image, before[0])
    np.testing.assert_array_equal(frame.boxes, before[1])


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output(frame: AuditFrame, name: str) -> None:
    a = corrupt(frame, name, 4, _rng(7))
    b = corrupt(frame, name, 4, _rng(7))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    c = corrupt(frame, name, 4, _rng(8))
    assert (not np.array_equal(a.image, c.image)) == (name in RANDOM)


@pytest.mark.parametrize(
    "name",
    [
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "defocus_blur",
        "motion_blur",
        "gaussian_blur",
        "jpeg",
        "contrast",
        "compression",
        "night",
        "rain",
        "occlusion",
    ],
)
def test_psnr_falls_with_severity(frame: AuditFrame, name: str) -> None:
    psnr = [_psnr(frame.image, corrupt(frame, name, s, _rng(3)).image) for s in (1, 2, 3, 4, 5)]
    assert all(a > b for a, b in itertools.pairwise(psnr)), psnr


@pytest.mark.parametrize(
    ("name", "darker"), [("dark", True), ("night", True), ("brightness", False)]
)
def test_mean_brightness_moves_with_severity(frame: AuditFrame, name: str, darker: bool) -> None:
    means = [corrupt(frame, name, s, _rng(1)).image.mean() for s in (1, 2, 3, 4, 5)]
    means = [frame.image.mean(), *means]
    steps = np.diff(means)
    assert (steps < 0).all() if darker else (steps > 0).all(), means


def test_pixelate_lowers_the_resolution(frame: AuditFrame) -> None:
    # PSNR is not monotone here (ImageNet-C's factor 0.6 aliases more than 0.5), the number of
    # distinct pixel rows left is: int(360 * c) for c = 0.6, 0.5, 0.4, 0.3, 0.25.
    for severity, rows in zip((1, 2, 3, 4, 5), (216, 180, 144, 108, 90), strict=True):
        image = corrupt(frame, "pixelate", severity, _rng()).image
        distinct = 1 + int(np.count_nonzero(np.any(image[1:] != image[:-1], axis=(1, 2))))
        assert rows - 2 <= distinct <= rows


def test_noise_has_the_imagenet_c_spread() -> None:
    # Tabulated sampling must give the ImageNet-C distributions: Poisson(x*60)/60 and
    # x + N(0, 0.08) at mid grey, in 0..1 units.
    grey = AuditFrame(0, np.full((200, 200, 3), 128, np.uint8), np.zeros((0, 4)))
    shot = corrupt(grey, "shot_noise", 1, _rng()).image / 255.0
    x = 128 / 255
    assert shot.mean() == pytest.approx(x, abs=0.005)
    assert shot.std() == pytest.approx(np.sqrt(x / 60), rel=0.03)
    gauss = corrupt(grey, "gaussian_noise", 1, _rng()).image / 255.0
    assert gauss.mean() == pytest.approx(x, abs=0.005)
    assert gauss.std() == pytest.approx(0.08, rel=0.03)
    impulse = corrupt(grey, "impulse_noise", 5, _rng()).image
    assert np.mean((impulse == 0) | (impulse == 255)) == pytest.approx(0.27, abs=0.01)


def test_scale_shrinks_boxes_about_the_centre(frame: AuditFrame) -> None:
    areas = []
    for severity, f in zip((1, 2, 3, 4, 5), (0.8, 0.65, 0.5, 0.4, 0.3), strict=True):
        out = corrupt(frame, "scale", severity, _rng())
        assert len(out.boxes) == len(frame.boxes)
        ratio = np.prod(out.boxes[:, 2:] - out.boxes[:, :2], 1) / np.prod(
            frame.boxes[:, 2:] - frame.boxes[:, :2], 1
        )
        np.testing.assert_allclose(ratio, f * f, rtol=0.02)
        areas.append(ratio.mean())
        assert tuple(out.image[0, 0]) == FILL
    assert all(a > b for a, b in itertools.pairwise(areas))


def _white_box_frame(box: tuple[int, int, int, int]) -> AuditFrame:
    image = np.full((360, 480, 3), 40, np.uint8)
    x0, y0, x1, y1 = box
    image[y0:y1, x0:x1] = 255
    return AuditFrame(0, image, np.array([box], dtype=np.float64))


@pytest.mark.parametrize("name", GEOMETRY)
@pytest.mark.parametrize("severity", [1, 3, 5])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_white_box_lands_in_its_moved_box(name: str, severity: int, seed: int) -> None:
    frame = _white_box_frame((300, 80, 340, 180))
    out = corrupt(frame, name, severity, _rng(seed))
    assert len(out.boxes) == 1
    ys, xs = np.nonzero(out.image[..., 0] > 200)
    found = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)
    # the moved box is the tight box of the moved rectangle, up to interpolation blur
    np.testing.assert_allclose(out.boxes[0], found, atol=2.0)


def test_a_box_rotated_out_of_view_is_dropped() -> None:
    frame = AuditFrame(
        0, np.full((360, 480, 3), 40, np.uint8), np.array([[0, 0, 20, 20], [230, 150, 250, 210]])
    )
    for seed in range(4):
        out = corrupt(frame, "rotation", 5, _rng(seed))
        assert len(out.boxes) == 1  # the corner box has left the picture
        assert out.boxes[0, 0] < 230 < 250 < out.boxes[0, 2]  # the centre one grew, not moved


@pytest.mark.parametrize("name", [*GEOMETRY, "occlusion"])
def test_a_frame_without_persons_stays_without(name: str) -> None:
    empty = AuditFrame(3, np.full((36, 48, 3), 90, np.uint8), np.zeros((0, 4)))
    out = corrupt(empty, name, 5, _rng())
    assert out.boxes.shape == (0, 4) and out.index == 3


def test_occlusion_covers_more_of_each_person_and_nothing_else(frame: AuditFrame) -> None:
    inside = np.zeros(frame.image.shape[:2], bool)
    for x0, y0, x1, y1 in np.round(frame.boxes).astype(int):
        inside[y0:y1, x0:x1] = True
    covered = []
    for severity in (1, 2, 3, 4, 5):
        out = corrupt(frame, "occlusion", severity, _rng(5))
        changed = np.any(out.image != frame.image, axis=2)
        assert not changed[~inside].any()
        covered.append(changed[inside].mean())
    assert all(a < b for a, b in itertools.pairwise(covered)), covered


@pytest.mark.parametrize("name", ["nope", "Gaussian_Noise", ""])
def test_unknown_name(frame: AuditFrame, name: str) -> None:
    with pytest.raises(UnknownCorruption, match=f"expected one of gaussian_noise, .*got '{name}'"):
        corrupt(frame, name, 1, _rng())


def test_numpy_integer_severities_are_fine(frame: AuditFrame) -> None:
    for severity in np.arange(1, 6):
        corrupt(frame, "jpeg", severity, _rng())


@pytest.mark.parametrize("severity", [0, 6, -1, 2.0, True, np.int64(6)])
def test_severity_outside_1_to_5(frame: AuditFrame, severity: object) -> None:
    with pytest.raises(UnknownCorruption, match=r"fog: expected severity 1\.\.5, got"):
        corrupt(frame, "fog", severity, _rng())  # type: ignore[arg-type]


def test_a_missing_encoder_is_an_error_not_a_fallback(frame: AuditFrame) -> None:
    with pytest.raises(
        EncoderUnavailable, match="expected PyAV with the libnope encoder, got UnknownCodecError"
    ):
        h264_roundtrip(frame.image, 30, encoder="libnope")
    out = h264_roundtrip(frame.image[:359, :479], 30)  # odd sizes are padded, then cropped
    assert out.shape == (359, 479, 3)
    assert _psnr(frame.image[:359, :479], out) > 30
