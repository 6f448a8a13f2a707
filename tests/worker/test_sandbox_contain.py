"""What the sandboxed worker cannot leave behind: a process that outlives it, a file past its
cap, a full disk, a thread or process storm, a file under the data dir.

Each act is tried from inside a real sandboxed process (the probe enters the sandbox exactly
as the worker does). The probes run as a uid of their own (``UID``), so that ``RLIMIT_NPROC``
(counted per uid across the host) sees no other process, and the controls run with the layer
under test removed, to show the test would see the act succeed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0,
    reason="the worker sandbox is Linux-only; these tests run as root, as CI does",
)

#: A uid no account uses: RLIMIT_NPROC counts this uid's tasks only.
UID = 64_321
MAX_FILE_MB, SCRATCH_MB, MAX_TASKS = 1, 4, 16
_MiB = 1 << 20
_PR_SET_CHILD_SUBREAPER = 36


@dataclass
class Land:
    """A data dir laid out as a run's (archive, run/logs), and a scratch dir outside it."""

    root: Path
    data: Path

    def policy(self, name: str, **overrides: Any) -> Path:
        policy = {
            "scratch_dir": str(self.root / f"scratch-{name}"),
            "memory_mb": 1024,
            "max_file_mb": MAX_FILE_MB,
            "scratch_max_mb": SCRATCH_MB,
            "max_tasks": MAX_TASKS,
            "uid": UID,
            "gid": UID,
            "deny": [str(self.data)],
            **overrides,
        }
        path = self.root / f"policy-{name}.json"
        path.write_text(json.dumps(policy))
        return path


@pytest.fixture(scope="module")
def land() -> Iterator[Land]:
    root = Path(tempfile.mkdtemp(prefix="kontur-contain-", dir="/tmp"))
    os.chmod(root, 0o755)
    data = root / "data"
    for d in (data, data / "archive", data / "run", data / "run" / "logs"):
        d.mkdir()
        os.chmod(d, 0o777)  # world-writable: only the sandbox stops a write here
    try:
        yield Land(root, data)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _probe(policy: Path, *args: str, **kw: Any) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "kontur.worker.sandbox.probe", str(policy), *args]
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, **kw)


def _run(policy: Path, *args: str, **kw: Any) -> dict[str, Any]:
    proc = _probe(policy, *args, **kw)
    out, err = proc.communicate(timeout=60)
    assert out, f"probe printed nothing (exit {proc.returncode}): {(err or '')[-2000:]}"
    assert proc.returncode == 0, f"the probe did not survive its acts: {proc.returncode}"
    result: dict[str, Any] = json.loads(out.splitlines()[0])
    return result


@pytest.fixture(scope="module")
def acts(land: Land) -> dict[str, Any]:
    """One probe with the full sandbox that tries every act, limits included."""
    result = _run(land.policy("full"), "--limits", f"--data-dir={land.data}")
    assert result["isolation"]["level"] == "full", result["isolation"]["missing"]
    assert result["isolation"]["user"] == f"uid {UID} gid {UID}"
    acts: dict[str, Any] = result["acts"]
    acts["_isolation"] = result["isolation"]
    return acts


def _refused(outcome: dict[str, Any], errno_name: str) -> None:
    assert outcome["ok"] is False, f"expected {errno_name}, the act succeeded: {outcome}"
    assert outcome["errno"] == errno_name, outcome


# --- no process outlives the worker ---------------------------------------------------


def test_worker_cannot_fork_spawn_or_clone_a_process(acts: dict[str, Any]) -> None:
    _refused(acts["fork"], "EPERM")
    _refused(acts["clone_process"], "EPERM")
    _refused(acts["exec_binary"], "EPERM")  # subprocess.run: vfork-style clone refused
    _refused(acts["clone3"], "ENOSYS")  # so glibc falls back to clone, which is checked
    _refused(acts["many_processes"], "EPERM")
    assert acts["many_processes"]["count"] == 0


def test_worker_can_still_start_threads(acts: dict[str, Any]) -> None:
    assert acts["thread"]["ok"], acts["thread"]


def test_worker_cannot_execve(acts: dict[str, Any]) -> None:
    _refused(acts["execve"], "EPERM")


