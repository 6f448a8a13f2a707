"""The inference stack's versions, read from the host by the supervisor (issue 13 §3).

The facts :func:`kontur.placement.allowlist.judge` checks must come from somewhere the worker
cannot forge: the worker is untrusted and sandboxed, so what it would say of its own runtime
is a claim. This probe runs in the supervisor, before the sandboxed worker starts and again at
every run-time check, and imports no runtime and loads no driver library:

- a runtime's version is its distribution's installed metadata (``importlib.metadata``: the
  ``*.dist-info`` the worker's interpreter imports from, read, never imported);
- which distributions provide a module (``onnxruntime`` may come from ``onnxruntime``,
  ``onnxruntime-gpu`` or ``onnxruntime-openvino``) is read once, at start: it walks every
  installed distribution (about half a second). One walk serves the process until a folder
  of ``sys.path`` changes (an install or removal adds or drops a ``*.dist-info`` folder there,
  which changes the folder's mtime): the allow-list's probe and the run manifest of the same
  start then read one snapshot, and pay for it once;
- a driver's version is the kernel's own: ``/sys/module/<name>/version`` (an out-of-tree
  module such as ``nvidia``), or the running kernel's release for an in-tree module that has
  no version of its own (``intel_vpu``); no ``/sys/module/<name>`` means it is not loaded.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from kontur.placement.allowlist import StackFacts

__all__ = ["SYS_MODULE", "HostProbe", "module_distributions"]

#: Where the kernel lists its loaded modules.
SYS_MODULE = Path("/sys/module")
_MAX_VERSION = 128


#: A folder changed less than this before a walk is not trusted to stay as the walk saw it
#: (an mtime is as coarse as the kernel's tick): that walk is not kept.
SETTLED_NS = 2_000_000_000
#: ``((sys.path, the mtime of each of its folders), packages_distributions())``: the last walk.
_walked: tuple[tuple[object, ...], Mapping[str, list[str]]] | None = None


def _path_state() -> tuple[tuple[object, ...], bool]:
    """``sys.path`` with the mtime of each entry (None: not there), and whether every entry
    has stood unchanged for :data:`SETTLED_NS`."""
    state: list[object] = []
    settled, now = True, time.time_ns()
    for entry in sys.path:
        try:
            mtime: int | None = os.stat(entry or ".").st_mtime_ns
        except OSError:
            mtime = None
        settled = settled and (mtime is None or now - mtime >= SETTLED_NS)
        state.append((entry, mtime))
    return tuple(state), settled


def module_distributions(modules: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Each import name → the installed distributions that provide it (sorted)."""
    global _walked
    state, settled = _path_state()
    if _walked is not None and _walked[0] == state:
        provided = _walked[1]
    else:
        provided = metadata.packages_distributions()
        _walked = (state, provided) if settled else None
    return {m: tuple(sorted(set(provided.get(m, ())))) for m in modules}


def _dist_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def driver_version(module: str, sys_module: Path = SYS_MODULE) -> str | None:
    """The loaded kernel module's version; the kernel's release for an in-tree one."""
    where = sys_module / module
    if not where.is_dir():
        return None
    try:
        return (where / "version").read_text("ascii").strip()[:_MAX_VERSION]
    except FileNotFoundError:
        return f"kernel-{os.uname().release}"
    except (OSError, UnicodeDecodeError) as exc:
        return f"unreadable ({type(exc).__name__})"


class HostProbe:
    """Reads :class:`StackFacts` for the given modules and drivers (see the module)."""

    def __init__(
        self, modules: Iterable[str], drivers: Iterable[str], sys_module: Path = SYS_MODULE
    ) -> None:
        self._providers = module_distributions(modules)
        self._drivers = tuple(sorted(set(drivers)))
        self._sys_module = sys_module

    def facts(self) -> StackFacts:
        """The versions installed and loaded now."""
        modules: dict[str, dict[str, str]] = {}
        for module, dists in self._providers.items():
            versions = {d: v for d in dists if (v := _dist_version(d)) is not None}
            modules[module] = versions
        drivers = {d: driver_version(d, self._sys_module) for d in self._drivers}
        return StackFacts(modules, drivers)
