"""ADR 0042 against the real verifier: a worker that renames a phantom must not get it ALLOWed.

The dwell follows an object across id changes, but the verifier's track checks judge each id
on its own history. A phantom pacing over an empty scene, under one id, is caught by them;
renamed every other frame (an empty frame between, so the verifier's ``renamed`` check sees
no renaming), no track check concludes on any id. The gate then holds the dwell back because
its newest id is younger than :data:`~kontur.gate.policy.VOUCHED_S`; a person renamed once
and then vouched for that long is not held back for the renaming.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from gate_sim import evidence

from kontur.config import VerifierConfig
from kontur.gate import DwellRule, VerifierAgrees
from kontur.gate.policy import VOUCHED_S
from kontur.verifier import Verifier, make_picture, make_thumbnail
from kontur.wire import Outcome, TrackedObject, TrackFrame

FPS = 10.0
SIZE = (640, 360)
WHOLE = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))


def _pacing(i: int) -> tuple[float, float, float, float]:
    """A box pacing 200 px to and fro at 100 px/s over an empty scene: no one is there."""
    step = i % 20 if (i // 20) % 2 == 0 else 20 - i % 20
    x = 200.0 + 10.0 * step
    return (x, 100.0, x + 40.0, 200.0)


def _standing(i: int) -> tuple[float, float, float, float]:
    return (300.0, 100.0, 340.0, 200.0)


def _run(
    name_at: Callable[[int], int | None],
    box_at: Callable[[int], tuple[float, float, float, float]],
    person: bool = False,
) -> list[tuple[int, Outcome, tuple[str, ...]]]:
    """40 frames (4 s) through the real verifier and a 2 s dwell; each request's outcome."""
    rng = np.random.default_rng(3)
    scene = rng.integers(0, 255, (360, 640), np.uint8)
    verifier = Verifier(VerifierConfig())
    rule = DwellRule("dwell", WHOLE, ["person"], 2.0, "alarm")
    out = []
    for i in range(40):
        grey = scene.copy()
        if person:  # a real, dark, slightly swaying figure under the box
            x1, y1, x2, y2 = map(int, box_at(i))
            grey[y1:y2, x1 + i % 2 : x2 - 1 + i % 2] = 20
        noise = rng.integers(-2, 3, scene.shape)
        bgr = np.repeat(np.clip(grey + noise, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
        bgr = np.ascontiguousarray(bgr)
        verifier.observe_frame("cam1", i, i / FPS, make_thumbnail(bgr), picture=make_picture(bgr))
        tid = name_at(i)
        objects = () if tid is None else (_person(tid, box_at(i)),)
        finding = verifier.check(_frame(i, objects))
        ev = evidence(
            i,
            [(o.track_id, o.class_name, o.xyxy) for o in objects],
            agree=finding.agree,
            reasons=finding.reasons,
            track_reasons={k: list(v) for k, v in finding.track_reasons.items()},
        )
        for request in rule.observe(ev, SIZE):
            check = VerifierAgrees().evaluate(request)
            out.append((request.track_id, check.outcome, check.reasons))
    return out


def _person(tid: int, xyxy: tuple[float, float, float, float]) -> TrackedObject:
    return TrackedObject(track_id=tid, class_id=0, class_name="person", confidence=0.9, xyxy=xyxy)


def _frame(i: int, objects: tuple[TrackedObject, ...]) -> TrackFrame:
    return TrackFrame(
        camera_id="cam1",
        frame_index=i,
        pts_s=i / FPS,
        model_id="m",
        config_id="c",
        platform="cpu",
        objects=objects,
        detections=len(objects),
    )


def test_a_phantom_under_one_id_is_caught_by_the_track_checks() -> None:
    [(tid, outcome, reasons)] = _run(lambda i: 7, _pacing)
    assert (tid, outcome) == (7, Outcome.OPERATOR)
    assert any(r.startswith("verifier disagreed on track 7: ") for r in reasons), reasons


def test_a_phantom_renamed_faster_than_the_checks_conclude_is_held_back() -> None:
    requests = _run(lambda i: None if i % 2 else 100 + i, _pacing)
    assert requests, "the dwell followed the renamed box and fired"
    for _, outcome, reasons in requests:
        assert outcome is Outcome.OPERATOR
        assert any("expected the verifier to have judged track" in r for r in reasons), reasons


def test_a_real_person_renamed_once_and_then_vouched_for_is_allowed() -> None:
    renamed_at = 5  # 0.5 s in: fires at 2.0 s with the new id 1.5 s old
    assert 2.0 - renamed_at / FPS >= VOUCHED_S
    [(tid, outcome, reasons)] = _run(lambda i: 7 if i < renamed_at else 8, _standing, person=True)
    assert (tid, outcome) == (8, Outcome.ALLOW), reasons
    assert reasons == ("verifier agreed on track 8 (earlier ids 7) and the scene in 21 frames",)
