"""What :func:`kontur.api.app.create_app` is built from: settings and the injected parts."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from kontur.api.outbox import Outbox
from kontur.api.users import UserStore
from kontur.clock import Clock
from kontur.extraction.client import QueryDetector
from kontur.extraction.defence import ExtractionSettings

__all__ = ["ApiContext", "ApiSettings"]


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Limits and lifetimes of the API. Every value is checked on creation."""

    session_ttl_s: float = 3600.0
    """A session cookie's lifetime from login (absolute; short-lived by design)."""
    max_failed_logins: int = 5
    """Failed logins in a row that lock an account ..."""
    lockout_s: float = 900.0
    """... for this long."""
    login_free_failures: int = 3
    """Failures per name before each further attempt must wait (1 s, 2 s, 4 s ... 60 s)."""
    remote_free_failures: int = 20
    """The same, per remote address (guessing across many names)."""
    rate_per_s: float = 20.0
    """Token bucket per principal (per remote when unauthenticated): sustained calls/s ..."""
    burst: int = 60
    """... and calls at once."""
    max_body_bytes: int = 64 * 1024
    """A larger request body is refused with 413 before it is parsed."""
    cookie_secure: bool | None = None
    """The session cookie's Secure flag; None: set unless served over plain http on loopback."""
    verdict_wait_s: float = 3.0
    """How long an operator's POST waits for the supervisor to resolve the request."""
    page_limit: int = 500
    """The most records one /events or /audit page returns."""
    scan_limit: int = 20_000
    """The most archive records one /events or /audit call reads (then it says where to go on)."""
    audit_drain_s: float = 1.0
    """How often the user store's audit outbox (CLI changes) is sent to the supervisor."""
    stale_after_s: float = 10.0
    """A run state older than this is reported as stale by /status."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "cookie_secure" or isinstance(value, bool):
                continue
            if not value > 0:
                raise ValueError(f"api.{f.name}: expected a positive number, got {value!r}")
        if self.page_limit > self.scan_limit:
            raise ValueError(
                f"api.page_limit: expected at most scan_limit ({self.scan_limit}), "
                f"got {self.page_limit}"
            )


@dataclass(frozen=True, slots=True)
class ApiContext:
    """Everything the API app needs from outside: where the data is, who the users are, the
    pipe to the supervisor, the clock, and the settings."""

    data_dir: Path
    users: UserStore
    outbox: Outbox
    clock: Clock
    settings: ApiSettings = ApiSettings()
    extraction: ExtractionSettings = field(default_factory=ExtractionSettings)
    """The query path's quota, PRADA and policy (ADR 0031)."""
    detector: QueryDetector | None = None
    """What ``POST /v1/detect`` runs pictures through (a sandboxed query worker); None: 503."""
