"""The worker's isolation measured from outside: what the supervisor acts on and archives.

The worker's own report (``WorkerReady.isolation``) is a *claim*: a compromised worker can
send ``"level": "full"`` whatever holds. :func:`measure` runs in the supervisor and reads the
worker's ``/proc/PID`` instead: no signal, no ptrace, the worker is not disturbed. It imports
nothing but the standard library (and this package's stdlib-only modules).

Order of steps (:func:`measure`):

1. ``status``, ``limits`` and the namespaces of the worker, compared with the supervisor's
   (``supervisor_pid``, the caller by default; :mod:`~kontur.worker.sandbox.describe` says
   from which evidence: the ``/proc/PID/ns`` links, or where those are unreadable to a
   non-root supervisor (ADR 0036), ``net/dev``'s inode, ``mountinfo``'s mount ids, ``NSpid``
   and ``uid_map``);
2. network: a network namespace of its own, a seccomp filter of its own (the layers in force);
3. syscalls: more seccomp filters than any thread of the supervisor has: the worker inherits
   the supervisor's (systemd's, under the unit), which prove nothing about the worker;
4. user: as root, the worker must have dropped to the policy's uid/gid (to a non-root one
   without a policy), with no groups and no capabilities; ``no_new_privs``; non-dumpable;
5. limits: the *hard* limits (the worker may raise a soft limit up to its hard one) within
   the policy's (finite, without a policy), and no core;
6. scratch: a size-capped tmpfs on the policy's scratch dir, in a mount namespace of its own;
7. descendants: no process has the worker as its parent;
8. the claim, when given: what the worker says is *missing* is believed (a false "missing"
   only lowers the level, which the worker could cause anyway by exiting); what it says is
   in place counts for nothing, and is shown only where nothing can be measured (Landlock).

What ``/proc`` cannot show is listed in ``unmeasured`` (:data:`UNMEASURED`), never counted
as in place or as missing. ``level`` is ``full`` only when everything measured holds. A fact
the supervisor cannot read, or cannot tell from its own (a namespace, a filter), counts as
missing; the notes say from which evidence the namespaces were measured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kontur.worker.sandbox.describe import children, describe_process, mounts
from kontur.worker.sandbox.limits import CPU_KILL_GRACE_S
from kontur.worker.sandbox.policy import SandboxPolicy
from kontur.worker.sandbox.report import IsolationReport

__all__ = ["UNMEASURED", "measure"]

#: What no file under ``/proc/PID`` shows, and so what the measurement cannot vouch for.
UNMEASURED = (
    "landlock: no /proc file shows another process's Landlock domain (files, TCP, scopes)",
    "seccomp rules: /proc shows the filter mode and count, not the rules (reading them needs "
    "ptrace, which stops the worker)",
    "parent_death_signal: /proc does not show it",
)
_FINITE = -1  # a bound meaning "any finite value"


def _bounds(policy: SandboxPolicy | None) -> dict[str, int]:
    """Each hard limit's bound: a value, or ``_FINITE``; keys as :func:`describe_process`."""
    if policy is None:
        keys = ("cpu_seconds", "max_open_files", "file_bytes", "max_tasks")
        return {"core_bytes": 0, **dict.fromkeys(keys, _FINITE)}
    bounds = {
        "core_bytes": 0,
        "max_open_files": policy.max_open_files,
        "file_bytes": policy.max_file_bytes,
        "max_tasks": _FINITE,  # the uid's other tasks at enter() + max_tasks: not known here
    }
    if policy.memory_bytes is not None:
        bounds["memory_bytes"] = policy.memory_bytes
    if policy.cpu_seconds is not None:
        bounds["cpu_seconds"] = policy.cpu_seconds + CPU_KILL_GRACE_S
    return bounds


def _limits(
    seen: dict[str, Any], policy: SandboxPolicy | None, missing: list[str]
) -> dict[str, Any]:
    rows = seen["limits"]
    for key, bound in _bounds(policy).items():
        hard = rows[key]["hard"]
        if hard is None or (bound != _FINITE and hard > bound):
            want = "a finite value" if bound == _FINITE else f"<= {bound}"
            missing.append(f"limits: expected {key} (hard) {want}, got {hard or 'unlimited'}")
    if not seen["no_new_privs"]:
        missing.append("limits: expected no_new_privs 1, got 0")
    if seen["dumpable"] is not False:
        missing.append(f"limits: expected a non-dumpable worker, got dumpable {seen['dumpable']}")
    shown: dict[str, Any] = {key: row["hard"] for key, row in rows.items()}
    shown["cpu_seconds"] = rows["cpu_seconds"]["soft"]
    shown["cpu_kill_seconds"] = rows["cpu_seconds"]["hard"]
    shown.update(
        no_new_privs=seen["no_new_privs"],
        dumpable=seen["dumpable"],
        sigxfsz_ignored=seen["sigxfsz_ignored"],
    )
    return shown


