"""The supervisor measures the worker's isolation from outside (``measure``), against real
processes: a sandboxed probe holding still, probes with one mechanism left out, and a plain
process that claims full isolation. The measurement never takes the worker's word for
anything but what it says is missing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kontur.worker.sandbox import IsolationReport, SandboxPolicy, measure
from kontur.worker.sandbox.measure import UNMEASURED
from kontur.worker.sandbox.policy import NOBODY

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0,
    reason="the worker sandbox is Linux-only; these tests run as root, as CI does",
)

FULL_CLAIM = IsolationReport(
    network="netns+seccomp+landlock-net",
    filesystem="landlock-abi-7",
    syscalls="seccomp-bpf",
    user=f"uid {NOBODY} gid {NOBODY}",
    scratch="tmpfs 4 MiB",
)


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kontur-measure-", dir="/tmp"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _policy(root: Path, name: str, **overrides: Any) -> tuple[Path, SandboxPolicy]:
    """The policy file the probe reads, and the same policy as the supervisor parses it."""
    obj = {"scratch_dir": str(root / f"scratch-{name}"), "scratch_max_mb": 4, **overrides}
    path = root / f"policy-{name}.json"
    path.write_text(json.dumps(obj))
    return path, SandboxPolicy.from_json(obj, default_scratch=root / "unused")


def _held(policy: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    cmd = [sys.executable, "-m", "kontur.worker.sandbox.probe", str(policy), "--hold=60"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        pytest.fail(f"probe exited {proc.returncode} before reporting")
    return proc, json.loads(line)["isolation"]


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.communicate(timeout=10)


@pytest.fixture(scope="module")
def sandboxed(root: Path) -> Iterator[tuple[subprocess.Popen[str], SandboxPolicy]]:
    path, policy = _policy(root, "full")
    proc, claim = _held(path)
    assert claim["level"] == "full", claim["missing"]
    try:
        yield proc, policy
    finally:
        _stop(proc)


def test_sandboxed_worker_measures_full(
    sandboxed: tuple[subprocess.Popen[str], SandboxPolicy],
) -> None:
    proc, policy = sandboxed
    report = measure(proc.pid, policy)
    assert report.level == "full", report.missing
    assert report.source == "supervisor"
    assert report.network == "netns+seccomp"
    assert report.syscalls == "seccomp-bpf (1 filter(s))"
    assert report.user == f"uid {NOBODY} gid {NOBODY}"
    assert report.scratch == "tmpfs 4 MiB"
    assert report.filesystem == "unmeasured: landlock (the worker claims nothing)"
    assert report.unmeasured == UNMEASURED
    lim = report.limits
    assert (lim["memory_bytes"], lim["file_bytes"], lim["core_bytes"]) == (4 << 30, 64 << 20, 0)
    assert (lim["cpu_seconds"], lim["cpu_kill_seconds"], lim["max_open_files"]) == (
        86400,
        86402,
        256,
    )
    assert lim["max_tasks"] is not None and lim["no_new_privs"] and lim["dumpable"] is False
    assert report.to_json()["level"] == "full"


def test_measure_without_a_policy_checks_what_it_can(
    sandboxed: tuple[subprocess.Popen[str], SandboxPolicy],
) -> None:
    report = measure(sandboxed[0].pid)
    assert report.level == "full", report.missing
    assert report.scratch == "unmeasured: no policy says where the scratch dir is"
    assert "scratch: no policy given" in report.unmeasured


def test_a_plain_process_claiming_full_isolation_measures_degraded(root: Path) -> None:
    """The review's forgery: the claim says "full", /proc says otherwise; /proc wins."""
    _, policy = _policy(root, "plain")
    plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        report = measure(plain.pid, policy, claimed=FULL_CLAIM.to_json())
    finally:
        plain.kill()
        plain.wait(timeout=10)
    assert report.level == "degraded"
    assert sorted({m.split(":")[0] for m in report.missing}) == [
        "limits",
        "netns",
        "scratch",
        "seccomp",
        "user",
    ]
    assert report.filesystem == "unmeasured: landlock (the worker claims landlock-abi-7)"
    assert (
        f"netns: expected its own network namespace, got the supervisor's "
        f"{os.readlink('/proc/self/ns/net')}" in report.missing
    )
    assert "seccomp: expected a seccomp filter, got mode disabled" in report.missing
    assert "limits: expected no_new_privs 1, got 0" in report.missing
    assert any(
        m.startswith("user: expected uid 65534, no groups, no capabilities; got uids [0,")
        for m in report.missing
    )
    where = os.path.realpath(policy.scratch_dir)
    assert (
        f"scratch: expected a tmpfs of at most 4 MiB on {where} in the worker's own mount "
        "namespace, got no mount there" in report.missing
    )


