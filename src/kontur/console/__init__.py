"""The operator console in the browser (issue 12 §1, ADR 0027).

Server-rendered HTML shells with a little vanilla JavaScript, served by the API block under
``/ui/`` behind the same authentication and roles as the API: each page is a row of
``kontur.api.rbac.ROUTES``, and its script reads the JSON API with the session cookie (and the
session's CSRF token for a change). No build step, no CDN: the templates and static files ship
inside this package. This package imports nothing of ``kontur.api``: the API's routes
(``kontur.api._routes_console``) call it with plain strings.

Public surface:

- :data:`PAGES`, :class:`Page`, :class:`Viewer`, :func:`render_page`, :func:`render_login`,
  :data:`PAGE_CSP` (``pages.py``);
- :func:`asset`, :data:`ASSET_NAME` (``assets.py``).
"""

from __future__ import annotations

from kontur.console.assets import ASSET_NAME, Asset, asset, asset_names
from kontur.console.pages import (
    PAGE_CSP,
    PAGES,
    SIGNED_IN,
    Page,
    Viewer,
    keep_permitted,
    page_by_path,
    render_login,
    render_page,
)

__all__ = [
    "ASSET_NAME",
    "PAGES",
    "PAGE_CSP",
    "SIGNED_IN",
    "Asset",
    "Page",
    "Viewer",
    "asset",
    "asset_names",
    "keep_permitted",
    "page_by_path",
    "render_login",
    "render_page",
]
