"""Routes of the operator console (issue 12 §1, ADR 0027): its pages, its files, its data.

Every route here is a row of :data:`kontur.api.rbac.ROUTES` like any other, with its guard
first. The pages (``/ui/…``) are HTML shells rendered by :mod:`kontur.console` for the
principal, so a section the principal may not see is absent from the page; the scripts then
read the JSON API with the session cookie. ``/ui/login`` and ``/ui/static/{asset}`` are
public: the sign-in form and the scripts hold no data.

The JSON routes under ``/ui/api/`` gather what the screens draw and no other route answers in
one call: the recent GOP verdicts per camera (the verdict strip), alarms, placement and the
inventory for the overview; decisions joined with what operators did about them; one
decision's evidence (its GOPs' verdicts, the verifier's findings, its inclusion proof); and the
system's transitions (each naming its camera, or none for the site: :class:`TransitionRow`)
and checkpoints. They read the archive read-only and the run state, and every payload leaves
through :func:`kontur.redact.redact`.

:class:`LoginRedirect` turns the guard's 401 on a *page* asked for by a browser (``Accept:
text/html``) into a redirect to the sign-in page; the refusal is audited by the guard as ever,
and an API client still gets the 401.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, HTTPException, Path, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kontur.api._routes_run import run_state
from kontur.api.archive_view import inclusion, open_archive
from kontur.api.guard import ApiState, principal_of, state_of
from kontur.api.rbac import Permission
from kontur.api.users import Principal
from kontur.archive import Archive, ArchiveNotFound, Record
from kontur.console import (
    ASSET_NAME,
    PAGE_CSP,
    PAGES,
    Viewer,
    page_by_path,
    render_login,
    render_page,
)
from kontur.console import asset as console_asset
from kontur.redact import redact
from kontur.wire.runstate import CameraState, RunState
from kontur.wire.verdict import DENY_VERDICTS, Verdict

__all__ = ["ENDPOINTS", "LoginRedirect", "TransitionRow"]

_MAX_INDEX = 2**53
STRIP = 40
"""GOP verdicts per camera in the overview's strip."""
_NEAR = 2048
"""How many records either side of a decision are searched for its GOPs and findings."""
_TAMPER = frozenset({*DENY_VERDICTS, Verdict.RETIMED, Verdict.STALE})
_QUERY = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# ---- pages and files ---------------------------------------------------------------------


def _html(text: str) -> HTMLResponse:
    return HTMLResponse(text, headers={"Content-Security-Policy": PAGE_CSP})


def login_page() -> HTMLResponse:
    """The sign-in page (public: it holds nothing but the form)."""
    return _html(render_login())


def static_asset(asset: Annotated[str, Path(pattern=ASSET_NAME, max_length=48)]) -> Response:
    """One of the console's scripts or its style sheet (public: the same for everyone)."""
    found = console_asset(asset)
    if found is None:
        raise HTTPException(404, f"expected a file of the console, got {asset!r}")
    return Response(found.data, media_type=found.media_type)


def _page_endpoint(slug: str) -> Callable[..., HTMLResponse]:
    def page(principal: Annotated[Principal, Depends(principal_of)]) -> HTMLResponse:
        viewer = Viewer.of(principal.name, principal.roles, principal.permissions)
        return _html(render_page(slug, viewer))

    page.__name__ = f"console_{slug}"
    page.__doc__ = f"The console's {slug} page (HTML) for the signed-in principal."
    return page


