"""Accelerator resets as the kernel reports them (issue 13 §3, ADR 0034).

A GPU that falls off the bus, takes an uncorrectable memory error or hangs and is reset by
its driver is reported by the kernel, whether or not the worker's execution provider noticed
yet. This module watches the kernel log for those reports. Order of steps:

1. :class:`KmsgReader` opens ``/dev/kmsg`` non-blocking and starts at its end (old records
   are not this run's); each :meth:`KmsgReader.read` returns the complete lines written since.
   A missing device, a refused open (``EPERM``/``EACCES`` without ``CAP_SYSLOG`` or under
   ``dmesg_restrict``) or a failed read makes it *unavailable*: that is said once, in
   :attr:`KmsgReader.unavailable` and one warning, and it never raises. Records the kernel
   overwrote before they were read (``EPIPE``) are counted in :attr:`KmsgReader.lost`;
2. :class:`KernelLogParser` (pure: fed lines, stamped by an injected clock) keeps only the
   kernel's own records (facility 0: userspace writes to ``/dev/kmsg`` are forced to another
   facility by the kernel, so a process cannot forge one) and classifies their text with
   :func:`classify`;
3. :class:`KernelResetMonitor` is a :class:`~kontur.degrade.Monitor`: every fault whose
   class is a reset raises ``accelerator_reset`` with a one-line detail naming the driver,
   the device and the code. The trigger recovers by time, like a worker's EP failure.

What counts as a reset (the driver's own words, see :func:`classify`):

- **NVIDIA** ``NVRM: Xid (PCI:dddd:bb:dd): <n>, ...``. From NVIDIA's Xid catalogue, the
  codes whose resolution is a GPU reset or a reboot are resets here: 46 (GPU stopped
  processing), 48 (double-bit ECC error), 62 (internal micro-controller halt), 64 (ECC row
  remapping failure), 74 (NVLink error), 79 (GPU has fallen off the bus), 95 (uncontained
  ECC error), 119 and 120 (GSP timeout or error), 140 (unrecovered ECC error), and 154 when
  the recovery action changed to anything but ``None``. ``NVRM: GPU at ... has fallen off
  the bus`` is one too. The codes that end one application's context and leave the GPU
  working (13 graphics exception, 31 memory page fault, 43 GPU stopped processing for one
  channel, 45 preemptive cleanup, 69, 94 contained ECC error, 109 context switch timeout, and
  the rest) are *faults*, not resets: on a shared GPU they are often another tenant's bug,
  and when they are the worker's, its EP fails and the supervisor already raises
  ``accelerator_reset`` from its exit.
- **AMD** ``amdgpu``: ``GPU reset begin``/``GPU reset(n) succeeded``, a ``ring ... timeout``
  (the job timeout that starts a recovery).
- **Intel** ``i915``/``xe``: ``GPU HANG``, ``Resetting chip``/``Resetting <engine>`` and
  ``xe``'s ``Engine reset``, ``GT reset`` or ``Timedout job``; the NPU's ``intel_vpu``:
  ``Recovery triggered by ...``/``Recovering the NPU``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from kontur.clock import Clock
from kontur.degrade.machine import Trigger

__all__ = [
    "NVIDIA_RESET_XIDS",
    "AcceleratorFault",
    "KernelLogParser",
    "KernelResetMonitor",
    "KmsgReader",
    "classify",
]

log = logging.getLogger("kontur.kmsg")

#: Xid codes whose resolution in NVIDIA's catalogue is a GPU reset or a reboot (module doc).
NVIDIA_RESET_XIDS = frozenset({46, 48, 62, 64, 74, 79, 95, 119, 120, 140, 154})
#: A fault's kernel text is kept to this many characters.
MAX_TEXT = 200
#: At most this many bytes are read in one :meth:`KmsgReader.read` (the rest waits).
MAX_READ = 1 << 20

_XID = re.compile(r"NVRM: Xid \((?:PCI:)?(?P<dev>[0-9a-fA-F:.]+)\): (?P<xid>\d+)")
_NV_BUS = re.compile(r"NVRM: GPU (?:at )?(?:PCI:)?(?P<dev>[0-9a-fA-F:.]+)[: ].*fallen off the bus")
_NV_RECOVERY_NONE = re.compile(r"recovery action changed from .* to 0x0\b")
_DRM_DEV = re.compile(r"^(?P<drv>amdgpu|i915|xe|intel_vpu) (?P<dev>[0-9a-fA-F]{4}:[0-9a-fA-F:.]+):")
_AMD = re.compile(r"GPU reset begin|GPU reset(?:\(\d+\))? succeeded|ring \S+ timeout")
_INTEL = re.compile(r"GPU HANG|Resetting (?:chip|\w+ for)|Engine reset|GT reset|Timedout job")
_NPU = re.compile(r"Recovery triggered by|Recovering the [NV]PU")


@dataclass(frozen=True)
class AcceleratorFault:
    """One accelerator fault the kernel reported."""

    driver: str
    """``nvidia``, ``amdgpu``, ``i915``, ``xe``, ``intel_vpu`` (``drm`` when unnamed)."""
    device: str
    """The PCI address the kernel named (``?`` when the line names none)."""
    code: str
    """What happened, shortly: ``Xid 79``, ``ring timeout``, ``GPU HANG``..."""
    reset: bool
    """True when the accelerator was or must be reset (module doc); False for a fault that
    ended one application's context."""
    text: str
    """The kernel's line, at most :data:`MAX_TEXT` characters."""
    seen_at: float
    """Wall time (injected clock) when the line was read, not the kernel's timestamp."""

    @property
    def detail(self) -> str:
        """One line for the trigger and the archive."""
        what = "reset" if self.reset else "fault"
        where = f"{self.driver} {self.device} {self.code}"
        return f"kernel reports an accelerator {what}: {where}: {self.text}"


