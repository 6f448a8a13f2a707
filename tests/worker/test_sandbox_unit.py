"""The sandbox's parts that need no kernel: the policy format, the report, the Landlock rule
set, and the seccomp program — run through a classic-BPF interpreter for both architectures
(the probe tests load the real thing into the x86_64 kernel)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from kontur.worker.sandbox import (
    IsolationReport,
    SandboxPolicy,
    SandboxPolicyError,
    describe_process,
    filesystem_rules,
)
from kontur.worker.sandbox import landlock_fs as ll
from kontur.worker.sandbox.describe import parse_mountinfo
from kontur.worker.sandbox.policy import MECHANISMS
from kontur.worker.sandbox.seccomp import build_program

SCRATCH = Path("/tmp/kontur-unit-scratch")

# --- the policy -----------------------------------------------------------------------


def test_empty_policy_means_the_full_sandbox() -> None:
    p = SandboxPolicy.from_json({}, default_scratch=SCRATCH)
    assert (p.scratch_dir, p.memory_bytes, p.cpu_seconds) == (SCRATCH, 4 << 30, 86400)
    assert (p.uid, p.gid, p.max_open_files) == (65534, 65534, 256)
    assert (p.max_file_bytes, p.max_tasks, p.scratch_max_bytes) == (64 << 20, 256, 128 << 20)
    assert p.unsafe_skip == frozenset() and p.required == frozenset()


def test_policy_round_trips_through_json() -> None:
    obj = {
        "scratch_dir": "/run/k/scratch",
        "readable": ["/opt/models"],
        "writable": ["/run/k/out.log"],
        "devices": ["/dev/nvidia0"],
        "deny": ["/var/lib/kontur"],
        "memory_mb": None,
        "cpu_seconds": 60,
        "max_open_files": 64,
        "max_file_mb": 16,
        "max_tasks": 32,
        "scratch_max_mb": 8,
        "uid": 1000,
        "gid": 1000,
        "required": ["landlock", "seccomp"],
        "unsafe_skip": ["netns"],
        "preload": ["numpy"],
    }
    p = SandboxPolicy.from_json(obj, default_scratch=SCRATCH)
    assert p.memory_bytes is None and p.required == {"landlock", "seccomp"}
    assert (p.max_file_bytes, p.max_tasks, p.scratch_max_bytes) == (16 << 20, 32, 8 << 20)
    assert p.to_json() == obj
    assert SandboxPolicy.from_json({"required": "all"}, default_scratch=SCRATCH).required == set(
        MECHANISMS
    )


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ({"netowrk": False}, "got ['netowrk']"),
        ({"memory_mb": "4096"}, "expected an integer for memory_mb, got '4096'"),
        ({"uid": True}, "expected an integer for uid, got True"),
        ({"readable": "/usr"}, "expected a list of strings for readable, got '/usr'"),
        ({"scratch_dir": "scratch"}, "expected absolute paths, got scratch"),
        ({"required": ["selinux"]}, "expected required among"),
        ({"required": ["netns"], "unsafe_skip": ["netns"]}, "['netns'] both required and"),
        ({"memory_mb": 0}, "expected memory > 0, got 0"),
        ({"max_open_files": 3}, "expected max_open_files >= 16, got 3"),
        ({"max_file_mb": 0}, "expected max_file_mb >= 1, got 0"),
        ({"max_tasks": 2}, "expected max_tasks >= 8, got 2"),
        ({"scratch_max_mb": -1}, "expected scratch_max_mb >= 1, got -1"),
        ({"scratch_max_mb": None}, "expected an integer for scratch_max_mb, got None"),
    ],
)
def test_malformed_policy_is_refused(obj: dict, fragment: str) -> None:
    with pytest.raises(SandboxPolicyError, match="sandbox policy: ") as exc:
        SandboxPolicy.from_json(obj, default_scratch=SCRATCH)
    assert fragment in str(exc.value)


# --- the Landlock rules ---------------------------------------------------------------


def test_rules_grant_python_read_only_and_scratch_read_write() -> None:
    rules = dict(filesystem_rules(SandboxPolicy(scratch_dir=SCRATCH)).rules)
    assert rules[Path(sys.prefix)] == ll.READ and rules[Path("/usr")] == ll.READ
    assert rules[Path(f"/proc/{os.getpid()}")] == ll.READ
    assert rules[Path("/dev/null")] == ll.READ_WRITE
    assert rules[SCRATCH] == ll.SCRATCH
    assert not any(r & ll.EXECUTE for r in rules.values()), "the worker runs no program"
    assert Path(os.getcwd()) not in rules, "python -m puts the cwd on sys.path: not granted"
    assert not any(p.parts[:2] == ("/", "dev") and p.name == "shm" for p in rules)


def test_rules_that_would_expose_a_denied_path_are_refused() -> None:
    denied = Path(sys.prefix) / "keys"
    with pytest.raises(SandboxPolicyError) as exc:
        filesystem_rules(SandboxPolicy(scratch_dir=SCRATCH, denied_paths=(denied,)))
    assert str(exc.value) == (
        f"sandbox policy: expected {denied} unreachable, but allowed {sys.prefix} holds it"
    )


@pytest.mark.parametrize(
    ("abi", "mask"), [(0, 0), (1, 0x1FFF), (2, 0x3FFF), (3, 0x7FFF), (4, 0x7FFF), (5, 0xFFFF)]
)
def test_handled_rights_follow_the_abi(abi: int, mask: int) -> None:
    assert ll.handled_fs(abi) == mask


# --- the report -----------------------------------------------------------------------


def test_report_round_trips_and_level_follows_missing() -> None:
    r = IsolationReport(
        network="netns+seccomp",
        filesystem="landlock-abi-3",
        syscalls="seccomp-bpf",
        user="uid 65534 gid 65534",
        limits={"memory_bytes": 1 << 30},
        missing=("landlock-net: landlock-abi-3 cannot restrict TCP (needs ABI 4)",),
        scratch="tmpfs 128 MiB",
        source="supervisor",
        unmeasured=("landlock: not shown in /proc",),
    )
    obj = json.loads(json.dumps(r.to_json()))
    assert obj["level"] == "degraded" and obj["source"] == "supervisor"
    assert IsolationReport.from_json(obj) == r
    with pytest.raises(ValueError, match="expected level degraded for missing"):
        IsolationReport.from_json({**obj, "level": "full"})


# --- the seccomp program --------------------------------------------------------------

ALLOW, EPERM, ENOSYS = 0x7FFF0000, 0x00050001, 0x00050026
X86_64, AARCH64, I386 = 0xC000003E, 0xC00000B7, 0x40000003
THREAD = 0x3D0F00  # pthread_create's clone flags
FORK = 0x01200011  # fork(): SIGCHLD|CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID
SPAWN = 0x4111  # posix_spawn / subprocess: CLONE_VM|CLONE_VFORK|SIGCHLD


def _run_bpf(prog: list[tuple[int, int, int, int]], nr: int, arch: int, arg0: int = 0) -> int:
    """A classic-BPF interpreter for the opcodes a seccomp filter uses."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    pc, acc = 0, 0
    for _ in range(len(prog)):
        code, jt, jf, k = prog[pc]
        if code == 0x20:
            acc, pc = struct.unpack_from("<I", data, k)[0], pc + 1
        elif code in (0x15, 0x35, 0x45):
            hit = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += 1 + (jt if hit else jf)
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x} at {pc}")
    raise AssertionError("the program did not return")