class LoginRedirect:
    """Pure ASGI middleware: a browser's GET of a console page refused with 401 (no or an
    ended session) becomes ``303 /ui/login?next=…``. Everything else passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "GET" or not page_by_path(path):
            await self.app(scope, receive, send)
            return
        accept = dict(scope.get("headers", ())).get(b"accept", b"")
        if b"text/html" not in accept:
            await self.app(scope, receive, send)
            return
        redirected = False

        async def wrapped(message: Message) -> None:
            nonlocal redirected
            if message["type"] == "http.response.start" and message["status"] == 401:
                redirected = True
                query = scope.get("query_string", b"").decode("latin-1")
                back = f"{path}?{query}" if query else path
                where = f"/ui/login?next={quote(back, safe='/')}"
                headers = [(b"location", where.encode()), (b"content-length", b"0")]
                await send({"type": "http.response.start", "status": 303, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
            elif not redirected:
                await send(message)

        await self.app(scope, receive, wrapped)


# ---- the overview ------------------------------------------------------------------------


@contextlib.contextmanager
def _archive(state: ApiState) -> Iterator[Archive | None]:
    """The archive read-only, or None before the run created one (the screens still draw)."""
    try:
        arc = Archive.open_readonly(state.ctx.data_dir)
    except ArchiveNotFound:
        yield None
        return
    try:
        yield arc
    finally:
        arc.close()


def _verdict_of(rec: Record) -> tuple[str, int, str, list[str]] | None:
    """(camera, GOP, verdict, reasons) of a ``verdict`` record (a ``GopClosed`` payload)."""
    p = rec.payload
    body = p["verdict"] if isinstance(p.get("verdict"), dict) else p  # nested GopVerdict, or flat
    try:
        reasons = [str(r) for r in body.get("reasons", ())]
        return str(body["camera_id"]), int(body["gop_index"]), str(body["verdict"]), reasons
    except (KeyError, TypeError, ValueError):
        return None


def _strips(arc: Archive | None, cameras: Iterable[str], reasons: bool) -> dict[str, list[Any]]:
    """The newest :data:`STRIP` GOP verdicts of each camera, oldest first."""
    out: dict[str, list[Any]] = {c: [] for c in cameras}
    if arc is None or not out:
        return out
    for rec in arc.tail("verdict", min(4000, STRIP * len(out) * 2)):
        found = _verdict_of(rec)
        if found is None or found[0] not in out:
            continue
        cam, gop, verdict, why = found
        cell: dict[str, Any] = {"gop": gop, "verdict": verdict}
        if reasons:
            cell["reasons"] = why
        out[cam].append(cell)
    return {c: cells[-STRIP:] for c, cells in out.items()}


def _alarms(cam: CameraState, waiting: int) -> list[dict[str, str]]:
    tampered = {v: n for v, n in sorted(cam.gops.items()) if v in _TAMPER and n}
    out = []
    if tampered:
        what = ", ".join(f"{v} {n}" for v, n in tampered.items())
        out.append({"level": "bad", "text": f"tamper: {sum(tampered.values())} GOPs ({what})"})
    if cam.error:
        out.append({"level": "bad", "text": f"camera error: {cam.error}"})
    if cam.gops.get(Verdict.MISSING.value):
        out.append({"level": "warn", "text": f"{cam.gops['MISSING']} GOPs with frames lost"})
    if cam.verifier_disagree:
        out.append({"level": "warn", "text": f"verifier disagreed {cam.verifier_disagree} times"})
    if waiting:
        out.append({"level": "warn", "text": f"{waiting} operator requests waiting"})
    return out


def _camera_json(cam: CameraState, rs: RunState, strip: list[Any]) -> dict[str, Any]:
    up = rs.at - rs.started_at
    waiting = sum(1 for r in rs.pending if r.decision.camera_id == cam.id)
    return {
        "id": cam.id,
        "frames": cam.frames,
        "frames_skipped": cam.frames_skipped,
        "fps_avg": cam.frames / up if up > 0 else None,
        "gops": cam.gops,
        "missing_gops": cam.gops.get(Verdict.MISSING.value, 0),
        "verifier": {"agree": cam.verifier_agree, "disagree": cam.verifier_disagree},
        "decisions": cam.decisions,
        "latency_s": list(cam.latency_s),
        "error": cam.error,
        "state": cam.state,
        "strip": strip,
        "alarms": _alarms(cam, waiting),
    }


def _inventory(arc: Archive | None) -> tuple[list[Any], list[Any]]:
    """Each camera's latest enrolment or revocation, and the history (newest first)."""
    if arc is None:
        return [], []
    history: list[dict[str, Any]] = []
    for rec in arc.tail("camera", 200):
        p = rec.payload
        action = str(p.get("action", "?"))
        detail = p.get("reason") if action == "revoke" else p.get("subject") or p.get("profile")
        camera = str(p.get("camera_id", "?"))
        history.append({"at": rec.at, "camera": camera, "action": action, "detail": detail or ""})
    latest = {str(h["camera"]): h for h in history}
    words = {"enrol": "enrolled", "revoke": "revoked"}
    now = [
        {"camera": c, "action": words.get(str(h["action"]), h["action"]), "detail": h["detail"]}
        for c, h in sorted(latest.items())
    ]
    return now, history[::-1]