def _own_filter(seen: dict[str, Any]) -> bool:
    """A seccomp filter the worker loaded itself, beyond those it inherited."""
    own = seen["own_seccomp_filters"]
    return seen["seccomp"] == "filter" and own is not None and own >= 1


def _network(seen: dict[str, Any], missing: list[str]) -> str:
    layers = []
    if seen["own_net_ns"]:
        layers.append("netns")
    elif seen["own_net_ns"] is None:
        missing.append(
            "netns: expected its own network namespace, cannot tell it from the supervisor's: "
            f"{seen['ns_evidence']['net']}"
        )
    else:
        missing.append(
            f"netns: expected its own network namespace, got the supervisor's {seen['net_ns']}"
        )
    if _own_filter(seen):
        layers.append("seccomp")
    return "+".join(layers) if layers else "unavailable: the supervisor's network, no filter"


def _syscalls(seen: dict[str, Any], missing: list[str]) -> str:
    mode, total, own = seen["seccomp"], seen["seccomp_filters"], seen["own_seccomp_filters"]
    if _own_filter(seen):
        if total is None:  # before Linux 5.9: only the modes (the supervisor's is off)
            return "seccomp-bpf (its own; the kernel shows no filter count)"
        inherited = f", {total - own} inherited" if total > own else ""
        return f"seccomp-bpf ({own} filter(s){inherited})"
    if mode != "filter":
        missing.append(f"seccomp: expected a seccomp filter, got mode {mode}")
        return f"unavailable: seccomp mode {mode}"
    if own is None:
        missing.append(
            "seccomp: expected a seccomp filter of its own, cannot tell it from those inherited "
            "from the supervisor (the kernel shows no Seccomp_filters)"
        )
        return "unavailable: cannot tell its filters from the supervisor's"
    missing.append(
        f"seccomp: expected a seccomp filter of its own, got {total} filter(s), no more than "
        "the supervisor has (inherited)"
    )
    return f"unavailable: only the {total} filter(s) inherited from the supervisor"


def _real_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise OSError(f"/proc/{pid}/status: expected a Uid line, got none")


def _user(seen: dict[str, Any], policy: SandboxPolicy | None, ref: int, missing: list[str]) -> str:
    """A root supervisor's worker must have dropped (to the policy's ids); a non-root one's
    keeps the supervisor's uid. Either way: all four ids alike, no capabilities."""
    uids, gids, ref_uid = seen["uid"], seen["gid"], _real_uid(ref)
    if ref_uid != 0:
        want_uid, want_gid, how = ref_uid, None, " (not root: nothing to drop)"
    elif policy is not None:
        want_uid, want_gid, how = policy.uid, policy.gid, ""
    else:
        want_uid, want_gid, how = None, None, ""

    def alike(ids: list[int], want: int | None) -> bool:
        return len(set(ids)) == 1 and (ids[0] == want if want is not None else ids[0] != 0)

    holds = alike(uids, want_uid) and seen["cap_eff"] == seen["cap_prm"] == 0
    if ref_uid == 0:
        holds = holds and alike(gids, want_gid) and seen["groups"] == []
    if holds:
        return f"uid {uids[1]} gid {gids[1]}{how}"
    want = f"uid {want_uid}" if want_uid is not None else "a non-root uid"
    userns = {True: "its own", False: "the supervisor's"}.get(seen["own_user_ns"], "an unknown")
    missing.append(
        f"user: expected {want}, no groups, no capabilities; got uids {uids} gids {gids} "
        f"groups {seen['groups']} CapEff {seen['cap_eff']:#x} CapPrm {seen['cap_prm']:#x} "
        f"in {userns} user namespace"
    )
    return f"unavailable: uid {uids[1]} gid {gids[1]}"


