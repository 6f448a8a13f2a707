"""OpenVINO backend: an IR (``.xml`` + ``.bin``) or an ONNX model, read from verified bytes.

The model is read from memory, never from a path that could be swapped after
verification: ``Core().read_model(model=xml_bytes, weights=Tensor(bin_bytes))`` for IR,
``Core().read_model(model=onnx_bytes)`` for ONNX (checked with openvino 2026.x). The CPU
plugin gets ``INFERENCE_NUM_THREADS`` = the worker's intra-op thread count, one stream and
the latency hint. Platforms map to devices ``cpu → CPU``, ``gpu → GPU``, ``npu → NPU``; a
device this machine lacks is a :class:`PlatformUnavailable`.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from kontur.worker.errors import ModelFormatError
from kontur.worker.runners.errors import PlatformUnavailable
from kontur.worker.runners.preprocess import check_input

__all__ = ["DEVICES", "OpenVinoRunner", "compile_config"]

#: The OpenVINO device that *is* each platform.
DEVICES: dict[str, str] = {"cpu": "CPU", "gpu": "GPU", "npu": "NPU"}


def _device(core: Any, platform: str) -> str:
    if platform not in DEVICES:
        raise PlatformUnavailable(
            f"OpenVINO: expected a platform among {sorted(DEVICES)}, got {platform!r}"
        )
    device, available = DEVICES[platform], list(core.available_devices)
    if not any(d == device or d.startswith(device + ".") for d in available):
        raise PlatformUnavailable(
            f"OpenVINO: platform {platform!r} expected device {device}, got only {available}"
        )
    return device


def compile_config(device: str, intra_op_threads: int) -> dict[str, Any]:
    """Compile properties: explicit threads on the CPU, one stream, latency hint."""
    if intra_op_threads < 1:
        raise ValueError(f"intra_op_threads: expected >= 1, got {intra_op_threads}")
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if device == "CPU":
        config |= {"INFERENCE_NUM_THREADS": intra_op_threads, "NUM_STREAMS": 1}
    return config


def _dims(partial_shape: Any) -> tuple[int | None, ...]:
    return tuple(d.get_length() if d.is_static else None for d in partial_shape)


def _read(core: Any, model_bytes: bytes, weights: bytes | None, label: str) -> Any:
    import openvino as ov

    try:
        if weights is None:
            return core.read_model(model=model_bytes)
        tensor = ov.Tensor(np.frombuffer(weights, dtype=np.uint8))
        return core.read_model(model=model_bytes, weights=tensor)
    except Exception as exc:  # OpenVINO reports every parse failure as RuntimeError
        kind = "an ONNX model" if weights is None else "an OpenVINO IR (xml + bin)"
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise ModelFormatError(
            f"{label}: expected {kind}, got bytes OpenVINO refuses ({type(exc).__name__}: {first})"
        ) from None


class OpenVinoRunner:
    """Runs an OpenVINO IR or ONNX model: ``runner(blob) -> first output``."""

    engine = "openvino"

    def __init__(
        self,
        model_bytes: bytes,
        weights: bytes | None = None,
        *,
        input_hw: tuple[int, int],
        platform: str = "cpu",
        intra_op_threads: int = 1,
        label: str = "model",
    ) -> None:
        import openvino as ov

        core = ov.Core()
        device = _device(core, platform)
        model = _read(core, model_bytes, weights, label)
        if len(model.inputs) != 1 or model.inputs[0].get_element_type() != ov.Type.f32:
            got = [(str(i.get_any_name()), str(i.get_element_type())) for i in model.inputs]
            raise ModelFormatError(f"{label}: expected one float32 input, got {got}")
        check_input(_dims(model.inputs[0].get_partial_shape()), input_hw, label)
        #: Static output shape; ``None`` for dynamic dimensions.
        self.output_shape = _dims(model.outputs[0].get_partial_shape())
        self.device = device
        self.compiled = core.compile_model(model, device, compile_config(device, intra_op_threads))
        #: One infer request per calling thread (a request is not safe to share).
        self._requests = threading.local()

    def __call__(self, blob: np.ndarray) -> np.ndarray:
        """Run one input tensor; returns (a copy of) the first output."""
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self.compiled.create_infer_request()
        request.infer({0: blob})
        return np.array(request.get_output_tensor(0).data, copy=True)
