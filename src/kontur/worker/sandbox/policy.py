"""What the worker sandbox allows, as the supervisor's spec states it (``spec["sandbox"]``).

The JSON form (every key optional; defaults are the full sandbox)::

    {
      "scratch_dir": "/abs/path",     # read-write; default <run dir>/scratch/worker-<pid>;
                                      # a private tmpfs is mounted on it (see scratch_max_mb)
      "scratch_max_mb": 128,          # the scratch tmpfs's size (RAM, not the data disk)
      "readable": ["/abs/path", ...], # extra read-only files or trees
      "writable": ["/abs/file", ...], # extra read-write files
      "devices": ["/dev/nvidia0"],    # extra device nodes: read, write, ioctl
      "deny": ["/abs/path", ...],     # must stay unreachable: refused if an allowed path
                                      # contains one (the keys, the archive)
      "memory_mb": 4096,              # RLIMIT_AS; null = no limit (CUDA reserves tens of GB)
      "cpu_seconds": 86400,           # RLIMIT_CPU; null = no limit
      "max_open_files": 256,          # RLIMIT_NOFILE
      "max_file_mb": 64,              # RLIMIT_FSIZE: no file (scratch, inherited log) grows
                                      # past it; writes fail with EFBIG (SIGXFSZ ignored)
      "max_tasks": 256,               # tasks (threads) of the worker: RLIMIT_NPROC is set
                                      # to the uid's other tasks at enter() + this
      "uid": 65534, "gid": 65534,     # the user root drops to
      "required": ["landlock", ...],  # or "all": a missing one is a SandboxError
      "unsafe_skip": [],              # mechanisms NOT applied (tests only; logs a warning)
      "preload": ["numpy", ...]       # modules imported inside the sandbox, before the drop
    }

Mechanism names: ``limits``, ``netns``, ``scratch``, ``landlock``, ``seccomp``, ``user``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kontur.worker.sandbox.errors import SandboxPolicyError

__all__ = [
    "DEFAULT_CPU_SECONDS",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_OPEN_FILES",
    "DEFAULT_MAX_TASKS",
    "DEFAULT_MEMORY_BYTES",
    "DEFAULT_SCRATCH_BYTES",
    "MECHANISMS",
    "NOBODY",
    "SandboxPolicy",
]

#: Every isolation mechanism, in the order :func:`kontur.worker.sandbox.enter` applies them.
MECHANISMS = ("limits", "netns", "scratch", "landlock", "seccomp", "user")
#: Address space: the YOLOX worker peaks near 1 GiB of address space (RSS ~210 MiB).
DEFAULT_MEMORY_BYTES = 4 << 30
#: One CPU-day: a runaway catcher, not a budget; the supervisor restarts a killed worker.
DEFAULT_CPU_SECONDS = 24 * 3600
DEFAULT_MAX_OPEN_FILES = 256
#: RLIMIT_FSIZE: the worker writes no large file; the cap also bounds its inherited log.
DEFAULT_MAX_FILE_BYTES = 64 << 20
#: Tasks the worker may run (it runs 3 with one inference thread; thread pools size
#: themselves from the CPU count): a thread-bomb catcher. New processes are refused anyway.
DEFAULT_MAX_TASKS = 256
#: The scratch tmpfs: the worker keeps nothing there but runtime caches (RAM, not disk).
DEFAULT_SCRATCH_BYTES = 128 << 20
NOBODY = 65534

_KEYS = {
    "scratch_dir",
    "readable",
    "writable",
    "devices",
    "deny",
    "memory_mb",
    "cpu_seconds",
    "max_open_files",
    "max_file_mb",
    "max_tasks",
    "scratch_max_mb",
    "uid",
    "gid",
    "required",
    "unsafe_skip",
    "preload",
}


@dataclass(frozen=True)
class SandboxPolicy:
    """The worker's sandbox: what it may read and write, its limits, the user it runs as."""

    scratch_dir: Path
    readable_files: tuple[Path, ...] = ()
    writable_files: tuple[Path, ...] = ()
    device_files: tuple[Path, ...] = ()
    denied_paths: tuple[Path, ...] = ()
    memory_bytes: int | None = DEFAULT_MEMORY_BYTES
    cpu_seconds: int | None = DEFAULT_CPU_SECONDS
    max_open_files: int = DEFAULT_MAX_OPEN_FILES
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_tasks: int = DEFAULT_MAX_TASKS
    scratch_max_bytes: int = DEFAULT_SCRATCH_BYTES
    uid: int = NOBODY
    gid: int = NOBODY
    required: frozenset[str] = field(default_factory=frozenset)
    unsafe_skip: frozenset[str] = field(default_factory=frozenset)
    preload: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, group in (("required", self.required), ("unsafe_skip", self.unsafe_skip)):
            unknown = sorted(set(group) - set(MECHANISMS))
            if unknown:
                raise SandboxPolicyError(
                    f"sandbox policy: expected {name} among {list(MECHANISMS)}, got {unknown}"
                )
        if both := sorted(self.required & self.unsafe_skip):
            raise SandboxPolicyError(f"sandbox policy: {both} both required and unsafe_skip")
        paths = (self.scratch_dir, *self.readable_files, *self.writable_files)
        for p in (*paths, *self.device_files, *self.denied_paths):
            if not p.is_absolute():
                raise SandboxPolicyError(f"sandbox policy: expected absolute paths, got {p}")
        for name, v in (("memory", self.memory_bytes), ("cpu_seconds", self.cpu_seconds)):
            if v is not None and v <= 0:
                raise SandboxPolicyError(f"sandbox policy: expected {name} > 0, got {v}")
        minimums = (
            ("max_open_files", self.max_open_files, 16),
            ("max_file_mb", self.max_file_bytes >> 20, 1),
            ("max_tasks", self.max_tasks, 8),
            ("scratch_max_mb", self.scratch_max_bytes >> 20, 1),
        )
        for key, value, least in minimums:
            if value < least:
                raise SandboxPolicyError(f"sandbox policy: expected {key} >= {least}, got {value}")

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], *, default_scratch: Path) -> SandboxPolicy:
        """Parse the spec's ``sandbox`` dict (see the module doc); raises SandboxPolicyError."""
        if not isinstance(obj, Mapping):
            raise SandboxPolicyError(f"sandbox policy: expected an object, got {obj!r}")
        if extra := sorted(set(obj) - _KEYS):
            raise SandboxPolicyError(f"sandbox policy: expected keys {sorted(_KEYS)}, got {extra}")
        memory_mb = _opt_int(obj, "memory_mb", DEFAULT_MEMORY_BYTES >> 20)
        return cls(
            scratch_dir=Path(_str(obj, "scratch_dir", str(default_scratch))),
            readable_files=_paths(obj, "readable"),
            writable_files=_paths(obj, "writable"),
            device_files=_paths(obj, "devices"),
            denied_paths=_paths(obj, "deny"),
            memory_bytes=None if memory_mb is None else memory_mb << 20,
            cpu_seconds=_opt_int(obj, "cpu_seconds", DEFAULT_CPU_SECONDS),
            max_open_files=_int(obj, "max_open_files", DEFAULT_MAX_OPEN_FILES),
            max_file_bytes=_int(obj, "max_file_mb", DEFAULT_MAX_FILE_BYTES >> 20) << 20,
            max_tasks=_int(obj, "max_tasks", DEFAULT_MAX_TASKS),
            scratch_max_bytes=_int(obj, "scratch_max_mb", DEFAULT_SCRATCH_BYTES >> 20) << 20,
            uid=_int(obj, "uid", NOBODY),
            gid=_int(obj, "gid", NOBODY),
            required=_mechanisms(obj, "required"),
            unsafe_skip=_mechanisms(obj, "unsafe_skip"),
            preload=tuple(_strs(obj, "preload")),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form :meth:`from_json` reads back."""
        return {
            "scratch_dir": str(self.scratch_dir),
            "readable": [str(p) for p in self.readable_files],
            "writable": [str(p) for p in self.writable_files],
            "devices": [str(p) for p in self.device_files],
            "deny": [str(p) for p in self.denied_paths],
            "memory_mb": None if self.memory_bytes is None else self.memory_bytes >> 20,
            "cpu_seconds": self.cpu_seconds,
            "max_open_files": self.max_open_files,
            "max_file_mb": self.max_file_bytes >> 20,
            "max_tasks": self.max_tasks,
            "scratch_max_mb": self.scratch_max_bytes >> 20,
            "uid": self.uid,
            "gid": self.gid,
            "required": sorted(self.required),
            "unsafe_skip": sorted(self.unsafe_skip),
            "preload": list(self.preload),
        }


def _int(obj: Mapping[str, Any], key: str, default: int) -> int:
    v = obj.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool):
        raise SandboxPolicyError(f"sandbox policy: expected an integer for {key}, got {v!r}")
    return v


def _opt_int(obj: Mapping[str, Any], key: str, default: int) -> int | None:
    if key in obj and obj[key] is None:
        return None
    return _int(obj, key, default)


def _str(obj: Mapping[str, Any], key: str, default: str) -> str:
    v = obj.get(key, default)
    if v is None:
        return default
    if not isinstance(v, str):
        raise SandboxPolicyError(f"sandbox policy: expected a string for {key}, got {v!r}")
    return v


def _strs(obj: Mapping[str, Any], key: str) -> list[str]:
    v = obj.get(key, [])
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise SandboxPolicyError(f"sandbox policy: expected a list of strings for {key}, got {v!r}")
    return v


def _paths(obj: Mapping[str, Any], key: str) -> tuple[Path, ...]:
    return tuple(Path(s) for s in _strs(obj, key))


def _mechanisms(obj: Mapping[str, Any], key: str) -> frozenset[str]:
    if obj.get(key) == "all":
        return frozenset(MECHANISMS)
    return frozenset(_strs(obj, key))
