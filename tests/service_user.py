"""Run a Python script as the service unit's user would run kontur: uid/gid 4242, no
capability, an empty bounding set, no new privileges (``setpriv``, as systemd applies
ADR 0036's unit), with the system's Python and this checkout's ``src`` on the path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

SERVICE_UID = 4242
SYSTEM_PYTHON = Path("/usr/bin/python3")


def _setpriv() -> str:
    """``setpriv``'s path; skips the test where the unit's credentials cannot be taken."""
    setpriv = shutil.which("setpriv")
    if sys.platform != "linux" or os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs Linux, root and setpriv to take the unit's credentials")
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"needs {SYSTEM_PYTHON}, which the service user can execute")
    version = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import sys; print(sys.version_info >= (3, 11))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if version.stdout.strip() != "True":
        pytest.skip(f"{SYSTEM_PYTHON} is older than the 3.11 kontur needs")
    return setpriv


@contextmanager
def as_service_user(
    argv: Callable[[Path], list[str]], prefix: str, timeout: float
) -> Iterator[dict[str, Any]]:
    """Run ``python *argv(ROOT)`` (ROOT a fresh directory the user owns) with the unit's
    credentials; yields the JSON of its last output line."""
    setpriv = _setpriv()
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        os.chmod(root, 0o755)
        os.chown(root, SERVICE_UID, SERVICE_UID)
        cmd = [
            setpriv, f"--reuid={SERVICE_UID}", f"--regid={SERVICE_UID}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
            str(SYSTEM_PYTHON), *argv(root),
        ]  # fmt: skip
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "src")}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        if not out.stdout:
            pytest.fail(f"the service-user run printed nothing: {out.stderr[-2000:]}")
        yield json.loads(out.stdout.splitlines()[-1])
    finally:
        shutil.rmtree(root, ignore_errors=True)
