"""Routes: the inference query API for integrators, behind the extraction defence (ADR 0031).

``POST /v1/detect`` (``detect:query``) takes ``{"image": "<base64 JPEG or PNG>"}`` and
answers the detections. Its steps, after the route's guard (authentication, the principal's
token bucket, the permission) and the strict JSON body:

1. the defence admits the principal: blocked since an alarm is 403, throttled is 429 with
   ``Retry-After`` (:meth:`~kontur.extraction.defence.ExtractionDefence.admit`);
2. the image is decoded header-first within its bounds (413 too large, 422 malformed);
3. the daily quota (429 with ``Retry-After`` until the UTC day turns), then PRADA on the
   picture's feature; an alarm is an ``audit`` record (``detect:extraction_alarm``, refused,
   with the test, its figure and the query number), the policy applies at once and the
   alarming query is refused too;
4. the picture runs through the sandboxed query worker (never the model in this process);
   no worker is 503. Confidences are rounded to 3 digits and boxes to 0.1 px: an answer
   carries no more precision than an integrator needs (less for an extraction to use).

``POST /v1/detect/blocks/{name}/lift`` (``users:admin``) lifts a principal's block; its
PRADA stream starts afresh. Blocks persist in ``DATA_DIR/extraction/blocks.json`` (0600), so
a restart of the API does not lift them. Queries are audited once a minute per principal;
every refusal but a repeated over-quota one is audited.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from kontur.api._http import RequestLimits
from kontur.api.context import ApiContext
from kontur.api.guard import ApiState, JsonBody, principal_of, remote_of, state_of
from kontur.api.ratelimit import retry_after
from kontur.api.users import NAME_PATTERN, Principal
from kontur.extraction.client import QueryDetector
from kontur.extraction.defence import (
    Admission,
    Block,
    ExtractionDefence,
    ExtractionSettings,
    Verdict,
)
from kontur.extraction.errors import ImageRejected, QueryWorkerError
from kontur.extraction.images import MAX_IMAGE_BYTES, decode_image, query_features

__all__ = ["BODIES", "DETECT_PATH", "ENDPOINTS", "BodyLimits", "DetectBody", "DetectState"]

log = logging.getLogger("kontur.api")

DETECT_PATH = "/v1/detect"
TARGET = f"POST {DETECT_PATH}"
#: The most base64 characters an image field may hold (an 8 MiB image; the configured
#: ``extraction.image.max_bytes`` is enforced on the decoded bytes).
MAX_IMAGE_B64 = 4 * math.ceil(MAX_IMAGE_BYTES / 3)
_QUERY_AUDIT_WINDOW_S = 60.0
BLOCKS_FILE = Path("extraction") / "blocks.json"
UserName = Annotated[str, PathParam(pattern=NAME_PATTERN.pattern, max_length=64)]


class DetectBody(BaseModel):
    """``POST /v1/detect``: one JPEG or PNG image, base64-encoded."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    image: str = Field(min_length=4, max_length=MAX_IMAGE_B64)


def image_body_bytes(settings: ExtractionSettings) -> int:
    """The body bound of the image route: the image in base64 and room for the JSON around it."""
    return 4 * math.ceil(settings.image.max_bytes / 3) + 1024


