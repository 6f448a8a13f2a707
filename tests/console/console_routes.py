"""How the permission matrix (``tests/api/test_api_matrix.py``) calls the console's routes.

Kept here, next to the console's tests, so the matrix stays generated from the one table:
every console row of ``kontur.api.rbac.ROUTES`` has a call here (the matrix asserts it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kontur.console import PAGES

Call = tuple[str, dict[str, Any] | None]

#: guarded console route → how to call it as a role (path, JSON body); ``site`` is api_sim's.
CONSOLE_CALLS: dict[str, Callable[[Any, str], Call]] = {
    **{f"GET {p.path}": (lambda s, r, path=p.path: (path, None)) for p in PAGES},
    "GET /ui/api/overview": lambda s, r: ("/ui/api/overview", None),
    "GET /ui/api/system": lambda s, r: ("/ui/api/system", None),
    "GET /ui/api/decisions": lambda s, r: ("/ui/api/decisions", None),
    "GET /ui/api/decisions/{index}": lambda s, r: (
        f"/ui/api/decisions/{s.archived.decision_index}",
        None,
    ),
}

#: public console route → (a path to call, the media type it answers without credentials).
CONSOLE_PUBLIC: dict[str, tuple[str, str]] = {
    "GET /ui/login": ("/ui/login", "text/html"),
    "GET /ui/static/{asset}": ("/ui/static/console.js", "text/javascript"),
}