def _nvidia(text: str) -> tuple[str, str, str, bool] | None:
    m = _XID.search(text)
    if m is not None:
        xid = int(m["xid"])
        reset = xid in NVIDIA_RESET_XIDS and not (xid == 154 and _NV_RECOVERY_NONE.search(text))
        return "nvidia", m["dev"].rstrip(":."), f"Xid {xid}", reset
    m = _NV_BUS.search(text)
    if m is not None:
        return "nvidia", m["dev"].rstrip(":."), "fallen off the bus", True
    return None


def _driver_named(text: str) -> str | None:
    """The driver a line without a device prefix names (``[drm:... [amdgpu]]``), if any."""
    for driver in ("amdgpu", "i915", "xe"):
        if f"[{driver}]" in text or (driver != "xe" and f"{driver}:" in text):
            return driver
    return "drm" if "GPU HANG" in text else None


def classify(text: str) -> tuple[str, str, str, bool] | None:
    """``(driver, device, code, reset)`` for a kernel line reporting an accelerator fault.

    None for every other line. Pure; the module doc says which lines are resets.
    """
    if "NVRM:" in text:
        return _nvidia(text)
    m = _DRM_DEV.search(text)
    driver = m["drv"] if m is not None else _driver_named(text)
    if driver is None:
        return None
    device = m["dev"].rstrip(":.") if m is not None else "?"
    pattern = {"amdgpu": _AMD, "intel_vpu": _NPU}.get(driver, _INTEL)
    hit = pattern.search(text)
    if hit is None:
        return None
    code = re.sub(r"\(\d+\)", "", hit.group(0))
    if code.startswith("ring "):
        code = "ring timeout"
    return driver, device, code, True


