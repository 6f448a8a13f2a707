"""What moves in the picture, by the verifier's own eyes: a background model on a small grey frame.

The track checks of :mod:`kontur.verifier.checks` judge the worker's boxes by geometry alone;
a worker that invents a smoothly moving person, or leaves a real one out, passes them. This
module gives the verifier a second, independent look at the pixels ingest put in the ring
(issue 13 §2, the paper's "независимые и более простые проверки"): a running-average
background with a per-pixel noise estimate, kept on a grey picture about 160 pixels wide
(:func:`make_picture`), costs a few hundred microseconds per frame and shares nothing with the
detector (no weights, no OpenCV, numpy only).

Order of steps, per camera: :meth:`ForegroundModel.observe` once per frame, in increasing pts,
returns that frame's :class:`SceneMasks` (what differs from the background, what moved in the
last ~0.1 s). The verifier keeps the masks of recent frames and reads them when the worker's
tracks for the frame arrive (:meth:`SceneMasks.box_support`, :mod:`kontur.verifier.evasion`).

The model abstains (``SceneMasks.judged`` False, with the reason) while it learns a background:
for :data:`LEARN_S` after the first frame and after every global change (more than
:data:`RESET_FRACTION` of the picture differing at once: a cut, a pan, a light switched on).
A moving or shaking camera therefore gets no foreground checks at all; a camera the worker does
not control is what makes that safe (issue 13 §1 watches the camera itself). A relearn after a
judged frame sets the background aside; it comes back as soon as it explains the picture again
(a camera knocked that came back, a corrupt frame: ADR 0056).
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kontur.verifier.coherence import shift_between
from kontur.verifier.errors import ThumbnailError
from kontur.verifier.thumbnail import bt601_grey

__all__ = [
    "CUT_FRACTION",
    "LEARN_S",
    "PICTURE_WIDTH",
    "RESET_FRACTION",
    "BoxMeter",
    "ForegroundModel",
    "Rows",
    "SceneMasks",
    "ScenePicture",
    "foot_band",
    "make_picture",
]

#: Target width of the verifier's grey picture (pixels); the stride is whole frame pixels.
PICTURE_WIDTH = 160
#: Seconds of learning (no judgement) after the first frame and after each global change:
#: the background is the per-pixel median of :data:`LEARN_SAMPLES` pictures spread over it,
#: so people walking through while it learns are not learnt as background.
LEARN_S = 1.5
LEARN_SAMPLES = 9
#: Time constant of the background where the picture matches it (seconds).
BACKGROUND_TAU_S = 2.0
#: Time constant where the picture differs (seconds): a person who stops stays foreground for
#: about half a minute, and the ghost of one who left clears as fast. The support check never
#: flags a box that stands still over no foreground, so absorbing a standing person is safe.
FOREGROUND_TAU_S = 15.0
#: A pixel is foreground when it differs from the background by more than this many grey
#: levels and by more than :data:`NOISE_K` times its own noise.
MIN_DIFF = 12.0
NOISE_K = 3.0
#: Motion: the picture about this long ago is the reference for what just moved (seconds).
MOTION_INTERVAL_S = 0.1
#: The surroundings' foreground density counted against a box's at most (see
#: :meth:`BoxMeter.support`).
CROWD_CAP = 0.3
#: A box is measured against a cover (:class:`BoxMeter`) only when at least this fraction of
#: its pixels lies outside it.
MIN_FREE = 0.3
#: The lowest share of a box's rows that :meth:`BoxMeter.foot` measures: a person's legs...
FOOT_BAND = 0.2
#: ...over at most this many box heights of width, centred on the box's foot point (where the
#: gate places the object): about two thirds of a walking person's box, both legs. A box
#: widened sideways past its object moves its foot point off it, onto bare ground.
FOOT_WIDTH = 0.25
#: Rectangle sums a :class:`BoxMeter` counts directly before it builds its integral images
#: (a count costs about what an O(1) integral-image sum does; building them, ~150 of them).
DIRECT_SUMS = 256
#: A pixel's foreground run (:meth:`ForegroundModel.foreign_share`) survives gaps this long
#: (seconds): the edge of a still object flickers in and out of the foreground.
RUN_GAP_S = 0.5
#: Picture pixels :meth:`ForegroundModel.ghost_ratio` looks beyond a box for its object's
#: outline (a box cut into its object, a jittering one).
OUTLINE_MARGIN = 2
#: The gap of a pixel never seen in the foreground (finite: ``gap * 0`` must be 0).
_NEVER = 1e9
#: More than this fraction of the picture in the foreground at once is a global change.
RESET_FRACTION = 0.4
#: More than this fraction of the picture changing between two frames ~0.1 s apart is a cut
#: (an edited clip, a switched camera, a PTZ preset): no track continues across it.
CUT_FRACTION = 0.5
#: When more than this fraction of the picture moved in the last ~0.1 s, the camera itself may
#: have: phase correlation with the reference picture then tells a pan or a shake (a whole-pixel
#: shift of the picture) from many objects moving.
CAMERA_CHECK_FRACTION = 0.08


#: A rectangle of picture rows and columns, ``(y0, x0, y1, x1)`` (:meth:`SceneMasks.to_picture`).
Rows = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class ScenePicture:
    """A grey picture sampled from a frame every ``stride`` pixels, and the frame's size."""

    pixels: npt.NDArray[np.uint8]
    stride: int
    frame_width: int
    frame_height: int


