"""Content coherence: a real object's pixels move with its box (issue 13 §2).

The background model (:mod:`kontur.verifier.foreground`) vouches for a box only where the
camera stands still and the scene behind the box is quiet: it abstains on a panning or
handheld camera, and a fake box walked over busy traffic gets foreground from the cars. This
check needs neither. It compares small grey patches of the verifier's own pictures
(:class:`~kontur.verifier.foreground.ScenePicture`, about 160 pixels wide):

- ``old``: the patch under the track's box in an earlier frame (the *baseline*);
- ``follow``: the patch under the track's box now, same size, centred on the new box;
- ``stay``: the patch now where the old content would be if it had not moved with the box:
  the old box displaced by the camera's own motion between the two frames (a whole-pixel
  shift from phase correlation, :func:`shift_between`; none where the background model saw a
  still camera in both frames).

A real object that moved away from its old place is found under its new box (``follow``
correlates with ``old`` at least as well as ``stay`` does). A box drawn over the background
(a phantom, a replayed or frozen box, one left behind) has moved *relative to the pixels*,
and its old content is still where it was: ``stay`` correlates with ``old`` clearly better
than ``follow``. Normalised cross-correlation (NCC) ignores a change of brightness or
contrast. A step is scored only when the box moved at least :data:`MIN_MOVE` of its own width
or height relative to the background since the baseline (otherwise ``follow`` and ``stay``
overlap and say nothing), both boxes lie wholly inside the picture, the box kept its scale
(:data:`MAX_SCALE`), the old patch has texture (:data:`MIN_TEXTURE`) and the old content
stayed put (NCC(old, stay) ≥ :data:`STAY_NCC`: a real object's old place now shows what was
behind it, so a real track is seldom scored at all).

:func:`measure` gives one step's score (``follow − stay``, or None when not judged); the track
check :class:`~kontur.verifier.checks.ContentCoherence` reads the scores of a track's recent
observations (``ObservedBox.coherence``). Numpy only; a few small slices per track and frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "BASELINES_S",
    "MIN_MOVE",
    "MIN_TEXTURE",
    "STAY_NCC",
    "Baseline",
    "camera_shift",
    "centred",
    "centred_ncc",
    "held",
    "measure",
    "moved",
    "shift_between",
    "spectrum",
]

#: Baselines tried, newest first: the newest observation at least this old (seconds) whose
#: box moved :data:`MIN_MOVE` relative to the background is compared with the current one.
BASELINES_S = (0.3, 0.5, 0.9)
#: A step is judged when the box moved at least this fraction of its width (sideways) or
#: height (up or down) relative to the background: the old and new patches then overlap by
#: at most half.
MIN_MOVE = 0.5
#: The old patch's grey standard deviation must reach this: a flat patch (sky, asphalt)
#: correlates with anything.
MIN_TEXTURE = 5.0
#: The old content "stayed" when it correlates this well with the patch at its old place now.
STAY_NCC = 0.8
#: Picture pixels :func:`held` searches around a box for what it held (a box jitters by about
#: one against its object).
HELD_SEARCH_PX = 1
#: Fewest of a patch's pixels :func:`held` compares when another object's box covers the
#: rest (the share :class:`~kontur.verifier.foreground.BoxMeter` measures a box on, too).
MIN_COMPARED = 0.3
_NEAREST_FIRST = sorted(
    ((dy, dx) for dy in range(-HELD_SEARCH_PX, HELD_SEARCH_PX + 1)
     for dx in range(-HELD_SEARCH_PX, HELD_SEARCH_PX + 1)),
    key=lambda d: abs(d[0]) + abs(d[1]),
)  # fmt: skip
#: Smallest patch side compared (picture pixels).
MIN_SIDE = 3
#: The box's area may differ by at most this factor between the baseline and now: the patches
#: are compared at one scale (an object walking towards the camera grows).
MAX_SCALE = 1.5


@dataclass(frozen=True, slots=True)
class Baseline:
    """An earlier observation's picture and box (frame pixels) to compare a box with."""

    pixels: npt.NDArray[np.uint8]
    stride: int
    xyxy: tuple[float, float, float, float]