def _placement(records: list[Record]) -> dict[str, Any] | None:
    if not records:
        return None
    tasks = [r.payload for r in records]
    return {"platform": tasks[-1].get("platform"), "tasks": tasks}


def overview(
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
) -> dict[str, Any]:
    """What the overview draws: each camera's counters, strip and alarms; state, placement."""
    rs = run_state(state)
    reasons = Permission.EVENTS_READ in principal.permissions
    with _archive(state) as arc:
        strips = _strips(arc, [c.id for c in rs.cameras], reasons)
        placement = _placement(arc.tail("placement", 16) if arc is not None else [])
        inventory, history = _inventory(arc)
    out = {
        "site": rs.site,
        "state": rs.state,
        "stale": state.ctx.clock.wall() - rs.at > state.ctx.settings.stale_after_s,
        "at": rs.at,
        "started_at": rs.started_at,
        "transitions": rs.transitions,
        "release": rs.release,
        "runtime": rs.runtime,
        "pending": len(rs.pending),
        "placement": placement,
        "cameras": [_camera_json(c, rs, strips.get(c.id, [])) for c in rs.cameras],
        "inventory": inventory,
        "inventory_history": history,
    }
    result: dict[str, Any] = redact(out)
    return result


# ---- decisions and their evidence --------------------------------------------------------


class DecisionsQuery(BaseModel):
    """``GET /ui/api/decisions``: filters by camera, outcome and action; a page size."""

    model_config = _QUERY
    camera: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    outcome: Literal["ALLOW", "RESTRICT", "OPERATOR", "DENY"] | None = None
    action: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    limit: int = Field(default=100, ge=1, le=500)


def _decision_json(rec: Record, ops: list[Any]) -> dict[str, Any]:
    p = rec.payload
    return {
        "index": rec.index,
        "at": p.get("at", rec.at),
        "camera": p.get("camera_id"),
        "rule": p.get("rule"),
        "action": p.get("action"),
        "critical": p.get("critical"),
        "outcome": p.get("outcome"),
        "reasons": list(p.get("reasons", ())),
        "track": p.get("track_id"),
        "frame_index": p.get("frame_index"),
        "box": p.get("box"),
        "gops": list(p.get("gops", ())),
        "executed": p.get("executed"),
        "operator": ops,
    }


def _operator_json(rec: Record) -> dict[str, Any]:
    p = rec.payload
    keys = ("request", "outcome", "operator", "operators", "reason", "executed", "detail", "at")
    return {"index": rec.index, **{k: p.get(k) for k in keys}}


