"""The incident routes (``/incidents/…``, ADR 0029) against the real API server.

Real: the uvicorn server, the users, the guard, the pipe and the supervisor's inbox with the
``api -> supervisor`` row of the edge table (``tests/api/api_sim``). Its stand-in supervisor
answers each ``IncidentRequest`` with ``done simulated <kind>``; the real desk behind it runs
in test_incident_desk.py and the e2e test. Here: what the API sends, audits and refuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.api_sim import Site, running_site

from kontur.wire.messages import IncidentRequest


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data_dir: Path = tmp_path_factory.mktemp("incident-api") / "data"
    with running_site(data_dir) as s:
        yield s


def _post(site: Site, role: str, path: str, body: Any = None) -> httpx.Response:
    with site.client(role) as c:
        r: httpx.Response = c.post(path, json=body)
    return r


def _sent(site: Site, rid: str) -> IncidentRequest:
    msg = site.supervisor.wait_for(lambda m: isinstance(m, IncidentRequest) and m.request_id == rid)
    assert isinstance(msg, IncidentRequest)
    return msg


@pytest.mark.parametrize(
    ("role", "path", "body", "kind", "fields"),
    [
        (
            "admin", "/incidents/revoke-camera", {"camera": "cam1", "reason": "key leaked"},
            "revoke_camera", {"camera": "cam1", "reason": "key leaked", "preserve_s": 600.0},
        ),
        (
            "operator", "/incidents/failover-cpu", {"reason": "GPU driver suspected"},
            "failover_cpu", {"reason": "GPU driver suspected"},
        ),
        (
            "investigator", "/incidents/preserve",
            {"camera": "cam1", "from": 1.7e9, "to": 1.7e9 + 60, "reason": "case 42"},
            "preserve",
            {"camera": "cam1", "from_at": 1.7e9, "to_at": 1.7e9 + 60, "reason": "case 42"},
        ),
        ("auditor", "/incidents/verify-archive", None, "verify_archive", {}),
    ],
)  # fmt: skip
def test_each_playbook_is_audited_sent_and_reported(
    site: Site, role: str, path: str, body: Any, kind: str, fields: dict[str, Any]
) -> None:
    r = _post(site, role, path, body)
    assert r.status_code == 202, r.text
    doc = r.json()
    rid = doc["request_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert doc == {
        "request_id": rid,
        "kind": kind,
        "state": "done",
        "detail": f"simulated {kind}",
    }
    msg = _sent(site, rid)
    assert (msg.kind, msg.by) == (kind, f"{role}-user")
    assert {k: getattr(msg, k) for k in fields} == fields
    audit = site.supervisor.audit(actor=f"{role}-user", action=f"incident:{kind}", outcome="ok")
    assert audit.target == f"incident {rid}"
    with site.client("viewer") as c:
        assert c.get(f"/incidents/{rid}").json() == {
            "request_id": rid,
            "state": "done",
            "detail": f"simulated {kind}",
        }


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/incidents/revoke-camera", {"camera": "cam1"}, "reason"),
        ("/incidents/revoke-camera", {"camera": "cam1", "reason": "   "}, "reason"),
        ("/incidents/revoke-camera", {"camera": "../x", "reason": "r"}, "camera"),
        (
            "/incidents/revoke-camera",
            {"camera": "cam1", "reason": "r", "preserve_s": 0},
            "preserve",
        ),
        ("/incidents/revoke-camera", {"camera": "cam1", "reason": "r", "root": True}, "root"),
        ("/incidents/failover-cpu", {"reason": 5}, "reason"),
        ("/incidents/preserve", {"camera": "cam1", "from": 20, "to": 10, "reason": "r"}, "after"),
        ("/incidents/preserve", {"camera": "cam1", "from": 0, "to": 7200, "reason": "r"}, "3600"),
        ("/incidents/verify-archive", {"deep": True}, "expected none"),
    ],
)
def test_bodies_are_strict(site: Site, path: str, body: Any, fragment: str) -> None:
    role = {"revoke": "admin", "failover": "operator", "preserve": "investigator"}.get(
        path.split("/")[2].split("-")[0], "auditor"
    )
    before = len([m for m in site.supervisor.messages if isinstance(m, IncidentRequest)])
    r = _post(site, role, path, body)
    assert r.status_code == 422, r.text
    assert fragment in r.text
    after = len([m for m in site.supervisor.messages if isinstance(m, IncidentRequest)])
    assert after == before  # nothing reached the supervisor


def test_an_unknown_incident_is_404_and_a_bad_id_422(site: Site) -> None:
    with site.client("viewer") as c:
        r = c.get(f"/incidents/{'2' * 32}")
        assert (r.status_code, r.json()) == (
            404,
            {"detail": f"expected a known incident request, got {'2' * 32}"},
        )
        assert c.get("/incidents/..%2F..%2Farchive").status_code in (404, 422)


def test_a_viewer_may_not_revoke(site: Site) -> None:
    r = _post(site, "viewer", "/incidents/revoke-camera", {"camera": "cam1", "reason": "x"})
    assert r.status_code == 403
    site.supervisor.audit(actor="viewer-user", action="cameras:admin", outcome="refused")
