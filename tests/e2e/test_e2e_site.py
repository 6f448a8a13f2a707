"""End to end: ``kontur run`` as a site service on real footage, with the operator in the loop.

One real run (issue 11 §1, §6): PETS09 (unsigned, so every critical action needs an operator)
with YOLOX-Nano, the API block on a free loopback port, two operators added with
``kontur user add``. Driven over HTTP with httpx, as a console would:

- ana confirms an ``alarm`` request with a reason: the log sink gets the ``operator`` event
  with ``executed: alarm`` after the archive committed the ``operator`` record;
- four eyes on ``lock`` (``two_person: true``): ana's confirmation answers 202, ana again is
  refused (409), bo's confirms it, naming both;
- the requests nobody answers fail safe at their deadline: the restricted alternative
  (``notify``) runs, archived as ``expired``;
- an investigator asks the running site for an evidence bundle of the span before the alarm
  (``POST /exports``: the supervisor, the archive's one writer, builds it), polls until it is
  ready, downloads it, and ``kontur archive verify-export`` passes on it offline;
- SIGTERM: exit 0, every block stopped, the archive verifies, and it holds who confirmed
  what and why, the audit records of the logins and of the decisions, and the ``export``
  record naming the investigator.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import sqlite3
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import yaml
from tests.conftest import KONTUR, REPO, run_kontur, shared, wait_for

from kontur.config import load_config

pytestmark = pytest.mark.e2e

PASSWORDS = {
    "ana": "ana-correct-horse-battery",
    "bo": "bo-correct-horse-battery",
    "ivy": "ivy-correct-horse-battery",
}
USER_ROLES = {"ana": "operator", "bo": "operator", "ivy": "investigator"}
DEADLINE_S = 20.0
WAIT_S = 240.0


def _config(path: Path, video: Path) -> Path:
    dwell = {"type": "dwell", "zone": "whole-frame", "classes": ["person"], "min_seconds": 2.0}
    cfg = {
        "site": "e2e-site",
        "cameras": [{"id": "cam1", "source": str(video)}],
        "actions": {
            "alarm": {"critical": True, "restricted_alternative": "notify"},
            "lock": {"critical": True, "restricted_alternative": "notify", "two_person": True},
            "notify": {"critical": False},
        },
        "policies": [
            {"rule": rule, "when": dwell, "action": action}
            for rule, action in (("person-dwell", "alarm"), ("person-dwell-4eyes", "lock"))
        ],
        "operator": {"deadline_s": DEADLINE_S},
        "api": {"enabled": True, "bind": "127.0.0.1", "port": 0},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def _wait(what: str, probe: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    return wait_for(what, probe, timeout)


def _events(data: Path) -> list[dict[str, Any]]:
    path = data / "actions.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _operator_event(data: Path, **match: Any) -> dict[str, Any] | None:
    for e in _events(data):
        if e["type"] == "operator" and all(e.get(k) == v for k, v in match.items()):
            return e
    return None


def _records(data: Path, kind: str) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{data / 'archive.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT payload FROM records WHERE kind = ? ORDER BY idx", (kind,))
        return [json.loads(r[0]) for r in rows]


def _login(url: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    r = client.post("/auth/login", json={"name": name, "password": PASSWORDS[name]})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def _pending(client: httpx.Client, action: str) -> dict[str, Any] | None:
    r = client.get("/operator/requests")
    if r.status_code != 200:
        return None  # 503 until the supervisor published its first run state
    mine = [q for q in r.json()["requests"] if q["action"] == action]
    return max(mine, key=lambda q: q["deadline"]) if mine else None


@dataclass
class SiteRun:
    """What the run did, as seen from outside: answers, events, exit, archive."""

    data: Path
    url: str = ""
    answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    confirmed: dict[str, Any] = field(default_factory=dict)
    four_eyes: dict[str, Any] = field(default_factory=dict)
    expired: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    returncode: int | None = None
    stderr: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)
    """The export's final status, its request id, span and downloaded bundle path."""
    pictures: dict[str, httpx.Response] = field(default_factory=dict)
    """The confirmed alarm's snapshot and person crop, fetched by the investigator."""


