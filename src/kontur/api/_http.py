"""HTTP plumbing: the body limit, hardening headers, and one-line errors for everything.

Every error the API answers is ``{"detail": "<one line: expected X, got Y>"}`` with a 4xx
status (or 503 when a part of the perimeter it needs is missing). A 500 exists only as the
last resort for a bug: a generic line, the traceback in the log, and an audit record.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kontur.api.errors import (
    OutboxClosed,
    Unauthenticated,
    UserExists,
    UserInputError,
    UserUnknown,
)
from kontur.api.guard import state_of
from kontur.archive import ArchiveError, ArchiveInputError, ArchiveNotFound
from kontur.errors import KonturError
from kontur.redact import redact_url

__all__ = ["RequestLimits", "describe_validation", "install_error_handlers", "one_line"]

log = logging.getLogger("kontur.api")

_HARDENING = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
)

#: Domain errors → status. Anything else of kontur's is a 400 with its message.
_STATUS: tuple[tuple[type[KonturError], int], ...] = (
    (OutboxClosed, 503),
    (Unauthenticated, 401),
    (UserExists, 409),
    (UserUnknown, 404),
    (UserInputError, 422),
    (ArchiveNotFound, 503),
    (ArchiveInputError, 422),
    (ArchiveError, 503),
)


def one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line, credentials redacted, at most ``limit`` characters."""
    return redact_url(" ".join(str(text).split()))[:limit] or "error"


def _error(status: int, detail: object, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": one_line(detail)}, status_code=status, headers=headers)


def _short(value: object) -> str:
    text = repr(value) if not isinstance(value, dict) else "an object"
    return text if len(text) <= 40 else f"{text[:37]}..."


def describe_validation(errors: Sequence[Any]) -> str:
    """The first validation error as ``where: expected X, got Y``."""
    if not errors:
        return "expected a valid request, got an invalid one"
    e = errors[0]
    where = ".".join(str(p) for p in e.get("loc", ())) or "request"
    kind, msg = e.get("type", ""), str(e.get("msg", "a valid value"))
    if kind == "missing":
        return f"{where}: expected a value, got none"
    if kind == "extra_forbidden":
        return f"{where}: expected no such field, got one"
    if kind == "json_invalid":
        why = e.get("ctx", {}).get("error") or msg.removeprefix("Invalid JSON: ")
        return f"body: expected JSON, got {why}"
    for prefix in ("Input should be ", "Value error, ", "Value should be "):
        msg = msg.removeprefix(prefix)
    if msg.startswith("String should "):
        msg = "a string that should " + msg.removeprefix("String should ")
    return f"{where}: expected {msg[:1].lower()}{msg[1:]}, got {_short(e.get('input'))}"


def install_error_handlers(app: FastAPI) -> None:
    """One-line JSON errors for HTTP errors, validation errors, kontur errors and bugs."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":
            detail = "expected a route of the API, got none at this path"
        elif exc.status_code == 405:
            detail = f"expected another method for this route, got {request.method[:10]}"
        return _error(exc.status_code, detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, describe_validation(exc.errors()))

    @app.exception_handler(KonturError)
    async def _kontur(request: Request, exc: KonturError) -> JSONResponse:
        status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)
        if isinstance(exc, ArchiveNotFound):
            return _error(status, "expected an archive in the data dir, got none yet")
        if isinstance(exc, ArchiveError) and not isinstance(exc, ArchiveInputError):
            log.error("archive: %s", exc)  # paths stay in the log, not in the answer
            return _error(status, "expected a readable archive, got an error (see the API's log)")
        return _error(status, exc)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("bug answering %s %s", request.method, request.url.path, exc_info=exc)
        principal = getattr(request.state, "principal", None)
        actor = getattr(principal, "name", "anonymous")
        await run_in_threadpool(
            state_of(request).auditor.record,
            actor,
            "error",
            "refused",
            target=f"{request.method} {request.url.path}",
            detail=f"internal error {type(exc).__name__}",
            required=False,
        )
        return _error(500, "expected to answer, got an internal error (see the API's log)")


class RequestLimits:
    """Pure ASGI middleware: refuse a body over ``max_body_bytes`` (413) before anything
    parses it, and add hardening headers (no caching, no sniffing, no framing) to every
    response."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max):
            await self._refuse(scope, receive, send, declared.decode("latin-1")[:20])
            return
        body = bytearray()
        more = True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            more = bool(msg.get("more_body", False))
            if len(body) > self.max:
                await self._refuse(scope, receive, send, f"more than {self.max}")
                return
        await self.app(scope, _replay(bytes(body), receive), _hardened(send))

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, got: str) -> None:
        response = _error(413, f"expected a body of at most {self.max} bytes, got {got}")
        await response(scope, receive, _hardened(send))


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _hardened(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {k.lower() for k, _ in message.get("headers", ())}
            extra = [(k, v) for k, v in _HARDENING if k not in names]
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return wrapped