def _ops_by_decision(records: Iterable[Record]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for rec in records:
        index = rec.payload.get("decision_index")
        if isinstance(index, int):
            out.setdefault(index, []).append(_operator_json(rec))
    return out


def decisions(
    q: Annotated[DecisionsQuery, Query()], state: Annotated[ApiState, Depends(state_of)]
) -> dict[str, Any]:
    """The newest decisions that match, newest first, each with what operators did."""
    scan = min(state.ctx.settings.scan_limit, 5000)

    def accept(p: dict[str, Any]) -> bool:
        return (
            (q.camera is None or p.get("camera_id") == q.camera)
            and (q.outcome is None or p.get("outcome") == q.outcome)
            and (q.action is None or p.get("action") == q.action)
        )

    with open_archive(state.ctx.data_dir) as arc:
        found = [r for r in arc.tail("decision", scan) if accept(r.payload)][-q.limit :]
        ops = _ops_by_decision(arc.tail("operator", scan)) if found else {}
        size = arc.records
    rows = [_decision_json(r, ops.get(r.index, [])) for r in reversed(found)]
    result: dict[str, Any] = redact({"decisions": rows, "size": size})
    return result


def _near(arc: Archive, index: int, kind: str) -> Iterator[Record]:
    for rec in arc.iter_records(max(0, index - _NEAR), kind=kind):
        if rec.index > index + _NEAR:
            return
        yield rec


def _gops_of(arc: Archive, index: int, camera: str, gops: set[int]) -> list[dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for rec in _near(arc, index, "verdict"):
        found = _verdict_of(rec)
        if found is None or found[0] != camera or found[1] not in gops:
            continue
        p = rec.payload
        out[found[1]] = {
            "gop": found[1],
            "verdict": found[2],
            "reasons": found[3],
            "first_frame": p.get("first_frame"),
            "last_frame": p.get("last_frame"),
            "index": rec.index,
        }
    return [out[g] for g in sorted(out)]


def _findings(
    arc: Archive, index: int, camera: str, frames: list[tuple[int, int]]
) -> list[dict[str, Any]]:
    """The verifier's archived disagreements on this camera within the decision's GOPs."""
    out = []
    for rec in _near(arc, index, "event"):
        p = rec.payload
        if p.get("event") != "verifier_disagree" or p.get("camera_id") != camera:
            continue
        frame = p.get("frame_index")
        if isinstance(frame, int) and any(a <= frame <= b for a, b in frames):
            out.append(
                {"frame_index": frame, "agree": bool(p.get("agree")), "reasons": p.get("reasons")}
            )
    return out


def _operator_of(arc: Archive, index: int, scan: int) -> list[dict[str, Any]]:
    out = []
    for n, rec in enumerate(arc.iter_records(index, kind="operator")):
        if n >= scan:
            break
        if rec.payload.get("decision_index") == index:
            out.append(_operator_json(rec))
    return out


def decision(
    index: Annotated[int, Path(ge=0, le=_MAX_INDEX)],
    state: Annotated[ApiState, Depends(state_of)],
) -> dict[str, Any]:
    """One decision's evidence: its GOPs' verdicts, the verifier's findings, what operators
    did, and its inclusion proof in the signed log (checked before it is shown)."""
    with open_archive(state.ctx.data_dir) as arc:
        rec = next(arc.iter_records(index), None) if index < arc.records else None
        if rec is None or rec.kind != "decision":
            raise HTTPException(404, f"expected a decision record at index {index}, got none")
        camera = str(rec.payload.get("camera_id"))
        gops = _gops_of(arc, index, camera, set(rec.payload.get("gops", ())))
        frames = [(g["first_frame"], g["last_frame"]) for g in gops if g["first_frame"] is not None]
        if not frames:
            at = int(rec.payload.get("frame_index", 0))
            frames = [(at, at)]
        ops = _operator_of(arc, index, min(state.ctx.settings.scan_limit, 5000))
        proof = inclusion(arc, index, None)
        out = {
            "decision": _decision_json(rec, ops),
            "gops": gops,
            "findings": _findings(arc, index, camera, frames),
            "operator": ops,
            "proof": {
                "verified": True,
                "index": index,
                "tree_size": proof["tree_size"],
                "root": proof["root"],
                "checkpoint": proof["checkpoint"] is not None,
            },
        }
    result: dict[str, Any] = redact(out)
    return result


# ---- the system --------------------------------------------------------------------------


class TransitionRow(BaseModel):
    """One row of the System screen's degradation transitions: an archived ``state`` record.

    ``camera`` is the camera whose own state moved, or None for the site's state (ADR 0040:
    a site record has no ``camera`` key, and one written before ADR 0040 is the site's), so
    a reader that ignores it sees exactly the rows it saw before. The JSON keys are the
    record's (``from``, ``to``).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, populate_by_name=True, allow_inf_nan=False
    )
    index: int
    at: float
    from_state: str | None = Field(alias="from")
    to_state: str | None = Field(alias="to")
    trigger: str | None
    detail: str | None
    camera: str | None = None

    @classmethod
    def of(cls, rec: Record) -> TransitionRow:
        """The row of ``rec``; a value of an unexpected type is shown as its text."""
        p = rec.payload
        at = p.get("at", rec.at)
        text = {k: None if p.get(k) is None else str(p[k]) for k in _TRANSITION_TEXT}
        return cls.model_validate({"index": rec.index, "at": _time(at, rec.at), **text})

    def to_json(self) -> dict[str, Any]:
        """The row as the screen reads it: ``index, at, from, to, trigger, detail, camera``."""
        return self.model_dump(by_alias=True)


_TRANSITION_TEXT = ("from", "to", "trigger", "detail", "camera")


def _time(value: object, fallback: float) -> float:
    """``value`` as a finite time, or ``fallback`` (the record's own) when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return fallback
    try:
        when = float(value)
    except OverflowError:  # an int too large for a float
        return fallback
    return when if math.isfinite(when) else fallback


def _system_records(arc: Archive) -> dict[str, Any]:
    model = arc.tail("model", 1)
    signed = arc.checkpoints()[-10:]
    return {
        "transitions": [TransitionRow.of(r).to_json() for r in arc.tail("state", 100)],
        "checkpoints": [{"size": n, "at": at, "note": note} for n, at, note in signed],
        "placement": [r.payload for r in arc.tail("placement", 16)],
        "model": model[0].payload if model else None,
    }


def system(state: Annotated[ApiState, Depends(state_of)]) -> dict[str, Any]:
    """Degradation transitions, placement, latest checkpoints, blocks and latencies.

    Each of the newest 100 transitions, oldest first, is ``{index, at, from, to, trigger,
    detail, camera}``: ``camera`` names the camera whose own state moved, null for the
    site's (ADR 0040)."""
    rs = run_state(state)
    with _archive(state) as arc:
        found = _system_records(arc) if arc is not None else {}
    out = {
        "site": rs.site,
        "state": rs.state,
        "stale": state.ctx.clock.wall() - rs.at > state.ctx.settings.stale_after_s,
        "at": rs.at,
        "started_at": rs.started_at,
        "release": rs.release,
        "runtime": rs.runtime,
        "transitions": found.get("transitions", []),
        "checkpoints": found.get("checkpoints", []),
        "placement": found.get("placement", []),
        "model": found.get("model"),
        "blocks": [{"name": b.name, "alive": b.alive, "restarts": b.restarts} for b in rs.blocks],
        "queue_depths": rs.queue_depths,
        "archive": {"records": rs.archive_records, "head": rs.archive_head},
        "cameras": [{"id": c.id, "latency_s": list(c.latency_s)} for c in rs.cameras],
    }
    result: dict[str, Any] = redact(out)
    return result


ENDPOINTS: dict[str, Callable[..., Any]] = {
    "GET /ui/login": login_page,
    "GET /ui/static/{asset}": static_asset,
    **{f"GET {p.path}": _page_endpoint(p.slug) for p in PAGES},
    "GET /ui/api/overview": overview,
    "GET /ui/api/decisions": decisions,
    "GET /ui/api/decisions/{index}": decision,
    "GET /ui/api/system": system,
}