class BodyLimits:
    """:class:`~kontur.api._http.RequestLimits` with a larger bound on ``POST /v1/detect``."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, image_body_bytes: int) -> None:
        self._default = RequestLimits(app, max_body_bytes)
        self._image = RequestLimits(app, max(max_body_bytes, image_body_bytes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        image = scope["type"] == "http" and scope.get("path") == DETECT_PATH
        await (self._image if image else self._default)(scope, receive, send)


@dataclass(frozen=True, slots=True)
class DetectState:
    """The query path's parts: the defence, the detector and where blocks persist."""

    defence: ExtractionDefence
    detector: QueryDetector | None
    blocks_path: Path

    @classmethod
    def build(cls, ctx: ApiContext) -> DetectState:
        """The defence on ``ctx``'s clock, with the blocks persisted in its data dir."""
        path = ctx.data_dir / BLOCKS_FILE
        blocks = _load_blocks(path)
        return cls(ExtractionDefence(ctx.extraction, ctx.clock, blocks), ctx.detector, path)

    def persist(self) -> None:
        """Write the blocks in force (atomically, 0600)."""
        self.blocks_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = json.dumps([b.to_json() for b in self.defence.blocks()], indent=1).encode()
        fd, tmp = tempfile.mkstemp(dir=self.blocks_path.parent, prefix=".blocks-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.blocks_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _load_blocks(path: Path) -> tuple[Block, ...]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ()
    try:
        rows = json.loads(raw)
        if not isinstance(rows, list):
            raise ValueError(f"expected a list, got {type(rows).__name__}")
        return tuple(Block.from_json(r) for r in rows)
    except ValueError as exc:
        log.error(
            "extraction blocks %s: expected a list of blocks, got %s; starting without", path, exc
        )
        return ()


def detect_state(request: Request) -> DetectState:
    """The app's :class:`DetectState` (a dependency)."""
    ds: DetectState = request.app.state.kontur_detect
    return ds


def _refuse(state: ApiState, name: str, remote: str, adm: Admission, action: str) -> None:
    if adm.audit:
        prada = state.ctx.extraction.prada
        detail = adm.reason if adm.prada is None else adm.prada.reason(prada)
        state.auditor.record(
            name, action, "refused", target=TARGET, remote=remote, detail=detail, required=False
        )
    status = (
        403
        if adm.verdict in (Verdict.BLOCKED, Verdict.ALARM) and adm.retry_after_s is None
        else 429
    )
    headers = None if adm.retry_after_s is None else {"Retry-After": retry_after(adm.retry_after_s)}
    raise HTTPException(status, adm.reason, headers=headers)


def _picture(body: DetectBody, ds: DetectState) -> Any:
    try:
        data = base64.b64decode(body.image, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(422, "body.image: expected base64, got other characters") from None
    try:
        return decode_image(data, ds.defence.settings.image)
    except ImageRejected as exc:
        raise HTTPException(exc.status, str(exc)) from None


def detect(
    request: Request,
    body: Annotated[DetectBody, Depends(JsonBody(DetectBody))],
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
    ds: Annotated[DetectState, Depends(detect_state)],
) -> dict[str, Any]:
    """Detections on one image, if the extraction defence lets this principal have them."""
    name, remote = principal.name, remote_of(request)
    adm = ds.defence.admit(name)
    if adm.verdict is not Verdict.ANSWER:
        _refuse(state, name, remote, adm, "detect:query")
    picture = _picture(body, ds)
    adm = ds.defence.assess(name, query_features(picture))
    if adm.verdict is Verdict.ALARM:
        ds.persist()
        _refuse(state, name, remote, adm, "detect:extraction_alarm")
    elif adm.verdict is not Verdict.ANSWER:
        _refuse(state, name, remote, adm, "detect:query")
    state.auditor.record_view(
        name, "detect:query", TARGET, remote=remote, window_s=_QUERY_AUDIT_WINDOW_S
    )
    if ds.detector is None:
        raise HTTPException(503, "expected a model for the query API, got none configured")
    try:
        answer = ds.detector.detect(picture, ds.defence.settings.infer_timeout_s)
    except QueryWorkerError as exc:
        log.error("detect for %s: %s", name, exc)
        raise HTTPException(
            503, "expected the query worker to answer, got none (see the API's log)"
        ) from None
    height, width = picture.shape[:2]
    return {
        "model": answer.model_id,
        "width": width,
        "height": height,
        "detections": [
            {
                "class": answer.class_names[d.class_id],
                "class_id": d.class_id,
                "confidence": round(d.confidence, 3),
                "box": [round(v, 1) for v in d.box],
            }
            for d in answer.detections
        ],
    }


def lift_block(
    name: UserName,
    request: Request,
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
    ds: Annotated[DetectState, Depends(detect_state)],
) -> dict[str, Any]:
    """Lift ``name``'s block (an admin's decision, audited before it is made)."""
    state.auditor.record(
        principal.name, "detect:lift", "ok", target=f"principal {name}", remote=remote_of(request),
        detail="lift the extraction block, if any",
    )  # fmt: skip
    block = ds.defence.lift(name)
    if block is not None:
        ds.persist()
    return {
        "principal": name,
        "lifted": block is not None,
        "block": None if block is None else block.to_json(),
    }


ENDPOINTS: dict[str, Callable[..., Any]] = {
    f"POST {DETECT_PATH}": detect,
    "POST /v1/detect/blocks/{name}/lift": lift_block,
}

BODIES: dict[str, type[BaseModel]] = {f"POST {DETECT_PATH}": DetectBody}
