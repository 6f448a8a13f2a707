"""The Gate core fed in various interleavings: holding, flushing, state, bounds, bad input."""

from __future__ import annotations

import pytest
from gate_sim import GOP_LEN, evidence, gop, make_config, make_gate, state

from kontur.clock import ManualClock
from kontur.config import Profile
from kontur.gate import (
    DEFAULT_CRITICAL,
    OPERATOR_QUEUE,
    AllOf,
    EvidenceMismatchError,
    FrameSizeUnknownError,
    Gate,
    SystemNotDegraded,
    SystemState,
    UnknownActionError,
    UnknownCameraError,
    UnsafeAllowAll,
)
from kontur.gate.rules import DwellRule
from kontur.ingest.verdict import Verdict
from kontur.wire import Decision, Outcome, decode, encode

AUTH = Verdict.AUTHENTIC


def _scene(g: Gate, frames: range = range(0, 21), **kw: object) -> list[Decision]:
    out: list[Decision] = []
    for f in frames:
        out += g.on_evidence(evidence(f, **kw))  # type: ignore[arg-type]
    return out


def _verdicts(g: Gate, *verdicts: Verdict, start: int = 0) -> list[Decision]:
    out: list[Decision] = []
    for i, v in enumerate(verdicts, start):
        out += g.on_gop(gop(i, v))
    return out


def test_all_good_allows_the_alarm() -> None:
    g, clock = make_gate()
    _verdicts(g, AUTH, AUTH, AUTH)
    (d,) = _scene(g)
    assert d.outcome is Outcome.ALLOW and d.executed == "alarm"
    assert d.reasons == (
        "gops 0, 1, 2 of cam1 AUTHENTIC",
        "verifier agreed on track 7 and the scene in 21 frames",
        "system NORMAL",
    )
    assert (d.camera_id, d.rule, d.critical, d.track_id, d.frame_index, d.gops, d.at) == (
        "cam1",
        "person-dwell",
        True,
        7,
        20,
        (0, 1, 2),
        clock.wall(),
    )
    assert decode(encode(d)) == d


def test_renaming_a_track_the_verifier_objected_to_does_not_wash_its_reasons_off() -> None:
    """ADR 0042: a worker renames a flagged track every other frame, 20 times before the
    dwell fires; the reasons on its first id still hold the alarm back (among others), and
    the dwell still fired on the object."""
    g, _ = make_gate(make_config(min_seconds=4.0))
    _verdicts(g, AUTH, AUTH, AUTH, AUTH, AUTH)
    box = (40.0, 20.0, 60.0, 90.0)
    out = []
    for f in range(41):
        tid = 100 + f // 2  # a new id every other frame
        flagged = {tid: ["no moving foreground of its own (a phantom?)"]} if f < 5 else None
        out += g.on_evidence(evidence(f, ((tid, "person", box),), track_reasons=flagged))
    (d,) = out
    assert (d.track_id, d.frame_index, d.outcome) == (120, 40, Outcome.OPERATOR)
    assert any(r.startswith("verifier disagreed on track 100: no moving") for r in d.reasons)


def test_held_request_is_decided_when_its_last_verdict_arrives() -> None:
    g, _ = make_gate()
    assert _scene(g) == [] and g.pending == 1  # the dwell fired; no verdict yet
    assert g.on_gop(gop(2, AUTH)) == []
    assert g.on_gop(gop(0, AUTH)) == [] and g.pending == 1
    (d,) = g.on_gop(gop(1, AUTH))
    assert d.outcome is Outcome.ALLOW and d.executed == "alarm" and g.pending == 0


def test_held_request_is_decided_on_a_bad_last_verdict() -> None:
    g, _ = make_gate()
    _verdicts(g, AUTH, AUTH)
    assert _scene(g) == []
    (d,) = g.on_gop(gop(2, Verdict.NOT_AUTHENTIC))
    assert d.outcome is Outcome.DENY and d.executed is None
    assert "gop 2 of cam1 is NOT_AUTHENTIC: content fails verification" in d.reasons[0]


def test_flush_decides_held_requests_with_missing_verdicts() -> None:
    g, _ = make_gate()
    _verdicts(g, AUTH, AUTH)
    _scene(g)
    (d,) = g.flush()
    assert d.outcome is Outcome.OPERATOR and d.executed == OPERATOR_QUEUE
    assert "gop 2 verdict never arrived (cam1): treated as PENDING" in d.reasons
    assert g.pending == 0 and g.flush() == []


def test_held_request_is_judged_on_the_worst_state_it_saw() -> None:
    g, _ = make_gate()
    _scene(g)
    g.on_state(state("DEGRADED", "worker_hang"))
    g.on_state(state("NORMAL", "recovered", frm="DEGRADED"))
    assert g.status.state is SystemState.NORMAL
    (d,) = _verdicts(g, AUTH, AUTH, AUTH)
    assert d.outcome is Outcome.RESTRICT and d.executed == "notify"
    assert "system DEGRADED (trigger worker_hang)" in d.reasons
    assert "restricted: executed 'notify' instead of 'alarm'" in d.reasons


