"""Routes that show pictures: a camera's live snapshot, a decision's frame, crop and clip.

Each reads only the archive (read-only) and the segment store, never the worker's frame ring:
the API holds none of the worker's channels (ADR 0022). So "live" is the newest *archived*
GOP of the camera: a segment is sealed when its GOP ends, and the snapshot is that GOP's last
picture (it lags the camera by one GOP; ADR 0028). A decision's frame is found through the
verdict record of its GOP (``first_frame`` .. ``last_frame``), and its box is the worker's
claim, drawn for a person to judge (:mod:`kontur.evidence.frames`).

Permissions (:mod:`kontur.api.rbac`): the live snapshot and a pending request's snapshot need
``video:live``; a decision's frame and clip from the archive ``video:archive``; the crop of the
person in the box ``biometrics:read``. Every picture handed out is an audit record first;
every refusal after the guard (no such record, no segment) is audited too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from kontur.api._routes_run import RequestId, run_state
from kontur.api.archive_view import open_archive
from kontur.api.guard import ApiState, principal_of, remote_of, state_of
from kontur.api.users import Principal
from kontur.archive import Archive, Record, SegmentCorrupt, SegmentMissing, SegmentStore
from kontur.evidence.errors import ExportError
from kontur.evidence.frames import MAX_FRAMES, Box, crop, decode_frame, jpeg, segments_clip

__all__ = ["ENDPOINTS"]

_MAX_INDEX = 2**53
_CAMERA = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_CHUNK = 256
_NEAR = 2048
"""How many verdict records either side of a decision are searched for its GOPs."""
_MAX_CLIP_GOPS = 16
_CACHE = 64
#: A live snapshot refreshed by a console is one audit record per user, camera and minute.
LIVE_VIEW_WINDOW_S = 60.0
CameraId = Annotated[str, PathParam(pattern=_CAMERA, max_length=64)]
Index = Annotated[int, PathParam(ge=0, le=_MAX_INDEX)]


class _Refused(Exception):
    """A picture that cannot be given: HTTP status and one line."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _find_back(
    arc: Archive, kind: str, accept: Callable[[Record], bool], stop: int | None, budget: int
) -> Record | None:
    """The newest record of ``kind`` below ``stop`` that ``accept`` takes, reading at most
    ``budget`` records of that kind."""
    while budget > 0:
        chunk = arc.tail(kind, min(_CHUNK, budget), stop)
        for rec in reversed(chunk):
            if accept(rec):
                return rec
        if len(chunk) < min(_CHUNK, budget):
            return None
        budget -= len(chunk)
        stop = chunk[0].index
    return None


def _find_near(
    arc: Archive, kind: str, accept: Callable[[Record], bool], index: int
) -> Record | None:
    """A record of ``kind`` that ``accept`` takes, searched after ``index`` then before it."""
    for n, rec in enumerate(arc.iter_records(index, kind=kind)):
        if n >= _NEAR:
            break
        if accept(rec):
            return rec
    return _find_back(arc, kind, accept, index, _NEAR)


def _decision(arc: Archive, index: int) -> dict[str, Any]:
    rec = next(arc.iter_records(index), None) if index < arc.records else None
    if rec is None or rec.kind != "decision" or rec.index != index:
        raise _Refused(404, f"expected a decision record at index {index}, got none")
    return rec.payload


def _gop_of(arc: Archive, index: int, camera: str, frame: int) -> tuple[str, int]:
    """The segment of the GOP holding ``frame`` of ``camera``, and the frame's position."""

    def holds(rec: Record) -> bool:
        p = rec.payload
        v = p.get("verdict") or {}
        first, last = p.get("first_frame", -1), p.get("last_frame", -1)
        return bool(v.get("camera_id") == camera and first <= frame <= last)

    rec = _find_near(arc, "verdict", holds, index)
    if rec is None:
        raise _Refused(404, f"expected the GOP of {camera} frame {frame} in the archive, got none")
    return str(rec.payload["segment_sha256"]), frame - int(rec.payload["first_frame"])


def _read(store: SegmentStore, sha256: str) -> bytes:
    try:
        return store.read(sha256)
    except SegmentMissing:
        raise _Refused(404, f"expected stored segment {sha256[:12]}…, got none") from None
    except SegmentCorrupt:
        raise _Refused(
            409, f"expected segment {sha256[:12]}… to match its hash, got a mismatch"
        ) from None


@functools.lru_cache(maxsize=_CACHE)
def _picture(data_dir: Path, sha256: str, position: int, box: Box | None, cut: bool) -> bytes:
    """A JPEG of one archived frame (segments are write-once, so keyed by hash it is exact)."""
    image = decode_frame(_read(SegmentStore(data_dir), sha256), position)
    if cut:
        assert box is not None
        return jpeg(crop(image, box))
    return jpeg(image, box)


def _box(decision: dict[str, Any]) -> Box | None:
    box = decision.get("box")
    if not isinstance(box, list) or len(box) != 4:
        return None
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def _decision_picture(state: ApiState, index: int, cut: bool) -> tuple[bytes, str]:
    with open_archive(state.ctx.data_dir) as arc:
        d = _decision(arc, index)
        box = _box(d)
        if cut and box is None:
            raise _Refused(404, f"expected decision {index} to name a track's box, got none")
        sha, pos = _gop_of(arc, index, str(d["camera_id"]), int(d["frame_index"]))
    return _picture(state.ctx.data_dir, sha, pos, box, cut), f"decision {index}"


