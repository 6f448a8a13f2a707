"""A settled track dropped while the pixels under its box stayed unchanged (ADR 0025).

No background model is involved: the check must work on a handheld camera and right after a
cut, where :mod:`kontur.verifier.vanished` abstains. Synthetic textured pictures pin the rules
down; a whole :class:`~kontur.verifier.Verifier` shows the wiring: a sure track dropped over
an unchanged picture disagrees within a second, a track whose object left does not, and an
unsure track never starts the check.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from verifier_sim import person, track_frame

from kontur.config import PolicyConfig, VerifierConfig, ZoneConfig
from kontur.verifier import (
    ObservedBox,
    Verifier,
    Watch,
    WatchedZone,
    make_picture,
    make_thumbnail,
)
from kontur.verifier.stayed import StayedTracks
from kontur.verifier.watch import ClassGroups
from kontur.wire import Finding, TrackedObject

GROUPS = ClassGroups(VerifierConfig().class_groups)

WHOLE = WatchedZone("whole-frame", "*", ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)), None)
STRIDE = 4
W, H = 640, 360  # the frame; its picture is 160×90
BOX = (200.0, 120.0, 260.0, 280.0)  # frame pixels
FPS = 10.0


def texture(seed: int = 0) -> np.ndarray:
    """A 90×160 grey picture with texture at the scale of a few picture pixels."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(30, 220, size=(23, 40), dtype=np.uint8)
    return np.kron(coarse, np.ones((4, 4), np.uint8))[:90, :160].copy()


def noisy(pixels: np.ndarray, seed: int) -> np.ndarray:
    """``pixels`` with a grey level or two of sensor noise."""
    rng = np.random.default_rng(seed)
    return np.clip(pixels.astype(int) + rng.integers(-2, 3, pixels.shape), 0, 255).astype(np.uint8)


def run_of(xyxy: tuple[float, float, float, float] = BOX, n: int = 5) -> list[ObservedBox]:
    """A settled run: ``n`` boxes at 10 fps, the last at 0 s."""
    return [ObservedBox(k, (k - n + 1) / FPS, xyxy, 0, 0.9, "person") for k in range(n)]


def follow(
    patches: StayedTracks, pictures: list[np.ndarray], reported: dict | None = None
) -> list[list[str]]:
    return [
        patches.observe((p, STRIDE, W, H), reported or {}, (k + 1) / FPS)
        for k, p in enumerate(pictures)
    ]


def lose(patches: StayedTracks, tid: int, run: list[ObservedBox], scene: np.ndarray) -> None:
    """Track ``tid`` is missing from the frame after ``run`` (its last report at 0 s)."""
    patches.lost(tid, run, (scene, STRIDE, W, H), 0.0)


def test_a_sure_track_dropped_over_unchanged_pixels_raises_its_zone_after_the_delay() -> None:
    scene = texture()
    patches = StayedTracks((WHOLE,), 0.5)
    lose(patches, 7, run_of(), scene)
    out = follow(patches, [noisy(scene, k) for k in range(6)])
    assert out[:4] == [[], [], [], []]  # 0.1-0.4 s: a detector may blink
    reason = out[4][0]
    assert reason.startswith(
        "zone whole-frame: track 7 (person) stayed hidden 0.5 s while the pixels under the "
        "box it was last sure of stayed unchanged (NCC "
    )
    assert reason.endswith(", 5 of 5 frames); expected the track: nothing-there is unverified "
                           "(possible evasion)")  # fmt: skip


def test_a_handheld_drift_of_a_pixel_per_frame_is_followed() -> None:
    scene = texture(1)
    patches = StayedTracks((WHOLE,), 0.5)
    lose(patches, 7, run_of(), scene)
    drifted = [np.roll(scene, shift=(0, k + 1), axis=(0, 1)) for k in range(5)]
    assert follow(patches, drifted)[-1] != []


