"""The worker's scratch dir becomes a private tmpfs of a fixed size, in its own mount namespace.

Order of steps (:func:`mount_private_tmpfs`):

1. a new mount namespace: ``unshare(CLONE_NEWNS)`` as root; otherwise inside the user
   namespace :mod:`~kontur.worker.sandbox.netns` made (or a new one, when netns was not
   applied), whose capabilities the caller drops afterwards;
2. every mount private, recursively (``MS_REC|MS_PRIVATE`` on ``/``): a mount under a
   *shared* mount point would otherwise propagate back into the host's namespace;
3. ``tmpfs`` on the scratch dir: ``size=`` the policy's cap, a fixed inode count,
   ``mode=0700``, owned by the worker's uid/gid, ``nosuid,nodev,noexec``;
4. check the mount in ``/proc/self/mountinfo``, and ``chdir`` into it again: the working
   directory still pointed at the directory the tmpfs now covers.

Why a tmpfs: ``RLIMIT_FSIZE`` caps each file, this caps the total (``ENOSPC``). Whatever
path the scratch dir has, the worker's writes never reach the data disk, and they vanish
with the worker: the namespace (and the tmpfs) goes when its last process exits, and the
worker cannot start processes. The cost: the pages are RAM, charged to the memory cgroup
but not to ``RLIMIT_AS``.

Must run after :mod:`~kontur.worker.sandbox.netns` (one user namespace serves both when not
root), before Landlock (its rule for the scratch dir must name the tmpfs, and a Landlock
domain may not mount) and before seccomp (which denies ``mount`` and ``unshare``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from kontur.worker.sandbox import _syscall, netns
from kontur.worker.sandbox.describe import mounts

__all__ = ["CLONE_NEWNS", "INODES", "mount_private_tmpfs"]

CLONE_NEWNS = 0x00020000
#: Files and directories the scratch tmpfs holds at most (each inode costs kernel memory).
INODES = 4096
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 1 << 14, 1 << 18


def mount_private_tmpfs(path: Path, size_bytes: int, uid: int, gid: int, in_userns: bool) -> str:
    """Mount the capped tmpfs on ``path`` (steps in the module doc); returns ``tmpfs N MiB``.

    ``in_userns``: this process already made its own user namespace (as not root).
    Raises :class:`OSError` when the kernel or the account refuses a step.
    """
    if os.geteuid() == 0 or in_userns:
        _syscall.syscall("unshare", CLONE_NEWNS)
    else:
        netns.own_user_namespace(CLONE_NEWNS)
    _syscall.syscall("mount", None, b"/", None, _MS_REC | _MS_PRIVATE, None)
    options = f"size={size_bytes},nr_inodes={INODES},mode=0700,uid={uid},gid={gid}"
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    target = os.path.realpath(path)
    _syscall.syscall("mount", b"tmpfs", target.encode(), b"tmpfs", flags, options.encode())
    if not any(m.mount_point == target and m.fstype == "tmpfs" for m in mounts("self")):
        raise OSError(errno.EIO, f"scratch: expected a tmpfs on {target}, mountinfo has none")
    os.chdir(target)
    return f"tmpfs {size_bytes >> 20} MiB"
