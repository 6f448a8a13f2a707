"""A phantom that stands in the zone on what is not its own (ADRs 0047-0049): the second
adversarial review's scenes, through the real verifier and ``VerifierAgrees`` on synthetic
frames (:func:`test_gate_renaming._scene`). Nobody stays in the zone; every dwell goes to an
operator, a phantom standing in a stream of passers-by included (ADR 0050)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from test_gate_renaming import Box, _person, _scene, _walks_then_stands

from kontur.config import VerifierConfig
from kontur.verifier import Verifier
from kontur.verifier.core import HOLD_EVERY_S, LOOK_EVERY_S
from kontur.wire import Finding, Outcome, TrackedObject

#: The zone below the path the walkers take (feet at y = 230 px; the zone starts at 238 px).
BELOW_PATH = ((0.35, 0.66), (0.75, 0.66), (0.75, 0.85), (0.35, 0.85))
SUITCASE = (305.0, 190.0, 335.0, 250.0)


def _walker(
    start: int, height: float = 100.0, width: float = 40.0, speed: float = 4.0
) -> Callable[[int], Box | None]:
    def at(i: int) -> Box | None:
        x = 200.0 + speed * (i - start)
        return (x, 230.0 - height, x + width, 230.0) if i >= start and x < 590 else None

    return at


def _phantom_outcomes(
    frames: int,
    walkers: list[Callable[[int], Box | None]],
    phantom: Callable[[int], Box | None],
    dwell_s: float,
    still: Callable[[int], list[Box]],
    reported: tuple[int, ...] = (),
) -> list[Outcome]:
    """The outcomes of phantom 7's dwell requests; ``reported``: the walkers (by index) the
    worker reports honestly, as tracks 100 + index."""

    def reports(i: int) -> list[TrackedObject]:
        out = [_person(100 + k, b) for k in reported if (b := walkers[k](i)) is not None]
        box = phantom(i)
        return out if box is None else [*out, _person(7, box)]

    drawn = lambda i: [b for w in walkers if (b := w(i)) is not None]  # noqa: E731
    out = _scene(frames, drawn, reports, dwell_s, BELOW_PATH, still=still)
    return [o for t, o, _ in out if t == 7]


@pytest.mark.parametrize(("followers", "dwell_s"), [(5, 2.0), (12, 8.0)])
def test_passers_by_over_the_top_of_a_phantom_on_a_suitcase_do_not_carry_it(
    followers: int, dwell_s: float
) -> None:
    """A2: the phantom rides the first walker, peels off onto the suitcase and widens 8 px
    each side; walkers every 1.3 s brush the top of its box, so the box as a whole always
    has motion. Its feet do not, and stand on the suitcase."""
    walkers = [_walker(25 + 13 * k) for k in range(followers + 1)]

    def phantom(i: int) -> Box | None:
        if i < 25 or i <= 50:
            return walkers[0](i) if i >= 25 else None
        dy, x, wd = min(i - 50, 20), 300.0 + 0.25 * (i % 3), min(8.0, 2.0 * (i - 50))
        return (x - wd, 130.0 + dy, x + 40.0 + wd, 230.0 + dy)

    reported = tuple(range(1, followers + 1))
    frames = 70 + round(10 * dwell_s)
    still = lambda i: [SUITCASE] if i >= 18 else []  # noqa: E731
    assert _phantom_outcomes(frames, walkers, phantom, dwell_s, still, reported) == [
        Outcome.OPERATOR
    ]


@pytest.mark.parametrize("dwell_s", [1.5, 2.0])
def test_a_brief_earlier_carry_gives_no_claim_on_a_suitcase_set_down_later(dwell_s: float) -> None:
    """A1: the phantom rides a walker to just above the zone, where its carry ends on bare
    ground; a suitcase is set down under it at 5.5 s; at ~8 s a second walker vouches for it
    again while it slides into the zone. Its cover starts with the new carry."""
    walkers = [_walker(25), _walker(75)]

    def phantom(i: int) -> Box | None:
        if i < 25:
            return None
        if i <= 50:
            return walkers[0](i)
        dy, x = min(max(2 * (i - 92), 0), 10), 300.0 + 0.25 * (i % 3)
        return (x, 130.0 + dy, x + 40.0, 230.0 + dy)

    still = lambda i: [SUITCASE] if i >= 55 else []  # noqa: E731
    assert _phantom_outcomes(137, walkers, phantom, dwell_s, still) == [Outcome.OPERATOR]


@pytest.mark.parametrize(("dwell_s", "speed"), [(1.5, 4.0), (2.0, 1.0)])
def test_a_small_phantom_whose_feet_rest_on_a_signs_pole_is_not_carried(
    dwell_s: float, speed: float
) -> None:
    """A8: a 16x40 px phantom (4 picture pixels wide) led by a walker onto a sign whose 4 px
    pole is all that reaches its feet: too little foreground there to tell whose it is, so a
    still box is not carried."""
    walkers = [_walker(25, height=40.0, width=16.0, speed=speed)]
    peel = 25 + round(100 / speed)

    def phantom(i: int) -> Box | None:
        if i < 25 or i <= peel:
            return walkers[0](i) if i >= 25 else None
        dy, x = min(i - peel, 10), 300.0 + 0.25 * (i % 3)
        return (x, 190.0 + dy, x + 16.0, 230.0 + dy)

    sign = [(300.0, 200.0, 318.0, 224.0), (309.0, 224.0, 313.0, 250.0)]
    still = lambda i: sign if i >= 18 else []  # noqa: E731
    frames = peel + 20 + round(10 * dwell_s)
    assert _phantom_outcomes(frames, walkers, phantom, dwell_s, still) == [Outcome.OPERATOR]


def _stream_walker(k: int) -> Callable[[int], Box | None]:
    def at(i: int) -> Box | None:
        x = 140.0 + 4.0 * (i - 25 - 13 * k)
        return (x, 150.0, x + 40.0, 250.0) if i >= 25 + 13 * k and x < 590 else None

    return at


def _phantom_in_the_stream(i: int) -> Box | None:
    first = _stream_walker(0)(min(i, 65))
    if i < 25 or first is None:
        return None
    x0 = first[0] + (0.25 * (i % 3) if i > 65 else 0.0)
    wd = min(8.0, 2.0 * max(i - 65, 0))
    return (x0 - wd, 150.0, x0 + 40.0 + wd, 250.0)


def _over(a: Box | None, b: Box | None) -> bool:
    return a is not None and b is not None and a[0] < b[2] and b[0] < a[2]


#: How the hostile worker reports the honest walkers (the second review of ADR 0050): what
#: it leaves out, or draws small, must not give the phantom their motion.
STREAM_REPORTS: dict[str, Callable[[int, Box], Box | None]] = {
    "honestly": lambda i, b: b,
    "not at all": lambda i, b: None,
    "dropped a frame in 15 over the phantom": lambda i, b: (
        None if i % 15 == 0 and _over(b, _phantom_in_the_stream(i)) else b
    ),
    "dropped while over the phantom": lambda i, b: (
        None if _over(b, _phantom_in_the_stream(i)) else b
    ),
    "4 px narrower each side": lambda i, b: (b[0] + 4, b[1], b[2] - 4, b[3]),
    "10 px shorter at both ends": lambda i, b: (b[0], b[1] + 10, b[2], b[3] - 10),
}


def _in_the_stream(
    phantom: Callable[[int], Box | None],
    walkers_reported: str,
    verifier: Verifier | None = None,
    far: tuple[list[Callable[[int], Box | None]], bool] = ([], False),
    log: list[Finding] | None = None,
) -> list[Outcome]:
    """A3's scene: eleven walkers through the zone, one every 1.3 s, reported as
    ``STREAM_REPORTS[walkers_reported]`` says, and phantom 7 at ``phantom(i)``; the outcomes
    of its 8 s dwell. ``verifier``: the one to run (for a worker that times its lies by
    it); ``far``: more walkers, and whether the worker reports them; ``log``: gets the
    verifier's findings."""
    zone = ((0.42, 0.6), (0.58, 0.6), (0.58, 0.8), (0.42, 0.8))
    walkers = [_stream_walker(k) for k in range(12)]
    report = STREAM_REPORTS[walkers_reported]
    others, others_reported = far

    def reports(i: int) -> list[TrackedObject]:
        out = [
            _person(100 + k, r)
            for k, w in enumerate(walkers[1:], 1)
            if (b := w(i)) is not None and (r := report(i, b)) is not None
        ]
        if others_reported:
            out += [_person(200 + k, b) for k, w in enumerate(others) if (b := w(i)) is not None]
        box = phantom(i)
        return out if box is None else [*out, _person(7, box)]

    drawn = lambda i: [b for w in walkers + others if (b := w(i)) is not None]  # noqa: E731
    out = _scene(160, drawn, reports, 8.0, zone, verifier=verifier, log=log)
    return [o for t, o, _ in out if t == 7]