@pytest.mark.parametrize("change", ["left", "covered_by_a_passer_by"])
def test_an_object_that_left_or_was_covered_changes_its_pixels_and_raises_nothing(
    change: str,
) -> None:
    scene = texture(2)
    after = scene.copy()
    y0, x0, y1, x1 = 30, 50, 70, 65  # BOX in picture pixels
    if change == "left":
        after[y0:y1, x0:x1] = texture(3)[y0:y1, x0:x1]  # what was behind it
    else:
        after[y0 : y0 + 25, x0 - 5 : x1 + 5] = 20  # a dark coat in front of most of it
    patches = StayedTracks((WHOLE,), 0.5)
    lose(patches, 7, run_of(), scene)
    assert follow(patches, [noisy(after, k) for k in range(8)]) == [[]] * 8


def test_the_track_again_over_it_or_a_new_one_of_its_group_explains_it_but_nothing_else() -> None:
    scene = texture(4)
    for reported, raised in [
        ({7: ((205.0, 125.0, 255.0, 275.0), "person")}, False),  # the same id, over it
        ({7: ((0.0, 0.0, 640.0, 360.0), "person")}, False),  # the same id, however large
        ({9: ((205.0, 125.0, 255.0, 275.0), "person")}, False),  # a new id over it
        ({7: ((500.0, 10.0, 520.0, 40.0), "person")}, True),  # the same id, somewhere else
        ({9: ((205.0, 125.0, 255.0, 275.0), "chair")}, True),  # a new id of another group
        ({9: ((0.0, 0.0, 640.0, 360.0), "person")}, True),  # over the whole frame: nothing
    ]:
        patches = StayedTracks((WHOLE,), 0.5, GROUPS.key)
        lose(patches, 7, run_of(), scene)
        out = follow(patches, [scene] * 5, reported)
        assert (out[-1] != []) is raised, reported


def test_a_box_at_the_border_that_moved_towards_it_is_not_kept() -> None:
    scene = texture(5)
    leaving = [
        ObservedBox(k, (k - 4) / FPS, (40.0 - 10 * k, 120.0, 100.0 - 10 * k, 280.0), 0, 0.9,
                    "person")
        for k in range(5)
    ]  # fmt: skip
    patches = StayedTracks((WHOLE,), 0.5)
    lose(patches, 7, leaving, scene)  # the last box touches x = 0, moving left
    assert follow(patches, [scene] * 6)[-1] == []
    standing = [ObservedBox(k, (k - 4) / FPS, (0.0, 120.0, 60.0, 280.0), 0, 0.9, "person")
                for k in range(5)]  # fmt: skip
    lose(patches, 8, standing, scene)  # at the border, but not moving towards it
    assert follow(patches, [scene] * 6)[-1] != []


def test_a_flat_patch_is_never_kept() -> None:
    flat = np.full((90, 160), 128, np.uint8)
    patches = StayedTracks((WHOLE,), 0.5)
    lose(patches, 7, run_of(), flat)
    assert follow(patches, [flat] * 6)[-1] == []


def _frame(seed: int) -> np.ndarray:
    """A 640×360 BGR frame of texture, with sensor noise of seed ``seed``."""
    grey = np.kron(texture(10), np.ones((STRIDE, STRIDE), np.uint8))
    bgr = np.repeat(noisy(grey, seed)[..., None], 3, axis=2)
    return np.ascontiguousarray(bgr)


Worker = Callable[[int], list[TrackedObject]]


def _verify(worker: Worker, cut_at: int | None = None) -> tuple[list[Finding], Verifier]:
    """3.5 s of a still textured scene (cut at ``cut_at``), and ``worker``'s objects for each
    frame, through a whole verifier."""
    verifier = Verifier(VerifierConfig())
    findings = []
    for i in range(35):
        bgr = _frame(i) if cut_at is None or i < cut_at else _frame(i)[::-1].copy()
        verifier.observe_frame("cam-1", i, i / FPS, make_thumbnail(bgr), picture=make_picture(bgr))
        findings.append(verifier.check(track_frame(i, i / FPS, worker(i))))
    return findings, verifier


def dropping(confidence: float = 0.9, at: int = 20) -> Worker:
    """A still person tracked at ``confidence``, then dropped from frame ``at`` on."""
    return lambda i: [person(3, BOX, confidence)] if i < at else []


