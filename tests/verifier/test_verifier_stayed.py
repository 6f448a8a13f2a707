"""A settled track dropped while the pixels under its box stayed unchanged (ADR 0025).

No background model is involved: the check must work on a handheld camera and right after a
cut, where :mod:`kontur.verifier.vanished` abstains. Synthetic textured pictures pin the rules
down; a whole :class:`~kontur.verifier.Verifier` shows the wiring: a sure track dropped over
an unchanged picture disagrees within a second, a track whose object left does not, and an
unsure track never starts the check.
"""

from __future__ import annotations

import numpy as np
import pytest
from verifier_sim import person, track_frame

from kontur.config import VerifierConfig
from kontur.verifier import ObservedBox, Verifier, WatchedZone, make_picture, make_thumbnail
from kontur.verifier.stayed import StayedTracks

WHOLE = WatchedZone("whole-frame", "*", ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)), None)
STRIDE = 4
BOX = (200.0, 120.0, 260.0, 280.0)  # frame pixels; the frame is 640×360
FPS = 10.0


def texture(seed: int = 0) -> np.ndarray:
    """A 90×160 grey picture with texture at the scale of a few picture pixels."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(30, 220, size=(23, 40), dtype=np.uint8)
    return np.kron(coarse, np.ones((4, 4), np.uint8))[:90, :160].copy()


def noisy(pixels: np.ndarray, seed: int) -> np.ndarray:
    """``pixels`` with a grey level or two of sensor noise."""
    rng = np.random.default_rng(seed)
    return np.clip(pixels.astype(int) + rng.integers(-2, 3, pixels.shape), 0, 255).astype(np.uint8)


def run_of(xyxy: tuple[float, float, float, float] = BOX, n: int = 5) -> list[ObservedBox]:
    """A settled run: ``n`` boxes at 10 fps, the last at 0 s."""
    return [ObservedBox(k, (k - n + 1) / FPS, xyxy, 0, 0.9, "person") for k in range(n)]


def follow(
    patches: StayedTracks, pictures: list[np.ndarray], reported: dict | None = None
) -> list[list[str]]:
    return [
        patches.observe(p, STRIDE, reported or {}, (k + 1) / FPS) for k, p in enumerate(pictures)
    ]


def test_a_sure_track_dropped_over_unchanged_pixels_raises_its_zone_after_the_delay() -> None:
    scene = texture()
    patches = StayedTracks((WHOLE,), 0.5)
    patches.lost(7, run_of(), scene, STRIDE)
    out = follow(patches, [noisy(scene, k) for k in range(6)])
    assert out[:4] == [[], [], [], []]  # 0.1-0.4 s: a detector may blink
    reason = out[4][0]
    assert reason.startswith(
        "zone whole-frame: track 7 (person) stayed hidden 0.5 s while the pixels under its "
        "last box stayed unchanged (NCC "
    )
    assert reason.endswith(", 5 of 5 frames); expected the track: nothing-there is unverified "
                           "(possible evasion)")  # fmt: skip


def test_a_handheld_drift_of_a_pixel_per_frame_is_followed() -> None:
    scene = texture(1)
    patches = StayedTracks((WHOLE,), 0.5)
    patches.lost(7, run_of(), scene, STRIDE)
    drifted = [np.roll(scene, shift=(0, k + 1), axis=(0, 1)) for k in range(5)]
    assert follow(patches, drifted)[-1] != []


@pytest.mark.parametrize("change", ["left", "covered_by_a_passer_by"])
def test_an_object_that_left_or_was_covered_changes_its_pixels_and_raises_nothing(
    change: str,
) -> None:
    scene = texture(2)
    after = scene.copy()
    y0, x0, y1, x1 = 30, 50, 70, 65  # BOX in picture pixels
    if change == "left":
        after[y0:y1, x0:x1] = texture(3)[y0:y1, x0:x1]  # what was behind it
    else:
        after[y0 : y0 + 25, x0 - 5 : x1 + 5] = 20  # a dark coat in front of most of it
    patches = StayedTracks((WHOLE,), 0.5)
    patches.lost(7, run_of(), scene, STRIDE)
    assert follow(patches, [noisy(after, k) for k in range(8)]) == [[]] * 8


def test_the_track_reported_again_or_a_box_over_it_explains_it_but_an_umbrella_does_not() -> None:
    scene = texture(4)
    for reported, raised in [
        ({7: (500.0, 10.0, 520.0, 40.0)}, False),  # the same id, somewhere else: reported
        ({9: (205.0, 125.0, 255.0, 275.0)}, False),  # a new id over it
        ({9: (0.0, 0.0, 640.0, 360.0)}, True),  # a box over the whole frame explains nothing
    ]:
        patches = StayedTracks((WHOLE,), 0.5)
        patches.lost(7, run_of(), scene, STRIDE)
        out = follow(patches, [scene] * 5, reported)
        assert (out[-1] != []) is raised, reported


def test_a_box_at_the_border_that_moved_towards_it_is_not_kept() -> None:
    scene = texture(5)
    leaving = [
        ObservedBox(k, (k - 4) / FPS, (40.0 - 10 * k, 120.0, 100.0 - 10 * k, 280.0), 0, 0.9,
                    "person")
        for k in range(5)
    ]  # fmt: skip
    patches = StayedTracks((WHOLE,), 0.5)
    patches.lost(7, leaving, scene, STRIDE)  # the last box touches x = 0, moving left
    assert follow(patches, [scene] * 6)[-1] == []
    standing = [ObservedBox(k, (k - 4) / FPS, (0.0, 120.0, 60.0, 280.0), 0, 0.9, "person")
                for k in range(5)]  # fmt: skip
    patches.lost(8, standing, scene, STRIDE)  # at the border, but not moving towards it
    assert follow(patches, [scene] * 6)[-1] != []


def test_a_flat_patch_is_never_kept() -> None:
    flat = np.full((90, 160), 128, np.uint8)
    patches = StayedTracks((WHOLE,), 0.5)
    patches.lost(7, run_of(), flat, STRIDE)
    assert follow(patches, [flat] * 6)[-1] == []


def _frame(seed: int) -> np.ndarray:
    """A 640×360 BGR frame of texture, with sensor noise of seed ``seed``."""
    grey = np.kron(texture(10), np.ones((STRIDE, STRIDE), np.uint8))
    bgr = np.repeat(noisy(grey, seed)[..., None], 3, axis=2)
    return np.ascontiguousarray(bgr)


def _verify(confidence: float, cut_at: int | None = None) -> tuple[list, Verifier]:
    """A person on a still textured scene, tracked for 2 s at ``confidence``, then dropped
    by the worker for 1.5 s while the picture stays as it was (or is cut at ``cut_at``)."""
    verifier = Verifier(VerifierConfig())
    findings = []
    for i in range(35):
        bgr = _frame(i) if cut_at is None or i < cut_at else _frame(i)[::-1].copy()
        verifier.observe_frame("cam-1", i, i / FPS, make_thumbnail(bgr), picture=make_picture(bgr))
        objects = [person(3, BOX, confidence)] if i < 20 else []
        findings.append(verifier.check(track_frame(i, i / FPS, objects)))
    return findings, verifier


def test_the_verifier_disagrees_within_a_second_when_a_sure_worker_drops_a_still_person() -> None:
    findings, verifier = _verify(0.9)
    assert all(f.agree for f in findings[:20])
    flagged = [f.frame_index for f in findings if any("stayed hidden" in r for r in f.reasons)]
    assert flagged and 20 <= flagged[0] <= 29, flagged  # 0.5 s after the drop, within 1 s
    assert verifier.disagreements["stayed"] == len(flagged)


def test_an_unsure_worker_or_a_cut_starts_nothing() -> None:
    unsure, _ = _verify(0.45)
    assert not any("stayed hidden" in r for f in unsure for r in f.reasons)
    cut, _ = _verify(0.9, cut_at=21)
    assert not any("stayed hidden" in r for f in cut for r in f.reasons)
