"""ONNX Runtime backend: one session built from the verified model *bytes*.

Threads are set explicitly (``intra_op_num_threads`` as asked, ``inter_op_num_threads = 1``,
sequential execution) so that a worker never takes every core by default. The execution
provider follows the platform the dispatcher chose:

- ``cpu`` → ``CPUExecutionProvider``;
- ``gpu`` → ``CUDAExecutionProvider`` (CPU kept only for nodes CUDA cannot run);
- ``npu`` → ``OpenVINOExecutionProvider`` (likewise).

A provider that is not installed, or that ONNX Runtime silently dropped at session creation,
is a :class:`PlatformUnavailable`, never a quiet fall-back to the CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kontur.worker.errors import ModelFormatError
from kontur.worker.runners.errors import PlatformUnavailable
from kontur.worker.runners.preprocess import check_input

__all__ = ["PROVIDERS", "OnnxRunner", "providers_for", "session_options"]

#: The execution provider that *is* each platform.
PROVIDERS: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "gpu": "CUDAExecutionProvider",
    "npu": "OpenVINOExecutionProvider",
}


def providers_for(platform: str) -> list[str]:
    """The provider list for ``platform``, or :class:`PlatformUnavailable`."""
    import onnxruntime as ort

    if platform not in PROVIDERS:
        raise PlatformUnavailable(
            f"ONNX Runtime: expected a platform among {sorted(PROVIDERS)}, got {platform!r}"
        )
    wanted, available = PROVIDERS[platform], ort.get_available_providers()
    if wanted not in available:
        raise PlatformUnavailable(
            f"ONNX Runtime: platform {platform!r} expected {wanted}, got only {available}"
        )
    return [wanted] if platform == "cpu" else [wanted, PROVIDERS["cpu"]]


def session_options(intra_op_threads: int) -> Any:
    """Session options with every threading knob set explicitly."""
    import onnxruntime as ort

    if intra_op_threads < 1:
        raise ValueError(f"intra_op_threads: expected >= 1, got {intra_op_threads}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return opts


def _dims(shape: list[Any]) -> tuple[int | None, ...]:
    """ORT shapes mix ints with symbolic names; symbolic dims become ``None``."""
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)


class OnnxRunner:
    """Runs an ONNX model: ``runner(blob) -> first output``."""

    engine = "onnxruntime"

    def __init__(
        self,
        model_bytes: bytes,
        *,
        input_hw: tuple[int, int],
        platform: str = "cpu",
        intra_op_threads: int = 1,
        label: str = "model",
    ) -> None:
        import onnxruntime as ort

        providers = providers_for(platform)
        opts = session_options(intra_op_threads)
        try:
            self.session = ort.InferenceSession(model_bytes, opts, providers=providers)
        except Exception as exc:  # ORT raises its own exception zoo for bad bytes
            raise ModelFormatError(
                f"{label}: expected an ONNX model, got bytes ONNX Runtime refuses "
                f"({type(exc).__name__})"
            ) from None
        if self.session.get_providers()[0] != providers[0]:
            raise PlatformUnavailable(
                f"{label}: expected ONNX Runtime to run on {providers[0]}, "
                f"got {self.session.get_providers()}"
            )
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or inputs[0].type != "tensor(float)":
            got = [(i.name, i.type) for i in inputs]
            raise ModelFormatError(f"{label}: expected one float32 input, got {got}")
        check_input(_dims(inputs[0].shape), input_hw, label)
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        #: Static output shape; ``None`` for dimensions the model leaves symbolic.
        self.output_shape = _dims(outputs[0].shape)

    def __call__(self, blob: np.ndarray) -> np.ndarray:
        """Run one input tensor; returns the first output."""
        out = self.session.run([self.output_name], {self.input_name: blob})[0]
        return np.asarray(out)
