"""The worker sandbox, proven from inside: the probe enters it as the worker does, then tries
each forbidden act; and from outside, through ``/proc/PID`` while the probe holds.

The secret and the archive are world-readable files in world-traversable directories, and
the write targets are world-writable: after the drop to uid 65534 ordinary permissions
would allow every act, so each refusal here comes from the sandbox, not from DAC.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SHARED_DATA

from kontur.worker.sandbox import describe_process
from kontur.worker.sandbox.policy import NOBODY

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0,
    reason="the worker sandbox is Linux-only; these tests run as root, as CI does",
)

MEMORY_MB = 1024
SHARED_KEY = SHARED_DATA / "oms" / "keys" / "ca_ec.pem"


@dataclass
class World:
    """What the probe is pointed at: a key, an archive, a scratch dir, a listening port."""

    root: Path
    secret: Path
    archive: Path
    scratch: Path
    port: int

    def policy(self, **overrides: Any) -> Path:
        policy = {
            "scratch_dir": str(self.scratch),
            "memory_mb": MEMORY_MB,
            "deny": [str(self.secret.parent), str(self.archive)],
            **overrides,
        }
        path = self.root / f"policy-{len(list(self.root.glob('policy-*')))}.json"
        path.write_text(json.dumps(policy))
        return path


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    root = Path(tempfile.mkdtemp(prefix="kontur-sandbox-", dir="/tmp"))  # traversable by all
    os.chmod(root, 0o755)
    keys, archive = root / "keys", root / "archive"
    keys.mkdir(mode=0o755)
    archive.mkdir(mode=0o777)  # world-writable: only the sandbox stops a write here
    os.chmod(archive, 0o777)
    secret = keys / "signing.key"
    secret.write_text("-----BEGIN PRIVATE KEY-----\nnot a real key\n-----END PRIVATE KEY-----\n")
    os.chmod(secret, 0o644)
    (archive / "records.jsonl").write_text('{"kind": "decision"}\n')
    os.chmod(archive / "records.jsonl", 0o644)
    servers = [socket.socket(socket.AF_INET)]
    servers[0].bind(("127.0.0.1", 0))
    port = servers[0].getsockname()[1]
    with contextlib.suppress(OSError):  # the same port on ::1 where the host has IPv6
        v6 = socket.socket(socket.AF_INET6)
        servers.append(v6)
        v6.bind(("::1", port))
    for s in servers:
        with contextlib.suppress(OSError):
            s.listen(16)
    try:
        yield World(root, secret, archive, root / "scratch", port)
    finally:
        for s in servers:
            s.close()
        shutil.rmtree(root, ignore_errors=True)


def _probe(policy: Path, *args: str, world: World) -> subprocess.Popen[str]:
    secrets = [world.secret, *([SHARED_KEY] if SHARED_KEY.exists() else [])]
    cmd = [sys.executable, "-m", "kontur.worker.sandbox.probe", str(policy)]
    cmd += [f"--secret={s}" for s in secrets]
    cmd += [f"--archive={world.archive}", f"--port={world.port}", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(policy: Path, world: World, *args: str) -> dict[str, Any]:
    proc = _probe(policy, *args, world=world)
    out, err = proc.communicate(timeout=60)
    assert out, f"probe printed nothing (exit {proc.returncode}): {err[-2000:]}"
    result: dict[str, Any] = json.loads(out.splitlines()[0])
    return result


@pytest.fixture(scope="module")
def held(world: World) -> Iterator[tuple[dict[str, Any], subprocess.Popen[str]]]:
    """One probe with the full sandbox, holding after its acts so /proc can be read."""
    proc = _probe(world.policy(), "--hold=60", world=world)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        pytest.fail(f"probe exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
    try:
        yield json.loads(line), proc
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def _refused(outcome: dict[str, Any], errno_name: str) -> None:
    assert outcome["ok"] is False, f"expected {errno_name}, the act succeeded: {outcome}"
    assert outcome["errno"] == errno_name, outcome


@pytest.fixture(scope="module")
def acts(held: tuple[dict[str, Any], subprocess.Popen[str]]) -> dict[str, Any]:
    result: dict[str, Any] = held[0]["acts"]
    return result


def test_isolation_report_is_full_and_names_each_layer(held: tuple[dict, Any]) -> None:
    report = held[0]["isolation"]
    assert report["level"] == "full", report["missing"]
    assert report["network"] == "netns+seccomp+landlock-net"
    assert report["filesystem"].startswith("landlock-abi-")
    assert report["syscalls"] == "seccomp-bpf"
    assert report["scratch"] == "tmpfs 128 MiB"
    assert report["user"] == f"uid {NOBODY} gid {NOBODY}"
    assert report["limits"]["memory_bytes"] == MEMORY_MB << 20
    assert report["limits"]["file_bytes"] == 64 << 20
    assert report["missing"] == []


def test_worker_cannot_open_inet_socket(acts: dict[str, Any]) -> None:
    _refused(acts["inet_connect"], "EPERM")


def test_worker_cannot_open_inet6_socket(acts: dict[str, Any]) -> None:
    _refused(acts["inet6_connect"], "EPERM")


def test_worker_cannot_open_unix_socket_or_socketpair(acts: dict[str, Any]) -> None:
    _refused(acts["unix_socket"], "EPERM")
    _refused(acts["socketpair"], "EPERM")


def test_worker_cannot_read_signing_key(acts: dict[str, Any], world: World) -> None:
    assert world.secret.stat().st_mode & stat.S_IROTH, "control: the key is world-readable"
    keys = [k for k in acts if k.startswith("read_secret:")]
    assert f"read_secret:{world.secret}" in keys
    for k in keys:
        _refused(acts[k], "EACCES")


def test_worker_cannot_read_archive(acts: dict[str, Any]) -> None:
    _refused(acts["list_archive"], "EACCES")
    _refused(acts["read_archive"], "EACCES")


def test_worker_cannot_write_outside_scratch(acts: dict[str, Any], world: World) -> None:
    _refused(acts["write_tmp"], "EACCES")
    _refused(acts["write_archive"], "EACCES")
    assert not (world.archive / "probe-write.txt").exists()


def test_worker_can_write_scratch(
    acts: dict[str, Any], world: World, held: tuple[dict, Any]
) -> None:
    """Into its private tmpfs: seen through /proc/PID/root, and nowhere on the disk."""
    assert acts["write_scratch"]["ok"] and acts["write_scratch_relative"]["ok"]
    inside = Path(f"/proc/{held[1].pid}/root") / world.scratch.relative_to("/")
    written = inside / "probe-abs.txt"
    assert written.read_text() == "written from inside the sandbox\n"
    assert (written.stat().st_uid, (inside / "probe-rel.txt").stat().st_uid) == (NOBODY, NOBODY)
    assert list(world.scratch.iterdir()) == [], "the directory under the tmpfs stays empty"


def test_worker_memory_limit(acts: dict[str, Any]) -> None:
    assert acts["alloc_small"]["ok"]
    assert acts["alloc_over_limit"]["ok"] is False
    assert acts["alloc_over_limit"]["error"] == "MemoryError"


def test_worker_cannot_regain_root(acts: dict[str, Any]) -> None:
    _refused(acts["setuid_root"], "EPERM")


def test_worker_cannot_ptrace_parent(acts: dict[str, Any]) -> None:
    _refused(acts["ptrace_parent"], "EPERM")
    _refused(acts["process_vm_readv_parent"], "EPERM")
    # reading one's own memory is always allowed by the kernel: only seccomp refuses this
    _refused(acts["process_vm_readv_self"], "EPERM")


def test_worker_cannot_signal_parent(acts: dict[str, Any]) -> None:
    _refused(acts["signal_parent"], "EPERM")


def test_worker_cannot_create_namespaces(acts: dict[str, Any]) -> None:
    _refused(acts["unshare_user"], "EPERM")


def test_worker_cannot_execute_programs(acts: dict[str, Any]) -> None:
    _refused(acts["exec_binary"], "EPERM")  # subprocess: its clone is refused first
    _refused(acts["execve"], "EPERM")


def test_worker_cannot_read_other_processes_or_etc(acts: dict[str, Any]) -> None:
    _refused(acts["read_proc1_environ"], "EACCES")
    _refused(acts["read_etc_passwd"], "EACCES")


def test_worker_no_core_dumps_and_no_new_privs(held: tuple[dict, Any]) -> None:
    seen = describe_process(held[1].pid)
    assert seen["limits"]["core_bytes"] == {"soft": 0, "hard": 0}
    assert seen["no_new_privs"] is True
    assert seen["dumpable"] is False
    assert seen["seccomp"] == "filter" and seen["seccomp_filters"] >= 1


def test_worker_runs_unprivileged(held: tuple[dict, Any]) -> None:
    seen = describe_process(held[1].pid)
    assert seen["uid"] == [NOBODY] * 4 and seen["gid"] == [NOBODY] * 4
    assert seen["groups"] == [] and seen["cap_eff"] == 0


def test_worker_has_its_own_network_namespace_and_limits(held: tuple[dict, Any]) -> None:
    seen = describe_process(held[1].pid)
    assert seen["own_net_ns"] is True
    assert seen["net_ns"] != os.readlink("/proc/self/ns/net")
    assert seen["limits"]["memory_bytes"] == {"soft": MEMORY_MB << 20, "hard": MEMORY_MB << 20}
    assert seen["limits"]["max_open_files"]["hard"] == 256
    assert seen["limits"]["cpu_seconds"]["soft"] == 86400


@pytest.mark.parametrize(
    ("layer", "errno_name"),
    [
        ("seccomp", "EPERM"),  # socket() itself refused
        ("netns", "ENETUNREACH"),  # a socket, but the new namespace's loopback is down
        ("landlock", "EACCES"),  # a socket, but Landlock (ABI >= 4) refuses the TCP connect
        (None, None),  # control: with no layer the listening port is reachable
    ],
)
def test_each_network_layer_refuses_connect_alone(
    world: World, layer: str | None, errno_name: str | None
) -> None:
    skip = sorted({"netns", "seccomp", "landlock"} - {layer})
    result = _run(world.policy(unsafe_skip=skip), world)
    outcome = result["acts"]["inet_connect"]
    assert result["isolation"]["level"] == "degraded"
    assert [m.split(":")[0] for m in result["isolation"]["missing"]] == sorted(
        skip, key=["netns", "landlock", "seccomp"].index
    )
    if errno_name is None:
        assert outcome["ok"], outcome
    else:
        _refused(outcome, errno_name)


def test_worker_cpu_time_limit(world: World) -> None:
    proc = _probe(world.policy(cpu_seconds=1), "--spin", world=world)
    out, _ = proc.communicate(timeout=60)
    assert json.loads(out.splitlines()[0])["isolation"]["limits"]["cpu_seconds"] == 1
    assert proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL), proc.returncode


def test_policy_exposing_a_denied_path_is_refused(world: World) -> None:
    policy = world.policy(deny=[sys.prefix], required="all")
    result = _run(policy, world)
    assert result["type"] == "SandboxPolicyError"
    assert f"expected {sys.prefix} unreachable, but allowed" in result["error"]


@pytest.mark.skipif(not shutil.which("setpriv"), reason="needs setpriv (util-linux)")
def test_unprivileged_caller_gets_netns_through_a_user_namespace(world: World) -> None:
    """As a normal user (here uid 65534 via setpriv), with the system Python."""
    system_python = Path("/usr/bin/python3")
    if not system_python.exists():
        pytest.skip("needs /usr/bin/python3 (the venv's interpreter may be unreadable to 65534)")
    src = Path(__file__).resolve().parents[2] / "src"
    scratch = world.root / "scratch-user"
    scratch.mkdir()
    os.chown(scratch, NOBODY, NOBODY)
    policy = world.root / "unprivileged.json"
    policy.write_text(json.dumps({"scratch_dir": str(scratch)}))
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "env"]
    probe = ["-m", "kontur.worker.sandbox.probe", str(policy), f"--port={world.port}"]
    out = subprocess.run(
        [*as_nobody, f"PYTHONPATH={src}", str(system_python), *probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if not out.stdout and ("SyntaxError" in out.stderr or "ModuleNotFoundError" in out.stderr):
        pytest.skip(f"the system Python cannot run kontur: {out.stderr.splitlines()[-1]}")
    report = json.loads(out.stdout.splitlines()[0])["isolation"]
    assert report["user"] == f"uid {NOBODY} gid {NOBODY} (not root: nothing to drop)"
    if report["level"] == "full":
        assert report["network"] == "netns+seccomp+landlock-net"
        assert report["scratch"] == "tmpfs 128 MiB"
    else:  # unprivileged user namespaces disabled here: said so, not claimed
        assert [m.split(":")[0] for m in report["missing"]] == ["netns", "scratch"]
        assert report["network"] == "seccomp+landlock-net"
    acts = json.loads(out.stdout.splitlines()[0])["acts"]
    _refused(acts["inet_connect"], "EPERM")
    _refused(acts["write_tmp"], "EACCES")
    _refused(acts["fork"], "EPERM")
    assert acts["thread"]["ok"], acts["thread"]
