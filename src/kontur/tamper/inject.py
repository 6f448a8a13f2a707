"""A seeded tampering generator: apply a camera attack to real frames from a given time on.

Used by ``kontur eval tamper --inject KIND --at SECONDS`` and by ``benchmarks/tamper_bench.py``.
Every strength is drawn from a seeded :class:`numpy.random.Generator` within a realistic range,
never one fixed value, so a benchmark over many seeds covers mild and strong attacks alike.
Sizes are in fractions of the frame (and blur radii scale with its height), so the same seed
gives the same attack on any resolution.

======== ==================================================================================
kind     what is drawn (ranges)
======== ==================================================================================
covered  a hand, cloth or tape at the lens: partial (an edge or corner blob, 30–80 % of the
         frame, wavy soft edge) or full (40 % of draws); skin, cloth or dark tone; low-
         frequency folds and shading (defocused at lens distance), the camera's own noise
         level x0.8–1.5, a slight tremble; moves in over 0–0.6 s
defocus  Gaussian blur, sigma 2.5–7 px at 480 lines (the focus ring turned), over 0–0.6 s
glare    1–3 over-exposure blobs (flashlight, laser, sun), radius 20–45 % of the height with a
         saturated core, a halo and a veil of 0–40 grey levels; the rest may be dimmed by the
         camera's exposure control (x0.6–1)
low_light darkening x0.08–0.35 with gamma 1–1.6 and gain noise (70 %), or a haze/spray that
         leaves 10–35 % of the contrast (30 %)
shifted  translation 4–15 % of the width (25 %: 20–40 %, a redirection) in any direction,
         rotation up to ±6°, zoom 0.95–1.1, over 0–0.6 s; new borders are mirrored scene
frozen   the onset frame repeated, bit-exact (50 %) or with re-encoding noise sigma 0.3–1.2
screen   the scene replayed on a screen held in front of the lens: 80–110 % of the view, a
         bezel of 2–6 % of the height, contrast x0.55–0.85, black level +12–40, gamma
         0.8–1.25, slight blur, a moiré pattern (period 6–40 px at 480 lines, amplitude 4–12
         grey levels, drifting), refresh flicker of 1–4 % at 0.7–3 Hz
======== ==================================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from kontur.tamper.errors import TamperInputError
from kontur.tamper.model import TamperKind

__all__ = ["Injection", "Injector"]

Frame = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Injection:
    """What was injected: the kind, from when, and the drawn parameters."""

    kind: TamperKind
    at_s: float
    seed: int
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``{kind, at_s, seed, params}``."""
        return {"kind": self.kind.value, "at_s": self.at_s, "seed": self.seed,
                "params": self.params}  # fmt: skip


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _f32(x: Any) -> F32:
    return np.asarray(x, dtype=np.float32)


def _u8(x: Any) -> Frame:
    return np.asarray(x, dtype=np.uint8)


def _clip(x: F32) -> Frame:
    return np.clip(x, 0, 255).astype(np.uint8)


def _ramp(t: float, at: float, ramp: float) -> float:
    """0 before ``at``, rising linearly to 1 over ``ramp`` seconds."""
    if t < at:
        return 0.0
    return 1.0 if ramp <= 0 else min(1.0, (t - at) / ramp)


def _noise_sigma(frame: Frame) -> float:
    """The frame's own noise level (grey levels), by Immerkær's Laplacian-difference mask.

    The median keeps the scene's edges from counting as noise; a covering seen through the
    same sensor and encoder shows about this much noise.
    """
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = cv2.filter2D(grey.astype(np.float32), -1, kernel)
    return max(0.3, float(np.median(np.abs(response))) / 4.05)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> F32:
    """Zero-mean, unit-ish low-frequency noise (a defocused texture)."""
    h, w = shape
    small = rng.standard_normal((cells, max(2, round(cells * w / h)))).astype(np.float32)
    return _f32(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC))


