"""Trigger rules: point in polygon, foot points, and the dwell's once-per-stay firing."""

from __future__ import annotations

import pytest
from gate_sim import PERSON, evidence, make_config

from kontur.gate import DwellRule, foot_point, point_in_polygon, rules_from_config
from kontur.gate.request import ActionRequest
from kontur.gate.rules import MAX_OPEN_WINDOWS

# A "U": two arms joined at the bottom, with a notch between them (non-convex).
U_SHAPE = (
    (0.0, 0.0),
    (0.3, 0.0),
    (0.3, 0.6),
    (0.7, 0.6),
    (0.7, 0.0),
    (1.0, 0.0),
    (1.0, 1.0),
    (0.0, 1.0),
)
WHOLE = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
SIZE = (100, 100)


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((0.15, 0.3), True),  # left arm
        ((0.85, 0.3), True),  # right arm
        ((0.5, 0.8), True),  # bottom bar
        ((0.5, 0.3), False),  # the notch: inside the convex hull, outside the polygon
        ((0.5, 0.6), True),  # on the notch's floor edge
        ((0.3, 0.3), True),  # on the notch's left edge
        ((0.7, 0.0), True),  # a vertex
        ((1.2, 0.5), False),
        ((-0.01, 0.5), False),
    ],
)
def test_point_in_non_convex_polygon(point: tuple[float, float], inside: bool) -> None:
    assert point_in_polygon(*point, U_SHAPE) is inside


def test_whole_frame_contains_its_border() -> None:
    for p in [(0.0, 0.0), (1.0, 1.0), (0.5, 1.0), (1.0, 0.5), (0.0, 0.7)]:
        assert point_in_polygon(*p, WHOLE)


def test_point_in_polygon_refuses_a_segment() -> None:
    with pytest.raises(ValueError, match="expected a polygon of at least 3 points, got 2"):
        point_in_polygon(0, 0, [(0, 0), (1, 1)])


def test_foot_point_is_bottom_centre_clamped() -> None:
    assert foot_point((40, 20, 60, 90), 100, 200) == (0.5, 0.45)
    assert foot_point((-30, 0, -10, 250), 100, 200) == (0.0, 1.0)
    with pytest.raises(ValueError, match="expected a positive frame size, got 0x200"):
        foot_point((0, 0, 1, 1), 0, 200)


def _rule(
    min_seconds: float = 2.0, polygon: tuple[tuple[float, float], ...] = WHOLE, **kw: object
) -> DwellRule:
    return DwellRule("dwell", polygon, ["person"], min_seconds, "alarm", **kw)  # type: ignore[arg-type]


def _feed(rule: DwellRule, frames: range, objects=(PERSON,), **kw: object) -> list[ActionRequest]:  # type: ignore[no-untyped-def]
    out: list[ActionRequest] = []
    for f in frames:
        out += rule.observe(evidence(f, objects, **kw), SIZE)  # type: ignore[arg-type]
    return out


def test_dwell_fires_once_after_min_seconds() -> None:
    rule = _rule()
    early = _feed(rule, range(0, 20))
    assert early == []
    fired = _feed(rule, range(20, 80))
    assert len(fired) == 1
    r = fired[0]
    assert (r.rule, r.action, r.camera_id, r.track_id, r.frame_index) == (
        "dwell",
        "alarm",
        "cam1",
        7,
        20,
    )
    assert r.frames == tuple(range(21)) and r.gops == (0, 1, 2)
    assert [f.frame_index for f in r.findings] == list(range(21))


def test_dwell_resets_on_leaving_the_zone() -> None:
    left_half = ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0))
    inside = (7, "person", (10.0, 10.0, 30.0, 90.0))
    outside = (7, "person", (70.0, 10.0, 90.0, 90.0))
    rule = _rule(polygon=left_half)
    assert _feed(rule, range(0, 15), (inside,)) == []
    assert _feed(rule, range(15, 16), (outside,)) == []  # left at 1.5 s: reset
    assert _feed(rule, range(16, 36), (inside,)) == []  # 1.9 s since re-entering
    again = _feed(rule, range(36, 37), (inside,))
    assert [r.frame_index for r in again] == [36]
    assert again[0].frames == tuple(range(16, 37)) and again[0].gops == (1, 2, 3)


