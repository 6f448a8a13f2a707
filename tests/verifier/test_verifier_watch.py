"""What the policies watch, the pixel checks on their own, and the simulated lying worker."""

from __future__ import annotations

import pytest
from test_verifier_checks import box, history
from verifier_sim import person, track_frame

from kontur.config import PolicyConfig, ZoneConfig, load_config
from kontur.verifier import ClassGroups, ForegroundSupport, FrozenBox, Watch
from kontur.verifier.process import watch_from_spec
from kontur.verifier.watch import MAX_REMEMBERED
from kontur.worker.faults import (
    CHURN_TRACK_BASE,
    PHANTOM_TRACK_ID,
    WORKER_FAULTS,
    FaultPlan,
    WorkerFault,
)


def _policy(zone: str, classes: list[str]) -> PolicyConfig:
    return PolicyConfig.model_validate(
        {"rule": f"r-{zone}", "action": "alarm",
         "when": {"type": "dwell", "zone": zone, "classes": classes, "min_seconds": 1.0}}
    )  # fmt: skip


def test_the_watch_holds_the_policy_zones_and_their_classes_only() -> None:
    zones = [
        ZoneConfig(id="door", camera="cam-1", polygon=((0, 0), (0.5, 0), (0.5, 1))),
        ZoneConfig(id="idle", polygon=((0, 0), (1, 0), (1, 1))),
    ]
    watch = Watch.from_policies(zones, [_policy("door", ["person"]), _policy("door", ["car"])])
    assert [z.zone_id for z in watch.zones] == ["door"]
    assert watch.classes == frozenset({"person", "car"})
    assert watch.zones_for("cam-1") and not watch.zones_for("cam-2")
    assert watch.zones[0].contains(0.4, 0.5) and not watch.zones[0].contains(0.1, 0.9)


def test_a_policy_on_an_unknown_zone_is_refused() -> None:
    with pytest.raises(ValueError, match=r"policy r-gate: expected a zone among \[\], got 'gate'"):
        Watch.from_policies([], [_policy("gate", ["person"])])


def test_the_shell_reads_the_policies_from_its_spec_or_watches_everything() -> None:
    cfg = load_config(None)
    spec = {
        "zones": [z.model_dump(mode="json") for z in cfg.zones],
        "policies": [p.model_dump(mode="json") for p in cfg.policies],
    }
    assert watch_from_spec(spec).classes == frozenset({"person"})
    assert watch_from_spec({}) == Watch.everything()


def test_class_groups_refuse_a_class_in_two_groups() -> None:
    with pytest.raises(ValueError, match="expected class 'bus' in one group, got it in two"):
        ClassGroups([["car", "bus"], ["bus", "train"]])


def test_class_groups_answer_what_is_watched_the_same_however_many_names_a_worker_invents() -> None:
    groups = ClassGroups([["person", "bicycle"], ["car", "truck"]])
    persons = frozenset({"person"})
    for _ in range(2):  # asked afresh, then remembered: the same answers
        assert groups.watched("bicycle", persons) and not groups.watched("truck", persons)
        assert groups.watched("truck", None) and not groups.watched("cat", persons)
    invented = [f"person-{k}" for k in range(3 * MAX_REMEMBERED)]
    assert not any(groups.watched(name, persons) for name in invented)
    assert groups.watched("person", persons) and not groups.watched(invented[-1], persons)
    assert len(groups._watched) <= MAX_REMEMBERED  # bounded: names come from the worker


def test_a_box_that_moves_over_no_foreground_is_a_phantom_and_a_still_one_is_not() -> None:
    check = ForegroundSupport(0.5, 0.1)
    walk = [box(i, 100.0 + 10.0 * i, support=0.0) for i in range(10)]  # 1 height/s
    reason = check.check(5, history(*walk[:-1]), walk[-1])
    assert reason is not None
    assert reason.startswith(
        "track 5: moved 0.9 box sizes with foreground under it in 0 of the last 6"
    )
    still = [box(i, 100.0, support=0.0) for i in range(10)]  # a parked car: unverifiable
    assert check.check(5, history(*still[:-1]), still[-1]) is None
    real = [box(i, 100.0 + 10.0 * i, support=0.3 if i % 3 else 0.0) for i in range(10)]
    assert check.check(5, history(*real[:-1]), real[-1]) is None


def test_a_box_that_stops_where_its_object_was_is_left_behind() -> None:
    check = ForegroundSupport(0.5, 0.1)
    walked = [box(i, 100.0 + 10.0 * i, support=0.5) for i in range(10)]
    stopped = [box(i, 190.0, support=0.0) for i in range(10, 16)]
    reason = check.check(5, history(*walked, *stopped[:-1]), stopped[-1])
    assert reason is not None and reason.endswith("(a frozen box?)")


def test_an_unwatched_class_has_no_foreground_judged() -> None:
    check = ForegroundSupport(0.5, 0.1, ClassGroups([["person"]]), frozenset({"person"}))
    walk = [box(i, 100.0 + 10.0 * i, class_id=2, support=0.0) for i in range(10)]
    assert check.check(5, history(*walk[:-1]), walk[-1]) is None