def make_picture(frame: npt.NDArray[np.uint8], width: int = PICTURE_WIDTH) -> ScenePicture:
    """A fresh grey :class:`ScenePicture` about ``width`` pixels wide of a BGR or grey ``frame``.

    Nearest-neighbour sampling at a whole-pixel stride: the cost does not grow with the frame's
    resolution, and ``frame`` may be a read-only view of shared memory (only sampled pixels are
    read; the result never aliases it).
    """
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise ThumbnailError(
            f"expected a uint8 frame, got {getattr(frame, 'dtype', type(frame).__name__)}"
        )
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)):
        raise ThumbnailError(f"expected a frame of shape (h, w) or (h, w, 3), got {frame.shape}")
    fh, fw = frame.shape[:2]
    stride = max(1, math.ceil(fw / width))
    if fh // stride < 8 or fw // stride < 8:
        raise ThumbnailError(
            f"expected a frame of at least {8 * stride} pixels a side, got {fh}x{fw}"
        )
    off = stride // 2
    picked = frame[off::stride, off::stride]
    # BT.601 luma in fixed point (29, 150, 77) / 256, as the thumbnail
    pixels = np.ascontiguousarray(picked) if picked.ndim == 2 else bt601_grey(picked)
    return ScenePicture(pixels, stride, fw, fh)


def _spectrum(a: npt.NDArray[np.float32]) -> npt.NDArray[np.complex64]:
    """The picture's spectrum, its mean taken out, for
    :func:`~kontur.verifier.coherence.shift_between`."""
    return np.fft.rfft2(a - a.mean()).astype(np.complex64, copy=False)


def _median(a: npt.NDArray[np.float32]) -> np.float32:
    """``np.median(a)`` of a finite float32 array, bit for bit, without its overhead: the
    mean of the middle two (as ``np.mean`` sums them: from 0, pairwise) or the middle one.
    The lower of the middle two is the largest below the upper (one partition, not two;
    the sign of a zero there cannot change the sum)."""
    flat = a.ravel()
    k = flat.size // 2
    part = np.partition(flat, k)
    if flat.size % 2:
        return np.float32(np.float32(0.0) + part[k])
    return np.float32(float(part[:k].max() + (np.float32(0.0) + part[k])) / 2)


