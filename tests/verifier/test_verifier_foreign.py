"""What a still box stands on may not be its own: foreground that was there before its boxes
came (ADR 0048), or the ghost a long-standing object left (ADR 0049).

:meth:`ForegroundModel.foreign_share` and :meth:`ForegroundModel.ghost_ratio` on a real
background model fed synthetic pictures: a textured empty scene, learnt, then a still dark
"suitcase" set down, and boxes that come to it or a dark walker who comes and stops.
"""

from __future__ import annotations

import numpy as np
import pytest

from kontur.verifier.core import GHOST_RATIO
from kontur.verifier.foreground import (
    LEARN_S,
    RUN_GAP_S,
    ForegroundModel,
    Rows,
    SceneMasks,
    foot_band,
    make_picture,
)
from kontur.verifier.history import extend_cover

FPS = 10.0
SUITCASE = (200, 160, 240, 220)  # x1, y1, x2, y2 in frame pixels (640x360)
_SCENE = np.random.default_rng(7).integers(90, 200, (360, 640), np.uint8)
#: Real ground: a lit slope with a faint texture.
_PAVEMENT = np.clip(
    np.linspace(110.0, 160.0, 640)[None, :]
    + np.linspace(0.0, 20.0, 360)[:, None]
    + np.random.default_rng(7).normal(0.0, 4.0, (360, 640)),
    0,
    255,
).astype(np.uint8)


def _feed(
    model: ForegroundModel,
    until_s: float,
    drawn: list[tuple[float, float, tuple[int, ...]]],
    scene: np.ndarray = _SCENE,
    t0: float = 0.0,
) -> dict[float, tuple[SceneMasks, np.ndarray]]:
    """Frames from the model's next pts to ``until_s``: ``scene``, each ``(start, end, box)``
    of ``drawn`` painted dark from ``start`` to ``end``; every time offset by ``t0``. Each
    frame's masks and picture, by its time (without ``t0``)."""
    t = 0.0 if model._pts is None else round(model._pts - t0 + 1 / FPS, 6)
    frames = {}
    while t <= until_s + 1e-9:
        grey = scene.copy()
        for start, end, (x1, y1, x2, y2) in drawn:
            if start <= t < end:
                grey[y1:y2, x1:x2] = 25
        picture = make_picture(np.repeat(grey[..., None], 3, axis=2))
        frames[t] = (model.observe(t0 + t, picture), picture.pixels)
        t = round(t + 1 / FPS, 6)
    return frames