class Injector:
    """Applies one drawn attack to successive frames: ``apply(frame, t)`` from ``at_s`` on.

    Frames before ``at_s`` pass through untouched. The generator is stateful only for
    ``frozen`` (it holds the onset frame); call ``apply`` with increasing ``t``.
    """

    def __init__(self, kind: TamperKind | str, at_s: float, seed: int) -> None:
        kind = TamperKind.parse(kind)
        if not (math.isfinite(at_s) and at_s >= 0):
            raise TamperInputError(f"--at: expected a time >= 0 seconds, got {at_s}")
        self.kind = kind
        self.at_s = float(at_s)
        self.seed = int(seed)
        self._rng = np.random.default_rng(seed)
        self._params: dict[str, Any] = _DRAW[kind](self._rng)
        self._cache: dict[str, Any] = {}
        self._held: Frame | None = None

    @property
    def injection(self) -> Injection:
        """The injection's description (kind, onset, seed, drawn parameters)."""
        return Injection(self.kind, self.at_s, self.seed, dict(self._params))

    def apply(self, frame: Frame, t: float) -> Frame:
        """``frame`` as the tampered camera would show it at ``t`` seconds."""
        if t < self.at_s:
            return frame
        return _APPLY[self.kind](self, frame, t)

    # ------------------------------------------------------------------ per kind

    def _covered(self, frame: Frame, t: float) -> Frame:
        p = self._params
        h, w = frame.shape[:2]
        if "cover" not in self._cache:
            self._cache["cover"] = _cover_texture(self._rng, (h, w), p)
            self._cache["mask"] = _cover_mask(self._rng, (h, w), p)
        k = _ramp(t, self.at_s, p["ramp_s"])
        mask: F32 = self._cache["mask"]
        if p["full"]:
            alpha = np.full((h, w), k, np.float32)
        else:
            # The hand slides in from its edge as k rises, and trembles a little.
            dx, dy = p["enter"]
            j = p["tremble"] * h
            ox = (1 - k) * dx * w + float(self._rng.normal(0, j))
            oy = (1 - k) * dy * h + float(self._rng.normal(0, j))
            m = np.array([[1, 0, ox], [0, 1, oy]], np.float32)
            alpha = _f32(cv2.warpAffine(mask, m, (w, h), borderMode=cv2.BORDER_CONSTANT))
        cover: F32 = self._cache["cover"]
        if "sigma" not in self._cache:  # the camera's own noise, seen on the covering too
            self._cache["sigma"] = p["noise"] * _noise_sigma(frame)
        noise = self._rng.normal(0, self._cache["sigma"], (h, w, 1)).astype(np.float32)
        a = alpha[..., None]
        return _clip(frame.astype(np.float32) * (1 - a) + (cover + noise) * a)

    def _defocus(self, frame: Frame, t: float) -> Frame:
        p = self._params
        sigma = p["sigma"] * frame.shape[0] / 480 * _ramp(t, self.at_s, p["ramp_s"])
        if sigma < 0.3:
            return frame
        return _u8(cv2.GaussianBlur(frame, (0, 0), sigma))

    def _glare(self, frame: Frame, t: float) -> Frame:
        p = self._params
        h, w = frame.shape[:2]
        if "light" not in self._cache:
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            light = np.zeros((h, w), np.float32)
            for cx, cy, r, core in p["blobs"]:
                d = np.hypot(xx - cx * w, yy - cy * h) / (r * h)
                light += np.where(d < core, 1.0, np.exp(-(((d - core) / (1 - core)) ** 2) * 2))
            self._cache["light"] = light[..., None] * float(p["intensity"])
        tint = np.array(p["tint"], np.float32)
        base = frame.astype(np.float32) * p["dim"] + p["veil"]
        return _clip(base + self._cache["light"] * tint)

    def _low_light(self, frame: Frame, t: float) -> Frame:
        p = self._params
        f = frame.astype(np.float32) / 255.0
        if p["haze"]:
            out = (f * p["keep"] + (1 - p["keep"]) * p["level"] / 255.0) * 255.0
        else:
            out = np.power(f, p["gamma"]) * p["gain"] * 255.0
        out += self._rng.normal(0, p["noise"], frame.shape).astype(np.float32)
        return _clip(out)

    def _shifted(self, frame: Frame, t: float) -> Frame:
        p = self._params
        h, w = frame.shape[:2]
        k = _ramp(t, self.at_s, p["ramp_s"])
        ang = p["rotate_deg"] * k
        scale = 1 + (p["zoom"] - 1) * k
        m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, scale)
        m[0, 2] += p["dx"] * w * k
        m[1, 2] += p["dy"] * w * k
        return _u8(cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_REFLECT_101))

    def _frozen(self, frame: Frame, t: float) -> Frame:
        if self._held is None:
            self._held = frame.copy()
        sigma = self._params["noise"]
        if sigma <= 0:
            return self._held.copy()
        noise = self._rng.normal(0, sigma, self._held.shape).astype(np.float32)
        return _clip(self._held.astype(np.float32) + noise)

    def _screen(self, frame: Frame, t: float) -> Frame:
        p = self._params
        h, w = frame.shape[:2]
        if "geom" not in self._cache:
            self._cache.update(_screen_geometry(p, h, w))
        c = self._cache
        f = frame.astype(np.float32) / 255.0
        shown = (np.power(f, p["gamma"]) * p["contrast"]) * 255.0 + p["black"]
        shown = cv2.GaussianBlur(shown, (0, 0), p["blur"] * h / 480)
        phase = 2 * math.pi * p["drift_hz"] * (t - self.at_s)
        pattern = np.cos(c["moire_arg"] + phase)
        shown *= 1.0 + (p["moire_amp"] / 128.0) * pattern[..., None]
        shown *= 1.0 + p["flicker"] * math.sin(2 * math.pi * p["flicker_hz"] * (t - self.at_s))
        screen = cv2.warpAffine(shown, c["geom"], (w, h), borderMode=cv2.BORDER_CONSTANT)
        inside = c["inside"][..., None]
        bezel = c["bezel"][..., None]
        behind = cv2.GaussianBlur(frame, (0, 0), 8 * h / 480).astype(np.float32) * 0.5
        out = behind * (1 - bezel) + p["bezel_tone"] * bezel
        out = out * (1 - inside) + screen * inside
        out += self._rng.normal(0, 1.5, out.shape).astype(np.float32)
        return _clip(out)