@pytest.mark.parametrize(
    ("skipped", "measured_missing"),
    [
        ("netns", ["netns"]),
        ("scratch", ["scratch"]),
        # the probe's unshare_user act then succeeds: all capabilities in a user namespace
        ("seccomp", ["seccomp", "user"]),
        ("user", ["limits", "user"]),  # root stays dumpable too
        ("limits", ["limits"]),
        ("landlock", []),  # not measurable from outside: only the claim says so
    ],
)
def test_each_mechanism_left_out_is_measured_missing(
    root: Path, skipped: str, measured_missing: list[str]
) -> None:
    # no RLIMIT_AS: the probe then does not try (and here succeed at) a 4 GiB allocation
    memory = {"memory_mb": None} if skipped == "limits" else {}
    path, policy = _policy(root, f"skip-{skipped}", unsafe_skip=[skipped], **memory)
    proc, claim = _held(path)
    try:
        report = measure(proc.pid, policy)
        with_claim = measure(proc.pid, policy, claimed=claim)
    finally:
        _stop(proc)
    assert sorted({m.split(":")[0] for m in report.missing}) == measured_missing, report.missing
    assert report.level == ("full" if not measured_missing else "degraded")
    assert f"claimed by the worker: {skipped}: skipped by the policy (unsafe_skip)" in (
        with_claim.missing
    )
    assert with_claim.level == "degraded"


def test_a_malformed_claim_is_itself_missing_isolation(
    sandboxed: tuple[subprocess.Popen[str], SandboxPolicy],
) -> None:
    report = measure(sandboxed[0].pid, sandboxed[1], claimed={"level": "full"})
    assert report.level == "degraded"
    assert report.missing[0].startswith("claim: expected the worker's isolation report, got ")


def test_a_child_process_is_measured() -> None:
    parent = subprocess.Popen(["sh", "-c", "sleep 60 & wait"])
    kids: list[int] = []
    try:
        deadline = time.monotonic() + 10
        while not kids and time.monotonic() < deadline:
            time.sleep(0.05)
            kids = [int(p.name) for p in Path("/proc").iterdir() if _ppid(p) == parent.pid]
        report = measure(parent.pid)
    finally:
        for kid in kids:
            os.kill(kid, signal.SIGKILL)
        parent.kill()
        parent.wait(timeout=10)
    assert kids, "the shell started its sleep"
    assert f"descendants: expected no child process, got pids {kids}" in report.missing


def _ppid(proc_dir: Path) -> int:
    if not proc_dir.name.isdigit():
        return -1
    try:
        stat = (proc_dir / "stat").read_text()
    except OSError:
        return -1
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def test_measure_of_a_gone_process_raises() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait(timeout=10)
    with pytest.raises(FileNotFoundError):
        measure(gone.pid)


def test_measure_imports_nothing_heavy() -> None:
    """It runs in the supervisor, which never maps an inference runtime."""
    code = (
        "import sys, kontur.worker.sandbox.measure\n"
        "heavy = {'numpy', 'cv2', 'onnxruntime', 'openvino', 'pydantic'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "[]", out.stderr[-1000:]
