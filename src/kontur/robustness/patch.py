"""A printable adversarial patch against person detection, optimised black-box.

The threat is Thys et al. 2019 ("Fooling automated surveillance cameras", CVPRW): a patch
printed and worn on the torso that makes a person detector miss its wearer. Here the model
is only ever *run* (``detector.infer(image) -> Detections``), never differentiated: the
patch is found by random search from scores alone and the loss in person recall is measured
on frames the search never saw.

Steps of :func:`attack_patch`, in this order:

1. pick the search frames (at most ``batch`` of ``train``, evenly spaced) and check the
   inputs: a ``person`` class, ground-truth persons in the search and test frames, no frame
   in both ``train`` and ``test`` (by :attr:`AuditFrame.index`), a budget of at least two
   passes over the search frames;
2. draw the *control* patch (random cells of the palette) and, once, the light random
   transforms of every search placement (expectation over transformation, Athalye et al.
   2018, the draws held fixed so that the objective is deterministic);
3. random search from the control patch, for at most ``queries`` detector calls (below);
4. measure person recall on the test frames, clean, with the control patch and with the
   optimised patch, each patch pasted at the same places with the same fresh transforms.

Choices (ADR draft: ``docs/_pending/robust-patch-ADR.md``):

- *Printable.* The patch is a ``patch_px`` x ``patch_px`` grid of solid cells, each one of
  the 8 corners of the RGB cube (:data:`PALETTE`: black, white and the six primaries and
  secondaries), which a printer reproduces with solid inks and which survive the camera's
  blur better than fine texture. The cells are the patch: :attr:`PatchResult.patch` is
  ``uint8`` (BGR like the frames) and is printed by scaling it up with nearest neighbour.
- *Placement* (Thys et al. §3.2): a square of side ``rel_size`` x the gt box height, centred
  horizontally on the box and at :data:`TORSO` of its height from the top; rendered as
  printed cells (nearest neighbour) sampled by the camera (bilinear). The default 0.3 is a
  print covering the front of the torso (about 50 cm on a 1.75 m person, a T-shirt print as
  in Xu et al. 2020); Thys et al.'s 40 cm board (0.2 x the box diagonal) is about 0.22 here.
  Transforms: scale x U(0.9, 1.1), rotation U(-10, 10) degrees, brightness x U(0.8, 1.1),
  shift U(-5 %, 5 %) of the box width.
- *Objective* (to minimise, scores only): the sum over search gt persons of the highest
  person confidence among detections with IoU >= :data:`OBJECTIVE_IOU` with that person
  (0 when there is none), i.e. Thys et al.'s ``L_obj`` taken per person. The detector given
  should have a low ``score_threshold`` (e.g. 0.01) so that low scores still carry signal;
  recall is counted at ``score_threshold`` (the release's own). Greedy NMS keeps the same
  high-score boxes at any lower threshold, so filtering afterwards changes nothing.
- *Optimiser*: Square Attack's random search (Andriushchenko et al. 2020, Alg. 1) in the
  patch form of Sparse-RS (Croce et al. 2022, §3.3): each step recolours one random square
  of cells with one random palette colour and keeps the change when the objective over all
  search frames does not get worse; the square's side shrinks on Square Attack's schedule
  (by the share of the budget spent). A step scores the search frames in random order and
  drops the candidate after half of them if it is already worse there (:func:`_race`), so
  a step costs half or all of the search frames in queries. ART 1.20 has no attack that
  fits (the ADR says why).
- *Evaluation*: recall at IoU >= 0.5 with greedy matching (highest confidence first).
  :attr:`PatchResult.drop` is ``recall_control - recall_patch``: what the optimised pattern
  costs beyond the occlusion by a patch of the same size at the same places.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import supervision as sv

from kontur.robustness.errors import AuditFramesError
from kontur.robustness.frames import AuditFrame
from kontur.robustness.quality import box_iou, detection_quality, person_detections
from kontur.worker.detectors import Detector

__all__ = [
    "MATCH_IOU",
    "OBJECTIVE_IOU",
    "PALETTE",
    "TORSO",
    "PatchResult",
    "apply_patch",
    "attack_patch",
    "placements",
]

#: The printable colours: the 8 corners of the RGB cube (BGR order, like the frames).
PALETTE: np.ndarray = np.array(
    [[b, g, r] for b in (0, 255) for g in (0, 255) for r in (0, 255)], dtype=np.uint8
)
PALETTE.flags.writeable = False
#: Where the patch's centre sits, as a fraction of the gt box height from its top.
TORSO = 0.4
#: IoU at which a detection counts as one of a gt person (recall, as in MOTChallenge).
MATCH_IOU = 0.5
#: IoU at which a detection's score counts towards a gt person in the objective.
OBJECTIVE_IOU = 0.3
#: Square Attack's schedule: the fraction of the patch recoloured halves at these fractions
#: of the steps (Andriushchenko et al. 2020, App. B, rescaled to the budget).
_HALVE_AT = (0.02, 0.1, 0.25, 0.4, 0.6, 0.8)
_P_INIT = 0.3
#: Ranges of the light random transforms (expectation over transformation).
_SCALE = (0.9, 1.1)
_ANGLE = (-10.0, 10.0)
_GAIN = (0.8, 1.1)
_SHIFT = 0.05


@dataclass(frozen=True, eq=False)
class PatchResult:
    """What the patch attack measured on the test frames.

    Recalls are person recall at ``score_threshold``, IoU >= :data:`MATCH_IOU`, over
    ``persons`` gt boxes: clean, with the control patch (random palette cells, same size,
    places and transforms) and with the optimised patch. ``drop`` is
    ``recall_control - recall_patch`` (the adversarial effect beyond occlusion);
    ``queries`` the detector calls the search spent (evaluation not counted);
    ``objective_start`` and ``objective_end`` the search's objective on the search frames
    for the control and the final patch. ``patch`` and ``control`` are ``uint8``
    ``(patch_px, patch_px, 3)`` BGR grids of :data:`PALETTE` colours. ``train_frames`` are
    the indices of the frames the search used, ``test_frames`` those measured.
    """

    recall_clean: float
    recall_control: float
    recall_patch: float
    drop: float
    queries: int
    persons: int
    patch: np.ndarray
    control: np.ndarray
    objective_start: float
    objective_end: float
    train_frames: tuple[int, ...]
    test_frames: tuple[int, ...]


def placements(boxes: np.ndarray, rel_size: float, rng: np.random.Generator | None) -> np.ndarray:
    """Where the patch goes on each gt box: ``(n, 5)`` rows ``cx, cy, side, angle, gain``.

    With ``rng`` the light random transforms are drawn; without, the nominal placement.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(boxes)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 1] + TORSO * h
    side, angle, gain = rel_size * h, np.zeros(n), np.ones(n)
    if rng is not None:
        side = side * rng.uniform(*_SCALE, n)
        angle = rng.uniform(*_ANGLE, n)
        gain = rng.uniform(*_GAIN, n)
        cx = cx + rng.uniform(-_SHIFT, _SHIFT, n) * w
        cy = cy + rng.uniform(-_SHIFT, _SHIFT, n) * w
    return np.stack([cx, cy, side, angle, gain], axis=1)


