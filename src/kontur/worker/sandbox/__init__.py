"""The least-privilege sandbox the analytics worker puts itself in, first thing in ``main()``.

The worker runs untrusted model code over frames. It needs no network, no file but its
scratch dir (everything else it needs — the ring, its ack file, its pipes, the model bytes
on stdin — is opened before the sandbox closes), no privileges, bounded memory and CPU.

Order of steps (:func:`enter`), each for a reason:

1. refuse to run with more than one thread (``RuntimeError``: a caller's bug). Landlock
   restricts only the calling thread and its *future* children, and ``CLONE_NEWUSER`` needs
   a single thread; so the worker calls :func:`enter` before importing numpy/onnxruntime;
2. scratch dir: create it (0700), give it to the target uid, ``chdir`` into it, point
   ``TMPDIR``, ``HOME`` and the XDG cache/config dirs at it — while still root, so it is
   usable even under parents the target uid cannot traverse;
3. ``no_new_privs`` (always: seccomp needs it), then ``limits``: rlimits (memory, CPU,
   no core, open files, file size with SIGXFSZ ignored, tasks of the uid);
4. ``netns``: a new empty network namespace (needs ``CAP_SYS_ADMIN`` or a user namespace,
   so before seccomp denies ``unshare`` and before Landlock denies ``/proc/self/uid_map``);
5. ``scratch``: a private, size-capped tmpfs on the scratch dir, in a mount namespace of its
   own; then, when not root, the capabilities of the user namespace are dropped;
6. ``landlock``: read-only Python and system libraries, read-write scratch, TCP denied;
7. ``seccomp``: the filter, synchronised to all threads (TSYNC); it also refuses every
   new process (threads stay allowed) and ``execve``;
8. ``preload``: the modules the policy names are imported now, inside Landlock and seccomp
   but still as the starting user, because once uid 65534 it may not be able to read the
   interpreter's own tree (a pyenv Python under a 0700 ``/root``). Threads they start
   inherit Landlock and seccomp;
9. ``user``: as root, drop to the policy's uid/gid (glibc applies it to every thread);
10. non-dumpable, and the parent-death signal set again (a credential change clears both);
11. check the claims against ``/proc/self`` and return the :class:`IsolationReport`.

The report is the worker's *claim*. The supervisor measures the worker from outside with
:func:`measure` (:mod:`kontur.worker.sandbox.measure`), and acts on that.

A mechanism the kernel or the account lacks is reported (``level: degraded`` and a line in
``missing``) — or, when the policy lists it in ``required``, raised as
:class:`~kontur.worker.sandbox.errors.MechanismUnavailable`, leaving the process to exit.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from kontur.worker.sandbox import landlock_fs, limits, netns, scratch, seccomp
from kontur.worker.sandbox.describe import describe_process, mounts
from kontur.worker.sandbox.errors import MechanismUnavailable, SandboxError, SandboxPolicyError
from kontur.worker.sandbox.measure import measure
from kontur.worker.sandbox.policy import MECHANISMS, SandboxPolicy
from kontur.worker.sandbox.report import IsolationReport

__all__ = [
    "MECHANISMS",
    "IsolationReport",
    "MechanismUnavailable",
    "SandboxError",
    "SandboxPolicy",
    "SandboxPolicyError",
    "describe_process",
    "enter",
    "filesystem_rules",
    "measure",
]

_log = logging.getLogger(__name__)
_ENTERED = [False]

#: Read-only system paths every Python process needs (those that exist).
_SYSTEM_READ = (
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/etc/ld.so.cache",
    "/etc/ld.so.preload",
    "/etc/localtime",
    "/dev/urandom",
    "/dev/random",
    "/dev/zero",
    # CPU topology: onnxruntime's cpuinfo and OpenBLAS size their thread pools from these
    "/proc/cpuinfo",
    "/sys/devices/system/cpu",
)


def filesystem_rules(policy: SandboxPolicy) -> landlock_fs.LandlockRules:
    """The Landlock rules for ``policy``; raises SandboxPolicyError if one exposes a denied path.

    Read-only: the interpreter's prefixes and every ``sys.path`` directory except the
    current directory (``python -m`` puts the caller's cwd there, and it may hold the
    archive), the system paths above, and this process's own ``/proc/PID``.
    """
    cwd = os.getcwd()
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    # absolute now: the rules are opened after enter() moved into the scratch dir
    search = {os.path.abspath(p) for p in sys.path if p} - {cwd}
    read = sorted(prefixes | search | set(_SYSTEM_READ) | {f"/proc/{os.getpid()}"})
    rules = [(Path(p), landlock_fs.READ) for p in read]
    rules += [(p, landlock_fs.READ) for p in policy.readable_files]
    rules += [(Path("/dev/null"), landlock_fs.READ_WRITE)]
    rules += [(p, landlock_fs.READ_WRITE) for p in policy.writable_files]
    rules += [(p, landlock_fs.DEVICE) for p in policy.device_files]
    rules += [(policy.scratch_dir, landlock_fs.SCRATCH)]
    for denied in policy.denied_paths:
        d = denied.resolve()
        for path, _ in rules:
            p = path.resolve()
            if p == d or p in d.parents:
                raise SandboxPolicyError(
                    f"sandbox policy: expected {denied} unreachable, but allowed {path} holds it"
                )
    return landlock_fs.LandlockRules(tuple(rules))


class _Steps:
    """Runs each mechanism, recording what holds (``done``) and why the others do not."""

    def __init__(self, policy: SandboxPolicy) -> None:
        self.policy = policy
        self.done: dict[str, str] = {}
        self.why_not: dict[str, str] = {}
        self.limits: dict[str, object] = {}
        self.notes: list[str] = []
        self.tcp_restricted = False

    def run(self, mechanism: str, step: Callable[[], str]) -> None:
        if mechanism in self.policy.unsafe_skip:
            _log.warning("sandbox: %s NOT applied (unsafe_skip in the policy)", mechanism)
            self.why_not[mechanism] = "skipped by the policy (unsafe_skip)"
            return
        try:
            self.done[mechanism] = step()
        except OSError as exc:
            code = errno.errorcode.get(exc.errno or 0, exc.errno)
            why = str(exc) if exc.errno is None else f"{exc.strerror} ({code})"
            if mechanism in self.policy.required:
                raise MechanismUnavailable(mechanism, why) from exc
            self.why_not[mechanism] = why

    def limits_step(self) -> str:
        p = self.policy
        others = limits.tasks_of_uid(_owner(p)[0], exclude_pid=os.getpid())
        self.limits = limits.apply_rlimits(
            p.memory_bytes,
            p.cpu_seconds,
            p.max_open_files,
            file_bytes=p.max_file_bytes,
            tasks=others + p.max_tasks,
        )
        self.limits["uid_tasks_at_enter"] = others
        return "rlimits"

    def scratch_step(self) -> str:
        p, (uid, gid) = self.policy, _owner(self.policy)
        in_userns = self.done.get("netns") == "netns (userns)"
        return scratch.mount_private_tmpfs(p.scratch_dir, p.scratch_max_bytes, uid, gid, in_userns)

    def landlock_step(self, rules: landlock_fs.LandlockRules) -> str:
        report, self.tcp_restricted = landlock_fs.restrict(rules)
        return report

    def user_step(self) -> str:
        if os.geteuid() != 0:
            return f"uid {os.geteuid()} gid {os.getegid()} (not root: nothing to drop)"
        return limits.drop_privileges(self.policy.uid, self.policy.gid)


def _owner(policy: SandboxPolicy) -> tuple[int, int]:
    """The uid/gid the worker will run as: the policy's when root drops to it, else its own."""
    if os.geteuid() == 0 and "user" not in policy.unsafe_skip:
        return policy.uid, policy.gid
    return os.geteuid(), os.getegid()


