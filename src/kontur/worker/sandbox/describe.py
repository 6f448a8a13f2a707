"""A process's isolation as seen from outside, through ``/proc/PID`` (for checks and tests).

Reads, without touching the process: ``status`` (uids, gids, groups, seccomp mode and filter
count, ``NoNewPrivs``, effective and permitted capabilities, ignored signals, ``NSpid``), its
namespaces compared with a *reference* process's (the caller's; the supervisor's, when the
supervisor asks), ``limits`` (address space, CPU time, core size, open files, file size,
processes), ``mountinfo`` (:func:`mounts`) and its children (:func:`children`). The files
under a non-dumpable process's ``/proc/PID`` are owned by root whatever its uid, which is how
``dumpable`` is told from outside (``None`` where the process itself is root).

Namespaces, and what each is measured from (``ns_evidence``). The links ``/proc/PID/ns/*``
are the kernel's own identity and are used when readable; reading them needs
``PTRACE_MODE_READ``, which a non-root caller without ``CAP_SYS_PTRACE`` lacks once the
process is non-dumpable (ADR 0036's unit). Then, per namespace, evidence that needs no
ptrace access (:func:`compare_namespaces`, pure):

- net: the inode of ``/proc/PID/net/dev``. Each network namespace has its own ``/proc/net``
  entries, numbered from the allocator that numbers namespaces, unique among live ones: the
  same inode is the same namespace, another inode another namespace. ("Only ``lo`` in
  ``net/dev``" is not used: a supervisor under ``PrivateNetwork=`` sees only ``lo`` too.)
- mnt: the mount ids in ``mountinfo``. An id is unique among live mounts and a mount is in
  one namespace: a shared id is the same namespace; a non-empty set sharing none with the
  reference's, another one; an empty set (every mount above the process's root) tells
  nothing.
- user: ``uid_map`` as the caller reads it: unlike the reference's, another namespace;
  alike, taken as the same one (only a privileged process can write a map alike the
  reference's; this one is used only to word a diagnosis).
- pid: ``NSpid``: more levels than the reference's is a namespace below the reference's.

``own_*_ns`` is ``True``, ``False``, or ``None`` where nothing readable tells.

Seccomp filters are inherited across fork and exec and never removed: ``own_seccomp_filters``
is the process's count less the most that any thread of the reference has (what it could have
inherited from its parent, the reference); :func:`own_seccomp_filters`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "Mount",
    "NamespaceEvidence",
    "children",
    "compare_namespaces",
    "describe_process",
    "mount_ids",
    "mounts",
    "namespace_evidence",
    "own_seccomp_filters",
    "parse_limits",
    "parse_mountinfo",
    "parse_status",
]

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
_SECCOMP_MODES = {"0": "disabled", "1": "strict", "2": "filter"}
_T = TypeVar("_T")


@dataclass(frozen=True)
class Mount:
    """One line of ``/proc/PID/mountinfo``: where, what, and the filesystem's own options."""

    mount_point: str
    fstype: str
    source: str
    options: dict[str, str]


@dataclass(frozen=True)
class NamespaceEvidence:
    """What ``/proc/PID`` shows of a process's namespaces without ptrace access; ``None``
    (or an empty ``nspid``) where the caller could not read it."""

    net_dev_inode: int | None
    mount_ids: frozenset[int] | None
    uid_map: str | None
    nspid: tuple[int, ...]


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


def mount_ids(text: str) -> frozenset[int]:
    """The mount ids (first field) of a ``mountinfo`` file; ValueError on a malformed line."""
    ids = set()
    for line in filter(str.strip, text.splitlines()):
        first = line.split(maxsplit=1)[0]
        if not first.isdigit():
            raise ValueError(f"mountinfo: expected a mount id first, got {line[:80]!r}")
        ids.add(int(first))
    return frozenset(ids)


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