def _live_picture(state: ApiState, camera: str) -> tuple[bytes, str]:
    with open_archive(state.ctx.data_dir) as arc:

        def newest(rec: Record) -> bool:
            p = rec.payload
            return bool(p.get("camera_id") == camera and not p.get("end_of_stream"))

        rec = _find_back(arc, "segment", newest, None, state.ctx.settings.scan_limit)
    if rec is None:
        raise _Refused(404, f"expected an archived segment of camera {camera}, got none")
    sha = str(rec.payload["sha256"])
    return _picture(state.ctx.data_dir, sha, MAX_FRAMES - 1, None, False), f"camera {camera}"


def _decision_clip(state: ApiState, index: int) -> tuple[bytes, str]:
    with open_archive(state.ctx.data_dir) as arc:
        d = _decision(arc, index)
        camera, gops = str(d["camera_id"]), [int(g) for g in d.get("gops", [])][-_MAX_CLIP_GOPS:]
        shas = []
        for g in gops:

            def is_gop(rec: Record, g: int = g) -> bool:
                v = rec.payload.get("verdict") or {}
                return bool(v.get("camera_id") == camera and v.get("gop_index") == g)

            rec = _find_near(arc, "verdict", is_gop, index)
            if rec is not None:
                shas.append(str(rec.payload["segment_sha256"]))
    if not shas:
        raise _Refused(404, f"expected archived GOPs of decision {index}, got none")
    store = SegmentStore(state.ctx.data_dir)
    return segments_clip([_read(store, s) for s in shas]), f"decision {index} clip"


def _serve(
    make: Callable[[], tuple[bytes, str]],
    what: str,
    permission: str,
    media_type: str,
    request: Request,
    principal: Principal,
    state: ApiState,
    *,
    view_window_s: float | None = None,
) -> Response:
    """Make the picture, audit the access (or the refusal), then hand it out.

    ``view_window_s``: a refreshed view (the live snapshot), audited once per window per
    user and camera (:meth:`~kontur.api.guard.Auditor.record_view`)."""
    remote = remote_of(request)
    try:
        data, target = make()
    except (_Refused, ExportError) as exc:
        status, detail = (exc.status, exc.detail) if isinstance(exc, _Refused) else (409, str(exc))
        state.auditor.record(
            principal.name,
            permission,
            "refused",
            target=what,
            detail=detail,
            remote=remote,
            required=False,
        )
        raise HTTPException(status, detail) from None
    if view_window_s is not None:
        state.auditor.record_view(
            principal.name, permission, target, remote=remote, window_s=view_window_s
        )
    else:
        state.auditor.record(
            principal.name, permission, "ok", target=target, detail=f"{len(data)} bytes",
            remote=remote,
        )  # fmt: skip
    return Response(data, media_type=media_type, headers={"Cache-Control": "no-store"})


def camera_snapshot(
    camera_id: CameraId,
    request: Request,
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
) -> Response:
    """The newest archived picture of a camera (JPEG; it lags the camera by one GOP)."""
    return _serve(
        lambda: _live_picture(state, camera_id),
        f"camera {camera_id}",
        "video:live",
        "image/jpeg",
        request,
        principal,
        state,
        view_window_s=LIVE_VIEW_WINDOW_S,
    )


def request_snapshot(
    request_id: RequestId,
    request: Request,
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
) -> Response:
    """A pending OPERATOR request's frame with the track's box (JPEG)."""
    pending = next((r for r in run_state(state).pending if r.id == request_id), None)
    if pending is None:
        raise HTTPException(404, f"expected a pending request, got {request_id}")
    index = pending.decision_index
    return _serve(
        lambda: _decision_picture(state, index, cut=False),
        request_id,
        "video:live",
        "image/jpeg",
        request,
        principal,
        state,
    )


def event_snapshot(
    index: Index,
    request: Request,
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
) -> Response:
    """A decision's frame from the archive with the track's box (JPEG)."""
    return _serve(
        lambda: _decision_picture(state, index, cut=False),
        f"decision {index}",
        "video:archive",
        "image/jpeg",
        request,
        principal,
        state,
    )


def event_crop(
    index: Index,
    request: Request,
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
) -> Response:
    """The crop of a decision's box: the person, so ``biometrics:read`` (JPEG)."""
    return _serve(
        lambda: _decision_picture(state, index, cut=True),
        f"decision {index} crop",
        "biometrics:read",
        "image/jpeg",
        request,
        principal,
        state,
    )


def event_clip(
    index: Index,
    request: Request,
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
) -> Response:
    """A decision's GOPs as one MP4 from the archive, nothing re-encoded."""
    return _serve(
        lambda: _decision_clip(state, index),
        f"decision {index} clip",
        "video:archive",
        "video/mp4",
        request,
        principal,
        state,
    )


ENDPOINTS: dict[str, Callable[..., Any]] = {
    "GET /cameras/{camera_id}/snapshot": camera_snapshot,
    "GET /operator/requests/{request_id}/snapshot": request_snapshot,
    "GET /events/{index}/snapshot": event_snapshot,
    "GET /events/{index}/crop": event_crop,
    "GET /events/{index}/clip": event_clip,
}
