"""What the console's browser tests share: Playwright on Debian's ``chromium``, signing in.

The browser is real (Playwright for Python driving the system's ``chromium``, headless). When
either is missing the tests skip with the reason, except under CI (``CI`` set), where a
missing browser is a failure: CI must not skip the console silently (``.ci/run`` installs
``chromium`` when it is absent).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

#: Generous waits for a real perimeter on a shared machine; a wait is never an assertion.
WAIT_MS = 30_000


def _missing(what: str) -> None:
    how = "apt-get install chromium; pip install playwright"
    why = f"needs {what} for the console's browser tests ({how})"
    if os.environ.get("CI"):
        pytest.fail(f"CI: {why}")
    pytest.skip(why)


def chromium_path() -> str:
    """The system's chromium, or skip (fail under CI)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _missing("Debian's chromium on PATH")
    assert path is not None
    return path


@dataclass
class Browser:
    """A started chromium and the CSP violations any of its pages reported."""

    browser: Any
    csp_errors: list[str] = field(default_factory=list)

    def page(self) -> Any:
        """A fresh page in a fresh context (its own cookies and sessionStorage)."""
        context = self.browser.new_context()
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        page.on("console", self._console)
        return page

    def _console(self, msg: Any) -> None:
        if "Content Security Policy" in msg.text:
            self.csp_errors.append(msg.text)


def start_browser() -> Iterator[Browser]:
    """Playwright's chromium for a module (a generator for a fixture)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package")
    executable = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield Browser(browser)
        finally:
            browser.close()


def sign_in(page: Any, url: str, name: str, password: str, path: str = "/ui/") -> Any:
    """Open ``path`` signed out (the console sends the browser to sign in), sign in, and
    come back to ``path``; the page."""
    page.goto(url + path)
    page.wait_for_url(re.compile(r"/ui/login\?next="))
    page.fill("#login-name", name)
    page.fill("#login-password", password)
    page.click("#login-submit")
    page.wait_for_url(url + path)
    return page