def foot_band(xyxy: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Where a box's object stands (frame pixels): its lowest :data:`FOOT_BAND` of rows, over
    :data:`FOOT_WIDTH` box heights (at most its width) centred on its foot point."""
    x1, y1, x2, y2 = xyxy
    half = min(x2 - x1, FOOT_WIDTH * (y2 - y1)) / 2
    cx = (x1 + x2) / 2
    return cx - half, y2 - FOOT_BAND * (y2 - y1), cx + half, y2


def _across(
    a: npt.NDArray[np.float32],
    y0: int,
    x0: int,
    y1: int,
    x1: int,
    outline: tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]],
) -> float:
    """The summed step of ``a`` across an outline of rows ``y0:y1``, columns ``x0:x1``:
    horizontal central differences on its row ends, vertical ones on its column ends (the
    rectangle must leave a pixel of ``a`` on every side)."""
    ends_of_rows, ends_of_cols = outline
    dx = np.abs(a[y0:y1, x0 + 1 : x1 + 1] - a[y0:y1, x0 - 1 : x1 - 1])
    dy = np.abs(a[y0 + 1 : y1 + 1, x0:x1] - a[y0 - 1 : y1 - 1, x0:x1])
    return float(dx[ends_of_rows].sum() + dy[ends_of_cols].sum())


def _outline(fg: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """The first and last set pixel of each row of ``fg``, and of each column, less those on
    its border (where the rectangle cut the foreground, not its outline)."""
    h, w = fg.shape
    rows, cols = np.flatnonzero(fg.any(axis=1)), np.flatnonzero(fg.any(axis=0))
    ends_of_rows, ends_of_cols = np.zeros((h, w), bool), np.zeros((h, w), bool)
    ends_of_rows[rows, fg[rows].argmax(axis=1)] = True
    ends_of_rows[rows, w - 1 - fg[rows, ::-1].argmax(axis=1)] = True
    ends_of_cols[fg[:, cols].argmax(axis=0), cols] = True
    ends_of_cols[h - 1 - fg[::-1, cols].argmax(axis=0), cols] = True
    for ends in (ends_of_rows, ends_of_cols):
        ends[0, :] = ends[-1, :] = ends[:, 0] = ends[:, -1] = False
    return ends_of_rows, ends_of_cols


def _share(mask: npt.NDArray[np.bool_]) -> float:
    """``float(mask.mean())``, exactly (both divide the exact count by the size in float64)."""
    return int(np.count_nonzero(mask)) / mask.size


def _pick(
    mask: npt.NDArray[np.bool_], if_set: np.float32, if_clear: np.float32
) -> npt.NDArray[np.float32]:
    """``np.where(mask, if_set, if_clear)`` for two float32 scalars, bit for bit, at about a
    third of its cost on a picture: each pixel's bit pattern is ``clear + mask × (set −
    clear)`` in uint32 arithmetic (modulo 2**32, which is exact)."""
    clear = int(if_clear.view(np.uint32))
    step = (int(if_set.view(np.uint32)) - clear) % 2**32
    bits = np.multiply(mask.view(np.uint8), np.uint32(step), dtype=np.uint32)
    bits += np.uint32(clear)
    return bits.view(np.float32)


def _integral(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int32]:
    ii = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.int32)
    np.cumsum(np.cumsum(mask, axis=0, dtype=np.int32), axis=1, out=ii[1:, 1:])
    return ii


def _sum(ii: npt.NDArray[np.int32], y0: int, x0: int, y1: int, x1: int) -> int:
    return int(ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0])


@dataclass(frozen=True, slots=True)
class SceneMasks:
    """One frame's foreground and motion, packed, with the scale back to frame pixels.

    ``judged`` False: the model was learning (``note`` says why) and the masks say nothing.
    The newest frame's masks keep their planes unpacked once asked for (read-only: every
    box of the frame reads them); :class:`ForegroundModel` drops them when it makes the next.
    """

    pts_s: float
    shape: tuple[int, int]
    stride: int
    frame_width: int
    frame_height: int
    judged: bool
    note: str | None
    fg_fraction: float
    cut: bool
    """Most of the picture changed in one step on this frame (a cut): no track of the
    worker's can be followed across it."""
    packed_fg: bytes
    packed_motion: bytes
    _unpacked: dict[str, npt.NDArray[np.bool_]] | None = field(
        default=None, init=False, compare=False, repr=False
    )
    """The planes unpacked so far, by name, while these are the newest masks (None: not
    kept)."""

    def foreground(self) -> npt.NDArray[np.bool_]:
        """The foreground mask (picture pixels), unpacked (read-only)."""
        return self._unpack("fg")

    def motion(self) -> npt.NDArray[np.bool_]:
        """What changed in the last :data:`MOTION_INTERVAL_S` (picture pixels), unpacked
        (read-only)."""
        return self._unpack("motion")

    def keep_unpacked(self, keep: bool) -> None:
        """Keep the planes once unpacked (the newest frame's masks), or drop them."""
        object.__setattr__(self, "_unpacked", {} if keep else None)

    def _unpack(self, name: str) -> npt.NDArray[np.bool_]:
        kept = self._unpacked
        plane = None if kept is None else kept.get(name)
        if plane is None:
            h, w = self.shape
            packed = self.packed_fg if name == "fg" else self.packed_motion
            bits = np.unpackbits(np.frombuffer(packed, np.uint8), count=h * w)
            plane = bits.reshape(h, w).view(bool)
            plane.flags.writeable = False
            if kept is not None:
                kept[name] = plane
        return plane

    def to_picture(self, xyxy: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
        """A frame-pixel box as picture rows and columns ``(y0, x0, y1, x1)``, clipped."""
        h, w = self.shape
        s = float(self.stride)
        x0, y0, x1, y1 = xyxy[0] / s, xyxy[1] / s, xyxy[2] / s, xyxy[3] / s
        # clamped as floats, so that no infinity (a hostile box's ring) or NaN reaches floor
        # and ceil; min(max(v, 0), side), written out: called ~40 times a frame
        x0 = 0 if not x0 > 0 else w if x0 > w else math.floor(x0)
        x1 = 0 if not x1 > 0 else w if x1 > w else math.ceil(x1)
        y0 = 0 if not y0 > 0 else h if y0 > h else math.floor(y0)
        y1 = 0 if not y1 > 0 else h if y1 > h else math.ceil(y1)
        return y0, x0, y1, x1


class BoxMeter:
    """Measures boxes against one frame's masks (integral images, O(1) per box).

    ``cover``: boxes of *other* objects whose pixels are theirs (the core passes the boxes of
    unwatched classes, a car or a bus, that the verifier's own foreground carries). Their
    pixels are left out of every measure: a person's box is carried by its own pixels, not
    by those of a car passing through it. A box with less than :data:`MIN_FREE` of its pixels
    outside the cover is not measured (None): a person wholly in front of a car cannot be
    told from the car by foreground, so the checks abstain rather than call it a phantom.
    """

    def __init__(
        self, masks: SceneMasks, cover: tuple[tuple[float, float, float, float], ...] = ()
    ) -> None:
        self.masks = masks
        fg, motion = masks.foreground(), masks.motion()
        free: npt.NDArray[np.bool_] | None = None
        if cover:
            free = np.ones(fg.shape, bool)
            for box in cover:
                y0, x0, y1, x1 = masks.to_picture(box)
                free[y0:y1, x0:x1] = False
            fg, motion = fg & free, motion & free
        self._planes = (fg, motion & fg if masks.judged else motion, free)
        self._sums: tuple[npt.NDArray[np.int32] | None, ...] | None = None
        self._counted = 0

    def _count(self, plane: int, y0: int, x0: int, y1: int, x1: int) -> int:
        """Pixels set in a rectangle of plane ``plane`` (0: foreground, 1: motion, 2: free):
        counted directly for the first :data:`DIRECT_SUMS` (cheaper than building the
        integral images for a few boxes), then O(1) from the integral images."""
        if self._sums is None:
            mask = self._planes[plane]
            if self._counted < DIRECT_SUMS and mask is not None and y0 <= y1 and x0 <= x1:
                self._counted += 1
                return int(np.count_nonzero(mask[y0:y1, x0:x1]))
            self._sums = tuple(None if m is None else _integral(m) for m in self._planes)
        ii = self._sums[plane]
        assert ii is not None
        return _sum(ii, y0, x0, y1, x1)

    def support(self, xyxy: tuple[float, float, float, float]) -> tuple[float, float] | None:
        """(fit, motion) of a box, or None for a box outside the picture (or, with a cover,
        mostly under it).

        *fit* is the box's foreground density minus that of a ring around it (half a box
        wider each side, a quarter taller), the ring counted at most :data:`CROWD_CAP`: a real
        object fills its box more than its surroundings, a box drawn over moving traffic or an
        empty street does not, and one in a crowd (or a bag on a walking person) still fills
        its box. *motion* is the fraction of the box's pixels that changed in the last
        ~0.1 s and, on a judged frame, are foreground too: a box is carried by its own
        foreground moving, not by a still patch of foreground (a shadow) beside a moving edge
        that is not (a car's, passing along the box). On a frame the model does not judge
        (learning, a moving camera) every changed pixel counts: the foreground says nothing.
        """
        m = self.masks
        y0, x0, y1, x1 = m.to_picture(xyxy)
        area = self._free(y0, x0, y1, x1)
        if area is None:
            return None
        bw, bh = xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]
        ring = (xyxy[0] - bw / 2, xyxy[1] - bh / 4, xyxy[2] + bw / 2, xyxy[3] + bh / 4)
        ry0, rx0, ry1, rx1 = m.to_picture(ring)
        inside = self._count(0, y0, x0, y1, x1)
        around = self._count(0, ry0, rx0, ry1, rx1) - inside
        ring_area = self._area(ry0, rx0, ry1, rx1) - area
        ring_density = around / ring_area if ring_area > 0 else 0.0
        fit = inside / area - min(ring_density, CROWD_CAP)
        moved = self._count(1, y0, x0, y1, x1) / area
        return fit, moved

    def foot(self, xyxy: tuple[float, float, float, float]) -> float | None:
        """The foreground density (outside the cover) where the box's object stands: its
        lowest :data:`FOOT_BAND` of rows, over :data:`FOOT_WIDTH` box heights (at most its
        width) centred on its foot point; None when less than :data:`MIN_FREE` of that is in
        the picture and outside the cover. A box stretched below its object's feet, or
        widened past its side, has bare ground there."""
        return self.feet(xyxy)[0]

    def feet(self, xyxy: tuple[float, float, float, float]) -> tuple[float | None, float | None]:
        """:meth:`foot`, and what :meth:`support`'s *motion* is over the same foot band
        (None as :meth:`foot`): a box is standing still where it stands even while others
        pass over its top (ADR 0048's review)."""
        y0, x0, y1p, x1p = self.masks.to_picture(foot_band(xyxy))
        area = self._free(y0, x0, y1p, x1p)
        if area is None:
            return None, None
        return self._count(0, y0, x0, y1p, x1p) / area, self._count(1, y0, x0, y1p, x1p) / area

    @property
    def free(self) -> npt.NDArray[np.bool_] | None:
        """The picture's pixels outside the cover (None: no cover, every pixel is free)."""
        return self._planes[2]

    def covers(self, xyxy: tuple[float, float, float, float]) -> bool:
        """The cover leaves out some of the box's pixels."""
        if self._planes[2] is None:
            return False
        y0, x0, y1, x1 = self.masks.to_picture(xyxy)
        return y1 > y0 and x1 > x0 and self._area(y0, x0, y1, x1) < (y1 - y0) * (x1 - x0)

    def _free(self, y0: int, x0: int, y1: int, x1: int) -> int | None:
        """Pixels of the rectangle outside the cover, or None when they are none or fewer
        than :data:`MIN_FREE` of it: too little to measure."""
        area = self._area(y0, x0, y1, x1)
        return None if area <= 0 or area < MIN_FREE * (y1 - y0) * (x1 - x0) else area

    def _area(self, y0: int, x0: int, y1: int, x1: int) -> int:
        """Pixels of the rectangle outside the cover."""
        if self._planes[2] is None:
            return (y1 - y0) * (x1 - x0)
        return self._count(2, y0, x0, y1, x1)


