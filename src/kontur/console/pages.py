"""The console's pages: one table, and the renderer of their server-side HTML shells.

Each page is a thin HTML shell (``templates/<slug>.html`` inside ``layout.html``); its script
(``static/<slug>.js``) fills it from the JSON API with the session cookie. What a role may not
see is *absent* from the shell, not hidden: a template marks such a section
``<!--needs:PERMISSION--> … <!--/needs-->`` and :func:`render_page` drops the section unless
the viewer holds that permission (blocks are flat: a nested or unclosed one is a bug, a
``RuntimeError``). The scripts build what they draw only inside the sections that are there,
and the API refuses the data anyway (ADR 0027).

Every value put into a page is HTML-escaped here; the scripts insert text with
``textContent`` only. No inline script or style exists, so the pages run under
:data:`PAGE_CSP`.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Final

__all__ = [
    "PAGES",
    "PAGE_CSP",
    "SIGNED_IN",
    "Page",
    "Viewer",
    "keep_permitted",
    "page_by_path",
    "render_login",
    "render_page",
]

SIGNED_IN: Final = "signed_in"
"""A page any signed-in principal may open (its sections still need their permissions)."""

#: The pages' Content-Security-Policy: scripts, styles and data from this origin only; images
#: and clips may also be ``blob:`` (a snapshot fetched with the cookie); no framing, no forms
#: posting elsewhere, no ``<base>``.
PAGE_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "media-src 'self' blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


@dataclass(frozen=True, slots=True)
class Page:
    """One screen: its slug (template and script name), path, title and what it needs."""

    slug: str
    path: str
    title: str
    needs: str
    """A permission (``operator:decide``) or :data:`SIGNED_IN`; ``kontur.api.rbac.ROUTES``
    has a ``GET`` row for ``path`` with exactly this access (a test checks it)."""


#: Every page of the console, in the order of the navigation bar.
PAGES: Final[tuple[Page, ...]] = (
    Page("overview", "/ui/", "Overview", SIGNED_IN),
    Page("operator", "/ui/operator", "Operator queue", "operator:decide"),
    Page("events", "/ui/events", "Events and decisions", "events:read"),
    Page("evidence", "/ui/evidence", "Evidence", "events:read"),
    Page("cameras", "/ui/cameras", "Cameras", "status:read"),
    Page("system", "/ui/system", "System", "status:read"),
    Page("audit", "/ui/audit", "Audit log", "audit:read"),
    Page("users", "/ui/users", "Users", "users:admin"),
)

_BY_SLUG: Final = {p.slug: p for p in PAGES}
_BY_PATH: Final = {p.path: p for p in PAGES}
_BLOCK = re.compile(r"<!--needs:([a-z_:]{1,40})-->(.*?)<!--/needs-->", re.DOTALL)


def page_by_path(path: str) -> Page | None:
    """The page served at ``path``, if any."""
    return _BY_PATH.get(path)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who looks at a page: the principal's name, roles and permissions (as strings)."""

    name: str
    roles: tuple[str, ...]
    permissions: frozenset[str]

    @classmethod
    def of(cls, name: str, roles: Iterable[str], permissions: Iterable[str]) -> Viewer:
        """A viewer from any iterables (a principal's roles and permission enums)."""
        return cls(name, tuple(roles), frozenset(str(p) for p in permissions))

    def may(self, needs: str) -> bool:
        """True when this viewer holds ``needs`` (always for :data:`SIGNED_IN`)."""
        return needs == SIGNED_IN or needs in self.permissions


@functools.cache
def _template(name: str) -> str:
    return resources.files(__package__).joinpath("templates", name).read_text("utf-8")


def keep_permitted(text: str, viewer: Viewer) -> str:
    """``text`` without the ``<!--needs:P-->`` blocks whose permission ``viewer`` lacks."""
    out = _BLOCK.sub(lambda m: m.group(2) if viewer.may(m.group(1)) else "", text)
    if "<!--needs:" in out or "<!--/needs-->" in out:
        raise RuntimeError("expected flat, closed <!--needs:…--> blocks, got a nested or open one")
    return out


def _nav(current: Page, viewer: Viewer) -> str:
    links = []
    for p in PAGES:
        if not viewer.may(p.needs):
            continue  # absent, not disabled
        here = ' aria-current="page"' if p is current else ""
        links.append(f'<a href="{p.path}"{here}>{html.escape(p.title)}</a>')
    return "\n      ".join(links)


def render_page(slug: str, viewer: Viewer) -> str:
    """The HTML of page ``slug`` for ``viewer``; KeyError for an unknown slug,
    PermissionError when ``viewer`` may not open it (the route's guard refused it already)."""
    page = _BY_SLUG[slug]
    if not viewer.may(page.needs):
        raise PermissionError(f"expected a viewer holding {page.needs}, got {viewer.name}")
    main = keep_permitted(_template(f"{slug}.html"), viewer)
    return Template(_template("layout.html")).substitute(
        title=html.escape(page.title),
        slug=page.slug,
        nav=_nav(page, viewer),
        main=main,
        user=html.escape(viewer.name),
        roles=html.escape(", ".join(viewer.roles)),
        permissions=html.escape(" ".join(sorted(viewer.permissions))),
    )


def render_login() -> str:
    """The sign-in page (it shows nothing but the form)."""
    return _template("login.html")
