"""Per-frame image features for the tamper monitor: cheap, CPU only, no state but the last frame.

Order of work for one BGR frame (about half a millisecond at 640x480):

1. INTER_AREA down by an integer factor to about ``2 * width`` and grey (the *fine*
   picture: sharpness, moiré), then by 2 (the *coarse* picture: everything else);
2. global statistics: brightness, contrast, black and white levels, dark and saturated
   fractions;
3. a ``grid`` of cells: mean, structure (standard deviation of the cell's 4x4 block of the
   thumbnail) and texture (mean absolute Laplacian): a partial covering shows as some cells
   losing texture and layout;
4. the ``4 * grid`` thumbnail (layout against the enrolled reference view) and a half-size
   coarse picture (phase correlation against the reference);
5. the difference to the previous frame (frozen picture, abrupt global change);
6. the whitened spectrum of a centre crop of the fine picture (a screen's moiré), which
   the caller may ask for at a lower rate.

:class:`FeatureExtractor` is pure: it keeps only the previous coarse picture and spectrum,
reads no clock and does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["FeatureExtractor", "Features"]

F32 = npt.NDArray[np.float32]

#: Grey levels at or above this count as saturated; at or below ``_DARK`` as dark.
_SATURATED = 250
_DARK = 16
#: A coarse pixel that moved by more than this many grey levels counts as "moving".
_MOVING = 4.0
#: Side of the centre crop of the fine picture whose spectrum is searched for moiré.
_MOIRE_SIDE = 64
#: Radial band (cycles per fine pixel) searched for moiré peaks: above the scene's own
#: low-frequency structure, below the Nyquist limit where blocking artefacts sit.
_MOIRE_BAND = (0.04, 0.45)


@dataclass(frozen=True, slots=True)
class Features:
    """What one frame looks like to the monitor (all grey levels are 0..255)."""

    brightness: float
    contrast: float
    black: float
    """2nd percentile of the grey levels (a screen raises its black level)."""
    white: float
    """98th percentile of the grey levels."""
    dark_frac: float
    sat_frac: float
    sharpness: float
    """Mean absolute Laplacian of the fine picture over its contrast (scale-free)."""
    cell_mean: F32
    cell_std: F32
    cell_lap: F32
    thumb: F32
    """``(4 * grid_rows, 4 * grid_cols)`` grey thumbnail."""
    shift_thumb: F32
    """The thumbnail phase correlation runs on (``(height, width) // 2`` of the coarse)."""
    diff: float
    """Mean absolute difference of the coarse picture to the previous frame's (NaN first)."""
    moving: float
    """Fraction of coarse pixels that changed by more than a few grey levels (NaN first)."""
    change: float
    """Mean absolute thumbnail change to the previous frame over the contrast (NaN first)."""
    spectrum: F32
    """Whitened magnitude spectrum of the fine picture's centre, in the moiré band (1-D)."""


def _f32(x: object) -> F32:
    return np.asarray(x, dtype=np.float32)


def _u8(x: object) -> npt.NDArray[np.uint8]:
    return np.asarray(x, dtype=np.uint8)


def _moire_masks(side: int) -> tuple[F32, npt.NDArray[np.bool_], F32]:
    """The window, the band mask and the 1/f whitening weight for a ``side`` square spectrum."""
    window = np.asarray(cv2.createHanningWindow((side, side), cv2.CV_32F), np.float32)
    fy = np.fft.fftfreq(side).astype(np.float32)
    fx = np.fft.rfftfreq(side).astype(np.float32)
    radius = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    band = (radius >= _MOIRE_BAND[0]) & (radius <= _MOIRE_BAND[1])
    # Axis-aligned lines are everyday structure (edges of buildings, 8x8 blocking): skip them.
    band[:, 0] = False
    band[0, :] = False
    return window, band, radius.astype(np.float32)


class FeatureExtractor:
    """Computes :class:`Features` for successive frames of one camera."""

    def __init__(self, width: int = 160, grid: tuple[int, int] = (8, 6)) -> None:
        self._width = width
        self._grid = grid  # (columns, rows)
        self._prev: npt.NDArray[np.uint8] | None = None
        self._prev_thumb: F32 | None = None
        self._shape: tuple[int, int] | None = None
        self._last_spectrum: F32 | None = None
        self._window, self._band, self._radius = _moire_masks(_MOIRE_SIDE)

    def reset(self) -> None:
        """Forget the previous frame (the next one has no frame difference)."""
        self._prev = None
        self._prev_thumb = None
        self._last_spectrum = None

    def extract(self, frame: npt.NDArray[np.uint8], *, spectrum: bool = True) -> Features:
        """Features of ``frame`` (BGR or grey uint8), against the previous frame given.

        ``spectrum=False`` reuses the last spectrum (the caller runs it at a lower rate).
        """
        h, w = int(frame.shape[0]), int(frame.shape[1])
        if (h, w) != self._shape:
            self._shape = (h, w)
            self.reset()
        # An integer INTER_AREA factor takes OpenCV's fast path (a 1.5x one costs 5x more).
        k = max(1, round(w / (2 * self._width)))
        fh, fw = max(4, h // k // 2 * 2), max(4, w // k // 2 * 2)
        small = _u8(cv2.resize(frame[: fh * k, : fw * k], (fw, fh), interpolation=cv2.INTER_AREA))
        fine = small if small.ndim == 2 else _u8(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        coarse = _u8(cv2.resize(fine, (fw // 2, fh // 2), interpolation=cv2.INTER_AREA))
        if spectrum or self._last_spectrum is None:
            self._last_spectrum = self._spectrum(fine)
        return self._features(fine, coarse, self._last_spectrum)

    def _features(
        self, fine: npt.NDArray[np.uint8], coarse: npt.NDArray[np.uint8], spectrum: F32
    ) -> Features:
        gc, gr = self._grid
        hist = cv2.calcHist([coarse], [0], None, [256], [0, 256]).ravel()
        cdf = np.cumsum(hist) / float(coarse.size)
        m, sd = cv2.meanStdDev(coarse)
        mean, std = float(m[0, 0]), float(sd[0, 0])
        lap = cv2.convertScaleAbs(cv2.Laplacian(fine, cv2.CV_16S, ksize=1))
        cell_lap = cv2.resize(lap, (gc, gr), interpolation=cv2.INTER_AREA).astype(np.float32)
        thumb = cv2.resize(coarse, (4 * gc, 4 * gr), interpolation=cv2.INTER_AREA).astype(
            np.float32
        )
        cell_mean = _f32(cv2.resize(thumb, (gc, gr), interpolation=cv2.INTER_AREA))
        cell_sq = _f32(cv2.resize(thumb * thumb, (gc, gr), interpolation=cv2.INTER_AREA))
        shift_thumb = cv2.resize(
            coarse, (coarse.shape[1] // 2, coarse.shape[0] // 2), interpolation=cv2.INTER_AREA
        ).astype(np.float32)
        diff = moving = change = float("nan")
        if self._prev is not None and self._prev_thumb is not None:
            d = cv2.absdiff(coarse, self._prev)
            diff = float(d.mean())
            moving = float(np.count_nonzero(d > _MOVING)) / d.size
            change = float(cv2.absdiff(thumb, self._prev_thumb).mean()) / (std + 1.0)
        self._prev, self._prev_thumb = coarse, thumb
        return Features(
            brightness=mean,
            contrast=std,
            black=float(np.searchsorted(cdf, 0.02)),
            white=float(np.searchsorted(cdf, 0.98)),
            dark_frac=float(cdf[_DARK]),
            sat_frac=float(1.0 - cdf[_SATURATED - 1]),
            sharpness=float(cell_lap.mean()) / (std + 2.0),
            cell_mean=cell_mean,
            cell_std=np.sqrt(np.maximum(cell_sq - cell_mean * cell_mean, 0.0)),
            cell_lap=cell_lap,
            thumb=thumb,
            shift_thumb=shift_thumb,
            diff=diff,
            moving=moving,
            change=change,
            spectrum=spectrum,
        )

    def _spectrum(self, fine: npt.NDArray[np.uint8]) -> F32:
        """The centre crop's whitened magnitude spectrum, band bins only (periodic energy)."""
        h, w = fine.shape
        side = _MOIRE_SIDE
        if h < side or w < side:
            return np.ones(int(self._band.sum()), np.float32)
        y, x = (h - side) // 2, (w - side) // 2
        crop = fine[y : y + side, x : x + side].astype(np.float32)
        crop -= float(crop.mean())
        spec = cv2.dft(crop * self._window, flags=cv2.DFT_COMPLEX_OUTPUT)
        mag = cv2.magnitude(spec[..., 0], spec[..., 1])[:, : side // 2 + 1]
        return (mag * self._radius)[self._band]