def _prepare_scratch(policy: SandboxPolicy) -> None:
    path = policy.scratch_dir
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.geteuid() == 0 and "user" not in policy.unsafe_skip:
        os.chown(path, policy.uid, policy.gid)
    os.chmod(path, 0o700)
    os.chdir(path)
    # libraries that cache or persist ids under $HOME (OpenVINO's telemetry raises at import
    # when it cannot) find a writable home; the old one is unreadable now anyway
    for var in ("TMPDIR", "HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        os.environ[var] = str(path)


def _untraversable(path: Path, uid: int, gid: int) -> Path | None:
    """The first parent of ``path`` that ``uid``/``gid`` may not search (DAC), if any."""
    for parent in reversed(path.parents):
        st = parent.stat()
        bit = 0o100 if st.st_uid == uid else 0o010 if st.st_gid == gid else 0o001
        if uid != 0 and not st.st_mode & bit:
            return parent
    return None


def _preload(policy: SandboxPolicy) -> None:
    for name in policy.preload:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise SandboxPolicyError(
                f"sandbox: expected {name} importable inside the sandbox, got {exc}"
            ) from exc


def enter(policy: SandboxPolicy) -> IsolationReport:
    """Enter the sandbox (steps in the module doc); returns what isolation now holds.

    Raises RuntimeError when called twice or with other threads running, SandboxPolicyError
    for a policy that cannot hold, MechanismUnavailable when a required mechanism is missing.
    """
    if _ENTERED[0]:
        raise RuntimeError("sandbox: expected one enter() per process, this is the second")
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        raise RuntimeError(
            f"sandbox: expected one thread at enter(), found {threads} "
            "(enter before importing numpy/onnxruntime)"
        )
    _ENTERED[0] = True
    rules = filesystem_rules(policy)
    _prepare_scratch(policy)
    pdeathsig, parent = limits.parent_death_signal(), os.getppid()
    limits.set_no_new_privs()
    steps = _Steps(policy)
    if blocked := _untraversable(policy.scratch_dir, *_owner(policy)):
        steps.notes.append(
            f"uid {_owner(policy)[0]} cannot search {blocked}: the scratch dir is usable "
            "only relative to the cwd, not by its absolute path (TMPDIR, HOME)"
        )
    steps.run("limits", steps.limits_step)
    steps.run("netns", netns.isolate)
    steps.run("scratch", steps.scratch_step)
    if os.geteuid() != 0:  # the capabilities a user namespace (netns, scratch) granted
        netns.drop_capabilities()
    steps.run("landlock", lambda: steps.landlock_step(rules))
    steps.run("seccomp", seccomp.install)
    _preload(policy)
    steps.run("user", steps.user_step)
    stdlib = os.path.dirname(os.__file__)
    if "user" in steps.done and not os.access(stdlib, os.R_OK | os.X_OK):
        steps.notes.append(
            f"uid {os.geteuid()} cannot read {stdlib}: only modules imported before the drop "
            "(the policy's preload) can be imported"
        )
    if "limits" in steps.done:
        limits.set_undumpable()
    limits.keep_parent_death_signal(pdeathsig, parent)
    steps.limits["parent_death_signal"] = limits.parent_death_signal()
    return _report(policy, steps)


def _check_claims(steps: _Steps) -> dict[str, object]:
    """Re-read the claims from /proc/self; a claim that does not hold is a bug."""
    seen = describe_process("self")
    where = os.path.realpath(steps.policy.scratch_dir)
    tmpfs = [m.fstype for m in mounts("self") if m.mount_point == where]
    checks = [
        ("seccomp", "seccomp" in steps.done, seen["seccomp"] == "filter", seen["seccomp"]),
        ("no_new_privs", True, seen["no_new_privs"], seen["no_new_privs"]),
        ("uid", "user" in steps.done, seen["uid"][1] == os.geteuid() != 0, seen["uid"]),
        ("scratch", "scratch" in steps.done, tmpfs[-1:] == ["tmpfs"], tmpfs),
    ]
    for name, claimed, holds, found in checks:
        if claimed and not holds:
            raise SandboxError(f"sandbox: claimed {name}, but /proc/self/status shows {found}")
    return seen


def _report(policy: SandboxPolicy, steps: _Steps) -> IsolationReport:
    seen = _check_claims(steps)
    done, why_not = steps.done, steps.why_not
    missing = [f"{m}: {why_not[m]}" for m in MECHANISMS if m in why_not]
    if "landlock" in done and not steps.tcp_restricted:
        missing.append(f"landlock-net: {done['landlock']} cannot restrict TCP (needs ABI 4)")
    layers: list[str] = [m for m in ("netns", "seccomp") if m in done]
    layers += ["landlock-net"] if steps.tcp_restricted else []

    def state(mechanism: str) -> str:
        return done.get(mechanism) or f"unavailable: {why_not.get(mechanism, 'not applied')}"

    lim = dict(steps.limits, no_new_privs=seen["no_new_privs"], dumpable="limits" not in done)
    return IsolationReport(
        network="+".join(layers) if layers else state("netns"),
        filesystem=state("landlock"),
        syscalls=state("seccomp"),
        scratch=state("scratch"),
        user=state("user"),
        limits=lim,
        missing=tuple(missing),
        notes=tuple(steps.notes),
        scratch_dir=str(policy.scratch_dir),
    )
