"""The gate decides a request on camera C under C's effective state (ADR 0040): the more
severe of the site's state and C's own. A degraded camera holds back critical automatic
actions on itself, never on a healthy camera; a site state holds back every camera."""

from __future__ import annotations

import pytest
from gate_sim import evidence, gop, make_config, make_gate

from kontur.gate import Gate, SystemState, UnknownCameraError
from kontur.ingest.verdict import Verdict
from kontur.wire import Decision, Outcome, StateChanged

AUTH = Verdict.AUTHENTIC
CAMS = ("cam1", "cam2")


def _state(to: str, trigger: str, camera: str | None, frm: str = "NORMAL") -> StateChanged:
    return StateChanged(at=0.0, from_state=frm, to_state=to, trigger=trigger, camera_id=camera)


def _gate() -> Gate:
    g, _ = make_gate(make_config(cameras=CAMS))
    return g


def _verdicts(g: Gate, cam: str, n: int = 3) -> list[Decision]:
    out: list[Decision] = []
    for i in range(n):
        out += g.on_gop(gop(i, AUTH, cam=cam))
    return out


def _scene(g: Gate, cam: str) -> list[Decision]:
    out: list[Decision] = []
    for f in range(21):
        out += g.on_evidence(evidence(f, cam=cam))
    return out


def _decide(g: Gate, cam: str) -> Decision:
    _verdicts(g, cam)
    (d,) = _scene(g, cam)
    return d


def test_a_degraded_camera_restricts_itself_and_not_a_healthy_one() -> None:
    g = _gate()
    g.on_state(_state("DEGRADED", "camera_tamper", "cam1"))
    on_cam1, on_cam2 = _decide(g, "cam1"), _decide(g, "cam2")
    assert (on_cam1.outcome, on_cam1.executed) == (Outcome.RESTRICT, "notify")
    assert "system DEGRADED (trigger camera_tamper on camera cam1)" in on_cam1.reasons
    assert (on_cam2.outcome, on_cam2.executed) == (Outcome.ALLOW, "alarm")
    assert "system NORMAL" in on_cam2.reasons
    assert g.status.state is SystemState.NORMAL  # the site's state
    assert g.status_of("cam1").state is SystemState.DEGRADED


def test_a_site_state_restricts_every_camera() -> None:
    g = _gate()
    g.on_state(_state("DEGRADED", "worker_crash", None))
    for cam in CAMS:
        d = _decide(g, cam)
        assert (d.outcome, d.executed) == (Outcome.RESTRICT, "notify")
        assert "system DEGRADED (trigger worker_crash)" in d.reasons


def test_the_more_severe_of_site_and_camera_wins() -> None:
    g = _gate()
    g.on_state(_state("DEGRADED", "camera_untrusted", "cam1"))
    g.on_state(_state("SAFE", "model_integrity", None))
    assert g.status_of("cam1").state is SystemState.SAFE
    g.on_state(_state("NORMAL", "recovered", None, frm="SAFE"))
    assert g.status_of("cam1").state is SystemState.DEGRADED  # its own state remains
    assert g.status_of("cam2").state is SystemState.NORMAL
    g.on_state(_state("NORMAL", "recovered", "cam1", frm="DEGRADED"))
    assert _decide(g, "cam1").outcome is Outcome.ALLOW


def test_a_held_request_sees_its_own_camera_degrade_only() -> None:
    g = _gate()
    assert _scene(g, "cam1") == [] and _scene(g, "cam2") == []  # both held for verdicts
    g.on_state(_state("DEGRADED", "camera_tamper", "cam2"))
    g.on_state(_state("NORMAL", "recovered", "cam2", frm="DEGRADED"))
    (d1,) = _verdicts(g, "cam1")
    (d2,) = _verdicts(g, "cam2")
    assert d1.outcome is Outcome.ALLOW  # cam2's trouble while cam1's request waited
    assert d2.outcome is Outcome.RESTRICT  # judged on the worst state cam2 saw
    assert "system DEGRADED (trigger camera_tamper on camera cam2)" in d2.reasons


def test_a_state_for_an_unknown_camera_is_refused() -> None:
    g = _gate()
    with pytest.raises(UnknownCameraError, match=r"expected a camera among \['cam1', 'cam2'\]"):
        g.on_state(_state("SAFE", "model_integrity", "cam9"))
    assert g.status.state is SystemState.NORMAL  # nothing of the refused message was kept
    assert g.status_of("cam1").state is SystemState.NORMAL
    assert g.status_of("cam9").state is SystemState.NORMAL
    assert _decide(g, "cam1").outcome is Outcome.ALLOW
