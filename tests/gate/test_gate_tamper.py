"""Camera tamper in the gate (issue 13 §1, ADR 0030): no automatic critical action on a camera
while a tamper or low-quality event is open on it, nor on the frames one touched.

The alarms are real wire messages (encoded and decoded as ingest's pipe carries them); the
scene is the gate simulator's person dwelling 2 s (frames 0-20, GOPs 0-2 at 10 fps).
"""

from __future__ import annotations

from typing import Any

import pytest
from gate_sim import evidence, gop, make_config, make_gate

from kontur.config import TamperSettings
from kontur.gate import (
    OPERATOR_QUEUE,
    ActionRequest,
    CameraNotTampered,
    Gate,
    TamperSpan,
    UnknownCameraError,
)
from kontur.ingest.verdict import Verdict
from kontur.wire import Decision, Outcome, decode, encode
from kontur.wire.messages import TamperAlarm

AUTH = Verdict.AUTHENTIC
CLEAN = (
    "gops 0, 1, 2 of cam1 AUTHENTIC",
    "verifier agreed on track 7 and the scene in 21 frames",
    "system NORMAL",
)


def _alarm(transition: str = "start", kind: str = "covered", **kw: Any) -> TamperAlarm:
    """A tamper alarm as ingest sends it, through the wire codec."""
    fields: dict[str, Any] = {
        "camera_id": "cam1",
        "transition": transition,
        "kind": kind,
        "score": 0.93,
        "reason": "83% of the textured view lost its texture and layout",
        "start_s": 12.4,
        "at_s": 13.4,
        "first_frame": 124,
        "quality_ok": True,
    }
    if transition == "end":
        fields.update(end_s=15.0, last_frame=149)
    msg = decode(encode(TamperAlarm(**{**fields, **kw})))
    assert isinstance(msg, TamperAlarm)
    return msg


def _dwell(g: Gate, *alarms: TamperAlarm) -> Decision:
    """The alarms, the three AUTHENTIC verdicts, then the 2 s dwell: its one decision."""
    for a in alarms:
        assert g.on_tamper(a) == []
    for i in range(3):
        assert g.on_gop(gop(i, AUTH)) == []
    out: list[Decision] = []
    for f in range(21):
        out += g.on_evidence(evidence(f))
    (d,) = out
    return d


def test_an_open_tamper_event_sends_a_critical_action_to_the_operator() -> None:
    g, _ = make_gate()
    d = _dwell(g, _alarm())
    assert d.critical and d.outcome is Outcome.OPERATOR and d.executed == OPERATOR_QUEUE
    assert d.reasons == (
        *CLEAN,
        "camera tamper: covered since 12.4 s (score 0.93) "
        "[ingest: 83% of the textured view lost its texture and layout]",
    )


def test_deny_per_policy() -> None:
    cfg = make_config().model_copy(update={"tamper": TamperSettings(on_critical="deny")})
    g, _ = make_gate(cfg)
    d = _dwell(g, _alarm(kind="frozen"))
    assert d.outcome is Outcome.DENY and d.executed is None
    assert "camera tamper: frozen since 12.4 s (score 0.93)" in d.reasons[-1]


def test_a_non_critical_action_is_unaffected() -> None:
    g, _ = make_gate(make_config(action="notify"))
    d = _dwell(g, _alarm())
    assert not d.critical and d.outcome is Outcome.ALLOW and d.executed == "notify"
    assert not any("tamper" in r for r in d.reasons)


def test_a_clean_camera_is_allowed_with_its_reasons_unchanged() -> None:
    g, _ = make_gate()
    d = _dwell(g)
    assert d.outcome is Outcome.ALLOW and d.reasons == CLEAN


def test_an_ended_event_refuses_only_the_frames_it_touched() -> None:
    # ended on frames 124-149: a dwell on frames 0-20 rests on an untouched picture
    g, _ = make_gate()
    d = _dwell(g, _alarm(), _alarm("end"))
    assert d.outcome is Outcome.ALLOW and d.reasons == CLEAN
    # ended on frames 15-30: the dwell's last frames were covered
    g, _ = make_gate()
    touched = {"start_s": 1.5, "first_frame": 15}
    d = _dwell(g, _alarm(**touched), _alarm("end", end_s=3.1, last_frame=30, **touched))
    assert d.outcome is Outcome.OPERATOR
    assert d.reasons[-1].startswith(
        "camera tamper: covered from 1.5 s to 3.1 s on the request's frames (score 0.93)"
    )


