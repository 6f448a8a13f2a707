"""The approved inference stack: runtime, execution provider and driver versions (issue 13 §3).

The paper's Table 3 answers the GPU/NPU stack's "dependence on the version of a closed driver
and on the consistency of several components" with "a white list of versions, signatures,
testing of updates, fast rollback". This module is that white list's pure core: it reads no
file and imports no runtime. A probe outside the worker (:mod:`kontur.placement.probe`, run by
the supervisor) gathers the facts; the worker's own word on its versions is never asked.

Order of steps:

1. :func:`components_for` names what the analytics on a platform loads: the Python
   distributions that provide the runtime's module (``onnxruntime``, ``openvino`` or ``cv2``;
   on an accelerator the same distribution carries the execution provider:
   ``onnxruntime-gpu``'s CUDA EP, ``onnxruntime-openvino``'s OpenVINO EP) and, for an
   accelerator, its kernel driver (:data:`DRIVER_MODULES`: ``nvidia`` under ONNX Runtime's
   CUDA EP, ``i915`` under OpenVINO's GPU plug-in, ``intel_vpu`` for an NPU);
2. the probe reads their versions into :class:`StackFacts`, once at start (the facts every
   later check is pinned to) and again at every run-time check;
3. :func:`judge` returns a :class:`StackVerdict`. A runtime distribution listed in the
   allow-list must match one of its patterns; one not listed must still have the version it
   had at start (a package changed under a running site is a mismatch). A driver must be
   listed: a proprietary kernel driver is never trusted by default (CPU-first), so an
   accelerator whose driver has no entry is never placed on.

Patterns are exact versions or globs where ``*`` stands for any run of characters
(``1.32.*``); nothing else is special.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kontur.placement._platforms import check_platform

__all__ = [
    "DRIVER_MODULES",
    "RUNTIME_MODULES",
    "Allowlist",
    "StackFacts",
    "StackVerdict",
    "canonical_name",
    "components_for",
    "judge",
    "version_matches",
]

#: The Python module each release runtime (``files.runtime``; ``opencv`` for the HOG fallback)
#: imports: the distributions that provide it are the runtime and its execution providers.
RUNTIME_MODULES: Mapping[str, str] = MappingProxyType(
    {"onnx": "onnxruntime", "openvino": "openvino", "opencv": "cv2"}
)
#: The kernel module that drives each (runtime, accelerator): ONNX Runtime's CUDA and
#: TensorRT EPs run on NVIDIA's driver, OpenVINO's GPU plug-in on Intel's, either's NPU on
#: ``intel_vpu``. The CPU needs no driver of its own.
DRIVER_MODULES: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("onnx", "gpu"): "nvidia",
        ("onnx", "npu"): "intel_vpu",
        ("openvino", "gpu"): "i915",
        ("openvino", "npu"): "intel_vpu",
    }
)

_SEPARATORS = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """A distribution's name as PEP 503 compares it (``OpenCV_Python`` → ``opencv-python``)."""
    return _SEPARATORS.sub("-", name).lower()


def version_matches(version: str, pattern: str) -> bool:
    """True when ``version`` equals ``pattern``, ``*`` in it standing for any characters."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, version) is not None


@dataclass(frozen=True)
class Allowlist:
    """Approved versions: runtime distributions and kernel drivers, each name → patterns."""

    runtimes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    drivers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        runtimes = {canonical_name(k): tuple(v) for k, v in self.runtimes.items()}
        object.__setattr__(self, "runtimes", MappingProxyType(runtimes))
        object.__setattr__(self, "drivers", MappingProxyType(dict(self.drivers)))

    def with_driver(self, module: str, *patterns: str) -> Allowlist:
        """A copy that also approves ``patterns`` of driver ``module``."""
        drivers = dict(self.drivers)
        drivers[module] = (*drivers.get(module, ()), *patterns)
        return Allowlist(self.runtimes, drivers)


@dataclass(frozen=True)
class StackFacts:
    """What a probe outside the worker found: who provides each module, which driver runs.

    ``modules`` maps an import name to ``{distribution: version}`` (empty: not installed);
    ``drivers`` maps a kernel module to its version (None: not loaded).
    """

    modules: Mapping[str, Mapping[str, str]]
    drivers: Mapping[str, str | None]

    def to_json(self) -> dict[str, Any]:
        """The facts as the archive's ``stack`` event stores them."""
        return {
            "modules": {m: dict(sorted(d.items())) for m, d in sorted(self.modules.items())},
            "drivers": dict(sorted(self.drivers.items())),
        }


