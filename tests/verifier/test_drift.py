"""Drift of a camera's results (issue 13 §3): detection rate and class mix against a rolling
baseline, in the verifier (:mod:`kontur.verifier.drift`).

The world is simulated (:mod:`drift_sim`: objects arriving as a Poisson process) or real
(PETS09's ground-truth pedestrians); the drifting worker is a change applied to its output.
The test itself is never stood in for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytest
from drift_sim import Objects, Scene, drop_new, gt_frames, ramp_drop, relabel_new
from tests.conftest import shared

from kontur.config import DriftConfig, VerifierConfig
from kontur.verifier import Verifier
from kontur.verifier.drift import (
    DRIFT_REASON,
    MAX_OBJECTS,
    CameraDrift,
    binomial_two_sided,
    dispersion,
    fisher_two_sided,
)
from kontur.wire import TrackedObject, TrackFrame

GROUPS = VerifierConfig().class_groups
#: The default timescales divided by 3 (with 3× the arrivals, the same evidence per window).
FAST = {"step_s": 5.0, "window_s": 20.0, "guard_s": 20.0, "baseline_s": 200.0}


def feed(drift: CameraDrift, frames: Iterable[tuple[float, Objects]]) -> float | None:
    """Feed every frame; the pts at which the first alarm was open, or None."""
    first = None
    for pts, objects in frames:
        if drift.observe(pts, objects) is not None and first is None:
            first = pts
    return first


# ---- the exact tests --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("k", "n", "p"), [(0, 30, 0.2), (3, 45, 0.2), (9, 45, 0.2), (20, 20, 0.5), (1, 200, 0.09)]
)
def test_binomial_matches_scipy(k: int, n: int, p: float) -> None:
    """Two-sided as twice the smaller tail (scipy's tails, doubled)."""
    stats = pytest.importorskip("scipy.stats")
    low, high = stats.binom.cdf(k, n, p), stats.binom.sf(k - 1, n, p)
    assert binomial_two_sided(k, n, p) == pytest.approx(min(1.0, 2 * min(low, high)), rel=1e-6)


@pytest.mark.parametrize(
    "table", [(0, 10, 40, 60), (7, 0, 0, 30), (5, 5, 50, 50), (12, 3, 20, 40), (0, 0, 3, 9)]
)
def test_fisher_matches_scipy(table: tuple[int, int, int, int]) -> None:
    """Two-sided as twice the smaller tail (scipy's one-sided tests, doubled)."""
    stats = pytest.importorskip("scipy.stats")
    a, b, c, d = table
    less = stats.fisher_exact([[a, b], [c, d]], alternative="less").pvalue
    greater = stats.fisher_exact([[a, b], [c, d]], alternative="greater").pvalue
    expected = min(1.0, 2 * min(less, greater))
    assert fisher_two_sided(a, b, c, d) == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_exact_tests_never_leave_zero_one() -> None:
    assert binomial_two_sided(0, 0, 0.5) == 1.0
    assert fisher_two_sided(0, 0, 0, 0) == 1.0
    assert 0.0 <= binomial_two_sided(0, 5000, 0.5) < 1e-100


def test_a_reset_learns_afresh() -> None:
    drift = CameraDrift(DriftConfig(**FAST), GROUPS)
    feed(drift, Scene(rate=1.2, seed=1).frames(400))
    assert not drift.learning and drift.evaluations > 0
    drift.reset()
    assert drift.learning and drift.alarm is None


# ---- the level comes from the false-alarm budget ----------------------------------------------
def test_the_level_is_the_budget_spread_over_a_days_tests() -> None:
    cfg = DriftConfig()
    drift = CameraDrift(cfg, GROUPS)
    groups = len(drift.groups)  # person, car, other
    assert drift.groups == ("person", "car", "other")
    assert drift.scales == (4, 8, 16, 32)  # 60 s doubled while it fits in the 600 s baseline
    assert drift.tests_per_evaluation == (4 + 1) * (1 + groups)
    per_day = 86400 / cfg.step_s * drift.tests_per_evaluation
    assert drift.alpha * per_day == pytest.approx(cfg.false_alarms_per_day)
    unsafe = CameraDrift(DriftConfig(unsafe_follow_slow_drift=True), GROUPS)
    assert unsafe.tests_per_evaluation == 4 * (1 + groups)


def test_a_config_whose_windows_do_not_nest_is_refused() -> None:
    with pytest.raises(ValueError, match="expected step_s <= window_s <= baseline_s / 3"):
        DriftConfig(window_s=60.0, baseline_s=120.0)


# ---- clean scenes -----------------------------------------------------------------------------
def test_a_stationary_scene_stays_within_its_false_alarm_budget() -> None:
    """Under the null (Poisson arrivals, steady mix) the alarms a day stay under the budget:
    24 hours of scenes at a budget of 2 an hour may give at most 48, and give far fewer."""
    budget = DriftConfig(**FAST, false_alarms_per_day=48)
    alarms, hours = 0, 0.0
    for seed in range(12):
        drift = CameraDrift(budget, GROUPS)
        feed(drift, Scene(rate=1.2, fps=2, max_stay_s=7, seed=seed).frames(2 * 3600))
        alarms += drift.alarms
        hours += 2
    assert alarms <= 2 * hours
    assert alarms <= 0.25 * hours  # the union bound is loose: overlapping tests


def test_nothing_is_judged_while_the_first_baseline_is_learnt() -> None:
    drift = CameraDrift(DriftConfig(**FAST), GROUPS)
    # the world changes at once: nothing to compare with yet
    change = relabel_new(0.0, "person", "dog")
    assert feed(drift, Scene(rate=1.2, seed=3).frames(190, change)) is None
    assert drift.learning and drift.evaluations == 0


def test_real_pedestrians_raise_no_alarm() -> None:
    """PETS09-S2L1's 19 ground-truth pedestrians, played 25 times (33 min)."""
    gt = shared("mot15", "PETS09-S2L1", "gt", "gt.txt")
    drift = CameraDrift(DriftConfig(), GROUPS)
    assert feed(drift, gt_frames(gt, 10.0, loops=25)) is None
    assert drift.evaluations > 60 and drift.alarms == 0


# ---- drifting results -------------------------------------------------------------------------
def test_a_drop_in_recall_is_caught_and_said_with_figures() -> None:
    drift = CameraDrift(DriftConfig(), GROUPS)
    onset = 900.0
    first = feed(drift, Scene(seed=11).frames(1800, drop_new(onset, 0.7)))
    assert first is not None and first - onset <= 240.0
    reason = drift.alarm
    assert reason is not None and reason.startswith(DRIFT_REASON)
    assert "against the baseline" in reason and "rate test p=" in reason


def test_new_people_called_dogs_change_the_class_mix() -> None:
    drift = CameraDrift(DriftConfig(), GROUPS)
    onset = 900.0
    first = feed(drift, Scene(seed=11).frames(1500, relabel_new(onset, "person", "dog")))
    assert first is not None and first - onset <= 90.0
    assert "other" in (drift.alarm or "") and "class mix test" in (drift.alarm or "")


def test_a_drift_on_real_pedestrians_is_caught() -> None:
    gt = shared("mot15", "PETS09-S2L1", "gt", "gt.txt")
    drift = CameraDrift(DriftConfig(), GROUPS)
    onset = 800.0
    change = drop_new(onset, 1.0)
    frames = ((pts, change(pts, objs)) for pts, objs in gt_frames(gt, 10.0, loops=20))
    first = feed(drift, frames)
    assert first is not None and first - onset <= 240.0


def test_a_shift_once_caught_is_never_learnt() -> None:
    """The windows of a detected shift are quarantined: the alarm stays open as long as the
    shift does, instead of the baseline following it."""
    drift = CameraDrift(DriftConfig(**FAST), GROUPS)
    onset = 400.0
    frames = Scene(rate=1.2, fps=5, max_stay_s=7, seed=5).frames(2400, drop_new(onset, 1.0))
    open_at_end = None
    for pts, objects in frames:
        open_at_end = drift.observe(pts, objects)
    assert open_at_end is not None and drift.alarms == 1
    assert drift.quarantined > 2000 / FAST["step_s"] * 0.8


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_slow_poisoning_is_caught_by_the_first_baseline(seed: int) -> None:
    """New objects go missing more and more over an hour: slow enough for the rolling baseline
    to learn part of it, not for the first one."""
    scene = Scene(rate=1.2, fps=5, max_stay_s=7, seed=seed)
    anchored = CameraDrift(DriftConfig(**FAST), GROUPS)
    first = feed(anchored, scene.frames(6000, ramp_drop(300.0, 3600.0)))
    assert first is not None and "the baseline against the first one learnt" in (
        anchored.alarm or ""
    )
    following = CameraDrift(DriftConfig(**FAST, unsafe_follow_slow_drift=True), GROUPS)
    assert feed(following, scene.frames(6000, ramp_drop(300.0, 3600.0))) is None


# ---- hostile worker output ---------------------------------------------------------------------
def test_one_track_id_for_everything_is_a_collapse_of_the_rate() -> None:
    drift = CameraDrift(DriftConfig(**FAST), GROUPS)

    def one_id(pts: float, objects: Objects) -> Objects:
        return [(7, c) for _, c in objects] if pts >= 300 else objects

    first = feed(drift, Scene(rate=1.2, fps=5, max_stay_s=7, seed=4).frames(600, one_id))
    assert first is not None and first - 300 <= 60


def test_a_new_id_on_every_frame_is_a_burst_of_the_rate_and_memory_stays_bounded() -> None:
    drift = CameraDrift(DriftConfig(**FAST, min_track_s=0.0), GROUPS)
    counter = iter(range(10**9))

    def fresh(pts: float, objects: Objects) -> Objects:
        return [(next(counter), c) for _, c in objects] * 20 if pts >= 300 else objects

    first = feed(drift, Scene(rate=1.2, fps=5, max_stay_s=7, seed=4).frames(400, fresh))
    assert first is not None and first - 300 <= 30
    assert len(drift._tracks) <= MAX_OBJECTS


def test_pts_that_are_not_finite_or_go_back_count_no_time() -> None:
    drift = CameraDrift(DriftConfig(**FAST), GROUPS)
    drift.observe(0.0, [(1, "person")])
    drift.observe(math.nan, [(1, "person")])
    drift.observe(-50.0, [(2, "person")])
    drift.observe(1000.0, [(1, "person")])  # a gap: not observed time
    assert drift._current.seconds == 0.0


def test_dispersion_is_never_below_poisson() -> None:
    drift = CameraDrift(DriftConfig(**FAST), GROUPS)
    feed(drift, Scene(rate=1.2, seed=1).frames(300))
    assert dispersion(list(drift._baseline), 4) >= 1.0


# ---- in the verifier ---------------------------------------------------------------------------
def _frame(i: int, pts: float, objects: Objects) -> TrackFrame:
    return TrackFrame(
        camera_id="cam1",
        frame_index=i,
        pts_s=pts,
        model_id="m",
        config_id="c",
        platform="cpu",
        objects=tuple(
            TrackedObject(
                track_id=tid,
                class_id=0,
                class_name=c,
                confidence=0.9,
                xyxy=(10.0 + 3 * (tid % 50), 10.0, 40.0 + 3 * (tid % 50), 90.0),
            )
            for tid, c in objects
        ),
        detections=len(objects),
    )


def test_the_verifier_disagrees_while_a_camera_drifts() -> None:
    verifier = Verifier(VerifierConfig(drift=DriftConfig(**FAST)))
    scene = Scene(rate=1.2, fps=5, max_stay_s=7, seed=7)
    change = relabel_new(300.0, "person", "dog")
    drifted = []
    for i, (pts, objects) in enumerate(scene.frames(420, change)):
        verifier.observe_frame("cam1", i, pts, None)
        finding = verifier.check(_frame(i, pts, objects))
        if any(r.startswith(DRIFT_REASON) for r in finding.reasons):
            assert not finding.agree
            drifted.append(pts)
    assert drifted and drifted[0] >= 300.0
    assert verifier.disagreements["drift"] == len(drifted)


def test_drift_can_be_turned_off() -> None:
    verifier = Verifier(VerifierConfig(drift=DriftConfig(**FAST, enabled=False)))
    scene = Scene(rate=1.2, fps=5, max_stay_s=7, seed=7)
    change = relabel_new(300.0, "person", "dog")
    for i, (pts, objects) in enumerate(scene.frames(420, change)):
        verifier.observe_frame("cam1", i, pts, None)
        verifier.check(_frame(i, pts, objects))
    assert verifier.disagreements["drift"] == 0
