"""Issue 12 §2: the console in a real browser, against a real API server.

Chromium (Playwright) against api_sim's site: a real uvicorn serving ``create_app``, a real
user store, archive and run state, and the supervisor's end of the API's pipe (what the
other side's e2e test, ``test_console_site.py``, runs for real). One site per module; the
session-expiry test has its own, because it moves the site's clock.

- sign in and sign out (the session ends on the server too);
- a viewer sees no video and no operator controls: absent from the page, and the server
  refuses the operator's page anyway;
- an operator's page has the snapshots and the controls;
- a cross-site request is refused: a form on another origin posting a verdict with the
  operator's cookie gets 403 (no CSRF token; audited as the operator), and from another site
  the cookie does not even travel (SameSite=Strict: 401);
- an admin revokes a camera from the Cameras page (the incident playbook's route);
- the System page's transitions name the camera whose state moved, or the site (ADR 0040),
  a camera id that is markup shown as text;
- each Overview card shows its camera's degradation state as a badge with text (ADR 0040),
  marked stale with the run state;
- session expiry: the page sends the operator back to the sign-in page.

Each page is also watched for Content-Security-Policy violations (there must be none).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_kit import WAIT_MS, Browser, sign_in, start_browser
from tests.api.api_sim import (
    HOSTILE_CAMERA,
    PASSWORD,
    ROOMY,
    RTSP_SECRET,
    Site,
    pending,
    running_site,
    user_of,
    write_transitions,
)

from kontur.wire.messages import IncidentRequest, OperatorVerdict
from kontur.wire.runstate import CameraState

#: Pending requests of the module's site: op-201 for the CSRF test, op-202 for the page.
REQUESTS = (201, 202)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from start_browser()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data_dir = tmp_path_factory.mktemp("console") / "data"
    with running_site(data_dir, requests=tuple(pending(n) for n in REQUESTS)) as s:
        yield s


@pytest.fixture(autouse=True)
def no_csp_violations(browser: Browser) -> Iterator[None]:
    start = len(browser.csp_errors)
    yield
    assert browser.csp_errors[start:] == []


def _nav(page: Any) -> set[str]:
    return set(page.eval_on_selector_all("nav a", "links => links.map(a => a.pathname)"))


def test_sign_in_and_sign_out(browser: Browser, site: Site) -> None:
    page = sign_in(browser.page(), site.url, user_of("auditor"), PASSWORD)
    page.wait_for_selector("#cam-cam1 .strip-box svg")
    assert page.inner_text(".who .user") == user_of("auditor")
    assert _nav(page) == {"/ui/", "/ui/events", "/ui/evidence", "/ui/cameras", "/ui/system",
                          "/ui/audit"}  # fmt: skip
    page.click("#logout")
    page.wait_for_url(site.url + "/ui/login")
    site.supervisor.audit(actor=user_of("auditor"), action="logout", outcome="ok")
    # the session ended on the server: the cookie no longer opens a page
    response = page.goto(site.url + "/ui/audit")
    page.wait_for_url(re.compile(r"/ui/login\?next=/ui/audit$"))
    assert response.request.redirected_from is not None
    assert response.request.redirected_from.url == site.url + "/ui/audit"


def test_a_wrong_password_is_refused_on_the_page(browser: Browser, site: Site) -> None:
    page = browser.page()
    page.goto(site.url + "/ui/login")
    page.fill("#login-name", user_of("viewer"))
    page.fill("#login-password", "not the password at all")
    page.click("#login-submit")
    message = page.wait_for_selector("#login-message:not([hidden])")
    assert message.inner_text() == "expected a valid name and password, got a refused login"
    assert page.url == site.url + "/ui/login"


def test_a_viewer_sees_no_video_and_no_operator_controls(browser: Browser, site: Site) -> None:
    page = sign_in(browser.page(), site.url, user_of("viewer"), PASSWORD)
    page.wait_for_selector("#cam-cam1 .stats div")
    assert page.locator("img, video, #live-video").count() == 0
    assert "snapshot" not in page.content()
    assert "/ui/operator" not in _nav(page)
    index = site.archived.decision_index
    page.goto(f"{site.url}/ui/evidence?index={index}")
    page.wait_for_selector("#ev-verification dd")
    for absent in ("img", "video", "#archive-video", "#biometrics", "#export", "button.confirm"):
        assert page.locator(absent).count() == 0, absent
    # the server refuses the operator's page and its data anyway
    response = page.goto(site.url + "/ui/operator")
    assert response.status == 403
    assert response.json() == {"detail": "expected a role granting operator:decide, got viewer"}
    assert RTSP_SECRET not in page.content()


def test_an_operator_sees_snapshots_and_decides_from_the_queue(
    browser: Browser, site: Site
) -> None:
    page = sign_in(browser.page(), site.url, user_of("operator"), PASSWORD)
    page.wait_for_selector("#cam-cam1 img.snapshot", state="attached")
    assert RTSP_SECRET not in page.content()
    assert "/ui/operator" in _nav(page)
    page.goto(site.url + "/ui/operator")
    card = page.wait_for_selector("#req-op-202")
    assert card.query_selector("img.frame") is not None
    assert "verifier disagrees on track 7" in card.inner_text()
    assert card.query_selector(".countdown").inner_text() != ""
    card.query_selector("textarea").fill("the person at the door is the night guard")
    card.query_selector("button.reject").click()
    page.wait_for_selector("#req-op-202 .result.ok")
    assert card.query_selector(".result").inner_text() == "Done: rejected by operator-user"
    verdict = site.supervisor.wait_for(
        lambda m: isinstance(m, OperatorVerdict) and m.request_id == "op-202"
    )
    assert isinstance(verdict, OperatorVerdict)
    assert (verdict.operator, verdict.confirm) == (user_of("operator"), False)
    assert verdict.reason == "the person at the door is the night guard"


_ATTACK = """<!doctype html><title>prize</title>
<form method="post" action="{target}" enctype="application/x-www-form-urlencoded">
<input name="confirm" value="true"><input name="reason" value="pwned">
<button id="go" type="submit">Claim your prize</button></form>"""


def _attack(page: Any, origin: str, target: str) -> int:
    """Serve a page at ``origin`` whose form posts to ``target``; click it; the status."""
    page.route(origin + "/prize", lambda route: route.fulfill(
        status=200, content_type="text/html", body=_ATTACK.format(target=target)
    ))  # fmt: skip
    page.goto(origin + "/prize")
    with page.expect_response(target) as answer:
        page.click("#go")
    status: int = answer.value.status
    return status


def test_a_cross_site_request_is_refused(browser: Browser, site: Site) -> None:
    page = sign_in(browser.page(), site.url, user_of("operator"), PASSWORD)
    target = f"{site.url}/operator/requests/op-201"
    # same site, another origin (another port): the cookie travels, the CSRF token does not
    assert _attack(page, "http://127.0.0.1:9", target) == 403
    site.supervisor.audit(
        actor=user_of("operator"), action="operator:decide", outcome="refused",
        target="POST /operator/requests/op-201", detail="no or a wrong CSRF token",
    )  # fmt: skip
    # another site: SameSite=Strict keeps the cookie home, so nobody is signed in
    assert _attack(page, "http://attacker.test", target) == 401
    assert "op-201" in {r.id for r in site.supervisor.state.pending}
    sent = [m for m in site.supervisor.messages if isinstance(m, OperatorVerdict)]
    assert all(m.request_id != "op-201" for m in sent)


def test_an_admin_revokes_a_camera_with_a_reason(browser: Browser, site: Site) -> None:
    page = sign_in(browser.page(), site.url, user_of("admin"), PASSWORD, "/ui/cameras")
    page.wait_for_selector("#camera-table tbody tr td")
    assert page.locator("img, video").count() == 0  # admin sees no video
    page.fill("#revoke-camera", "cam1")
    page.fill("#revoke-reason", "key leaked in a firmware dump")
    page.click("#revoke-button")
    page.wait_for_selector("#revoke-status:has-text('(')")  # the request id is shown
    asked = site.supervisor.wait_for(lambda m: isinstance(m, IncidentRequest))
    assert isinstance(asked, IncidentRequest)
    assert (asked.kind, asked.by, asked.camera) == ("revoke_camera", user_of("admin"), "cam1")
    assert asked.reason == "key leaked in a firmware dump"
    site.supervisor.audit(actor=user_of("admin"), action="incident:revoke_camera", outcome="ok")


def test_the_system_shows_which_camera_each_transition_concerns(
    browser: Browser, site: Site
) -> None:
    """ADR 0040: the transition list names the camera whose state moved, or the site; a
    camera id that is markup shows as text (and runs nothing: no CSP report, no element)."""
    site_index, cam_index, hostile_index = write_transitions(site.data_dir)
    page = sign_in(browser.page(), site.url, user_of("viewer"), PASSWORD, "/ui/system")
    page.wait_for_selector(f"#transitions tbody tr td:text-is('{hostile_index}')")
    head = page.eval_on_selector_all("#transitions thead th", "ths => ths.map(h => h.textContent)")
    assert head == ["#", "Time", "Camera", "From → to", "Trigger", "Detail"]
    cells = page.eval_on_selector_all(
        "#transitions tbody tr",
        "rows => rows.map(r => [...r.cells].map(c => [c.textContent, c.dataset.scope || '']))",
    )
    rows = {int(r[0][0]): r for r in cells}
    assert [i for i in rows][:3] == [hostile_index, cam_index, site_index]  # newest first
    assert rows[site_index][2] == ["site", "site"]
    assert rows[site_index][3:] == [["NORMAL → DEGRADED", ""], ["worker_crash", ""],
                                    ["worker exited with 1", ""]]  # fmt: skip
    assert rows[cam_index][2] == ["cam1", "camera"]
    assert rows[cam_index][3][0] == "NORMAL → SAFE"
    assert rows[hostile_index][2] == [HOSTILE_CAMERA, "camera"]
    assert page.locator("#transitions img, #state-timeline img").count() == 0
    titles = page.eval_on_selector_all(
        "#state-timeline circle title", "ts => ts.map(t => t.textContent)"
    )
    assert "site: NORMAL → DEGRADED: worker_crash" in titles
    assert "camera cam1: NORMAL → SAFE: camera_tamper" in titles
    assert f"camera {HOSTILE_CAMERA}: NORMAL → DEGRADED: camera_untrusted" in titles
    assert page.title() != "1"


_CARDS = """cards => cards.map(c => {
  const b = c.querySelector(".card-head .badge.cam-state");
  return b && [c.dataset.camera, c.dataset.state, b.textContent, b.dataset.state,
               [...b.classList].sort().join(" ")];
})"""


def test_the_overview_card_shows_its_cameras_degradation_state(
    browser: Browser, site: Site
) -> None:
    """ADR 0040: each camera's card shows its effective state as a badge with the state's name
    (never colour alone) and ``data-state``; a camera id that is markup is text; a stale run
    state marks the badges stale."""
    before = site.supervisor.state
    cameras = (
        before.cameras[0].model_copy(update={"state": "SAFE"}),
        CameraState(id="cam2", frames=10, state="NORMAL"),
        CameraState(id=HOSTILE_CAMERA, frames=5, state="DEGRADED"),
    )
    site.supervisor.publish(before.model_copy(update={"cameras": cameras}))
    try:
        page = sign_in(browser.page(), site.url, user_of("viewer"), PASSWORD)
        page.wait_for_selector("#cameras .card:nth-child(3) .cam-state[data-state]")
        page.wait_for_selector("#cam-cam1 .cam-state[data-state='SAFE']")
        cards = page.eval_on_selector_all("#cameras .card", _CARDS)
        assert cards == [
            ["cam1", "SAFE", "SAFE", "SAFE", "badge cam-state s-SAFE"],
            ["cam2", "NORMAL", "NORMAL", "NORMAL", "badge cam-state s-NORMAL"],
            [HOSTILE_CAMERA, "DEGRADED", "DEGRADED", "DEGRADED", "badge cam-state s-DEGRADED"],
        ]
        badge = page.locator("#cam-cam1 .card-head .cam-state")
        assert badge.is_visible() and "ADR 0040" in str(badge.get_attribute("title"))
        assert page.locator("#cameras img").count() == 0 and page.title() != "1"
        # the supervisor stopped publishing: the states are old, and the badges say so
        old = before.model_copy(update={"cameras": cameras, "at": site.clock.wall() - 60})
        site.supervisor.publish(old)
        page.wait_for_selector("#cam-cam2 .cam-state.stale")
        assert page.inner_text("#cam-cam1 .cam-state") == "SAFE (stale)"
        assert page.get_attribute("#cam-cam1 .cam-state", "data-state") == "SAFE"
    finally:
        site.supervisor.publish(before)


def test_pages_are_not_framed_cached_or_scripted_inline(browser: Browser, site: Site) -> None:
    page = browser.page()
    response = page.goto(site.url + "/ui/login")
    headers = response.headers
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert "script-src 'self';" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_an_ended_session_sends_the_page_to_sign_in(browser: Browser, tmp_path: Path) -> None:
    settings = dataclasses.replace(ROOMY, session_ttl_s=600.0)
    with running_site(tmp_path / "data", settings=settings) as s:
        page = sign_in(browser.page(), s.url, user_of("operator"), PASSWORD)
        page.wait_for_selector("#cam-cam1 .stats div")
        s.clock.advance(601.0)  # the session's lifetime is over on the site's clock
        page.wait_for_url(re.compile(r"/ui/login\?.*expired=1"), timeout=WAIT_MS)
        assert page.inner_text("#login-message") == "Your session ended. Sign in again."
        s.supervisor.audit(actor=user_of("operator"), action="authenticate", outcome="refused")
