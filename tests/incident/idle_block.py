"""A stand-in analytics worker for the failover tests: a real process that waits to be stopped.

Started by the real :class:`~kontur.runtime.supervisor.Supervisor` as ``python -m
tests.incident.idle_block SPEC``; it reads nothing and exits on SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import time


def main() -> None:
    """Wait until stopped."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    while True:
        time.sleep(0.1)


if __name__ == "__main__":
    main()