_Plane = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class _Kept:
    """A background set aside when the model began to relearn after a judged frame, with
    what it was judging by: its noise, spectrum, foreground runs, and the pts of its last
    judged frame (ADR 0056)."""

    bg: _Plane
    noise: _Plane
    spectrum: npt.NDArray[np.complex64]
    run_age: _Plane | None
    run_gap: _Plane | None
    pts_s: float


def _foreground(
    img: _Plane, bg: _Plane, noise: _Plane
) -> tuple[_Plane, _Plane, npt.NDArray[np.bool_]]:
    """A picture's step from the background, its distance (the step less its median: a
    global change of gain or exposure is no object), and its foreground."""
    step = img - bg
    dist = np.abs(step - _median(step[::4, ::4]))
    return step, dist, dist > np.maximum(MIN_DIFF, NOISE_K * noise)


class ForegroundModel:
    """A camera's background: running average, per-pixel noise, selective update.

    Fed one :class:`ScenePicture` per frame (:meth:`observe`); never reads a clock.
    """

    def __init__(self) -> None:
        self._bg: npt.NDArray[np.float32] | None = None
        self._noise: npt.NDArray[np.float32] | None = None
        self._recent: deque[tuple[float, npt.NDArray[np.float32]]] = deque(maxlen=16)
        self._spectra: tuple[npt.NDArray[np.float32], npt.NDArray[np.complex64]] | None = None
        """The last picture :func:`_shift` was given and its spectrum (taken once)."""
        self._samples: list[npt.NDArray[np.float32]] = []
        self._sampled_at = -math.inf
        self._pts: float | None = None
        self._learn_until = 0.0
        self._learn_note = "learning the background"
        self._run_age: npt.NDArray[np.float32] | None = None
        """Per pixel, how long its current foreground run has lasted on judged frames
        (seconds; 0: in no run)."""
        self._run_gap: npt.NDArray[np.float32] | None = None
        """Per pixel (as above), how long since it was last in the foreground (seconds)."""
        self._newest: SceneMasks | None = None
        """The masks :meth:`observe` returned last (they keep their planes unpacked)."""
        self._judged_at: float | None = None
        """The pts of the last frame judged."""
        self._kept: _Kept | None = None
        """The background a relearn after a judged frame set aside (:meth:`_resumed`)."""

    def observe(self, pts_s: float, picture: ScenePicture) -> SceneMasks:
        """Feed the next frame's picture; returns its masks (unjudged while learning), which
        keep their planes once unpacked until the next frame's come."""
        masks = self._observe(pts_s, picture)
        if self._newest is not None:
            self._newest.keep_unpacked(False)
        masks.keep_unpacked(True)
        self._newest = masks
        return masks

    def _observe(self, pts_s: float, picture: ScenePicture) -> SceneMasks:
        img = picture.pixels.astype(np.float32)
        bg, noise = self._bg, self._noise
        if bg is None or noise is None or bg.shape != img.shape or self._pts is None:
            return self._restart(pts_s, picture, img, "learning the background")
        if pts_s <= self._pts:
            raise RuntimeError(f"expected a pts after {self._pts}, got {pts_s}")
        dt = run_dt = pts_s - self._pts
        self._pts = pts_s
        step, dist, fg = _foreground(img, bg, noise)
        motion = self._motion(pts_s, img)
        self._recent.append((pts_s, img))
        fraction, moved = _share(fg), _share(motion)
        if moved > CUT_FRACTION:
            cut = f"{moved:.0%} of the picture changed in one step (a cut)"
            restart = self._restart(pts_s, picture, img, f"relearning the background: {cut}")
            return dataclasses.replace(restart, cut=True)
        if self._samples:
            back = self._resumed(pts_s, img, moved)
            if back is None:
                self._learn(pts_s, img)
                return self._masks(pts_s, picture, fg, motion, False, fraction)
            bg, noise, run_dt, (step, dist, fg) = back  # (learnt one frame's worth, no more)
            fraction = _share(fg)
        else:
            change = self._global_change(fraction, moved, img)
            if change is not None:
                return self._restart(pts_s, picture, img, f"relearning the background: {change}")
        a_bg = np.float32(1.0 - math.exp(-dt / BACKGROUND_TAU_S))
        a_fg = np.float32(1.0 - math.exp(-dt / FOREGROUND_TAU_S))
        step *= _pick(fg, a_fg, a_bg)  # in place, as bg += where(...) * (img - bg)
        bg += step
        spread = np.minimum(dist, 4 * MIN_DIFF, out=dist)
        spread -= noise
        spread *= _pick(fg, np.float32(0.0), a_bg)
        noise += spread
        self._runs(run_dt, fg)
        self._judged_at = pts_s
        return self._masks(pts_s, picture, fg, motion, True, fraction)

    @property
    def running(self) -> bool:
        """The foreground runs are kept: the newest frame was judged (ADR 0048)."""
        return self._run_age is not None

    def _runs(self, dt: float, fg: npt.NDArray[np.bool_]) -> None:
        """Carry each pixel's foreground run on by ``dt``: it begins when the pixel enters the
        foreground and ends after :data:`RUN_GAP_S` out of it."""
        age, gap = self._run_age, self._run_gap
        if age is None or gap is None or age.shape != fg.shape:
            age = self._run_age = np.zeros(fg.shape, np.float32)
            gap = self._run_gap = np.full(fg.shape, _NEVER, np.float32)
        step = np.float32(dt)
        gap += step
        gap *= ~fg
        age += step
        age *= gap <= np.float32(RUN_GAP_S)

    def foreign_share(
        self, frame: SceneMasks, rows: Rows, cover: Sequence[tuple[Rows, float]], margin_s: float
    ) -> float | None:
        """How much of the foreground in picture rectangle ``rows`` (where a box stands) is not
        the track's own (ADR 0048). ``cover``: since when the track's boxes covered which
        pixels without a break, as nested rectangles with their pts, newest (largest) first
        (:func:`~kontur.verifier.history.extend_cover`). Of the pixels of ``rows`` in the
        foreground of ``frame`` (the masks of the box's own frame, which a late report puts
        behind the newest), the share whose run began more than ``margin_s`` before the
        track's boxes began to cover them (or that no rectangle covers): foreground that was
        there before the track came, a suitcase or a parked car under a phantom. A person
        brings their foreground with them. A pixel whose run now began after ``frame`` is
        not in the run that frame saw, and that run's start is gone: it counts as not the
        track's own (ADR 0051). None when fewer than 4 such pixels, or the newest frame was
        not judged."""
        age, now = self._run_age, self._pts
        if age is None or now is None or age.shape != frame.shape:
            return None
        y0, x0, y1, x1 = rows
        y0, x0 = max(y0, 0), max(x0, 0)
        here = frame.foreground()[y0:y1, x0:x1]
        n = int(np.count_nonzero(here))
        if n < 4:
            return None
        covered = np.full(here.shape, np.inf)
        for (cy0, cx0, cy1, cx1), since in cover:  # inward: each older and smaller
            ys = slice(max(cy0 - y0, 0), max(cy1 - y0, 0))
            covered[ys, max(cx0 - x0, 0) : max(cx1 - x0, 0)] = since
        began = now - age[y0:y1, x0:x1].astype(np.float64)
        foreign = (began < covered - margin_s) | (began > frame.pts_s + 1e-6)
        return int(np.count_nonzero(here & foreign)) / n

    def ghost_ratio(self, rows: Rows, picture: npt.NDArray[np.uint8]) -> float | None:
        """Edges ``picture`` (the box's frame's) has along the outline of the foreground in
        picture rectangle ``rows`` (grown by :data:`OUTLINE_MARGIN`), over the edges the
        background has there (ADR 0049). A real object's outline is an edge in the picture
        (the object against the ground); that of a *ghost*, the bare ground a long-standing
        object left (the background had learnt it), is an edge in the background only: a
        ratio well under 1. The outline is the first and last foreground pixel of each row and
        column (not the rectangle's border): the holes where an object matches the ground
        behind it are not its outline. None when the newest frame was not judged, the picture
        is not the model's size, or the outline has fewer than 8 pixels."""
        bg, noise = self._bg, self._noise
        if self._run_age is None or bg is None or noise is None or picture.shape != bg.shape:
            return None
        h, w = bg.shape
        y0, x0, y1, x1 = rows  # grown by OUTLINE_MARGIN: a box cut into its object keeps
        m = OUTLINE_MARGIN  # the object's outline (not the holes inside it)
        y0, x0, y1, x1 = max(y0 - m, 1), max(x0 - m, 1), min(y1 + m, h - 1), min(x1 + m, w - 1)
        if y1 - y0 < 3 or x1 - x0 < 3:
            return None
        img = picture.astype(np.float32)
        fg = np.abs(img[y0:y1, x0:x1] - bg[y0:y1, x0:x1])
        outline = _outline(fg > np.maximum(MIN_DIFF, NOISE_K * noise[y0:y1, x0:x1]))
        if int(np.count_nonzero(outline[0]) + np.count_nonzero(outline[1])) < 8:
            return None
        across_bg = float(_across(bg, y0, x0, y1, x1, outline))
        return float(_across(img, y0, x0, y1, x1, outline)) / max(across_bg, 1.0)

    def _global_change(
        self,
        fraction: float,
        moved: float,
        img: npt.NDArray[np.float32],
        spectrum: npt.NDArray[np.complex64] | None = None,
    ) -> str | None:
        """Why the whole picture changed (a cut, a pan, the lights), or None: ``fraction`` of
        it in the foreground, ``moved`` of it changed in the last ~0.1 s (``spectrum``:
        ``img``'s, when the caller took it)."""
        if fraction > RESET_FRACTION:
            return f"{fraction:.0%} of the picture differs from the background (the lights?)"
        if moved <= CAMERA_CHECK_FRACTION or len(self._recent) < 2:
            return None
        before = self._recent[-2][1]
        kept = self._spectra
        fa = kept[1] if kept is not None and kept[0] is before else _spectrum(before)
        fb = _spectrum(img) if spectrum is None else spectrum
        self._spectra = (img, fb)  # the next frame's "before", if it checks too
        dy, dx = shift_between(fa, fb, (img.shape[0], img.shape[1]))
        if dy == 0 and dx == 0:
            return None
        return f"the picture shifted by ({dx}, {dy}) pixels (the camera moved)"

    def _learn(self, pts_s: float, img: npt.NDArray[np.float32]) -> None:
        """Collect a sample; at the end of learning, the median becomes the background."""
        if pts_s - self._sampled_at >= LEARN_S / (LEARN_SAMPLES - 1) - 1e-6:
            self._samples.append(img)
            self._sampled_at = pts_s
        if pts_s < self._learn_until and len(self._samples) < LEARN_SAMPLES:
            return
        stack = np.stack(self._samples)
        bg = np.median(stack, axis=0).astype(np.float32)
        spread = np.abs(stack - bg).mean(axis=0)
        self._bg, self._noise = bg, np.maximum(spread, MIN_DIFF / NOISE_K).astype(np.float32)
        self._samples, self._kept = [], None  # a background of its own again

    def _resumed(
        self, pts_s: float, img: _Plane, moved: float
    ) -> tuple[_Plane, _Plane, float, tuple[_Plane, _Plane, npt.NDArray[np.bool_]]] | None:
        """While it relearns after a judged frame (ADR 0056): the background set aside back in
        use, when it explains this picture as it would have had nothing happened: the picture
        lies where it lay (whole-pixel phase correlation (0, 0)), no more than
        :data:`RESET_FRACTION` of it differs, and no global change; and it was judging no more
        than :data:`FOREGROUND_TAU_S` before. The camera was jolted and came back, or a
        corrupt frame passed. Returns that background, its noise, the time since its last
        judged frame, and this picture's step, distance and foreground against it; None (the
        relearning goes on) otherwise."""
        kept = self._kept
        if kept is not None and pts_s - kept.pts_s > FOREGROUND_TAU_S:
            kept = self._kept = None  # older than the time it lets a still object in: stale
        if kept is None or kept.bg.shape != img.shape:
            return None
        step, dist, fg = _foreground(img, kept.bg, kept.noise)
        fraction = _share(fg)
        if fraction > RESET_FRACTION:
            return None  # (cheap first: the phase correlation only for a picture it explains)
        spectrum = _spectrum(img)
        if shift_between(kept.spectrum, spectrum, (img.shape[0], img.shape[1])) != (0, 0):
            return None
        if self._global_change(fraction, moved, img, spectrum) is not None:
            return None  # it still moves: a later frame may tell
        self._bg, self._noise, self._samples, self._kept = kept.bg, kept.noise, [], None
        self._run_age, self._run_gap = kept.run_age, kept.run_gap
        return kept.bg, kept.noise, pts_s - kept.pts_s, (step, dist, fg)

    def _restart(self, pts_s: float, picture: ScenePicture, img: _Plane, why: str) -> SceneMasks:
        bg, noise, at = self._bg, self._noise, self._judged_at
        if bg is not None and noise is not None and at is not None and not self._samples:
            spectrum = _spectrum(bg)  # it was judging: set aside, not lost
            self._kept = _Kept(bg, noise, spectrum, self._run_age, self._run_gap, at)
        self._judged_at = None
        self._bg = img.copy()
        self._noise = np.full_like(img, MIN_DIFF / NOISE_K)
        self._recent.clear()
        self._recent.append((pts_s, img))
        self._samples, self._sampled_at = [img], pts_s
        self._pts = pts_s
        self._learn_until = pts_s + LEARN_S
        self._learn_note = why
        self._run_age = self._run_gap = None  # a new background: no run goes on across it
        empty = np.zeros(img.shape, bool)
        return self._masks(pts_s, picture, empty, empty, False, 0.0)

    def _motion(self, pts_s: float, img: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        ref = None
        for t, old in reversed(self._recent):
            ref = old
            if pts_s - t >= MOTION_INTERVAL_S - 1e-6:  # i/10 - (i-1)/10 may round below 0.1
                break
        if ref is None:
            return np.zeros(img.shape, bool)
        moved: npt.NDArray[np.bool_] = np.abs(img - ref) > MIN_DIFF
        return moved

    def _masks(
        self,
        pts_s: float,
        picture: ScenePicture,
        fg: npt.NDArray[np.bool_],
        motion: npt.NDArray[np.bool_],
        judged: bool,
        fraction: float,
    ) -> SceneMasks:
        h, w = fg.shape
        return SceneMasks(
            pts_s=pts_s,
            shape=(h, w),
            stride=picture.stride,
            frame_width=picture.frame_width,
            frame_height=picture.frame_height,
            judged=judged,
            note=None if judged else self._learn_note,
            fg_fraction=fraction,
            cut=False,
            packed_fg=np.packbits(fg).tobytes(),
            packed_motion=np.packbits(motion).tobytes(),
        )
