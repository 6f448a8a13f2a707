"""Export through the running site: ``POST /exports``, its status, and the bundle (ADR 0020).

Against the real API and the stand-in supervisor of ``api_sim``, which answers each
``ExportRequest`` on the real inbox with a stand-in bundle (the e2e test runs the real export).
"""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_sim import Site

from kontur.wire.messages import ExportRequest
from kontur.wire.runstate import export_bundle_path

SPAN: dict[str, Any] = {"camera": "cam1", "from": 1_700_000_000.0, "to": 1_700_000_060.0}


def _post(site: Site, body: object, role: str = "investigator") -> httpx.Response:
    with site.client(role) as c:
        r: httpx.Response = c.post("/exports", json=body)
    return r


def test_an_export_is_asked_for_polled_and_downloaded(site: Site) -> None:
    r = _post(site, SPAN)
    assert r.status_code == 202, r.text
    rid = r.json()["request_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    msg = site.supervisor.wait_for(lambda m: isinstance(m, ExportRequest) and m.request_id == rid)
    assert isinstance(msg, ExportRequest)
    assert (msg.requested_by, msg.camera, msg.from_at, msg.to_at) == (
        "investigator-user",
        "cam1",
        SPAN["from"],
        SPAN["to"],
    )
    with site.client("investigator") as c:
        status = c.get(f"/exports/{rid}").json()
        bundle = c.get(f"/exports/{rid}/bundle")
    assert status["state"] == "ready" and status["bundle"] == f"/exports/{rid}/bundle"
    assert bundle.status_code == 200
    assert bundle.headers["content-type"] == "application/zip"
    assert hashlib.sha256(bundle.content).hexdigest() == status["sha256"]
    path = export_bundle_path(site.data_dir, rid)
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    site.supervisor.audit(
        actor="investigator-user", action="export:create", outcome="ok", target=f"export {rid}"
    )
    site.supervisor.audit(
        actor="investigator-user", action="export:download", outcome="ok", target=f"export {rid}"
    )


def test_a_failed_export_says_why_and_has_no_bundle(site: Site) -> None:
    r = _post(site, {**SPAN, "camera": "nocam"})
    assert r.status_code == 202
    rid = r.json()["request_id"]
    with site.client("investigator") as c:
        status = c.get(f"/exports/{rid}").json()
        bundle = c.get(f"/exports/{rid}/bundle")
    assert status["state"] == "failed" and "nocam" in status["reason"]
    assert bundle.status_code == 409 and "\n" not in bundle.json()["detail"]


def test_a_bundle_that_fails_its_hash_is_not_served(site: Site) -> None:
    rid = _post(site, SPAN).json()["request_id"]
    path = export_bundle_path(site.data_dir, rid)
    path.chmod(0o600)
    path.write_bytes(b"PK\x03\x04 swapped")
    with site.client("investigator") as c:
        r = c.get(f"/exports/{rid}/bundle")
    assert r.status_code == 409 and b"swapped" not in r.content
    site.supervisor.audit(
        actor="investigator-user", action="export:download", outcome="refused",
        target=f"export {rid}",
    )  # fmt: skip


def test_an_unknown_export_is_404(site: Site) -> None:
    with site.client("investigator") as c:
        assert c.get(f"/exports/{'0' * 32}").status_code == 404
        assert c.get(f"/exports/{'0' * 32}/bundle").status_code == 404


TRAVERSALS = [
    "/exports/..%2f..%2fusers.sqlite/bundle",
    "/exports/..%252f..%252farchive.sqlite/bundle",
    "/exports/../../archive.sqlite",
    "/exports/%2e%2e/bundle",
    "/exports/" + "E" * 32 + "/bundle",
    "/exports/" + "e" * 31 + "/bundle",
    "/exports/" + "e" * 33 + "/bundle",
    "/exports/" + "e" * 30 + "%2f" + "e" + "/bundle",
    "/exports/" + "e" * 28 + ".zip/bundle",
    "/exports/%00" + "e" * 31 + "/bundle",
    "/exports//etc/passwd/bundle",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_refused_before_any_file_is_read(site: Site, path: str) -> None:
    with httpx.Client(base_url=site.url, timeout=15) as c:
        req = c.build_request(
            "GET", path, headers={"Authorization": f"Bearer {site.tokens['investigator']}"}
        )
        req.url = req.url.copy_with(raw_path=path.encode())
        r = c.send(req)
    assert r.status_code in (404, 422), (r.status_code, r.text[:200])
    assert "\n" not in r.json()["detail"]
    assert b"SQLite format" not in r.content and b"stand-in" not in r.content


@pytest.mark.parametrize(
    "body",
    [
        {**SPAN, "to": SPAN["from"]},
        {**SPAN, "to": SPAN["from"] + 7200},
        {**SPAN, "camera": "../cam1"},
        {**SPAN, "from": "1700000000"},
        {**SPAN, "from": -1.0},
        {**SPAN, "by": "someone-else"},
        {"camera": "cam1", "from": 1.0},
    ],
)
def test_a_bad_export_body_is_a_one_line_422(site: Site, body: object) -> None:
    r = _post(site, body)
    assert r.status_code == 422, r.text
    assert "\n" not in r.json()["detail"]


def test_a_path_id_can_never_become_a_path() -> None:
    for bad in ("../" + "e" * 29, "E" * 32, "e" * 31, "e" * 32 + "/x"):
        with pytest.raises(ValueError):
            export_bundle_path(Path("/srv/kontur"), bad)
