"""Which platforms this machine can serve, and through which execution provider (paper, Table 3:
"Сначала стенд CPU; GPU/NPU только при нарушении обязательного SLA" — only platforms that exist
here are benched at all).

Nothing here imports a GPU runtime at module import: ``onnxruntime`` and ``openvino`` are
imported inside :func:`available_platforms`, each guarded, so a machine without them still
gets ``{"cpu": ...}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

__all__ = [
    "CPU_PROVIDER",
    "GPU_PROVIDERS",
    "OPENVINO_PROVIDER",
    "available_platforms",
    "platforms_from",
]

log = logging.getLogger(__name__)

CPU_PROVIDER = "CPUExecutionProvider"
#: Providers that serve "gpu", in order of preference.
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
OPENVINO_PROVIDER = "OpenVINOExecutionProvider"


def platforms_from(
    providers: Sequence[str], npu_devices: Callable[[], Sequence[str]]
) -> dict[str, str]:
    """Map onnxruntime ``providers`` to platforms; ``npu_devices`` lists OpenVINO devices.

    The CPU is always present. OpenVINO serves "npu" only when it lists an ``NPU`` device;
    ``npu_devices`` is called only when the OpenVINO provider is there.
    """
    found = {"cpu": CPU_PROVIDER}
    gpu = next((p for p in GPU_PROVIDERS if p in providers), None)
    if gpu is not None:
        found["gpu"] = gpu
    if OPENVINO_PROVIDER in providers:
        npu = next((d for d in npu_devices() if d.upper().startswith("NPU")), None)
        if npu is not None:
            found["npu"] = f"{OPENVINO_PROVIDER}:{npu}"
    return found


def _openvino_devices() -> list[str]:
    try:
        import openvino
    except ImportError:
        return []
    try:
        core = openvino.Core()
        return [str(d) for d in core.available_devices]
    except (AttributeError, RuntimeError, OSError) as exc:
        log.warning("openvino device discovery failed: %s", exc)
        return []


def _onnxruntime_providers() -> list[str]:
    try:
        import onnxruntime
    except ImportError:
        return []
    return [str(p) for p in onnxruntime.get_available_providers()]


def available_platforms() -> dict[str, str]:
    """Platform → the execution provider (or ``provider:device``) that would serve it here."""
    return platforms_from(_onnxruntime_providers(), _openvino_devices)
