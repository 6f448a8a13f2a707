"""Landlock: the worker may read only what Python needs, and write only its scratch dir.

Order of steps (:func:`restrict`):

1. ask the kernel for its Landlock ABI (:func:`abi_version`; 0 = no Landlock: not built,
   disabled at boot, or an unknown architecture);
2. create a ruleset that *handles* every right the ABI knows (:func:`handled_fs`): a right
   the ruleset handles is denied everywhere no rule grants it. From ABI 4 the ruleset also
   handles TCP bind and connect with no port rule (a second network layer), from ABI 6 it
   scopes abstract UNIX sockets and signals to the worker's own domain;
3. add one ``path_beneath`` rule per path: read-only trees and files, read-write files and
   devices, and the scratch dir. A missing path is skipped (``/lib64`` on aarch64);
4. ``landlock_restrict_self``: applies to the *calling thread* and the threads and
   processes it starts later, which is why the worker enters the sandbox before anything
   has started a thread. ``no_new_privs`` must already be set (the caller does it).

No rule grants ``EXECUTE``: the worker runs no program. Files opened and memory mapped
before step 4 (the ring, the ack file, the inherited pipes) stay usable; Landlock checks
at open time.

Written with ctypes rather than the ``landlock`` package (1.0.0.dev5): that package's
ruleset has no ``handled_access_net`` or ``scoped`` field (ABI 4 and 6), and it decides a
call failed by reading a possibly stale ``errno`` instead of the return value.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from kontur.worker.sandbox import _syscall

__all__ = ["KNOWN_ABI", "LandlockRules", "abi_version", "handled_fs", "restrict"]

#: The newest ABI whose rights this module knows; a newer kernel is used at this level.
KNOWN_ABI = 7

# linux/landlock.h: LANDLOCK_ACCESS_FS_*
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
MAKE_SYM, REFER, TRUNCATE, IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
# LANDLOCK_ACCESS_NET_* (ABI 4) and LANDLOCK_SCOPE_* (ABI 6)
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
#: Rights that make sense on a file that is not a directory (others give EINVAL).
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV

READ = READ_FILE | READ_DIR
READ_WRITE = READ_FILE | WRITE_FILE | TRUNCATE
DEVICE = READ_FILE | WRITE_FILE | IOCTL_DEV
SCRATCH = READ | WRITE_FILE | TRUNCATE | MAKE_REG | MAKE_DIR | REMOVE_FILE | REMOVE_DIR | REFER


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # the kernel's struct is __attribute__((packed))
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@dataclass(frozen=True)
class LandlockRules:
    """What the worker may touch: ``(path, rights)`` pairs, rights from this module."""

    rules: tuple[tuple[Path, int], ...]


def abi_version() -> int:
    """The kernel's Landlock ABI version, or 0 where Landlock is absent or disabled."""
    try:
        return _syscall.syscall("landlock_create_ruleset", None, 0, _CREATE_RULESET_VERSION)
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EOPNOTSUPP):
            return 0
        raise


def handled_fs(abi: int) -> int:
    """The filesystem rights a ruleset handles (denies by default) at ``abi``."""
    if abi < 1:
        return 0
    mask = (MAKE_SYM << 1) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        mask |= REFER
    if abi >= 3:
        mask |= TRUNCATE
    if abi >= 5:
        mask |= IOCTL_DEV
    return mask


def _add_rule(ruleset_fd: int, path: Path, rights: int, handled: int) -> bool:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        allowed = rights & handled
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            allowed &= _FILE_RIGHTS
        if allowed:
            attr = _PathBeneathAttr(allowed, fd)
            _syscall.syscall(
                "landlock_add_rule", ruleset_fd, _RULE_PATH_BENEATH, ctypes.byref(attr), 0
            )
        return True
    finally:
        os.close(fd)


def restrict(rules: LandlockRules, abi: int | None = None) -> tuple[str, bool]:
    """Restrict this thread (and its future children); returns ``(report, tcp_restricted)``.

    ``report`` reads ``landlock-abi-N``. Raises :class:`OSError` (ENOSYS where the kernel
    has no Landlock) when the ruleset cannot be built or applied.
    """
    abi = abi_version() if abi is None else abi
    if abi < 1:
        raise OSError(errno.ENOSYS, "landlock: expected ABI >= 1, the kernel reports none")
    used = min(abi, KNOWN_ABI)
    handled = handled_fs(used)
    attr = _RulesetAttr(handled, 0, 0)
    if used >= 4:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
    if used >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    ruleset_fd = _syscall.syscall(
        "landlock_create_ruleset", ctypes.byref(attr), ctypes.sizeof(attr), 0
    )
    try:
        for path, rights in rules.rules:
            _add_rule(ruleset_fd, path, rights, handled)
        _syscall.syscall("landlock_restrict_self", ruleset_fd, 0)
    finally:
        os.close(ruleset_fd)
    return f"landlock-abi-{used}", used >= 4
