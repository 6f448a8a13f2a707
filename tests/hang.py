"""A hang as an exception: ``SIGALRM`` raises :class:`Hang` while :func:`alarms_raise_hang`
is active, so a fuzz test can bound each case with ``signal.alarm(seconds)``."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class Hang(Exception):
    """The alarm went off: the case under test did not end in time."""


def _raise(signum: int, frame: object) -> None:
    raise Hang


@contextmanager
def alarms_raise_hang() -> Iterator[None]:
    """``SIGALRM`` raises :class:`Hang` inside; the alarm is off and the handler restored after."""
    old = signal.signal(signal.SIGALRM, _raise)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