def _cover_mask(rng: np.random.Generator, shape: tuple[int, int], p: dict[str, Any]) -> F32:
    """A soft, wavy blob entering from one edge or corner, covering about ``area``."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ex, ey = p["enter"]
    # Signed depth into the frame from the entering side(s), in fractions of the frame.
    depth = np.zeros((h, w), np.float32)
    if ex:
        depth += (xx / w if ex < 0 else 1 - xx / w) * abs(ex)
    if ey:
        depth += (yy / h if ey < 0 else 1 - yy / h) * abs(ey)
    depth /= abs(ex) + abs(ey)
    area = p["area"]
    if ex and ey:  # from a corner: the region below a mean depth d is a triangle of 2 d²
        area = math.sqrt(area / 2) if area <= 0.5 else 1 - math.sqrt((1 - area) / 2)
    wave = p["wave"] * np.sin(2 * np.pi * (xx / w * p["waves"] + yy / h * p["waves"]) + p["phi"])
    inside = (depth + wave) < area
    soft = max(1.0, p["soft"] * h)
    return _f32(cv2.GaussianBlur(inside.astype(np.float32), (0, 0), soft))


def _cover_texture(rng: np.random.Generator, shape: tuple[int, int], p: dict[str, Any]) -> F32:
    """A defocused hand or cloth: a base tone, folds, shading and low-frequency mottling."""
    h, w = shape
    tone = np.array(p["tone"], np.float32)
    folds = _smooth_noise(rng, (h, w), 4) * p["folds"]
    mottle = _smooth_noise(rng, (h, w), 12) * p["mottle"]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = p["shade"]
    shading = 1 + gx * (xx / w - 0.5) + gy * (yy / h - 0.5)
    grey = (folds + mottle)[..., None]
    return _f32(tone[None, None, :] * shading[..., None] + grey)


def _screen_geometry(p: dict[str, Any], h: int, w: int) -> dict[str, Any]:
    """Where the screen sits, its bezel, and the moiré's phase field."""
    s = p["scale"]
    geom = cv2.getRotationMatrix2D((w / 2, h / 2), p["rotate_deg"], s)
    geom[0, 2] += p["dx"] * w
    geom[1, 2] += p["dy"] * h
    ones = np.ones((h, w), np.float32)
    inside = cv2.warpAffine(ones, geom, (w, h), borderMode=cv2.BORDER_CONSTANT)
    b = max(1, round(p["bezel"] * h))
    kernel = np.ones((2 * b + 1, 2 * b + 1), np.uint8)
    bezel = cv2.dilate(inside, kernel)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    scale = 480.0 / h
    ang = p["moire_angle"]
    u = (xx * math.cos(ang) + yy * math.sin(ang)) * scale
    v = (-xx * math.sin(ang) + yy * math.cos(ang)) * scale
    arg = 2 * math.pi * (u / p["moire_period"] + p["moire_curve"] * (v / 480.0) ** 2 * 40)
    return {"geom": geom, "inside": inside, "bezel": bezel, "moire_arg": arg.astype(np.float32)}


# ---------------------------------------------------------------------- parameter draws


