"""Fault injection for ``kontur demo --inject-fault`` (each fault must move the degradation
machine while recording goes on; ``tests/e2e/test_e2e_faults.py``)."""

from __future__ import annotations

import os
from pathlib import Path

from kontur.clock import OffsetClock
from kontur.runtime.supervisor import Supervisor

__all__ = ["FAULTS", "FAULT_DELAY_S", "inject"]

FAULTS = ("model-tamper", "clock-jump", "worker-crash")
#: Seconds after the worker is first ready at which an injected fault fires.
FAULT_DELAY_S = 1.5


def _flip_middle_byte(target: Path) -> None:
    target.chmod(0o644)
    with open(target, "r+b") as f:
        f.seek(os.path.getsize(target) // 2)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0xFF]))


def inject(
    fault: str, *, model_file: Path | None, clock: OffsetClock, supervisor: Supervisor
) -> str | None:
    """Fire ``fault`` now; returns a note when there was nothing to fire it on."""
    if fault == "model-tamper":
        if model_file is None:
            return "model-tamper: no model file (HOG fallback); nothing to tamper"
        _flip_middle_byte(model_file)
    elif fault == "clock-jump":
        clock.jump_wall(3600.0)
    elif fault == "worker-crash":
        os.kill(supervisor.running["worker"].proc.pid, 9)
    return None
