"""A process's isolation as seen from outside, through ``/proc/PID`` (for checks and tests).

Reads, without touching the process: ``status`` (uids, gids, groups, seccomp mode and filter
count, ``NoNewPrivs``, effective and permitted capabilities, ignored signals), the namespace
links (network, mount, PID, user; and whether each differs from the *caller's*: the
supervisor's, when the supervisor asks), ``limits`` (address space, CPU time, core size,
open files, file size, processes), ``mountinfo`` (:func:`mounts`) and its children
(:func:`children`). The files under a non-dumpable process's ``/proc/PID`` are owned by root
whatever its uid, which is how ``dumpable`` is told from outside (``None`` where the process
itself is root).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Mount", "children", "describe_process", "mounts", "parse_mountinfo"]

_LIMIT_ROWS = {
    "Max address space": "memory_bytes",
    "Max cpu time": "cpu_seconds",
    "Max core file size": "core_bytes",
    "Max open files": "max_open_files",
    "Max file size": "file_bytes",
    "Max processes": "max_tasks",
}
_NAMESPACES = ("net", "mnt", "pid", "user")
_SIGXFSZ = 25


@dataclass(frozen=True)
class Mount:
    """One line of ``/proc/PID/mountinfo``: where, what, and the filesystem's own options."""

    mount_point: str
    fstype: str
    source: str
    options: dict[str, str]


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as \ooo
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts(pid: int | str) -> list[Mount]:
    """The mounts in ``pid``'s mount namespace, as ``pid`` sees them."""
    return parse_mountinfo(Path(f"/proc/{pid}/mountinfo").read_text())


def parse_mountinfo(text: str) -> list[Mount]:
    """The lines of a ``mountinfo`` file (``proc(5)``), in order (the last mount on a path
    is the one in view)."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        rest = fields[fields.index("-") + 1 :]
        opts = dict(o.partition("=")[::2] for o in rest[2].split(","))
        out.append(Mount(_unescape(fields[4]), rest[0], _unescape(rest[1]), opts))
    return out


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from ``/proc/*/stat``, which every kernel has;
    ``task/*/children`` needs ``CONFIG_PROC_CHILDREN``)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _status(pid: int | str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _limits(pid: int | str) -> dict[str, dict[str, int | None]]:
    out: dict[str, dict[str, int | None]] = {}
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]:
        for row, key in _LIMIT_ROWS.items():
            if line.startswith(row):
                soft, hard = line[len(row) :].split()[:2]
                out[key] = {
                    "soft": None if soft == "unlimited" else int(soft),
                    "hard": None if hard == "unlimited" else int(hard),
                }
    return out


def describe_process(pid: int | str, reference: int | str = "self") -> dict[str, Any]:
    """Isolation facts about process ``pid`` (``"self"`` works), as a JSON-able dict.

    ``own_*_ns`` compare ``pid``'s namespaces with ``reference``'s (the caller by default).
    """
    st = _status(pid)
    uids = [int(x) for x in st["Uid"].split()]
    gids = [int(x) for x in st["Gid"].split()]
    seccomp_modes = {"0": "disabled", "1": "strict", "2": "filter"}
    # /proc/PID's files (not the directory itself) belong to root when not dumpable
    file_owner = os.stat(f"/proc/{pid}/status").st_uid
    seen: dict[str, Any] = {
        "pid": int(st["Pid"]),
        "uid": uids,
        "gid": gids,
        "groups": [int(x) for x in st.get("Groups", "").split()],
        "seccomp": seccomp_modes.get(st.get("Seccomp", "0"), st.get("Seccomp")),
        "seccomp_filters": int(st.get("Seccomp_filters", "0")),
        "no_new_privs": st.get("NoNewPrivs") == "1",
        "cap_eff": int(st.get("CapEff", "0"), 16),
        "cap_prm": int(st.get("CapPrm", "0"), 16),
        "sigxfsz_ignored": bool(int(st.get("SigIgn", "0"), 16) >> (_SIGXFSZ - 1) & 1),
        "dumpable": None if uids[1] == 0 else file_owner == uids[1],
        "threads": int(st.get("Threads", "1")),
        "limits": _limits(pid),
    }
    for ns in _NAMESPACES:
        link = os.readlink(f"/proc/{pid}/ns/{ns}")
        seen[f"{ns}_ns"] = link
        seen[f"own_{ns}_ns"] = link != os.readlink(f"/proc/{reference}/ns/{ns}")
    return seen