def test_low_quality_refuses_to_decide_until_it_clears() -> None:
    bad = {"kind": "low_quality", "reason": "too dark: mean grey 12 < 25", "quality_ok": False}
    g, _ = make_gate()
    d = _dwell(g, _alarm(**bad))
    assert d.outcome is Outcome.OPERATOR
    assert d.reasons[-1] == (
        "low image quality since 12.4 s: refuse to decide [ingest: too dark: mean grey 12 < 25]"
    )
    g, _ = make_gate()
    d = _dwell(g, _alarm(**bad), _alarm("end", **{**bad, "quality_ok": True}))
    assert d.outcome is Outcome.ALLOW and d.reasons == CLEAN


def test_a_quality_ingest_reports_not_ok_refuses_even_without_its_own_event() -> None:
    g, _ = make_gate()
    d = _dwell(g, _alarm(quality_ok=False), _alarm("end", quality_ok=False))
    assert d.outcome is Outcome.OPERATOR
    assert "ingest reported the picture below its quality floor" in d.reasons[-1]


def test_an_alarm_that_arrives_while_the_request_is_held_counts() -> None:
    # the request waits for its GOP verdicts; ingest's alarm reaches the gate before them
    g, _ = make_gate()
    out: list[Decision] = []
    for f in range(21):
        out += g.on_evidence(evidence(f))
    assert out == [] and g.pending == 1
    g.on_tamper(_alarm(kind="shifted"))
    for i in range(3):
        out += g.on_gop(gop(i, AUTH))
    (d,) = out
    assert d.outcome is Outcome.OPERATOR and "camera tamper: shifted since" in d.reasons[-1]


def test_another_cameras_tamper_does_not_touch_this_one() -> None:
    g, _ = make_gate(make_config(cameras=("cam1", "cam2")))
    d = _dwell(g, _alarm(camera_id="cam2"))
    assert d.outcome is Outcome.ALLOW and d.reasons == CLEAN


def test_an_alarm_for_an_unknown_camera_is_refused() -> None:
    g, _ = make_gate()
    with pytest.raises(UnknownCameraError, match="expected a camera among \\['cam1'\\], got 'x'"):
        g.on_tamper(_alarm(camera_id="x"))


def test_the_requirement_refuses_without_tamper_state_and_never_allows_on_refusal() -> None:
    bare = ActionRequest("r", "alarm", "cam1", 7, 20, tuple(range(21)), (0, 1, 2), ())
    c = CameraNotTampered().evaluate(bare)
    assert c.outcome is Outcome.OPERATOR
    assert c.reasons == ("no camera tamper state attached for cam1",)
    with pytest.raises(ValueError, match="expected OPERATOR or DENY, got ALLOW"):
        CameraNotTampered(Outcome.ALLOW)


@pytest.mark.parametrize(
    ("span", "outcome"),
    [
        (TamperSpan("covered", 2.0, None, 1.2, "r", 20), Outcome.DENY),  # open: any frames
        (TamperSpan("covered", 9.0, None, 1.2, "r", 90), Outcome.DENY),  # open, after them
        (TamperSpan("glare", 0.8, 1.2, 1.2, "r", 8, 12), Outcome.DENY),  # ended, overlaps
        (TamperSpan("glare", 0.0, 0.9, 1.2, "r", 0, 9), Outcome.ALLOW),  # ended before them
        (TamperSpan("glare", 2.2, 3.0, 1.2, "r", 21, 30), Outcome.ALLOW),  # ended, after
    ],
)
def test_open_events_refuse_all_and_ended_ones_their_frames(
    span: TamperSpan, outcome: Outcome
) -> None:
    req = ActionRequest("r", "alarm", "cam1", 7, 20, tuple(range(10, 21)), (1, 2), ())
    req = req.with_context(verdicts={}, status=req.status, signing_required=False, tamper=[span])
    c = CameraNotTampered(Outcome.DENY).evaluate(req)
    assert c.outcome is outcome
    if outcome is Outcome.ALLOW:
        assert c.reasons == ("camera cam1: no tamper alarm",)
