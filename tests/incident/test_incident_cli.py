"""``kontur incident …`` on a real archive (ADR 0029): with no site running (the command is
the archive's writer), through a site that holds the archive (its desk takes the request
file), and on bad input. Each playbook prints what it did; ``--json`` gives the same facts.

The "site" here is the real incident desk on the real archive's writer, ticking in a thread
and publishing the run state as the supervisor does; the e2e test runs the real ``kontur run``.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import run_kontur

from kontur.archive import Archive
from kontur.clock import SystemClock
from kontur.incident.spool import spool_dir
from kontur.runtime.exports import SiteExports
from kontur.runtime.incidents import IncidentDesk, SiteHooks
from kontur.wire.runstate import RunState, write_run_state


def _incident(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_kontur("incident", *args, "--data-dir", str(data), timeout=180)


def _records(data: Path, kind: str) -> list[dict[str, Any]]:
    with Archive.open_readonly(data) as arc:
        return [r.payload for r in arc.iter_records(kind=kind)]


# ---- no site runs -------------------------------------------------------------------------
def test_revoke_camera_offline(data: Path) -> None:
    r = _incident(data, "revoke-camera", "cam1", "--reason", "key leaked", "--json", "-")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    p = doc["incident"]
    assert (doc["mode"], p["kind"], p["outcome"], p["via"]) == (
        "offline",
        "revoke_camera",
        "done",
        "cli",
    )
    assert p["by"].startswith("cli:") and p["reason"] == "key leaked"
    assert p["last_gop"]["verdict"] == "AUTHENTIC"
    assert f"incident {p['request_id']} revoke_camera by {p['by']} (no site runs" in r.stderr
    assert p["detail"] in r.stderr  # the human line, on stderr since stdout holds the JSON
    [hold] = _records(data, "hold")
    assert hold["reason"] == "revoked: key leaked"
    [revoke] = [c for c in _records(data, "camera") if c["action"] == "revoke"]
    assert revoke["camera_id"] == "cam1"
    assert run_kontur("archive", "verify", str(data)).returncode == 0


def test_failover_cpu_offline_fails_in_one_line_and_is_archived(data: Path) -> None:
    r = _incident(data, "failover-cpu", "--reason", "GPU driver suspected")
    assert r.returncode == 1
    assert r.stderr == "kontur: error: expected a running site to move to the CPU, got none\n"
    outcomes = [(p["kind"], p["outcome"]) for p in _records(data, "incident")]
    assert outcomes == [("failover_cpu", "accepted"), ("failover_cpu", "failed")]


def test_preserve_offline_writes_a_bundle_that_verifies(data: Path) -> None:
    segments = _records_at(data, "segment")
    t0, t1 = segments[1] - 0.001, segments[4] + 0.001
    r = _incident(
        data, "preserve", "--camera", "cam1", "--from", repr(t0), "--to", repr(t1),
        "--reason", "case 42", "--json", "-",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)["incident"]
    bundle = Path(p["bundle"])
    assert bundle.parent == data / "exports" and stat.S_IMODE(bundle.stat().st_mode) == 0o400
    check = run_kontur("archive", "verify-export", str(bundle))
    assert check.returncode == 0, check.stdout + check.stderr
    [hold] = _records(data, "hold")
    assert (hold["from"], hold["to"], hold["reason"]) == (t0, t1, "case 42")


def _records_at(data: Path, kind: str) -> list[float]:
    with Archive.open_readonly(data) as arc:
        return [r.at for r in arc.iter_records(kind=kind)]


def test_verify_archive_offline_saves_the_report(data: Path) -> None:
    r = _incident(data, "verify-archive", "--json", "-")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["report"]["ok"] is True and doc["incident"]["ok"] is True
    path = Path(doc["incident"]["report"])
    assert path == data / "run" / f"verify-{doc['incident']['request_id']}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "archive OK: " in r.stderr


def test_verify_archive_of_a_tampered_archive_exits_1(data: Path) -> None:
    sha = _records(data, "segment")[0]["sha256"]
    path = data / "segments" / sha[:2] / sha
    path.chmod(0o600)
    path.write_bytes(path.read_bytes()[:-7])
    r = _incident(data, "verify-archive")
    assert r.returncode == 1
    assert r.stderr.startswith("kontur: error: archive BROKEN at record ")
    assert r.stderr.count("\n") == 1


def test_verify_archive_reads_an_archive_it_cannot_write(data: Path) -> None:
    (data / "archive.key").unlink()  # the writer cannot sign: verify read-only, archive nothing
    before = len(_records(data, "incident"))
    r = _incident(data, "verify-archive", "--json", "-")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["mode"] == "read-only" and doc["record"] is None
    assert "not archived: " in doc["incident"]["detail"]
    assert len(_records(data, "incident")) == before


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("revoke-camera", "cam1"), "--reason: expected why (it is archived), got none"),
        (
            ("revoke-camera", "../etc", "--reason", "x"),
            "--camera: expected a valid value (String should match pattern",
        ),
        (
            ("preserve", "--camera", "cam1", "--from", "20", "--to", "10", "--reason", "x"),
            "--to: expected a time after --from, got 10.0",
        ),
        (
            ("preserve", "--camera", "cam1", "--from", "0", "--to", "7200", "--reason", "x"),
            "--to: expected at most 3600 s after --from, got 7200 s",
        ),
        (
            ("preserve", "--camera", "cam1", "--from", "yesterday", "--to", "1", "--reason", "x"),
            "--from: ",
        ),
        (("revoke-camera", "cam1", "--reason", "x", "--preserve-s", "0"), "--preserve-s: "),
    ],
)
def test_bad_input_is_one_line_and_exit_2(data: Path, args: tuple[str, ...], line: str) -> None:
    r = _incident(data, *args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"kontur: error: {line}"), r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert _records(data, "incident") == []


def test_no_archive_is_one_line(tmp_path: Path) -> None:
    r = _incident(tmp_path / "none", "verify-archive")
    assert (r.returncode, r.stderr) == (
        2,
        f"kontur: error: {tmp_path / 'none'}: expected an archive, got no archive.sqlite\n",
    )


# ---- through a running site ---------------------------------------------------------------
class StandInSite:
    """The supervisor's side: the archive's writer (so the CLI finds it locked), the real
    incident desk taking request files, and the run state published after each change."""

    def __init__(self, data: Path, take: bool = True) -> None:
        self.data = data
        self.archive = Archive.open(data)
        clock = SystemClock()
        self.exports = SiteExports(self.archive, data, clock)
        hooks = SiteHooks(
            revoke=self._revoke, worker_platform=lambda: "cpu", cpu_allowed=lambda: True,
            move_to_cpu=lambda why: None, exports=self.exports, spool=take,
        )  # fmt: skip
        self.desk = IncidentDesk(self.archive, data, clock, hooks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _revoke(self, camera: str, reason: str) -> None:
        from kontur.ingest.inventory import Inventory

        with Inventory.open(self.data) as inv:
            inv.revoke(camera, reason)
            inv.drain_to_archive(self.archive)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.exports.tick()
            if self.desk.tick(time.monotonic()):
                now = time.time()
                state = RunState(
                    at=now, site="t", started_at=now, state="NORMAL", incidents=self.desk.status
                )
                write_run_state(self.data, state)
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.exports.close()
        self.desk.close()
        self.archive.close()


@pytest.fixture
def site(data: Path) -> Iterator[StandInSite]:
    s = StandInSite(data)
    yield s
    s.close()


def test_through_a_running_site_the_desk_takes_the_request(data: Path, site: StandInSite) -> None:
    r = _incident(data, "failover-cpu", "--reason", "GPU driver suspected", "--json", "-")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    p = doc["incident"]
    assert (doc["mode"], p["outcome"], p["via"], p["moved"]) == ("site", "done", "cli", False)
    assert p["detail"] == "the analytics worker already runs on the CPU: it stays there for the run"
    assert "(through the running site, record " in r.stderr
    assert list(spool_dir(data).iterdir()) == []
    assert stat.S_IMODE(spool_dir(data).stat().st_mode) == 0o700


def test_a_failure_through_the_site_exits_1(data: Path, site: StandInSite) -> None:
    r = _incident(data, "revoke-camera", "cam9", "--reason", "stolen")
    assert r.returncode == 1
    assert r.stderr == "kontur: error: camera cam9: expected an enrolled camera, got none\n"


def test_a_request_nobody_takes_is_withdrawn(data: Path) -> None:
    site = StandInSite(data, take=False)  # holds the archive, never reads the spool
    try:
        r = _incident(data, "verify-archive", "--wait-s", "1")
    finally:
        site.close()
    assert r.returncode == 1
    assert r.stderr.startswith("kontur: error: expected the running site to take incident ")
    assert r.stderr.endswith("within 1 s, got nothing: the request was withdrawn\n")
    assert list(spool_dir(data).iterdir()) == []
    assert not os.path.exists(data / "run" / "state.json")
