"""The guard every route carries, the auditor, and strict JSON bodies.

:class:`Guard` is the one dependency built from a route's row of :data:`kontur.api.rbac.ROUTES`
and put first on the route, so it runs before anything else of the request (before the body is
even parsed). Its steps, in order:

1. authenticate: a bearer token (``Authorization: Bearer kontur_…``, machines) or else the
   session cookie; none or a bad one is 401, audited (``authenticate``, refused);
2. rate-limit: the principal's token bucket, or the remote's when step 1 failed or the route
   is public; an empty bucket is 429 with ``Retry-After`` (audited once a minute per key);
3. CSRF: a state-changing call authenticated by the cookie must carry the session's
   ``X-CSRF-Token`` header, else 403, audited;
4. authorise: the principal's roles must grant the row's permission, else 403, audited.

Every refusal is an :class:`~kontur.wire.messages.AuditEvent` sent to the supervisor, which
archives it. A refusal is answered even when it cannot be audited (the supervisor is gone);
an *allowed* audited action is not done when its audit record cannot be sent (503).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from kontur.api.context import ApiContext
from kontur.api.errors import OutboxClosed, Unauthenticated
from kontur.api.ratelimit import LoginThrottle, TokenBuckets, retry_after
from kontur.api.rbac import CREDENTIALS, PUBLIC, SIGNED_IN, RouteRule
from kontur.api.users import Principal
from kontur.redact import redact_url
from kontur.wire.messages import AuditEvent
from kontur.wire.runstate import RunStateReader

__all__ = [
    "SESSION_COOKIE",
    "ApiState",
    "Auditor",
    "Guard",
    "JsonBody",
    "is_loopback",
    "no_body",
    "principal_of",
    "remote_of",
    "state_of",
]

log = logging.getLogger("kontur.api")

SESSION_COOKIE = "kontur_session"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LIMITED_AUDIT_EVERY_S = 60.0

M = TypeVar("M", bound=BaseModel)


class Auditor:
    """Builds audit events and sends them to the supervisor."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx
        self._limited: OrderedDict[str, float] = OrderedDict()
        self._views: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def event(
        self,
        actor: str,
        action: str,
        outcome: Literal["ok", "refused"],
        *,
        target: str | None = None,
        detail: str = "",
        remote: str | None = None,
    ) -> AuditEvent:
        """A typed audit event, clipped to the wire's bounds and with URLs redacted."""
        return AuditEvent(
            actor=actor[:128] or "anonymous",
            action=action,
            outcome=outcome,
            target=None if target is None else redact_url(target)[:512],
            detail=redact_url(" ".join(detail.split()))[:1024],
            remote=None if remote is None else remote[:128],
            at=self._ctx.clock.wall(),
        )

    def record(
        self,
        actor: str,
        action: str,
        outcome: Literal["ok", "refused"],
        *,
        target: str | None = None,
        detail: str = "",
        remote: str | None = None,
        required: bool = True,
    ) -> None:
        """Send one audit event. With ``required``, OutboxClosed propagates (refuse the action);
        without, a failed send is only logged (a refusal is answered anyway)."""
        event = self.event(actor, action, outcome, target=target, detail=detail, remote=remote)
        try:
            self._ctx.outbox.send(event)
        except OutboxClosed as exc:
            if required:
                raise
            log.warning("audit event %s by %s not sent: %s", action, event.actor, exc)

    def record_change(self, event: AuditEvent) -> None:
        """Send the audit event of a change already made; if the supervisor cannot take it
        now, keep it in the user store's outbox (sent later, like the CLI's changes)."""
        try:
            self._ctx.outbox.send(event)
        except OutboxClosed:
            self._ctx.users.queue_audit(event)

    def record_view(
        self, actor: str, action: str, target: str, *, remote: str | None, window_s: float
    ) -> None:
        """Audit a repeated view (a console refreshing a live snapshot) once per ``window_s``
        per actor, action and target: the first view of a window is a record saying so, the
        others are covered by it. OutboxClosed propagates, as for :meth:`record`."""
        key, now = (actor, action, target), self._ctx.clock.monotonic()
        with self._lock:
            last = self._views.get(key)
            if last is not None and now - last < window_s:
                return
            self._views[key] = now
            self._views.move_to_end(key)
            while len(self._views) > 10_000:
                self._views.popitem(last=False)
        detail = f"viewing; further views within {window_s:.0f} s are this record"
        try:
            self.record(actor, action, "ok", target=target, detail=detail, remote=remote)
        except OutboxClosed:
            with self._lock:
                self._views.pop(key, None)  # not recorded: the next view must try again
            raise

    def limited(self, key: str, target: str, remote: str) -> None:
        """Audit a rate-limited call, at most once a minute per key (a flood stays bounded)."""
        now = self._ctx.clock.monotonic()
        with self._lock:
            last = self._limited.get(key)
            if last is not None and now - last < _LIMITED_AUDIT_EVERY_S:
                return
            self._limited[key] = now
            self._limited.move_to_end(key)
            while len(self._limited) > 10_000:
                self._limited.popitem(last=False)
        actor = key.split(":", 1)[1] if key.startswith("user:") else "anonymous"
        self.record(
            actor,
            "rate_limited",
            "refused",
            target=target,
            remote=remote,
            detail=f"token bucket {key} empty",
            required=False,
        )


