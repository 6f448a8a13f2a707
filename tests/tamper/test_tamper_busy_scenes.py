"""Busy near-field scenes that are not tampering (synthetic, no shared data needed).

Modelled on the false alarms of the clean camera-hours bench (tight framings of dense
traffic, short clips; docs/_pending/tamper-clean-hours.md): a vehicle standing in the
enrolled view that then leaves, a long vehicle crawling through the view, a small
whole-picture brightness jitter (an encoder's quality steps). The jitter case raised
``screen`` before the flicker floor was raised; the two vehicle cases are guards (these
simple scenes did not trip the earlier monitor either: the evidence for them is the bench on
real footage). Paired with a still covering and a moved camera on the same scene, which
must still be raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest

from kontur.tamper import TamperKind, TamperMonitor

W, H, FPS = 320, 240, 25.0


def _scene(seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(128, 50, (H // 2, W // 2)).clip(0, 255).astype(np.float32)
    big = cv2.resize(base, (W + 64, H + 64), interpolation=cv2.INTER_CUBIC)
    return np.asarray(np.clip(big, 0, 255), np.float32)


def _vehicle(h: int, w: int, seed: int) -> np.ndarray:
    """A textured vehicle (panels, windows, a grille) seen close to the camera."""
    rng = np.random.default_rng(seed)
    body = np.full((h, w), float(rng.uniform(60, 200)), np.float32)
    body += np.linspace(-25, 25, w, dtype=np.float32)[None, :]
    body[h // 5 : h // 2, w // 8 : w - w // 8] = 30.0  # windows
    body[h // 2 : h // 2 + 4, :] = 240.0  # a chrome strip
    body[-h // 5 :, w // 4 : w - w // 4 : 6] = 20.0  # grille bars
    return body


def _frames(
    n_s: float, draw: Callable[[np.ndarray, float], np.ndarray]
) -> Iterator[tuple[np.ndarray, float]]:
    scene = _scene()
    rng = np.random.default_rng(3)
    for i in range(int(n_s * FPS)):
        t = i / FPS
        view = draw(scene[32 : 32 + H, 32 : 32 + W].copy(), t)
        view += rng.normal(0, 1.5, view.shape).astype(np.float32)
        grey = np.clip(view, 0, 255).astype(np.uint8)
        yield cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), t


def _started(frames: Iterator[tuple[np.ndarray, float]]) -> set[TamperKind]:
    monitor = TamperMonitor("cam")
    kinds = set()
    for frame, t in frames:
        for change in monitor.observe(frame, t):
            if change.transition.value == "start":
                kinds.add(change.event.kind)
    return kinds


def _van_leaves(view: np.ndarray, t: float) -> np.ndarray:
    """A van stands in the view through enrolment, then drives off to the left at 3 s."""
    van = _vehicle(150, 170, 1)
    x = 120 - max(0.0, t - 3.0) * 300.0
    x0 = round(x)
    x1 = x0 + 170
    a, b = max(x0, 0), min(x1, W)
    if b > a:
        view[70:220, a:b] = van[:, a - x0 : b - x0]
    return view


def _truck_passes(view: np.ndarray, t: float) -> np.ndarray:
    """A long truck crawls through the lower half of the view from 3 s to 9 s."""
    truck = _vehicle(130, 400, 2)
    x = W - (t - 3.0) * 90.0
    x0 = round(x)
    a, b = max(x0, 0), min(x0 + 400, W)
    if t >= 3.0 and b > a:
        view[100:230, a:b] = truck[:, a - x0 : b - x0]
    return view


def test_a_vehicle_leaving_the_enrolled_view_is_not_a_shift() -> None:
    assert TamperKind.SHIFTED not in _started(_frames(8.0, _van_leaves))


def test_a_vehicle_crawling_through_the_view_is_not_a_covering() -> None:
    kinds = _started(_frames(10.0, _truck_passes))
    assert not kinds & {TamperKind.COVERED, TamperKind.SHIFTED, TamperKind.SCREEN}


@pytest.mark.parametrize("jitter", [0.0015, 0.002])
def test_small_brightness_jitter_is_not_a_screen(jitter: float) -> None:
    """The whole picture steps by 2 x ``jitter`` every frame (an encoder's quality steps)."""

    def draw(view: np.ndarray, t: float) -> np.ndarray:
        step = 1.0 + jitter * (1 if int(t * FPS) % 2 else -1) if t > 3.0 else 1.0
        return view * step

    assert TamperKind.SCREEN not in _started(_frames(8.0, draw))


def test_a_still_covering_on_the_same_scene_is_raised() -> None:
    def draw(view: np.ndarray, t: float) -> np.ndarray:
        if t >= 3.0:
            view[:, : W // 2] = 90.0 + np.linspace(0, 10, H, dtype=np.float32)[:, None]
        return view

    assert TamperKind.COVERED in _started(_frames(6.0, draw))


def test_a_moved_camera_on_the_same_scene_is_raised() -> None:
    scene = _scene()

    def moved() -> Iterator[tuple[np.ndarray, float]]:
        for frame, t in _frames(6.0, lambda v, _t: v):
            if t >= 3.0:
                view = scene[32 + 12 : 32 + 12 + H, 32 + 24 : 32 + 24 + W]
                frame = cv2.cvtColor(np.clip(view, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
            yield frame, t

    assert TamperKind.SHIFTED in _started(moved())
