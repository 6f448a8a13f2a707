"""A stand-in analytics worker that exits at once with the status its spec names.

Started by the real :class:`~kontur.runtime.supervisor.Supervisor` as ``python -m
tests.runtime.exiting_block SPEC``: a worker whose accelerator failed exits with
:data:`kontur.worker.errors.ACCELERATOR_FAULT_EXIT`; on its restart (the spec has ``platform:
cpu`` then) it waits to be stopped, as a healthy worker would.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path


def main() -> int:
    """Exit with ``exit_code`` unless restarted on the CPU; then wait until stopped."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    if spec.get("platform") != "cpu":
        return int(spec["exit_code"])
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    while True:
        time.sleep(0.1)


if __name__ == "__main__":
    raise SystemExit(main())
