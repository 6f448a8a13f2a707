"""A failing accelerator (issue 13 §3): the release detector of an accelerator turns its EP's
failure into an :class:`AcceleratorFault`; the worker exits with the status the supervisor
reads as a reset. The failing EP is simulated (:mod:`kontur.worker.runners.simulated`) around
the real YOLOX-Nano runner on real footage; the classification under test is the product's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from kontur.release.manifest import ReleaseFiles, preset
from kontur.worker.errors import ACCELERATOR_FAULT_EXIT, AcceleratorFault
from kontur.worker.process import build_detector as worker_detector
from kontur.worker.runners import (
    FailingRunner,
    ReleaseDetector,
    build_detector,
    simulated_accelerator,
)
from kontur.worker.runners.simulated import SIMULATED_RESET

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def yolox(shared_file: Callable[[str], Path]) -> ReleaseDetector:
    files = {"model.onnx": shared_file("models/yolox_nano.onnx").read_bytes()}
    manifest = preset(
        "yolox", name="yolox", version=3, files=ReleaseFiles(runtime="onnx", model="model.onnx")
    )
    det = build_detector(manifest, files, model_id="sha256:x", platform="cpu")
    assert isinstance(det, ReleaseDetector)
    return det


@pytest.fixture(scope="module")
def bus(shared_file: Callable[[str], Path]) -> np.ndarray:
    img = cv2.imread(str(shared_file("images/bus.jpg")))
    assert img is not None
    return img


def test_the_simulated_ep_answers_like_the_cpu_until_the_device_is_lost(
    yolox: ReleaseDetector, bus: np.ndarray
) -> None:
    honest = yolox.infer(bus)
    gpu = simulated_accelerator(yolox, "gpu", reset_after_calls=3)
    assert gpu.platform == "gpu" and gpu.name.endswith("(simulated accelerator)")
    for _ in range(2):
        seen = gpu.infer(bus)
        assert np.array_equal(seen.xyxy, honest.xyxy)
        assert np.array_equal(seen.class_id, honest.class_id)
    with pytest.raises(AcceleratorFault) as caught:
        gpu.infer(bus)
    assert str(caught.value) == f"{gpu.name} on gpu: expected an output, got {SIMULATED_RESET}"
    assert isinstance(caught.value.__cause__, RuntimeError)
    with pytest.raises(AcceleratorFault):  # a lost device stays lost
        gpu.infer(bus)


def test_on_the_cpu_a_runner_error_stays_what_it_was(
    yolox: ReleaseDetector, bus: np.ndarray
) -> None:
    cpu = ReleaseDetector(
        yolox.manifest, FailingRunner(yolox.runner, 1), model_id=yolox.model_id, platform="cpu"
    )
    with pytest.raises(RuntimeError, match="simulated accelerator reset") as caught:
        cpu.infer(bus)
    assert not isinstance(caught.value, AcceleratorFault)


def test_the_worker_builds_the_simulation_only_off_the_cpu(
    shared_file: Callable[[str], Path],
) -> None:
    """The spec entry is a demo fault's; a worker restarted on the CPU ignores it."""
    from kontur.release.manifest import ReleaseManifest

    files = {"model.onnx": shared_file("models/yolox_nano.onnx").read_bytes()}
    manifest = preset(
        "yolox", name="yolox", version=3, files=ReleaseFiles(runtime="onnx", model="model.onnx"),
        platforms=("cpu",),
    )  # fmt: skip
    raw = manifest.to_json()
    assert ReleaseManifest.from_json(raw) == manifest
    spec = {
        "detector": "onnx",
        "model_id": "sha256:x",
        "worker": {"score_threshold": 0.3, "nms_threshold": 0.45, "intra_op_threads": 1},
        "simulated_accelerator": {"reset_after_calls": 2},
    }
    on_gpu = worker_detector(dict(spec, platform="gpu"), (raw, files))
    assert isinstance(on_gpu, ReleaseDetector) and on_gpu.platform == "gpu"
    assert isinstance(on_gpu.runner, FailingRunner)
    on_cpu = worker_detector(dict(spec, platform="cpu"), (raw, files))
    assert isinstance(on_cpu, ReleaseDetector) and on_cpu.platform == "cpu"
    assert not isinstance(on_cpu.runner, FailingRunner)


def test_the_exit_status_is_not_one_python_uses() -> None:
    assert ACCELERATOR_FAULT_EXIT not in (0, 1, 2) and 0 < ACCELERATOR_FAULT_EXIT < 126
    with pytest.raises(ValueError, match="reset_after_calls: expected >= 1 or None, got 0"):
        FailingRunner(lambda blob: blob, 0)  # type: ignore[arg-type]