def _tmpfs_kib(pid: int, where: str) -> tuple[int | None, str]:
    """The size of the tmpfs mounted (last) on ``where`` in ``pid``'s view, or why none."""
    try:
        found = [m for m in mounts(pid) if m.mount_point == where]
    except OSError as exc:
        return None, f"mountinfo unreadable to the supervisor ({exc.strerror})"
    if not found:
        return None, "no mount there"
    if found[-1].fstype != "tmpfs":
        return None, f"{found[-1].fstype} there"
    size = found[-1].options.get("size", "")  # tmpfs shows it in KiB: "size=131072k"
    if not (size.endswith("k") and size[:-1].isdigit()):
        return None, f"a tmpfs of unbounded size ({size or 'no size'})"
    return int(size[:-1]), f"a tmpfs of {int(size[:-1])} KiB"


def _scratch(pid: int, seen: dict[str, Any], policy: SandboxPolicy, missing: list[str]) -> str:
    where, cap = os.path.realpath(policy.scratch_dir), policy.scratch_max_bytes
    kib, found = _tmpfs_kib(pid, where)
    if kib is not None and kib * 1024 <= cap and seen["own_mnt_ns"]:
        return f"tmpfs {kib >> 10} MiB"
    if kib is not None and seen["own_mnt_ns"] is None:
        found += " in a mount namespace not told from the supervisor's"
    elif kib is not None and not seen["own_mnt_ns"]:
        found += " in the supervisor's mount namespace"
    missing.append(
        f"scratch: expected a tmpfs of at most {cap >> 20} MiB on {where} in the worker's own "
        f"mount namespace, got {found}"
    )
    return f"unavailable: {found}"


def _claim(claimed: IsolationReport | Mapping[str, Any] | None, missing: list[str]) -> str:
    """Take the claim's "missing" lines; returns its filesystem field ("" without a claim)."""
    if claimed is None:
        return ""
    try:
        claim = (
            claimed if isinstance(claimed, IsolationReport) else IsolationReport.from_json(claimed)
        )
    except (ValueError, TypeError, KeyError) as exc:
        missing.append(f"claim: expected the worker's isolation report, got {exc}")
        return "malformed"
    missing += [f"claimed by the worker: {m}" for m in claim.missing]
    return claim.filesystem


def _notes(seen: dict[str, Any]) -> tuple[str, ...]:
    pid_ns = {True: "own", False: "shared with the supervisor"}.get(seen["own_pid_ns"], "unknown")
    evidence = "; ".join(f"{ns} from {how}" for ns, how in seen["ns_evidence"].items())
    return (
        f"pid namespace {pid_ns}: no descendants now; new processes are refused by the "
        "seccomp filter",
        f"namespaces measured: {evidence}",
    )


def measure(
    pid: int,
    policy: SandboxPolicy | None = None,
    *,
    supervisor_pid: int | None = None,
    claimed: IsolationReport | Mapping[str, Any] | None = None,
) -> IsolationReport:
    """The isolation of worker ``pid`` as ``/proc`` shows it (steps in the module doc).

    ``policy``: the one the supervisor gave the worker; without it, limits need only be
    finite, any non-root uid will do and the scratch dir is not looked for (``unmeasured``).
    ``claimed``: the worker's own report, whose ``missing`` lines are added. Raises
    :class:`OSError` (``FileNotFoundError``) when process ``pid`` is gone.
    """
    ref = os.getpid() if supervisor_pid is None else supervisor_pid
    seen = describe_process(pid, reference=ref)
    missing: list[str] = []
    network = _network(seen, missing)
    syscalls = _syscalls(seen, missing)
    user = _user(seen, policy, ref, missing)
    limits = _limits(seen, policy, missing)
    unmeasured = list(UNMEASURED)
    if policy is not None:
        scratch = _scratch(pid, seen, policy, missing)
    else:
        scratch = "unmeasured: no policy says where the scratch dir is"
        unmeasured.append("scratch: no policy given")
    if kids := children(pid):
        missing.append(f"descendants: expected no child process, got pids {kids}")
    claim = _claim(claimed, missing)
    return IsolationReport(
        network=network,
        filesystem=f"unmeasured: landlock (the worker claims {claim or 'nothing'})",
        syscalls=syscalls,
        user=user,
        limits=limits,
        missing=tuple(missing),
        notes=_notes(seen),
        scratch_dir=str(policy.scratch_dir) if policy is not None else "",
        scratch=scratch,
        source="supervisor",
        unmeasured=tuple(unmeasured),
    )