def stayed(findings: list[Finding]) -> list[int]:
    return [f.frame_index for f in findings if any("stayed hidden" in r for r in f.reasons)]


def test_the_verifier_disagrees_within_a_second_when_a_sure_worker_drops_a_still_person() -> None:
    findings, verifier = _verify(dropping())
    assert all(f.agree for f in findings[:20])
    flagged = stayed(findings)
    assert flagged and 20 <= flagged[0] <= 29, flagged  # 0.5 s after the drop, within 1 s
    assert verifier.disagreements["stayed"] == len(flagged)


def test_an_unsure_worker_or_a_cut_starts_nothing() -> None:
    assert stayed(_verify(dropping(0.45))[0]) == []
    assert stayed(_verify(dropping(0.9), cut_at=21)[0]) == []


def test_fading_the_confidence_or_relabelling_for_a_frame_before_the_drop_changes_nothing() -> None:
    """A worker that lowers the confidence over 0.5 s, or calls the person a chair for one
    frame, before it drops him, is held to what it was sure of."""

    def fading(i: int) -> list[TrackedObject]:
        if i >= 20:
            return []
        return [person(3, BOX, 0.9 if i < 15 else 0.9 - 0.1 * (i - 14))]

    def relabelling(i: int) -> list[TrackedObject]:
        if i == 19:
            return [TrackedObject(track_id=3, class_id=56, class_name="chair",
                                  confidence=0.9, xyxy=BOX)]  # fmt: skip
        return dropping()(i)

    for worker in (fading, relabelling):
        flagged = stayed(_verify(worker)[0])
        assert flagged and flagged[0] <= 29, (worker.__name__, flagged)


def test_decoys_outside_every_zone_take_no_place_from_a_person_in_one() -> None:
    """32 settled phantoms outside the zone, dropped just before the real person, do not fill
    the verifier's list of patches."""
    zone = ZoneConfig(id="right", polygon=[(0.25, 0.0), (1.0, 0.0), (1.0, 1.0), (0.25, 1.0)])
    policy = PolicyConfig.model_validate(
        {"rule": "dwell", "action": "alarm",
         "when": {"type": "dwell", "zone": "right", "classes": ["person"], "min_seconds": 3}}
    )  # fmt: skip
    decoys = [person(100 + k, (4.0 * k, 300.0, 4.0 * k + 30, 350.0)) for k in range(32)]

    def worker(i: int) -> list[TrackedObject]:
        return ([*decoys] if i < 19 else []) + ([person(3, BOX)] if i < 20 else [])

    verifier = Verifier(VerifierConfig(), Watch.from_policies((zone,), (policy,)))
    flagged = []
    for i in range(35):
        bgr = _frame(i)
        verifier.observe_frame("cam-1", i, i / FPS, make_thumbnail(bgr), picture=make_picture(bgr))
        finding = verifier.check(track_frame(i, i / FPS, worker(i)))
        flagged += [i] if any("stayed hidden" in r for r in finding.reasons) else []
    assert flagged and flagged[0] <= 29, flagged


