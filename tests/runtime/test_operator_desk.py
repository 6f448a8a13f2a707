"""The operator desk's pure core (issue 11 §6, ADR 0023): confirm, reject, four eyes,
deadline, exactly one winner, bounded, with a manual clock and interleavings from hypothesis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from committed_sink import CommittedCheckingSink
from hypothesis import given, settings
from hypothesis import strategies as st

from kontur.archive import Archive
from kontur.clock import ManualClock
from kontur.config import ActionConfig
from kontur.gate.operator import (
    Awaiting,
    DeskOutcome,
    OperatorDesk,
    Refused,
    Resolution,
    request_id,
)
from kontur.gate.sinks import OperatorEvent
from kontur.runtime.recorder import CameraStats, Recorder
from kontur.wire import AuditEvent, Decision, Outcome
from kontur.wire.messages import OperatorVerdict

ACTIONS = {
    "alarm": ActionConfig(critical=True, restricted_alternative="notify"),
    "lock": ActionConfig(critical=True, restricted_alternative="notify", two_person=True),
    "siren": ActionConfig(critical=True),
    "notify": ActionConfig(critical=False),
}


def _decision(action: str = "alarm", outcome: Outcome = Outcome.OPERATOR) -> Decision:
    return Decision(
        camera_id="cam1",
        rule=f"dwell-{action}",
        action=action,
        critical=True,
        track_id=7,
        frame_index=120,
        outcome=outcome,
        reasons=("gop 0 of cam1 is UNSIGNED: untrusted source (no signature)",),
        gops=(0,),
        executed="operator-queue",
        at=1.0,
    )


def _verdict(
    rid: str, who: str, confirm: bool = True, why: str = "seen on camera"
) -> OperatorVerdict:
    return OperatorVerdict(request_id=rid, operator=who, confirm=confirm, reason=why, at=2.0)


def _desk(deadline_s: float = 60.0, **kw: int) -> tuple[OperatorDesk, ManualClock]:
    clock = ManualClock()
    return OperatorDesk(ACTIONS, deadline_s, clock, **kw), clock


def test_an_operator_decision_becomes_a_pending_request_named_after_its_record() -> None:
    desk, clock = _desk()
    req, overflow = desk.add(41, _decision(), gop_verdicts={"0": "UNSIGNED"}, segments=("a" * 64,))
    assert overflow == []
    assert req.id == request_id(41) == "op-41"
    assert req.decision_index == 41 and req.deadline == clock.wall() + 60.0
    assert req.two_person is False and req.confirmations == ()
    assert req.gop_verdicts == {"0": "UNSIGNED"} and req.segments == ("a" * 64,)
    assert desk.pending == (req,)
    assert desk.add(42, _decision("lock"))[0].two_person is True


def test_only_operator_decisions_enter_and_an_index_enters_once() -> None:
    desk, _ = _desk()
    with pytest.raises(ValueError, match="expected an OPERATOR decision, got DENY"):
        desk.add(1, _decision(outcome=Outcome.DENY))
    desk.add(1, _decision())
    with pytest.raises(ValueError, match="expected a new decision index, got 1 again"):
        desk.add(1, _decision())


def test_confirm_runs_the_action_and_later_verdicts_are_refused_naming_the_winner() -> None:
    desk, _ = _desk()
    req, _ = desk.add(5, _decision())
    v0 = desk.version
    done = desk.apply(_verdict(req.id, "ana", why="intruder at the fence"))
    assert isinstance(done, Resolution)
    assert done.outcome is DeskOutcome.CONFIRMED and done.executed == "alarm"
    assert done.operators == ("ana",) and done.reason == "intruder at the fence"
    assert desk.pending == () and desk.resolved == {"op-5": "confirmed by ana"}
    assert desk.version > v0
    late = desk.apply(_verdict(req.id, "bo"))
    assert isinstance(late, Refused) and late.outcome is DeskOutcome.REFUSED
    assert late.reason == "expected a pending request, got op-5: already confirmed by ana"
    late_no = desk.apply(_verdict(req.id, "bo", confirm=False))
    assert isinstance(late_no, Refused) and "already confirmed by ana" in late_no.reason


def test_reject_runs_the_restricted_alternative_or_nothing() -> None:
    desk, _ = _desk()
    a, _ = desk.add(1, _decision("alarm"))
    s, _ = desk.add(2, _decision("siren"))
    ra = desk.apply(_verdict(a.id, "ana", confirm=False, why="a cleaner"))
    rs = desk.apply(_verdict(s.id, "ana", confirm=False, why="a cleaner"))
    assert isinstance(ra, Resolution) and isinstance(rs, Resolution)
    assert (ra.outcome, ra.executed) == (DeskOutcome.REJECTED, "notify")
    assert (rs.outcome, rs.executed) == (DeskOutcome.REJECTED, None)
    assert desk.resolved["op-1"] == "rejected by ana"


def test_an_unknown_request_is_refused() -> None:
    desk, _ = _desk()
    r = desk.apply(_verdict("op-99", "ana"))
    assert isinstance(r, Refused) and r.request is None
    assert r.reason == "expected a pending request, got unknown op-99"


def test_four_eyes_needs_two_different_operators() -> None:
    desk, _ = _desk()
    req, _ = desk.add(3, _decision("lock"))
    first = desk.apply(_verdict(req.id, "ana"))
    assert isinstance(first, Awaiting) and first.outcome is DeskOutcome.AWAITING_SECOND
    assert first.request.confirmations == ("ana",)
    assert desk.pending[0].confirmations == ("ana",)
    again = desk.apply(_verdict(req.id, "ana"))
    assert isinstance(again, Refused)
    assert again.reason == "expected a second, different operator (four eyes), got ana again"
    assert desk.pending[0].confirmations == ("ana",)
    second = desk.apply(_verdict(req.id, "bo", why="confirmed on the second screen"))
    assert isinstance(second, Resolution)
    assert (second.outcome, second.executed) == (DeskOutcome.CONFIRMED, "lock")
    assert second.operators == ("ana", "bo")
    assert desk.resolved["op-3"] == "confirmed by ana and bo"


def test_four_eyes_one_rejection_is_enough_even_after_a_confirmation() -> None:
    desk, _ = _desk()
    req, _ = desk.add(3, _decision("lock"))
    assert isinstance(desk.apply(_verdict(req.id, "ana")), Awaiting)
    no = desk.apply(_verdict(req.id, "ana", confirm=False, why="second look: a shadow"))
    assert isinstance(no, Resolution)
    assert (no.outcome, no.executed, no.operators) == (DeskOutcome.REJECTED, "notify", ("ana",))


def test_the_deadline_fails_safe_with_the_restricted_alternative() -> None:
    desk, clock = _desk(deadline_s=10.0)
    a, _ = desk.add(1, _decision("alarm"))
    clock.advance(5)
    s, _ = desk.add(2, _decision("siren"))
    assert desk.expire(clock.wall()) == []
    clock.advance(5)
    (done,) = desk.expire(clock.wall())
    assert done.request.id == a.id and done.outcome is DeskOutcome.EXPIRED
    assert done.executed == "notify" and done.operators == ()
    assert done.reason == "no operator answered within 10 s"
    assert desk.resolved == {"op-1": "expired"}
    clock.advance(5)
    (done_s,) = desk.expire()
    assert (done_s.request.id, done_s.executed) == (s.id, None)
    late = desk.apply(_verdict(a.id, "ana"))
    assert isinstance(late, Refused) and late.reason.endswith("already expired")


def test_a_verdict_past_the_deadline_is_refused_before_expire_runs() -> None:
    desk, clock = _desk(deadline_s=10.0)
    req, _ = desk.add(1, _decision())
    clock.advance(12)
    r = desk.apply(_verdict(req.id, "ana"))
    assert isinstance(r, Refused)
    assert r.reason == "expected an answer before the deadline, op-1 is 2.0 s past it"
    assert [d.outcome for d in desk.expire()] == [DeskOutcome.EXPIRED]


def test_pending_requests_are_bounded_the_oldest_fails_safe() -> None:
    desk, _ = _desk(max_pending=2)
    desk.add(1, _decision())
    desk.add(2, _decision())
    _, overflow = desk.add(3, _decision())
    assert [d.request.id for d in overflow] == ["op-1"]
    assert overflow[0].outcome is DeskOutcome.EXPIRED and overflow[0].executed == "notify"
    assert "more than 2 requests waiting" in overflow[0].reason
    assert [r.id for r in desk.pending] == ["op-2", "op-3"]


def test_close_fails_safe_on_everything_still_waiting() -> None:
    desk, _ = _desk()
    desk.add(1, _decision())
    desk.add(2, _decision("lock"))
    done = desk.close("kontur stopped before an operator answered")
    assert [(d.request.id, d.outcome, d.executed) for d in done] == [
        ("op-1", DeskOutcome.EXPIRED, "notify"),
        ("op-2", DeskOutcome.EXPIRED, "notify"),
    ]
    assert desk.pending == ()


def test_the_desk_refuses_a_nonsense_configuration() -> None:
    with pytest.raises(ValueError, match="expected a positive deadline"):
        OperatorDesk(ACTIONS, 0, ManualClock())
    with pytest.raises(ValueError, match="expected room for at least one request"):
        OperatorDesk(ACTIONS, 1.0, ManualClock(), max_pending=0)


_OPERATORS = st.sampled_from(["ana", "bo", "cy"])
_STEP = st.one_of(
    st.tuples(st.just("verdict"), st.integers(0, 3), _OPERATORS, st.booleans()),
    st.tuples(st.just("tick"), st.floats(0, 8)),
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(_STEP, max_size=40))
def test_any_interleaving_closes_each_request_exactly_once(steps: list[tuple]) -> None:
    """Operators racing on the same requests, with time passing: every request is closed at
    most once, the winner's verdict is the one recorded, four eyes always means two people,
    and nothing fires for a request once it is closed."""
    desk, clock = _desk(deadline_s=20.0)
    actions = ["alarm", "lock", "siren", "lock"]
    for i, a in enumerate(actions):
        desk.add(i, _decision(a))
    closed: dict[str, Resolution] = {}
    for step in steps:
        if step[0] == "tick":
            clock.advance(step[1])
            results: list[Resolution | Awaiting | Refused] = list(desk.expire())
        else:
            _, i, who, confirm = step
            results = [desk.apply(_verdict(f"op-{i}", who, confirm))]
        for r in results:
            if not isinstance(r, Resolution):
                continue
            assert r.request.id not in closed, f"{r.request.id} closed twice"
            closed[r.request.id] = r
            if r.outcome is DeskOutcome.CONFIRMED:
                assert r.executed == r.request.decision.action
                if r.request.two_person:
                    assert len(set(r.operators)) == 2
            else:
                alt = ACTIONS[r.request.decision.action].restricted_alternative
                assert r.executed == alt
    open_ids = {p.id for p in desk.pending}
    assert open_ids.isdisjoint(closed) and open_ids | set(closed) == {f"op-{i}" for i in range(4)}
    for rid, r in closed.items():
        assert desk.resolved[rid] == r.how()


# --- the recorder as the desk's shell: record, commit, then act ---------------------------


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[tuple[Recorder, CommittedCheckingSink, Archive, ManualClock]]:
    clock = ManualClock()
    archive = Archive.open(tmp_path, clock, batch_size=10_000, batch_interval_s=3600)
    sink = CommittedCheckingSink(tmp_path)
    desk = OperatorDesk(ACTIONS, 30.0, clock)
    rec = Recorder(archive, {"cam1": CameraStats(source="test")}, [sink], desk)
    yield rec, sink, archive, clock
    archive.close()


def _records(archive: Archive, kind: str) -> list[dict]:
    archive.flush()
    return [r.payload for r in archive.iter_records() if r.kind == kind]


def test_a_confirmed_request_is_archived_and_committed_before_the_action_fires(
    shell: tuple[Recorder, CommittedCheckingSink, Archive, ManualClock],
) -> None:
    rec, sink, archive, _ = shell
    rec.on_message("gate", _decision())
    (req,) = rec.desk.pending  # type: ignore[union-attr]
    assert req.id == "op-0"
    rec.on_message("api", _verdict(req.id, "ana", why="intruder at the fence"))
    rec.on_message("api", _verdict(req.id, "bo"))
    _decision_event, (op_event, committed) = sink.seen
    assert isinstance(op_event, OperatorEvent)
    assert (op_event.outcome, op_event.executed, op_event.operators) == (
        "confirmed",
        "alarm",
        ("ana",),
    )
    assert op_event.request == "op-0" and op_event.decision_index == 0
    assert committed[-1] == "operator" and op_event.archive_index == len(committed) - 1
    ops = _records(archive, "operator")
    assert [(o["operator"], o["outcome"], o["executed"]) for o in ops] == [
        ("ana", "confirmed", "alarm"),
        ("bo", "refused", None),
    ]
    assert ops[0]["reason"] == "intruder at the fence"
    assert ops[1]["detail"] == "expected a pending request, got op-0: already confirmed by ana"


def test_four_eyes_through_the_recorder_archives_each_step(
    shell: tuple[Recorder, CommittedCheckingSink, Archive, ManualClock],
) -> None:
    rec, sink, archive, _ = shell
    rec.on_message("gate", _decision("lock"))
    for who in ("ana", "ana", "bo"):
        rec.on_message("api", _verdict("op-0", who))
    outcomes = [(o["operator"], o["outcome"]) for o in _records(archive, "operator")]
    assert outcomes == [("ana", "awaiting_second"), ("ana", "refused"), ("bo", "confirmed")]
    events = [e for e, _ in sink.seen if isinstance(e, OperatorEvent)]
    assert [(e.outcome, e.operators) for e in events] == [("confirmed", ("ana", "bo"))]


def test_expired_requests_fail_safe_archived_then_acted_on(
    shell: tuple[Recorder, CommittedCheckingSink, Archive, ManualClock],
) -> None:
    rec, sink, archive, clock = shell
    rec.on_message("gate", _decision())
    rec.on_message("gate", _decision("siren"))
    clock.advance(31)
    assert rec.expire_requests(clock.wall()) == 2
    ops = _records(archive, "operator")
    assert [(o["request"], o["outcome"], o["executed"], o["operator"]) for o in ops] == [
        ("op-0", "expired", "notify", None),
        ("op-1", "expired", None, None),
    ]
    events = [e for e, _ in sink.seen if isinstance(e, OperatorEvent)]
    assert [(e.request, e.executed) for e in events] == [("op-0", "notify"), ("op-1", None)]


def test_audit_events_are_archived_as_audit_records(
    shell: tuple[Recorder, CommittedCheckingSink, Archive, ManualClock],
) -> None:
    rec, sink, archive, _ = shell
    ev = AuditEvent(actor="ana", action="login", outcome="ok", remote="127.0.0.1", at=5.0)
    rec.on_message("api", ev)
    (audit,) = _records(archive, "audit")
    assert audit == {
        "type": "audit",
        "actor": "ana",
        "action": "login",
        "outcome": "ok",
        "target": None,
        "detail": "",
        "remote": "127.0.0.1",
        "at": 5.0,
    }
    assert sink.seen == []
