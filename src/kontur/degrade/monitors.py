"""Health monitors that feed the degradation machine (DESIGN.md §1, "Safe degradation").

The paper lists what pushes the perimeter into degradation: an unapproved driver version,
GPU/NPU resets, a broken model integrity, lost time and anomalous results. Four of these are
watched here, on the CPU, without threads:

- :class:`ModelIntegrityMonitor`: the installed model file still hashes to its release digest;
- :class:`ClockJumpMonitor`: the wall clock did not step against the monotonic clock;
- :class:`StackMonitor`: the runtime, EP and driver versions the analytics ran on are still
  approved (the check itself is :mod:`kontur.placement.allowlist`'s, fed by the supervisor's
  own probe, never by the worker);
- :class:`Watchdog`: the worker processes keep beating and do not exit on their own.

The other triggers come from the blocks that see them: ``accelerator_reset`` from the
supervisor when the worker it placed on an accelerator exits because the EP failed,
``anomalous_results`` from the verifier's findings (disagreement, drift).

Every monitor follows :class:`Monitor`: ``poll()`` returns the ``(trigger, detail)`` pairs to
raise now, and ``take_cleared()`` then returns the triggers whose condition went away. The
supervisor calls :func:`step` periodically, which does both for each monitor and ticks the
machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import signal
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from kontur.clock import Clock
from kontur.degrade.errors import MonitorSetupError
from kontur.degrade.machine import DegradationMachine, Transition, Trigger

__all__ = [
    "ClockJumpMonitor",
    "ModelIntegrityMonitor",
    "Monitor",
    "StackMonitor",
    "Watchdog",
    "step",
]

_CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHOWN = 12
"""Hex digits of a digest shown in a detail; enough to tell two digests apart by eye."""


class Monitor(Protocol):
    """A pure health check polled by the supervisor."""

    def poll(self) -> list[tuple[str, str]]:
        """The ``(trigger name, detail)`` pairs to raise now."""
        ...

    def take_cleared(self) -> list[str]:
        """Trigger names whose condition went away since the last call (drains the list)."""
        ...


def step(machine: DegradationMachine, monitors: Iterable[Monitor]) -> list[Transition]:
    """Poll every monitor, apply its clears then its raises, then tick ``machine``.

    Clears go first so that when two monitors disagree about one trigger, the raise wins.
    """
    raises: list[tuple[str, str]] = []
    clears: list[str] = []
    for monitor in monitors:
        raises.extend(monitor.poll())
        clears.extend(monitor.take_cleared())
    moved: list[Transition] = []
    for name in clears:
        machine.clear_trigger(name)
    for name, detail in raises:
        moved.extend(machine.raise_trigger(name, detail))
    moved.extend(machine.tick())
    return moved


def _positive(what: str, value: float) -> float:
    if not value > 0:
        raise MonitorSetupError(f"expected {what} > 0, got {value}")
    return value


def _sha256_file(path: Path) -> str:
    """SHA-256 of ``path`` in hex, read in chunks so a large model is never held in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fingerprint(path: Path) -> tuple[int, ...]:
    """What a write to ``path`` must change: device, inode, size, mtime and ctime (ctime
    cannot be set back without stepping the system clock)."""
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ModelIntegrityMonitor:
    """Checks the installed model file at most once per ``interval_s`` (monotonic).

    Each check reads the file's metadata (:func:`_fingerprint`); the file is hashed again
    when that changed since the last hash that matched, and in any case every
    ``rehash_s``, so a large model costs a ``stat`` per check rather than a full read (a
    write that left the metadata alone, e.g. to the raw device, is found by the re-hash).

    A changed, missing or unreadable file raises ``model_integrity`` at every check while it
    lasts; the first check that matches again reports it cleared. The running worker keeps the
    bytes it verified at load time; this monitor catches the file being swapped under it,
    which the next restart would otherwise load.
    """

    def __init__(
        self,
        path: Path,
        expected_sha256: str,
        clock: Clock,
        interval_s: float,
        rehash_s: float = 60.0,
    ) -> None:
        expected = expected_sha256.lower()
        if not _SHA256.match(expected):
            raise MonitorSetupError(f"expected a sha256 of 64 hex digits, got {expected_sha256!r}")
        self._path = Path(path)
        self._expected = expected
        self._clock = clock
        self._interval = _positive("interval_s", interval_s)
        self._rehash = _positive("rehash_s", rehash_s)
        self._last_check: float | None = None
        #: The fingerprint and the time of the last hash that matched (None: hash next time).
        self._good: tuple[tuple[int, ...], float] | None = None
        self._bad = False
        self._cleared: list[str] = []
        self._checks = 0

    @property
    def checks(self) -> int:
        """How many times the file has been hashed (or found unreadable)."""
        return self._checks

    def poll(self) -> list[tuple[str, str]]:
        """Check the file if ``interval_s`` has passed since the last check; report a
        mismatch."""
        now = self._clock.monotonic()
        if self._last_check is not None and now - self._last_check < self._interval:
            return []
        self._last_check = now
        problem = None if self._unchanged(now) else self._hash(now)
        if problem is None:
            if self._bad:
                self._bad = False
                self._cleared.append(Trigger.MODEL_INTEGRITY.value)
            return []
        self._bad = True
        return [(Trigger.MODEL_INTEGRITY.value, problem)]

    def take_cleared(self) -> list[str]:
        """``["model_integrity"]`` once after the file matches again, else nothing."""
        out, self._cleared = self._cleared, []
        return out

    def _unchanged(self, now: float) -> bool:
        """The file's metadata is the one of the last matching hash, within ``rehash_s``."""
        if self._good is None or now - self._good[1] >= self._rehash:
            return False
        try:
            return _fingerprint(self._path) == self._good[0]
        except OSError:
            return False

    def _hash(self, now: float) -> str | None:
        self._checks += 1
        self._good = None
        want = f"model file {self._path}: expected sha256 {self._expected[:_SHOWN]}…"
        try:
            before = _fingerprint(self._path)  # before the read: a write during it shows next
            got = _sha256_file(self._path)
        except FileNotFoundError:
            return f"{want}, got nothing (file missing)"
        except OSError as exc:
            return f"{want}, got an unreadable file ({type(exc).__name__}: {exc.strerror})"
        if got != self._expected:
            return f"{want}, got {got[:_SHOWN]}…"
        with contextlib.suppress(OSError):  # written while it was read: hash again next time
            if _fingerprint(self._path) == before:
                self._good = (before, now)
        return None


