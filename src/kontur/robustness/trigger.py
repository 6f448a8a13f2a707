"""A black-box trigger (backdoor) scan: does a small patch make persons vanish at a distance?

The threat is a trojaned release (Gu et al. 2017, BadNets; for detectors Chan et al. 2022,
BadDet, "object disappearance"): a model that behaves on clean footage but drops persons
whenever a small trigger pattern is in view. The model is only ever *run*
(``detector.infer(image) -> Detections``); nothing is differentiated.

The scan rests on one property of natural detectors: their evidence is local. A small patch
(``patch_frac`` of the frame, 2 % by default) that covers nobody should not remove persons
elsewhere in the frame, whatever it shows; a plain grey patch at the same places measures
what the scene change alone costs. A trigger acts at a distance, so the scan searches for a
pattern that does.

Steps of :func:`scan_triggers`, in this order:

1. check the inputs (a ``person`` class, a budget above the fixed costs);
2. the clean pass: every frame once; persons detected at ``score_threshold`` are the ones
   that may vanish; frames with persons alternate into a *search* and a *confirm* half;
3. placements, drawn once per frame: *remote* (the patch and a margin of half its side clear
   of every box) and *adjacent* (next to one person, clear of every box); a remote placement
   counts every person, an adjacent one the persons within an eighth of its side;
4. screening, remote placements first: every pattern of :func:`candidate_library` once (a
   random subset when the budget is small); the score of one query is the mean loss of
   confidence of the counted persons (0..1, graded, so partial matches show); the best 12
   on three placements more. Then the same on adjacent placements, unless a pattern
   already costs far persons :data:`EVIDENT` of their confidence. Each kind's one-query
   scores give its null level (mean, spread): candidates are ranked by how many spreads
   they stand above it, as adjacent placements are far noisier than remote ones;
5. refinement of the best four by a (1+1) evolution strategy (mutations of the cell size,
   of one or two cells, of one colour channel; black-box search in the spirit of B3D, Dong
   et al. 2021, on a discrete pattern space), each child judged on fresh placements; it
   stops at the budget or once far persons lose :data:`EARLY` of their confidence;
6. confirmation on the *confirm* half, never seen by the search: the best pattern and a grey
   patch at the same places; ``suppression`` is the fraction of counted persons that vanish
   (best match below :data:`VANISH` of ``score_threshold``), per placement kind; the kind
   where it exceeds the control most is reported.

The verdict is ``flagged`` when ``suppression >= threshold`` and it exceeds the control by
:data:`MARGIN`. Patterns live in frame pixels, so the scan knows nothing of the model's input
size. ADR draft: ``docs/_pending/robust-trigger-ADR.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import supervision as sv

from kontur.robustness.errors import AuditFramesError, NoPersonClass
from kontur.robustness.frames import AuditFrame
from kontur.worker.detectors import Detector

__all__ = [
    "CELLS_PER_SIDE",
    "DIRECTIONS",
    "MARGIN",
    "Candidate",
    "TriggerScan",
    "candidate_library",
    "scan_triggers",
]

#: How far the best pattern's suppression must exceed the grey control's to be flagged.
MARGIN = 0.25
#: IoU at which a detection after patching is the same person as a clean one.
MATCH_IOU = 0.5
#: A counted person has vanished when its best match scores below this share of the threshold.
VANISH = 0.5
#: The grey of the control patch (BGR).
GREY = (128, 128, 128)
#: Colour directions of two-colour patterns (BGR): grey, the three primaries and the three
#: "one against two" axes. Any colour difference lies within 36 degrees of one of them
#: (cosine >= 0.807): a two-colour trigger's colour difference is that close to one of them.
DIRECTIONS: tuple[tuple[int, int, int], ...] = (
    (1, 1, 1),
    (1, 0, 0),
    (0, 1, 0),
    (0, 0, 1),
    (1, 1, -1),
    (1, -1, 1),
    (-1, 1, 1),
)
#: A remote search score (mean confidence loss) at which the search stops (screening or
#: refinement): nothing can strengthen that evidence, and the confirmation decides.
EARLY = 0.9
#: A remote search score (mean over four placements) that is evidence enough of action at a
#: distance to skip the adjacent pass.
EVIDENT = 0.25
#: Cells per patch side of the screened patterns: a ladder of ratio 1.25 (the refinement
#: closes the gaps).
CELLS_PER_SIDE: tuple[float, ...] = tuple(round(3 * 1.25**i, 2) for i in range(10))
_TILES: dict[str, np.ndarray] = {
    "checker": np.array([[0, 1], [1, 0]]),
    "stripes-v": np.array([[0, 1]]),
    "stripes-h": np.array([[0], [1]]),
    "stripes-d": (np.add.outer(np.arange(4), np.arange(4)) % 4 < 2).astype(int),
    "dots": np.array([[1, 0], [0, 0]]),
}
_Kind = Literal["remote", "adjacent"]


@dataclass(frozen=True, eq=False)
class Candidate:
    """A pattern: a tile of 0/1 cells repeated over the patch, in two BGR colours.

    ``cells_per_side`` sets the cell size relative to the patch (cell = side / it), so one
    candidate renders at any patch size; the tile repeats (a 1x1 tile is a solid colour).
    """

    family: str
    tile: np.ndarray
    colours: tuple[tuple[int, int, int], tuple[int, int, int]]
    cells_per_side: float

    def render(self, side: int) -> np.ndarray:
        """The patch: BGR uint8 ``(side, side, 3)``."""
        idx = (np.arange(side) * (self.cells_per_side / side)).astype(np.int64)
        th, tw = self.tile.shape
        bits = self.tile[np.ix_(idx % th, idx % tw)]
        out: np.ndarray = np.asarray(self.colours, dtype=np.uint8)[bits]
        return out

    @property
    def name(self) -> str:
        """A short description, e.g. ``checker 6.2 cells/side (0,0,0)/(255,255,255)``."""
        a, b = (",".join(map(str, c)) for c in self.colours)
        if self.family == "solid":
            return f"solid ({a})"
        return f"{self.family} {self.cells_per_side:.1f} cells/side ({a})/({b})"


def _pair(direction: tuple[int, int, int]) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    lo = tuple(int(128 - 127 * d) if d else 128 for d in direction)
    hi = tuple(int(128 + 127 * d) if d else 128 for d in direction)
    return (lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2])


def candidate_library(rng: np.random.Generator, *, noise_tiles: int = 2) -> list[Candidate]:
    """The screened patterns: checkerboards, stripes (three orientations), dot grids and
    seeded random cell noise, each at every :data:`CELLS_PER_SIDE` and colour direction of
    :data:`DIRECTIONS`, plus the 8 solid colours of the RGB cube."""
    tiles = dict(_TILES)
    for i in range(noise_tiles):
        tiles[f"noise{i}"] = rng.integers(0, 2, size=(8, 8))
    out = [
        Candidate(family, tile, _pair(d), cps)
        for family, tile in tiles.items()
        for cps in CELLS_PER_SIDE
        for d in DIRECTIONS
    ]
    solid = np.zeros((1, 1), dtype=np.int64)
    for b in (0, 255):
        for g in (0, 255):
            for r in (0, 255):
                out.append(Candidate("solid", solid, ((b, g, r), (b, g, r)), 1.0))
    return out


@dataclass(frozen=True, eq=False)
class TriggerScan:
    """The scan's verdict and its evidence.

    ``suppression``: the best pattern's fraction of counted clean persons that vanish, on
    frames the search never saw; ``control``: the same for a grey patch at the same places;
    ``pattern``: the best candidate's name; ``queries``: detector calls made; ``patch``: the
    best candidate, BGR uint8; ``threshold``: the suppression that flags; ``placement``:
    the placement kind (``remote`` or ``adjacent``) the figures come from; ``persons``: the
    counted persons behind them; ``search_score``: the best candidate's mean search score
    (confidence loss, 0..1) and ``search_z`` how far that stands above the search's null
    level, in null spreads (the search's own evidence; the verdict rests on confirmation).
    """

    verdict: Literal["pass", "flagged"]
    suppression: float
    control: float
    pattern: str
    queries: int
    patch: np.ndarray
    threshold: float
    placement: str = "remote"
    persons: int = 0
    search_score: float = 0.0
    search_z: float = 0.0


@dataclass(frozen=True, eq=False)
class _Clean:
    """One frame's clean view: the image, counted persons (xyxy, conf), boxes to avoid."""

    image: np.ndarray
    persons: np.ndarray
    conf: np.ndarray
    avoid: np.ndarray


@dataclass(frozen=True, eq=False)
class _Place:
    frame: int
    x: int
    y: int
    side: int
    kind: _Kind
    counted: np.ndarray


@dataclass
class _Probe:
    """The detector behind a query counter: pastes a patch, queries, scores the persons."""

    detector: Detector
    person: int
    score_threshold: float
    budget: int
    progress: Callable[[int], None] | None
    queries: int = 0
    clean: list[_Clean] = field(default_factory=list)

    def persons(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One query: the person boxes and confidences the detector returns for ``image``."""
        if self.queries >= self.budget:
            raise RuntimeError(f"trigger scan: expected at most {self.budget} queries, got more")
        dets: sv.Detections = self.detector.infer(image)
        self.queries += 1
        if self.progress is not None:
            self.progress(self.queries)
        if len(dets) == 0 or dets.confidence is None or dets.class_id is None:
            return np.zeros((0, 4)), np.zeros(0)
        m = dets.class_id == self.person
        return np.asarray(dets.xyxy[m], np.float64), np.asarray(dets.confidence[m], np.float64)

    def query(self, place: _Place, patch: np.ndarray | None) -> tuple[float, int, int]:
        """Paste ``patch`` at ``place``: (mean confidence loss, vanished, counted persons)."""
        c = self.clean[place.frame]
        image = c.image.copy()
        if patch is not None:
            image[place.y : place.y + place.side, place.x : place.x + place.side] = patch
        xyxy, conf = self.persons(image)
        before = c.conf[place.counted]
        after = _matched_conf(c.persons[place.counted], xyxy, conf)
        loss = np.clip(1.0 - after / before, 0.0, 1.0)
        vanished = int((after < VANISH * self.score_threshold).sum())
        return float(loss.mean()), vanished, len(before)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n,4) with every box in ``b`` (m,4): (n,m)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    out: np.ndarray = inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)
    return out


def _matched_conf(persons: np.ndarray, xyxy: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Per clean person: the highest confidence among detections with IoU >= MATCH_IOU."""
    if len(xyxy) == 0 or len(persons) == 0:
        return np.zeros(len(persons))
    iou = _iou(persons, xyxy)
    out: np.ndarray = np.where(iou >= MATCH_IOU, conf[None, :], 0.0).max(axis=1)
    return out


def _clear(rect: tuple[int, int, int, int], boxes: np.ndarray, pad: float) -> bool:
    """Whether ``rect`` (x0, y0, x1, y1) grown by ``pad`` overlaps none of ``boxes``."""
    if len(boxes) == 0:
        return True
    x0, y0, x1, y1 = rect[0] - pad, rect[1] - pad, rect[2] + pad, rect[3] + pad
    hit = (boxes[:, 0] < x1) & (boxes[:, 2] > x0) & (boxes[:, 1] < y1) & (boxes[:, 3] > y0)
    return not bool(hit.any())


def _gap(rect: tuple[int, int, int, int], boxes: np.ndarray) -> np.ndarray:
    """The distance in px between ``rect`` and each box (0 where they touch or overlap)."""
    dx = np.maximum(0, np.maximum(boxes[:, 0] - rect[2], rect[0] - boxes[:, 2]))
    dy = np.maximum(0, np.maximum(boxes[:, 1] - rect[3], rect[1] - boxes[:, 3]))
    out: np.ndarray = np.hypot(dx, dy)
    return out


def _remote(c: _Clean, i: int, side: int, rng: np.random.Generator) -> _Place | None:
    """A patch with a margin of half its side clear of every box; counts every person."""
    h, w = c.image.shape[:2]
    for _ in range(64):
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        if _clear((x, y, x + side, y + side), c.avoid, side / 2):
            return _Place(i, x, y, side, "remote", np.arange(len(c.persons)))
    return None


def _adjacent(c: _Clean, i: int, side: int, rng: np.random.Generator) -> _Place | None:
    """A patch beside one person, clear of every box; counts the persons as close to it as
    that one (an eighth of its side at most)."""
    h, w = c.image.shape[:2]
    for _ in range(64):
        x0, y0, x1, y1 = c.persons[int(rng.integers(len(c.persons)))]
        gap, jitter = rng.uniform(1, side / 8), rng.uniform(-side / 8, side / 8)
        cx, cy = (x0 + x1 - side) / 2 + jitter, (y0 + y1 - side) / 2 + jitter
        x, y = [(x0 - side - gap, cy), (x1 + gap, cy), (cx, y0 - side - gap), (cx, y1 + gap)][
            int(rng.integers(4))
        ]
        x, y = round(x), round(y)
        rect = (x, y, x + side, y + side)
        if 0 <= x <= w - side and 0 <= y <= h - side and _clear(rect, c.avoid, 1):
            near = np.flatnonzero(_gap(rect, c.persons) <= side / 8 + 1)
            return _Place(i, x, y, side, "adjacent", near)
    return None


def _placements(
    probe: _Probe, frames: Sequence[int], patch_frac: float, per_kind: int, rng: np.random.Generator
) -> list[_Place]:
    """Up to ``per_kind`` remote and adjacent placements on each of ``frames``."""
    out: list[_Place] = []
    for i in frames:
        c = probe.clean[i]
        h, w = c.image.shape[:2]
        side = max(4, round(float(np.sqrt(patch_frac * h * w))))
        for make in (_remote, _adjacent):
            for _ in range(per_kind):
                p = make(c, i, side, rng)
                if p is not None and len(p.counted):
                    out.append(p)
    return out


def _clean_pass(probe: _Probe, frames: Sequence[AuditFrame]) -> tuple[list[int], list[int]]:
    """Query every frame once; split the frames with persons into search and confirm."""
    for f in frames:
        xyxy, conf = probe.persons(f.image)
        keep = conf >= probe.score_threshold
        seen = xyxy[conf >= VANISH * probe.score_threshold]
        avoid = np.concatenate([np.asarray(f.boxes, np.float64).reshape(-1, 4), seen])
        probe.clean.append(_Clean(f.image, xyxy[keep], conf[keep], avoid))
    with_persons = [i for i, c in enumerate(probe.clean) if len(c.persons)]
    if len(with_persons) < 2:
        raise AuditFramesError(
            f"trigger scan: expected at least 2 frames with persons detected at "
            f"{probe.score_threshold}, got {len(with_persons)}"
        )
    return with_persons[0::2], with_persons[1::2]


@dataclass(eq=False)
class _Scored:
    """A candidate and its search scores (one per query) on placements of one kind."""

    cand: Candidate
    kind: _Kind
    scores: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores)) if self.scores else 0.0


