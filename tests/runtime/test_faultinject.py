"""Issue 8 §9a: when and where a run's ``--inject-fault`` fires (:mod:`.faultinject`)."""

from __future__ import annotations

import os
from pathlib import Path

from kontur.clock import OffsetClock, SystemClock
from kontur.config import load_config
from kontur.runtime.faultinject import FaultInjector
from kontur.runtime.faults import FAULT_DELAY_S
from kontur.runtime.supervisor import Supervisor


def test_a_fault_is_due_once_its_delay_after_the_worker_was_first_ready(tmp_path: Path) -> None:
    faults = FaultInjector("clock-jump")
    assert faults.delay_s == FAULT_DELAY_S
    assert not faults.due(100.0, None)  # the worker was never ready
    assert not faults.due(100.0 + FAULT_DELAY_S - 0.01, 100.0)
    assert faults.due(100.0 + FAULT_DELAY_S, 100.0)
    clock = OffsetClock(SystemClock())
    before = clock.wall()
    note = faults.fire(model_file=None, clock=clock, supervisor=Supervisor(tmp_path), host=None)
    assert note is None and faults.fired == ["clock-jump"]
    assert clock.wall() - before >= 3600.0  # the clock-jump fired on the run's clock
    assert not faults.due(1000.0, 100.0)  # once only
    assert not FaultInjector(None).due(1000.0, 100.0)  # no fault asked for: never due


def test_a_model_tamper_flips_a_byte_of_the_installed_model_or_says_why_not(
    tmp_path: Path,
) -> None:
    model = tmp_path / "model.onnx"
    original = bytes(range(256)) * 4
    model.write_bytes(original)
    model.chmod(0o444)  # installed read-only: the fault makes it writable to flip the byte
    clock, sup = OffsetClock(SystemClock()), Supervisor(tmp_path / "run")
    assert FaultInjector("model-tamper").fire(model_file=model, clock=clock, supervisor=sup,
                                              host=None) is None  # fmt: skip
    changed = [
        i for i, (a, b) in enumerate(zip(original, model.read_bytes(), strict=True)) if a != b
    ]
    assert changed == [os.path.getsize(model) // 2]
    note = FaultInjector("model-tamper").fire(
        model_file=None, clock=clock, supervisor=sup, host=None
    )
    assert note == "model-tamper: no model file (HOG fallback); nothing to tamper"
    host_note = FaultInjector("driver-unapproved").fire(
        model_file=None, clock=clock, supervisor=sup, host=None
    )
    assert host_note == "driver-unapproved: no simulated host to change; nothing to fire"


def test_worker_and_drift_faults_are_armed_in_the_worker_spec_and_others_are_not() -> None:
    cfg = load_config(None)
    for fault, kind in (("worker-phantom", "worker-phantom"), ("drift-classes", "drift-classes")):
        worker: dict[str, object] = {"detector": "hog"}
        FaultInjector(fault).arm_worker(worker, cfg)
        assert isinstance(worker["fault"], dict) and worker["fault"]["kind"] == kind
    for other in ("clock-jump", "model-tamper", None):
        worker = {"detector": "hog"}
        FaultInjector(other).arm_worker(worker, cfg)
        assert worker == {"detector": "hog"}
