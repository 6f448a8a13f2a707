"""Routes over the run state: status, metrics, and the operator's requests (issue 11 §6, §8).

The run state is the supervisor's snapshot (:mod:`kontur.wire.runstate`); every payload leaves
through :func:`kontur.redact.redact`, so a camera error that quotes an RTSP URL with
credentials shows ``rtsp://***@host/…``. An operator's answer travels to the supervisor as an
:class:`~kontur.wire.messages.OperatorVerdict`; the supervisor alone decides who won, and
this route reports it from the snapshot (``resolved``), polling for ``verdict_wait_s``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field

from kontur.api.guard import ApiState, JsonBody, principal_of, remote_of, state_of
from kontur.api.metrics import exposition
from kontur.api.rbac import Permission
from kontur.api.users import Principal
from kontur.redact import redact
from kontur.wire.messages import OperatorVerdict, WireError
from kontur.wire.runstate import PendingRequest, RunState

__all__ = ["ENDPOINTS", "VerdictBody"]

log = logging.getLogger("kontur.api")

_REQUEST_ID = r"^op-[0-9]{1,16}$"
_POLL_S = 0.05
RequestId = Annotated[str, Path(pattern=_REQUEST_ID, max_length=19)]


class VerdictBody(BaseModel):
    """``POST /operator/requests/{id}``: confirm or reject, and why."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    confirm: bool
    reason: str = Field(min_length=1, max_length=1024)


def run_state(state: ApiState) -> RunState:
    """The supervisor's snapshot, or 503 with a one-line reason."""
    try:
        rs = state.runstate.read()
    except WireError as exc:
        log.error("run state: %s", exc)
        raise HTTPException(503, "expected a readable run state, got a malformed one") from None
    if rs is None:
        raise HTTPException(503, "expected the state of a running perimeter, got none")
    return rs


def status(state: Annotated[ApiState, Depends(state_of)]) -> dict[str, Any]:
    """The perimeter at a glance: state, cameras, blocks, archive."""
    rs = run_state(state)
    now = state.ctx.clock.wall()
    out = {
        "site": rs.site,
        "state": rs.state,
        "at": rs.at,
        "stale": now - rs.at > state.ctx.settings.stale_after_s,
        "started_at": rs.started_at,
        "transitions": rs.transitions,
        "cameras": [
            {
                "id": c.id,
                "frames": c.frames,
                "frames_skipped": c.frames_skipped,
                "gops": c.gops,
                "detections": c.detections,
                "verifier": {"agree": c.verifier_agree, "disagree": c.verifier_disagree},
                "decisions": c.decisions,
                "error": c.error,
                "state": c.state,
            }
            for c in rs.cameras
        ],
        "blocks": [{"name": b.name, "alive": b.alive, "restarts": b.restarts} for b in rs.blocks],
        "archive": {"records": rs.archive_records, "head": rs.archive_head},
        "pending": len(rs.pending),
        "release": rs.release,
        "runtime": rs.runtime,
        "queue_depths": rs.queue_depths,
    }
    result: dict[str, Any] = redact(out)
    return result


def metrics(state: Annotated[ApiState, Depends(state_of)]) -> Response:
    """Prometheus text exposition of the run state."""
    rs = run_state(state)
    return Response(exposition(rs, state.ctx.clock.wall()), media_type=CONTENT_TYPE_LATEST)


def _request_json(req: PendingRequest, principal: Principal) -> dict[str, Any]:
    d = req.decision
    out: dict[str, Any] = {
        "id": req.id,
        "state": "pending",
        "decision_index": req.decision_index,
        "deadline": req.deadline,
        "two_person": req.two_person,
        "confirmations": list(req.confirmations),
        "camera": d.camera_id,
        "rule": d.rule,
        "action": d.action,
        "critical": d.critical,
        "outcome": d.outcome.value,
        "track": d.track_id,
        "frame_index": d.frame_index,
        "reasons": list(d.reasons),
        "gops": list(d.gops),
        "gop_verdicts": req.gop_verdicts,
        "at": d.at,
    }
    if Permission.VIDEO_ARCHIVE in principal.permissions:
        out["segments"] = list(req.segments)
    result: dict[str, Any] = redact(out)
    return result


def list_requests(
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
) -> dict[str, Any]:
    """The pending OPERATOR requests, with their evidence."""
    rs = run_state(state)
    return {"requests": [_request_json(r, principal) for r in rs.pending]}


def get_request(
    request_id: RequestId,
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
) -> dict[str, Any]:
    """One request: its evidence while pending, how it ended once resolved."""
    rs = run_state(state)
    for r in rs.pending:
        if r.id == request_id:
            return _request_json(r, principal)
    if request_id in rs.resolved:
        return {
            "id": request_id,
            "state": "resolved",
            "resolution": redact(rs.resolved[request_id]),
        }
    raise HTTPException(404, f"expected a known request, got {request_id}")


def decide(
    request_id: RequestId,
    request: Request,
    body: Annotated[VerdictBody, Depends(JsonBody(VerdictBody))],
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
) -> JSONResponse:
    """Confirm or reject a pending request; answers how the supervisor resolved it."""
    rs = run_state(state)
    pending = next((r for r in rs.pending if r.id == request_id), None)
    if pending is None:
        if request_id in rs.resolved:
            how = redact(rs.resolved[request_id])
            raise HTTPException(409, f"expected a pending request, got {request_id} {how}")
        raise HTTPException(404, f"expected a known request, got {request_id}")
    if principal.name in pending.confirmations:
        raise HTTPException(
            409, f"expected a second, different operator, got {principal.name} again"
        )
    verb = "confirm" if body.confirm else "reject"
    state.auditor.record(
        principal.name,
        "operator:decide",
        "ok",
        target=request_id,
        detail=f"{verb}: {body.reason}",
        remote=remote_of(request),
    )
    state.ctx.outbox.send(
        OperatorVerdict(
            request_id=request_id,
            operator=principal.name,
            confirm=body.confirm,
            reason=body.reason,
            at=state.ctx.clock.wall(),
        )
    )
    return _await_resolution(state, request_id, principal.name)


def _await_resolution(state: ApiState, request_id: str, name: str) -> JSONResponse:
    deadline = time.monotonic() + state.ctx.settings.verdict_wait_s
    while True:
        try:
            rs = state.runstate.read()
        except WireError:
            rs = None  # mid-replace on a filesystem without atomic rename; try again
        if rs is not None:
            answer = _resolution(rs, request_id, name)
            if answer is not None:
                return answer
        if time.monotonic() >= deadline:
            return JSONResponse({"awaiting": "the supervisor"}, status_code=202)
        time.sleep(_POLL_S)


def _resolution(rs: RunState, request_id: str, name: str) -> JSONResponse | None:
    how = rs.resolved.get(request_id)
    if how is not None:
        who = re.split(r"[\s,]+", how.partition(" by ")[2])
        if name in who:
            return JSONResponse({"resolution": redact(how)})
        raise HTTPException(409, f"expected to resolve {request_id}, got it {redact(how)} first")
    for r in rs.pending:
        if r.id == request_id and r.two_person and name in r.confirmations:
            return JSONResponse({"awaiting": "a second operator"}, status_code=202)
    return None


ENDPOINTS: dict[str, Callable[..., Any]] = {
    "GET /status": status,
    "GET /metrics": metrics,
    "GET /operator/requests": list_requests,
    "GET /operator/requests/{request_id}": get_request,
    "POST /operator/requests/{request_id}": decide,
}
