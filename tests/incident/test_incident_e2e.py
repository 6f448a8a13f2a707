"""End to end: the four incident playbooks on one real ``kontur run`` (issue 12 §4, ADR 0029).

One site run on real footage: the first 30 s of PETS09 (re-encoded with a GOP a second, paced
in real time) as camera ``cam1``, enrolled in the inventory (``kontur run`` does not sign, so
its GOPs are UNSIGNED until it is revoked), YOLOX-Nano, the API on a free loopback port and a
witness file. While it runs:

- ``kontur incident revoke-camera`` (the CLI, through the request file): the camera's next
  GOP is REVOKED in the archive, and a legal hold keeps what it sent last;
- ``POST /incidents/failover-cpu`` (an operator): archived with who and why; the worker
  restarts on the CPU, or (on a CPU-only machine, where it already runs there) the outcome
  says so;
- ``POST /incidents/preserve`` (an investigator): a hold plus a bundle, downloaded through
  ``GET /exports/{id}/bundle``, that ``kontur archive verify-export`` passes;
- ``kontur incident verify-archive`` (the CLI): OK with the witness, the report saved;

then SIGTERM: exit 0, and ``kontur archive verify --witness`` passes.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.conftest import KONTUR, run_kontur, shared, wait_for
from tests.incident.incident_footage import short_clip

pytestmark = pytest.mark.e2e

PASSWORDS = {"oli": "oli-correct-horse-battery", "ivy": "ivy-correct-horse-battery"}
ROLES = {"oli": "operator", "ivy": "investigator"}
WAIT_S = 180.0


def _wait(what: str, probe: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    return wait_for(what, probe, timeout)


def _rows(data: Path, kind: str) -> list[tuple[int, float, dict[str, Any]]]:
    db = data / "archive.sqlite"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute(
                "SELECT idx, at, payload FROM records WHERE kind = ? ORDER BY idx", (kind,)
            ).fetchall()
    except sqlite3.Error:
        return []
    return [(int(i), float(at), json.loads(p)) for i, at, p in rows]


def _verdicts(data: Path) -> list[tuple[int, str]]:
    return [(i, p["verdict"]["verdict"]) for i, _, p in _rows(data, "verdict")]


def _config(path: Path, video: Path, witness: Path) -> Path:
    cfg = {
        "site": "incident-e2e",
        "cameras": [{"id": "cam1", "source": str(video)}],
        "actions": {"notify": {"critical": False}},
        "api": {"enabled": True, "bind": "127.0.0.1", "port": 0},
        "archive": {"witness": str(witness)},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def _login(url: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    r = client.post("/auth/login", json={"name": name, "password": PASSWORDS[name]})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


@dataclass
class Run:
    """What the playbooks answered, and the run as seen from outside."""

    data: Path
    witness: Path
    url: str = ""
    revoke: subprocess.CompletedProcess[str] | None = None
    revoked_at_index: int = 0
    failover: dict[str, Any] = field(default_factory=dict)
    preserve: dict[str, Any] = field(default_factory=dict)
    bundle: Path | None = None
    verify: subprocess.CompletedProcess[str] | None = None
    returncode: int | None = None
    stderr: str = ""
    summary: dict[str, Any] = field(default_factory=dict)


def _ask(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a playbook, then poll ``GET /incidents/{id}`` until it ended."""
    r = client.post(path, json=body)
    assert r.status_code == 202, r.text
    rid = r.json()["request_id"]

    def ended() -> dict[str, Any] | None:
        got = client.get(f"/incidents/{rid}")
        doc: dict[str, Any] = got.json()
        return doc if got.status_code == 200 and doc["state"] != "pending" else None

    return {"request_id": rid, "posted": r.json(), **_wait(f"incident {rid}", ended)}