# (arch, audit arch, syscall nr, arg0, expected): numbers from the kernel's own tables
VECTORS = [
    ("x86_64", X86_64, 0, 0, ALLOW),  # read
    ("x86_64", X86_64, 41, 2, EPERM),  # socket(AF_INET)
    ("x86_64", X86_64, 41, 1, EPERM),  # socket(AF_UNIX)
    ("x86_64", X86_64, 53, 1, EPERM),  # socketpair
    ("x86_64", X86_64, 101, 16, EPERM),  # ptrace(PTRACE_ATTACH)
    ("x86_64", X86_64, 310, 1, EPERM),  # process_vm_readv
    ("x86_64", X86_64, 272, 0x40000000, EPERM),  # unshare(CLONE_NEWNET)
    ("x86_64", X86_64, 321, 0, EPERM),  # bpf
    ("x86_64", X86_64, 425, 0, EPERM),  # io_uring_setup
    ("x86_64", X86_64, 56, THREAD, ALLOW),  # clone: a thread
    ("x86_64", X86_64, 56, FORK, EPERM),  # clone: fork, a new process
    ("x86_64", X86_64, 56, SPAWN, EPERM),  # clone: posix_spawn, a new process
    ("x86_64", X86_64, 56, 17, EPERM),  # clone(SIGCHLD): a bare new process
    ("x86_64", X86_64, 56, 0x10000000 | 17, EPERM),  # clone(CLONE_NEWUSER)
    ("x86_64", X86_64, 56, THREAD | 0x40000000, EPERM),  # a thread in a new netns
    ("x86_64", X86_64, 57, 0, EPERM),  # fork
    ("x86_64", X86_64, 58, 0, EPERM),  # vfork
    ("x86_64", X86_64, 59, 0, EPERM),  # execve
    ("x86_64", X86_64, 322, 0, EPERM),  # execveat
    ("x86_64", X86_64, 435, 0, ENOSYS),  # clone3: glibc falls back to clone
    ("x86_64", X86_64, 135, 0xFFFFFFFF, ALLOW),  # personality(query)
    ("x86_64", X86_64, 135, 0x0040000, EPERM),  # personality(ADDR_NO_RANDOMIZE)
    ("x86_64", X86_64, 0x40000000 + 41, 2, EPERM),  # x32 socket
    ("x86_64", X86_64, 0x40000000 + 0, 0, EPERM),  # x32 read: the whole x32 ABI
    ("x86_64", I386, 102, 1, EPERM),  # i386 socketcall via int 0x80
    ("x86_64", AARCH64, 63, 0, EPERM),  # a foreign architecture
    ("aarch64", AARCH64, 63, 0, ALLOW),  # read
    ("aarch64", AARCH64, 198, 2, EPERM),  # socket
    ("aarch64", AARCH64, 199, 1, EPERM),  # socketpair
    ("aarch64", AARCH64, 117, 16, EPERM),  # ptrace
    ("aarch64", AARCH64, 270, 1, EPERM),  # process_vm_readv
    ("aarch64", AARCH64, 97, 0x40000000, EPERM),  # unshare
    ("aarch64", AARCH64, 220, THREAD, ALLOW),  # clone: a thread
    ("aarch64", AARCH64, 220, FORK, EPERM),  # clone: fork
    ("aarch64", AARCH64, 220, 0x40000000 | 17, EPERM),  # clone(CLONE_NEWNET)
    ("aarch64", AARCH64, 221, 0, EPERM),  # execve
    ("aarch64", AARCH64, 281, 0, EPERM),  # execveat
    ("aarch64", AARCH64, 435, 0, ENOSYS),  # clone3
    ("aarch64", AARCH64, 92, 0, ALLOW),  # personality(PER_LINUX)
    ("aarch64", X86_64, 63, 0, EPERM),  # a foreign architecture
]


