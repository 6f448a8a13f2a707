"""How the supervisor hands a block its start-up parameters.

A block process is started as ``python -m kontur.<block>.process SPEC.json``; the spec is a
JSON file written by the supervisor into the run directory (mode 0600). Pipe file
descriptors named in the spec are inherited through ``pass_fds``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["install_stop_handler", "read_spec", "stop_requested"]

_STOP = [False]


def read_spec(argv: list[str] | None = None) -> dict[str, Any]:
    """Read the spec named on the command line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m kontur.<block>.process SPEC.json")
    spec: dict[str, Any] = json.loads(Path(args[0]).read_text())
    return spec


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the supervisor dies (even by ``kill -9``)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the supervisor's stop_all is the only way down
    if os.getppid() == 1:  # the supervisor died before prctl took effect
        _STOP[0] = True


def install_stop_handler() -> None:
    """SIGTERM/SIGINT set a flag the block's loop checks; the block then stops cleanly.

    A block also stops when its supervisor dies, so no orphan keeps running.
    """

    def _handler(signum: int, frame: object) -> None:
        _STOP[0] = True

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    _die_with_parent()


def stop_requested() -> bool:
    """True once a stop was asked for."""
    return _STOP[0]


def set_nonblocking(fd: int) -> None:
    """Make a pipe end non-blocking."""
    os.set_blocking(fd, False)