def _decide(client: httpx.Client, rid: str, confirm: bool, why: str) -> tuple[int, dict]:
    r = client.post(f"/operator/requests/{rid}", json={"confirm": confirm, "reason": why})
    return r.status_code, r.json()


def _operate(site: SiteRun) -> None:
    """The operators' part: one confirmation, four eyes, then let the rest expire."""
    ana, bo = _login(site.url, "ana"), _login(site.url, "bo")
    alarm = _wait("a pending alarm request", lambda: _pending(ana, "alarm"))
    site.answers["confirm"] = _decide(ana, alarm["id"], True, "intruder at the fence, seen live")
    site.answers["late"] = _decide(bo, alarm["id"], True, "me too")
    lock = _wait("a pending lock request", lambda: _pending(ana, "lock"))
    site.answers["lock:ana"] = _decide(ana, lock["id"], True, "door must close")
    site.answers["lock:ana-again"] = _decide(ana, lock["id"], True, "really")
    site.answers["lock:bo"] = _decide(bo, lock["id"], True, "agreed on the second screen")
    _export(site, alarm["at"])
    _pictures(site, alarm["decision_index"])
    site.status = ana.get("/status").json()
    site.confirmed = _wait(
        "the confirmed alarm's event",
        lambda: _operator_event(site.data, request=alarm["id"], outcome="confirmed"),
    )
    site.four_eyes = _wait(
        "the four-eyes event",
        lambda: _operator_event(site.data, request=lock["id"], outcome="confirmed"),
    )
    site.expired = _wait(
        "a request that expired",
        lambda: _operator_event(site.data, outcome="expired", action="alarm"),
        timeout=DEADLINE_S + 60,
    )
    ana.close()
    bo.close()


def _export_status(client: httpx.Client, rid: str) -> dict[str, Any] | None:
    r = client.get(f"/exports/{rid}")
    if r.status_code != 200 or r.json()["state"] == "pending":
        return None  # 404 until the supervisor published the request
    status: dict[str, Any] = r.json()
    return status


def _export(site: SiteRun, alarm_at: float) -> None:
    """The investigator's part: the span before the alarm, exported through the running site."""
    ivy = _login(site.url, "ivy")
    span = {"camera": "cam1", "from": alarm_at - 10.0, "to": alarm_at}
    r = ivy.post("/exports", json=span)
    assert r.status_code == 202, r.text
    rid = r.json()["request_id"]
    status = _wait("the export", lambda: _export_status(ivy, rid), timeout=120)
    site.export = {"request_id": rid, "span": span, "status": status}
    if status["state"] == "ready":
        r = ivy.get(status["bundle"])
        assert r.status_code == 200, r.text
        bundle = site.data.parent / "case.zip"
        bundle.write_bytes(r.content)
        site.export["bundle"] = bundle
    ivy.close()