@pytest.mark.parametrize(("arch", "audit", "nr", "arg0", "expected"), VECTORS)
def test_seccomp_program_decides(arch: str, audit: int, nr: int, arg0: int, expected: int) -> None:
    assert _run_bpf(build_program(arch), nr, audit, arg0) == expected


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_seccomp_program_is_well_formed(arch: str) -> None:
    prog = build_program(arch)
    assert len(prog) < 4096  # BPF_MAXINSNS
    for pc, (code, jt, jf, _) in enumerate(prog):
        if code in (0x15, 0x35, 0x45):
            assert pc + 1 + max(jt, jf) < len(prog), f"jump out of the program at {pc}"
    assert prog[-1] == (0x06, 0, 0, ALLOW)


def test_unknown_architecture_has_no_program() -> None:
    with pytest.raises(OSError, match="no system call table for architecture riscv64"):
        build_program("riscv64")


# --- enter() order and /proc -----------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        (
            "import threading, time; threading.Thread(target=time.sleep, args=(0.5,)).start()",
            "expected one thread at enter(), found 2",
        ),
        ("enter(p)", "expected one enter() per process, this is the second"),
    ],
)
@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason="Linux, as root")
def test_enter_out_of_order_is_a_runtime_error(code: str, fragment: str, tmp_path: Path) -> None:
    script = (
        "from pathlib import Path; from kontur.worker.sandbox import SandboxPolicy, enter\n"
        f"p = SandboxPolicy(scratch_dir=Path({str(tmp_path / 's')!r}))\n{code}\n"
        "try:\n    enter(p)\nexcept RuntimeError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert fragment in out.stdout, out.stderr[-1000:]


def test_describe_process_reads_proc() -> None:
    seen = describe_process(os.getpid())
    assert seen["pid"] == os.getpid() and seen["uid"][0] == os.getuid()
    assert seen["own_net_ns"] is seen["own_mnt_ns"] is seen["own_pid_ns"] is False
    assert seen["seccomp"] in ("disabled", "filter", "strict")
    assert seen["sigxfsz_ignored"] is True, "CPython ignores SIGXFSZ at startup"
    assert set(seen["limits"]) == {
        "memory_bytes",
        "cpu_seconds",
        "core_bytes",
        "max_open_files",
        "file_bytes",
        "max_tasks",
    }


def test_mountinfo_lines_are_parsed_and_unescaped() -> None:
    text = (
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        r"66 22 0:40 / /tmp/with\040space rw,nosuid - tmpfs tmpfs "
        "rw,size=1024k,nr_inodes=100,mode=700,uid=65534,gid=65534\n"
    )
    root, scratch = parse_mountinfo(text)
    assert (root.mount_point, root.fstype, root.source) == ("/", "ext4", "/dev/sda1")
    assert (scratch.mount_point, scratch.fstype) == ("/tmp/with space", "tmpfs")
    assert scratch.options["size"] == "1024k" and scratch.options["rw"] == ""


# --- the worker's policy from its spec ------------------------------------------------


def test_worker_policy_from_spec_defaults_and_overrides(tmp_path: Path) -> None:
    from kontur.worker.process import SANDBOX_PRELOAD, sandbox_policy

    spec_path = tmp_path / "data" / "run" / "specs" / "worker.json"
    p = sandbox_policy({"platform": "cpu"}, spec_path)
    assert p.scratch_dir == tmp_path / "data" / "run" / "scratch" / f"worker-{os.getpid()}"
    assert p.denied_paths == (tmp_path / "data",), "the data dir (archive) is always denied"
    assert p.preload == SANDBOX_PRELOAD and p.memory_bytes == 4 << 30
    spec = {"platform": "npu", "sandbox": {"memory_mb": 2048, "deny": ["/keys"], "uid": 1234}}
    p = sandbox_policy(spec, spec_path)
    assert (p.memory_bytes, p.uid) == (2048 << 20, 1234)
    assert p.denied_paths == (Path("/keys"), tmp_path / "data")
    assert p.preload == (*SANDBOX_PRELOAD, "openvino")