def _play(run: Run) -> None:
    """The four playbooks, while the camera streams."""
    _wait("the first GOP verdict", lambda: _verdicts(run.data), timeout=240)
    run.revoke = run_kontur(
        "incident", "revoke-camera", "cam1", "--reason", "camera stolen from the mast",
        "--data-dir", str(run.data), "--json", "-",
    )  # fmt: skip
    oli, ivy = _login(run.url, "oli"), _login(run.url, "ivy")
    run.failover = _ask(oli, "/incidents/failover-cpu", {"reason": "GPU driver suspected"})
    first = _rows(run.data, "segment")[0][1]
    span = {"camera": "cam1", "from": first - 1.0, "to": time.time(), "reason": "case 42"}
    run.preserve = _ask(ivy, "/incidents/preserve", span)
    if run.preserve["state"] == "done":
        r = ivy.get(f"/exports/{run.preserve['request_id']}/bundle")
        assert r.status_code == 200, r.text
        run.bundle = run.data.parent / "case.zip"
        run.bundle.write_bytes(r.content)
    oli.close()
    ivy.close()
    _wait("a REVOKED GOP", lambda: any(v == "REVOKED" for _, v in _verdicts(run.data)), 120)
    run.verify = run_kontur(
        "incident", "verify-archive", "--data-dir", str(run.data), "--json", "-"
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    model = shared("models", "yolox_nano.onnx")
    tmp = tmp_path_factory.mktemp("incident-site")
    clip = short_clip(tmp / "pets09-300.mp4", 300)
    data, witness = tmp / "d", tmp / "witness.log"
    for args in (
        ("camera", "init-ca", "--data-dir", str(data)),
        ("camera", "enroll", "cam1", "--issue", "--out", str(tmp / "keys"), "--data-dir",
         str(data)),
    ):  # fmt: skip
        r = run_kontur(*args)
        assert r.returncode == 0, r.stderr
    for name, password in PASSWORDS.items():
        r = subprocess.run(
            [str(KONTUR), "user", "add", name, "--role", ROLES[name], "--password-stdin",
             "--data-dir", str(data)],
            input=password + "\n", capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    err_path, summary = tmp / "stderr.log", tmp / "summary.json"
    with open(err_path, "w") as err, open(tmp / "stdout.log", "w") as out:
        proc = subprocess.Popen(
            [str(KONTUR), "run", "--config", str(_config(tmp / "site.yaml", clip, witness)),
             "--data-dir", str(data), "--model", str(model), "--realtime",
             "--json", str(summary)],
            stdout=out, stderr=err,
        )  # fmt: skip
    result = Run(data, witness)
    try:
        found = _wait(
            "the api_listening log line",
            lambda: re.search(r'"event": "api_listening", "url": "([^"]+)"', err_path.read_text()),
        )
        result.url = found.group(1)
        _play(result)
        proc.send_signal(signal.SIGTERM)
        result.returncode = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        result.stderr = err_path.read_text()
    result.summary = json.loads(summary.read_text())
    yield result


def _incident(data: Path, rid: str) -> list[dict[str, Any]]:
    return [p for _, _, p in _rows(data, "incident") if p["request_id"] == rid]


def test_revoke_through_the_cli_refuses_the_next_gop_and_holds_what_it_sent(run: Run) -> None:
    assert run.revoke is not None
    assert run.revoke.returncode == 0, run.revoke.stderr
    doc = json.loads(run.revoke.stdout)
    p = doc["incident"]
    assert (doc["mode"], p["outcome"], p["via"]) == ("site", "done", "cli")
    assert "(through the running site, record " in run.revoke.stderr
    [(index, _, camera)] = [r for r in _rows(run.data, "camera") if r[2]["action"] == "revoke"]
    assert p["revocation"] == index and camera["reason"] == "camera stolen from the mast"
    verdicts = _verdicts(run.data)
    before = [v for i, v in verdicts if i < index]
    after = [v for i, v in verdicts if i > index]
    assert before and "REVOKED" not in before
    first = after.index("REVOKED")
    assert first <= 1, after  # the next GOP (one may have been judged before, still in flight)
    assert set(after[first:]) == {"REVOKED"}
    assert p["last_gop"]["verdict"] == "UNSIGNED"
    hold = next(h for i, _, h in _rows(run.data, "hold") if i == p["hold"])
    assert hold["reason"] == "revoked: camera stolen from the mast"
    assert hold["camera"] == "cam1" and hold["to"] - hold["from"] == 600
    assert hold["by"] == p["by"] and p["by"].startswith("cli:")


def test_failover_through_the_api_is_archived_with_who_and_why(run: Run) -> None:
    f = run.failover
    assert f["state"] == "done", f
    accepted, done = _incident(run.data, f["request_id"])
    assert (accepted["via"], accepted["by"], accepted["reason"]) == (
        "api",
        "oli",
        "GPU driver suspected",
    )
    restarts = [
        p for _, _, p in _rows(run.data, "event")
        if p.get("event") == "worker_restarted" and f["request_id"] in p.get("why", "")
    ]  # fmt: skip
    if done["platform_before"] == "cpu":  # this machine has no accelerator: said so
        assert f["detail"] == (
            "the analytics worker already runs on the CPU: it stays there for the run"
        )
        assert done["moved"] is False and restarts == []
    else:
        assert done["moved"] is True and [r["platform"] for r in restarts] == ["cpu"]
    worker = next(p for p in run.summary["processes"] if p["name"] == "worker")
    assert worker["platform"] == "cpu"
    audits = [p for _, _, p in _rows(run.data, "audit") if p["action"] == "incident:failover_cpu"]
    assert [(a["actor"], a["target"]) for a in audits] == [("oli", f"incident {f['request_id']}")]


def test_preserve_through_the_api_holds_the_span_and_its_bundle_verifies(run: Run) -> None:
    p = run.preserve
    assert p["state"] == "done", p
    _, done = _incident(run.data, p["request_id"])
    assert run.bundle is not None
    assert hashlib.sha256(run.bundle.read_bytes()).hexdigest() == done["bundle_sha256"]
    r = run_kontur("archive", "verify-export", str(run.bundle), "--json", "-")
    assert r.returncode == 0, r.stdout + r.stderr
    hold = next(h for i, _, h in _rows(run.data, "hold") if i == done["hold"])
    assert (hold["by"], hold["reason"], hold["camera"]) == ("ivy", "case 42", "cam1")
    [export] = [e for _, _, e in _rows(run.data, "export") if e["by"] == "ivy"]
    assert export["bundle"] == f"{p['request_id']}.zip"


def test_verify_through_the_cli_checks_the_witness(run: Run) -> None:
    assert run.verify is not None
    assert run.verify.returncode == 0, run.verify.stderr
    doc = json.loads(run.verify.stdout)
    assert doc["mode"] == "site" and doc["incident"]["outcome"] == "done"
    report = doc["report"]
    assert report["ok"] is True and report["witness"]["path"] == str(run.witness)
    assert report["witness"]["checkpoints"] >= 1
    path = Path(doc["incident"]["report"])
    assert path == run.data / "run" / f"verify-{doc['incident']['request_id']}.json"


def test_the_run_state_kept_every_outcome(run: Run) -> None:
    state = json.loads((run.data / "run" / "state.json").read_text())
    rids = [
        json.loads(run.revoke.stdout)["incident"]["request_id"] if run.revoke else "",
        run.failover["request_id"],
        run.preserve["request_id"],
        json.loads(run.verify.stdout)["incident"]["request_id"] if run.verify else "",
    ]
    assert [state["incidents"][rid].split(" ")[0] for rid in rids] == ["done"] * 4


def test_sigterm_stops_cleanly_and_the_archive_verifies_with_the_witness(run: Run) -> None:
    assert run.returncode == 0, run.stderr[-3000:]
    r = run_kontur("archive", "verify", str(run.data), "--witness", str(run.witness))
    assert r.returncode == 0, r.stdout + r.stderr
    kinds = [(p["kind"], p["outcome"]) for _, _, p in _rows(run.data, "incident")]
    for kind in ("revoke_camera", "failover_cpu", "preserve", "verify_archive"):
        assert kinds.count((kind, "accepted")) == 1 and kinds.count((kind, "done")) == 1, kinds
