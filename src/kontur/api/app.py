"""The API app: built from the route table, one guard per route (issue 11 §2-§8).

:func:`create_app` registers exactly the routes of :data:`kontur.api.rbac.ROUTES`, each with
a :class:`~kontur.api.guard.Guard` built from its row as its first dependency; a table row
without an endpoint, or an endpoint without a row, is a ``RuntimeError`` at build time. The
OpenAPI schema is served at ``GET /openapi.json`` behind ``status:read`` (FastAPI's own
unauthenticated schema and docs routes are off). The only unauthenticated routes are
``GET /healthz`` and the console's sign-in page and files (``/ui/login``, ``/ui/static/…``,
no data); ``POST /auth/login`` authenticates with the body's name and password.

While the app runs, a background task sends the user store's queued audit events (changes
made with ``kontur user`` while the archive was busy) to the supervisor every
``audit_drain_s`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from kontur import __version__
from kontur.api import (
    _routes_archive,
    _routes_auth,
    _routes_console,
    _routes_detect,
    _routes_exports,
    _routes_incidents,
    _routes_media,
    _routes_run,
    _routes_users,
)
from kontur.api._http import install_error_handlers
from kontur.api.context import ApiContext, ApiSettings
from kontur.api.errors import ApiError
from kontur.api.guard import ApiState, Guard, no_body
from kontur.api.outbox import Outbox, PipeOutbox
from kontur.api.rbac import ROUTES, RouteRule

__all__ = ["ApiContext", "ApiSettings", "Outbox", "PipeOutbox", "create_app"]

log = logging.getLogger("kontur.api")

_BODIES: dict[str, type[BaseModel]] = {
    "POST /auth/login": _routes_auth.LoginBody,
    "POST /exports": _routes_exports.ExportBody,
    "POST /operator/requests/{request_id}": _routes_run.VerdictBody,
    "POST /users": _routes_users.NewUserBody,
    **_routes_incidents.BODIES,
    **_routes_detect.BODIES,
}


def openapi(request: Request) -> JSONResponse:
    """The OpenAPI schema of this API."""
    return JSONResponse(request.app.openapi())


def _endpoints() -> dict[str, Callable[..., Any]]:
    out: dict[str, Callable[..., Any]] = {"GET /openapi.json": openapi}
    modules = (_routes_auth, _routes_archive, _routes_run, _routes_media, _routes_exports)
    for module in (*modules, _routes_users, _routes_console, _routes_incidents, _routes_detect):
        out.update(module.ENDPOINTS)
    table = {r.key for r in ROUTES}
    if set(out) != table:
        raise RuntimeError(
            f"expected one endpoint per route of the table, got extra {sorted(set(out) - table)} "
            f"and missing {sorted(table - set(out))}"
        )
    return out


def _body_schema(key: str) -> dict[str, Any] | None:
    model = _BODIES.get(key)
    if model is None:
        return None
    schema = {"schema": model.model_json_schema()}
    return {"requestBody": {"required": True, "content": {"application/json": schema}}}


def _dependencies(rule: RouteRule, state: ApiState) -> list[Any]:
    """The guard first; a POST without a body model also refuses any body."""
    deps = [Depends(Guard(rule, state))]
    if rule.method == "POST" and rule.key not in _BODIES:
        deps.append(Depends(no_body))
    return deps


def create_app(ctx: ApiContext) -> FastAPI:
    """The API over ``ctx``: its data dir, users, outbox to the supervisor, clock, settings."""
    state = ApiState.build(ctx)
    app = FastAPI(
        title="kontur",
        version=__version__,
        description="The authenticated API of a kontur site (issue 11).",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.kontur = state
    app.state.kontur_detect = _routes_detect.DetectState.build(ctx)
    endpoints = _endpoints()
    for rule in ROUTES:
        app.add_api_route(
            rule.path,
            endpoints[rule.key],
            methods=[rule.method],
            status_code=rule.success,
            dependencies=_dependencies(rule, state),
            openapi_extra=_body_schema(rule.key),
            name=rule.key,
        )
    install_error_handlers(app)
    app.add_middleware(_routes_console.LoginRedirect)  # a browser's 401 on a page: sign in
    app.add_middleware(
        _routes_detect.BodyLimits,  # RequestLimits, with room for an image on /v1/detect
        max_body_bytes=ctx.settings.max_body_bytes,
        image_body_bytes=_routes_detect.image_body_bytes(ctx.extraction),
    )
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ApiState = app.state.kontur
    task = asyncio.create_task(_drain_forever(state))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await run_in_threadpool(drain_audit, state)


async def _drain_forever(state: ApiState) -> None:
    while True:
        await run_in_threadpool(drain_audit, state)
        await asyncio.sleep(state.ctx.settings.audit_drain_s)


def drain_audit(state: ApiState) -> int:
    """Send the user store's queued audit events to the supervisor; how many went."""
    try:
        return state.ctx.users.drain_audit(state.ctx.outbox.send)
    except ApiError as exc:
        log.warning("queued audit events stay queued: %s", exc)
        return 0