def _processes_of(uid: int, token: str) -> list[int]:
    """Live processes of ``uid`` whose command line holds ``token`` (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            zombie = stat[stat.rindex(")") + 2] == "Z"
            mine = entry.stat().st_uid == uid and not zombie
            if mine and token.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


@contextlib.contextmanager
def _subreaper() -> Iterator[None]:
    """Orphans of this test's descendants come to this process (to be reaped), not to init."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        yield
    finally:
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def _kill_and_reap(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


@pytest.mark.parametrize("seccomp", [True, False], ids=["sandboxed", "control_without_seccomp"])
def test_no_grandchild_outlives_the_worker(land: Land, seccomp: bool) -> None:
    """The review's orphan: a grandchild that outlives the worker, holding its pipes."""
    skip = [] if seccomp else ["seccomp"]
    policy = land.policy(f"orphan-{seccomp}", unsafe_skip=skip)
    with _subreaper():
        proc = _probe(policy, "--orphan=30")
        assert proc.stdout is not None
        result = json.loads(proc.stdout.readline())
        proc.wait(timeout=30)
        time.sleep(0.2)
        survivors = _processes_of(UID, str(policy))
        try:
            if seccomp:
                _refused(result["acts"]["orphan"], "EPERM")
                assert survivors == []
                assert proc.stdout.read() == "", "no one else holds the probe's stdout"
            else:
                assert result["acts"]["orphan"]["ok"], result["acts"]["orphan"]
                assert len(survivors) == 1, "control: the test sees a surviving grandchild"
        finally:
            _kill_and_reap(survivors)
            proc.stdout.close()
            if proc.stderr is not None:
                proc.stderr.close()


# --- limits ---------------------------------------------------------------------------


def test_file_past_max_file_mb_fails_with_efbig(acts: dict[str, Any]) -> None:
    """RLIMIT_FSIZE stops the write at the cap; SIGXFSZ is ignored, so the worker lives on
    (``_run`` checked its exit status 0)."""
    _refused(acts["write_past_file_cap"], "EFBIG")
    assert acts["write_past_file_cap"]["count"] == MAX_FILE_MB * _MiB
    assert acts["_isolation"]["limits"]["file_bytes"] == MAX_FILE_MB * _MiB


def test_scratch_fills_up_at_its_cap_in_ram_not_on_disk(acts: dict[str, Any], land: Land) -> None:
    _refused(acts["fill_scratch"], "ENOSPC")
    assert (SCRATCH_MB - 1) * _MiB < acts["fill_scratch"]["count"] <= SCRATCH_MB * _MiB
    assert acts["_isolation"]["scratch"] == f"tmpfs {SCRATCH_MB} MiB"
    assert list((land.root / "scratch-full").iterdir()) == [], "nothing reached the disk"


def test_threads_stop_at_max_tasks(acts: dict[str, Any]) -> None:
    outcome = acts["many_threads"]
    assert (outcome["ok"], outcome["error"]) == (False, "RuntimeError"), outcome
    assert "can't start new thread" in outcome["detail"]
    assert 0 < outcome["count"] < MAX_TASKS  # the main thread counts too
    limits = acts["_isolation"]["limits"]
    assert limits["max_tasks"] == limits["uid_tasks_at_enter"] + MAX_TASKS


def test_processes_stop_at_max_tasks_without_seccomp(land: Land) -> None:
    """RLIMIT_NPROC is the layer under the seccomp filter: a fork storm ends in EAGAIN."""
    result = _run(land.policy("nproc", unsafe_skip=["seccomp"]), "--limits")
    outcome = result["acts"]["many_processes"]
    _refused(outcome, "EAGAIN")
    assert 0 < outcome["count"] < MAX_TASKS


def test_log_past_max_file_mb_fails_and_the_worker_lives_on(land: Land) -> None:
    """The inherited stderr log is a regular file: it is capped too, without SIGXFSZ."""
    log = land.root / "full.log"
    log.write_bytes(bytes(MAX_FILE_MB * _MiB))
    with open(log, "ab") as stderr:
        result = _run(land.policy("log"), stderr=stderr)
    _refused(result["acts"]["write_stderr"], "EFBIG")
    assert log.stat().st_size == MAX_FILE_MB * _MiB


# --- the data dir ---------------------------------------------------------------------


def test_worker_cannot_write_under_the_data_dir(acts: dict[str, Any], land: Land) -> None:
    _refused(acts["write_data_dir"], "EACCES")
    _refused(acts["write_data_logs"], "EACCES")
    _refused(acts["mkdir_data_dir"], "EACCES")
    assert sorted(p.name for p in land.data.iterdir()) == ["archive", "run"]
    assert list((land.data / "run" / "logs").iterdir()) == []


def test_a_scratch_dir_under_an_unsearchable_parent_is_noted(land: Land) -> None:
    """``tempfile.mkdtemp`` makes a 0700 root dir: the worker's uid cannot use absolute
    scratch paths under it (TMPDIR, HOME), only its cwd; the report says so."""
    private = land.root / "private"
    private.mkdir(mode=0o700)
    result = _run(land.policy("private", scratch_dir=str(private / "worker")))
    assert (
        f"uid {UID} cannot search {private}: the scratch dir is usable only relative to the "
        "cwd, not by its absolute path (TMPDIR, HOME)"
    ) in result["isolation"]["notes"]
    _refused(result["acts"]["write_scratch"], "EACCES")
    assert result["acts"]["write_scratch_relative"]["ok"]
