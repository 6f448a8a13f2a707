"""Routes over the archive: events, inclusion proofs, the audit trail, segment bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from kontur.api.archive_view import (
    EVENT_KINDS,
    PROOF_KINDS,
    first_index_at,
    inclusion,
    open_archive,
    page,
)
from kontur.api.guard import ApiState, principal_of, remote_of, state_of
from kontur.api.users import Principal
from kontur.archive import Record, SegmentCorrupt, SegmentMissing, SegmentStore

__all__ = ["ENDPOINTS", "AuditQuery", "EventsQuery"]

_MAX_INDEX = 2**53
_QUERY = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
_SHA256 = r"^[0-9a-f]{64}$"
EventKind = Literal["decision", "verdict", "event", "violation", "camera", "state", "tamper"]
assert set(get_args(EventKind)) == EVENT_KINDS, "EventKind must list archive_view.EVENT_KINDS"


class EventsQuery(BaseModel):
    """``GET /events``: a kind, a start index (else the newest), a page size."""

    model_config = _QUERY
    kind: EventKind | None = None
    since_index: int | None = Field(default=None, ge=0, le=_MAX_INDEX)
    limit: int = Field(default=100, ge=1, le=500)


class AuditQuery(BaseModel):
    """``GET /audit``: filters by actor, action, outcome and archive time (unix seconds)."""

    model_config = _QUERY
    user: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:@-]{1,128}$")
    action: str | None = Field(default=None, pattern=r"^[a-z_.:]{1,64}$")
    outcome: Literal["ok", "refused"] | None = None
    since: float | None = Field(default=None, ge=0)
    until: float | None = Field(default=None, ge=0)
    since_index: int | None = Field(default=None, ge=0, le=_MAX_INDEX)
    limit: int = Field(default=100, ge=1, le=500)


class ProofQuery(BaseModel):
    """``GET /events/{index}/proof``: the tree size (default: the newest covering checkpoint)."""

    model_config = _QUERY
    size: int | None = Field(default=None, ge=1, le=_MAX_INDEX)


def events(
    q: Annotated[EventsQuery, Query()], state: Annotated[ApiState, Depends(state_of)]
) -> dict[str, Any]:
    """Decisions, verdicts, events, violations, camera and state records, newest last."""
    kinds = EVENT_KINDS if q.kind is None else frozenset({q.kind})
    s = state.ctx.settings
    with open_archive(state.ctx.data_dir) as arc:
        found = page(
            arc,
            kinds,
            start=q.since_index,
            limit=min(q.limit, s.page_limit),
            scan_limit=s.scan_limit,
        )
        return found.to_json("events")


def proof(
    index: Annotated[int, Path(ge=0, le=_MAX_INDEX)],
    q: Annotated[ProofQuery, Query()],
    state: Annotated[ApiState, Depends(state_of)],
) -> dict[str, Any]:
    """An RFC 9162 inclusion proof of event ``index``, with the covering signed checkpoint."""
    with open_archive(state.ctx.data_dir) as arc:
        rec = next(arc.iter_records(index), None) if index < arc.records else None
        if rec is None or rec.kind not in PROOF_KINDS:
            raise HTTPException(404, f"expected an event record at index {index}, got none")
        return inclusion(arc, index, q.size)


def audit(
    q: Annotated[AuditQuery, Query()], state: Annotated[ApiState, Depends(state_of)]
) -> dict[str, Any]:
    """Audit records (archive kind ``audit``), filtered; newest last."""
    if q.since is not None and q.until is not None and q.until < q.since:
        raise HTTPException(422, f"until: expected at least since ({q.since}), got {q.until}")
    s = state.ctx.settings
    with open_archive(state.ctx.data_dir) as arc:
        start = q.since_index
        if start is None and q.since is not None:
            start = first_index_at(arc, q.since)
        found = page(
            arc,
            frozenset({"audit"}),
            _audit_filter(q),
            start=start,
            limit=min(q.limit, s.page_limit),
            scan_limit=s.scan_limit,
            until=q.until,
        )
        return found.to_json("audit")


def _audit_filter(q: AuditQuery) -> Callable[[Record], bool]:
    def accept(rec: Record) -> bool:
        p = rec.payload
        return (
            (q.user is None or p.get("actor") == q.user)
            and (q.action is None or p.get("action") == q.action)
            and (q.outcome is None or p.get("outcome") == q.outcome)
            and (q.since is None or rec.at >= q.since)
            and (q.until is None or rec.at <= q.until)
        )

    return accept


def segment(
    sha256: Annotated[str, Path(pattern=_SHA256, min_length=64, max_length=64)],
    request: Request,
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
) -> Response:
    """An archived segment's bytes (kontur's segment container), checked against its hash.

    ``sha256`` is checked against its pattern before any file is touched. Each access is an
    audit record; the bytes are only sent once that record is on its way.
    """
    remote = remote_of(request)
    try:
        data = SegmentStore(state.ctx.data_dir).read(sha256)
    except (SegmentMissing, SegmentCorrupt) as exc:
        missing = isinstance(exc, SegmentMissing)
        state.auditor.record(
            principal.name,
            "video:archive",
            "refused",
            target=f"segment {sha256}",
            detail="unknown segment" if missing else str(exc),
            remote=remote,
            required=False,
        )
        raise HTTPException(
            404 if missing else 409,
            f"expected a stored segment {sha256[:12]}…, got "
            + ("none" if missing else "one that fails its hash"),
        ) from None
    state.auditor.record(
        principal.name,
        "video:archive",
        "ok",
        target=f"segment {sha256}",
        detail=f"{len(data)} bytes",
        remote=remote,
    )
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{sha256}.seg"'},
    )


ENDPOINTS: dict[str, Callable[..., Any]] = {
    "GET /events": events,
    "GET /events/{index}/proof": proof,
    "GET /audit": audit,
    "GET /segments/{sha256}": segment,
}