def _past_a_sign() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A box (picture rows 30-70, columns 50-65) over a black-and-white sign and, in its left
    third, a walker of little contrast; the picture once the walker has gone on (the grass
    behind them); and the walker's pixels, as the verifier's foreground saw them."""
    scene = texture(2)
    scene[30:70, 50:65] = np.where((np.arange(15) // 2) % 2, 250, 10).astype(np.uint8)
    walker = np.zeros(scene.shape, bool)
    walker[30:70, 50:56] = True
    rng = np.random.default_rng(9)
    with_walker = scene.copy()
    with_walker[walker] = rng.integers(90, 150, int(walker.sum()), dtype=np.uint8)
    gone = scene.copy()
    gone[walker] = rng.integers(110, 130, int(walker.sum()), dtype=np.uint8)
    return with_walker, gone, walker


def test_only_the_objects_own_pixels_must_stay_on_a_judged_frame() -> None:
    """ADR 0054: a walker the detector was sure of walks on past a sign; the box's pixels are
    mostly the sign's, which stay. Compared whole, they say the walker stayed; compared over
    the walker's own pixels (the verifier's foreground when it was last sure of them), they
    say the walker left. A walker who stays keeps their own pixels, and is followed."""
    with_walker, gone, walker = _past_a_sign()
    whole = StayedTracks((WHOLE,), 0.5)
    lose(whole, 7, run_of(), with_walker)
    assert follow(whole, [noisy(gone, k) for k in range(6)])[-1] != []  # the old reading
    own = StayedTracks((WHOLE,), 0.5)
    own.lost(7, run_of(), (with_walker, STRIDE, W, H), 0.0, foreground=walker)
    assert follow(own, [noisy(gone, k) for k in range(8)]) == [[]] * 8
    stays = StayedTracks((WHOLE,), 0.5)
    stays.lost(7, run_of(), (with_walker, STRIDE, W, H), 0.0, foreground=walker)
    assert follow(stays, [noisy(with_walker, k) for k in range(6)])[-1] != []


def test_a_box_over_which_nothing_stands_out_on_a_judged_frame_is_not_kept() -> None:
    """Under a quarter of the box in the verifier's foreground: the box is on the scenery (a
    head box over a sign, a box left behind), whose unchanged pixels prove nothing."""
    with_walker, _, walker = _past_a_sign()
    sliver = walker & (np.arange(with_walker.shape[1]) < 51)[None, :]  # a column: 7% of the box
    patches = StayedTracks((WHOLE,), 0.5)
    patches.lost(7, run_of(), (with_walker, STRIDE, W, H), 0.0, foreground=sliver)
    assert follow(patches, [noisy(with_walker, k) for k in range(6)])[-1] == []


def test_a_walker_dropped_as_they_stop_is_followed_on_their_own_pixels() -> None:
    """The wiring of ADR 0054: a walker crosses the still scene and stops at 2 s, when the
    worker drops them. The box moved, so only the walker's own pixels (the verifier's
    foreground) are compared; they stay, and the zone is flagged within a second."""
    body = texture(11)[30:70, 0:15]

    def x(i: int) -> int:
        return 20 + min(i, 20)

    verifier = Verifier(VerifierConfig())
    flagged = []
    for i in range(32):
        grey = texture(10)
        grey[30:70, x(i) : x(i) + 15] = body
        frame = noisy(np.kron(grey, np.ones((STRIDE, STRIDE), np.uint8)), i)
        bgr = np.ascontiguousarray(np.repeat(frame[..., None], 3, axis=2))
        verifier.observe_frame("cam-1", i, i / FPS, make_thumbnail(bgr), picture=make_picture(bgr))
        box = (4.0 * x(i), 120.0, 4.0 * x(i) + 60.0, 280.0)
        finding = verifier.check(track_frame(i, i / FPS, [person(3, box)] if i <= 20 else []))
        if i == 21:
            (patch,) = verifier._cameras["cam-1"].stayed._patches  # read only
            assert patch.mask is not None and patch.mask.mean() > 0.5  # the walker's own pixels
        flagged += [i] if any("stayed hidden" in r for r in finding.reasons) else []
    assert flagged and 21 <= flagged[0] <= 31, flagged


def test_a_box_jittered_over_a_still_person_before_the_drop_is_still_compared_whole() -> None:
    """ADR 0054's review: whether the box moved is read from the pixels, not from where the
    worker drew it. A person stands in the scene from the start (the background took them
    in: no foreground of their own); the worker shakes the box a fifth of its height over
    the last half second, then drops them. No pixel moved, so the whole box is compared,
    and the zone is flagged as before."""

    def shaking(i: int) -> list[TrackedObject]:
        if i >= 20:
            return []
        dy = 32.0 * (i % 2) if i >= 15 else 0.0
        x1, y1, x2, y2 = BOX
        return [person(3, (x1, y1 + dy, x2, y2 + dy))]

    flagged = stayed(_verify(shaking)[0])
    assert flagged and 20 <= flagged[0] <= 29, flagged
