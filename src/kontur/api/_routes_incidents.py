"""Routes: the incident playbooks through the running site (issue 12 §4, ADR 0029).

The archive's one writer is the supervisor, so the API runs no playbook itself: each ``POST
/incidents/<playbook>`` audits the call (before anything is done), sends an
:class:`~kontur.wire.messages.IncidentRequest` (a random request id, the principal, the
playbook's fields) on its pipe and answers 202 with the request id and, if the supervisor has
published it within ``verdict_wait_s``, its state. The supervisor's incident desk archives
every step as an ``incident`` record and publishes the outcome in the run state
(``incidents``), which ``GET /incidents/{request_id}`` reports.

Each playbook has its own permission (the route table): revoking a camera is
``cameras:admin``; moving the analytics to the CPU is ``operator:decide`` (it only makes the
site safer, and an operator is the one awake at night); preserving a span (a legal hold and a
bundle) is ``export:create``; a full verification is ``audit:read``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from kontur.api._routes_run import run_state
from kontur.api.guard import ApiState, JsonBody, principal_of, remote_of, state_of
from kontur.api.users import Principal
from kontur.redact import redact
from kontur.wire.messages import MAX_PRESERVE_SPAN_S, IncidentRequest, WireError

__all__ = ["ENDPOINTS", "FailoverBody", "PreserveBody", "RevokeBody"]

_POLL_S = 0.05
IncidentId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", min_length=32, max_length=32)]
_CAMERA = r"^[A-Za-z0-9_.-]{1,64}$"
#: Some text, and no control, format or line-separator character (a newline, a terminal
#: escape, a bidi override: the reason lands in a legal hold, which every screen that shows
#: the hold replays; kontur._private.UNSAFE_CATEGORIES).
_SAFE = r"[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]"
_REASON = rf"^{_SAFE}*[^\s\p{{Cc}}\p{{Cf}}\p{{Zl}}\p{{Zp}}]{_SAFE}*$"
Kind = Literal["revoke_camera", "failover_cpu", "preserve", "verify_archive"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class RevokeBody(_Body):
    """``POST /incidents/revoke-camera``: the camera, why, and how much of what it sent last
    to hold (seconds, default 600)."""

    camera: str = Field(pattern=_CAMERA)
    reason: str = Field(min_length=1, max_length=500, pattern=_REASON)
    preserve_s: float = Field(default=600.0, gt=0, le=86400)


class FailoverBody(_Body):
    """``POST /incidents/failover-cpu``: why the analytics must move to the CPU now."""

    reason: str = Field(min_length=1, max_length=500, pattern=_REASON)


class PreserveBody(_Body):
    """``POST /incidents/preserve``: a camera, a span ``[from, to]`` on the archive's clock
    (unix seconds, at most an hour) and why: a legal hold plus an evidence bundle."""

    camera: str = Field(pattern=_CAMERA)
    from_at: float = Field(alias="from", ge=0)
    to: float = Field(ge=0)
    reason: str = Field(min_length=1, max_length=500, pattern=_REASON)

    @model_validator(mode="after")
    def _span(self) -> PreserveBody:
        if not self.to > self.from_at:
            raise ValueError(f"to: expected a time after from ({self.from_at}), got {self.to}")
        if self.to - self.from_at > MAX_PRESERVE_SPAN_S:
            raise ValueError(
                f"to: expected at most {MAX_PRESERVE_SPAN_S:g} s after from, got {self.to}"
            )
        return self


def describe(request_id: str, status: str) -> dict[str, Any]:
    """``{request_id, state, detail?}`` from a published outcome (details redacted)."""
    word, _, rest = status.partition(" ")
    out: dict[str, Any] = {"request_id": request_id, "state": word}
    if rest:
        out["detail"] = redact(rest)
    return out


def _ask(
    request: Request, principal: Principal, state: ApiState, kind: Kind, **fields: Any
) -> JSONResponse:
    """Audit, send the request, wait a moment for its outcome; 202 either way."""
    request_id = secrets.token_hex(16)
    msg = IncidentRequest(
        request_id=request_id, kind=kind, by=principal.name, at=state.ctx.clock.wall(), **fields
    )
    shown = ", ".join(f"{k} {v}" for k, v in fields.items() if k != "reason")
    state.auditor.record(
        principal.name,
        f"incident:{kind}",
        "ok",
        target=f"incident {request_id}",
        detail=f"{shown}; {fields.get('reason') or ''}".strip("; "),
        remote=remote_of(request),
    )
    state.ctx.outbox.send(msg)
    deadline = time.monotonic() + state.ctx.settings.verdict_wait_s
    while True:
        try:
            rs = state.runstate.read()
        except WireError:
            rs = None  # mid-replace; try again
        status = rs.incidents.get(request_id) if rs is not None else None
        if status is not None and (status != "pending" or time.monotonic() >= deadline):
            return JSONResponse({"kind": kind, **describe(request_id, status)}, status_code=202)
        if time.monotonic() >= deadline:
            return JSONResponse(
                {"request_id": request_id, "kind": kind, "state": "sent"}, status_code=202
            )
        time.sleep(_POLL_S)


Who = Annotated[Principal, Depends(principal_of)]
State = Annotated[ApiState, Depends(state_of)]


def revoke_camera(
    request: Request, body: Annotated[RevokeBody, Depends(JsonBody(RevokeBody))], p: Who, s: State
) -> JSONResponse:
    """Revoke a camera now (its next GOP is REVOKED) and hold what it sent last."""
    return _ask(
        request, p, s, "revoke_camera",
        camera=body.camera, reason=body.reason, preserve_s=body.preserve_s,
    )  # fmt: skip


def failover_cpu(
    request: Request,
    body: Annotated[FailoverBody, Depends(JsonBody(FailoverBody))],
    p: Who,
    s: State,
) -> JSONResponse:
    """Move the analytics worker to the CPU now, and keep it there for the run."""
    return _ask(request, p, s, "failover_cpu", reason=body.reason)


def preserve(
    request: Request,
    body: Annotated[PreserveBody, Depends(JsonBody(PreserveBody))],
    p: Who,
    s: State,
) -> JSONResponse:
    """A legal hold of the span plus an evidence bundle (``GET /exports/{id}/bundle``)."""
    return _ask(
        request, p, s, "preserve",
        camera=body.camera, from_at=body.from_at, to_at=body.to, reason=body.reason,
    )  # fmt: skip


def verify_archive(request: Request, p: Who, s: State) -> JSONResponse:
    """A full verification of the archive with the site's witness, read-only."""
    return _ask(request, p, s, "verify_archive")


def get_incident(request_id: IncidentId, state: State) -> dict[str, Any]:
    """Where a playbook stands: ``pending``, ``done`` or ``failed``, with its one-line detail."""
    status = run_state(state).incidents.get(request_id)
    if status is None:
        raise HTTPException(404, f"expected a known incident request, got {request_id}")
    return describe(request_id, status)


ENDPOINTS: dict[str, Callable[..., Any]] = {
    "POST /incidents/revoke-camera": revoke_camera,
    "POST /incidents/failover-cpu": failover_cpu,
    "POST /incidents/preserve": preserve,
    "POST /incidents/verify-archive": verify_archive,
    "GET /incidents/{request_id}": get_incident,
}

BODIES: dict[str, type[BaseModel]] = {
    "POST /incidents/revoke-camera": RevokeBody,
    "POST /incidents/failover-cpu": FailoverBody,
    "POST /incidents/preserve": PreserveBody,
}
"""The request bodies of these routes (for the app's OpenAPI schema and its no-body guard)."""