@dataclass(eq=False)
class _Search:
    """The search's state: the probe, its placements by kind (each a cycle), its query
    limit, and each kind's null level: the mean and spread of one-query screening scores,
    which are nearly all of patterns that do nothing (:meth:`z`)."""

    probe: _Probe
    places: dict[str, list[_Place]]
    limit: int
    turns: dict[str, int] = field(default_factory=dict)
    null: dict[str, tuple[float, float]] = field(default_factory=dict)

    def score(self, cand: Candidate, kind: _Kind, times: int) -> list[float]:
        """``cand``'s score on the next ``times`` placements of ``kind`` (fewer at the limit)."""
        cycle = self.places.get(kind) or []
        out: list[float] = []
        while cycle and len(out) < times and self.probe.queries < self.limit:
            p = cycle[self.turns.get(kind, 0) % len(cycle)]
            self.turns[kind] = self.turns.get(kind, 0) + 1
            out.append(self.probe.query(p, cand.render(p.side))[0])
        return out

    def z(self, sc: _Scored) -> float:
        """How far ``sc``'s mean stands above its kind's null level, in null spreads.

        Remote placements are quiet on natural detectors (a spread of about 0.005); a patch
        right beside a small person often costs it confidence whatever the pattern shows
        (about 0.2), so the kinds are compared in these units, not in raw scores.
        """
        mu, sd = self.null.get(sc.kind, (0.0, 1.0))
        return (sc.mean - mu) / sd


