"""Raw Linux system calls through ctypes, by name, for the architectures the sandbox knows.

Every mechanism calls the kernel through :func:`syscall` (looked up on this module at call
time), so a test can stand in a kernel that lacks a mechanism by replacing that one function
in a child process. Credential changes (``setresuid`` and friends) are *not* made here: they
go through glibc (``os.setresuid``), which applies them to every thread of the process.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from typing import Any

__all__ = ["ARCH", "NR", "arch_supported", "syscall"]

#: The machine this interpreter runs on, as ``uname -m`` spells it.
ARCH = platform.machine()

#: System call numbers (``asm/unistd_64.h`` for x86_64, ``asm-generic/unistd.h`` for aarch64).
NR: dict[str, dict[str, int]] = {
    "x86_64": {
        "capset": 126,
        "clone": 56,
        "clone3": 435,
        "landlock_add_rule": 445,
        "landlock_create_ruleset": 444,
        "landlock_restrict_self": 446,
        "mount": 165,
        "prctl": 157,
        "process_vm_readv": 310,
        "ptrace": 101,
        "seccomp": 317,
        "unshare": 272,
    },
    "aarch64": {
        "capset": 91,
        "clone": 220,
        "clone3": 435,
        "landlock_add_rule": 445,
        "landlock_create_ruleset": 444,
        "landlock_restrict_self": 446,
        "mount": 40,
        "prctl": 167,
        "process_vm_readv": 270,
        "ptrace": 117,
        "seccomp": 277,
        "unshare": 97,
    },
}

_libc: ctypes.CDLL | None = None


def arch_supported() -> bool:
    """True on an architecture whose system call numbers this module knows."""
    return ARCH in NR


def _c_arg(a: object) -> Any:
    # syscall(2) is variadic: a bare Python int would be passed as a 32-bit C int.
    return ctypes.c_long(a) if isinstance(a, int) else a


def syscall(name: str, *args: object) -> int:
    """Call system call ``name``; returns its result or raises :class:`OSError` with errno."""
    global _libc
    if ARCH not in NR:
        raise OSError(errno.ENOSYS, f"{name}: unsupported architecture {ARCH}")
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    ctypes.set_errno(0)
    result = int(_libc.syscall(ctypes.c_long(NR[ARCH][name]), *(_c_arg(a) for a in args)))
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")
    return result
