"""``kontur demo`` under a umask of 0o022 leaves nothing readable by group or other (ADR 0021):
every file in the data dir is 0600 (segments, write-once, 0400), every dir 0700."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tests.conftest import KONTUR
from tests.test_data_at_rest import loose

pytestmark = pytest.mark.e2e


def test_a_demo_run_leaves_only_private_files(tmp_path: Path) -> None:
    data = tmp_path / "d"
    r = subprocess.run(
        [str(KONTUR), "demo", "--seconds", "2", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=300,
        umask=0o022,
        env=dict(os.environ, COLUMNS="200"),
        check=False,
    )
    assert r.returncode == 0, r.stderr
    names = {str(p.relative_to(data)) for p in data.rglob("*")}
    assert {"archive.sqlite", "inventory.sqlite", "site-ca.key", "site-ca.pem"} <= names
    assert {"actions.jsonl", "demo-camera/cam1.key", "run/logs/gate.log"} <= names
    assert any(n.startswith("segments/") and len(n) > 70 for n in names)
    assert loose(data) == {}
