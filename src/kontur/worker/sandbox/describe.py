"""A process's isolation as seen from outside, through ``/proc/PID`` (for checks and tests).

Reads, without touching the process: ``status`` (uids, gids, groups, seccomp mode and filter
count, ``NoNewPrivs``, effective capabilities), the network namespace link (and whether it
differs from the *caller's*: the supervisor's, when the supervisor asks), and ``limits``
(address space, CPU time, core size, open files). The files under a non-dumpable process's
``/proc/PID`` are owned by root whatever its uid, which is how ``dumpable`` is told from
outside (``None`` where the process itself is root).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["describe_process"]

_LIMIT_ROWS = {
    "Max address space": "memory_bytes",
    "Max cpu time": "cpu_seconds",
    "Max core file size": "core_bytes",
    "Max open files": "max_open_files",
}


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


def describe_process(pid: int | str) -> dict[str, Any]:
    """Isolation facts about process ``pid`` (``"self"`` works), as a JSON-able dict."""
    st = _status(pid)
    uids = [int(x) for x in st["Uid"].split()]
    gids = [int(x) for x in st["Gid"].split()]
    seccomp_modes = {"0": "disabled", "1": "strict", "2": "filter"}
    ns = os.readlink(f"/proc/{pid}/ns/net")
    # /proc/PID's files (not the directory itself) belong to root when not dumpable
    file_owner = os.stat(f"/proc/{pid}/status").st_uid
    return {
        "pid": int(st["Pid"]),
        "uid": uids,
        "gid": gids,
        "groups": [int(x) for x in st.get("Groups", "").split()],
        "seccomp": seccomp_modes.get(st.get("Seccomp", "0"), st.get("Seccomp")),
        "seccomp_filters": int(st.get("Seccomp_filters", "0")),
        "no_new_privs": st.get("NoNewPrivs") == "1",
        "cap_eff": int(st.get("CapEff", "0"), 16),
        "net_ns": ns,
        "own_net_ns": ns != os.readlink("/proc/self/ns/net"),
        "dumpable": None if uids[1] == 0 else file_owner == uids[1],
        "threads": int(st.get("Threads", "1")),
        "limits": _limits(pid),
    }
