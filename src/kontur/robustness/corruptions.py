"""Image corruptions at severities 1..5, applied to an :class:`AuditFrame` and its gt boxes.

Two sources:

- the common corruptions of ImageNet-C (Hendrycks & Dietterich, ICLR 2019), used for
  detection as COCO-C (Michaelis et al., 2019): families ``noise``, ``blur``, ``weather`` and
  ``digital``. The severity tables are those of ImageNet-C; the formulas are re-implemented
  with numpy and OpenCV (the ``imagecorruptions`` package no longer imports with current
  setuptools, SciPy and NumPy; see the robustness ADR). Glass and zoom blur are left out
  (tens to hundreds of ms a frame). ``rain`` is not in ImageNet-C: it adds
  rain streaks the way snow adds flakes.
- the paper's list of effects a model must be tested against before deployment: lighting
  (``dark``, ``night``, ``backlight``), scale and angle (family ``geometry``: ``scale``,
  ``rotation``, ``perspective``), ``compression`` (an H.264 re-encode) and ``occlusion``.

Every corruption is a pure function of the frame, the severity and an injected
``numpy.random.Generator``: the same generator state gives the same output. Geometric ones
move the gt boxes with the picture; a box is dropped when less than half of it is left in
the picture or it is thinner than :data:`~kontur.robustness.frames.MIN_SIDE` pixels.
Uncovered canvas is filled with grey :data:`FILL`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from types import MappingProxyType
from typing import Literal

import cv2
import numpy as np

from kontur.robustness.errors import EncoderUnavailable, UnknownCorruption
from kontur.robustness.frames import MIN_SIDE, AuditFrame

__all__ = [
    "CORRUPTIONS",
    "FAMILIES",
    "FILL",
    "SEVERITIES",
    "Corruption",
    "Family",
    "corrupt",
    "h264_roundtrip",
]

Family = Literal[
    "noise", "blur", "weather", "digital", "lighting", "geometry", "compression", "occlusion"
]
FAMILIES: tuple[Family, ...] = (
    "noise",
    "blur",
    "weather",
    "digital",
    "lighting",
    "geometry",
    "compression",
    "occlusion",
)
SEVERITIES = (1, 2, 3, 4, 5)
#: Grey of canvas that a geometric corruption uncovers (the YOLO letterbox grey).
FILL = (114, 114, 114)
#: A moved box is kept when at least this fraction of it is still in the picture.
_MIN_VISIBLE = 0.5

_Image = np.ndarray
_Apply = Callable[[_Image, np.ndarray, int, np.random.Generator], tuple[_Image, np.ndarray]]
_Photometric = Callable[[_Image, int, np.random.Generator], _Image]


@dataclass(frozen=True)
class Corruption:
    """One registered corruption: its name, family, where it comes from and what it does."""

    name: str
    family: Family
    #: ``ImageNet-C`` (its formula and severity table), ``paper`` (the paper's list of
    #: effects) or ``kontur`` (an effect ImageNet-C lacks, in its style: rain).
    source: Literal["ImageNet-C", "paper", "kontur"]
    summary: str
    apply: _Apply = field(repr=False, compare=False)

    @property
    def moves_boxes(self) -> bool:
        """Whether the gt boxes change (geometric corruptions)."""
        return self.family == "geometry"


def _u8(x: np.ndarray) -> _Image:
    """Float pixels (0..255 scale) rounded and saturated to uint8."""
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


# --- noise (ImageNet-C) -------------------------------------------------------------------


#: Photo-electrons at full scale and read noise (linear units) of the simulated sensor.
_FULL_WELL, _READ_NOISE = 1500.0, 0.0015
#: Uniform quantiles per pixel for the tabulated noises: exact to 1/4096 in probability.
_BITS = 12
_LEVELS = 1 << _BITS


@lru_cache(maxsize=16)
def _noise_table(kind: Literal["gaussian", "shot", "night"], param: float) -> np.ndarray:
    """uint8 noisy value for each (clean value, quantile): row ``v``, column ``q``, flattened.

    Sampling by inverse CDF from this table is an order of magnitude faster than drawing
    normal or Poisson variates per pixel (~100 ns each), and gives the same distribution up
    to the quantisation of probabilities to 1/4096.
    """
    from scipy.special import ndtri

    v = np.arange(256, dtype=np.float64)[:, None]
    q = (np.arange(_LEVELS, dtype=np.float64) + 0.5) / _LEVELS
    if kind == "gaussian":  # x + N(0, sigma), x in 0..1
        noisy = v + 255 * param * ndtri(q)[None, :]
    elif kind == "shot":  # Poisson(x * photons) / photons
        noisy = _poisson_quantiles(v[:, 0] * (param / 255), q) * (255 / param)
    else:
        noisy = _low_light(v, ndtri(q)[None, :], stops=param)
    table = _u8(noisy).ravel()
    table.flags.writeable = False
    return table


def _low_light(v: np.ndarray, z: np.ndarray, *, stops: float) -> np.ndarray:
    """8-bit value ``v`` seen ``stops`` stops darker, with noise quantile ``z`` (0..255 out).

    In linear light (sRGB gamma ~2.2) the exposure falls by ``2**-stops``; the sensor adds
    signal-dependent shot noise and constant read noise, approximated as one heteroscedastic
    Gaussian (the Poisson-Gaussian model of Foi et al., IEEE TIP 2008); the camera's gain
    then makes up 60% of the lost stops, amplifying the noise with the signal.
    """
    exposure, gain = 2.0**-stops, 2.0 ** (0.6 * stops)
    signal = exposure * (v / 255.0) ** 2.2
    sigma = np.sqrt(signal / _FULL_WELL + _READ_NOISE**2)
    linear = np.clip(gain * (signal + sigma * z), 0.0, 1.0)
    out: np.ndarray = 255 * linear ** (1 / 2.2)
    return out


def _poisson_quantiles(lam: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(len(lam), len(q)) inverse Poisson CDF: the least k with P(X <= k) >= q."""
    from scipy.special import gammaln

    top = int(np.ceil(lam.max() + 12 * np.sqrt(lam.max()) + 20))
    k = np.arange(top + 1, dtype=np.float64)[None, :]
    lam = np.maximum(lam, 1e-12)[:, None]
    cdf = np.cumsum(np.exp(k * np.log(lam) - lam - gammaln(k + 1)), axis=1)
    return np.stack([np.searchsorted(row, q) for row in cdf]).astype(np.float64)


