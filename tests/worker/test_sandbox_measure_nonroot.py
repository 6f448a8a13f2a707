"""The supervisor's measurement under ADR 0036's unit: a non-root supervisor without
capabilities, and seccomp filters every process inherits from systemd.

Two faults the unit exposed: the non-dumpable worker's ``/proc/PID/ns/*`` links are
unreadable without ``CAP_SYS_PTRACE`` (every run measured degraded), and any seccomp filter
was counted as the worker's own (systemd's inherited ones passed a worker that loaded none).
First the pure parsing and comparisons on canned ``/proc`` text, then real processes: as
root, the fallback evidence agrees with the links; under ``setpriv`` (the unit's
credentials) and an inherited filter, the sandbox measures full and each gap is caught.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.service_user import SYSTEM_PYTHON, as_service_user

from kontur.worker.sandbox.describe import (
    NamespaceEvidence,
    compare_namespaces,
    describe_process,
    mount_ids,
    namespace_evidence,
    own_seccomp_filters,
    parse_limits,
    parse_status,
)

# --- canned /proc text ----------------------------------------------------------------------

_STATUS = """\
Name:\tpython3
Pid:\t23171
NSpid:\t23171\t1
Uid:\t4242\t4242\t4242\t4242
CapEff:\t0000000000000000
NoNewPrivs:\t1
Seccomp:\t2
Seccomp_filters:\t2
"""

_LIMITS = """\
Limit                     Soft Limit           Hard Limit           Units
Max cpu time              86400                86402                seconds
Max file size             67108864             67108864             bytes
Max core file size        0                    0                    bytes
Max address space         unlimited            unlimited            bytes
"""

_MOUNTINFO = """\
90 89 254:0 / / rw,relatime - ext4 /dev/vda rw
92 90 0:21 / /proc rw,relatime - proc proc rw
110 90 0:42 / /tmp/k/s rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,size=4096k
"""


def test_status_and_limits_parse() -> None:
    status = parse_status(_STATUS)
    assert (status["Uid"], status["NSpid"], status["Seccomp_filters"]) == (
        "4242\t4242\t4242\t4242",
        "23171\t1",
        "2",
    )
    limits = parse_limits(_LIMITS)
    assert limits["cpu_seconds"] == {"soft": 86400, "hard": 86402}
    assert limits["memory_bytes"] == {"soft": None, "hard": None}
    assert set(limits) == {"cpu_seconds", "file_bytes", "core_bytes", "memory_bytes"}


def test_mount_ids_parse() -> None:
    assert mount_ids(_MOUNTINFO) == frozenset({90, 92, 110})
    assert mount_ids("") == frozenset()
    with pytest.raises(ValueError, match="mountinfo: expected a mount id first, got 'x 1"):
        mount_ids("x 1 2:3 / / rw - ext4 /dev/vda rw\n")


def _st(mode: str, count: str | None) -> dict[str, str]:
    return {"Seccomp": mode} | ({"Seccomp_filters": count} if count is not None else {})


@pytest.mark.parametrize(
    ("worker", "reference", "own"),
    [
        pytest.param(_st("0", "0"), [_st("0", "0")], 0, id="no_filter"),
        pytest.param(_st("2", "1"), [_st("0", "0")], 1, id="own_filter_no_unit"),
        pytest.param(_st("2", "2"), [_st("2", "1")], 1, id="own_filter_under_unit_filters"),
        pytest.param(_st("2", "1"), [_st("2", "1")], 0, id="unit_filter_inherited_only"),
        pytest.param(_st("2", "3"), [_st("2", "3"), _st("2", "3")], 0, id="unit_filters_x3"),
        # the worker was forked from a thread with one filter more than the main thread
        pytest.param(_st("2", "2"), [_st("2", "1"), _st("2", "2")], 0, id="spawner_thread_filter"),
        # before Linux 5.9 /proc shows the mode only
        pytest.param(_st("2", None), [_st("0", None)], 1, id="old_kernel_unfiltered_parent"),
        pytest.param(_st("2", None), [_st("2", None)], None, id="old_kernel_filtered_parent"),
        pytest.param(_st("2", "1"), [], None, id="reference_unreadable"),
    ],
)
def test_own_seccomp_filters_are_those_beyond_the_references(
    worker: Mapping[str, str], reference: list[Mapping[str, str]], own: int | None
) -> None:
    assert own_seccomp_filters(worker, reference) == own


_REF = NamespaceEvidence(4026531874, frozenset({22, 23, 24}), "0 0 4294967295\n", (23118,))


@pytest.mark.parametrize(
    ("worker", "expected"),
    [
        pytest.param(
            NamespaceEvidence(4026532313, frozenset({90, 92}), "4242 4242 1\n", (23171,)),
            {"net": True, "mnt": True, "user": True, "pid": False},
            id="sandboxed_worker",
        ),
        pytest.param(
            NamespaceEvidence(4026531874, frozenset({22, 23, 24}), "0 0 4294967295\n", (9,)),
            {"net": False, "mnt": False, "user": False, "pid": False},
            id="plain_process",
        ),
        pytest.param(
            # chrooted below some of the supervisor's mounts: one shared id is one namespace
            NamespaceEvidence(4026532313, frozenset({24}), "4242 4242 1\n", (9, 1)),
            {"net": True, "mnt": False, "user": True, "pid": True},
            id="chroot_in_the_supervisors_mount_namespace",
        ),
        pytest.param(
            # every mount above its root: mountinfo is empty, which tells nothing
            NamespaceEvidence(None, frozenset(), None, ()),
            {"net": None, "mnt": None, "user": None, "pid": None},
            id="nothing_readable",
        ),
    ],
)
def test_namespaces_compare_from_the_readable_evidence(
    worker: NamespaceEvidence, expected: dict[str, bool | None]
) -> None:
    found = compare_namespaces(worker, _REF)
    assert {ns: own for ns, (own, _) in found.items()} == expected
    if expected["mnt"] is None:
        assert found["mnt"][1] == "mountinfo empty (no mount below the process's root)"


# --- real processes -------------------------------------------------------------------------

_NEEDS_ROOT = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0,
    reason="Linux only, and root: to read the links the fallback evidence is compared with",
)
#: Stands in for a process that is not sandboxed: optionally unshares (argv[1]: flags), turns
#: itself non-dumpable as the sandbox does, says "ready" and holds still.
_PLAIN = """
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
flags = int(sys.argv[1])
if flags and libc.unshare(flags):
    raise SystemExit(f"unshare: errno {ctypes.get_errno()}")
libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
print("ready", flush=True)
time.sleep(30)
"""
_NEWUSER_NEWNET = 0x10000000 | 0x40000000


@_NEEDS_ROOT
@pytest.mark.parametrize("flags", [0, _NEWUSER_NEWNET], ids=["plain", "own_user_and_net"])
def test_the_fallback_evidence_agrees_with_the_links(flags: int) -> None:
    """Where root can read both, the evidence a non-root supervisor falls back on tells each
    namespace exactly as the kernel's links do."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _PLAIN, str(flags)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        seen = describe_process(proc.pid)
        status = parse_status(Path(f"/proc/{proc.pid}/status").read_text())
        found = compare_namespaces(
            namespace_evidence(proc.pid, status),
            namespace_evidence("self", parse_status(Path("/proc/self/status").read_text())),
        )
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert seen["ns_evidence"]["net"] == "/proc/PID/ns/net"
    assert {ns: own for ns, (own, _) in found.items()} == {
        ns: seen[f"own_{ns}_ns"] for ns in ("net", "mnt", "pid", "user")
    }
    assert seen["own_net_ns"] is seen["own_user_ns"] is bool(flags)


#: Loads one allow-all seccomp filter (systemd's, in the unit), then executes argv[1:].
_UNIT_FILTER = r"""
import ctypes, os, struct, sys
ret_allow = struct.pack("=HBBI", 0x06, 0, 0, 0x7FFF0000)
buf = ctypes.create_string_buffer(ret_allow, len(ret_allow))
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
libc = ctypes.CDLL(None, use_errno=True)
prog = Prog(1, ctypes.addressof(buf))
if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(prog), 0, 0):
    raise SystemExit(f"unit filter: not loaded: errno {ctypes.get_errno()}")
os.execv(sys.argv[1], sys.argv[1:])
"""

