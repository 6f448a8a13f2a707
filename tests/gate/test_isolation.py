"""The gate is the trusted decider: importing it must load no inference runtime."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("cv2", "onnxruntime", "torch", "supervision", "trackers", "openvino", "tensorflow")


def test_gate_imports_no_inference_runtime() -> None:
    code = (
        "import sys, kontur.gate, kontur.gate.sinks, kontur.gate.core;"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r});"
        "print(','.join(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"kontur.gate pulled in {done.stdout.strip()}"
