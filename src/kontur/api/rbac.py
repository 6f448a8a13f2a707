"""Who may do what: ONE declarative table of permissions, roles and routes (issue 11 §4).

Three tables, read top to bottom, are the whole access policy of the API:

- :class:`Permission`: what can be granted (the issue's list);
- :data:`ROLES`: which permissions each role grants. Separation of duties (the paper asks to
  separate access to video, biometrics and export): ``admin`` manages users, cameras and
  releases but sees no video, no biometrics and no audit trail unless also given a role that
  grants them; the ``auditor`` reads the audit trail and changes nothing;
- :data:`ROUTES`: every route of the API with the one access rule it needs. The app registers
  its routes from this table (``kontur.api.app``), a guard dependency built from the row
  enforces it on every request, and the permission-matrix test is generated from it.

``PUBLIC`` is only the liveness probe and the console's sign-in page and static files (which
hold no data); ``CREDENTIALS`` is only the login, which takes a name and
a password instead of a session; ``SIGNED_IN`` needs any valid principal and no permission.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final, Literal

__all__ = [
    "CREDENTIALS",
    "PUBLIC",
    "ROLES",
    "ROUTES",
    "SIGNED_IN",
    "Access",
    "Permission",
    "RouteRule",
    "check_roles",
    "permissions_of",
    "rule",
]


class Permission(StrEnum):
    """A grantable right (issue 11 §4)."""

    STATUS_READ = "status:read"
    EVENTS_READ = "events:read"
    METRICS_READ = "metrics:read"
    AUDIT_READ = "audit:read"
    VIDEO_LIVE = "video:live"
    VIDEO_ARCHIVE = "video:archive"
    BIOMETRICS_READ = "biometrics:read"
    """Person crops and anything else that identifies a person."""
    EXPORT_CREATE = "export:create"
    OPERATOR_DECIDE = "operator:decide"
    CAMERAS_ADMIN = "cameras:admin"
    RELEASES_ADMIN = "releases:admin"
    USERS_ADMIN = "users:admin"
    DETECT_QUERY = "detect:query"
    """The inference query API (``POST /v1/detect``, issue 14 §2, ADR 0031)."""


P = Permission

#: role → the permissions it grants. A user holds the union of their roles' permissions.
ROLES: Final[Mapping[str, frozenset[Permission]]] = MappingProxyType(
    {
        "viewer": frozenset({P.STATUS_READ, P.EVENTS_READ, P.METRICS_READ}),
        "operator": frozenset({P.STATUS_READ, P.EVENTS_READ, P.VIDEO_LIVE, P.OPERATOR_DECIDE}),
        "investigator": frozenset(
            {P.STATUS_READ, P.EVENTS_READ, P.VIDEO_ARCHIVE, P.BIOMETRICS_READ, P.EXPORT_CREATE}
        ),
        "auditor": frozenset({P.STATUS_READ, P.EVENTS_READ, P.METRICS_READ, P.AUDIT_READ}),
        "admin": frozenset(
            {P.STATUS_READ, P.METRICS_READ, P.USERS_ADMIN, P.CAMERAS_ADMIN, P.RELEASES_ADMIN}
        ),
        # a machine that only queries the model (ADR 0031): no video, no events, no audit
        "integrator": frozenset({P.STATUS_READ, P.DETECT_QUERY}),
    }
)

PUBLIC: Final = "public"
CREDENTIALS: Final = "credentials"
SIGNED_IN: Final = "signed_in"

Access = Permission | Literal["public", "credentials", "signed_in"]
"""What a route needs: a permission, or one of the three markers above."""


@dataclass(frozen=True, slots=True)
class RouteRule:
    """One route: method, path template, what it needs, its success status, audit on success."""

    method: Literal["GET", "POST"]
    path: str
    access: Access
    success: int = 200
    audited: bool = False
    """Every successful call is an audit record too (video, operator decisions, user changes).
    Refused calls are always audited, whatever this says."""

    @property
    def key(self) -> str:
        """``"GET /status"``: how tests and logs name the route."""
        return f"{self.method} {self.path}"

    @property
    def action(self) -> str:
        """The audit action of this route: its permission, or the marker."""
        return str(self.access)


R = RouteRule

#: Every route of the API. A route that is not here is not served (the app is built from it).
ROUTES: Final[tuple[RouteRule, ...]] = (
    R("GET", "/healthz", PUBLIC),
    R("POST", "/auth/login", CREDENTIALS),
    R("POST", "/auth/logout", SIGNED_IN),
    R("GET", "/auth/me", SIGNED_IN),
    R("GET", "/openapi.json", P.STATUS_READ),
    R("GET", "/status", P.STATUS_READ),
    R("GET", "/events", P.EVENTS_READ),
    R("GET", "/events/{index}/proof", P.EVENTS_READ),
    R("GET", "/audit", P.AUDIT_READ),
    R("GET", "/segments/{sha256}", P.VIDEO_ARCHIVE, audited=True),
    R("GET", "/cameras/{camera_id}/snapshot", P.VIDEO_LIVE, audited=True),
    R("GET", "/operator/requests/{request_id}/snapshot", P.VIDEO_LIVE, audited=True),
    R("GET", "/events/{index}/snapshot", P.VIDEO_ARCHIVE, audited=True),
    R("GET", "/events/{index}/crop", P.BIOMETRICS_READ, audited=True),
    R("GET", "/events/{index}/clip", P.VIDEO_ARCHIVE, audited=True),
    R("GET", "/operator/requests", P.OPERATOR_DECIDE),
    R("GET", "/operator/requests/{request_id}", P.OPERATOR_DECIDE),
    R("POST", "/operator/requests/{request_id}", P.OPERATOR_DECIDE, audited=True),
    R("POST", "/exports", P.EXPORT_CREATE, success=202, audited=True),
    R("GET", "/exports/{request_id}", P.EXPORT_CREATE),
    R("GET", "/exports/{request_id}/bundle", P.EXPORT_CREATE, audited=True),
    R("GET", "/metrics", P.METRICS_READ),
    R("GET", "/users", P.USERS_ADMIN),
    R("POST", "/users", P.USERS_ADMIN, success=201, audited=True),
    R("POST", "/users/{name}/disable", P.USERS_ADMIN, audited=True),
    # the operator console (issue 12, ADR 0027): sign-in page and files (no data), pages, data
    R("GET", "/ui/login", PUBLIC),
    R("GET", "/ui/static/{asset}", PUBLIC),
    R("GET", "/ui/", SIGNED_IN),
    R("GET", "/ui/operator", P.OPERATOR_DECIDE),
    R("GET", "/ui/events", P.EVENTS_READ),
    R("GET", "/ui/evidence", P.EVENTS_READ),
    R("GET", "/ui/cameras", P.STATUS_READ),
    R("GET", "/ui/system", P.STATUS_READ),
    R("GET", "/ui/audit", P.AUDIT_READ),
    R("GET", "/ui/users", P.USERS_ADMIN),
    R("GET", "/ui/api/overview", P.STATUS_READ),
    R("GET", "/ui/api/decisions", P.EVENTS_READ),
    R("GET", "/ui/api/decisions/{index}", P.EVENTS_READ),
    R("GET", "/ui/api/system", P.STATUS_READ),
    # incident playbooks (issue 12 §4, ADR 0029): each its own permission; moving to the CPU
    # only makes the site safer, so an operator may; a full verify reads the whole trail
    R("POST", "/incidents/revoke-camera", P.CAMERAS_ADMIN, success=202, audited=True),
    R("POST", "/incidents/failover-cpu", P.OPERATOR_DECIDE, success=202, audited=True),
    R("POST", "/incidents/preserve", P.EXPORT_CREATE, success=202, audited=True),
    R("POST", "/incidents/verify-archive", P.AUDIT_READ, success=202, audited=True),
    R("GET", "/incidents/{request_id}", P.STATUS_READ),
    # the inference query API behind the extraction defence (issue 14 §2, ADR 0031)
    R("POST", "/v1/detect", P.DETECT_QUERY),
    R("POST", "/v1/detect/blocks/{name}/lift", P.USERS_ADMIN, audited=True),
)

_BY_KEY: Final = MappingProxyType({r.key: r for r in ROUTES})


def rule(method: str, path: str) -> RouteRule:
    """The row for ``method path``; KeyError for a route the table does not have."""
    return _BY_KEY[f"{method} {path}"]


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """``roles`` sorted and deduplicated; ValueError naming the first unknown role or none."""
    out = tuple(sorted(set(roles)))
    if not out:
        raise ValueError(f"roles: expected at least one of {', '.join(ROLES)}, got none")
    for r in out:
        if r not in ROLES:
            raise ValueError(f"role: expected one of {', '.join(ROLES)}, got {r[:40]!r}")
    return out


def permissions_of(roles: Iterable[str]) -> frozenset[Permission]:
    """The union of the permissions of ``roles`` (unknown roles grant nothing)."""
    out: set[Permission] = set()
    for r in roles:
        out |= ROLES.get(r, frozenset())
    return frozenset(out)