#: The supervisor's side, as the service user: sandboxed probes (one with each mechanism left
#: out) and plain non-dumpable processes, each measured; one JSON line.
_SUPERVISOR = """
import json, os, subprocess, sys
from pathlib import Path
from kontur.worker.sandbox import SandboxPolicy, describe_process, measure
root, plain_code = Path(sys.argv[1]), sys.argv[2]

def policy(name, **extra):
    obj = {"scratch_dir": str(root / f"s-{name}"), "scratch_max_mb": 4, **extra}
    (root / f"p-{name}.json").write_text(json.dumps(obj))
    return SandboxPolicy.from_json(obj, default_scratch=root / "unused")

def run(name, argv, pol):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        out = {"line": line, "seen": describe_process(proc.pid, os.getpid())}
        out["measured"] = measure(proc.pid, pol).to_json()
        return out
    finally:
        proc.kill()
        proc.wait()

results = {}
for skip in ("", "netns", "scratch", "seccomp"):
    pol = policy(skip or "full", **({"unsafe_skip": [skip]} if skip else {}))
    argv = [sys.executable, "-m", "kontur.worker.sandbox.probe",
            str(root / f"p-{skip or 'full'}.json"), "--hold=30"]
    results[skip or "full"] = run(skip or "full", argv, pol)
for name, flags in (("plain", 0), ("own_user_and_net", 0x50000000)):
    results[name] = run(name, [sys.executable, "-c", plain_code, str(flags)], policy(name))
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def under_the_unit() -> Iterator[dict[str, Any]]:
    """Every scenario run by a supervisor with the unit's credentials and an inherited filter."""

    def argv(root: Path) -> list[str]:
        return ["-c", _UNIT_FILTER, str(SYSTEM_PYTHON), "-c", _SUPERVISOR, str(root), _PLAIN]

    with as_service_user(argv, prefix="kontur-measure-unit-", timeout=180) as results:
        claim = json.loads(results["full"]["line"])["isolation"]
        if claim["level"] != "full":
            pytest.skip(f"the sandbox is not full for a non-root user here: {claim['missing']}")
        yield results


def _areas(measured: Mapping[str, Any]) -> list[str]:
    return sorted({m.split(":")[0] for m in measured["missing"]})


def test_a_full_sandbox_measures_full_under_the_unit(under_the_unit: dict[str, Any]) -> None:
    run = under_the_unit["full"]
    measured, seen = run["measured"], run["seen"]
    assert measured["level"] == "full", measured["missing"]
    assert measured["network"] == "netns+seccomp"
    assert measured["syscalls"] == "seccomp-bpf (1 filter(s), 1 inherited)"
    assert measured["scratch"] == "tmpfs 4 MiB"
    # the links were unreadable: the result rests on the fallback evidence
    assert seen["ns_evidence"] == {
        "net": "inode of net/dev (/proc/PID/ns/net: Permission denied)",
        "mnt": "mount ids in mountinfo (/proc/PID/ns/mnt: Permission denied)",
        "pid": "NSpid levels (/proc/PID/ns/pid: Permission denied)",
        "user": "uid_map (/proc/PID/ns/user: Permission denied)",
    }
    assert (seen["own_net_ns"], seen["own_mnt_ns"], seen["own_user_ns"]) == (True, True, True)


@pytest.mark.parametrize(
    ("skipped", "missing"),
    [
        ("netns", ["netns"]),
        ("scratch", ["scratch"]),
        # the probe's unshare_user act then succeeds: all capabilities in a user namespace
        ("seccomp", ["seccomp", "user"]),
    ],
)
def test_each_mechanism_left_out_is_measured_missing_under_the_unit(
    under_the_unit: dict[str, Any], skipped: str, missing: list[str]
) -> None:
    measured = under_the_unit[skipped]["measured"]
    assert _areas(measured) == missing, measured["missing"]


def test_a_worker_with_only_the_units_filter_is_caught(under_the_unit: dict[str, Any]) -> None:
    measured = under_the_unit["seccomp"]["measured"]
    assert measured["syscalls"] == "unavailable: only the 1 filter(s) inherited from the supervisor"
    assert measured["network"] == "netns"


def test_a_plain_non_dumpable_process_measures_degraded_under_the_unit(
    under_the_unit: dict[str, Any],
) -> None:
    """Unreadable links do not count as isolation: the fallback finds the supervisor's own."""
    run = under_the_unit["plain"]
    measured, seen = run["measured"], run["seen"]
    assert seen["dumpable"] is False and seen["ns_evidence"]["net"].endswith("Permission denied)")
    assert _areas(measured) == ["limits", "netns", "scratch", "seccomp"], measured["missing"]
    assert any(
        m.startswith("netns: expected its own network namespace, got the supervisor's net/dev")
        for m in measured["missing"]
    )
    assert (seen["own_net_ns"], seen["own_mnt_ns"], seen["own_user_ns"]) == (False,) * 3


def test_own_user_and_network_namespaces_without_a_mount_namespace_under_the_unit(
    under_the_unit: dict[str, Any],
) -> None:
    seen = under_the_unit["own_user_and_net"]["seen"]
    assert (seen["own_net_ns"], seen["own_user_ns"], seen["own_mnt_ns"]) == (True, True, False)
    measured = under_the_unit["own_user_and_net"]["measured"]
    # its capabilities in its own user namespace, and no limits, are missing too
    assert _areas(measured) == ["limits", "scratch", "seccomp", "user"], measured["missing"]
