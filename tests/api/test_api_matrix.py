"""Issue 11 §4: the permission matrix, generated from the one table in ``kontur.api.rbac``.

For every route × every role: the route's success status when the role grants its
permission, 403 (audited, naming the permission) when not; and 401 (audited) without
credentials. The walk of the app's routes shows every route carries its guard and the only
unauthenticated ones are the liveness probe and the console's sign-in page and static files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from api_sim import (
    EXPORT_ID,
    INCIDENT_ID,
    MATRIX_REQUESTS,
    PASSWORD,
    ROLE_NAMES,
    Site,
    detect_image,
    user_of,
)
from fastapi.routing import APIRoute
from tests.console.console_routes import CONSOLE_CALLS, CONSOLE_PUBLIC

from kontur.api.guard import Guard
from kontur.api.rbac import CREDENTIALS, PUBLIC, ROLES, ROUTES, SIGNED_IN, RouteRule

Call = tuple[str, dict[str, Any] | None]

#: route → how to call it successfully as ``role`` (path, JSON body).
CALLS: dict[str, Callable[[Site, str], Call]] = {
    "POST /auth/logout": lambda s, r: ("/auth/logout", None),
    "GET /auth/me": lambda s, r: ("/auth/me", None),
    "GET /openapi.json": lambda s, r: ("/openapi.json", None),
    "GET /status": lambda s, r: ("/status", None),
    "GET /events": lambda s, r: ("/events", None),
    "GET /events/{index}/proof": lambda s, r: (f"/events/{s.archived.decision_index}/proof", None),
    "GET /audit": lambda s, r: ("/audit", None),
    "GET /segments/{sha256}": lambda s, r: (f"/segments/{s.archived.segment}", None),
    "GET /cameras/{camera_id}/snapshot": lambda s, r: ("/cameras/cam1/snapshot", None),
    "GET /operator/requests/{request_id}/snapshot": lambda s, r: (
        f"/operator/requests/{_req(r)}/snapshot",
        None,
    ),
    "GET /events/{index}/snapshot": lambda s, r: (
        f"/events/{s.archived.decision_index}/snapshot",
        None,
    ),
    "GET /events/{index}/crop": lambda s, r: (f"/events/{s.archived.decision_index}/crop", None),
    "GET /events/{index}/clip": lambda s, r: (f"/events/{s.archived.decision_index}/clip", None),
    "GET /operator/requests": lambda s, r: ("/operator/requests", None),
    "GET /operator/requests/{request_id}": lambda s, r: (f"/operator/requests/{_req(r)}", None),
    "POST /operator/requests/{request_id}": lambda s, r: (
        f"/operator/requests/{_req(r)}",
        {"confirm": True, "reason": "seen on the door camera"},
    ),
    "POST /exports": lambda s, r: ("/exports", {"camera": "cam1", "from": 1.7e9, "to": 1.7e9 + 60}),
    "GET /exports/{request_id}": lambda s, r: (f"/exports/{EXPORT_ID}", None),
    "GET /exports/{request_id}/bundle": lambda s, r: (f"/exports/{EXPORT_ID}/bundle", None),
    "GET /metrics": lambda s, r: ("/metrics", None),
    "GET /users": lambda s, r: ("/users", None),
    "POST /users": lambda s, r: ("/users", {"name": f"new-{r}", "roles": ["viewer"]}),
    "POST /users/{name}/disable": lambda s, r: (f"/users/victim-{r}/disable", None),
    # incident playbooks (issue 12 §4, ADR 0029)
    "POST /incidents/revoke-camera": lambda s, r: (
        "/incidents/revoke-camera",
        {"camera": "cam1", "reason": "certificate key leaked"},
    ),
    "POST /incidents/failover-cpu": lambda s, r: (
        "/incidents/failover-cpu",
        {"reason": "GPU driver suspected"},
    ),
    "POST /incidents/preserve": lambda s, r: (
        "/incidents/preserve",
        {"camera": "cam1", "from": 1.7e9, "to": 1.7e9 + 60, "reason": "case 42"},
    ),
    "POST /incidents/verify-archive": lambda s, r: ("/incidents/verify-archive", None),
    "GET /incidents/{request_id}": lambda s, r: (f"/incidents/{INCIDENT_ID}", None),
    # the inference query API (issue 14 §2, ADR 0031): a real PNG through the query worker
    "POST /v1/detect": lambda s, r: ("/v1/detect", {"image": detect_image()}),
    "POST /v1/detect/blocks/{name}/lift": lambda s, r: (f"/v1/detect/blocks/victim-{r}/lift", None),
}

CALLS.update(CONSOLE_CALLS)  # the console's pages and data (issue 12)

GUARDED = [r for r in ROUTES if r.access not in (PUBLIC, CREDENTIALS)]
MATRIX = [(rule, role) for rule in GUARDED for role in ROLE_NAMES]


def _req(role: str) -> str:
    return f"op-{MATRIX_REQUESTS[ROLE_NAMES.index(role)]}"


def _allowed(rule: RouteRule, role: str) -> bool:
    return rule.access == SIGNED_IN or rule.access in ROLES[role]


@pytest.fixture(scope="module", autouse=True)
def victims(site: Site) -> None:
    for role in ROLE_NAMES:
        site.users.add_user(f"victim-{role}", ["viewer"], PASSWORD)


def test_calls_cover_every_guarded_route_of_the_table() -> None:
    assert set(CALLS) == {r.key for r in GUARDED}


def test_every_role_is_allowed_something_and_refused_something() -> None:
    for role in ROLE_NAMES:
        outcomes = {_allowed(rule, role) for rule in GUARDED}
        assert outcomes == {True, False}, role


@pytest.mark.parametrize(("rule", "role"), MATRIX, ids=[f"{r.key}-{ro}" for r, ro in MATRIX])
def test_permission_matrix(site: Site, rule: RouteRule, role: str) -> None:
    path, body = CALLS[rule.key](site, role)
    with site.client(role) as c:
        r = c.request(rule.method, path, json=body)
    if _allowed(rule, role):
        assert r.status_code == rule.success, (r.status_code, r.text)
        return
    assert r.status_code == 403, r.text
    assert r.json() == {"detail": f"expected a role granting {rule.access}, got {role}"}
    site.supervisor.audit(
        actor=user_of(role), action=rule.action, outcome="refused", target=f"{rule.method} {path}"
    )


@pytest.mark.parametrize("rule", ROUTES, ids=[r.key for r in ROUTES])
def test_without_credentials(site: Site, rule: RouteRule) -> None:
    path, body = CALLS[rule.key](site, "viewer") if rule.key in CALLS else (rule.path, None)
    if rule.key in CONSOLE_PUBLIC:  # the console's sign-in page and files: no data in them
        path, media = CONSOLE_PUBLIC[rule.key]
        with site.client() as c:
            r = c.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith(media), r.text
        return
    if rule.access == CREDENTIALS:  # the login: without valid credentials, 401
        body = {"name": user_of("viewer"), "password": "not the password"}
    with site.client() as c:
        r = c.request(rule.method, path, json=body)
    if rule.access == PUBLIC:
        assert (r.status_code, r.json()) == (200, {"ok": True})
        return
    assert r.status_code == 401, r.text
    assert "\n" not in r.json()["detail"]
    if rule.access != CREDENTIALS:
        assert r.headers["www-authenticate"] == "Bearer"
        site.supervisor.audit(
            actor="anonymous", action="authenticate", outcome="refused",
            target=f"{rule.method} {path}",
        )  # fmt: skip


def test_the_only_unauthenticated_route_is_healthz(site: Site) -> None:
    routes = site.app.routes
    assert all(isinstance(r, APIRoute) for r in routes), "no mounts, no docs, no static files"
    guards: dict[str, Guard] = {}
    for route in routes:
        assert isinstance(route, APIRoute)
        [method] = route.methods
        first = route.dependant.dependencies[0].call
        assert isinstance(first, Guard), f"{method} {route.path}: expected its guard first"
        assert first.rule.key == f"{method} {route.path}"
        guards[first.rule.key] = first
    assert set(guards) == {r.key for r in ROUTES}
    public = {k for k, g in guards.items() if g.rule.access == PUBLIC}
    by_password = {k for k, g in guards.items() if g.rule.access == CREDENTIALS}
    assert public == {"GET /healthz", *CONSOLE_PUBLIC}
    assert by_password == {"POST /auth/login"}


def test_healthz_reveals_nothing(site: Site) -> None:
    with site.client() as c:
        r = c.get("/healthz")
    assert r.json() == {"ok": True}
    assert "server" not in {k.lower() for k in r.headers} or "kontur" not in r.headers["server"]


def test_no_schema_or_docs_without_credentials(site: Site) -> None:
    with site.client() as c:
        assert c.get("/openapi.json").status_code == 401
        assert c.get("/docs").status_code == 404
        assert c.get("/redoc").status_code == 404
    with site.client("viewer") as c:
        schema = c.get("/openapi.json").json()
    assert "/operator/requests/{request_id}" in schema["paths"]
