"""Issue 12 §2, end to end: an operator confirms a real pending request in the browser.

One real ``kontur run`` (``live_site``): PETS09 looping (unsigned, so every critical action
needs an operator) with YOLOX-Nano, the API on loopback, the operator ``ana`` made with
``kontur user add``. In Chromium, ana signs in, sees the camera's live snapshot, opens the
queue, waits for a real request (a person dwelling), sees its decision frame with the box
and the reasons, and confirms it with a reason. The archive then holds the ``operator``
record naming ana and her reason, and the console's history shows it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_kit import Browser, sign_in, start_browser
from live_site import LiveSite, User, live_site, wait
from tests.conftest import shared

pytestmark = pytest.mark.e2e

ANA = User("ana", ("operator",), "ana-correct-horse-battery")
REASON = "person at the fence after hours, seen on the live snapshot"
REQUEST_MS = 300_000
_LOADED = "img => img.complete && img.naturalWidth > 0"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from start_browser()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    video = shared("video", "pets09_s2l1_480x360.avi")
    model = shared("models", "yolox_nano.onnx")
    tmp = tmp_path_factory.mktemp("console-site")
    with live_site(tmp, [ANA], {"cam1": video}, model, deadline_s=180.0) as site:
        yield site


def _operator_records(data: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{data / 'archive.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT payload FROM records WHERE kind = 'operator' ORDER BY idx")
        return [json.loads(r[0]) for r in rows]


def _confirmed(data: Path, rid: str) -> dict[str, Any] | None:
    done = [
        o for o in _operator_records(data) if (o["request"], o["outcome"]) == (rid, "confirmed")
    ]
    return done[0] if done else None


def test_an_operator_confirms_a_real_request_in_the_browser(
    browser: Browser, live: LiveSite
) -> None:
    page = sign_in(browser.page(), live.url, ANA.name, ANA.password)
    snapshot = page.wait_for_selector("#cam-cam1 img.snapshot:not([hidden])", timeout=REQUEST_MS)
    page.wait_for_function(_LOADED, arg=snapshot)
    page.click('nav a[href="/ui/operator"]')
    card = page.wait_for_selector(".request", timeout=REQUEST_MS)
    rid = card.get_attribute("data-request")
    assert rid is not None and rid.startswith("op-")
    page.wait_for_function(_LOADED, arg=card.query_selector("img.frame"))
    assert "Why the gate asks" in card.inner_text()
    card.query_selector("textarea").fill(REASON)
    card.query_selector("button.confirm").click()
    result = page.wait_for_selector(f"#req-{rid} .result.ok")
    assert result.inner_text() == "Done: confirmed by ana"
    # the archive says who confirmed what, and why
    record = wait("the operator record", lambda: _confirmed(live.data, str(rid)), timeout=60)
    assert (record["operator"], record["reason"], record["executed"]) == ("ana", REASON, "alarm")
    # and so does the console's history of decisions
    index = record["decision_index"]
    page.goto(f"{live.url}/ui/events?outcome=OPERATOR")
    row = page.wait_for_selector(f'#decisions tr[data-index="{index}"] td.operator')
    assert f"confirmed by ana: {REASON} → ran alarm" in row.inner_text()
    assert browser.csp_errors == []
