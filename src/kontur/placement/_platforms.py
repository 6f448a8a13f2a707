"""The platforms the dispatcher places onto (paper: p ∈ {CPU, GPU/NPU}; we split GPU and NPU)."""

from __future__ import annotations

from typing import Literal

from kontur.placement.errors import UnknownPlatform

__all__ = ["PLATFORMS", "Platform", "check_platform"]

Platform = Literal["cpu", "gpu", "npu"]

#: Every platform, CPU first: the CPU is the fail-safe and wins ties (paper, Table 3).
PLATFORMS: tuple[Platform, ...] = ("cpu", "gpu", "npu")


def check_platform(name: str) -> Platform:
    """Return ``name`` as a :data:`Platform`, or raise :class:`UnknownPlatform`."""
    for p in PLATFORMS:
        if name == p:
            return p
    raise UnknownPlatform(f"expected a platform among {list(PLATFORMS)}, got {name!r}")
