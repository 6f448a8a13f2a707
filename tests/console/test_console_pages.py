"""The console's pages and data routes without a browser (issue 12 §1, ADR 0027).

Against api_sim's real server: the page table agrees with the API's one access table; a
section a role may not see is not in the HTML it gets; no page can run inline script; a
signed-out browser is sent to sign in while an API client gets its 401; the data routes say
what the screens draw (verdict strip, alarms, decisions with what operators did, one
decision's evidence with a checked inclusion proof, transitions naming their camera or the
site), never a camera credential.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources

import pytest
from tests.api.api_sim import (
    HOSTILE_CAMERA,
    RTSP_SECRET,
    TRANSITIONS,
    Site,
    pending,
    running_site,
    write_transitions,
)

from kontur.api.rbac import ROLES, ROUTES, SIGNED_IN, Permission, rule
from kontur.archive import Archive
from kontur.console import PAGES, Viewer, asset, asset_names, keep_permitted, render_page

TEMPLATES = resources.files("kontur.console").joinpath("templates")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data_dir = tmp_path_factory.mktemp("console-pages") / "data"
    with running_site(data_dir, requests=(pending(301),)) as s:
        yield s


def _viewer(role: str) -> Viewer:
    return Viewer.of(f"{role}-user", [role], ROLES[role])


def test_every_page_is_a_row_of_the_access_table_with_the_same_access() -> None:
    for page in PAGES:
        row = rule("GET", page.path)
        assert str(row.access) == page.needs, page.path
    console = {r.path for r in ROUTES if r.path.startswith("/ui/")}
    pages = {p.path for p in PAGES}
    data = {"/ui/api/overview", "/ui/api/system", "/ui/api/decisions", "/ui/api/decisions/{index}"}
    assert console == pages | data | {"/ui/login", "/ui/static/{asset}"}


def test_no_template_can_run_inline_script_or_style() -> None:
    for entry in TEMPLATES.iterdir():
        text = entry.read_text("utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), entry.name
        assert not re.search(r"\son[a-z]+\s*=", text), entry.name
        assert "style=" not in text and "<style" not in text, entry.name
        assert "javascript:" not in text, entry.name
        for needs in re.findall(r"<!--needs:([^-]+)-->", text):
            Permission(needs)  # a real permission, or ValueError


def test_every_page_script_ships_and_only_known_names_are_served() -> None:
    assert {f"{p.slug}.js" for p in PAGES} | {"console.js", "login.js", "console.css"} <= (
        asset_names()
    )
    for name in ("../pages.py", "console.JS", ".console.js", "pages.py", "a/b.js", "x.js"):
        assert asset(name) is None, name


@pytest.mark.parametrize("role", list(ROLES))
def test_a_page_holds_only_what_the_role_may_see(role: str) -> None:
    viewer = _viewer(role)
    for page in PAGES:
        if not viewer.may(page.needs):
            with pytest.raises(PermissionError, match=f"expected a viewer holding {page.needs}"):
                render_page(page.slug, viewer)
            continue
        html = render_page(page.slug, viewer)
        links = set(re.findall(r"<nav>.*?</nav>", html, re.S)[0].split('href="')[1:])
        shown = {link.split('"')[0] for link in links}
        assert shown == {p.path for p in PAGES if viewer.may(p.needs)}
        assert ("live-video" in html) == (page.slug in ("overview", "operator") and
                                          "video:live" in viewer.permissions)  # fmt: skip
        assert ("archive-video" in html) == (
            page.slug == "evidence" and "video:archive" in viewer.permissions
        )
        for marker, slug, needs in (
            ("export-button", "evidence", "export:create"),
            ("revoke-form", "cameras", "cameras:admin"),
            ("verify-button", "system", "audit:read"),
            ("failover-form", "system", "operator:decide"),
        ):
            assert (marker in html) == (page.slug == slug and needs in viewer.permissions)


def test_names_are_escaped_and_blocks_must_be_flat() -> None:
    html = render_page("overview", Viewer("<b>x</b>", ("viewer",), frozenset({"status:read"})))
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    v = _viewer("operator")
    assert keep_permitted("a<!--needs:video:live-->B<!--/needs-->c", v) == "aBc"
    assert keep_permitted("a<!--needs:users:admin-->B<!--/needs-->c", v) == "ac"
    with pytest.raises(RuntimeError, match="expected flat, closed"):
        keep_permitted("<!--needs:video:live-->open", v)
    assert SIGNED_IN == "signed_in"


def test_a_signed_out_browser_is_sent_to_sign_in_and_an_api_client_gets_401(site: Site) -> None:
    with site.client() as c:
        r = c.get("/ui/evidence?index=2", headers={"Accept": "text/html,*/*"})
        assert (r.status_code, r.headers["location"]) == (
            303,
            "/ui/login?next=/ui/evidence%3Findex%3D2",
        )
        r = c.get("/ui/evidence")
        assert r.status_code == 401
        assert r.json()["detail"].startswith("expected valid credentials")
        # data routes and static files are never redirected
        r = c.get("/ui/api/overview", headers={"Accept": "text/html"})
        assert r.status_code == 401
    site.supervisor.audit(actor="anonymous", action="authenticate", target="GET /ui/evidence")


def test_pages_carry_a_strict_policy(site: Site) -> None:
    with site.client("viewer") as c:
        r = c.get("/ui/")
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "'unsafe-inline'" not in csp
    assert (r.headers["x-frame-options"], r.headers["cache-control"]) == ("DENY", "no-store")
    assert 'data-permissions="events:read metrics:read status:read"' in r.text


def test_the_overview_draws_strips_and_alarms_without_credentials(site: Site) -> None:
    with site.client("operator") as c:
        o = c.get("/ui/api/overview").json()
    with site.client("admin") as c:
        bare = c.get("/ui/api/overview").json()
    assert RTSP_SECRET not in str(o) and RTSP_SECRET not in str(bare)
    [cam] = o["cameras"]
    assert cam["strip"] == [{"gop": 1, "verdict": "AUTHENTIC", "reasons": []}]
    assert bare["cameras"][0]["strip"] == [{"gop": 1, "verdict": "AUTHENTIC"}]  # no events:read
    texts = [a["text"] for a in cam["alarms"]]
    assert "1 GOPs with frames lost" in texts and "verifier disagreed 2 times" in texts
    assert "1 operator requests waiting" in texts
    assert any(t.startswith("camera error: rtsp://***@10.0.0.5") for t in texts)
    assert (o["state"], o["pending"], cam["fps_avg"]) == ("DEGRADED", 1, 100 / 60)
    assert cam["state"] == "NORMAL"  # the card's badge (ADR 0040): the camera's effective state


def test_decisions_show_what_the_operator_did_and_why(site: Site) -> None:
    index = site.archived.decision_index
    with Archive.open(site.data_dir) as arc:
        arc.append("operator", {"request": f"op-{index}", "decision_index": index,
                                "operator": "ana", "operators": ["ana"], "confirm": True,
                                "reason": "seen live", "outcome": "confirmed",
                                "executed": "open_door", "at": 1_700_000_200.0})  # fmt: skip
    with site.client("auditor") as c:
        listed = c.get("/ui/api/decisions", params={"camera": "cam1"}).json()
        one = c.get(f"/ui/api/decisions/{index}").json()
        none = c.get("/ui/api/decisions", params={"outcome": "DENY"}).json()
        bad = c.get("/ui/api/decisions", params={"camera": "../x"})
        not_a_decision = c.get(f"/ui/api/decisions/{site.archived.event_index}")
    [d] = listed["decisions"]
    assert d["index"] == index and d["operator"][0]["reason"] == "seen live"
    assert RTSP_SECRET not in str(listed) and RTSP_SECRET not in str(one)
    assert none["decisions"] == []
    assert bad.status_code == 422
    assert not_a_decision.status_code == 404
    assert one["operator"][0]["operators"] == ["ana"]
    assert [g["gop"] for g in one["gops"]] == [1] and one["gops"][0]["verdict"] == "AUTHENTIC"
    assert one["proof"]["verified"] is True and one["proof"]["index"] == index


def test_the_system_shows_checkpoints_and_blocks(site: Site) -> None:
    with site.client("admin") as c:
        s = c.get("/ui/api/system").json()
    assert s["checkpoints"] and s["checkpoints"][-1]["note"].startswith("kontur.archive/")
    assert {b["name"] for b in s["blocks"]} == {"worker", "ingest:cam1"}
    assert s["cameras"] == [{"id": "cam1", "latency_s": [0.04, 0.2, 0.3, 3.0]}]


def test_the_system_names_the_camera_of_each_transition(site: Site) -> None:
    """ADR 0040: a camera's transition names its camera, the site's has ``camera`` null."""
    site_index, cam_index, hostile_index = write_transitions(site.data_dir)
    with site.client("viewer") as c:
        s = c.get("/ui/api/system").json()
    rows = {t["index"]: t for t in s["transitions"]}
    site_row, cam_row, hostile_row = rows[site_index], rows[cam_index], rows[hostile_index]
    assert site_row == {"index": site_index, "camera": None, **TRANSITIONS[0]}
    assert cam_row == {"index": cam_index, **TRANSITIONS[1]}
    assert cam_row["camera"] == "cam1"
    assert hostile_row["camera"] == HOSTILE_CAMERA  # JSON carries it as is; pages escape it
    assert [t["index"] for t in s["transitions"]] == sorted(rows)  # oldest first