def test_dwell_fires_again_after_leaving_and_a_new_full_dwell() -> None:
    left = ((0.0, 0.0), (0.4, 0.0), (0.4, 1.0), (0.0, 1.0))
    inside, outside = (7, "person", (10, 0, 20, 50)), (7, "person", (80, 0, 90, 50))
    rule = _rule(polygon=left)
    out = _feed(rule, range(0, 25), (inside,))  # fires at 2.0 s, then stays: no second fire
    out += _feed(rule, range(25, 26), (outside,))  # leaves
    out += _feed(rule, range(26, 50), (inside,))  # back for 2.3 s: a new full dwell
    assert [r.frame_index for r in out] == [20, 46]
    assert out[1].frames == tuple(range(26, 47))


def test_brief_dropout_does_not_reset_but_long_absence_does() -> None:
    rule = _rule(max_gap_s=0.5)
    _feed(rule, range(0, 10))
    _feed(rule, range(10, 14), ())  # 0.4 s without the track
    assert [r.frame_index for r in _feed(rule, range(14, 21))] == [20]
    rule = _rule(max_gap_s=0.5)
    _feed(rule, range(0, 10))
    _feed(rule, range(10, 17), ())  # 0.7 s: the track is gone
    assert rule.open_windows == 0
    assert [r.frame_index for r in _feed(rule, range(17, 40))] == [37]


def test_only_configured_classes_count_and_a_class_change_resets() -> None:
    rule = _rule()
    car = (7, "car", PERSON[2])
    assert _feed(rule, range(0, 40), (car,)) == []
    _feed(rule, range(40, 55))
    _feed(rule, range(55, 56), (car,))  # same track id, now a car: not a person in the zone
    assert [r.frame_index for r in _feed(rule, range(56, 80))] == [76]


def test_tracks_dwell_independently() -> None:
    rule = _rule()
    a, b = (1, "person", (10, 0, 20, 50)), (2, "person", (60, 0, 70, 50))
    out = _feed(rule, range(0, 10), (a,)) + _feed(rule, range(10, 60), (a, b))
    assert [(r.track_id, r.frame_index) for r in out] == [(1, 20), (2, 30)]


def test_a_worker_changing_ids_every_frame_cannot_keep_a_dwell_from_firing() -> None:
    """ADR 0042: the dwell follows the object, not the worker's ids."""
    rule = _rule()
    out: list[ActionRequest] = []
    for f in range(40):
        out += rule.observe(evidence(f, ((100 + f, "person", PERSON[2]),)), SIZE)
    assert [(r.track_id, r.frame_index) for r in out] == [(120, 20)]
    assert out[0].frames == tuple(range(21))
    assert out[0].earlier_track_ids == tuple(range(100, 120))  # every one: reasons count
    assert rule.open_windows == 1


def test_an_id_lost_behind_a_pillar_keeps_its_dwell_under_the_new_id() -> None:
    rule = _rule()
    walking = [(7, "person", (30.0 + f, 20.0, 50.0 + f, 90.0)) for f in range(10)]
    for f, obj in enumerate(walking):
        rule.observe(evidence(f, (obj,)), SIZE)
    _feed(rule, range(10, 15), ())  # hidden for 0.5 s
    again = (8, "person", (45.0, 20.0, 65.0, 90.0))  # 0.6 box heights on: within reach
    fired = _feed(rule, range(15, 40), (again,))
    # the whole stay fires at 2 s (an operator decides: two ids); id 8's own dwell from
    # when it took over (frame 15) fires 2 s later, as it did before ADR 0042
    assert [(r.track_id, r.frame_index, r.earlier_track_ids) for r in fired] == [
        (8, 20, (7,)),
        (8, 35, ()),
    ]
    assert fired[0].frames == (*range(10), *range(15, 21))
    assert fired[1].frames == tuple(range(15, 36)) and fired[1].gops == (1, 2, 3)


