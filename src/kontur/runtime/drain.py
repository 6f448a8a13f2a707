"""How long the end of a run waits for the worker to finish what ingest published.

When every source has ended, the supervisor lets the worker (and the verifier behind it) work
through the frames already in the rings before it stops the blocks. It waits while the worker
makes progress, for at most :data:`DRAIN_TIMEOUT_S`, and gives up after :data:`DRAIN_STALL_S`
without any: a worker that keeps its ring heartbeat fresh but reads nothing (already a
``worker_hang`` trigger after ``degradation.watchdog_timeout_s``) no longer holds the run's
end for the whole minute. A pure core, fed the time and a progress token
(:class:`DrainWatch`); :class:`kontur.runtime.perimeter.Perimeter` feeds it the frames the
worker acknowledged on each ring.

Only acknowledged frames count. A worker's restart or its ready message does not: the
watchdog restarts a worker that makes no progress every few seconds, and each new one would
otherwise hold the end again, up to the whole minute. So a worker restarted in the last
seconds of a clip has :data:`DRAIN_STALL_S` from the last frame acknowledged to load and
resume (about 1.5 s on the CPU here); a longer load loses the analysis of the clip's last
frames. The recording is whole either way.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["DRAIN_STALL_S", "DRAIN_TIMEOUT_S", "DrainWatch"]

#: The longest the end of a run waits for the worker in all (seconds).
DRAIN_TIMEOUT_S = 60.0
#: The longest it waits while the worker makes no progress (seconds): more than twice the
#: default watchdog timeout, and more than any one inference takes on a healthy worker.
DRAIN_STALL_S = 15.0


class DrainWatch:
    """Whether to go on waiting for the worker, from ``started`` on.

    Progress is any change of the token handed to :meth:`waiting`.
    """

    def __init__(
        self,
        started: float,
        timeout_s: float = DRAIN_TIMEOUT_S,
        stall_s: float = DRAIN_STALL_S,
    ) -> None:
        self._started, self._timeout_s, self._stall_s = started, timeout_s, stall_s
        self._seen: Hashable | None = None
        self._moved = started

    def waiting(self, now: float, progress: Hashable) -> bool:
        """True while ``now`` is within the timeout and within ``stall_s`` of the last change
        of ``progress``."""
        if progress != self._seen:
            self._seen, self._moved = progress, now
        return now - self._started < self._timeout_s and now - self._moved < self._stall_s
