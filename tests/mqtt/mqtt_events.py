"""Sink events and run states as the supervisor builds them, for the MQTT tests."""

from __future__ import annotations

from typing import Any

from kontur.gate.sinks import (
    CameraAlarmEvent,
    DecisionEvent,
    GopVerdictEvent,
    OperatorEvent,
    camera_event,
    decision_event,
    operator_event,
    verdict_event,
)
from kontur.wire import Decision, GopClosed, Outcome
from kontur.wire.runstate import CameraState, PendingRequest, RunState
from kontur.wire.verdict import GopVerdict, Verdict

T0 = 1_700_000_000.0
LEAF = "ab" * 32
#: A camera URL with credentials, as a site may configure it: never published.
CAM_URL = "rtsp://admin:cam-secret-pw@10.0.0.7:554/stream1"


def decision(
    outcome: Outcome = Outcome.ALLOW, frame: int = 20, camera: str = "cam1", **kw: Any
) -> Decision:
    """A gate decision on ``camera``."""
    executed = {Outcome.ALLOW: "alarm", Outcome.RESTRICT: "notify"}
    fields: dict[str, Any] = {
        "camera_id": camera,
        "rule": "person-dwell",
        "action": "alarm",
        "critical": True,
        "track_id": 7,
        "frame_index": frame,
        "outcome": outcome,
        "reasons": ("gops 0, 1, 2 of cam1 UNSIGNED",),
        "gops": (0, 1, 2),
        "executed": executed.get(outcome),
        "at": T0 + frame / 10,
        **kw,
    }
    return Decision(**fields)


def decided(outcome: Outcome, index: int, frame: int = 20, **kw: Any) -> DecisionEvent:
    """The sink event of a decision recorded at archive ``index``."""
    return decision_event(
        decision(outcome, frame, **kw),
        archive_index=index,
        archive_hash=LEAF,
        archive_tree_size=index + 1,
    )


def failing_gop(index: int = 3, verdict: Verdict = Verdict.NOT_AUTHENTIC) -> GopVerdictEvent:
    """The sink event of a failing GOP of cam1."""
    msg = GopClosed(
        verdict=GopVerdict(
            camera_id="cam1", gop_index=index, verdict=verdict, reasons=(f"ingest: {verdict}",)
        ),
        first_frame=index * 10,
        last_frame=index * 10 + 9,
        start_pts_s=index * 1.0,
        end_pts_s=index * 1.0 + 1.0,
        segment_sha256="0" * 64,
        segment_size=1,
    )
    event = verdict_event(msg, archive_index=100 + index, archive_hash=LEAF, archive_tree_size=200)
    assert event is not None
    return event


def alarm(detail: str = "cam1: 3 consecutive failing GOPs, last NOT_AUTHENTIC") -> CameraAlarmEvent:
    """The ``camera_untrusted`` alarm health raises."""
    return camera_event(
        "cam1",
        "camera_untrusted",
        detail,
        archive_index=50,
        archive_hash=LEAF,
        archive_tree_size=51,
    )


def closed(
    request_index: int, outcome: str = "confirmed", operators: tuple[str, ...] = ("ana",)
) -> OperatorEvent:
    """The ``operator`` event closing request ``op-<request_index>``."""
    executed = {"confirmed": "alarm", "rejected": None, "expired": "notify"}[outcome]
    return operator_event(
        f"op-{request_index}",
        decision(Outcome.OPERATOR),
        request_index,
        outcome,  # type: ignore[arg-type]
        executed,
        operators=operators,
        reason="seen on the monitor",
        at=T0 + 30,
        archive_index=request_index + 5,
        archive_hash=LEAF,
        archive_tree_size=request_index + 6,
    )


def pending(
    index: int, confirmations: tuple[str, ...] = (), deadline: float = T0 + 60
) -> PendingRequest:
    """Request ``op-<index>`` waiting on the operator desk."""
    return PendingRequest(
        id=f"op-{index}",
        decision_index=index,
        decision=decision(Outcome.OPERATOR),
        deadline=deadline,
        two_person=bool(confirmations),
        confirmations=confirmations,
    )


def run_state(
    at: float = T0 + 1,
    *,
    state: str = "NORMAL",
    records: int = 100,
    pending_requests: tuple[PendingRequest, ...] = (),
    authentic: int = 5,
    error: str | None = None,
    cameras: tuple[tuple[str, str], ...] = (("cam1", "NORMAL"),),
) -> RunState:
    """A run-state snapshot; ``cameras``: (id, effective degradation state) each, cam1 alone
    by default, every one with the same counters."""
    cams = tuple(
        CameraState(
            id=camera,
            frames=240,
            gops={"AUTHENTIC": authentic, "NOT_AUTHENTIC": 3},
            detections=900,
            decisions={"OPERATOR": 2},
            latency_s=(0.2, 0.1, 0.3),
            error=error,
            state=camera_state,
        )
        for camera, camera_state in cameras
    )
    return RunState(
        at=at,
        site="test-site",
        started_at=T0,
        state=state,
        cameras=cams,
        pending=pending_requests,
        archive_records=records,
        queue_depths={"ring:cam1": 0},
    )