def test_a_new_id_far_away_or_beside_a_reported_object_starts_its_own_dwell() -> None:
    rule = _rule()
    a = (1, "person", (5.0, 20.0, 15.0, 90.0))
    far = (2, "person", (85.0, 20.0, 95.0, 90.0))  # 0.8 of the width away from a
    beside = (3, "person", (7.0, 20.0, 17.0, 90.0))  # where a is, but a is still reported
    out = _feed(rule, range(0, 10), (a,))
    out += _feed(rule, range(10, 11), (far,))  # a not reported: far is too far to be a
    out += _feed(rule, range(11, 40), (a, far, beside))
    assert sorted((r.track_id, r.frame_index, r.earlier_track_ids) for r in out) == [
        (1, 20, ()),
        (2, 30, ()),
        (3, 31, ()),
    ]


@pytest.mark.parametrize("person_first", [True, False])
def test_decoys_cannot_keep_a_renamed_object_from_its_dwell(person_first: bool) -> None:
    """70 decoys that enter after the person, all renamed with the person on every frame,
    listed before or after the person: the person's dwell (the longest) is still taken over
    whatever the worker's order (the verifier flags the flood)."""
    rule = _rule()
    who = (40.0, 20.0, 60.0, 90.0)
    decoys = [(1.0 * k, 0.0, 1.0 * k + 1, 2.0) for k in range(70)]
    _feed(rule, range(0, 5), ((1, "person", who),))
    out: list[ActionRequest] = []
    for f in range(5, 25):
        named = [(1000 * f + k, "person", b) for k, b in enumerate(decoys)]
        objects = [(f, "person", who), *named] if person_first else [*named, (f, "person", who)]
        out += rule.observe(evidence(f, objects), SIZE)
    person = [r for r in out if r.box == who]
    assert [(r.track_id, r.frame_index) for r in person] == [(20, 20)]
    assert person[0].earlier_track_ids == (1, *range(5, 20))


def test_a_dwell_that_fired_is_not_taken_over() -> None:
    """After an alarm, a new id where the object was starts a full dwell of its own (as
    before ADR 0042): an honest id change then costs a second request, never a missed one."""
    rule = _rule()
    out = _feed(rule, range(0, 25))
    out += _feed(rule, range(25, 50), ((8, "person", PERSON[2]),))
    assert [(r.track_id, r.frame_index, r.earlier_track_ids) for r in out] == [
        (7, 20, ()),
        (8, 45, ()),
    ]


def test_rule_only_watches_its_camera() -> None:
    rule = _rule(camera="cam2")
    assert _feed(rule, range(0, 40)) == []
    assert len(_feed(rule, range(0, 40), cam="cam2")) == 1


def test_time_going_back_resets_the_camera() -> None:
    rule = _rule()
    _feed(rule, range(0, 15))
    assert rule.observe(evidence(15, pts=0.1), SIZE) == []  # the clip restarted
    assert _feed(rule, range(16, 21), pts=None) == []
    assert rule.open_windows == 1


def test_memory_is_released_after_firing_and_bounded() -> None:
    rule = _rule()
    _feed(rule, range(0, 100))
    w = next(iter(rule._cams["cam1"].windows.values()))
    assert w.fired and w.frames == [] and w.findings == []
    crowd = tuple((i, "person", (40.0, 20.0, 60.0, 90.0)) for i in range(MAX_OPEN_WINDOWS + 50))
    rule.observe(evidence(100, crowd), SIZE)
    assert rule.open_windows == MAX_OPEN_WINDOWS


def test_rule_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="expected at least one class, got none"):
        DwellRule("r", WHOLE, [], 1.0, "alarm")
    with pytest.raises(ValueError, match=r"expected positive min_seconds and max_gap_s, got 0\.0"):
        DwellRule("r", WHOLE, ["person"], 0.0, "alarm")


def test_rules_from_config() -> None:
    (rule,) = rules_from_config(make_config(zone_camera="cam1", min_seconds=3.5))
    assert (rule.rule, rule.action, rule.camera, rule.min_seconds) == (
        "person-dwell",
        "alarm",
        "cam1",
        3.5,
    )
    assert rule.classes == frozenset({"person"}) and rule.polygon == WHOLE