def _rows(box: tuple[float, ...]) -> Rows:
    """A frame box as the model's picture rectangle (stride 4)."""
    x1, y1, x2, y2 = box
    return int(y1 // 4), int(x1 // 4), int(-(-y2 // 4)), int(-(-x2 // 4))


def _share(
    model: ForegroundModel,
    frame: SceneMasks,
    track: list[tuple[float, tuple[float, ...]]],
    t0: float = 0.0,
) -> float | None:
    """``foreign_share`` on ``frame`` where the track's newest box stands, its boxes (oldest
    first, all carried) making its cover."""
    cover: list[tuple[Rows, float]] = []
    for pts, box in track:
        cover = extend_cover(cover, _rows(box), t0 + pts)
    return model.foreign_share(frame, _rows(foot_band(track[-1][1])), cover, 1.0)


def _newest(frames: dict[float, tuple[SceneMasks, np.ndarray]]) -> tuple[SceneMasks, np.ndarray]:
    return frames[max(frames)]


@pytest.mark.parametrize("t0", [0.0, 1.7e9])  # a stream's start, or pts of the epoch
def test_a_box_that_comes_onto_a_suitcase_stands_on_foreground_not_its_own(t0: float) -> None:
    model = ForegroundModel()
    frame, _ = _newest(_feed(model, 6.0, [(2.0, 99.0, SUITCASE)], t0=t0))
    # the track walked in from the left and has covered the suitcase since 5.0 s
    track = [(4.0 + i / FPS, (100.0 + 10 * i, 150.0, 150.0 + 10 * i, 225.0)) for i in range(10)]
    track += [(5.0 + i / FPS, (195.0, 150.0, 245.0, 225.0)) for i in range(11)]
    share = _share(model, frame, track, t0)
    assert share is not None and share > 0.9


@pytest.mark.parametrize("t0", [0.0, 1.7e9])
def test_a_walker_who_comes_and_stops_brings_their_foreground(t0: float) -> None:
    """The walker's dark figure moves with its box, then stands: its pixels became foreground
    as the box came over them."""
    model = ForegroundModel()
    walk = [(2.0 + i / FPS, (60.0 + 8 * i, 150.0, 100.0 + 8 * i, 230.0)) for i in range(20)]
    stand = [(4.0 + i / FPS, (212.0, 150.0, 252.0, 230.0)) for i in range(21)]
    drawn = [(t, t + 1 / FPS, tuple(int(v) for v in box)) for t, box in walk + stand]
    drawn[-1] = (drawn[-1][0], 99.0, drawn[-1][2])
    frame, _ = _newest(_feed(model, 6.0, drawn, t0=t0))
    share = _share(model, frame, walk + stand, t0)
    assert share is not None and share < 0.1


def test_a_box_over_a_suitcase_before_it_was_carried_has_no_claim_on_it() -> None:
    """Cover counts from the carry's start: a box that sat over the suitcase uncarried for
    seconds, then was carried (vouched for by a passer-by), stands on foreground 3 s older
    than its cover."""
    model = ForegroundModel()
    frame, _ = _newest(_feed(model, 6.0, [(2.0, 99.0, SUITCASE)]))
    carried = [(5.0 + i / FPS, (195.0, 150.0, 245.0, 225.0)) for i in range(11)]
    share = _share(model, frame, carried)
    assert share is not None and share > 0.9


def test_a_run_outlives_a_short_gap_and_ends_after_a_long_one() -> None:
    """The suitcase stands 0.3 s (too short to leave a ghost when lifted), is lifted, and is
    set down again: after less than RUN_GAP_S its run goes on from 2.0 s, before the box
    came (4.0 s) by more than the 1 s margin: not the box's own. After a longer gap the run
    starts again at 3.5 s: it came with the box, as far as the margin can tell."""
    track = [(4.0 + i / FPS, (195.0, 150.0, 245.0, 225.0)) for i in range(11)]
    for gap, old in ((RUN_GAP_S - 0.2, True), (1.2, False)):
        model = ForegroundModel()
        frame, _ = _newest(_feed(model, 5.0, [(2.0, 2.3, SUITCASE), (2.3 + gap, 99.0, SUITCASE)]))
        share = _share(model, frame, track)
        assert share is not None and (share > 0.9) is old, (gap, share)


def test_nothing_to_say_while_the_model_learns_or_over_bare_ground() -> None:
    model = ForegroundModel()
    frame, _ = _newest(_feed(model, LEARN_S / 2, []))
    box = (195.0, 150.0, 245.0, 225.0)
    assert _share(model, frame, [(0.7, box)]) is None  # learning
    frame, _ = _newest(_feed(model, 4.0, []))
    assert _share(model, frame, [(4.0, box)]) is None  # bare ground


def test_cover_keeps_nested_rectangles_bounded() -> None:
    """Each pixel's cover time is that of the innermost rectangle holding it; a box that
    jitters by a picture pixel keeps the cover; the stages stay bounded whatever the track."""
    cover: list[tuple[Rows, float]] = []
    for i in range(200):
        cover = extend_cover(cover, (10 + i % 2, 10, 30, 20 + i % 3), i / 10)
    assert len(cover) <= 8
    assert cover[-1][1] == 0.0  # the core, covered since the first box
    cover = extend_cover(cover, (40, 40, 50, 50), 20.0)  # moved away: cover starts anew
    assert cover == [((39, 39, 51, 51), 20.0)]


def test_the_ghost_a_long_standing_object_leaves_has_its_outline_in_the_background_only() -> None:
    """The suitcase stood there from the first frame (learnt as background) and is taken away
    at 3 s: the bare ground left is foreground, and its outline an edge of the background."""
    model = ForegroundModel()
    _, picture = _newest(_feed(model, 4.0, [(0.0, 3.0, SUITCASE)], _PAVEMENT))
    ratio = model.ghost_ratio(_rows((190.0, 150.0, 250.0, 230.0)), picture)
    assert ratio is not None and ratio < 0.2


def test_an_object_set_down_has_its_outline_in_the_picture() -> None:
    model = ForegroundModel()
    _, picture = _newest(_feed(model, 4.0, [(3.0, 99.0, SUITCASE)], _PAVEMENT))
    ratio = model.ghost_ratio(_rows((190.0, 150.0, 250.0, 230.0)), picture)
    assert ratio is not None and ratio > 2.0
    assert model.ghost_ratio(_rows((400.0, 150.0, 460.0, 230.0)), picture) is None  # bare


def test_a_late_report_is_judged_on_its_own_frame() -> None:
    """ADR 0051: a worker reports a box for a frame 1.6 s behind the newest. On that frame
    the box stood on a suitcase set down 1.2 s before its cover began; the suitcase was
    lifted and, after more than RUN_GAP_S, a dark figure stood there: a new run where the
    lifted suitcase left no ghost. On the newest frame those pixels began after the box came
    (its own, as far as the runs tell); the report's frame saw the suitcase's run there,
    whose start is gone: not the box's own."""
    model = ForegroundModel()
    frames = _feed(model, 5.0, [(2.0, 3.5, SUITCASE), (3.5 + RUN_GAP_S + 0.3, 99.0, SUITCASE)])
    track = [(3.2 + i / FPS, (195.0, 150.0, 245.0, 225.0)) for i in range(3)]
    late = _share(model, frames[3.4][0], track)
    newest = _share(model, _newest(frames)[0], track)
    assert late is not None and late > 0.9
    assert newest is not None and newest < late - 0.3  # what a reading of the newest gave


def test_a_late_report_on_a_ghost_is_judged_on_its_frames_picture() -> None:
    """The suitcase stood from the first frame and was lifted at 3 s (a ghost); at 3.6 s a
    larger dark object was set down over the place. The report for 3.5 s stood on the
    ghost; the newest picture shows the new object's outline."""
    model = ForegroundModel()
    larger = (190, 150, 250, 230)
    frames = _feed(model, 4.5, [(0.0, 3.0, SUITCASE), (3.6, 99.0, larger)], _PAVEMENT)
    rows = _rows((186.0, 146.0, 254.0, 234.0))
    then = model.ghost_ratio(rows, frames[3.5][1])
    now = model.ghost_ratio(rows, _newest(frames)[1])
    assert then is not None and then < GHOST_RATIO
    assert now is not None and now > 1.0