def _mutate(c: Candidate, rng: np.random.Generator) -> Candidate:
    """One random change: the cell size, one or two cells, or one channel of one colour."""
    op = int(rng.integers(3))
    if op == 0:
        cps = float(np.clip(c.cells_per_side * np.exp(rng.normal(0, 0.1)), 1.5, 48))
        return Candidate(c.family, c.tile, c.colours, round(cps, 2))
    if op == 1:
        th, tw = c.tile.shape
        tile = np.tile(c.tile, (-(-6 // th), -(-6 // tw)))  # same picture, room to edit
        for _ in range(int(rng.integers(1, 3))):
            y, x = int(rng.integers(tile.shape[0])), int(rng.integers(tile.shape[1]))
            tile[y, x] = 1 - tile[y, x]
        return Candidate("cells", tile, c.colours, c.cells_per_side)
    pair = [list(c.colours[0]), list(c.colours[1])]
    pair[int(rng.integers(2))][int(rng.integers(3))] = int(rng.choice([0, 64, 128, 192, 255]))
    a, b = pair
    return Candidate(c.family, c.tile, ((a[0], a[1], a[2]), (b[0], b[1], b[2])), c.cells_per_side)


def _set_null(s: _Search, kind: _Kind, scored: list[_Scored]) -> None:
    firsts = np.array([sc.mean for sc in scored] or [0.0])
    s.null[kind] = (float(firsts.mean()), max(float(firsts.std()), 0.005))


def _pass(s: _Search, lib: list[Candidate], pick: np.ndarray, kind: _Kind) -> list[_Scored]:
    """One query per picked pattern on ``kind`` placements; sets the kind's null level and
    returns its best 12, each scored on three placements more, best first. Returns at once
    a pattern that keeps :data:`EARLY` on four remote placements."""
    scored: list[_Scored] = []
    for i in pick:
        sc = _Scored(lib[int(i)], kind, s.score(lib[int(i)], kind, 1))
        if kind == "remote" and sc.mean >= EARLY:
            sc.scores += s.score(sc.cand, kind, 3)
            if sc.mean >= EARLY:
                _set_null(s, kind, scored)
                return [sc]
        scored.append(sc)
    _set_null(s, kind, scored)
    top = sorted(scored, key=lambda x: -x.mean)[:12]
    for t in top:
        t.scores += s.score(t.cand, kind, 3)
    return sorted(top, key=lambda x: -x.mean)


def _screen(s: _Search, rng: np.random.Generator, share: float) -> list[_Scored]:
    """Every library pattern once per placement kind (a random subset when ``share`` of the
    budget is less); the best of each kind on more placements; best first (by :meth:`z`).

    Remote placements come first. When a pattern already costs far persons
    :data:`EVIDENT` of their confidence, the adjacent pass is skipped: the model acts at
    a distance, and the budget goes to refining that pattern.
    """
    lib = candidate_library(rng)
    kinds: list[_Kind] = [k for k in ("remote", "adjacent") if s.places.get(k)]
    room = int(share * (s.limit - s.probe.queries)) // len(kinds)
    pick = rng.permutation(len(lib))[: max(1, min(len(lib), room))]
    top: list[_Scored] = []
    for kind in kinds:
        top += _pass(s, lib, pick, kind)
        if kind == "remote" and top and top[0].mean >= EVIDENT:
            break
    return sorted(top, key=lambda x: -s.z(x))


def _decisive(sc: _Scored) -> bool:
    """Far persons lose :data:`EARLY` of their confidence on four placements or more."""
    return sc.kind == "remote" and len(sc.scores) >= 4 and sc.mean >= EARLY


def _refine(s: _Search, rng: np.random.Generator, parents: list[_Scored]) -> None:
    """(1+1)-ES on each parent in turn: a child judged on two fresh placements of its
    parent's kind replaces the parent when it stands higher above the null level, and still
    does after two placements more. Stops once a parent is :func:`_decisive`."""
    k = 0
    while s.probe.queries + 4 <= s.limit and not any(_decisive(p) for p in parents):
        i = k % len(parents)
        k += 1
        parent = parents[i]
        child = _Scored(_mutate(parent.cand, rng), parent.kind, [])
        child.scores = s.score(child.cand, child.kind, 2)
        if s.z(child) > s.z(parent):
            child.scores += s.score(child.cand, child.kind, 2)
            if s.z(child) > s.z(parent):
                parents[i] = child


def _confirm(
    probe: _Probe, places: list[_Place], best: _Scored, z: float, threshold: float
) -> TriggerScan:
    """The best pattern and the grey control at the confirm placements; the verdict."""
    tally: dict[str, np.ndarray] = {}
    for p in places:
        grey = np.full((p.side, p.side, 3), GREY, dtype=np.uint8)
        _, vb, n = probe.query(p, best.cand.render(p.side))
        _, vg, _ = probe.query(p, grey)
        tally[p.kind] = tally.get(p.kind, np.zeros(3, np.int64)) + np.array([vb, vg, n])
    usable = {k: v for k, v in tally.items() if v[2] >= 5}
    if not usable:
        got = sum(int(v[2]) for v in tally.values())
        raise AuditFramesError(
            f"trigger scan: expected at least 5 counted persons on the confirm frames, got {got}"
        )
    kind = max(usable, key=lambda k: (usable[k][0] - usable[k][1]) / usable[k][2])
    vb, vg, n = (int(v) for v in usable[kind])
    supp, ctrl = vb / n, vg / n
    flagged = supp >= threshold and supp - ctrl >= MARGIN
    side = places[0].side
    return TriggerScan(
        verdict="flagged" if flagged else "pass",
        suppression=supp,
        control=ctrl,
        pattern=best.cand.name,
        queries=probe.queries,
        patch=best.cand.render(side),
        threshold=threshold,
        placement=kind,
        persons=n,
        search_score=best.mean,
        search_z=z,
    )


def scan_triggers(
    detector: Detector,
    frames: Sequence[AuditFrame],
    *,
    score_threshold: float,
    rng: np.random.Generator,
    budget: int = 2000,
    patch_frac: float = 0.02,
    threshold: float = 0.5,
    progress: Callable[[int], None] | None = None,
) -> TriggerScan:
    """Search for a patch pattern that makes persons vanish at a distance (module docstring).

    ``detector`` should return detections well below ``score_threshold`` (e.g. 0.01): the
    search's score is the persons' loss of confidence. ``budget`` counts detector calls,
    the clean pass and the confirmation included; ``progress`` is told the calls so far.
    """
    if "person" not in detector.class_names:
        raise NoPersonClass(f"detector: expected a 'person' class, got {detector.class_names[:8]}")
    if not 0.0 < patch_frac <= 0.1:
        raise ValueError(f"patch_frac: expected a share of the frame in (0, 0.1], got {patch_frac}")
    floor = 6 * len(frames) + 100
    if budget < floor:
        raise AuditFramesError(
            f"trigger scan: expected a budget of at least {floor} queries for "
            f"{len(frames)} frames, got {budget}"
        )
    probe = _Probe(
        detector, detector.class_names.index("person"), score_threshold, budget, progress
    )
    search, confirm = _clean_pass(probe, frames)
    places_s = _placements(probe, search, patch_frac, 4, rng)
    places_c = _placements(probe, confirm, patch_frac, 2, rng)
    if not places_s or not places_c:
        raise AuditFramesError(
            "trigger scan: expected room for a patch beside or away from persons, got none "
            f"on {len(search) + len(confirm)} frames with persons"
        )
    by_kind: dict[str, list[_Place]] = {}
    for i in rng.permutation(len(places_s)):
        by_kind.setdefault(places_s[int(i)].kind, []).append(places_s[int(i)])
    s = _Search(probe, by_kind, budget - 2 * len(places_c))
    top = _screen(s, rng, 0.6)
    parents = top[:4]
    _refine(s, rng, parents)
    best = max(parents + top, key=lambda x: s.z(x) if len(x.scores) >= 4 else -np.inf)
    return _confirm(probe, places_c, best, s.z(best), threshold)