def _draw_covered(rng: np.random.Generator) -> dict[str, Any]:
    sides = [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, -1), (-1, 1), (1, 1)]
    material = str(rng.choice(["skin", "cloth", "dark"]))
    if material == "skin":
        tone = [_u(rng, 90, 150), _u(rng, 120, 170), _u(rng, 160, 220)]
    elif material == "cloth":
        tone = [_u(rng, 20, 220) for _ in range(3)]
    else:
        tone = [_u(rng, 5, 40)] * 3
    return {
        "full": bool(rng.random() < 0.4),
        "material": material,
        "tone": tone,
        "enter": sides[int(rng.integers(len(sides)))],
        "area": _u(rng, 0.3, 0.8),
        "wave": _u(rng, 0.0, 0.06),
        "waves": _u(rng, 0.5, 2.0),
        "phi": _u(rng, 0, 2 * math.pi),
        "soft": _u(rng, 0.02, 0.08),
        "folds": _u(rng, 5, 25),
        "mottle": _u(rng, 2, 10),
        "shade": (_u(rng, -0.5, 0.5), _u(rng, -0.5, 0.5)),
        "noise": _u(rng, 0.8, 1.5),
        "tremble": _u(rng, 0.0, 0.006),
        "ramp_s": _u(rng, 0.0, 0.6),
    }


def _draw_defocus(rng: np.random.Generator) -> dict[str, Any]:
    return {"sigma": _u(rng, 2.5, 7.0), "ramp_s": _u(rng, 0.0, 0.6)}


def _draw_glare(rng: np.random.Generator) -> dict[str, Any]:
    blobs = [
        (_u(rng, 0.15, 0.85), _u(rng, 0.15, 0.85), _u(rng, 0.2, 0.45), _u(rng, 0.4, 0.8))
        for _ in range(int(rng.integers(1, 4)))
    ]
    warm = _u(rng, 0.0, 0.25)
    return {
        "blobs": blobs,
        "intensity": _u(rng, 260, 420),
        "tint": [1.0 - warm, 1.0 - warm / 2, 1.0],
        "veil": _u(rng, 0, 40),
        "dim": _u(rng, 0.6, 1.0),
    }


def _draw_low_light(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "haze": bool(rng.random() < 0.3),
        "gain": _u(rng, 0.08, 0.35),
        "gamma": _u(rng, 1.0, 1.6),
        "keep": _u(rng, 0.10, 0.35),
        "level": _u(rng, 100, 220),
        "noise": _u(rng, 1.0, 4.0),
    }


def _draw_shifted(rng: np.random.Generator) -> dict[str, Any]:
    big = rng.random() < 0.25
    mag = _u(rng, 0.2, 0.4) if big else _u(rng, 0.04, 0.15)
    ang = _u(rng, 0, 2 * math.pi)
    return {
        "dx": mag * math.cos(ang),
        "dy": mag * math.sin(ang),
        "rotate_deg": _u(rng, -6, 6),
        "zoom": _u(rng, 0.95, 1.1),
        "ramp_s": _u(rng, 0.0, 0.6),
    }


def _draw_frozen(rng: np.random.Generator) -> dict[str, Any]:
    return {"noise": 0.0 if rng.random() < 0.5 else _u(rng, 0.3, 1.2)}


def _draw_screen(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "scale": _u(rng, 0.8, 1.1),
        "rotate_deg": _u(rng, -3, 3),
        "dx": _u(rng, -0.05, 0.05),
        "dy": _u(rng, -0.05, 0.05),
        "bezel": _u(rng, 0.02, 0.06),
        "bezel_tone": _u(rng, 8, 40),
        "contrast": _u(rng, 0.55, 0.85),
        "black": _u(rng, 12, 40),
        "gamma": _u(rng, 0.8, 1.25),
        "blur": _u(rng, 0.5, 1.5),
        "moire_period": _u(rng, 6, 40),
        "moire_angle": _u(rng, 0, math.pi),
        "moire_curve": _u(rng, 0.0, 0.3),
        "moire_amp": _u(rng, 4, 12),
        "drift_hz": _u(rng, 0.0, 0.5),
        "flicker": _u(rng, 0.01, 0.04),
        "flicker_hz": _u(rng, 0.7, 3.0),
    }


_DRAW: dict[TamperKind, Callable[[np.random.Generator], dict[str, Any]]] = {
    TamperKind.COVERED: _draw_covered,
    TamperKind.DEFOCUS: _draw_defocus,
    TamperKind.GLARE: _draw_glare,
    TamperKind.LOW_LIGHT: _draw_low_light,
    TamperKind.SHIFTED: _draw_shifted,
    TamperKind.FROZEN: _draw_frozen,
    TamperKind.SCREEN: _draw_screen,
}

_APPLY: dict[TamperKind, Callable[[Injector, Frame, float], Frame]] = {
    TamperKind.COVERED: Injector._covered,
    TamperKind.DEFOCUS: Injector._defocus,
    TamperKind.GLARE: Injector._glare,
    TamperKind.LOW_LIGHT: Injector._low_light,
    TamperKind.SHIFTED: Injector._shifted,
    TamperKind.FROZEN: Injector._frozen,
    TamperKind.SCREEN: Injector._screen,
}