def test_identical_boxes_over_moving_pixels_are_frozen_and_over_still_ones_are_not() -> None:
    frozen = [box(i, 100.0, motion=0.3) for i in range(3)]
    reason = FrozenBox().check(4, history(*frozen[:-1]), frozen[-1])
    assert reason == (
        "track 4: box identical to the pixel in 3 frames while the picture under it moved: "
        "expected a detector's box to follow (a frozen box?)"
    )
    parked = [box(i, 100.0, motion=0.0) for i in range(3)]
    assert FrozenBox().check(4, history(*parked[:-1]), parked[-1]) is None


def _worker(n: int) -> list:
    """An honest worker's output: two people walking right, a parked car."""
    return [
        track_frame(
            i,
            i / 10,
            [
                person(1, (10.0 + 5 * i, 100.0, 50.0 + 5 * i, 200.0)),
                person(2, (300.0 + 5 * i, 150.0, 340.0 + 5 * i, 250.0)),
                person(3, (400.0, 300.0, 500.0, 350.0), class_id=2),
            ],
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("kind", WORKER_FAULTS)
def test_each_fault_leaves_the_stream_alone_before_its_onset_and_changes_it_after(
    kind: str,
) -> None:
    fault = WorkerFault(FaultPlan(kind, start_s=2.0, seed=3))
    frames = _worker(40)
    out = [fault.apply(tf, 640, 480) for tf in frames]
    assert out[:20] == frames[:20]
    assert any(a != b for a, b in zip(out[20:], frames[20:], strict=True))
    again = WorkerFault(FaultPlan(kind, start_s=2.0, seed=3))
    assert [again.apply(tf, 640, 480) for tf in frames] == out  # seeded: deterministic


def test_the_faults_do_what_they_say() -> None:
    frames = _worker(40)

    def after(kind: str) -> list:
        fault = WorkerFault(FaultPlan(kind, start_s=2.0))
        return [fault.apply(tf, 640, 480) for tf in frames][20:]

    assert all(
        PHANTOM_TRACK_ID in {o.track_id for o in tf.objects} for tf in after("worker-phantom")
    )
    assert all({o.track_id for o in tf.objects} == {3} for tf in after("worker-suppress"))
    flipped = after("worker-class-flip")[0].objects
    assert [o.class_name for o in flipped] == ["car", "car", "person"]
    frozen = after("worker-freeze")
    assert all(tf.objects == frames[19].objects for tf in frozen)
    replayed = after("worker-replay")
    assert replayed[0].objects == frames[0].objects  # 2 s of stream held: replayed from 0
    teleported = after("worker-teleport")[0].objects[0]
    assert teleported.xyxy[0] - frames[20].objects[0].xyxy[0] == pytest.approx(640 / 3)
    churned = after("worker-churn")
    ids = [o.track_id for tf in churned for o in tf.objects]
    assert len(set(ids)) == len(ids) and min(ids) == CHURN_TRACK_BASE  # a new id each time
    assert [[o.xyxy for o in tf.objects] for tf in churned] == [
        [o.xyxy for o in tf.objects] for tf in frames[20:]
    ]


def test_a_fault_plan_round_trips_and_refuses_nonsense() -> None:
    plan = FaultPlan("worker-freeze", 3.0, zone=((0, 0), (1, 0), (0, 1)), seed=7)
    assert FaultPlan.from_json(plan.to_json()) == plan
    with pytest.raises(ValueError, match="expected a fault among"):
        FaultPlan("worker-sleep", 1.0)
    with pytest.raises(ValueError, match="expected a start >= 0 s"):
        FaultPlan("worker-freeze", -1.0)


def test_the_demo_arms_a_worker_fault_in_the_first_policy_zone_and_nothing_else() -> None:
    from kontur.runtime.faults import FAULTS, WORKER_FAULT_START_S, worker_fault_spec

    cfg = load_config(None)
    spec = worker_fault_spec("worker-suppress", cfg)
    assert spec is not None
    assert (spec["kind"], spec["start_s"]) == ("worker-suppress", WORKER_FAULT_START_S)
    assert spec["zone"] == [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    assert worker_fault_spec("worker-crash", cfg) is None
    assert worker_fault_spec(None, cfg) is None
    assert set(WORKER_FAULTS) <= set(FAULTS)


def test_the_gate_the_verifier_and_the_fault_agree_on_a_zone_border() -> None:
    """A person whose feet touch the bottom of the picture is in a whole-frame zone for the
    gate's rules, for the verifier's zone checks and for a suppressing worker alike."""
    from kontur.gate import point_in_polygon
    from kontur.verifier import WatchedZone

    whole = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
    half = ((0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0))
    for polygon in (whole, half):
        zone = WatchedZone("z", "*", polygon, None)
        for point in ((0.5, 1.0), (0.0, 0.7), (1.0, 0.7), (0.5, 0.5), (0.5, 0.2), (1.2, 0.7)):
            assert zone.contains(*point) is point_in_polygon(*point, polygon), (polygon, point)
    standing = track_frame(0, 0.0, [person(1, (300.0, 200.0, 340.0, 480.0))])  # feet at y = 1
    fault = WorkerFault(FaultPlan("worker-suppress", 0.0))
    assert fault.apply(standing, 640, 480).objects == ()