class KernelLogParser:
    """Turns ``/dev/kmsg`` lines into :class:`AcceleratorFault` values (pure, see the module)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.records = 0
        """Kernel records seen (facility 0)."""
        self.skipped = 0
        """Lines that are not kernel records: userspace writes, malformed headers."""

    def feed(self, line: str) -> AcceleratorFault | None:
        """The fault ``line`` reports, or None (``/dev/kmsg`` format ``pri,seq,usec,flags;text``).

        Continuation lines (``" SUBSYSTEM=..."``) and empty lines are ignored silently.
        """
        if not line.strip() or line.startswith(" "):
            return None
        head, sep, text = line.partition(";")
        fields = head.split(",")
        if not sep or len(fields) < 3 or not all(f.isdigit() for f in fields[:3]):
            self.skipped += 1
            return None
        if int(fields[0]) >> 3 != 0:  # not LOG_KERN: a process wrote it
            self.skipped += 1
            return None
        self.records += 1
        text = text.rstrip("\n")
        found = classify(text)
        if found is None:
            return None
        driver, device, code, reset = found
        return AcceleratorFault(driver, device, code, reset, text[:MAX_TEXT], self._clock.wall())


class KmsgReader:
    """Reads new lines from ``/dev/kmsg`` without blocking; never raises (see the module).

    Works on any readable path: a regular file or a FIFO stands in for the device in tests
    (the end of a regular file is where reading starts, as for the device).
    """

    def __init__(self, path: str = "/dev/kmsg") -> None:
        self.path = path
        self.unavailable: str | None = None
        """Why the kernel log cannot be read (set once, then every read returns nothing)."""
        self.lost = 0
        """Times the kernel overwrote records before they were read (``EPIPE``)."""
        self._fd: int | None = None
        self._partial = b""
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            self._give_up(f"cannot open {path}: {_reason(exc)}")
            return
        try:
            os.lseek(self._fd, 0, os.SEEK_END)
        except OSError as exc:
            if exc.errno != errno.ESPIPE:  # a FIFO cannot seek: it holds only new lines
                self._give_up(f"cannot seek to the end of {path}: {_reason(exc)}")

    def read(self) -> list[str]:
        """The complete lines written since the last read (at most :data:`MAX_READ` bytes)."""
        if self._fd is None:
            return []
        chunks: list[bytes] = []
        got = 0
        while got < MAX_READ:
            try:
                chunk = os.read(self._fd, 8192)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # records overwritten: go on from the oldest left
                    self.lost += 1
                    continue
                self._give_up(f"cannot read {self.path}: {_reason(exc)}")
                break
            if not chunk:  # a regular file's end, or a FIFO with no writer: nothing more now
                break
            chunks.append(chunk)
            got += len(chunk)
        data = self._partial + b"".join(chunks)
        *lines, self._partial = data.split(b"\n")
        return [ln.decode("utf-8", "replace") for ln in lines]

    def close(self) -> None:
        """Close the device (reads return nothing afterwards)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            self.close()

    def _give_up(self, why: str) -> None:
        self.close()
        if self.unavailable is None:
            self.unavailable = why
            log.warning("kernel log unavailable, accelerator resets seen by exits only: %s", why)


def _reason(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "error")
    return f"{name} ({exc.strerror or exc})"


class KernelResetMonitor:
    """A :class:`~kontur.degrade.Monitor`: a reset in the kernel log raises ``accelerator_reset``.

    ``poll`` reads at most once per ``interval_s`` (monotonic). Every reset line raises the
    trigger with its :attr:`AcceleratorFault.detail`; faults that are not resets are kept in
    :attr:`faults` too (for the archive), without a trigger. ``worker_platform`` names where
    the supervisor placed the worker, for the detail only: a reset on the host degrades even
    when the task already runs on the CPU (the worker may just have left the accelerator).
    """

    def __init__(
        self,
        reader: KmsgReader,
        clock: Clock,
        interval_s: float = 1.0,
        worker_platform: Callable[[], str] | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s: expected a time > 0 s, got {interval_s}")
        self.reader = reader
        self.parser = KernelLogParser(clock)
        self._clock, self._interval = clock, interval_s
        self._platform = worker_platform
        self._last: float | None = None
        self.faults: list[AcceleratorFault] = []
        """Every fault read this run, resets and others, oldest first (at most 1000)."""

    def poll(self) -> list[tuple[str, str]]:
        """``accelerator_reset`` once per reset line read since the last poll."""
        now = self._clock.monotonic()
        if self._last is not None and now - self._last < self._interval:
            return []
        self._last = now
        raises: list[tuple[str, str]] = []
        for line in self.reader.read():
            fault = self.parser.feed(line)
            if fault is None:
                continue
            if len(self.faults) < 1000:
                self.faults.append(fault)
            if fault.reset:
                raises.append((Trigger.ACCELERATOR_RESET.value, fault.detail + self._where()))
        return raises

    def _where(self) -> str:
        if self._platform is None:
            return ""
        try:
            return f"; worker on {self._platform()}"
        except Exception:  # the table may be mid-restart: the reset still counts
            return "; worker placement unknown"

    def take_cleared(self) -> list[str]:
        """Nothing: ``accelerator_reset`` recovers by time, not by this monitor."""
        return []
