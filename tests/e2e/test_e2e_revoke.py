"""``kontur camera revoke`` while the perimeter runs: REVOKED from the next GOP, archived."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from tests.conftest import KONTUR, run_kontur

pytestmark = pytest.mark.e2e


def _verdicts(data: Path) -> list[str]:
    db = data / "archive.sqlite"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            rows = conn.execute("SELECT payload FROM records WHERE kind = 'verdict' ORDER BY idx")
            return [json.loads(r[0])["verdict"]["verdict"] for r in rows]
    except sqlite3.Error:
        return []


def test_revocation_reaches_a_running_perimeter(tmp_path: Path) -> None:
    # the default clip (bikes.mp4, GOPs of 1.2-2.4 s), signed on the fly by the demo camera,
    # paced in real time so that the revocation lands mid-stream
    data, out = tmp_path / "d", tmp_path / "s.json"
    proc = subprocess.Popen(
        [str(KONTUR), "demo", "--realtime", "--data-dir", str(data), "--json", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _verdicts(data):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        assert _verdicts(data) == ["AUTHENTIC"], "expected the first GOP verified before revoking"
        r = run_kontur("camera", "revoke", "cam1", "--reason", "stolen", "--data-dir", str(data))
        assert r.returncode == 0, r.stderr
        assert proc.wait(timeout=180) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    verdicts = _verdicts(data)
    assert verdicts[0] == "AUTHENTIC" and verdicts[-1] == "REVOKED"
    first_revoked = verdicts.index("REVOKED")
    assert set(verdicts[first_revoked:]) == {"REVOKED"}  # irreversible, from the next GOP on
    with sqlite3.connect(f"file:{data / 'archive.sqlite'}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT payload FROM records WHERE kind = 'camera' ORDER BY idx")
        actions = [json.loads(p[0]) for p in rows]
    revoke = [a for a in actions if a["action"] == "revoke"]
    assert len(revoke) == 1 and revoke[0]["reason"] == "stolen"
    assert json.loads(out.read_text())["cameras"][0]["gops"]["REVOKED"] == len(verdicts) - (
        first_revoked
    )
    decisions = [json.loads(x) for x in (data / "actions.jsonl").read_text().splitlines()]
    allowed = [d for d in decisions if d.get("outcome") == "ALLOW"]
    assert all(max(d["gops"]) < first_revoked for d in allowed), allowed
    assert run_kontur("archive", "verify", str(data)).returncode == 0