@pytest.mark.parametrize("walkers_reported", list(STREAM_REPORTS))
def test_a_phantom_standing_in_a_stream_of_walkers_goes_to_an_operator(
    walkers_reported: str,
) -> None:
    """A3: the phantom rides the first walker into the zone and stands on the walkway while
    eleven more walk through it, one every 1.3 s. None of them stays more than ~3 s; the
    phantom's 8 s dwell is nobody's. The motion in its box is the walkers', and their
    content replaces what the box held (ADR 0050), however the worker reports them."""
    assert _in_the_stream(_phantom_in_the_stream, walkers_reported) == [Outcome.OPERATOR]


def _jumps(dx: float) -> Callable[[int], Box | None]:
    """The A3 phantom's box drawn ``dx`` px off for one frame once a second (the third
    review: a look on that frame saw the box move, or ride a walker)."""

    def at(i: int) -> Box | None:
        b = _phantom_in_the_stream(i)
        if b is None or i <= 66 or (i - 66) % 10 != 9:
            return b
        return (b[0] + dx, b[1], b[2] + dx, b[3])

    return at


def _sways(period: int, step: float) -> Callable[[int], Box | None]:
    """The A3 phantom's box drifting with the walkers ``step`` px a frame, then snapping back
    every ``period`` frames: it rides each for a moment and stays where it stands."""

    def at(i: int) -> Box | None:
        b = _phantom_in_the_stream(i)
        if b is None or i <= 66:
            return b
        d = step * ((i - 66) % period) - step * (period - 1) / 2
        return (b[0] + d, b[1], b[2] + d, b[3])

    return at


