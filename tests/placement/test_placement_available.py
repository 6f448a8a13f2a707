"""Platform discovery without importing a GPU runtime eagerly."""

from __future__ import annotations

import subprocess
import sys

from kontur.placement import PLATFORMS, available_platforms
from kontur.placement.available import platforms_from


def test_cpu_always_present_here() -> None:
    found = available_platforms()
    assert found["cpu"] == "CPUExecutionProvider"
    assert set(found) <= set(PLATFORMS)


def test_cpu_only_providers() -> None:
    assert platforms_from(["AzureExecutionProvider", "CPUExecutionProvider"], list) == {
        "cpu": "CPUExecutionProvider"
    }


def test_cuda_and_tensorrt_serve_gpu() -> None:
    assert platforms_from(["CUDAExecutionProvider", "CPUExecutionProvider"], list)["gpu"] == (
        "CUDAExecutionProvider"
    )
    assert platforms_from(["TensorrtExecutionProvider"], list)["gpu"] == "TensorrtExecutionProvider"


def test_openvino_serves_npu_only_with_an_npu_device() -> None:
    providers = ["OpenVINOExecutionProvider", "CPUExecutionProvider"]
    assert "npu" not in platforms_from(providers, lambda: ["CPU", "GPU.0"])
    assert (
        platforms_from(providers, lambda: ["CPU", "NPU"])["npu"] == "OpenVINOExecutionProvider:NPU"
    )


def test_openvino_devices_not_queried_without_the_provider() -> None:
    def must_not_run() -> list[str]:
        raise AssertionError("queried OpenVINO devices without its provider")

    assert "npu" not in platforms_from(["CPUExecutionProvider"], must_not_run)


def test_importing_placement_loads_no_gpu_runtime() -> None:
    code = (
        "import sys, kontur.placement; "
        "bad = [m for m in ('onnxruntime', 'openvino', 'cv2', 'torch') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
