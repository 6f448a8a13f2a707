"""Shared fixtures: where the real test data lives, and how to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
KONTUR = Path(sys.executable).with_name("kontur")


def shared(*parts: str) -> Path:
    """A file in ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (../shared/data is absent in this checkout)")
    return path


def wait_for(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    """Poll ``probe`` every 0.3 s until it returns something truthy; fail naming ``what``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = probe()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"expected {what} within {timeout:.0f} s, got none")


def run_kontur(*args: str, timeout: float = 300, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run the installed ``kontur`` command."""
    env = dict(
        os.environ,
        COLUMNS="200",
        XDG_CACHE_HOME=str(kw.pop("cache", "")) or os.environ.get("XDG_CACHE_HOME", ""),
    )
    if not env["XDG_CACHE_HOME"]:
        env.pop("XDG_CACHE_HOME")
    return subprocess.run(
        [str(KONTUR), *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


@pytest.fixture(scope="session")
def shared_file() -> Callable[[str], Path]:
    """``shared`` as a fixture: a file of ../shared/data by relative path, or a skip."""

    def get(rel: str) -> Path:
        return shared(*rel.split("/"))

    return get