def _shifts_weight(half: int, step: float) -> Callable[[int], Box | None]:
    """The A3 phantom's box stepping ``step`` px aside and back every ``half`` frames: enough
    for the stream to vouch for it anew once its carry ends, were it not where it stood."""

    def at(i: int) -> Box | None:
        b = _phantom_in_the_stream(i)
        if b is None or i <= 66:
            return b
        d = step if ((i - 66) // half) % 2 else 0.0
        return (b[0] + d, b[1], b[2] + d, b[3])

    return at


@pytest.mark.parametrize("walkers_reported", ["honestly", "not at all"])
@pytest.mark.parametrize(
    "phantom",
    [_jumps(20.0), _jumps(-28.0), _sways(6, 4.0), _sways(8, 4.0), _shifts_weight(6, 12.0)],
    ids=["jump+20", "jump-28", "sway-6x4", "sway-8x4", "shift-12-every-6"],
)
def test_a_phantom_that_moves_its_box_in_the_stream_goes_to_an_operator(
    phantom: Callable[[int], Box | None], walkers_reported: str
) -> None:
    """The third review of ADR 0050 (all ALLOWed by its second version): the worker moves
    the standing phantom's box so that a look sees it ride a walker, or jump by half its
    width, or so that the stream vouches for it again once its carry ends. Its motion is
    its own only where it holds what it held at two lags, where it is (the median of its
    last boxes), and a carry the still test ended is not vouched for again where it stood."""
    assert _in_the_stream(phantom, walkers_reported) == [Outcome.OPERATOR]


def _next_look(verifier: Verifier, i: int) -> int | None:
    """The frame of phantom 7's next look for motion of its own (ADR 0050), as a worker that
    knows the code works it out from what it reported: None while it is not carried."""
    cam = verifier._cameras.get("cam1")
    h = None if cam is None else cam.tracks.get(7)
    if h is None or h.still_since is None or not h.carried:
        return None
    for j in range(i, i + 20):
        now = j / 10
        if now - h.still_since >= HOLD_EVERY_S - 1e-6 and now - h.looked_at >= LOOK_EVERY_S - 1e-6:
            return j
    return None


def _still_since(verifier: Verifier) -> int | None:
    """The frame of phantom 7's last look that succeeded (or of its vouch), as a worker that
    knows the code works it out: None while it is not carried."""
    cam = verifier._cameras.get("cam1")
    h = None if cam is None else cam.tracks.get(7)
    return (
        None if h is None or h.still_since is None or not h.carried else round(h.still_since * 10)
    )


def _lag(look: int, lag_s: float) -> int:
    """The frame (at 10 fps) a look on frame ``look`` takes as its lag of ``lag_s``."""
    return max(j for j in range(look) if j / 10 <= look / 10 - lag_s)


def _long_lags(verifier: Verifier) -> set[int]:
    """The frames that will be the 0.8 s lags of phantom 7's next five possible looks (0.5 s
    after the last that succeeded, then every 0.2 s), but for those that are looks too."""
    since = _still_since(verifier)
    if since is None:
        return set()
    looks = [since + 5 + 2 * k for k in range(5)]
    return {j for j in (_lag(look, 0.8) for look in looks) if j > since and j not in looks}


def _stretched(out: list[TrackedObject], p: Box, verifier: Verifier) -> list[TrackedObject]:
    """``out`` with the carried car box nearest the phantom's box ``p`` stretched 8 px over
    its edge: any overlap makes the phantom's box covered (ADR 0044's cover)."""
    tracks = verifier._cameras["cam1"].tracks
    cars = [
        j
        for j, o in enumerate(out)
        if o.class_name == "car" and (h := tracks.get(o.track_id)) is not None and h.carried
    ]
    if not cars:
        return out

    def gap(o: TrackedObject) -> float:
        b = o.xyxy
        return p[0] - b[2] if b[2] <= p[0] else b[0] - p[2]

    j = min(cars, key=lambda j: gap(out[j]))
    b = out[j].xyxy
    b = (b[0], b[1], p[0] + 8, b[3]) if b[2] <= p[0] else (p[2] - 8, b[1], b[2], b[3])
    return [*out[:j], _car(out[j].track_id, b), *out[j + 1 :]]


def _car(track_id: int, b: Box) -> TrackedObject:
    return TrackedObject(track_id=track_id, class_id=2, class_name="car", confidence=0.9, xyxy=b)


def _cars_off(
    p: Box | None, walkers: list[Callable[[int], Box | None]], i: int
) -> list[TrackedObject]:
    """Frame ``i``'s walkers but the first, reported as cars, each clipped 6 px off the
    phantom's box ``p`` (left out when too little of it is left)."""
    out = []
    for k, w in enumerate(walkers[1:], 1):
        b = w(i)
        if b is not None and p is not None and _over(b, p):
            left = (b[0], b[1], min(b[2], p[0] - 6), b[3])
            right = (max(b[0], p[2] + 6), b[1], b[2], b[3])
            b = left if left[2] - left[0] >= right[2] - right[0] else right
            b = b if b[2] - b[0] >= 4 else None
        if b is not None:
            out.append(_car(100 + k, b))
    return out


def test_a_phantom_whose_lags_a_stretched_car_covers_goes_to_an_operator() -> None:
    """The fourth review of ADR 0050 (ALLOWed before it): A3 with the walkers reported as
    cars, clipped off the standing phantom's box, but for the nearest carried one,
    stretched over it on the two frames that are the lags of the look that meets the next
    walker (1.3 s after it last moved). A box covered at a lag was compared with the box
    where the track last moved on its own: here the phantom riding the first walker, whom
    the next one looks like. Now it is compared with where the track last stood uncovered
    and held itself at both lags, which a phantom in a stream never did."""
    zone = ((0.42, 0.6), (0.58, 0.6), (0.58, 0.8), (0.42, 0.8))
    walkers = [_stream_walker(k) for k in range(12)]
    verifier = Verifier(VerifierConfig())

    def reports(i: int) -> list[TrackedObject]:
        p = _phantom_in_the_stream(i)
        out = _cars_off(p, walkers, i)
        if p is None:
            return out
        h = verifier._cameras["cam1"].tracks.get(7) if verifier._cameras else None
        since = None if h is None or not h.carried else h.still_since
        if i > 66 and since is not None and round(since * 10) + 13 - i in (8, 9):
            out = _stretched(out, p, verifier)  # 0.8 and 0.9 s before that look
        return [*out, _person(7, p)]

    drawn = lambda i: [b for w in walkers if (b := w(i)) is not None]  # noqa: E731
    out = _scene(160, drawn, reports, 8.0, zone, verifier=verifier)
    assert [o for t, o, _ in out if t == 7] == [Outcome.OPERATOR], out


def _half_second_stream(
    width: float, step: float, lie: str = "none", top: float = 150.0
) -> list[tuple[int, Outcome, tuple[str, ...]]]:
    """The third review's scene: walkers one every 0.5 s, their heads at ``top``, and a
    phantom that rides the first in and stands among them; its 8 s dwell's outcomes.
    ``lie``: ``none`` (the walkers reported honestly), ``cover`` (as cars, one stretched
    over the phantom on its looks' long lags), ``resize`` (the phantom's box 1.3 times
    larger on its looks' long lags) or ``border`` (its top drawn up to the picture's border
    there)."""
    dy = (top - 150.0) / 360
    zone = ((0.35, 0.6 + dy), (0.75, 0.6 + dy), (0.75, 0.8 + dy), (0.35, 0.8 + dy))
    stand_at = 25 + round((300.0 - 60.0) / step)

    def walker(k: int) -> Callable[[int], Box | None]:
        def at(i: int) -> Box | None:
            x = 60.0 + step * (i - 25 - 5 * k)
            return (x, top, x + width, top + 100.0) if i >= 25 + 5 * k and x < 590 else None

        return at

    walkers = [walker(k) for k in range(40)]

    def phantom(i: int) -> Box | None:
        b = walkers[0](min(i, stand_at)) if i >= 25 else None
        if b is None:
            return None
        wd = min(8.0, 2.0 * max(i - stand_at, 0))
        x0 = b[0] + (0.25 * (i % 3) if i > stand_at else 0.0)
        return (x0 - wd, top, x0 + width + wd, top + 100.0)

    verifier = Verifier(VerifierConfig())

    def reports(i: int) -> list[TrackedObject]:
        box = phantom(i)
        look = None if box is None or i <= stand_at else _next_look(verifier, i)
        on_lag = look is not None and (look - i) % 5 == 3  # 0.8 s before a look, or 0.3
        if lie == "none":
            out = [_person(100 + k, b) for k, w in enumerate(walkers[1:], 1) if (b := w(i))]
        else:
            out = _cars_off(box, walkers, i)
            out = _stretched(out, box, verifier) if lie == "cover" and on_lag and box else out
        if box is not None and lie == "resize" and on_lag:
            cx, w, h = (box[0] + box[2]) / 2, (box[2] - box[0]) * 1.3, (box[3] - box[1]) * 1.3
            box = (cx - w / 2, box[3] - h, cx + w / 2, box[3])
        if box is not None and lie == "border" and i in _long_lags(verifier):
            box = (box[0], 2.0, box[2], box[3])
        return out if box is None else [*out, _person(7, box)]

    drawn = lambda i: [b for w in walkers if (b := w(i)) is not None]  # noqa: E731
    return _scene(160, drawn, reports, 8.0, zone, verifier=verifier)


@pytest.mark.parametrize(("width", "step"), [(24.0, 8.0), (30.0, 8.0)])
def test_a_phantom_in_a_stream_that_repeats_every_half_second_goes_to_an_operator(
    width: float, step: float
) -> None:
    """The third review: walkers one every 0.5 s, reported honestly, and a phantom that just
    stands among them: its content 0.5 s apart repeats; 0.8 s apart it does not."""
    out = _half_second_stream(width, step)
    assert [o for t, o, _ in out if t == 7] == [Outcome.OPERATOR], out


@pytest.mark.parametrize("lie", ["cover", "resize"])
def test_a_half_second_stream_phantom_whose_long_lag_is_made_mute_goes_to_an_operator(
    lie: str,
) -> None:
    """The fourth review of ADR 0050 (both ALLOWed before it): the worker makes the 0.8 s
    lag, which may have no say, unanswerable on the frames it falls on: by a car box
    stretched over the phantom (the one lag of the covered path), or by drawing the
    phantom's box 1.3 times larger (a lag rescaled past ``MAX_SCALE`` had no say). The
    0.5 s lag alone then holds the stream. Now a lag is compared at any box size, and the
    covered path needs where the track last stood and held itself."""
    out = _half_second_stream(24.0, 8.0, lie)
    assert [o for t, o, _ in out if t == 7] == [Outcome.OPERATOR], out


def test_a_half_second_stream_phantom_whose_long_lag_meets_the_border_goes_to_an_operator() -> None:
    """The eighth review of ADR 0050 (ALLOWed before it): in the half-second stream near the
    picture's top, the phantom's box reaches up to the border on the frames of its looks'
    0.8 s lags, a picture pixel from the edge, where the lag has no say; the 0.5 s lag
    alone holds the stream. A lag is where the track was over the boxes around it."""
    out = _half_second_stream(24.0, 8.0, "border", top=10.0)
    assert [o for t, o, _ in out if t == 7] == [Outcome.OPERATOR], out


@pytest.mark.parametrize("leaves_at", [70, 85, 100])
def test_a_phantom_left_where_a_person_stood_in_a_stream_of_cars_goes_to_an_operator(
    leaves_at: int,
) -> None:
    """The fifth review of ADR 0050 (ALLOWed by its first fix): a real person walks in and
    stands at x = 290 (the track holds itself: it has a place it stood), then walks on at
    ``leaves_at``, a walker every 1.3 s after them. The worker keeps the box standing
    there, and reports every walker as a car, cut short to its top while it passes the
    box: the box is covered on every look, and each walker's legs, like the person's,
    stood there once. A look through a cover now asks the box to hold where the person
    stood now and at both lags, which a stream does not."""
    zone = ((0.42, 0.6), (0.58, 0.6), (0.58, 0.8), (0.42, 0.8))

    def person(i: int) -> Box | None:
        x = min(140.0 + 4.0 * (i - 25), 290.0) if i <= leaves_at else 290.0 + 4.0 * (i - leaves_at)
        return (x, 150.0, x + 40.0, 250.0) if i >= 25 and x < 590 else None

    def walker(k: int) -> Callable[[int], Box | None]:
        def at(i: int) -> Box | None:
            x = 290.0 + 4.0 * (i - leaves_at) - 52.0 * k
            return (x, 150.0, x + 40.0, 250.0) if 140.0 <= x < 590 else None

        return at

    walkers = [walker(k) for k in range(1, 15)]

    def phantom(i: int) -> Box | None:
        b = (290.0, 150.0, 330.0, 250.0) if i > leaves_at else person(i)
        j = 0.25 * (i % 3) if i >= 65 else 0.0
        return None if b is None else (b[0] + j, b[1], b[2] + j, b[3])

    def reports(i: int) -> list[TrackedObject]:
        p = phantom(i)
        movers = [(200, person(i))] if i > leaves_at else []
        movers += [(300 + k, w(i)) for k, w in enumerate(walkers)]
        out = [
            _car(tid, (b[0], b[1], b[2], 190.0) if _over(b, p) else b)
            for tid, b in movers
            if b is not None
        ]
        return out if p is None else [*out, _person(7, p)]

    drawn = lambda i: [b for b in [person(i), *(w(i) for w in walkers)] if b]  # noqa: E731
    out = _scene(170, drawn, reports, 8.0, zone)
    assert [o for t, o, _ in out if t == 7] == [Outcome.OPERATOR], out


def _tall(top: float) -> Callable[[int], Box | None]:
    """The A3 phantom's box drawn from ``top`` down once it stands: up to half as tall again
    as the walkers (under the stature check's limit), over the still ground above them."""

    def at(i: int) -> Box | None:
        b = _phantom_in_the_stream(i)
        return b if b is None or i <= 65 else (b[0], top, b[2], b[3])

    return at


@pytest.mark.parametrize(
    ("top", "walkers_reported"), [(95.0, "not at all"), (105.0, "honestly"), (115.0, "not at all")]
)
def test_a_tall_phantom_standing_in_the_stream_goes_to_an_operator(
    top: float, walkers_reported: str
) -> None:
    """The sixth review of ADR 0050: the A3 phantom's box drawn a third or a half taller
    than the walkers is ALLOWed. Over the whole box, the still ground above their heads
    holds at both lags while they give it motion and support. The pixels that carry the
    box should be the ones that hold."""
    assert _in_the_stream(_tall(top), walkers_reported) == [Outcome.OPERATOR]


@pytest.mark.parametrize(("top", "pad"), [(150.0, 0.0), (115.0, 0.0), (135.0, 5.0)])
def test_a_person_standing_in_a_loose_box_is_allowed(top: float, pad: float) -> None:
    """The honest control of the tall phantom: a real person walks in and stands for 8 s,
    and the worker draws their box padded, a third taller, or 15% taller and 5 px wider
    each side, jittering by up to 0.8 px (detectors do). Their pixels hold, wherever their
    box ends. (In clothes: a flat grey figure swaying by a pixel gives a box a third larger
    too little motion of its own; and a box both a third taller and 10 px wider each side
    does not hold as a whole while its slow walker walks in: both as before ADR 0050's
    sixth review.)"""
    zone = ((0.4, 0.6), (1.0, 0.6), (1.0, 0.8), (0.4, 0.8))

    def reports(i: int) -> list[TrackedObject]:
        b = _walks_then_stands(i)
        j = 0.4 * ((i * 7) % 5 - 2)  # a detector's box jitters from frame to frame
        return [] if b is None else [_person(1, (b[0] - pad + j, top - j, b[2] + pad, b[3] + j))]

    drawn = lambda i: [b for b in [_walks_then_stands(i)] if b]  # noqa: E731
    out = _scene(150, drawn, reports, 8.0, zone, textured=True)
    assert [(t, o) for t, o, _ in out] == [(1, Outcome.ALLOW)], out


def _tall_but_on_its_looks(
    verifier: Verifier, timed: bool, grow: float
) -> Callable[[int], Box | None]:
    """The A3 phantom, drawn ``grow`` times as tall about its centre once it stands, but on
    the frames of its looks (``timed``: a worker that knows the code) or on one frame in
    three (one that does not), where it is as tall as the walkers."""

    def at(i: int) -> Box | None:
        b = _phantom_in_the_stream(i)
        if b is None or i <= 66 or (_next_look(verifier, i) == i if timed else i % 3 == 0):
            return b
        cy, h = (b[1] + b[3]) / 2, (b[3] - b[1]) * grow
        return (b[0], cy - h / 2, b[2], cy + h / 2)

    return at


@pytest.mark.parametrize(("timed", "grow"), [(True, 1.4), (False, 1.45)])
@pytest.mark.parametrize("walkers_reported", ["honestly", "not at all"])
def test_a_phantom_drawn_tall_but_on_its_looks_goes_to_an_operator(
    timed: bool, grow: float, walkers_reported: str
) -> None:
    """The seventh review of ADR 0050 (ALLOWed before it, and by the first fix of the tall
    phantom): the box a look compares with at a lag takes in still ground above and below
    the walkers, which holds; on the look's own frame the walkers fill the box. What
    carries the box now must hold at the same place then, whatever size the box had."""
    verifier = Verifier(VerifierConfig())
    phantom = _tall_but_on_its_looks(verifier, timed, grow)
    assert _in_the_stream(phantom, walkers_reported, verifier) == [Outcome.OPERATOR]


def _far_walker(k: int, feet: float, height: float) -> Callable[[int], Box | None]:
    """A far lane: small walkers (24 px wide) going the other way, feet at ``feet``."""

    def at(i: int) -> Box | None:
        x = 560.0 - 3.0 * (i - 10 * k)
        return (x, feet - height, x + 24.0, feet) if i >= 10 * k and x > 20 else None

    return at


@pytest.mark.parametrize("far_reported", [True, False])
@pytest.mark.parametrize(("top", "feet", "height"), [(95.0, 105.0, 30.0), (95.0, 100.0, 40.0)])
def test_a_tall_phantom_between_two_lanes_of_walkers_goes_to_an_operator(
    top: float, feet: float, height: float, far_reported: bool
) -> None:
    """The seventh review of ADR 0050: a far lane's walkers reach 5-10 px into the top of
    the tall phantom's box. The foreground in the box then spans it from top to bottom, and
    the still ground between the lanes held for the first fix of the tall phantom. The
    ground between them carries nothing."""
    far = [_far_walker(k, feet, height) for k in range(16)]
    assert _in_the_stream(_tall(top), "honestly", far=(far, far_reported)) == [Outcome.OPERATOR]


def _jumps_on_its_lags(verifier: Verifier, dx: float) -> Callable[[int], Box | None]:
    """The A3 phantom, moved ``dx`` px (from 6 s, as it comes to stand) on the two frames
    that will be the 0.5 s and 0.8 s lags of its next look after the last that succeeded,
    as a worker that knows the code works them out (looks come 0.5 s after it, then every
    0.2 s); never on a look's frame."""

    def lag_frames(since: int) -> set[int]:
        looks = [since] + [since + 5 + 2 * k for k in range(5)]
        for look in looks[2:]:
            lags = {_lag(look, 0.5), _lag(look, 0.8)}
            if not lags & set(looks) and min(lags) > since:
                return lags
        return set()

    def at(i: int) -> Box | None:
        b = _phantom_in_the_stream(i)
        since = _still_since(verifier)
        if b is None or i < 60 or since is None or i not in lag_frames(since):
            return b
        return (b[0] + dx, b[1], b[2] + dx, b[3])

    return at


@pytest.mark.parametrize("walkers_reported", ["honestly", "not at all"])
def test_a_phantom_moved_on_its_lags_goes_to_an_operator(walkers_reported: str) -> None:
    """The eighth review of ADR 0050 (ALLOWed before it): the worker moves the standing
    phantom's box 30 px on the frames of its next look's lags, and only there. Both lag
    boxes then lay half a width from where the track stood, and the look took it for a
    walker ("it walks") without comparing anything. Where the track was at a lag is the
    median of its boxes around it."""
    verifier = Verifier(VerifierConfig())
    phantom = _jumps_on_its_lags(verifier, 30.0)
    assert _in_the_stream(phantom, walkers_reported, verifier) == [Outcome.OPERATOR]


def test_a_person_standing_near_the_pictures_edge_is_allowed() -> None:
    """The honest control of the carried pixels near a border (the eighth review): a
    person walks in leftwards and stands with their box 6 px from the picture's left edge
    (a picture pixel and a half at the 4 px stride). The halo of their pixels stops short
    of the picture's outer column, which ``held`` does not compare."""
    zone = ((0.0, 0.6), (0.15, 0.6), (0.15, 0.8), (0.0, 0.8))

    def body(i: int) -> Box | None:
        x = max(220.0 - 3.0 * (i - 25), 6.0)
        return (x, 150.0, x + 40.0, 250.0) if i >= 25 else None

    def reports(i: int) -> list[TrackedObject]:
        b, j = body(i), 0.4 * ((i * 7) % 5 - 2)
        return [] if b is None else [_person(7, (b[0] + abs(j), b[1] - j, b[2] + j, b[3] + j))]

    drawn = lambda i: [b for b in [body(i)] if b]  # noqa: E731
    out = _scene(180, drawn, reports, 8.0, zone, textured=True)
    assert [(t, o) for t, o, _ in out] == [(7, Outcome.ALLOW)], out


def _rides_its_lags(
    verifier: Verifier, walkers: list[Callable[[int], Box | None]]
) -> Callable[[int], Box | None]:
    """The A3 phantom, drawn on the walker who will be centred in its box at one of its next
    looks (within 4 px), padded 8 px each side, on the frames of that look's two lags: the
    walker who moved along, 20 and 32 px back."""

    def planned(since: int) -> dict[int, Box]:
        for look in (since + 5 + 2 * k for k in range(5)):
            p = _phantom_in_the_stream(look)
            assert p is not None
            for w in walkers:
                b = w(look)
                if b is None or abs((b[0] + b[2]) / 2 - (p[0] + p[2]) / 2) > 4.0:
                    continue
                lags = [_lag(look, 0.5), _lag(look, 0.8)]
                if min(lags) > since:
                    on = {j: w(j) for j in lags}
                    return {j: (c[0] - 8, c[1], c[2] + 8, c[3]) for j, c in on.items() if c}
        return {}

    def at(i: int) -> Box | None:
        b = _phantom_in_the_stream(i)
        since = _still_since(verifier)
        return b if b is None or i < 60 or since is None else planned(since).get(i, b)

    return at


def test_a_phantom_drawn_on_the_walker_at_its_lags_goes_to_an_operator() -> None:
    """The eighth review of ADR 0050 (ALLOWed before it): walkers in clothes every 1.1 s,
    all reported; on the two lag frames of a look at which a walker is centred in the
    standing phantom's box, the worker draws the box on that walker, 20 and 32 px back. The
    look compared the walker with themselves, whole box and carried pixels alike. Where the
    track was at a lag is the median of its boxes around it, where it stood."""
    zone = ((0.42, 0.6), (0.58, 0.6), (0.58, 0.8), (0.42, 0.8))

    def walker(k: int) -> Callable[[int], Box | None]:
        def at(i: int) -> Box | None:
            x = 140.0 + 4.0 * (i - 25 - 11 * k)
            return (x, 150.0, x + 40.0, 250.0) if i >= 25 + 11 * k and x < 590 else None

        return at

    walkers = [walker(k) for k in range(20)]
    verifier = Verifier(VerifierConfig())
    phantom = _rides_its_lags(verifier, walkers)

    def reports(i: int) -> list[TrackedObject]:
        out = [_person(100 + k, b) for k, w in enumerate(walkers) if (k or i > 66) and (b := w(i))]
        box = phantom(i)
        return out if box is None else [*out, _person(7, box)]

    drawn = lambda i: [b for w in walkers if (b := w(i)) is not None]  # noqa: E731
    out = _scene(160, drawn, reports, 8.0, zone, verifier=verifier, textured=True)
    assert [o for t, o, _ in out if t == 7] == [Outcome.OPERATOR], out


def _square_wave(dx: float, half: int) -> Callable[[int], Box | None]:
    """The A3 phantom jumping ``dx`` px and back once it stands, ``half`` frames at each
    place: a worker that reads nothing of the verifier's."""

    def at(i: int) -> Box | None:
        b = _phantom_in_the_stream(i)
        if b is None or i < 66 or not (i // half) % 2:
            return b
        return (b[0] + dx, b[1], b[2] + dx, b[3])

    return at


@pytest.mark.parametrize(("dx", "half"), [(30.0, 5), (40.0, 6), (-30.0, 7)])
@pytest.mark.parametrize("walkers_reported", ["honestly", "not at all"])
def test_a_phantom_jumping_to_and_fro_goes_to_an_operator(
    dx: float, half: int, walkers_reported: str
) -> None:
    """The ninth review of ADR 0050 (ALLOWed before it): the standing phantom's box jumps
    30-40 px and back every 5-7 frames. Where it is now and where it was at both lags fell
    on opposite halves of the wave, half a width or more apart, and the look took it for a
    walker. A walker lies farther along the same way at the longer lag; this box lies as
    far, and is looked at as one that stands."""
    assert _in_the_stream(_square_wave(dx, half), walkers_reported) == [Outcome.OPERATOR]


def _sawtooth(back: int) -> Callable[[int], Box | None]:
    """The A3 phantom riding the walkers once it stands: at their pace (4 px a frame), then
    back onto the next walker (13 frames behind, 52 px) over ``back`` frames, again and
    again: each ride a walker's, the box never leaving the zone."""
    ride = 13 - back

    def at(i: int) -> Box | None:
        b = _phantom_in_the_stream(i)
        first = _stream_walker(0)(66)
        if b is None or i < 66 or first is None:
            return b
        p = (i - 66) % 13
        x = first[0] - 8.0 + (4.0 * p if p <= ride else 4.0 * ride * (13 - p) / back)
        return (x, 150.0, x + 40.0, 250.0)

    return at


@pytest.mark.parametrize("back", [1, 2])
@pytest.mark.parametrize("walkers_reported", ["honestly", "not at all"])
def test_a_phantom_that_rides_each_walker_and_jumps_back_goes_to_an_operator(
    back: int, walkers_reported: str
) -> None:
    """ADR 0050's tenth review (ALLOWed before ADR 0053): every look sees a steady walker,
    and content coherence averages one jump in 1.3 s away. No person goes back 1.3 widths
    in a frame or two against the way they were going: the box jumped, and the dwell is of
    several walkers."""
    log: list[Finding] = []
    assert _in_the_stream(_sawtooth(back), walkers_reported, log=log) == [Outcome.OPERATOR]
    assert sum(7 in f.jumped for f in log) >= 5  # a jump every 1.3 s: each one seen


@pytest.mark.parametrize("gap", [5, 6])
def test_a_phantom_that_hides_its_jump_back_in_a_gap_goes_to_an_operator(gap: int) -> None:
    """ADR 0053's review: the sawtooth with the box left out for 0.5-0.6 s before it comes
    back on the walker behind, so that no step spans under half a second. Across a gap the
    box must land on the path it was on (kept going, or stopped)."""
    first = _stream_walker(0)(66)
    assert first is not None

    def at(i: int) -> Box | None:
        b = _phantom_in_the_stream(i)
        p = (i - 66) % 13
        if b is None or i < 66:
            return b
        return (
            None
            if p >= 13 - gap
            else (first[0] - 8.0 + 4.0 * p, 150.0, first[0] + 32.0 + 4.0 * p, 250.0)
        )

    log: list[Finding] = []
    assert _in_the_stream(at, "honestly", log=log) == [Outcome.OPERATOR]
    assert sum(7 in f.jumped for f in log) >= 5


def test_a_phantom_jumping_to_and_fro_farther_than_away_goes_to_an_operator() -> None:
    """The tenth review (ALLOWed before ADR 0053): 62 px and back every 7 frames on a 40 px
    box, about x = 252-314 px, wider than ``AWAY``: every jump is one."""

    def at(i: int) -> Box | None:
        b = _phantom_in_the_stream(i)
        if b is None or i < 66:
            return b
        x = 252.0 + 0.25 * (i % 3) + (62.0 if ((i - 66) // 7) % 2 else 0.0)
        return (x, 150.0, x + 40.0, 250.0)

    assert _in_the_stream(at, "honestly") == [Outcome.OPERATOR]
