"""A stand-in block that starts a child holding ``child_mb`` MiB, as ingest starts its
sandboxed decoder; both wait to be stopped. Started by the real supervisor as ``python -m
tests.runtime.forking_block SPEC``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

_CHILD = (
    "import sys, time; b = bytearray(int(sys.argv[1]) << 20); b[::4096] = b'x' * len(b[::4096]); "
    "print('ready', flush=True); time.sleep(60)"
)


def main() -> int:
    """Start the child, say so in ``ready_path``, then wait until stopped."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(spec["child_mb"])], stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    child.stdout.readline()
    Path(spec["ready_path"]).write_text(str(child.pid))

    def stop(signum: int, frame: object) -> None:
        child.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        time.sleep(0.1)


if __name__ == "__main__":
    raise SystemExit(main())