def test_restrict_without_alternative_goes_to_the_operator() -> None:
    actions = {"alarm": {"critical": True}, "notify": {"critical": False}}
    g, _ = make_gate(make_config(actions=actions))
    g.on_state(state("DEGRADED", "anomalous_results"))
    _verdicts(g, AUTH, AUTH, AUTH)
    (d,) = _scene(g)
    assert d.outcome is Outcome.OPERATOR and d.executed == OPERATOR_QUEUE
    assert "action 'alarm' has no restricted_alternative: sent to the operator queue" in d.reasons


def test_non_critical_action_is_allowed_unless_safe() -> None:
    g, _ = make_gate(make_config(action="notify"))
    g.on_state(state("DEGRADED", "clock_jump"))
    g.on_gop(gop(0, Verdict.UNSIGNED))
    (d,) = _scene(g, agree=False, reasons=["frozen picture"])  # decided at once, never held
    assert (d.outcome, d.executed, d.critical) == (Outcome.ALLOW, "notify", False)
    assert d.reasons == ("system DEGRADED: non-critical action allowed",)
    g, _ = make_gate(make_config(action="notify"))
    g.on_state(state("SAFE", "model_integrity"))
    (d,) = _scene(g)
    assert (d.outcome, d.executed) == (Outcome.DENY, None)
    assert d.reasons == ("system SAFE (trigger model_integrity)",)


def test_unknown_state_is_treated_as_safe() -> None:
    g, _ = make_gate()
    g.on_state(state("MAINTENANCE", "operator"))
    assert g.status.state is SystemState.SAFE
    _verdicts(g, AUTH, AUTH, AUTH)
    (d,) = _scene(g)
    assert d.outcome is Outcome.DENY
    assert "system SAFE (trigger unknown state 'MAINTENANCE', operator)" in d.reasons


@pytest.mark.parametrize("order", ["bad-first", "bad-last"])
def test_a_second_verdict_never_upgrades_trust(order: str) -> None:
    g, _ = make_gate()
    pair = [gop(1, AUTH), gop(1, Verdict.REPLAYED)]
    for m in pair if order == "bad-last" else pair[::-1]:
        g.on_gop(m)
    _verdicts(g, AUTH)
    (d,) = _verdicts(g, AUTH, start=2) + _scene(g)
    assert d.outcome is Outcome.DENY
    assert "gop 1 of cam1 is REPLAYED: replayed (seen before)" in d.reasons[0]


def test_verdict_memory_is_bounded() -> None:
    g, _ = make_gate(max_gops_per_camera=50)
    for i in range(200):
        g.on_gop(gop(i, AUTH))
    assert g.known_gops("cam1") == 50
    # GOPs 0-2 were forgotten: the request is decided at once, for an operator, saying why
    (d,) = _scene(g)
    assert g.pending == 0 and d.outcome is Outcome.OPERATOR
    assert "verdict of GOP 0 no longer held (only the last 50 are)" in d.reasons[0]


def test_held_requests_are_bounded() -> None:
    g, _ = make_gate(max_pending=1)
    two = ((7, "person", (40.0, 20.0, 60.0, 90.0)), (8, "person", (10.0, 20.0, 30.0, 90.0)))
    (d,) = _scene(g, objects=two)  # both tracks fire at frame 20; the first is decided now
    assert d.track_id == 7 and d.outcome is Outcome.OPERATOR and g.pending == 1
    assert "gop 0 verdict never arrived" in d.reasons[0]


def test_verdicts_of_another_camera_do_not_complete_a_request() -> None:
    g, _ = make_gate(make_config(cameras=("cam1", "cam2")))
    _scene(g)
    for i in range(3):
        assert g.on_gop(gop(i, AUTH, cam="cam2")) == []
    assert g.pending == 1
    assert len(_verdicts(g, AUTH, AUTH, AUTH)) == 1


def test_frame_size_from_profile_or_set_frame_size() -> None:
    cfg = make_config()
    g = Gate(cfg, ManualClock())
    with pytest.raises(FrameSizeUnknownError, match="camera cam1: expected a frame size"):
        g.on_evidence(evidence(0))
    cam = cfg.cameras[0].model_copy(
        update={"profile": Profile(codec="h264", width=100, height=100, fps=10)}
    )
    g = Gate(cfg.model_copy(update={"cameras": (cam,)}), ManualClock())
    _verdicts(g, AUTH, AUTH, AUTH)
    assert [d.outcome for d in _scene(g)] == [Outcome.ALLOW]
    with pytest.raises(ValueError, match="expected a positive frame size, got 0x10"):
        g.set_frame_size("cam1", 0, 10)