@dataclass(frozen=True, slots=True)
class ApiState:
    """The app's parts: the context and the mutable limiters (one set per app)."""

    ctx: ApiContext
    auditor: Auditor
    buckets: TokenBuckets
    name_throttle: LoginThrottle
    remote_throttle: LoginThrottle
    runstate: RunStateReader

    @classmethod
    def build(cls, ctx: ApiContext) -> ApiState:
        """Fresh limiters from ``ctx.settings`` on ``ctx.clock``."""
        s = ctx.settings
        return cls(
            ctx=ctx,
            auditor=Auditor(ctx),
            buckets=TokenBuckets(s.rate_per_s, s.burst, ctx.clock),
            name_throttle=LoginThrottle(ctx.clock, free=s.login_free_failures),
            remote_throttle=LoginThrottle(ctx.clock, free=s.remote_free_failures),
            runstate=RunStateReader(ctx.data_dir),
        )


def state_of(request: Request) -> ApiState:
    """The app's :class:`ApiState` (a dependency)."""
    state: ApiState = request.app.state.kontur
    return state


def principal_of(request: Request) -> Principal:
    """The principal the route's guard authenticated (a dependency of guarded routes)."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise RuntimeError("expected the route's guard to run first, got no principal")
    return principal


def remote_of(request: Request) -> str:
    """The caller's address (the peer of the TCP connection)."""
    return request.client.host if request.client is not None else "unknown"


def is_loopback(host: str | None) -> bool:
    """True for a loopback address or ``localhost``."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _target(request: Request) -> str:
    return f"{request.method} {request.url.path}"


class Guard:
    """The dependency that enforces one route's row of the table (see the module)."""

    def __init__(self, rule: RouteRule, state: ApiState) -> None:
        self.rule = rule
        self._state = state

    def __call__(self, request: Request) -> None:
        remote = remote_of(request)
        if self.rule.access in (PUBLIC, CREDENTIALS):
            self._charge(f"remote:{remote}", request)
            return
        principal = self._authenticate(request, remote)
        self._charge(f"user:{principal.name}", request)
        self._authorise(request, principal, remote)
        request.state.principal = principal

    def _authenticate(self, request: Request, remote: str) -> Principal:
        users = self._state.ctx.users
        auth = request.headers.get("authorization")
        cookie = request.cookies.get(SESSION_COOKIE)
        try:
            if auth is not None:
                scheme, _, token = auth.partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise Unauthenticated("expected 'Authorization: Bearer <token>', got another")
                return users.authenticate_token(token.strip())
            if cookie is not None:
                return users.authenticate_session(cookie)
            raise Unauthenticated("expected a session cookie or a bearer token, got none")
        except Unauthenticated as exc:
            self._charge(f"remote:{remote}", request)
            self._refuse(request, exc.actor, "authenticate", str(exc), remote)
            got = "none" if auth is None and cookie is None else "invalid or expired ones"
            raise HTTPException(
                401,
                f"expected valid credentials (a session cookie or a bearer token), got {got}",
                headers={"WWW-Authenticate": "Bearer"},
            ) from None

    def _authorise(self, request: Request, principal: Principal, remote: str) -> None:
        access = self.rule.access
        if request.method not in _SAFE_METHODS and not principal.csrf_ok(
            request.headers.get(CSRF_HEADER)
        ):
            self._refuse(
                request, principal.name, self.rule.action, "no or a wrong CSRF token", remote
            )
            raise HTTPException(
                403, "expected this session's X-CSRF-Token header, got none or a wrong one"
            )
        if access != SIGNED_IN and access not in principal.permissions:
            roles = ", ".join(principal.roles)
            self._refuse(
                request, principal.name, self.rule.action, f"roles {roles} lack it", remote
            )
            raise HTTPException(403, f"expected a role granting {access}, got {roles}")

    def _refuse(self, request: Request, actor: str, action: str, why: str, remote: str) -> None:
        self._state.auditor.record(
            actor,
            action,
            "refused",
            target=_target(request),
            detail=why,
            remote=remote,
            required=False,
        )

    def _charge(self, key: str, request: Request) -> None:
        wait = self._state.buckets.take(key)
        if wait is None:
            return
        self._state.auditor.limited(key, _target(request), remote_of(request))
        s = self._state.ctx.settings
        raise HTTPException(
            429,
            f"expected at most {s.burst} calls at once and {s.rate_per_s:g} a second, got more",
            headers={"Retry-After": retry_after(wait)},
        )


class JsonBody(Generic[M]):
    """A dependency that parses the request body strictly into ``model`` (after the guard).

    The body must be ``application/json`` (a cross-site form cannot send that without a
    CORS preflight, which kontur never answers); a bad one is a one-line 422.
    """

    def __init__(self, model: type[M]) -> None:
        self.model = model

    async def __call__(self, request: Request) -> M:
        ctype = request.headers.get("content-type", "")
        if ctype.split(";", 1)[0].strip().lower() != "application/json":
            raise HTTPException(415, f"expected Content-Type application/json, got {ctype[:60]!r}")
        raw = await request.body()
        try:
            return self.model.model_validate_json(raw)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False)
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in errors]
            ) from None


async def no_body(request: Request) -> None:
    """A dependency for a state-changing route that takes no body: refuse one (422)."""
    raw = await request.body()
    if raw:
        raise HTTPException(422, f"body: expected none, got {len(raw)} bytes")
