"""The API block (issue 11): an authenticated REST API over the archive and the run state.

It runs as its own process in the supervisor's table (``kontur.api.process``), reads the
archive read-only and the supervisor's run-state snapshot, and sends only audit events and
operator verdicts, on the one edge ``api -> supervisor`` (ADR 0014, ADR 0022). It holds no
channel to the worker, the verifier or the gate.

Public surface:

- :func:`create_app`, :class:`ApiContext`, :class:`ApiSettings` (``app.py``, ``context.py``);
- :class:`Outbox` and :class:`PipeOutbox`, the pipe to the supervisor (``outbox.py``);
- :class:`UserStore`, :class:`Principal` (``users.py``): users, tokens, sessions;
- :class:`Permission`, :data:`ROLES`, :data:`ROUTES` (``rbac.py``): the one access table;
- the error tree rooted at :class:`ApiError` (``errors.py``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kontur.api.app import create_app
    from kontur.api.context import ApiContext, ApiSettings
    from kontur.api.errors import (
        ApiError,
        OutboxClosed,
        Unauthenticated,
        UserExists,
        UserInputError,
        UserStoreCorrupt,
        UserUnknown,
    )
    from kontur.api.outbox import Outbox, PipeOutbox
    from kontur.api.rbac import ROLES, ROUTES, Permission, RouteRule
    from kontur.api.users import Principal, UserStore

#: name → module; imported on first use, so ``kontur user …`` never loads FastAPI.
_WHERE = {
    "create_app": "app",
    "ApiContext": "context",
    "ApiSettings": "context",
    "ApiError": "errors",
    "OutboxClosed": "errors",
    "Unauthenticated": "errors",
    "UserExists": "errors",
    "UserInputError": "errors",
    "UserStoreCorrupt": "errors",
    "UserUnknown": "errors",
    "Outbox": "outbox",
    "PipeOutbox": "outbox",
    "ROLES": "rbac",
    "ROUTES": "rbac",
    "Permission": "rbac",
    "RouteRule": "rbac",
    "Principal": "users",
    "UserStore": "users",
}

__all__ = [
    "ROLES",
    "ROUTES",
    "ApiContext",
    "ApiError",
    "ApiSettings",
    "Outbox",
    "OutboxClosed",
    "Permission",
    "PipeOutbox",
    "Principal",
    "RouteRule",
    "Unauthenticated",
    "UserExists",
    "UserInputError",
    "UserStore",
    "UserStoreCorrupt",
    "UserUnknown",
    "create_app",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'kontur.api' has no attribute {name!r}")
    return getattr(importlib.import_module(f"kontur.api.{_WHERE[name]}"), name)