def apply_patch(image: np.ndarray, patch: np.ndarray, where: np.ndarray) -> np.ndarray:
    """A copy of ``image`` with ``patch`` pasted at each row of ``where`` (:func:`placements`).

    As printed, then filmed: the cells are first blown up to whole pixels with nearest
    neighbour (sharp cell edges, as on paper), then mapped onto the frame with bilinear
    sampling (the camera's blur at its own pixel scale).
    """
    out = image.copy()
    for cx, cy, side, angle, gain in where:
        if side >= 1:
            _paste(out, patch, float(cx), float(cy), float(side), float(angle), float(gain))
    return out


def _paste(
    out: np.ndarray, patch: np.ndarray, cx: float, cy: float, side: float, angle: float, gain: float
) -> None:
    import cv2

    height, width = out.shape[:2]
    k = max(1, int(np.ceil(side / patch.shape[0])))
    src = np.repeat(np.repeat(patch, k, axis=0), k, axis=1).astype(np.float32)
    g = src.shape[0]
    # source pixel centres -> frame pixel centres (OpenCV: integer = centre; the boxes are
    # continuous, pixel i spans [i, i + 1)): scale to ``side``, rotate about the middle
    c = (g - 1) / 2
    m = cv2.getRotationMatrix2D((c, c), angle, side / g)
    half = side * 0.75  # covers the rotated square (side / sqrt(2) < 0.75 side)
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(width, int(np.ceil(cx + half)) + 1), min(height, int(np.ceil(cy + half)) + 1)
    if x1 <= x0 or y1 <= y0:
        return
    m[:, 2] += (cx - 0.5 - c - x0, cy - 0.5 - c - y0)
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(np.clip(src * gain, 0, 255), m, size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(np.ones((g, g), np.float32), m, size, flags=cv2.INTER_LINEAR)
    roi = out[y0:y1, x0:x1].astype(np.float32)
    blend = roi * (1 - alpha[..., None]) + warped * alpha[..., None]
    out[y0:y1, x0:x1] = np.clip(np.rint(blend), 0, 255).astype(np.uint8)


def _person_scores(boxes: np.ndarray, xyxy: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Per gt box, the highest person confidence among detections overlapping it (else 0)."""
    if len(xyxy) == 0 or len(boxes) == 0:
        return np.zeros(len(boxes))
    iou = box_iou(boxes, xyxy)
    scores: np.ndarray = np.where(iou >= OBJECTIVE_IOU, conf[None, :], 0.0).max(axis=1)
    return scores


def _frame_loss(
    detector: Detector, patch: np.ndarray, frame: AuditFrame, where: np.ndarray
) -> float:
    """The objective on one frame: one detector call."""
    dets = detector.infer(apply_patch(frame.image, patch, where))
    xyxy, conf = person_detections(dets, detector.class_names)
    return float(_person_scores(frame.boxes, xyxy, conf).sum())


def _side(used: int, queries: int, cells: int) -> int:
    """Side (in cells) of the square recoloured after ``used`` queries: Square Attack's schedule."""
    halvings = sum(used >= f * queries for f in _HALVE_AT)
    p = _P_INIT / 2**halvings
    return int(np.clip(round(np.sqrt(p * cells * cells)), 1, cells))


def _propose(patch: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """``patch`` with one random square recoloured by a palette colour it does not all have."""
    g = patch.shape[0]
    y, x = (int(v) for v in rng.integers(0, g - side + 1, 2))
    window = patch[y : y + side, x : x + side].reshape(-1, 3)
    colours = [c for c in PALETTE if not (window == c).all(axis=1).all()]
    out = patch.copy()
    out[y : y + side, x : x + side] = colours[int(rng.integers(len(colours)))]
    return out


def _race(
    loss: Callable[[int], float], incumbent: np.ndarray, order: np.ndarray
) -> tuple[np.ndarray | None, int]:
    """A candidate's per-frame losses (``None`` once worse on the first half) and the calls.

    Frames are scored in ``order``; after half of them a candidate worse than the incumbent
    on those same frames is dropped (a race, as in Hoeffding races): most proposals are
    rejected, so this nearly doubles the steps a budget buys. Acceptance stays exact.
    """
    half = (len(order) + 1) // 2
    out = np.full(len(order), np.nan)
    for k, i in enumerate(order):
        out[i] = loss(int(i))
        if k + 1 == half and out[order[:half]].sum() > incumbent[order[:half]].sum():
            return None, half
    return out, len(order)


def _search(
    detector: Detector,
    start: np.ndarray,
    train: Sequence[AuditFrame],
    where: Sequence[np.ndarray],
    queries: int,
    rng: np.random.Generator,
    progress: Callable[[int], None] | None,
) -> tuple[np.ndarray, float, float, int]:
    """Random search; returns ``(patch, objective_start, objective_end, queries used)``."""
    n, best = len(train), start
    incumbent = np.array(
        [_frame_loss(detector, best, f, w) for f, w in zip(train, where, strict=True)]
    )
    first, used = float(incumbent.sum()), n
    while used + n <= queries:
        cand = _propose(best, _side(used, queries, best.shape[0]), rng)

        def loss(i: int, cand: np.ndarray = cand) -> float:
            return _frame_loss(detector, cand, train[i], where[i])

        scores, calls = _race(loss, incumbent, rng.permutation(n))
        used += calls
        if scores is not None and scores.sum() <= incumbent.sum():
            best, incumbent = cand, scores
        if progress is not None:
            progress(used)
    return best, first, float(incumbent.sum()), used


def _recall(
    detector: Detector,
    frames: Sequence[AuditFrame],
    patch: np.ndarray | None,
    where: Sequence[np.ndarray],
    threshold: float,
) -> float:
    """Person recall at ``threshold`` (IoU >= :data:`MATCH_IOU`) with ``patch`` pasted."""

    def pairs() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for frame, w in zip(frames, where, strict=True):
            image = frame.image if patch is None else apply_patch(frame.image, patch, w)
            xyxy, conf = person_detections(detector.infer(image), detector.class_names)
            yield xyxy, conf, frame.boxes

    return detection_quality(pairs(), score_threshold=threshold, iou=MATCH_IOU).recall


def _check(
    detector: Detector,
    train: Sequence[AuditFrame],
    search: Sequence[AuditFrame],
    test: Sequence[AuditFrame],
    queries: int,
) -> None:
    """Refuse inputs the attack cannot measure (step 1 of the module docstring)."""
    person_detections(sv.Detections.empty(), detector.class_names)  # NoPersonClass
    for name, frames in (("search", search), ("test", test)):
        if sum(len(f.boxes) for f in frames) == 0:
            raise AuditFramesError(
                f"patch attack: expected ground-truth persons in the {name} frames, "
                f"got none in {len(frames)} frames"
            )
    shared = sorted({f.index for f in train} & {f.index for f in test})
    if shared:
        raise AuditFramesError(
            f"patch attack: expected disjoint train and test frames, got {len(shared)} "
            f"in both (first: frame {shared[0]})"
        )
    if queries < 2 * len(search):
        raise AuditFramesError(
            f"patch attack: expected a budget of at least two passes over the {len(search)} "
            f"search frames ({2 * len(search)} queries), got {queries}"
        )


def attack_patch(
    detector: Detector,
    train: Sequence[AuditFrame],
    test: Sequence[AuditFrame],
    *,
    score_threshold: float,
    queries: int,
    rng: np.random.Generator,
    patch_px: int = 8,
    rel_size: float = 0.3,
    batch: int = 8,
    progress: Callable[[int], None] | None = None,
) -> PatchResult:
    """Optimise a printable patch on ``train`` with ``queries`` detector calls; measure on ``test``.

    ``detector`` should run with a low score threshold (e.g. 0.01) for a useful signal;
    recall is counted at ``score_threshold``. The search scores every candidate on at most
    ``batch`` train frames, evenly spaced over ``train`` (a step costs that many queries, or
    half when the race drops it). ``progress`` is called with the queries used so far after
    each step. Evaluation costs ``3 * len(test)`` further calls, not counted in ``queries``.
    """
    if patch_px < 2 or not 0 < rel_size <= 1 or batch < 1:
        raise ValueError(
            f"patch attack: expected patch_px >= 2, 0 < rel_size <= 1 and batch >= 1, "
            f"got {patch_px}, {rel_size} and {batch}"
        )
    search = [train[int(i)] for i in np.linspace(0, len(train) - 1, min(batch, len(train)))]
    _check(detector, train, search, test, queries)
    control = PALETTE[rng.integers(len(PALETTE), size=(patch_px, patch_px))]
    search_where = [placements(f.boxes, rel_size, rng) for f in search]
    patch, start, end, used = _search(
        detector, control, search, search_where, queries, rng, progress
    )
    test_where = [placements(f.boxes, rel_size, rng) for f in test]
    recall = [
        _recall(detector, test, p, test_where, score_threshold) for p in (None, control, patch)
    ]
    return PatchResult(
        recall_clean=recall[0],
        recall_control=recall[1],
        recall_patch=recall[2],
        drop=recall[1] - recall[2],
        queries=used,
        persons=sum(len(f.boxes) for f in test),
        patch=patch,
        control=control,
        objective_start=start,
        objective_end=end,
        train_frames=tuple(f.index for f in search),
        test_frames=tuple(f.index for f in test),
    )
