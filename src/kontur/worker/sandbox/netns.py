"""No network: move the worker into a fresh, empty network namespace.

A new network namespace holds only a loopback interface, and it is down: no address, no
route, so every ``connect`` fails (ENETUNREACH) even to 127.0.0.1, and nothing in it can
reach the host's interfaces or the host's loopback services.

Order of steps (:func:`isolate`):

- as root: ``unshare(CLONE_NEWNET)``;
- otherwise: ``unshare(CLONE_NEWUSER | CLONE_NEWNET)``, then map the caller's own uid and
  gid into the new user namespace (``setgroups`` → ``deny`` first, as the kernel requires)
  (:func:`own_user_namespace`). The capabilities the new user namespace granted are kept
  for the scratch mount (:mod:`kontur.worker.sandbox.scratch`) and dropped right after it
  by :func:`kontur.worker.sandbox.enter` (:func:`drop_capabilities`, ``capset`` to all
  zero): the worker needs none, even over its own empty namespaces.

Must run while the process has one thread (``CLONE_NEWUSER`` refuses otherwise) and before
the seccomp filter (which denies ``unshare``) and Landlock (which would deny writing
``/proc/self/uid_map``).
"""

from __future__ import annotations

import ctypes
import os

from kontur.worker.sandbox import _syscall

__all__ = [
    "CLONE_NEWNET",
    "CLONE_NEWUSER",
    "drop_capabilities",
    "isolate",
    "namespace_id",
    "own_user_namespace",
]

CLONE_NEWNET, CLONE_NEWUSER = 0x40000000, 0x10000000
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def namespace_id(pid: int | str = "self") -> str:
    """``net:[inode]`` of a process's network namespace."""
    return os.readlink(f"/proc/{pid}/ns/net")


def drop_capabilities() -> None:
    """Clear this thread's effective, permitted and inheritable capability sets."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _syscall.syscall("capset", ctypes.byref(header), ctypes.byref(data))


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def own_user_namespace(flags: int) -> None:
    """``unshare(CLONE_NEWUSER | flags)`` and map the caller's own uid and gid into it.

    The capabilities the new user namespace grants stay until :func:`drop_capabilities`.
    """
    uid, gid = os.geteuid(), os.getegid()
    _syscall.syscall("unshare", CLONE_NEWUSER | flags)
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")


def isolate() -> str:
    """Enter a new empty network namespace; returns ``"netns"`` or ``"netns (userns)"``.

    Raises :class:`OSError` when the kernel or the account does not allow it (no
    ``CAP_SYS_ADMIN`` and unprivileged user namespaces disabled, for instance).
    """
    before = namespace_id()
    if os.geteuid() == 0:
        _syscall.syscall("unshare", CLONE_NEWNET)
        how = "netns"
    else:
        own_user_namespace(CLONE_NEWNET)
        how = "netns (userns)"
    after = namespace_id()
    if after == before:
        raise OSError(f"netns: expected a new network namespace, still in {before}")
    return how
