"""A simulated accelerator whose execution provider fails, for ``--inject-fault`` (issue 13 §3).

This machine may have no GPU, and a real reset cannot be ordered. The perimeter's demo faults
``accelerator-reset`` and ``driver-unapproved`` therefore place the analytics task on a
simulated ``gpu``: the worker builds the release's CPU runner and wraps it in
:class:`FailingRunner`, which answers like the runner it wraps until its
``reset_after_calls``-th inference and then raises what ONNX Runtime raises when the CUDA
device is lost. Everything after that is the product's own path: the
:class:`~kontur.worker.runners.ReleaseDetector` of an accelerator turns the failure into an
:class:`~kontur.worker.errors.AcceleratorFault`, the worker exits with
:data:`~kontur.worker.errors.ACCELERATOR_FAULT_EXIT`, the supervisor raises
``accelerator_reset`` and restarts it on the CPU.

On a real GPU the same failure comes from the EP itself (``CUDA failure 999``,
``cudaErrorLaunchFailure``, ``CUDNN_STATUS_EXECUTION_FAILED``), while the kernel logs the
reset: ``NVRM: Xid`` lines for NVIDIA (e.g. 79: the GPU has fallen off the bus, 48 and 94/95:
ECC errors), ``GPU reset begin!`` for amdgpu, ``Device recovery`` for Intel's ``intel_vpu``.
The ADR on the degradation triggers says how a site reads them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from kontur.worker.runners import Runner

__all__ = ["SIMULATED_RESET", "FailingRunner"]

#: What the simulated EP raises: ONNX Runtime's wording for a lost CUDA device.
SIMULATED_RESET = (
    "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : CUDA failure 999: unknown error "
    "(simulated accelerator reset)"
)


class FailingRunner:
    """Wraps a runner; from its ``reset_after_calls``-th call on, every call fails."""

    def __init__(self, inner: Runner, reset_after_calls: int | None) -> None:
        if reset_after_calls is not None and reset_after_calls < 1:
            raise ValueError(f"reset_after_calls: expected >= 1 or None, got {reset_after_calls}")
        self.inner = inner
        self.engine = f"{inner.engine} (simulated accelerator)"
        self.output_shape = inner.output_shape
        self.reset_after_calls = reset_after_calls
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, blob: np.ndarray) -> np.ndarray:
        """The wrapped runner's output, until the simulated device is lost."""
        with self._lock:  # the analysis threads share the runner
            self.calls += 1
            failed = self.reset_after_calls is not None and self.calls >= self.reset_after_calls
        if failed:
            raise RuntimeError(SIMULATED_RESET)
        return self.inner(blob)
