"""What isolation the worker has: one record, in two versions.

The *claim* (``source: "worker"``) is what :func:`kontur.worker.sandbox.enter` returns and the
worker sends in ``WorkerReady.isolation``: useful for what only the worker can see (its
Landlock ABI), but a compromised worker can forge it. The *measurement* (``source:
"supervisor"``) is what :func:`kontur.worker.sandbox.measure` reads from ``/proc/PID`` of the
worker, in the supervisor: the one to act on and to archive.

JSON form::

    {
      "level": "full",                          # or "degraded": see "missing"
      "source": "worker",                       # or "supervisor": measured from outside
      "network": "netns+seccomp+landlock-net",  # the layers in force, or "unavailable: why"
      "filesystem": "landlock-abi-7",           # or "unavailable: why", or "unmeasured: ..."
      "syscalls": "seccomp-bpf",                # or "unavailable: why"
      "scratch": "tmpfs 128 MiB",               # or "unavailable: why" (per-file cap only)
      "limits": {"memory_bytes": 4294967296, "cpu_seconds": 86400, "cpu_kill_seconds": 86402,
                 "core_bytes": 0, "max_open_files": 256, "file_bytes": 67108864,
                 "max_tasks": 256, "no_new_privs": true, "dumpable": false,
                 "parent_death_signal": 15},    # None = unlimited
      "user": "uid 65534 gid 65534",            # or "uid 1000 gid 1000 (not root)", or why not
      "missing": ["landlock: ..."],             # each mechanism or layer not in force, and why
      "unmeasured": ["landlock: ..."],          # (supervisor) what /proc cannot show
      "notes": ["uid 65534 cannot read ..."],   # facts that do not weaken isolation
      "scratch_dir": "/abs/path"
    }

``level`` is ``"full"`` only when ``missing`` is empty: the report never claims a layer the
process does not have (each string is built from what the kernel accepted, and the seccomp,
``no_new_privs``, uid and scratch claims are re-read from ``/proc/self``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["IsolationReport"]

_FIELDS = ("level", "network", "filesystem", "syscalls", "limits", "user", "missing")


@dataclass(frozen=True)
class IsolationReport:
    """Per mechanism, what holds; ``level`` is ``full`` or ``degraded``."""

    network: str
    filesystem: str
    syscalls: str
    user: str
    limits: Mapping[str, Any] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    scratch_dir: str = ""
    scratch: str = ""
    source: str = "worker"
    unmeasured: tuple[str, ...] = ()

    @property
    def level(self) -> str:
        """``"full"`` when no mechanism or layer is missing, else ``"degraded"``."""
        return "degraded" if self.missing else "full"

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (see the module doc)."""
        return {
            "level": self.level,
            "source": self.source,
            "network": self.network,
            "filesystem": self.filesystem,
            "syscalls": self.syscalls,
            "scratch": self.scratch,
            "limits": dict(self.limits),
            "user": self.user,
            "missing": list(self.missing),
            "unmeasured": list(self.unmeasured),
            "notes": list(self.notes),
            "scratch_dir": self.scratch_dir,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> IsolationReport:
        """Read back :meth:`to_json`; raises ValueError when a field is absent or inconsistent."""
        absent = [k for k in _FIELDS if k not in obj]
        if absent:
            raise ValueError(f"isolation report: expected fields {list(_FIELDS)}, missing {absent}")
        report = cls(
            network=str(obj["network"]),
            filesystem=str(obj["filesystem"]),
            syscalls=str(obj["syscalls"]),
            user=str(obj["user"]),
            limits=dict(obj["limits"]),
            missing=tuple(str(m) for m in obj["missing"]),
            notes=tuple(str(n) for n in obj.get("notes", ())),
            scratch_dir=str(obj.get("scratch_dir", "")),
            scratch=str(obj.get("scratch", "")),
            source=str(obj.get("source", "worker")),
            unmeasured=tuple(str(u) for u in obj.get("unmeasured", ())),
        )
        if report.level != obj["level"]:
            raise ValueError(
                f"isolation report: expected level {report.level} for missing "
                f"{list(report.missing)}, got {obj['level']}"
            )
        return report
