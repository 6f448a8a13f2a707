"""When a timed run (``kontur demo --seconds N``) stops its sources (ADR 0061).

The ``N`` seconds count from the first frame any camera publishes, not from the moment ingest
is spawned. A start costs seconds of imports before a block reads anything, more on a loaded
machine, and a live camera may take its time to answer. Counted from the spawn, a short run on
a busy host ended before its first frame: it analysed nothing, and its ingest, stopped before it
had installed its stop handler, died of the SIGTERM and read as a failed block.

A camera that never sends a frame must not hold a timed run forever: after
:data:`FIRST_FRAME_WAIT_S` without one, the ``N`` seconds count from then.

A pure core fed the time and whether frames flow; :class:`kontur.runtime.perimeter.Perimeter`
feeds it the rings' published counts.
"""

from __future__ import annotations

__all__ = ["FIRST_FRAME_WAIT_S", "SourceDeadline"]

#: The longest a timed run waits for a first frame before its seconds count anyway.
FIRST_FRAME_WAIT_S = 60.0


class SourceDeadline:
    """Whether a run of ``seconds`` should stop its sources, from ``spawned`` (ingest's start)."""

    def __init__(self, seconds: float, spawned: float) -> None:
        if seconds <= 0:
            raise ValueError(f"expected a run time above 0 s, got {seconds}")
        self.seconds = seconds
        self.spawned = spawned
        self.counting_since: float | None = None
        """When the seconds began to count: the first frame, or the end of the wait for it."""

    def due(self, now: float, flowing: bool) -> bool:
        """True once ``seconds`` have passed since frames flowed (``flowing``: any camera
        published one) or since :data:`FIRST_FRAME_WAIT_S` went by without one."""
        if self.counting_since is None:
            if flowing:
                self.counting_since = now
            elif now - self.spawned >= FIRST_FRAME_WAIT_S:
                self.counting_since = self.spawned + FIRST_FRAME_WAIT_S
            else:
                return False
        return now - self.counting_since >= self.seconds
