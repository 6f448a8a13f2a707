"""A real site for the console: ``kontur run`` on real footage with the API on loopback.

Used by ``test_console_site.py`` and by ``benchmarks/console_screenshots.py``. Users are made
with ``kontur user add --password-stdin`` before the run (no default credentials exist); the
cameras are files of ``../shared/data/video``, by default with ``loop: true``, so the site
keeps asking the operator until it is stopped (SIGTERM, a clean stop); either way the site
serves until then.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tests.conftest import wait_for

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
KONTUR = Path(sys.executable).with_name("kontur")
START_S = 240.0


@dataclass(frozen=True)
class User:
    """A user to add before the run."""

    name: str
    roles: tuple[str, ...]
    password: str


@dataclass
class LiveSite:
    """The running site: its API URL, data dir and process."""

    url: str
    data: Path
    proc: subprocess.Popen[bytes]
    stderr: Path


def wait(what: str, probe: Callable[[], Any], timeout: float = START_S) -> Any:
    """``probe()`` once it is truthy; AssertionError naming ``what`` after ``timeout`` s."""
    return wait_for(what, probe, timeout)


def site_config(path: Path, videos: dict[str, Path], deadline_s: float, loop: bool) -> Path:
    """A site: each camera a file (looping or not); a person dwelling 2 s asks for an
    ``alarm``."""
    dwell = {"type": "dwell", "zone": "whole-frame", "classes": ["person"], "min_seconds": 2.0}
    cfg = {
        "site": "console-site",
        "cameras": [{"id": c, "source": str(v), "loop": loop} for c, v in videos.items()],
        "actions": {
            "alarm": {"critical": True, "restricted_alternative": "notify"},
            "notify": {"critical": False},
        },
        "policies": [{"rule": "person-dwell", "when": dwell, "action": "alarm"}],
        "operator": {"deadline_s": deadline_s},
        "api": {"enabled": True, "bind": "127.0.0.1", "port": 0},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def add_user(data: Path, user: User) -> None:
    """``kontur user add`` with the password on stdin."""
    roles = [arg for r in user.roles for arg in ("--role", r)]
    r = subprocess.run(
        [str(KONTUR), "user", "add", user.name, *roles, "--password-stdin",
         "--data-dir", str(data)],
        input=user.password + "\n", capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if r.returncode != 0:
        raise AssertionError(f"expected kontur user add to succeed, got: {r.stderr}")


@contextmanager
def live_site(
    tmp: Path,
    users: list[User],
    videos: dict[str, Path],
    model: Path,
    deadline_s: float = 120.0,
    loop: bool = True,
) -> Iterator[LiveSite]:
    """Add ``users``, start ``kontur run``, wait for its API; SIGTERM and wait on exit."""
    data = tmp / "data"
    for user in users:
        add_user(data, user)
    config = site_config(tmp / "site.yaml", videos, deadline_s, loop)
    err = tmp / "stderr.log"
    with open(err, "wb") as stderr, open(tmp / "stdout.log", "wb") as stdout:
        proc = subprocess.Popen(
            [str(KONTUR), "run", "--config", str(config), "--data-dir", str(data),
             "--model", str(model)],
            stdout=stdout, stderr=stderr,
        )  # fmt: skip
    try:
        found = wait(
            "the api_listening log line",
            lambda: re.search(r'"event": "api_listening", "url": "([^"]+)"', err.read_text()),
        )
        yield LiveSite(found.group(1), data, proc, err)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