def test_unknown_camera_is_refused() -> None:
    g, _ = make_gate()
    with pytest.raises(UnknownCameraError, match=r"expected a camera among \['cam1'\], got 'camX'"):
        g.on_gop(gop(0, AUTH, cam="camX"))
    with pytest.raises(UnknownCameraError, match="got 'camX'"):
        g.on_evidence(evidence(0, cam="camX"))
    with pytest.raises(UnknownCameraError, match="got 'camX'"):
        g.set_frame_size("camX", 1, 1)


def test_evidence_whose_finding_is_for_another_frame_is_refused() -> None:
    g, _ = make_gate()
    ev = evidence(5)
    bad = ev.model_copy(update={"finding": evidence(6).finding})
    with pytest.raises(EvidenceMismatchError, match=r"got \[\('cam1', 5\), \('cam1', 6\)\]"):
        g.on_evidence(bad)


def test_tracks_for_another_frame_than_ingests_stamp_are_refused() -> None:
    g, _ = make_gate()
    ev = evidence(5)
    bad = ev.model_copy(update={"tracks": evidence(7).tracks})
    with pytest.raises(EvidenceMismatchError, match="ingest's stamp"):
        g.on_evidence(bad)


def test_rule_naming_an_unknown_action_is_refused() -> None:
    rule = DwellRule("r", ((0, 0), (1, 0), (1, 1)), ["person"], 1.0, "open-door")
    with pytest.raises(
        UnknownActionError, match=r"rule 'r': expected an action among .* got 'open-door'"
    ):
        Gate(make_config(), ManualClock(), rules=[rule])


def test_default_requirement_is_never_unsafe() -> None:
    g, _ = make_gate()
    assert g._requirement is DEFAULT_CRITICAL
    g, _ = make_gate(requirement=AllOf(SystemNotDegraded()))
    assert _scene(g) == [] and g.pending == 1  # a custom policy still waits for the verdicts
    (d,) = _verdicts(g, Verdict.UNSIGNED, AUTH, AUTH)
    assert d.outcome is Outcome.ALLOW and d.reasons == ("system NORMAL",)


def test_custom_unsafe_policy_is_explicit(caplog: pytest.LogCaptureFixture) -> None:
    g, _ = make_gate(requirement=UnsafeAllowAll())
    _verdicts(g, Verdict.NOT_AUTHENTIC, AUTH, AUTH)
    (d,) = _scene(g)
    assert d.outcome is Outcome.ALLOW and "UNSAFE" in d.reasons[0]
    assert "UnsafeAllowAll in use" in caplog.text


def test_decisions_across_gops_follow_the_window() -> None:
    g, _ = make_gate(make_config(min_seconds=3.5))
    _verdicts(g, *([AUTH] * 4))
    (d,) = _scene(g, range(0, 4 * GOP_LEN))
    assert d.frame_index == 35 and d.gops == (0, 1, 2, 3)


def test_frames_are_judged_under_ingests_gop_not_the_workers() -> None:
    """Issue 8 point 1: the GOP of a frame is ingest's stamp; the worker has no say in it.

    Ingest stamps frames 10..20 in GOP 1, which is NOT_AUTHENTIC. The worker's TrackFrame
    carries no GOP at all (the field it lied with is gone), so the request involves GOP 1 and
    is denied, and the decision names GOP 1 as involved.
    """
    g, _ = make_gate()
    _verdicts(g, AUTH, Verdict.NOT_AUTHENTIC, AUTH)
    (d,) = _scene(g)
    assert d.outcome is Outcome.DENY and d.gops == (0, 1, 2)
    assert "gop_index" not in evidence(0).tracks.model_dump()
    # a stamp that puts every frame in the AUTHENTIC GOP 0 would allow: the stamp decides
    g2, _ = make_gate()
    _verdicts(g2, AUTH, Verdict.NOT_AUTHENTIC, AUTH)
    out: list[Decision] = []
    for f in range(21):
        out += g2.on_evidence(evidence(f, gop_index=0))
    assert [x.gops for x in out] == [(0,)]


def test_a_dropped_bad_verdict_sent_again_as_good_never_upgrades_trust() -> None:
    """Found by the hostile-stream properties: trust went up once GOP 0's NOT_AUTHENTIC had
    been dropped (memory bound) and an AUTHENTIC verdict for GOP 0 arrived again."""
    g, _ = make_gate(make_config(min_seconds=0.5), max_gops_per_camera=2)
    _verdicts(g, Verdict.NOT_AUTHENTIC, AUTH, AUTH)  # GOP 0's verdict is dropped
    _verdicts(g, AUTH, AUTH)  # GOP 0 and 1 again, "AUTHENTIC"
    out: list[Decision] = []
    for f in range(6):
        out += g.on_evidence(evidence(f, gop_index=0 if f < 3 else 1, pts=f / 8))
    (d,) = out
    assert d.outcome is Outcome.OPERATOR and d.gops == (0, 1)
    assert any("verdict of GOP 0 no longer held" in r for r in d.reasons), d.reasons
