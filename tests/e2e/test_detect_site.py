"""End to end: ``POST /v1/detect`` on a real ``kontur run`` site (issue 14 §2, ADR 0031).

One real run: PETS09 looping, YOLOX-Nano as the site's release (``--model``: a throwaway
release, verified and installed like a real one), the API block on a free loopback port with
``api.extraction`` from the site file (a daily quota of 3). An integrator made with
``kontur user add --role integrator`` and a machine token from ``kontur user token`` asks for
the detections on a real photo:

- the answer holds the people in it, from the site's own release (its model id);
- the model ran in a sandboxed query worker, a child of the API block, under uid 65534 with
  a seccomp filter; the API process itself never mapped an inference runtime;
- the configured quota holds: the 4th query of the day is 429 with ``Retry-After``;
- SIGTERM stops the site cleanly, and the archive holds the integrator's audited query.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.conftest import KONTUR, shared, wait_for

pytestmark = pytest.mark.e2e

PASSWORD = "integrator-correct-horse-battery"
WAIT_S = 240.0


def _config(path: Path, video: Path) -> Path:
    cfg = {
        "site": "e2e-detect",
        "cameras": [{"id": "cam1", "source": str(video), "loop": True}],
        "api": {
            "enabled": True,
            "bind": "127.0.0.1",
            "port": 0,
            "extraction": {"daily_quota": 3, "prada": {"min_samples": 150}},
        },
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def _wait(what: str, probe: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    return wait_for(what, probe, timeout)


def _kontur(*args: str, stdin: str | None = None) -> str:
    r = subprocess.run(
        [str(KONTUR), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def _children(pid: int) -> list[int]:
    """Every child of ``pid``, whichever of its threads started it."""
    tasks = Path(f"/proc/{pid}/task").glob("*/children")
    return [int(p) for task in tasks for p in task.read_text().split()]


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


@dataclass
class DetectRun:
    """What the run did, as seen from outside."""

    data: Path
    url: str = ""
    answers: list[httpx.Response] = field(default_factory=list)
    api_maps: str = ""
    worker_maps: str = ""
    worker_status: dict[str, str] = field(default_factory=dict)
    returncode: int | None = None
    stderr: str = ""
    summary: dict[str, Any] = field(default_factory=dict)


def _query(run: DetectRun, token: str, supervisor: int) -> None:
    """The integrator's part: four queries of the bus photo, then a look at the processes."""
    image = base64.b64encode(shared("images", "bus.jpg").read_bytes()).decode()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=run.url, timeout=120, headers=headers) as client:
        _wait("the site's run state", lambda: client.get("/status").status_code == 200)
        for _ in range(4):
            run.answers.append(client.post("/v1/detect", json={"image": image}))
    [api_pid] = [p for p in _children(supervisor) if b"kontur.api.process" in _cmdline(p)]
    run.api_maps = Path(f"/proc/{api_pid}/maps").read_text()
    [worker] = [p for p in _children(api_pid) if b"query_worker" in _cmdline(p)]
    run.worker_maps = Path(f"/proc/{worker}/maps").read_text()
    run.worker_status = _status(worker)


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DetectRun]:
    video = shared("video", "pets09_s2l1_480x360.avi")
    model = shared("models", "yolox_nano.onnx")
    tmp = tmp_path_factory.mktemp("detect-site")
    data = tmp / "d"
    _kontur("user", "add", "integ", "--role", "integrator", "--password-stdin",
            "--data-dir", str(data), stdin=PASSWORD + "\n")  # fmt: skip
    made = _kontur("user", "token", "integ", "--token-name", "bridge", "--data-dir", str(data),
                   "--json", "-")  # fmt: skip
    token = json.loads(made)["token"]
    err_path, summary = tmp / "stderr.log", tmp / "summary.json"
    with open(err_path, "w") as err, open(tmp / "stdout.log", "w") as out:
        proc = subprocess.Popen(
            [str(KONTUR), "run", "--config", str(_config(tmp / "site.yaml", video)),
             "--data-dir", str(data), "--model", str(model), "--json", str(summary)],
            stdout=out, stderr=err,
        )  # fmt: skip
    result = DetectRun(data)
    try:
        found = _wait(
            "the api_listening log line",
            lambda: re.search(r'"event": "api_listening", "url": "([^"]+)"', err_path.read_text()),
        )
        result.url = found.group(1)
        _query(result, token, proc.pid)
        proc.send_signal(signal.SIGTERM)
        result.returncode = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        result.stderr = err_path.read_text()
    result.summary = json.loads(summary.read_text())
    yield result


def test_the_integrator_gets_the_people_from_the_sites_release(run: DetectRun) -> None:
    first = run.answers[0]
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["model"] == run.summary["detector"]["model_id"]
    assert (body["width"], body["height"]) == (810, 1080)
    people = [d for d in body["detections"] if d["class"] == "person"]
    assert len(people) >= 3, body["detections"]
    for d in people:
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 < x2 <= 810 and 0 <= y1 < y2 <= 1080 and 0.3 <= d["confidence"] <= 1


def test_the_model_runs_in_a_sandboxed_child_never_in_the_api(run: DetectRun) -> None:
    assert "onnxruntime" in run.worker_maps
    assert "onnxruntime" not in run.api_maps
    status = run.worker_status
    assert status["Uid"].split()[:2] == ["65534", "65534"], status["Uid"]
    assert status["Seccomp"] == "2" and status["NoNewPrivs"] == "1"


def test_the_sites_extraction_settings_reach_the_api(run: DetectRun) -> None:
    assert [r.status_code for r in run.answers] == [200, 200, 200, 429]
    refused = run.answers[3]
    assert refused.json()["detail"].startswith("expected at most 3 queries a day, got more")
    assert int(refused.headers["Retry-After"]) > 0


def test_the_site_stops_cleanly_and_the_query_is_audited(run: DetectRun) -> None:
    assert run.returncode == 0, run.stderr[-3000:]
    with sqlite3.connect(f"file:{run.data / 'archive.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT payload FROM records WHERE kind = 'audit'").fetchall()
    audit = [json.loads(r[0]) for r in rows]
    seen = {(a["actor"], a["action"], a["outcome"]) for a in audit}
    assert ("integ", "detect:query", "ok") in seen
    assert ("integ", "detect:query", "refused") in seen  # the day's first quota refusal
