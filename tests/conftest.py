"""Shared fixtures: where the real test data lives, and how to run the CLI."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
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


def pytest_configure(config: pytest.Config) -> None:
    """Compile kontur's modules to bytecode once, before any test starts a process. Where
    ``PYTHONDONTWRITEBYTECODE`` is set (as on the machines this suite is run on), no process
    writes a .pyc, so each ``kontur`` process the suite starts (every perimeter block, every
    command run as a user would) compiled the whole package again: up to 0.5 s of CPU for a
    perimeter block, 10-20% of an end-to-end test. Only the controller compiles (xdist workers start
    after it); an unwritable tree is left as it is (``quiet=2``)."""
    if hasattr(config, "workerinput"):
        return
    import compileall

    compileall.compile_dir(REPO / "src" / "kontur", quiet=2)


def shared(*parts: str) -> Path:
    """A file in ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (../shared/data is absent in this checkout)")
    return path


def built_once(
    factory: pytest.TempPathFactory, worker_id: str, name: str, build: Callable[[Path], None]
) -> Path:
    """A directory ``build`` fills once per test run, however many pytest-xdist workers need
    it: the first builds it in the run's shared temporary directory, under a lock, and the
    others wait for it and read it. Tests must not write into it (copy it first). Without
    xdist (``worker_id`` "master"), a directory of this session's own."""
    if worker_id == "master":
        own = factory.mktemp(name)
        build(own)
        return own
    root = factory.getbasetemp().parent / name  # this run's, every worker's
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / ".built").is_file():  # (a build that failed is tried again)
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            build(root)
            (root / ".built").touch()
    return root


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


#: Runs the command line in this interpreter with a spy on ``av.open``, then says (last stderr
#: line, JSON) what the command line's own process opened and which runtimes it had loaded.
_SPIED = """\
import json, sys
import av
opened, real_open = [], av.open
def spy(file, *args, **kw):
    opened.append(str(file))
    return real_open(file, *args, **kw)
av.open = spy
from kontur.cli import main
sys.argv = ["kontur", *sys.argv[1:]]
try:
    main()
finally:
    loaded = [m for m in ("onnxruntime", "openvino") if m in sys.modules]
    print(json.dumps({"opened": opened, "loaded": loaded}), file=sys.stderr)
"""


def run_kontur_spied(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, list[str]]]:
    """Run the command line with a spy on ``av.open``: the result (its stderr without the
    spy's line) and what its own process opened (``opened``) and loaded (``loaded``): the
    supervisor parses no video and loads no inference runtime (ADR 0014)."""
    r = subprocess.run(
        [sys.executable, "-c", _SPIED, *args], capture_output=True, text=True,
        timeout=timeout, check=False, env=dict(os.environ, COLUMNS="200", **(env or {})),
    )  # fmt: skip
    err, _, spied = r.stderr.rstrip("\n").rpartition("\n")
    r.stderr = err + "\n" if err else ""
    return r, json.loads(spied)


@pytest.fixture(scope="session")
def shared_file() -> Callable[[str], Path]:
    """``shared`` as a fixture: a file of ../shared/data by relative path, or a skip."""

    def get(rel: str) -> Path:
        return shared(*rel.split("/"))

    return get
