"""How the supervisor hands a block its start-up parameters.

A block process is started as ``python -m kontur.<block>.process SPEC.json``; the spec is a
JSON file written by the supervisor into the run directory (mode 0600). Pipe file
descriptors named in the spec are inherited through ``pass_fds``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar

__all__ = ["exit_now", "install_stop_handler", "read_spec", "stop_requested", "wait_or_stop"]

_STOP = [False]
#: The read end of the pipe Python writes a byte to when a stop signal arrives (ADR 0059).
_WAKE: list[int] = []


class _Selectable(Protocol):
    def fileno(self) -> int: ...


_Waited = TypeVar("_Waited", bound="int | _Selectable")


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

    if not _WAKE:  # a wait in :func:`wait_or_stop` then ends at once, not at its timeout
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        _WAKE.append(r)
    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    _die_with_parent()


def stop_requested() -> bool:
    """True once a stop was asked for."""
    return _STOP[0]


def wait_or_stop(fds: Sequence[_Waited], timeout: float) -> list[_Waited]:
    """Those of ``fds`` readable within ``timeout`` seconds, waiting no longer once a stop is
    asked for (after :func:`install_stop_handler`): a block told to stop while idle stops
    now, not at the end of its poll (PEP 475 resumes an interrupted ``select``). A byte
    for a signal that asked no stop is read away, so the wait does not spin on it."""
    ready, _, _ = select.select([*fds, *_WAKE], [], [], timeout)
    if _WAKE and _WAKE[0] in ready and not stop_requested():
        with contextlib.suppress(BlockingIOError):
            os.read(_WAKE[0], 4096)
    return [f for f in fds if f in ready]


def exit_now(code: int) -> NoReturn:
    """End a block whose results are all written (its pipes are unbuffered) without the
    interpreter's teardown, which takes ~0.5 s once ONNX Runtime, OpenCV and scipy are
    loaded (ADR 0059): the supervisor waits for the worker's exit at each stop, and for each
    sandboxed probe's. Python's own streams are flushed first."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def set_nonblocking(fd: int) -> None:
    """Make a pipe end non-blocking."""
    os.set_blocking(fd, False)