@dataclass(frozen=True)
class StackVerdict:
    """Whether the analytics may run on ``platform`` with the stack found, and why not."""

    platform: str
    approved: bool
    reasons: tuple[str, ...]
    """One line per component that failed; empty when approved."""
    components: tuple[tuple[str, str | None], ...]
    """``(name, version)`` of every component judged, ``runtime:`` or ``driver:`` first."""

    def to_json(self) -> dict[str, Any]:
        """The verdict for the archive and the summary."""
        return {
            "platform": self.platform,
            "approved": self.approved,
            "reasons": list(self.reasons),
            "components": {name: version for name, version in self.components},
        }


def components_for(
    runtime: str, platform: str, drivers: Mapping[tuple[str, str], str] = DRIVER_MODULES
) -> tuple[str, str | None]:
    """``(module, driver)``: the runtime's import name and the platform's kernel driver."""
    check_platform(platform)
    if runtime not in RUNTIME_MODULES:
        raise ValueError(f"expected a runtime among {sorted(RUNTIME_MODULES)}, got {runtime!r}")
    driver = None if platform == "cpu" else drivers.get((runtime, platform))
    return RUNTIME_MODULES[runtime], driver


def _runtime_reasons(
    module: str, found: Mapping[str, str], allow: Allowlist, pinned: Mapping[str, str]
) -> list[str]:
    if not found:
        return [f"runtime module {module}: expected an installed distribution providing it, "
                "got none"]  # fmt: skip
    reasons = []
    for dist, version in sorted(found.items()):
        patterns = allow.runtimes.get(canonical_name(dist))
        if patterns is not None:
            if not any(version_matches(version, p) for p in patterns):
                reasons.append(
                    f"runtime {dist}: expected a version in {list(patterns)} "
                    f"(placement.allowlist.runtimes), got {version}"
                )
        elif pinned.get(dist) != version:
            at_start = pinned.get(dist) or "nothing"
            reasons.append(
                f"runtime {dist}: expected {at_start} as found at start (not listed in "
                f"placement.allowlist.runtimes), got {version}"
            )
    return reasons


def _driver_reasons(
    runtime: str, platform: str, driver: str | None, facts: StackFacts, allow: Allowlist
) -> list[str]:
    if driver is None:
        if platform == "cpu":
            return []
        return [f"{platform}: expected a driver known for runtime {runtime}, got none"]
    version = facts.drivers.get(driver)
    if version is None:
        return [f"driver {driver} of {platform}: expected it loaded, got none"]
    patterns = allow.drivers.get(driver)
    if patterns is None:
        return [f"driver {driver} of {platform}: expected a version listed in "
                f"placement.allowlist.drivers, got {version} (no entry for {driver})"]  # fmt: skip
    if not any(version_matches(version, p) for p in patterns):
        return [f"driver {driver} of {platform}: expected a version in {list(patterns)}, "
                f"got {version}"]  # fmt: skip
    return []


def judge(
    platform: str,
    runtime: str,
    facts: StackFacts,
    allow: Allowlist,
    pinned: StackFacts,
    drivers: Mapping[tuple[str, str], str] = DRIVER_MODULES,
) -> StackVerdict:
    """Judge the stack the analytics would load on ``platform`` (see the module).

    ``pinned`` is what the probe found at start: the version an unlisted runtime must keep.
    """
    module, driver = components_for(runtime, platform, drivers)
    found = facts.modules.get(module, {})
    reasons = _runtime_reasons(module, found, allow, pinned.modules.get(module, {}))
    reasons += _driver_reasons(runtime, platform, driver, facts, allow)
    components: list[tuple[str, str | None]] = [
        (f"runtime:{d}", v) for d, v in sorted(found.items())
    ]
    if driver is not None:
        components.append((f"driver:{driver}", facts.drivers.get(driver)))
    return StackVerdict(platform, not reasons, tuple(reasons), tuple(components))
