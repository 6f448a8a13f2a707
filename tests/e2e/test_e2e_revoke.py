"""``kontur camera revoke`` while the perimeter runs: REVOKED from the next GOP, archived; and
a revocation the archive holds survives an edited ``inventory.sqlite`` (ADR 0021), at start
and mid-run."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from tests.conftest import KONTUR, run_kontur, shared
from tests.e2e.pets_clip import first_gops

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
        # once the perimeter has archived it, an attacker un-revokes the camera in the
        # inventory: ingest holds the archived revocation (ADR 0021)
        while not any(p["action"] == "revoke" for _, p in _camera_records(data)):
            assert proc.poll() is None and time.monotonic() < deadline + 60
            time.sleep(0.1)
        time.sleep(0.5)
        _tamper_inventory(data)
        at_tamper = len(_verdicts(data))
        assert proc.wait(timeout=180) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    verdicts = _verdicts(data)
    assert verdicts[0] == "AUTHENTIC" and verdicts[-1] == "REVOKED"
    first_revoked = verdicts.index("REVOKED")
    assert set(verdicts[first_revoked:]) == {"REVOKED"}  # irreversible, from the next GOP on
    assert len(verdicts) > at_tamper, "expected GOPs checked after the inventory was edited"
    notes = json.loads(out.read_text())["notes"]
    assert any(n.startswith("inventory tampered: camera cam1 was revoked") for n in notes)
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


def _camera_records(data: Path) -> list[tuple[int, dict]]:
    with sqlite3.connect(f"file:{data / 'archive.sqlite'}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute("SELECT idx, payload FROM records WHERE kind = 'camera' ORDER BY idx")
        return [(int(i), json.loads(p)) for i, p in rows]


def _tamper_inventory(data: Path) -> None:
    """An attacker with write access to the data dir un-revokes every camera with sqlite3:
    drops the triggers that make revocation irreversible, clears the revocation, and deletes
    its event from the outbox."""
    conn = sqlite3.connect(data / "inventory.sqlite", timeout=10)
    with conn:
        conn.execute("DROP TRIGGER cameras_no_unrevoke")
        conn.execute("DROP TRIGGER cameras_no_delete")
        conn.execute("UPDATE cameras SET revoked_at = NULL, revoked_reason = NULL")
        conn.execute('DELETE FROM events WHERE payload LIKE \'%"action": "revoke"%\'')
    conn.close()


def test_revocation_survives_an_edited_inventory(tmp_path: Path) -> None:
    data, keys, clip = tmp_path / "d", tmp_path / "k", tmp_path / "signed.mkv"
    assert run_kontur("camera", "init-ca", "--data-dir", str(data)).returncode == 0
    r = run_kontur(
        "camera", "enroll", "cam1", "--issue", "--out", str(keys), "--data-dir", str(data)
    )
    assert r.returncode == 0, r.stderr
    # the first GOP of the traffic clip (160 frames, 5.3 s), remuxed: a short clip to sign
    video = first_gops(shared("video", "car_traffic_640x360.mp4"), tmp_path / "one.mp4", 1)
    r = run_kontur("sign", str(video), "--key", str(keys / "cam1.key"), "--cert",
                   str(keys / "cam1.pem"), "--out", str(clip))  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = run_kontur("camera", "revoke", "cam1", "--reason", "stolen", "--data-dir", str(data))
    assert r.returncode == 0, r.stderr
    [index] = [i for i, p in _camera_records(data) if p["action"] == "revoke"]
    _tamper_inventory(data)
    listed = run_kontur("camera", "list", "--data-dir", str(data), "--json", "-")
    assert json.loads(listed.stdout)["cameras"][0]["revoked_at"] is None  # the inventory is fooled

    r = run_kontur("verify", str(clip), "--camera", "cam1", "--data-dir", str(data), "--json", "-")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["authentic"] is False and doc["summary"] == {"REVOKED": 1}
    assert all(f"stolen (archive record {index})" in g["reason"] for g in doc["gops"])
    assert doc["revocation"]["archive"] == str(data / "archive.sqlite")
    [finding] = doc["revocation"]["inventory_tampered"]
    assert finding.startswith("camera cam1 was revoked at ") and f"record {index})" in finding
    assert "inventory tampered: camera cam1 was revoked" in r.stderr

    # the perimeter (paced: ingest does not wait for the HOG fallback) refuses it too
    out = tmp_path / "s.json"
    r = run_kontur("demo", "--source", str(clip), "--realtime", "--data-dir", str(data),
                   "--json", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads(out.read_text())
    assert summary["cameras"][0]["gops"] == {"REVOKED": 1}
    assert any(n.startswith("inventory tampered: camera cam1") for n in summary["notes"])
    assert summary["cameras"][0]["decisions"]["ALLOW"] == 0
    with sqlite3.connect(f"file:{data / 'archive.sqlite'}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT payload FROM records WHERE kind IN ('event', 'verdict')")
        payloads = [json.loads(p[0]) for p in rows]
    events = [p for p in payloads if p.get("event") == "inventory_tampered"]
    assert [(e["camera_id"], e["archive_index"]) for e in events] == [("cam1", index)]
    reasons = [" ".join(p["verdict"]["reasons"]) for p in payloads if "verdict" in p]
    assert reasons and all(f"(archive record {index})" in x for x in reasons)
    assert run_kontur("archive", "verify", str(data)).returncode == 0
