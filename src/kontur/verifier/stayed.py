"""A settled track that vanished while its pixels stayed where they were.

:mod:`kontur.verifier.vanished` follows a dropped track on the verifier's own foreground, so
it needs a learnt background: it abstains on a handheld or panning camera, and for
:data:`~kontur.verifier.foreground.LEARN_S` after every cut. This check needs no background.
It rests on one fact about the worker: a detector is a function of the pixels. A worker that
was *sure* of an object (:func:`~kontur.verifier.checks.settled_run`: a run in a watched class
group of :data:`~kontur.verifier.checks.SETTLED_RUN_S`, with a window of boxes at a mean
confidence of :data:`~kontur.verifier.checks.SETTLED_CONFIDENCE` or more; the newest such run
in the track's history, so fading the confidence or relabelling for a frame before the drop
changes nothing) and then reports nothing there, while the picture under the box it was sure
of has not changed, has not looked again: it is hiding the object (suppressed, or replayed
from an emptier moment).

When such a track is missing from the worker's frame, the verifier keeps the grey patch under
that box, from the picture of its frame (:class:`~kontur.verifier.foreground.ScenePicture`
pixels, the part inside the picture, at least :data:`MIN_PIXELS` with texture:
:data:`~kontur.verifier.coherence.MIN_TEXTURE`), if its foot point is in a watched zone (a
patch that can raise no reason takes no place in the bounded list). Where the background
model judged that frame and the pixels under the box moved (ADR 0054), only the patch's
pixels in the verifier's own foreground then are kept, the object's and not the scenery's; a
box with under :data:`OBJECT_SHARE` of them is not kept at all (a walker who passed a sign
leaves the sign's pixels unchanged, not their own). A box whose pixels stood still is
compared whole: what stands long becomes background. Then, on each following frame:

- the track reported again over the patch, or the box of a new track of the same class group
  (not one reported beside it when it was last seen; not a box over most of the frame)
  covering :data:`~kontur.verifier.vanished.COVERED` of it, explains it: it is dropped;
- otherwise the patch is looked for at its place and up to :data:`SEARCH_PX` picture pixels
  around it (a handheld camera drifts); it *stays* when the best normalised cross-correlation
  with the patch as it last stayed reaches :data:`STAY_NCC` and with the first patch
  :data:`FIRST_NCC` (brightness and contrast do not matter), and the place moves there;
- a box at the frame's border that moved towards it is not kept: its object may have left;
- it is dropped after :data:`~kontur.verifier.vanished.MAX_AGE_S`, or once it has not stayed
  for :data:`~kontur.verifier.vanished.MAX_GAP_S`; a cut drops every patch.

An object that left, was covered by a passer-by or turned away changes the pixels under its
box; one that stays unchanged for ``stayed_seconds`` (on at least
:data:`~kontur.verifier.vanished.PERSIST` of the frames, the newest too) gives its zone a
scene reason, like evasion: "nothing there" is unverified (ADR 0025). Cost: at most 25 NCCs of
one small patch per dropped track and frame (one while it stays put), for two seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kontur.geometry import Box, covered_share, foot_point
from kontur.verifier.coherence import MIN_SIDE, MIN_TEXTURE, centred, centred_ncc
from kontur.verifier.history import ObservedBox
from kontur.verifier.vanished import (
    BORDER_PX,
    COVERED,
    MAX_AGE_S,
    MAX_GAP_S,
    MAX_GHOSTS,
    covered,
    oldest_held,
)
from kontur.verifier.watch import WatchedZone

__all__ = ["SEARCH_PX", "STAY_NCC", "StayedTracks"]

#: The patch "stayed" when the picture at its place now correlates this well with it as it
#: was on the previous frame it stayed (a person who stays fidgets; a handheld camera
#: drifts and zooms: the patch is followed step by step) ...
STAY_NCC = 0.9
#: ... and this well with it as it was when the track vanished (step by step, an object that
#: left would fade into the background behind it: the first patch bounds the drift).
FIRST_NCC = 0.6
#: Fewest picture pixels in a patch: a correlation over fewer says little.
MIN_PIXELS = 16
#: Picture pixels (about 1/160 of the frame's width each) searched around the patch's place.
SEARCH_PX = 2
#: On a frame the background model judged, only the box's pixels in the verifier's own
#: foreground then (the object's, not the scenery's) are compared, when they are at least
#: this share of the box (and :data:`MIN_PIXELS`): a walker who passed a sign and left it
#: behind leaves the sign's pixels unchanged, not their own (ADR 0054).
OBJECT_SHARE = 0.25

#: A box touching the frame's border whose far edge moved towards it by this share of its
#: width (or height) over the settled run is an object that may have left.
LEAVING = 0.1

#: The offsets searched, its own place first.
_OFFSETS = sorted(
    (
        (dy, dx)
        for dy in range(-SEARCH_PX, SEARCH_PX + 1)
        for dx in range(-SEARCH_PX, SEARCH_PX + 1)
    ),
    key=lambda o: abs(o[0]) + abs(o[1]),
)


@dataclass(slots=True)
class _Patch:
    track_id: int
    label: str
    group: str
    xyxy: Box
    """The box in frame pixels, moved with the patch."""
    first: npt.NDArray[np.float32]
    """The patch under the box the detector was last sure of, flattened and centred (its
    object's pixels only, where ``mask`` says)."""
    old: npt.NDArray[np.float32]
    """The patch as it was on the last frame it stayed."""
    top: int
    left: int
    height: int
    width: int
    lost_at: float
    last_hit: float
    others: frozenset[int]
    """The other tracks reported when it was last seen: their boxes explain nothing (the
    object stayed visible beside or behind them while it was tracked)."""
    mask: npt.NDArray[np.bool_] | None = None
    """The patch's pixels that were the object's (the verifier's own foreground on the
    frame it was last sure of); None: every pixel."""
    frames: int = 0
    hits: int = 0
    best: float = 0.0


@dataclass(slots=True)
class StayedTracks:
    """Per camera: patches of settled tracks that vanished, followed on the verifier's pictures."""

    zones: tuple[WatchedZone, ...]
    stayed_seconds: float
    group: Callable[[str], str] = str
    """A class's group key (:meth:`~kontur.verifier.watch.ClassGroups.key`)."""
    _patches: list[_Patch] = field(default_factory=list)

    def reset(self) -> None:
        """Forget every patch (the picture was cut)."""
        self._patches.clear()

    def lost(
        self,
        track_id: int,
        run: list[ObservedBox],
        picture: tuple[npt.NDArray[np.uint8], int, int, int],
        since: float,
        others: frozenset[int] = frozenset(),
        foreground: npt.NDArray[np.bool_] | None = None,
    ) -> None:
        """Track ``track_id`` is missing from the newest frame. ``run``: what the detector was
        sure of (:func:`~kontur.verifier.checks.settled_run`), ending with the box whose patch
        is kept, seen on ``picture`` (pixels, stride, frame width and height); ``since``: when
        the track was last reported; ``others``: the tracks reported beside it then;
        ``foreground``: the verifier's own foreground mask of that picture, when its
        background model judged it (:data:`OBJECT_SHARE`). Kept only with a foot point in a
        zone, a textured patch, and not leaving the picture."""
        sure = run[-1]
        pixels, s, fw, fh = picture
        if len(self._patches) >= MAX_GHOSTS or not all(map(math.isfinite, sure.xyxy)):
            return
        if not any(z.contains(*foot_point(sure.xyxy, fw, fh)) for z in self.zones):
            return  # it could raise no reason: a worker's decoys must not fill the list
        if _leaving(run[0].xyxy, sure.xyxy, fw, fh):
            return  # its object may have left: what is under the box now is what was behind it
        ph, pw = pixels.shape[:2]
        x1, y1, x2, y2 = sure.xyxy
        top, left = max(0, math.floor(y1 / s)), max(0, math.floor(x1 / s))
        bottom, right = min(ph, math.ceil(y2 / s)), min(pw, math.ceil(x2 / s))
        if bottom - top < MIN_SIDE or right - left < MIN_SIDE:
            return
        mask = None if foreground is None else foreground[top:bottom, left:right].copy()
        if mask is not None and np.count_nonzero(mask) < max(MIN_PIXELS, OBJECT_SHARE * mask.size):
            return  # nothing stands out under the box: unchanged pixels would be the scenery's
        old = _centred(pixels[top:bottom, left:right], mask)
        if old.size < MIN_PIXELS or float(old @ old) < MIN_TEXTURE**2 * old.size:
            return  # too small to say, or flat (a wall, asphalt): correlates with anything
        self._patches.append(
            _Patch(
                track_id, sure.label, self.group(sure.label), sure.xyxy, old, old, top, left,
                bottom - top, right - left, since, since, others, mask,
            )
        )  # fmt: skip

    def observe(
        self,
        picture: tuple[npt.NDArray[np.uint8], int, int, int],
        reported: dict[int, tuple[Box, str]],
        pts_s: float,
    ) -> list[str]:
        """Follow every patch on one frame's ``picture`` (pixels, stride, frame width and
        height; ``reported``: every well-formed box reported for it, with its class, by track
        id); the zones' reasons."""
        pixels, s, fw, fh = picture
        kept = []
        for p in self._patches:
            if pts_s - p.lost_at > MAX_AGE_S or self._explained(p, reported, fw, fh):
                continue
            if self._step(p, pixels, s, pts_s):
                kept.append(p)
        self._patches = kept
        return self._reasons(pts_s, fw, fh)

    def _explained(self, p: _Patch, reported: dict[int, tuple[Box, str]], fw: int, fh: int) -> bool:
        """The track is reported again over its patch, or a new track of its class group (one
        not reported beside it when it was last seen) covers the patch."""
        again = reported.get(p.track_id)
        if again is not None:  # any size: a track reported again is no longer hidden
            return covered_share(p.xyxy, again[0]) >= COVERED
        new = [
            box
            for tid, (box, label) in reported.items()
            if tid not in p.others and self.group(label) == p.group
        ]
        return covered(p.xyxy, new, fw, fh)

    @staticmethod
    def _step(p: _Patch, pixels: npt.NDArray[np.uint8], s: int, pts_s: float) -> bool:
        """Look for ``p`` at its place, then around it; False once it is to be dropped."""
        ph, pw = pixels.shape[:2]
        best: tuple[float, int, int, npt.NDArray[np.float32]] | None = None
        for dy, dx in _OFFSETS:
            top, left = p.top + dy, p.left + dx
            if top < 0 or left < 0 or top + p.height > ph or left + p.width > pw:
                continue
            now = _centred(pixels[top : top + p.height, left : left + p.width], p.mask)
            score = _ncc(p.old, now)
            if best is None or score > best[0]:
                best = (score, dy, dx, now)
            if dy == dx == 0 and score >= STAY_NCC:
                break  # unmoved: the usual case of a patch that stays costs one NCC
        p.frames += 1
        if best is not None and best[0] >= STAY_NCC and _ncc(p.first, best[3]) >= FIRST_NCC:
            score, dy, dx, p.old = best
            p.hits, p.last_hit, p.best = p.hits + 1, pts_s, _ncc(p.first, p.old)
            p.top, p.left = p.top + dy, p.left + dx
            x1, y1, x2, y2 = p.xyxy
            p.xyxy = (x1 + dx * s, y1 + dy * s, x2 + dx * s, y2 + dy * s)
            return True
        return pts_s - p.last_hit <= MAX_GAP_S

    def _reasons(self, pts_s: float, fw: int, fh: int) -> list[str]:
        reasons = []
        for zone in self.zones:
            p = oldest_held(zone, self._patches, pts_s, self.stayed_seconds, fw, fh)
            if p is None:
                continue
            reasons.append(
                f"zone {zone.zone_id}: track {p.track_id} ({p.label}) stayed hidden "
                f"{pts_s - p.lost_at:.1f} s while the pixels under the box it was last sure "
                f"of stayed unchanged (NCC {p.best:.2f}, {p.hits} of {p.frames} frames); "
                "expected the track: nothing-there is unverified (possible evasion)"
            )
        return reasons


def _leaving(first: Box, last: Box, fw: int, fh: int) -> bool:
    """``last`` touches a border of the ``fw`` × ``fh`` frame, and its far edge moved towards
    that border by :data:`LEAVING` of the box's size since ``first`` (an object going out
    shrinks into the border; one growing or standing there does not)."""
    w, h = max(last[2] - last[0], 1.0), max(last[3] - last[1], 1.0)
    return (
        (last[0] <= BORDER_PX and first[2] - last[2] >= LEAVING * w)
        or (last[2] >= fw - BORDER_PX and last[0] - first[0] >= LEAVING * w)
        or (last[1] <= BORDER_PX and first[3] - last[3] >= LEAVING * h)
        or (last[3] >= fh - BORDER_PX and last[1] - first[1] >= LEAVING * h)
    )


def _centred(
    patch: npt.NDArray[np.uint8], mask: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.float32]:
    """The patch's pixels (those of ``mask`` only, when given), flattened and centred."""
    flat = centred((patch if mask is None else patch[mask]).astype(np.float32))
    assert flat is not None
    return flat


def _ncc(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """NCC of two centred patches; 0.0 when one is flat."""
    return centred_ncc(a, b) or 0.0
