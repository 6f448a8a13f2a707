"""Routes: user administration (users:admin), each change an audit record (issue 11 §5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

from fastapi import Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from kontur.api.guard import ApiState, JsonBody, principal_of, remote_of, state_of
from kontur.api.rbac import ROLES
from kontur.api.users import MAX_PASSWORD, MIN_PASSWORD, NAME_PATTERN, Principal, generate_password

__all__ = ["ENDPOINTS", "NewUserBody"]

RoleName = Literal["viewer", "operator", "investigator", "auditor", "admin", "integrator"]
assert set(get_args(RoleName)) == set(ROLES), "RoleName must list exactly the roles of rbac.ROLES"

UserName = Annotated[str, Path(pattern=NAME_PATTERN.pattern, max_length=64)]


class NewUserBody(BaseModel):
    """``POST /users``: a name, one or more roles, and a password (else one is generated)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    name: str = Field(pattern=NAME_PATTERN.pattern, max_length=64)
    roles: list[RoleName] = Field(min_length=1, max_length=len(ROLES))
    password: str | None = Field(default=None, min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)


def list_users(state: Annotated[ApiState, Depends(state_of)]) -> dict[str, Any]:
    """Every user with roles, state and token names (never a hash)."""
    now = state.ctx.clock.wall()
    return {"users": [u.to_json(now) for u in state.ctx.users.list_users()]}


def add_user(
    request: Request,
    body: Annotated[NewUserBody, Depends(JsonBody(NewUserBody))],
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
) -> dict[str, Any]:
    """Add a user; a generated password is in the answer, once."""
    password = body.password or generate_password()
    user = state.ctx.users.add_user(body.name, list(body.roles), password)
    state.auditor.record_change(
        state.auditor.event(
            principal.name,
            "users:admin",
            "ok",
            target=f"user {user.name}",
            detail=f"added with roles {', '.join(user.roles)}",
            remote=remote_of(request),
        )
    )
    out = user.to_json(state.ctx.clock.wall())
    if body.password is None:
        out["password"] = password
    return out


def disable_user(
    name: UserName,
    request: Request,
    principal: Annotated[Principal, Depends(principal_of)],
    state: Annotated[ApiState, Depends(state_of)],
) -> dict[str, Any]:
    """Disable a user: their sessions end and their tokens stop working at once."""
    user = state.ctx.users.disable_user(name)
    state.auditor.record_change(
        state.auditor.event(
            principal.name,
            "users:admin",
            "ok",
            target=f"user {user.name}",
            detail="disabled",
            remote=remote_of(request),
        )
    )
    return user.to_json(state.ctx.clock.wall())


ENDPOINTS: dict[str, Callable[..., Any]] = {
    "GET /users": list_users,
    "POST /users": add_user,
    "POST /users/{name}/disable": disable_user,
}
