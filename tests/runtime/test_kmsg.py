"""Accelerator resets from the kernel log: the parser on kernel lines in the drivers' own
formats (as quoted in public bug reports), the reader on a regular file and a FIFO standing in
for /dev/kmsg, and the monitor raising ``accelerator_reset`` in a real degradation machine."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from kontur.clock import ManualClock
from kontur.config import DegradationConfig
from kontur.degrade import DegradationMachine, State, step
from kontur.runtime.kmsg import KernelLogParser, KernelResetMonitor, KmsgReader, classify

# (kernel text, driver, device, code, reset)
RESET_LINES = [
    ("NVRM: Xid (PCI:0000:01:00): 79, pid=0, GPU has fallen off the bus.",
     "nvidia", "0000:01:00", "Xid 79", True),
    ("NVRM: Xid (PCI:0000:3b:00): 48, pid=2213, name=python3, An uncorrectable double bit "
     "error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.",
     "nvidia", "0000:3b:00", "Xid 48", True),
    ("NVRM: Xid (PCI:0000:65:00): 62, pid='<unknown>', name=<unknown>, 0000c4a6 0000c4a6 "
     "00000000 0000a52e 0000a9d8 0000a1ea 00000000 00000000",
     "nvidia", "0000:65:00", "Xid 62", True),
    ("NVRM: Xid (PCI:0000:b1:00): 154, GPU recovery action changed from 0x0 (None) to 0x1 "
     "(GPU Reset Required)", "nvidia", "0000:b1:00", "Xid 154", True),
    ("NVRM: GPU 0000:01:00.0: GPU has fallen off the bus.",
     "nvidia", "0000:01:00.0", "fallen off the bus", True),
    ("NVRM: GPU at 0000:01:00.0 has fallen off the bus.",
     "nvidia", "0000:01:00.0", "fallen off the bus", True),
    ("amdgpu 0000:03:00.0: amdgpu: GPU reset begin!",
     "amdgpu", "0000:03:00.0", "GPU reset begin", True),
    ("amdgpu 0000:03:00.0: amdgpu: GPU reset(2) succeeded!",
     "amdgpu", "0000:03:00.0", "GPU reset succeeded", True),
    ("[drm:amdgpu_job_timedout [amdgpu]] *ERROR* ring gfx timeout, signaled seq=1234, "
     "emitted seq=1236", "amdgpu", "?", "ring timeout", True),
    ("amdgpu 0000:0c:00.0: [drm] *ERROR* ring gfx_0.0.0 timeout, signaled seq=49377, "
     "emitted seq=49379", "amdgpu", "0000:0c:00.0", "ring timeout", True),
    ("i915 0000:00:02.0: [drm] GPU HANG: ecode 12:1:85dffffb, in Xorg [1069]",
     "i915", "0000:00:02.0", "GPU HANG", True),
    ("i915 0000:00:02.0: [drm] Resetting rcs0 for preemption time out",
     "i915", "0000:00:02.0", "Resetting rcs0 for", True),
    ("i915 0000:00:02.0: [drm] Resetting chip for stopped heartbeat on rcs0",
     "i915", "0000:00:02.0", "Resetting chip", True),
    ("[drm] GPU HANG: ecode 9:0:0x85dffffb, in chrome [1234], reason: hang on rcs0, "
     "action: reset", "drm", "?", "GPU HANG", True),
    ("xe 0000:03:00.0: [drm] GT0: Engine reset: engine_class=rcs, logical_mask: 0x1, "
     "guc_id=2", "xe", "0000:03:00.0", "Engine reset", True),
    ("xe 0000:00:02.0: [drm] *ERROR* GT0: Timedout job: seqno=4294967169, guc_id=2, "
     "flags=0x0 in python3 [4511]", "xe", "0000:00:02.0", "Timedout job", True),
    ("intel_vpu 0000:00:0b.0: [drm] *ERROR* ivpu_pm_trigger_recovery(): Recovery triggered "
     "by JOB timeout", "intel_vpu", "0000:00:0b.0", "Recovery triggered by", True),
    # faults that end one application's context, not the GPU: no trigger
    ("NVRM: Xid (PCI:0000:41:00): 31, pid=2717, name=python3, Ch 00000008, intr 10000000. "
     "MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f3c_58000000. Fault is of type "
     "FAULT_PDE ACCESS_TYPE_READ", "nvidia", "0000:41:00", "Xid 31", False),
    ("NVRM: Xid (PCI:0000:02:00): 13, pid=1234, name=python, Graphics SM Warp Exception on "
     "(GPC 0, TPC 0, SM 0): Out Of Range Address", "nvidia", "0000:02:00", "Xid 13", False),
    ("NVRM: Xid (PCI:0000:0a:00): 45, pid=5123, name=python3, Ch 00000010",
     "nvidia", "0000:0a:00", "Xid 45", False),
    ("NVRM: Xid (0000:01:00): 3, C 00000005 SC 00000007 M 00001ffc Data ffffffff",
     "nvidia", "0000:01:00", "Xid 3", False),
    ("NVRM: Xid (PCI:0000:b1:00): 154, GPU recovery action changed from 0x1 (GPU Reset "
     "Required) to 0x0 (None)", "nvidia", "0000:b1:00", "Xid 154", False),
]  # fmt: skip

UNRELATED = [
    "usb 1-1: reset high-speed USB device number 2 using xhci_hcd",
    "e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex",
    "amdgpu 0000:03:00.0: amdgpu: SMU is initialized successfully!",
    "i915 0000:00:02.0: [drm] GuC firmware i915/tgl_guc_70.bin version 70.20.0",
    "NVRM: loading NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024",
    "xe 0000:03:00.0: [drm] Tile0: GT0: uc firmware loaded, maxe: 1",
]


def record(text: str, pri: int = 3, seq: int = 1) -> str:
    """A /dev/kmsg record: ``pri,seq,usec,flags;text`` (pri 3: KERN_ERR, facility 0)."""
    return f"{pri},{seq},{1_000_000 * seq},-;{text}\n"


@pytest.mark.parametrize(("text", "driver", "device", "code", "reset"), RESET_LINES)
def test_classify_driver_lines(text: str, driver: str, device: str, code: str, reset: bool) -> None:
    assert classify(text) == (driver, device, code, reset)


@pytest.mark.parametrize("text", UNRELATED)
def test_classify_ignores_other_lines(text: str) -> None:
    assert classify(text) is None


def test_parser_keeps_kernel_records_only() -> None:
    clock = ManualClock(wall=1_800_000_000.0)
    parser = KernelLogParser(clock)
    xid79 = RESET_LINES[0][0]
    fault = parser.feed(record(xid79))
    assert fault is not None and fault.reset and fault.seen_at == 1_800_000_000.0
    assert fault.detail.startswith("kernel reports an accelerator reset: nvidia 0000:01:00 Xid 79")
    # a process writing to /dev/kmsg gets LOG_USER (pri 12 = user.warning): never a reset
    assert parser.feed(record(xid79, pri=12)) is None
    assert parser.feed(xid79) is None  # no kmsg header: not a kernel record
    assert parser.feed(" SUBSYSTEM=pci") is None  # continuation line
    assert (parser.records, parser.skipped) == (1, 2)


def test_reader_starts_at_the_end_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "kmsg"
    path.write_text(record(RESET_LINES[0][0], seq=1))  # before the run: not this run's
    reader = KmsgReader(str(path))
    assert reader.unavailable is None and reader.read() == []
    with path.open("a") as f:
        f.write(record(RESET_LINES[6][0], seq=2) + " SUBSYSTEM=pci\n" + "3,3,3000000,-;i915 ")
    assert reader.read() == [record(RESET_LINES[6][0], seq=2).rstrip("\n"), " SUBSYSTEM=pci"]
    with path.open("a") as f:  # the partial record completes
        f.write("0000:00:02.0: [drm] GPU HANG: ecode 12:1:85dffffb, in Xorg [1069]\n")
    (line,) = reader.read()
    assert KernelLogParser(ManualClock()).feed(line) is not None
    reader.close()
    assert reader.read() == []


def test_reader_on_a_fifo(tmp_path: Path) -> None:
    path = tmp_path / "kmsg.fifo"
    os.mkfifo(path)
    reader = KmsgReader(str(path))  # a FIFO cannot seek: that is not a failure
    writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        assert reader.read() == [] and reader.unavailable is None
        os.write(writer, record(RESET_LINES[10][0]).encode())
        assert reader.read() == [record(RESET_LINES[10][0]).rstrip("\n")]
        assert reader.read() == []
    finally:
        os.close(writer)
        reader.close()


def test_reader_absent_is_unavailable_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kontur.kmsg")
    reader = KmsgReader(str(tmp_path / "no-kmsg"))
    assert reader.read() == [] and reader.read() == []
    assert reader.unavailable is not None and "ENOENT" in reader.unavailable
    assert len(caplog.records) == 1 and "kernel log unavailable" in caplog.text


def test_reader_failing_read_is_unavailable(tmp_path: Path) -> None:
    reader = KmsgReader(str(tmp_path))  # a directory opens, but read() fails
    assert reader.read() == []
    assert reader.unavailable is not None and reader.unavailable.startswith("cannot read")
    assert reader.read() == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000")
def test_reader_refused_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "kmsg"
    path.write_text("")
    path.chmod(0)
    reader = KmsgReader(str(path))
    assert reader.read() == [] and reader.unavailable is not None
    assert "EACCES" in reader.unavailable or "EPERM" in reader.unavailable


def test_reader_on_the_real_device_never_raises() -> None:
    reader = KmsgReader()
    try:
        lines = reader.read()
        assert isinstance(lines, list)
        if not os.path.exists("/dev/kmsg"):
            assert reader.unavailable is not None
    finally:
        reader.close()


def test_monitor_raises_accelerator_reset_in_the_machine(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "kmsg"
    path.write_text("")
    monitor = KernelResetMonitor(KmsgReader(str(path)), clock, 1.0, lambda: "cuda")
    machine = DegradationMachine(DegradationConfig(), clock)
    assert step(machine, [monitor]) == [] and machine.state is State.NORMAL
    with path.open("a") as f:  # another tenant's page fault, then the GPU falls off the bus
        f.write(record(RESET_LINES[17][0], seq=5) + record(RESET_LINES[0][0], seq=6))
    assert monitor.poll() == []  # within interval_s of the last read
    clock.advance(1.0)
    (moved,) = step(machine, [monitor])
    assert (moved.to_state, moved.trigger) == (State.DEGRADED, "accelerator_reset")
    assert "Xid 79" in moved.detail and moved.detail.endswith("worker on cuda")
    assert [f.code for f in monitor.faults] == ["Xid 31", "Xid 79"]
    assert [f.reset for f in monitor.faults] == [False, True]
    assert monitor.take_cleared() == []


def test_monitor_reset_counts_when_the_placement_is_unknown(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "kmsg"
    path.write_text("")

    def mid_restart() -> str:
        raise KeyError("worker")

    monitor = KernelResetMonitor(KmsgReader(str(path)), clock, 1.0, mid_restart)
    with path.open("a") as f:
        f.write(record(RESET_LINES[11][0]))
    ((trigger, detail),) = monitor.poll()
    assert trigger == "accelerator_reset"
    assert "i915 0000:00:02.0 Resetting rcs0 for" in detail
    assert detail.endswith("; worker placement unknown")
