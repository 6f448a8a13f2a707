"""Routes: evidence export through the running site (``export:create``, ADR 0020 and 0023).

The archive's one writer is the supervisor, so the API never exports itself: ``POST
/exports`` sends an :class:`~kontur.wire.messages.ExportRequest` (a random request id, the
principal, the camera and the span) and answers 202; the supervisor builds the bundle into
``DATA_DIR/exports/<request_id>.zip``, logs the ``export`` record naming the principal, and
publishes the outcome in the run state (``exports``), which ``GET /exports/{request_id}``
reports. ``GET /exports/{request_id}/bundle`` serves the zip once it is ready, after checking
it against the SHA-256 the supervisor published.

The request id is checked against its pattern (32 hex digits) by the route before any file is
touched, and again where its path is built (:func:`~kontur.wire.runstate.export_bundle_path`).
Every request and every download is an audit record, sent before anything is done or served.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from kontur.api._routes_run import run_state
from kontur.api.guard import ApiState, JsonBody, principal_of, remote_of, state_of
from kontur.api.users import Principal
from kontur.redact import redact
from kontur.wire.messages import ExportRequest, WireError
from kontur.wire.runstate import EXPORT_ID, export_bundle_path

__all__ = ["ENDPOINTS", "MAX_SPAN_S", "ExportBody"]

#: The longest span one request may ask for (bundles are built in memory, ADR 0020).
MAX_SPAN_S = 3600.0
_POLL_S = 0.05
ExportId = Annotated[str, Path(pattern=EXPORT_ID, min_length=32, max_length=32)]


class ExportBody(BaseModel):
    """``POST /exports``: a camera and a span ``[from, to]`` on the archive's clock (unix s)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)
    camera: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    from_at: float = Field(alias="from", ge=0)
    to: float = Field(ge=0)

    @model_validator(mode="after")
    def _span(self) -> ExportBody:
        if not self.to > self.from_at:
            raise ValueError(f"to: expected a time after from ({self.from_at}), got {self.to}")
        if self.to - self.from_at > MAX_SPAN_S:
            raise ValueError(f"to: expected at most {MAX_SPAN_S:g} s after from, got {self.to}")
        return self


def _describe(request_id: str, status: str) -> dict[str, Any]:
    word, _, rest = status.partition(" ")
    out: dict[str, Any] = {"request_id": request_id, "state": word}
    if word == "ready":
        out["sha256"] = rest
        out["bundle"] = f"/exports/{request_id}/bundle"
    elif word == "failed":
        out["reason"] = redact(rest)
    result: dict[str, Any] = out
    return result


def create_export(
    request: Request,
    body: Annotated[ExportBody, Depends(JsonBody(ExportBody))],
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
) -> JSONResponse:
    """Ask the supervisor for a bundle; 202 with the request id (and its state, once seen)."""
    request_id = secrets.token_hex(16)
    span = f"camera {body.camera} from {body.from_at:.3f} to {body.to:.3f}"
    state.auditor.record(
        principal.name,
        "export:create",
        "ok",
        target=f"export {request_id}",
        detail=span,
        remote=remote_of(request),
    )
    state.ctx.outbox.send(
        ExportRequest(
            request_id=request_id,
            requested_by=principal.name,
            camera=body.camera,
            from_at=body.from_at,
            to_at=body.to,
            at=state.ctx.clock.wall(),
        )
    )
    deadline = time.monotonic() + state.ctx.settings.verdict_wait_s
    while True:
        try:
            rs = state.runstate.read()
        except WireError:
            rs = None  # mid-replace; try again
        if rs is not None and request_id in rs.exports:
            return JSONResponse(_describe(request_id, rs.exports[request_id]), status_code=202)
        if time.monotonic() >= deadline:
            return JSONResponse({"request_id": request_id, "state": "sent"}, status_code=202)
        time.sleep(_POLL_S)


def get_export(
    request_id: ExportId, state: Annotated[ApiState, Depends(state_of)]
) -> dict[str, Any]:
    """Where a request stands: ``pending``, ``ready`` (with the bundle's SHA-256) or
    ``failed`` (with a one-line reason)."""
    status = run_state(state).exports.get(request_id)
    if status is None:
        raise HTTPException(404, f"expected a known export request, got {request_id}")
    return _describe(request_id, status)


def get_bundle(
    request_id: ExportId,
    request: Request,
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
) -> Response:
    """The bundle's bytes, once ready and only if they match the published SHA-256."""
    status = run_state(state).exports.get(request_id)
    if status is None:
        raise HTTPException(404, f"expected a known export request, got {request_id}")
    word, _, sha = status.partition(" ")
    if word != "ready":
        raise HTTPException(409, f"expected a ready export, got {request_id} {word}")
    remote = remote_of(request)
    try:
        data = _read(export_bundle_path(state.ctx.data_dir, request_id))
    except OSError as exc:
        why = "none" if exc.errno == errno.ENOENT else "an unreadable file"
        state.auditor.record(
            principal.name, "export:download", "refused", target=f"export {request_id}",
            detail=f"bundle: {why}", remote=remote, required=False,
        )  # fmt: skip
        raise HTTPException(404, f"expected the bundle of {request_id}, got {why}") from None
    if hashlib.sha256(data).hexdigest() != sha:
        state.auditor.record(
            principal.name, "export:download", "refused", target=f"export {request_id}",
            detail="bundle fails its published sha256", remote=remote, required=False,
        )  # fmt: skip
        raise HTTPException(409, f"expected the bundle of {request_id} to match its sha256")
    state.auditor.record(
        principal.name,
        "export:download",
        "ok",
        target=f"export {request_id}",
        detail=f"{len(data)} bytes, sha256 {sha}",
        remote=remote,
    )
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="kontur-export-{request_id}.zip"'},
    )


def _read(path: os.PathLike[str]) -> bytes:
    """A regular file's bytes, never through a symlink."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        return f.read()


ENDPOINTS: dict[str, Callable[..., Any]] = {
    "POST /exports": create_export,
    "GET /exports/{request_id}": get_export,
    "GET /exports/{request_id}/bundle": get_bundle,
}