def parse_status(text: str) -> dict[str, str]:
    """The fields of a ``/proc/PID/status`` file, by name, values stripped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def parse_limits(text: str) -> dict[str, dict[str, int | None]]:
    """The rows of a ``/proc/PID/limits`` file that the sandbox sets (``None``: unlimited)."""
    out: dict[str, dict[str, int | None]] = {}
    for line in text.splitlines()[1:]:
        for row, key in _LIMIT_ROWS.items():
            if line.startswith(row):
                soft, hard = line[len(row) :].split()[:2]
                out[key] = {
                    "soft": None if soft == "unlimited" else int(soft),
                    "hard": None if hard == "unlimited" else int(hard),
                }
    return out


def _filter_count(status: Mapping[str, str]) -> int | None:
    """``Seccomp_filters`` (Linux 5.9+); ``None`` where the kernel does not show it."""
    count = status.get("Seccomp_filters")
    return int(count) if count is not None else None


def own_seccomp_filters(
    status: Mapping[str, str], reference_threads: Sequence[Mapping[str, str]]
) -> int | None:
    """How many of the process's seccomp filters are its own (pure; steps in the module doc).

    ``status``: the process's; ``reference_threads``: the status of each thread of its
    parent. ``None`` where it cannot be told: a kernel without ``Seccomp_filters`` whose
    reference is filtered too, or no reference thread read.
    """
    if status.get("Seccomp") != "2":
        return 0
    if not reference_threads:
        return None
    counts = [_filter_count(s) for s in reference_threads]
    mine = _filter_count(status)
    if mine is None or None in counts:  # before 5.9: only the modes
        return 1 if all(s.get("Seccomp") == "0" for s in reference_threads) else None
    return max(0, mine - max(c for c in counts if c is not None))


def _nspid(status: Mapping[str, str]) -> tuple[int, ...]:
    return tuple(int(x) for x in status.get("NSpid", "").split())


def _differ(mine: object, ref: object, what: str) -> tuple[bool | None, str]:
    if mine is None or ref is None:
        return None, f"{what} unreadable"
    return mine != ref, what


def _mnt(mine: frozenset[int] | None, ref: frozenset[int] | None) -> tuple[bool | None, str]:
    if mine is None or ref is None:
        return None, "mountinfo unreadable"
    if not mine or not ref:
        return None, "mountinfo empty (no mount below the process's root)"
    return not mine & ref, "mount ids in mountinfo"


def _pid(mine: tuple[int, ...], ref: tuple[int, ...]) -> tuple[bool | None, str]:
    if not mine or not ref:
        return None, "NSpid not shown"
    return len(mine) > len(ref), "NSpid levels"


def compare_namespaces(
    mine: NamespaceEvidence, ref: NamespaceEvidence
) -> dict[str, tuple[bool | None, str]]:
    """Per namespace (``net``, ``mnt``, ``pid``, ``user``): whether ``mine`` is in another one
    than ``ref`` (``None``: cannot tell), and the evidence that told (pure; the module doc
    says why each is sound)."""
    return {
        "net": _differ(mine.net_dev_inode, ref.net_dev_inode, "inode of net/dev"),
        "mnt": _mnt(mine.mount_ids, ref.mount_ids),
        "pid": _pid(mine.nspid, ref.nspid),
        "user": _differ(mine.uid_map, ref.uid_map, "uid_map"),
    }


def _read(read: Callable[[], _T]) -> _T | None:
    try:
        return read()
    except (OSError, ValueError):  # unreadable, or gone meanwhile: cannot tell
        return None


def namespace_evidence(pid: int | str, status: Mapping[str, str]) -> NamespaceEvidence:
    """What ``/proc/PID`` shows of ``pid``'s namespaces without ptrace access (``status``:
    its parsed ``status`` file); what the caller cannot read is ``None``."""
    proc = f"/proc/{pid}"
    return NamespaceEvidence(
        net_dev_inode=_read(lambda: os.stat(f"{proc}/net/dev").st_ino),
        mount_ids=_read(lambda: mount_ids(Path(f"{proc}/mountinfo").read_text())),
        uid_map=_read(lambda: Path(f"{proc}/uid_map").read_text()),
        nspid=_nspid(status),
    )


def _links(pid: int | str, reference: int | str) -> dict[str, tuple[str, str]] | str:
    """Each namespace's link, the process's and the reference's; or why they are unreadable
    (a process that is gone raises FileNotFoundError)."""
    try:
        return {
            ns: (os.readlink(f"/proc/{pid}/ns/{ns}"), os.readlink(f"/proc/{reference}/ns/{ns}"))
            for ns in _NAMESPACES
        }
    except PermissionError as exc:
        return exc.strerror or "permission denied"


def _namespaces(pid: int | str, reference: int | str, status: Mapping[str, str]) -> dict[str, Any]:
    links = _links(pid, reference)
    out: dict[str, Any] = {"ns_evidence": {}}
    if isinstance(links, dict):
        for ns, (mine, ref) in links.items():
            out.update({f"{ns}_ns": mine, f"own_{ns}_ns": mine != ref})
            out["ns_evidence"][ns] = f"/proc/PID/ns/{ns}"
        return out
    ref_status = parse_status(Path(f"/proc/{reference}/status").read_text())
    mine_ev, ref_ev = namespace_evidence(pid, status), namespace_evidence(reference, ref_status)
    for ns, (own, what) in compare_namespaces(mine_ev, ref_ev).items():
        out.update({f"{ns}_ns": None, f"own_{ns}_ns": own})
        out["ns_evidence"][ns] = f"{what} (/proc/PID/ns/{ns}: {links})"
    if mine_ev.net_dev_inode is not None:
        out["net_ns"] = f"net/dev inode {mine_ev.net_dev_inode}"
    return out


def _thread_statuses(pid: int | str) -> list[dict[str, str]]:
    out = []
    for task in _read(lambda: os.listdir(f"/proc/{pid}/task")) or []:  # none: cannot tell
        text = _read(Path(f"/proc/{pid}/task/{task}/status").read_text)
        if text is not None:  # a thread that exited meanwhile
            out.append(parse_status(text))
    return out


def describe_process(pid: int | str, reference: int | str = "self") -> dict[str, Any]:
    """Isolation facts about process ``pid`` (``"self"`` works), as a JSON-able dict.

    ``own_*_ns`` compare ``pid``'s namespaces with ``reference``'s (the caller by default),
    from the evidence named in ``ns_evidence``; ``own_seccomp_filters`` counts the filters
    ``pid`` has beyond any thread of ``reference`` (module doc).
    """
    st = parse_status(Path(f"/proc/{pid}/status").read_text())
    uids = [int(x) for x in st["Uid"].split()]
    gids = [int(x) for x in st["Gid"].split()]
    # /proc/PID's files (not the directory itself) belong to root when not dumpable
    file_owner = os.stat(f"/proc/{pid}/status").st_uid
    seen: dict[str, Any] = {
        "pid": int(st["Pid"]),
        "uid": uids,
        "gid": gids,
        "groups": [int(x) for x in st.get("Groups", "").split()],
        "seccomp": _SECCOMP_MODES.get(st.get("Seccomp", "0"), st.get("Seccomp")),
        "seccomp_filters": _filter_count(st),
        "own_seccomp_filters": own_seccomp_filters(st, _thread_statuses(reference)),
        "no_new_privs": st.get("NoNewPrivs") == "1",
        "cap_eff": int(st.get("CapEff", "0"), 16),
        "cap_prm": int(st.get("CapPrm", "0"), 16),
        "sigxfsz_ignored": bool(int(st.get("SigIgn", "0"), 16) >> (_SIGXFSZ - 1) & 1),
        "dumpable": None if uids[1] == 0 else file_owner == uids[1],
        "threads": int(st.get("Threads", "1")),
        "limits": parse_limits(Path(f"/proc/{pid}/limits").read_text()),
    }
    seen.update(_namespaces(pid, reference, st))
    return seen