def _tabulated(img: _Image, table: np.ndarray, rng: np.random.Generator) -> _Image:
    q = rng.integers(0, _LEVELS, size=img.shape, dtype=np.uint32)
    q += img.astype(np.uint32) << _BITS
    return table[q]


def _gaussian_noise(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    sigma = (0.08, 0.12, 0.18, 0.26, 0.38)[s - 1]
    return _tabulated(img, _noise_table("gaussian", sigma), rng)


def _shot_noise(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    photons = (60, 25, 12, 5, 3)[s - 1]
    return _tabulated(img, _noise_table("shot", photons), rng)


def _impulse_noise(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    amount = (0.03, 0.06, 0.09, 0.17, 0.27)[s - 1]
    u = rng.random(img.shape, dtype=np.float32)
    out = img.copy()
    out[u < amount / 2] = 0
    out[u >= 1 - amount / 2] = 255
    return out


# --- blur (ImageNet-C) --------------------------------------------------------------------


def _disk(radius: int, alias_blur: float) -> np.ndarray:
    half = 8 if radius <= 8 else radius
    ksize = (3, 3) if radius <= 8 else (5, 5)
    ax = np.arange(-half, half + 1)
    x, y = np.meshgrid(ax, ax)
    disk = ((x**2 + y**2) <= radius**2).astype(np.float32)
    disk /= disk.sum()
    return cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)


def _defocus_blur(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    radius, alias = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[s - 1]
    return cv2.filter2D(img, -1, _disk(radius, alias), borderType=cv2.BORDER_REPLICATE)


def _line_kernel(taps: np.ndarray, angle: float) -> tuple[np.ndarray, tuple[int, int]]:
    """A one-sided streak kernel (ImageNet-C's motion blur) and its anchor, cropped tight."""
    width = len(taps)
    size, c = 2 * width + 1, width
    kernel = np.zeros((size, size), dtype=np.float32)
    sin, cos = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    for i, w in enumerate(taps):
        dy, dx = -math.ceil(i * sin - 0.5), -math.ceil(i * cos - 0.5)
        kernel[c - dy, c - dx] += w
    rows, cols = np.flatnonzero(kernel.any(axis=1)), np.flatnonzero(kernel.any(axis=0))
    r0, c0 = int(rows[0]), int(cols[0])
    crop = kernel[r0 : rows[-1] + 1, c0 : cols[-1] + 1]
    return np.ascontiguousarray(crop), (c - c0, c - r0)


def _motion_kernel(radius: int, sigma: float, angle: float) -> tuple[np.ndarray, tuple[int, int]]:
    i = np.arange(2 * radius + 1, dtype=np.float64)
    taps = np.exp(-(i**2) / (2 * sigma**2))
    return _line_kernel(taps / taps.sum(), angle)


def _motion_blur(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    radius, sigma = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))[s - 1]
    kernel, anchor = _motion_kernel(radius, sigma, float(rng.uniform(-45, 45)))
    return cv2.filter2D(img, -1, kernel, anchor=anchor, borderType=cv2.BORDER_REPLICATE)


def _gaussian_blur(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    sigma = (1, 2, 3, 4, 6)[s - 1]
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE)


# --- weather (ImageNet-C, and rain) -------------------------------------------------------


def _plasma(side: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Diamond-square fractal on a ``side`` x ``side`` grid (a power of two), in 0..1."""
    grid = np.zeros((side, side), dtype=np.float32)
    step, wibble = side, 100.0

    def jitter(a: np.ndarray) -> np.ndarray:
        return a / 4 + wibble * rng.uniform(-wibble, wibble, a.shape).astype(np.float32)

    while step >= 2:
        h = step // 2
        corners = grid[0:side:step, 0:side:step]
        sq = corners + np.roll(corners, -1, axis=0)
        sq += np.roll(sq, -1, axis=1)
        grid[h:side:step, h:side:step] = jitter(sq)
        centres = grid[h:side:step, h:side:step]
        lt = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        grid[0:side:step, h:side:step] = jitter(lt)
        tt = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        grid[h:side:step, 0:side:step] = jitter(tt)
        step //= 2
        wibble /= decay
    grid -= grid.min()
    out: np.ndarray = grid / grid.max()
    return out


def _fog_map(h: int, w: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    # ImageNet-C draws the map at the next power of two above the longer side and crops it;
    # above 512 the map is drawn at 512 and enlarged (fog has no fine detail to lose).
    longest = max(h, w)
    side = min(512, 1 << (longest - 1).bit_length())
    ratio = side / longest
    crop = _plasma(side, decay, rng)[: max(1, round(h * ratio)), : max(1, round(w * ratio))]
    if crop.shape != (h, w):
        crop = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
    return crop


def _fog(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    amount, decay = ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))[s - 1]
    x = img.astype(np.float32)
    peak = float(x.max()) / 255.0
    fog = _fog_map(img.shape[0], img.shape[1], decay, rng) * np.float32(amount * 255)
    x += fog[..., None]
    x *= np.float32(peak / (peak + amount))
    return _u8(x)


def _snow(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    loc, scale, zoom, cut, radius, sigma, keep = (
        (0.1, 0.3, 3.0, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2.0, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4.0, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    )[s - 1]
    h, w = img.shape[:2]
    # ImageNet-C draws a full-size layer, crops its centre 1/zoom and enlarges that ``zoom``
    # times (bilinear): drawing only the crop is the same distribution at a fraction of the cost.
    small = (max(1, math.ceil(h / zoom)), max(1, math.ceil(w / zoom)))
    layer: np.ndarray = rng.normal(loc, scale, size=small).astype(np.float32)
    layer = cv2.resize(layer, (w, h), interpolation=cv2.INTER_LINEAR)
    layer[layer < cut] = 0
    np.clip(layer, 0, 1, out=layer)
    kernel, anchor = _motion_kernel(radius, sigma, float(rng.uniform(-135, -45)))
    layer = cv2.filter2D(layer, -1, kernel, anchor=anchor, borderType=cv2.BORDER_REPLICATE)
    layer = np.round(layer * 255) / 255
    layer = layer + layer[::-1, ::-1]
    x = img.astype(np.float32) / 255
    grey = cv2.cvtColor(x, cv2.COLOR_BGR2GRAY)[..., None] * 1.5 + 0.5
    x = keep * x + (1 - keep) * np.maximum(x, grey)
    x += layer[..., None]
    return _u8(x * 255)


def _rain(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    # Not in ImageNet-C. Drops are points stretched into streaks by the same line kernel as
    # motion blur, near vertical; the scene behind is dimmed and softened as in overcast rain.
    density, length, alpha, dim, soften = (
        (0.002, 0.03, 0.45, 0.95, 0.0),
        (0.004, 0.04, 0.5, 0.9, 0.5),
        (0.006, 0.05, 0.55, 0.85, 0.8),
        (0.009, 0.06, 0.6, 0.8, 1.0),
        (0.013, 0.08, 0.65, 0.75, 1.3),
    )[s - 1]
    h, w = img.shape[:2]
    drops = (rng.random((h, w), dtype=np.float32) < density).astype(np.float32)
    drops *= rng.uniform(0.6, 1.0, size=(h, w)).astype(np.float32)
    taps = np.ones(max(3, round(length * h)), dtype=np.float64)
    kernel, anchor = _line_kernel(taps, 90 + float(rng.uniform(-20, 20)))
    streaks = cv2.filter2D(drops, -1, kernel, anchor=anchor, borderType=cv2.BORDER_CONSTANT)
    streaks = np.minimum(streaks, 1.0) * np.float32(alpha)
    x: np.ndarray = img.astype(np.float32) * np.float32(dim)
    if soften:
        x = cv2.GaussianBlur(x, (0, 0), sigmaX=soften)
    x = x * (1 - streaks[..., None]) + streaks[..., None] * np.float32(220)
    return _u8(x)


# --- digital (ImageNet-C) -----------------------------------------------------------------


def _jpeg(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    quality = (25, 18, 15, 10, 7)[s - 1]
    ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise EncoderUnavailable("jpeg: expected OpenCV to encode a JPEG, got a failure")
    out = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if out is None:
        raise EncoderUnavailable("jpeg: expected OpenCV to decode its own JPEG, got nothing")
    return out


def _contrast(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    c = (0.4, 0.3, 0.2, 0.1, 0.05)[s - 1]
    x = img.astype(np.float32)
    means = x.mean(axis=(0, 1), keepdims=True)
    return _u8((x - means) * np.float32(c) + means)


def _brightness(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    c = (0.1, 0.2, 0.3, 0.4, 0.5)[s - 1]
    hsv = cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_BGR2HSV)
    v = hsv[..., 2]
    np.clip(v + np.float32(c), 0, 1, out=v)
    return _u8(cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR) * 255)


def _pixelate(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    c = (0.6, 0.5, 0.4, 0.3, 0.25)[s - 1]
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, int(w * c)), max(1, int(h * c))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


# --- lighting (paper) ---------------------------------------------------------------------


def _dark(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    # Night: the camera's gain falls short and the tone curve crushes the shadows.
    gamma, gain = ((1.3, 0.8), (1.5, 0.65), (1.7, 0.55), (1.9, 0.45), (2.2, 0.4))[s - 1]
    lut = _u8(255 * gain * (np.arange(256) / 255.0) ** gamma)
    return cv2.LUT(img, lut)


def _night(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    # Night as a sensor sees it: fewer photons, so sensor noise that the camera's gain
    # amplifies (low-light synthesis as in Cui et al., "MAET", ICCV 2021, simplified).
    stops = (3.0, 4.5, 5.5, 6.5, 7.5)[s - 1]
    return _tabulated(img, _noise_table("night", stops), rng)


def _backlight(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    # A bright source in the upper part of the view (sun, window, headlights): exposure
    # follows it, so the scene darkens away from it and a veil of glare spreads around it.
    low, high, glare = (
        (0.75, 1.2, 0.05),
        (0.6, 1.4, 0.1),
        (0.45, 1.7, 0.15),
        (0.35, 2.0, 0.2),
        (0.25, 2.4, 0.3),
    )[s - 1]
    h, w = img.shape[:2]
    sh, sw = max(2, h // 8), max(2, w // 8)
    cx, cy = rng.uniform(0, sw), rng.uniform(0, sh / 3)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    spread = 0.35 * math.hypot(sh, sw)
    near = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / np.float32(2 * spread**2))
    near = cv2.resize(near, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
    x = img.astype(np.float32) * (low + (high - low) * near)
    x += np.float32(255 * glare) * near
    return _u8(x)


# --- compression (paper) ------------------------------------------------------------------


def _h264(img: _Image, s: int, rng: np.random.Generator) -> _Image:
    crf = (30, 36, 41, 46, 51)[s - 1]
    return h264_roundtrip(img, crf)


def h264_roundtrip(img: _Image, crf: int, *, encoder: str = "libx264") -> _Image:
    """``img`` encoded as one H.264 intra frame at ``crf`` and decoded again (BGR uint8).

    Raises :class:`EncoderUnavailable` when PyAV has no ``encoder``: there is no fallback.
    """
    import av

    h, w = img.shape[:2]
    even = np.asarray(
        cv2.copyMakeBorder(img, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE), dtype=np.uint8
    )
    try:
        enc = av.CodecContext.create(encoder, "w")
    except (av.error.FFmpegError, ValueError) as exc:
        raise EncoderUnavailable(
            f"compression: expected PyAV with the {encoder} encoder, "
            f"got {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(enc, av.VideoCodecContext):
        raise EncoderUnavailable(f"compression: expected a video encoder, got {encoder!r}")
    enc.width, enc.height, enc.pix_fmt = even.shape[1], even.shape[0], "yuv420p"
    enc.time_base = Fraction(1, 25)
    # One thread and no lookahead: deterministic, and one frame in gives one packet out.
    enc.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency", "threads": "1"}
    packets = [*enc.encode(av.VideoFrame.from_ndarray(even, format="bgr24")), *enc.encode(None)]
    dec = av.CodecContext.create("h264", "r")
    frames = [f for p in [*packets, None] for f in dec.decode(p)]
    return np.ascontiguousarray(frames[0].to_ndarray(format="bgr24")[:h, :w])


# --- geometry (paper: scale and angle) ----------------------------------------------------


def _corners(boxes: np.ndarray) -> np.ndarray:
    """(n, 4, 2) corners of (n, 4) xyxy boxes."""
    x0, y0, x1, y1 = boxes.T
    return np.stack(
        [
            np.stack([x0, y0], 1),
            np.stack([x1, y0], 1),
            np.stack([x1, y1], 1),
            np.stack([x0, y1], 1),
        ],
        axis=1,
    )


def _enclose(corners: np.ndarray, w: int, h: int) -> np.ndarray:
    """Axis-aligned boxes around moved corners, clipped; mostly-outside and thin ones dropped."""
    full = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1).reshape(-1, 4)
    clipped = full.copy()
    np.clip(clipped[:, 0::2], 0.0, float(w), out=clipped[:, 0::2])
    np.clip(clipped[:, 1::2], 0.0, float(h), out=clipped[:, 1::2])
    sides, full_sides = clipped[:, 2:] - clipped[:, :2], full[:, 2:] - full[:, :2]
    area, full_area = sides.prod(axis=1), full_sides.prod(axis=1)
    keep = (sides >= MIN_SIDE).all(axis=1) & (area >= _MIN_VISIBLE * full_area)
    out: np.ndarray = clipped[keep]
    return out


def _warp_affine(img: _Image, boxes: np.ndarray, m: np.ndarray) -> tuple[_Image, np.ndarray]:
    h, w = img.shape[:2]
    out = cv2.warpAffine(
        img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=FILL
    )
    moved = _corners(boxes) @ m[:, :2].T + m[:, 2]
    return out, _enclose(moved, w, h)


def _scale(
    img: _Image, boxes: np.ndarray, s: int, rng: np.random.Generator
) -> tuple[_Image, np.ndarray]:
    # Objects smaller (farther away, or a wider lens): the frame shrunk onto a same-size canvas.
    f = (0.8, 0.65, 0.5, 0.4, 0.3)[s - 1]
    h, w = img.shape[:2]
    sw, sh = max(1, round(w * f)), max(1, round(h * f))
    x0, y0 = (w - sw) // 2, (h - sh) // 2
    out = np.empty_like(img)
    out[:] = FILL
    out[y0 : y0 + sh, x0 : x0 + sw] = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    fx, fy = sw / w, sh / h
    moved = _corners(boxes) * np.array([fx, fy]) + np.array([x0, y0])
    return out, _enclose(moved, w, h)


def _rotation(
    img: _Image, boxes: np.ndarray, s: int, rng: np.random.Generator
) -> tuple[_Image, np.ndarray]:
    # Camera roll. The new box is the axis-aligned box around the rotated corners, so it is
    # looser than a box drawn around the rotated person (by ~20% in area at 30 degrees).
    degrees = (5, 10, 15, 20, 30)[s - 1] * (1 if rng.random() < 0.5 else -1)
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return _warp_affine(img, boxes, m)


def _perspective(
    img: _Image, boxes: np.ndarray, s: int, rng: np.random.Generator
) -> tuple[_Image, np.ndarray]:
    # Keystone: the camera tilted towards one edge of the view, which narrows that edge.
    t = (0.06, 0.12, 0.18, 0.24, 0.32)[s - 1]
    h, w = img.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    dst = src.copy()
    edge = int(rng.integers(4))  # top, right, bottom, left
    a, b = edge, (edge + 1) % 4
    along = dst[b] - dst[a]
    dst[a] += t * along
    dst[b] -= t * along
    m = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(
        img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=FILL
    )
    if not len(boxes):
        return out, boxes.reshape(0, 4)
    moved = cv2.perspectiveTransform(_corners(boxes).reshape(-1, 1, 2), m).reshape(-1, 4, 2)
    return out, _enclose(moved, w, h)


# --- occlusion (paper) --------------------------------------------------------------------


def _occlusion(
    img: _Image, boxes: np.ndarray, s: int, rng: np.random.Generator
) -> tuple[_Image, np.ndarray]:
    # A band across each person (a pole, a parked car, a railing, another passer-by) covering
    # the given fraction of the gt box; grey or random texture. The gt is unchanged: the
    # person is still there and a robust detector still finds them.
    fraction = (0.1, 0.2, 0.3, 0.45, 0.6)[s - 1]
    out = img.copy()
    for x0, y0, x1, y1 in np.round(boxes).astype(np.int64):
        bw, bh = x1 - x0, y1 - y0
        if bw < 1 or bh < 1:
            continue
        if rng.random() < 0.5:  # horizontal band, full width
            size = max(1, round(fraction * bh))
            at = y0 + int(rng.integers(0, bh - size + 1))
            region = out[at : at + size, x0:x1]
        else:  # vertical band, full height
            size = max(1, round(fraction * bw))
            at = x0 + int(rng.integers(0, bw - size + 1))
            region = out[y0:y1, at : at + size]
        if rng.random() < 0.5:
            region[:] = FILL
        else:
            region[:] = rng.integers(0, 256, size=region.shape, dtype=np.uint8)
    return out, boxes


# --- registry -----------------------------------------------------------------------------


def _photometric(fn: _Photometric) -> _Apply:
    def apply(
        img: _Image, boxes: np.ndarray, s: int, rng: np.random.Generator
    ) -> tuple[_Image, np.ndarray]:
        return fn(img, s, rng), boxes

    return apply


def _table() -> dict[str, Corruption]:
    imagenet_c: tuple[tuple[str, Family, str, _Photometric], ...] = (
        ("gaussian_noise", "noise", "additive Gaussian noise (sensor read noise)", _gaussian_noise),
        ("shot_noise", "noise", "Poisson photon noise (low light)", _shot_noise),
        ("impulse_noise", "noise", "salt-and-pepper noise (bit errors)", _impulse_noise),
        ("defocus_blur", "blur", "out-of-focus lens (disk kernel)", _defocus_blur),
        ("motion_blur", "blur", "camera or subject motion (line kernel)", _motion_blur),
        ("gaussian_blur", "blur", "soft optics (Gaussian kernel)", _gaussian_blur),
        ("fog", "weather", "fog (plasma fractal haze)", _fog),
        ("snow", "weather", "falling snow and a snowy haze", _snow),
        ("jpeg", "digital", "JPEG compression at falling quality", _jpeg),
        ("contrast", "digital", "contrast squeezed towards the mean", _contrast),
        ("brightness", "digital", "brightness raised (HSV value)", _brightness),
        ("pixelate", "digital", "low resolution, enlarged back (blocky)", _pixelate),
    )
    table = {n: Corruption(n, f, "ImageNet-C", d, _photometric(fn)) for n, f, d, fn in imagenet_c}
    table["rain"] = Corruption(
        "rain", "weather", "kontur", "rain streaks over a dimmed scene", _photometric(_rain)
    )
    paper: tuple[tuple[str, Family, str, _Apply], ...] = (
        ("dark", "lighting", "dim light: low gain, crushed shadows (gamma)", _photometric(_dark)),
        ("night", "lighting", "low light: sensor noise under camera gain", _photometric(_night)),
        (
            "backlight",
            "lighting",
            "uneven light: bright source, dark scene",
            _photometric(_backlight),
        ),
        ("scale", "geometry", "objects smaller: frame shrunk onto the canvas", _scale),
        ("rotation", "geometry", "camera roll about the centre", _rotation),
        ("perspective", "geometry", "camera tilt: keystone warp", _perspective),
        ("compression", "compression", "H.264 (libx264) at rising CRF", _photometric(_h264)),
        ("occlusion", "occlusion", "a band over each person", _occlusion),
    )
    table.update({n: Corruption(n, f, "paper", d, fn) for n, f, d, fn in paper})
    return table


#: Every corruption by name: ImageNet-C's, rain, then the paper's.
CORRUPTIONS: Mapping[str, Corruption] = MappingProxyType(_table())


def corrupt(frame: AuditFrame, name: str, severity: int, rng: np.random.Generator) -> AuditFrame:
    """``frame`` with corruption ``name`` at ``severity`` (1..5); the input is not modified.

    The result keeps the frame's index. Its boxes are the input's, moved with the picture by
    the geometric corruptions (family ``geometry``).
    """
    entry = CORRUPTIONS.get(name)
    if entry is None:
        raise UnknownCorruption(
            f"corruption: expected one of {', '.join(CORRUPTIONS)}, got {name!r}"
        )
    integral = isinstance(severity, int | np.integer) and not isinstance(severity, bool)
    if not integral or not 1 <= severity <= 5:
        raise UnknownCorruption(f"corruption {name}: expected severity 1..5, got {severity!r}")
    image, boxes = entry.apply(frame.image, frame.boxes, int(severity), rng)
    return AuditFrame(frame.index, np.ascontiguousarray(image), np.array(boxes, np.float64))
