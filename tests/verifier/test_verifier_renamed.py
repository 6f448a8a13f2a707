"""The verifier's renaming check: an object whose box stays while its id keeps changing."""

from __future__ import annotations

import numpy as np
from verifier_sim import person, track_frame

from kontur.config import VerifierConfig
from kontur.verifier import Verifier, make_picture, make_thumbnail
from kontur.verifier.renamed import MAX_RENAMINGS, Renamings
from kontur.verifier.watch import ClassGroups
from kontur.wire import TrackedObject
from kontur.worker.faults import CHURN_TRACK_BASE, FaultPlan, WorkerFault

FPS = 10.0
BOX = (200.0, 100.0, 240.0, 200.0)


def _feed(frames: list[list[TrackedObject]], fps: float = FPS) -> list[dict[int, str]]:
    renamings = Renamings(ClassGroups(VerifierConfig().class_groups).key)
    return [renamings.observe(objs, i / fps) for i, objs in enumerate(frames)]


def test_a_tracker_that_keeps_its_ids_or_switches_one_now_and_then_is_not_flagged() -> None:
    steady = [[person(1, BOX), person(2, (400, 100, 440, 200))] for _ in range(30)]
    assert not any(_feed(steady))
    switched = [[person(1 if i < 10 else 5 if i < 20 else 6, BOX)] for i in range(30)]
    assert not any(_feed(switched))  # two switches a second apart: a crowd does that


def test_two_ids_a_tracker_alternates_on_one_box_are_not_renamings() -> None:
    """Two people overlapping in one box, matched to id 1 and id 2 in turn: both ids stay
    alive, so neither is a new name."""
    assert not any(_feed([[person(1 + i % 2, BOX)] for i in range(30)]))


def test_a_flood_of_new_ids_where_as_many_vanished_fails_closed() -> None:
    """65 new ids on a frame that lost 65 (more pairs than MAX_PAIRS): every new track gets a
    reason, so decoys listed first cannot hide a renamed person."""
    crowd = [(10.0 * k, 0.0, 10.0 * k + 5, 10.0) for k in range(64)]
    before = [person(k, b) for k, b in enumerate(crowd)] + [person(64, BOX)]
    after = [person(1000 + k, b) for k, b in enumerate(crowd)] + [person(2000, BOX)]
    out = _feed([before, after])
    assert not out[0] and set(out[1]) == {o.track_id for o in after}
    assert "65 new track ids on a frame that lost 65" in out[1][2000]


def test_an_object_renamed_on_every_frame_is_flagged_from_its_third_renaming() -> None:
    out = _feed([[person(100 + i, BOX)] for i in range(10)])
    assert [i for i, r in enumerate(out) if r] == list(range(MAX_RENAMINGS, 10))
    assert list(out[5]) == [105]
    assert "renamed 5 times in 0.4 s (earlier ids 102, 103, 104)" in out[5][105]


def test_a_slow_renaming_a_moved_box_or_another_class_group_is_not_a_renaming() -> None:
    slow = [[person(100 + i // 6, BOX)] for i in range(40)]  # a new id every 0.6 s
    assert not any(_feed(slow))
    moved = [[person(100 + i, (200.0 + 30 * i, 100.0, 240.0 + 30 * i, 200.0))] for i in range(10)]
    assert not any(_feed(moved))  # IoU under a half each step: not the same place
    swapped = [[person(100 + i, BOX, class_id=0 if i % 2 else 2)] for i in range(10)]
    assert not any(_feed(swapped))  # a person where a car was is not the car renamed


def test_the_verifier_flags_the_churning_worker_of_the_fault_simulator() -> None:
    """The ``worker-churn`` fault, through a whole verifier on a still textured scene: the
    renamed tracks carry the ``renamed`` check from the third frame of the lie on, and a cut
    starts the count afresh."""
    rng = np.random.default_rng(3)
    scene = rng.integers(0, 255, (360, 640), np.uint8)
    fault = WorkerFault(FaultPlan("worker-churn", start_s=1.0))
    verifier = Verifier(VerifierConfig())
    flagged = []
    for i in range(30):
        grey = scene if i < 20 else scene[::-1]  # a cut at frame 20
        bgr = np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
        verifier.observe_frame("cam-1", i, i / FPS, make_thumbnail(bgr), picture=make_picture(bgr))
        lied = fault.apply(track_frame(i, i / FPS, [person(1, BOX)]), 640, 360)
        finding = verifier.check(lied)
        assert all(o.track_id >= CHURN_TRACK_BASE for o in lied.objects) == (i >= 10)
        if any("was renamed" in r for rs in finding.track_reasons.values() for r in rs):
            flagged.append(i)
    assert flagged[:9] == [12, 13, 14, 15, 16, 17, 18, 19, 23], flagged
    assert verifier.disagreements["renamed"] == len(flagged)
