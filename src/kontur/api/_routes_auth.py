"""Routes: liveness, login, logout, who am I (issue 11 §3).

Login answers the same line for every refusal (unknown name, wrong password, locked or
disabled account), so it tells a guesser nothing; the audit record says which it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kontur.api.guard import (
    SESSION_COOKIE,
    ApiState,
    JsonBody,
    is_loopback,
    principal_of,
    remote_of,
    state_of,
)
from kontur.api.ratelimit import retry_after
from kontur.api.users import MAX_PASSWORD, NAME_PATTERN, LoginRefused, Principal, Session

__all__ = ["ENDPOINTS", "LoginBody"]

_REFUSED = "expected a valid name and password, got a refused login"


class LoginBody(BaseModel):
    """``POST /auth/login``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    name: str = Field(pattern=NAME_PATTERN.pattern, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


def healthz() -> dict[str, bool]:
    """Liveness only: reveals nothing else."""
    return {"ok": True}


def login(
    request: Request,
    body: Annotated[LoginBody, Depends(JsonBody(LoginBody))],
    state: Annotated[ApiState, Depends(state_of)],
) -> JSONResponse:
    """Exchange a name and password for a session cookie and its CSRF token."""
    remote = remote_of(request)
    _throttle(state, body.name, remote)
    s = state.ctx.settings
    try:
        session = state.ctx.users.login(
            body.name,
            body.password,
            max_failed=s.max_failed_logins,
            lockout_s=s.lockout_s,
            ttl_s=s.session_ttl_s,
        )
    except LoginRefused as exc:
        _failed(state, exc, remote)
        raise HTTPException(401, _REFUSED) from None
    state.name_throttle.clear(body.name)
    state.auditor.record(body.name, "login", "ok", target="session", remote=remote)
    return _session_response(request, session, s.cookie_secure)


def _throttle(state: ApiState, name: str, remote: str) -> None:
    for throttle, key in ((state.name_throttle, name), (state.remote_throttle, remote)):
        wait = throttle.wait(key)
        if wait is not None:
            state.auditor.record(
                name,
                "login_throttled",
                "refused",
                remote=remote,
                required=False,
                detail=f"failed logins of {'this name' if key == name else 'this remote'}",
            )
            raise HTTPException(
                429,
                "expected fewer failed logins, got too many; wait before trying again",
                headers={"Retry-After": retry_after(wait)},
            )


def _failed(state: ApiState, exc: LoginRefused, remote: str) -> None:
    state.name_throttle.failed(exc.actor)
    state.remote_throttle.failed(remote)
    audit = state.auditor.record
    audit(exc.actor, "login_failed", "refused", detail=str(exc), remote=remote, required=False)
    if exc.lockout:
        audit(exc.actor, "lockout", "refused", detail=str(exc), remote=remote, required=False)


def _session_response(request: Request, session: Session, secure: bool | None) -> JSONResponse:
    p = session.principal
    response = JSONResponse(
        {
            "name": p.name,
            "roles": list(p.roles),
            "permissions": sorted(p.permissions),
            "csrf_token": session.csrf,
            "expires": session.expires,
        }
    )
    if secure is None:  # Secure unless plain http on loopback (where browsers drop it)
        server = request.scope.get("server")
        plain_loopback = request.url.scheme == "http" and is_loopback(server[0] if server else None)
        secure = not plain_loopback
    ttl = max(1, int(state_of(request).ctx.settings.session_ttl_s))
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=ttl,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    return response


def logout(
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
    request: Request,
) -> JSONResponse:
    """End this session (a bearer token stays valid: revoke it with ``kontur user``)."""
    revoked = False
    if principal.via == "session":
        revoked = state.ctx.users.end_session(principal.credential)
        state.auditor.record(
            principal.name,
            "logout",
            "ok",
            target="session",
            remote=remote_of(request),
            required=False,
        )
    response = JSONResponse({"revoked": revoked})
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def me(principal: Annotated[Principal, Depends(principal_of)]) -> dict[str, Any]:
    """Who the caller is and what they may do."""
    return {
        "name": principal.name,
        "roles": list(principal.roles),
        "permissions": sorted(principal.permissions),
        "via": principal.via,
    }


ENDPOINTS: dict[str, Callable[..., Any]] = {
    "GET /healthz": healthz,
    "POST /auth/login": login,
    "POST /auth/logout": logout,
    "GET /auth/me": me,
}