def _pictures(site: SiteRun, index: int) -> None:
    """The investigator looks at the alarm's frame and the person in it, once its GOP is
    archived (the picture routes read the archive, never the frame ring)."""
    ivy = _login(site.url, "ivy")

    def fetch(what: str) -> httpx.Response | None:
        r = ivy.get(f"/events/{index}/{what}")
        return r if r.status_code == 200 else None

    for what in ("snapshot", "crop"):
        site.pictures[what] = _wait(f"the alarm's {what}", lambda w=what: fetch(w), timeout=120)
    ivy.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteRun]:
    video = shared("video", "pets09_s2l1_480x360.avi")
    model = shared("models", "yolox_nano.onnx")
    tmp = tmp_path_factory.mktemp("site")
    data = tmp / "d"
    for name, password in PASSWORDS.items():
        r = subprocess.run(
            [str(KONTUR), "user", "add", name, "--role", USER_ROLES[name], "--password-stdin",
             "--data-dir", str(data)],
            input=password + "\n", capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    err_path, summary = tmp / "stderr.log", tmp / "summary.json"
    with open(err_path, "w") as err, open(tmp / "stdout.log", "w") as out:
        proc = subprocess.Popen(
            [str(KONTUR), "run", "--config", str(_config(tmp / "site.yaml", video)),
             "--data-dir", str(data), "--model", str(model), "--json", str(summary)],
            stdout=out, stderr=err,
        )  # fmt: skip
    run = SiteRun(data)
    try:
        found = _wait(
            "the api_listening log line",
            lambda: re.search(r'"event": "api_listening", "url": "([^"]+)"', err_path.read_text()),
            timeout=180,
        )
        run.url = found.group(1)
        _operate(run)
        proc.send_signal(signal.SIGTERM)
        run.returncode = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        run.stderr = err_path.read_text()
    run.summary = json.loads(summary.read_text())
    yield run


def test_an_operator_confirms_and_the_action_fires(site: SiteRun) -> None:
    code, body = site.answers["confirm"]
    assert (code, body) == (200, {"resolution": "confirmed by ana"})
    e = site.confirmed
    assert (e["action"], e["executed"], e["operators"]) == ("alarm", "alarm", ["ana"])
    assert e["reason"] == "intruder at the fence, seen live"
    assert e["archive_index"] > e["decision_index"]
    # exactly one wins: a later confirmation hears who did
    code, body = site.answers["late"]
    assert code == 409 and "confirmed by ana" in body["detail"]


def test_the_investigator_sees_the_alarms_frame_and_the_person(site: SiteRun) -> None:
    snap = cv2.imdecode(np.frombuffer(site.pictures["snapshot"].content, np.uint8), 1)
    crop = cv2.imdecode(np.frombuffer(site.pictures["crop"].content, np.uint8), 1)
    assert snap.shape == (360, 480, 3)
    assert 0 < crop.shape[0] <= 360 and 0 < crop.shape[1] <= 480
    assert crop.shape[0] > crop.shape[1]  # a standing person is taller than wide
    audits = [a for a in _records(site.data, "audit") if a["actor"] == "ivy"]
    assert {"video:archive", "biometrics:read"} <= {a["action"] for a in audits}


def test_four_eyes_needs_a_second_different_operator(site: SiteRun) -> None:
    assert site.answers["lock:ana"] == (202, {"awaiting": "a second operator"})
    code, body = site.answers["lock:ana-again"]
    assert code == 409 and "second, different operator" in body["detail"]
    assert site.answers["lock:bo"] == (200, {"resolution": "confirmed by ana and bo"})
    e = site.four_eyes
    assert (e["action"], e["executed"], e["operators"]) == ("lock", "lock", ["ana", "bo"])


def test_at_the_deadline_the_restricted_alternative_runs(site: SiteRun) -> None:
    e = site.expired
    assert (e["executed"], e["operators"]) == ("notify", [])
    assert e["reason"] == f"no operator answered within {DEADLINE_S:g} s"


def test_the_api_is_a_block_of_the_table(site: SiteRun) -> None:
    blocks = {b["name"]: b for b in site.status["blocks"]}
    assert next(iter(blocks)) == "api" and blocks["api"]["alive"]
    assert site.summary["api"]["url"] == site.url and site.summary["api"]["tls"] is False
    assert [p["name"] for p in site.summary["processes"]][:2] == ["supervisor", "api"]


def test_sigterm_stops_cleanly_and_the_archive_verifies(site: SiteRun) -> None:
    assert site.returncode == 0, site.stderr[-3000:]
    lines = [json.loads(x) for x in site.stderr.splitlines() if x.startswith("{")]
    events = [x.get("event") for x in lines]
    assert events[0] == "starting" and events[-1] == "stopped"
    assert {"ts", "level", "logger", "msg"} <= set(lines[-1])
    r = run_kontur("archive", "verify", str(site.data))
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_archive_says_who_confirmed_what_and_why(site: SiteRun) -> None:
    ops = {(o["request"], o["outcome"]): o for o in _records(site.data, "operator")}
    confirmed = ops[(site.confirmed["request"], "confirmed")]
    assert (confirmed["operator"], confirmed["reason"]) == (
        "ana",
        "intruder at the fence, seen live",
    )
    assert confirmed["executed"] == "alarm"
    four = site.four_eyes["request"]
    assert ops[(four, "awaiting_second")]["operator"] == "ana"
    assert ops[(four, "confirmed")]["operators"] == ["ana", "bo"]
    assert ops[(site.expired["request"], "expired")]["executed"] == "notify"
    # every OPERATOR decision became a request, and each ended closed exactly once:
    # answered, expired, or failed safe at the stop
    asked = _requests_made(site.data)
    closed = [rid for rid, outcome in ops if outcome in ("confirmed", "rejected", "expired")]
    assert asked and sorted(closed) == sorted(asked)


def test_the_audit_trail_holds_the_logins_and_the_decisions(site: SiteRun) -> None:
    audit = _records(site.data, "audit")
    seen = {(a["actor"], a["action"], a["outcome"]) for a in audit}
    assert {("ana", "login", "ok"), ("bo", "login", "ok")} <= seen
    decided = [a for a in audit if a["action"] == "operator:decide"]
    assert any(a["actor"] == "ana" and a["target"] == site.confirmed["request"] for a in decided)
    assert any(a["action"] == "users:admin" and a["target"] == "user ana" for a in audit)


def test_an_investigator_exports_through_the_running_site(site: SiteRun) -> None:
    status = site.export["status"]
    assert status["state"] == "ready", status
    bundle: Path = site.export["bundle"]
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == status["sha256"]
    on_disk = site.data / "exports" / f"{site.export['request_id']}.zip"
    assert stat.S_IMODE(on_disk.stat().st_mode) == 0o400
    assert stat.S_IMODE(on_disk.parent.stat().st_mode) == 0o700
    r = run_kontur("archive", "verify-export", str(bundle), "--json", "-")
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_archive_names_the_investigator_who_exported(site: SiteRun) -> None:
    rid = site.export["request_id"]
    [logged] = [e for e in _records(site.data, "export") if e["bundle"] == f"{rid}.zip"]
    assert logged["by"] == "ivy" and logged["camera"] == "cam1"
    assert logged["bundle_sha256"] == site.export["status"]["sha256"]
    audit = {(a["actor"], a["action"], a["outcome"], a.get("target")) for a in _records(
        site.data, "audit"
    )}  # fmt: skip
    assert ("ivy", "export:create", "ok", f"export {rid}") in audit
    assert ("ivy", "export:download", "ok", f"export {rid}") in audit


def _requests_made(data: Path) -> list[str]:
    """``op-<index>`` of every OPERATOR decision record."""
    with sqlite3.connect(f"file:{data / 'archive.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT idx, payload FROM records WHERE kind = 'decision'").fetchall()
    return [f"op-{i}" for i, p in rows if json.loads(p)["outcome"] == "OPERATOR"]


def test_the_shipped_unit_and_example_site_are_usable() -> None:
    """deploy/: the systemd unit keeps its hardening, the example site is a valid config."""
    unit = (REPO / "deploy" / "kontur.service").read_text()
    settings = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and line[0] != "#"
    )
    assert settings["Type"] == "simple" and settings["User"] == "kontur"
    assert settings["KillMode"] == "mixed"  # SIGTERM to the supervisor only: it stops the rest
    assert "kontur run --config" in settings["ExecStart"]
    for key, value in (
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("ReadWritePaths", "/var/lib/kontur"),
        ("CapabilityBoundingSet", ""),
    ):
        assert settings[key] == value, key
    site = load_config(REPO / "deploy" / "site.example.yaml")
    assert site.api.enabled and site.actions["open_barrier"].two_person