class ClockJumpMonitor:
    """Compares wall-clock progress with monotonic progress between two polls.

    A step larger than ``threshold_s`` either way raises ``clock_jump``: freshness windows and
    archive timestamps rest on the wall clock, so a stepped clock is "lost time" in the
    paper's sense. Slow drift below the threshold per poll is NTP's business, not this one's.
    """

    def __init__(self, clock: Clock, threshold_s: float) -> None:
        self._clock = clock
        self._threshold = _positive("threshold_s", threshold_s)
        self._wall = clock.wall()
        self._mono = clock.monotonic()

    def poll(self) -> list[tuple[str, str]]:
        """Report a step since the previous poll (or construction)."""
        wall, mono = self._clock.wall(), self._clock.monotonic()
        step_s = (wall - self._wall) - (mono - self._mono)
        self._wall, self._mono = wall, mono
        if abs(step_s) <= self._threshold:
            return []
        detail = f"wall clock stepped {step_s:+.1f} s against the monotonic clock"
        return [(Trigger.CLOCK_JUMP.value, detail)]

    def take_cleared(self) -> list[str]:
        """Always empty: a clock step is an event and lapses in the machine by time."""
        return []


class StackMonitor:
    """Asks ``check`` at most once per ``interval_s`` (monotonic) whether the inference stack
    is still approved.

    ``check`` returns None when it is, else one line saying what is not. A problem raises
    ``driver_unapproved`` at every check while it lasts (SAFE: the priority task moves to the
    CPU); the first check that finds none again reports it cleared, the explicit recovery
    criterion (the version is approved again, or rolled back).
    """

    def __init__(self, check: Callable[[], str | None], clock: Clock, interval_s: float) -> None:
        self._check = check
        self._clock = clock
        self._interval = _positive("interval_s", interval_s)
        self._last: float | None = None
        self._bad = False
        self._cleared: list[str] = []

    def poll(self) -> list[tuple[str, str]]:
        """Check if ``interval_s`` has passed since the last check; report a problem."""
        now = self._clock.monotonic()
        if self._last is not None and now - self._last < self._interval:
            return []
        self._last = now
        problem = self._check()
        if problem is None:
            if self._bad:
                self._bad = False
                self._cleared.append(Trigger.DRIVER_UNAPPROVED.value)
            return []
        self._bad = True
        return [(Trigger.DRIVER_UNAPPROVED.value, problem)]

    def take_cleared(self) -> list[str]:
        """``["driver_unapproved"]`` once after the stack is approved again, else nothing."""
        out, self._cleared = self._cleared, []
        return out