def spectrum(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.complex64]:
    """A picture's spectrum for :func:`shift_between` (computed once per picture)."""
    return np.fft.rfft2(pixels.astype(np.float32) - float(pixels.mean())).astype(np.complex64)


def shift_between(
    fa: npt.NDArray[np.complex64], fb: npt.NDArray[np.complex64], shape: tuple[int, int]
) -> tuple[int, int]:
    """The whole-pixel (dy, dx) by which the picture of spectrum ``fb`` is that of ``fa``
    moved (phase correlation; the background dominates the peak when it fills most of the
    picture)."""
    cross = fb * np.conj(fa)
    cross /= np.abs(cross) + 1e-6
    corr = np.fft.irfft2(cross, s=shape)
    y, x = np.unravel_index(int(np.argmax(corr)), corr.shape)
    h, w = shape
    return (int(y) - h if y > h // 2 else int(y)), (int(x) - w if x > w // 2 else int(x))


def camera_shift(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> tuple[int, int]:
    """The whole-pixel (dy, dx) by which picture ``b`` is picture ``a`` moved."""
    return shift_between(spectrum(a), spectrum(b), (a.shape[0], a.shape[1]))


def _patch(
    pixels: npt.NDArray[np.uint8], cy: float, cx: float, h: int, w: int
) -> npt.NDArray[np.float32] | None:
    """The h×w patch centred on (cy, cx) picture pixels, or None when it leaves the picture."""
    y0, x0 = round(cy - h / 2), round(cx - w / 2)
    if y0 < 0 or x0 < 0 or y0 + h > pixels.shape[0] or x0 + w > pixels.shape[1]:
        return None
    return pixels[y0 : y0 + h, x0 : x0 + w].astype(np.float32)


def _inside(xyxy: tuple[float, float, float, float], shape: tuple[int, ...], s: float) -> bool:
    """The box lies inside the picture, off its border by at least a picture pixel."""
    return (
        xyxy[0] >= s
        and xyxy[1] >= s
        and xyxy[2] <= (shape[1] - 1) * s
        and xyxy[3] <= (shape[0] - 1) * s
    )


def moved(
    old: tuple[float, float, float, float],
    new: tuple[float, float, float, float],
    shift_px: tuple[float, float],
) -> float:
    """How far the box moved relative to the background: the larger of its horizontal move
    in widths and its vertical move in heights (``shift_px``: the camera's (dy, dx))."""
    w, h = old[2] - old[0], old[3] - old[1]
    dx = (new[0] + new[2] - old[0] - old[2]) / 2 - shift_px[1]
    dy = (new[1] + new[3] - old[1] - old[3]) / 2 - shift_px[0]
    return max(abs(dx) / w, abs(dy) / h)


def measure(
    base: Baseline,
    pixels: npt.NDArray[np.uint8],
    xyxy: tuple[float, float, float, float],
    shift: tuple[int, int],
) -> float | None:
    """One step's score, ``NCC(old, follow) − NCC(old, stay)`` (negative: the box left its
    content behind), or None when the step says nothing (see the module docstring).

    ``shift``: the camera's whole-pixel (dy, dx) from the baseline's picture to ``pixels``.
    """
    s = float(base.stride)
    if moved(base.xyxy, xyxy, (shift[0] * s, shift[1] * s)) < MIN_MOVE:
        return None
    found = _old_patch(base, pixels, xyxy)
    if found is None:
        return None
    old, h, w, energy = found
    x1, y1, x2, y2 = base.xyxy
    cy, cx = (y1 + y2) / 2 / s, (x1 + x2) / 2 / s
    stay = centred(_patch(pixels, cy + shift[0], cx + shift[1], h, w))
    kept = centred_ncc(old, stay, energy)
    if kept is None or kept < STAY_NCC:
        return None  # the old content did not stay put: no evidence either way
    follows = _follows(old, energy, pixels, xyxy, s, h, w)
    return None if follows is None else follows - kept


def held(
    base: Baseline,
    pixels: npt.NDArray[np.uint8],
    xyxy: tuple[float, float, float, float],
    enough: float = math.inf,
    free: npt.NDArray[np.bool_] | None = None,
) -> float | None:
    """NCC of what the baseline's box held with what ``xyxy`` holds now (a patch of the
    baseline box's size, centred on ``xyxy`` or up to :data:`HELD_SEARCH_PX` from it: the
    best, or the first, nearest first, at ``enough`` or more), however little the box
    moved. A box that stands over the same object holds the same content; one that a
    stream of others passes through does not (ADR 0050). The camera must have stood still
    between the two pictures. ``free``: the picture's pixels to compare (the rest are
    another object's, over the box now); the patch's pixels outside it are left out of
    both. Whatever the two boxes' sizes: the worker sizes its boxes, and a lag it could
    make unanswerable by resizing a box for a frame would let a stream that repeats at the
    other lag through. None when that says nothing: partly outside the picture, a patch
    under :data:`MIN_SIDE`, flat, or under :data:`MIN_COMPARED` of it free."""
    found = _old_patch(base, pixels, xyxy, flat=free is None, any_scale=True)
    if found is None:
        return None
    old, h, w, energy = found
    s = float(base.stride)
    cy, cx = (xyxy[1] + xyxy[3]) / 2 / s, (xyxy[0] + xyxy[2]) / 2 / s
    x1, y1, x2, y2 = base.xyxy
    flat = free is None and _flat(old, energy)
    then = None  # the baseline patch as it was (``old`` is centred): for a mask or a flat one
    if free is not None or flat:
        then = _patch(base.pixels, (y1 + y2) / 2 / s, (x1 + x2) / 2 / s, h, w)
    if flat:
        return _flat_alike(then, _patch(pixels, cy, cx, h, w))
    best = None
    for dy, dx in _NEAREST_FIRST:
        now = _patch(pixels, cy + dy, cx + dx, h, w)
        if now is not None and then is not None and free is not None:
            score = _masked_ncc(then, now, _patch_mask(free, cy + dy, cx + dx, h, w))
        else:
            score = centred_ncc(old, centred(now), energy)
        if score is not None and (best is None or score > best):
            best = score
            if best >= enough:
                break  # the caller's threshold is met: the rest cannot change its answer
    return best


def _flat_alike(
    then: npt.NDArray[np.float32] | None, now: npt.NDArray[np.float32] | None
) -> float | None:
    """For a flat baseline patch ``then`` (a figure of one colour that fills its box): 1.0
    when the box's patch ``now`` is flat too and of the same grey (within
    :data:`MIN_TEXTURE`), the same flat object; None otherwise, a flat patch says nothing of
    what replaced it."""
    if then is None or now is None:
        return None
    gap = abs(float(then.mean()) - float(now.mean()))
    flat_now = centred(now)
    return 1.0 if flat_now is not None and _flat(flat_now) and gap < MIN_TEXTURE else None


def _patch_mask(
    free: npt.NDArray[np.bool_], cy: float, cx: float, h: int, w: int
) -> npt.NDArray[np.bool_]:
    """The h×w part of ``free`` where :func:`_patch` takes its patch (it is inside)."""
    y0, x0 = round(cy - h / 2), round(cx - w / 2)
    return free[y0 : y0 + h, x0 : x0 + w]


def _masked_ncc(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], mask: npt.NDArray[np.bool_]
) -> float | None:
    """NCC of two patches over ``mask``'s pixels; None under :data:`MIN_COMPARED` of them,
    or flat."""
    if mask.shape != a.shape or int(np.count_nonzero(mask)) < MIN_COMPARED * mask.size:
        return None
    old = centred(a[mask])  # (a float32 patch's pixels, copied out by the mask)
    if old is None or _flat(old):
        return None
    return centred_ncc(old, centred(b[mask]))


def _old_patch(
    base: Baseline,
    pixels: npt.NDArray[np.uint8],
    xyxy: tuple[float, float, float, float],
    flat: bool = False,
    any_scale: bool = False,
) -> tuple[npt.NDArray[np.float32], int, int, float] | None:
    """The baseline box's patch, centred, with its height and width in picture pixels and
    its energy (``old @ old``, which every NCC with it needs: taken once); None
    when a box is partly outside its picture, the area changed by more than
    :data:`MAX_SCALE` (unless ``any_scale``), a side is under :data:`MIN_SIDE` or (unless
    ``flat``) the patch is flat."""
    s = float(base.stride)
    if not (_inside(base.xyxy, base.pixels.shape, s) and _inside(xyxy, pixels.shape, s)):
        return None  # partly outside the picture: part of the object is not in the patch
    x1, y1, x2, y2 = base.xyxy
    scale = (xyxy[2] - xyxy[0]) * (xyxy[3] - xyxy[1]) / ((x2 - x1) * (y2 - y1))
    if not any_scale and not 1 / MAX_SCALE <= scale <= MAX_SCALE:
        return None
    h, w = round((y2 - y1) / s), round((x2 - x1) / s)
    if h < MIN_SIDE or w < MIN_SIDE:
        return None
    old = centred(_patch(base.pixels, (y1 + y2) / 2 / s, (x1 + x2) / 2 / s, h, w))
    if old is None:
        return None
    energy = float(old @ old)
    if not flat and _flat(old, energy):
        return None  # a flat patch (sky, asphalt) correlates with anything
    return old, h, w, energy


def _flat(centred_patch: npt.NDArray[np.float32], energy: float | None = None) -> bool:
    """A centred patch's grey standard deviation is under :data:`MIN_TEXTURE` (``energy``:
    its ``centred_patch @ centred_patch``, when the caller has it)."""
    if energy is None:
        energy = float(centred_patch @ centred_patch)
    return energy < MIN_TEXTURE**2 * centred_patch.size


def _follows(
    old: npt.NDArray[np.float32],
    energy: float,
    pixels: npt.NDArray[np.uint8],
    xyxy: tuple[float, float, float, float],
    s: float,
    h: int,
    w: int,
) -> float | None:
    """NCC of ``old`` (a centred patch, of ``energy``) with the h×w patch centred on box
    ``xyxy`` in ``pixels``."""
    follow = centred(_patch(pixels, (xyxy[1] + xyxy[3]) / 2 / s, (xyxy[0] + xyxy[2]) / 2 / s, h, w))
    return centred_ncc(old, follow, energy)


def centred(patch: npt.NDArray[np.float32] | None) -> npt.NDArray[np.float32] | None:
    """A float32 patch flattened (in place when contiguous), less its mean (None stays
    None)."""
    if patch is None:
        return None
    flat = patch.ravel()
    flat -= mean_f32(flat)
    return flat


def mean_f32(a: npt.NDArray[np.float32]) -> np.float32:
    """``a.mean()`` of a float32 array, bit for bit (numpy's float32 sum over the count in
    float64, rounded to float32), without its overhead."""
    return np.float32(float(a.sum()) / a.size)


def centred_ncc(
    old: npt.NDArray[np.float32],
    new: npt.NDArray[np.float32] | None,
    energy: float | None = None,
) -> float | None:
    """NCC of two centred patches; None when ``new`` is missing or flat. ``energy``: ``old @
    old``, when the caller has it (one patch is compared with several)."""
    if new is None:
        return None
    if energy is None:
        energy = float(old @ old)
    den = math.sqrt(energy * float(new @ new))
    return float(old @ new) / den if den > 1e-6 else None
