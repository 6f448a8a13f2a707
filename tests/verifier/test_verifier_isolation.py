"""The verifier never loads an inference runtime or GPU stack (DESIGN.md §1, block 4).

Its independence from the detector is the point of it: were it to import ONNX Runtime, a
CUDA-backed torch or OpenCV, a flaw in that stack could reach both the doer and its checker.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import kontur.verifier

FORBIDDEN = ("onnxruntime", "cv2", "torch", "openvino", "supervision", "trackers")
#: What the pure core may import, besides the standard library.
ALLOWED_THIRD_PARTY = {"numpy", "pydantic"}
#: kontur.geometry: the zone geometry the gate and the verifier share (pure Python, no I/O).
ALLOWED_KONTUR = {
    "kontur.config",
    "kontur.errors",
    "kontur.geometry",
    "kontur.wire",
    "kontur.verifier",
}
#: The process shell (reads rings and pipes) is not part of the pure core.
SHELL = {"process.py"}


@pytest.mark.parametrize("module", ["kontur.verifier", "kontur.verifier.process"])
def test_importing_the_verifier_loads_no_inference_or_gpu_stack(module: str) -> None:
    probe = (
        "import json, sys\n"
        f"import {module}\n"
        f"print(json.dumps(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == []


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules() -> list[Path]:
    return sorted(Path(kontur.verifier.__file__).parent.rglob("*.py"))


def test_no_verifier_module_names_an_inference_or_gpu_stack() -> None:
    """Catches lazy imports inside functions too, which the subprocess probe cannot see."""
    for path in _modules():
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in FORBIDDEN and not name.startswith("kontur.worker"), (
                f"{path.name} imports {name}"
            )


def test_the_pure_core_imports_only_numpy_pydantic_stdlib_and_kontur_core() -> None:
    for path in _modules():
        if path.name in SHELL:
            continue
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "kontur":
                assert any(name == k or name.startswith(k + ".") for k in ALLOWED_KONTUR), (
                    f"{path.name} imports {name}"
                )
            else:
                assert top in ALLOWED_THIRD_PARTY or top in sys.stdlib_module_names, (
                    f"{path.name} imports {name}"
                )
