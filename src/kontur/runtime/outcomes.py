"""The recent outcomes a supervisor-side desk publishes in the run state (exports, incidents)."""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["KEEP", "OutcomeTable"]

#: Outcomes kept for the run state (the oldest forgotten first).
KEEP = 100


class OutcomeTable:
    """request id → its outcome line, the newest :data:`KEEP`, with a version the run-state
    publisher watches (bumped at every change)."""

    def __init__(self) -> None:
        self._status: OrderedDict[str, str] = OrderedDict()
        self.version = 0
        """Bumped at every change of an outcome (the publisher writes the run state then)."""

    @property
    def status(self) -> dict[str, str]:
        """request id → outcome line (a copy)."""
        return dict(self._status)

    def _set(self, rid: str, status: str) -> None:
        self._status[rid] = status
        self._status.move_to_end(rid)
        while len(self._status) > KEEP:
            self._status.popitem(last=False)
        self.version += 1
