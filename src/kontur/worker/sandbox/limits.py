"""Resource limits, ``no_new_privs``, non-dumpability and the drop to an unprivileged user.

Order of steps, as :func:`kontur.worker.sandbox.enter` calls them:

1. :func:`set_no_new_privs` — first, always (it is never skipped): seccomp and (for an
   unprivileged caller) Landlock refuse to load without it, and no later ``execve`` can
   gain privileges;
2. :func:`apply_rlimits` — ``RLIMIT_AS`` (memory), ``RLIMIT_CPU`` (soft: SIGXCPU, hard a
   little later: SIGKILL), ``RLIMIT_CORE`` = 0, ``RLIMIT_NOFILE``, ``RLIMIT_FSIZE`` (with
   SIGXFSZ ignored, so a write past it fails with EFBIG instead of killing the worker: the
   cap also holds its inherited log file) and ``RLIMIT_NPROC``. Limits are only ever
   lowered, never raised above an existing hard limit. ``RLIMIT_NPROC`` counts the tasks
   (threads included) of the process's *real uid* across the host, so it is set to the
   tasks that uid already runs (:func:`tasks_of_uid`, counted as root before the drop)
   plus the worker's own allowance;
3. (netns, Landlock, seccomp, preload — elsewhere)
4. :func:`drop_privileges` — only as root: ``setgroups([])``, ``setresgid``, ``setresuid``
   through glibc, which applies them to *every* thread; then checks that they hold and
   that uid 0 cannot be regained;
5. :func:`set_undumpable` — after the drop, because the kernel resets the dumpable flag on
   every credential change. Non-dumpable: no core, and no ptrace or ``/proc/PID/mem`` by
   other processes of the same uid;
6. :func:`keep_parent_death_signal` restores the parent-death signal, which the kernel
   also clears on a credential change (the worker must still die with its supervisor),
   and raises it at once if the parent died while it was cleared.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
from typing import Any

from kontur.worker.sandbox import _syscall

__all__ = [
    "apply_rlimits",
    "drop_privileges",
    "keep_parent_death_signal",
    "parent_death_signal",
    "set_no_new_privs",
    "set_undumpable",
    "tasks_of_uid",
]

_PR_SET_PDEATHSIG, _PR_GET_PDEATHSIG = 1, 2
_PR_SET_DUMPABLE, _PR_SET_NO_NEW_PRIVS = 4, 38
#: Seconds of CPU between SIGXCPU (soft limit) and SIGKILL (hard limit).
CPU_KILL_GRACE_S = 2


def set_no_new_privs() -> None:
    """``prctl(PR_SET_NO_NEW_PRIVS, 1)``: no ``execve`` can ever grant privileges again."""
    _syscall.syscall("prctl", _PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def set_undumpable() -> None:
    """``prctl(PR_SET_DUMPABLE, 0)``."""
    _syscall.syscall("prctl", _PR_SET_DUMPABLE, 0, 0, 0, 0)


def parent_death_signal() -> int:
    """The signal this process gets when its parent dies (0: none)."""
    import ctypes

    sig = ctypes.c_int(0)
    _syscall.syscall("prctl", _PR_GET_PDEATHSIG, ctypes.byref(sig), 0, 0, 0)
    return sig.value


def keep_parent_death_signal(sig: int, parent: int) -> None:
    """Set the parent-death signal again (after a credential change cleared it).

    ``parent`` is the parent's pid from before: if it is gone by now, the signal the
    kernel would have sent is raised here instead.
    """
    if sig:
        _syscall.syscall("prctl", _PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:
            signal.raise_signal(sig)


def _lower(which: int, soft: int, hard: int) -> tuple[int, int]:
    _, cur_hard = resource.getrlimit(which)
    if cur_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, cur_hard), min(hard, cur_hard)
    resource.setrlimit(which, (soft, hard))
    return resource.getrlimit(which)


def tasks_of_uid(uid: int, exclude_pid: int) -> int:
    """Tasks (threads) of the processes whose real uid is ``uid``, but ``exclude_pid``'s.

    Counted from ``/proc/*/status``, which shows this PID namespace only: a container's
    neighbours at the same host uid are not seen (hence a dedicated uid, ADR 0010).
    """
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == exclude_pid:
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:  # exited meanwhile
            continue
        if int(fields["Uid"].split()[0]) == uid:
            total += int(fields.get("Threads", "1"))
    return total


def apply_rlimits(
    memory_bytes: int | None,
    cpu_seconds: int | None,
    max_open_files: int,
    *,
    file_bytes: int,
    tasks: int,
) -> dict[str, Any]:
    """Lower the limits (``tasks``: RLIMIT_NPROC's value); returns what now holds.

    ``None`` in the result means unlimited. SIGXFSZ is set to ignored (CPython already
    ignores it at startup; this holds for an embedded interpreter too).
    """

    def shown(v: int) -> int | None:
        return None if v == resource.RLIM_INFINITY else v

    out: dict[str, Any] = {"core_bytes": shown(_lower(resource.RLIMIT_CORE, 0, 0)[1])}
    nofile = _lower(resource.RLIMIT_NOFILE, max_open_files, max_open_files)
    out["max_open_files"] = shown(nofile[0])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    out["file_bytes"] = shown(_lower(resource.RLIMIT_FSIZE, file_bytes, file_bytes)[0])
    out["max_tasks"] = shown(_lower(resource.RLIMIT_NPROC, tasks, tasks)[0])
    if memory_bytes is not None:
        out["memory_bytes"] = shown(_lower(resource.RLIMIT_AS, memory_bytes, memory_bytes)[0])
    else:
        out["memory_bytes"] = shown(resource.getrlimit(resource.RLIMIT_AS)[0])
    if cpu_seconds is not None:
        soft, hard = _lower(resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + CPU_KILL_GRACE_S)
        out["cpu_seconds"], out["cpu_kill_seconds"] = shown(soft), shown(hard)
    else:
        out["cpu_seconds"] = shown(resource.getrlimit(resource.RLIMIT_CPU)[0])
    return out


def drop_privileges(uid: int, gid: int) -> str:
    """As root, become ``uid``/``gid`` with no supplementary groups; returns ``uid N gid M``.

    Raises :class:`OSError` when a step fails or uid 0 can be regained afterwards.
    """
    if uid == 0 or gid == 0:
        raise OSError(errno.EINVAL, f"user: expected a non-root uid/gid, got {uid}/{gid}")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    found = (os.getresuid(), os.getresgid(), os.getgroups())
    if found != ((uid, uid, uid), (gid, gid, gid), []):
        raise OSError(errno.EPERM, f"user: expected uid {uid} gid {gid} no groups, got {found}")
    try:
        os.setuid(0)
    except PermissionError:
        return f"uid {uid} gid {gid}"
    raise OSError(errno.EPERM, "user: expected setuid(0) to fail after the drop, it succeeded")