def _describe_exit(exitcode: int) -> str:
    """``code -9 (SIGKILL)`` for a signal death (negative, as :mod:`subprocess` reports it)."""
    if exitcode >= 0:
        return f"code {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = f"unknown signal {-exitcode}"
    return f"code {exitcode} ({name})"


class Watchdog:
    """Heartbeats of the supervised processes, against one timeout (monotonic).

    The supervisor calls :meth:`expect` when it starts a process, :meth:`beat` whenever that
    process reports progress, :meth:`forget` before stopping it on purpose, and
    :meth:`report_exit` when it finds the process dead without having asked.
    """

    def __init__(self, clock: Clock, timeout_s: float) -> None:
        self._clock = clock
        self._timeout = _positive("timeout_s", timeout_s)
        self._last_beat: dict[str, float] = {}
        self._hung: set[str] = set()
        """The processes the previous poll found overdue."""
        self._exits: list[tuple[str, str]] = []
        self._cleared: list[str] = []

    def expect(self, name: str) -> None:
        """Start watching ``name``; its grace period starts now."""
        self._last_beat[name] = self._clock.monotonic()

    def forget(self, name: str) -> None:
        """Stop watching ``name`` (it is being stopped on purpose)."""
        self._last_beat.pop(name, None)

    def beat(self, name: str) -> None:
        """``name`` made progress. A beat from a process not expected (already gone) is ignored."""
        if name in self._last_beat:
            self._last_beat[name] = self._clock.monotonic()

    def report_exit(self, name: str, exitcode: int) -> tuple[str, str]:
        """``name`` died unasked: stop watching it and queue its crash trigger for :meth:`poll`.

        The worker's is ``worker_crash``; ingest's, the verifier's and the gate's is
        ``block_failed``. Returns the same pair for the caller's log; raising it twice is
        harmless.
        """
        self.forget(name)
        trigger = Trigger.WORKER_CRASH if name == "worker" else Trigger.BLOCK_FAILED
        event = (trigger.value, f"{name} exited with {_describe_exit(exitcode)}")
        self._exits.append(event)
        return event

    def poll(self) -> list[tuple[str, str]]:
        """Queued crashes, then a hang for every process past its timeout.

        The worker's hang is ``worker_hang``, any other block's ``block_failed``.
        """
        now = self._clock.monotonic()
        out, self._exits = self._exits, []
        hung: set[str] = set()
        for name, last in sorted(self._last_beat.items()):
            age = now - last
            if age > self._timeout:
                hung.add(name)
                detail = f"{name}: no progress for {age:.1f} s (timeout {self._timeout:.1f} s)"
                trigger = Trigger.WORKER_HANG if name == "worker" else Trigger.BLOCK_FAILED
                out.append((trigger.value, detail))
        if "worker" in self._hung and "worker" not in hung:
            self._cleared.append(Trigger.WORKER_HANG.value)
        self._hung = hung
        return out

    @property
    def hung(self) -> frozenset[str]:
        """The processes the last :meth:`poll` found past their timeout."""
        return frozenset(self._hung)

    def take_cleared(self) -> list[str]:
        """``["worker_hang"]`` once when no process is overdue any more, else nothing."""
        out, self._cleared = self._cleared, []
        return out
