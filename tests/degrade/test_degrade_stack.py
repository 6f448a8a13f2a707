"""``driver_unapproved`` at run time (issue 13 §3): the supervisor's own probe, the allow-list,
the :class:`StackMonitor` and the machine, on a host whose driver tree stands in for
``/sys/module`` (this machine loads no GPU driver) and whose runtime metadata is real.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kontur.clock import ManualClock
from kontur.config import DegradationConfig
from kontur.degrade import DegradationMachine, MonitorSetupError, StackMonitor, State, step
from kontur.placement.allowlist import Allowlist
from kontur.placement.probe import HostProbe
from kontur.runtime.stackwatch import StackWatch

INTERVAL = 5.0


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    (tmp_path / "nvidia").mkdir()
    (tmp_path / "nvidia" / "version").write_text("550.54.15\n")
    return tmp_path


def watch(sysfs: Path, allow: Allowlist) -> StackWatch:
    pytest.importorskip("onnxruntime")
    return StackWatch(allow, "onnx", HostProbe(["onnxruntime"], ["nvidia"], sys_module=sysfs))


def test_a_driver_updated_under_the_running_site_takes_it_to_safe_until_rolled_back(
    sysfs: Path,
) -> None:
    clock = ManualClock()
    machine = DegradationMachine(DegradationConfig(recovery_seconds=3.0), clock)
    stack = watch(sysfs, Allowlist(drivers={"nvidia": ("550.54.*",)}))
    monitor = StackMonitor(lambda: stack.problem("gpu"), clock, INTERVAL)
    assert step(machine, [monitor]) == [] and machine.state is State.NORMAL

    (sysfs / "nvidia" / "version").write_text("555.42.02\n")
    clock.advance(1.0)
    assert step(machine, [monitor]) == []  # not due yet: one read per interval
    clock.advance(INTERVAL)
    [moved] = step(machine, [monitor])
    assert (moved.to_state, moved.trigger) == (State.SAFE, "driver_unapproved")
    assert moved.detail == "driver nvidia of gpu: expected a version in ['550.54.*'], got 555.42.02"

    clock.advance(60.0)  # time alone repairs nothing
    step(machine, [monitor])
    assert machine.state is State.SAFE

    (sysfs / "nvidia" / "version").write_text("550.54.15\n")  # rolled back
    clock.advance(INTERVAL)
    step(machine, [monitor])
    clock.advance(3.0)
    assert [t.to_state for t in step(machine, [monitor])] == [State.DEGRADED]
    clock.advance(3.0)
    assert [t.to_state for t in step(machine, [monitor])] == [State.NORMAL]


def test_a_platform_once_run_on_stays_judged_after_the_task_moved(sysfs: Path) -> None:
    """After the move to the CPU the GPU's unapproved driver still holds SAFE: the analytics
    ran on it this run, and only its approval (or rollback) is the recovery criterion."""
    stack = watch(sysfs, Allowlist(drivers={"nvidia": ("550.54.*",)}))
    assert stack.problem("gpu") is None
    (sysfs / "nvidia" / "version").write_text("555.42.02\n")
    assert stack.problem("cpu") == (
        "driver nvidia of gpu: expected a version in ['550.54.*'], got 555.42.02"
    )
    assert stack.used == {"cpu", "gpu"}


def test_an_accelerator_never_approved_is_never_offered(sysfs: Path) -> None:
    stack = watch(sysfs, Allowlist())
    assert stack.approved(["cpu", "gpu"]) == ["cpu"]
    assert stack.approved(None) == ["cpu"]
    event = stack.start_event()
    assert event["event"] == "stack_checked" and event["runtime"] == "onnx"
    gpu = next(v for v in event["verdicts"] if v["platform"] == "gpu")
    assert gpu["approved"] is False
    assert gpu["reasons"] == [
        "driver nvidia of gpu: expected a version listed in placement.allowlist.drivers, "
        "got 550.54.15 (no entry for nvidia)"
    ]
    approved = watch(sysfs, Allowlist(drivers={"nvidia": ("550.54.15",)}))
    assert approved.approved(["cpu", "gpu"]) == ["cpu", "gpu"]


def test_an_unapproved_cpu_stack_is_kept_and_degrades(sysfs: Path) -> None:
    """The CPU is the fail-safe: offered even when its runtime is not approved (recording must
    go on), and its first check raises the trigger."""
    clock = ManualClock()
    machine = DegradationMachine(DegradationConfig(), clock)
    stack = watch(sysfs, Allowlist({"onnxruntime": ("0.1.*",)}))
    assert stack.approved(["cpu"]) == ["cpu"]
    [moved] = step(machine, [StackMonitor(lambda: stack.problem("cpu"), clock, INTERVAL)])
    assert moved.to_state is State.SAFE
    assert "runtime onnxruntime: expected a version in ['0.1.*']" in moved.detail


def test_a_monitor_needs_a_positive_interval() -> None:
    with pytest.raises(MonitorSetupError, match="expected interval_s > 0, got 0"):
        StackMonitor(lambda: None, ManualClock(), 0)
