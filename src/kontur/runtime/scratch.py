"""A run's scratch root, and the sweep of roots a killed supervisor left behind.

Each run of the perimeter has a scratch root outside the data dir, ``$TMPDIR/kontur-run-<id>``
(the sandboxed processes' scratch and logs), and shared-memory frame rings named
``kontur-<id>-<camera>`` in ``/dev/shm``. A supervisor that stops removes both; one killed
with ``kill -9`` cannot. So every root carries an ``owner`` file, the supervisor's pid and
its start time in clock ticks (``/proc/<pid>/stat`` field 22, so a recycled pid is not
mistaken for the owner), and the next run sweeps the roots of this user whose owner is gone,
with their rings. A root without a readable owner file is left alone: it is not known to be
stale.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["SCRATCH_PREFIX", "make_scratch", "ring_name", "run_id_of", "sweep_stale"]

SCRATCH_PREFIX = "kontur-run-"
_OWNER = "owner"
_SHM = Path("/dev/shm")


def _identity(pid: int) -> str | None:
    """``"<pid> <start ticks>"`` of a live process, None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the name may hold spaces and parentheses
    return f"{pid} {fields[19]}" if len(fields) > 19 else None


def run_id_of(scratch: Path) -> str:
    """The run id a scratch root is named for (also in its rings' names)."""
    return scratch.name.removeprefix(SCRATCH_PREFIX)


def ring_name(scratch: Path, camera_id: str) -> str:
    """The shared-memory name of ``camera_id``'s frame ring in the run of ``scratch``."""
    return f"kontur-{run_id_of(scratch)}-{camera_id}"


def make_scratch(tmp: Path | None = None) -> Path:
    """A new scratch root (0711: the worker's uid reaches its own dir, cannot list the
    parent) owned by this process; stale roots are swept first."""
    sweep_stale(tmp)
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=tmp))
    os.chmod(scratch, 0o711)
    me = _identity(os.getpid())
    if me is not None:
        (scratch / _OWNER).write_text(me + "\n")
    return scratch


def _stale(root: Path) -> bool:
    try:
        if not root.is_dir() or root.is_symlink() or root.stat().st_uid != os.geteuid():
            return False
        owner = (root / _OWNER).read_text().strip()
        pid = int(owner.split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return _identity(pid) != owner


def sweep_stale(tmp: Path | None = None) -> list[Path]:
    """Remove this user's scratch roots under ``tmp`` (default: the temp dir) whose owner is
    gone, and their frame rings; the roots removed."""
    base = Path(tmp) if tmp is not None else Path(tempfile.gettempdir())
    gone = [r for r in sorted(base.glob(SCRATCH_PREFIX + "*")) if _stale(r)]
    for root in gone:
        shutil.rmtree(root, ignore_errors=True)
        for ring in _SHM.glob(f"kontur-{run_id_of(root)}-*"):
            with contextlib.suppress(OSError):
                if ring.stat().st_uid == os.geteuid():
                    ring.unlink()
    return gone
