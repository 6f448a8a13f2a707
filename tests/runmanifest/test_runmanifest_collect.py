"""Issue 15 §3: the collector reads every component version, from recorded host files."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tests.runmanifest.conftest import host, manifest, vector

from kontur.runmanifest.collector import (
    execution_providers,
    parse_cpuinfo,
    parse_nvidia_version,
    sandbox_from_report,
)


def test_cpuinfo_gives_the_first_processors_model_and_microcode() -> None:
    model, microcode = parse_cpuinfo(vector("cpuinfo_x86_two_cpus.txt"))
    assert model == "Intel(R) Xeon(R) Processor"
    assert microcode == "0x2b000571"  # not the second processor's 0x2b000999


def test_cpuinfo_without_model_name_or_microcode_gives_none() -> None:
    assert parse_cpuinfo(vector("cpuinfo_arm64_no_model.txt")) == (None, None)
    assert parse_cpuinfo(None) == (None, None)


def test_nvidia_version_is_the_nvrm_line() -> None:
    line = parse_nvidia_version(vector("nvidia_version_550.txt"))
    assert line is not None
    assert line.startswith("NVRM version: NVIDIA UNIX x86_64 Kernel Module 550.54.14")
    assert parse_nvidia_version(None) is None


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, ()),
        ({"onnxruntime": ["onnxruntime/capi/libonnxruntime_providers_shared.so"]},
         ("CPUExecutionProvider",)),
        ({"onnxruntime-gpu": ["onnxruntime/capi/libonnxruntime_providers_shared.so",
                              "onnxruntime/capi/libonnxruntime_providers_cuda.so",
                              "onnxruntime/capi/libonnxruntime_providers_tensorrt.so"]},
         ("CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider")),
        ({"onnxruntime-openvino": ["onnxruntime/capi/libonnxruntime_providers_openvino.so"]},
         ("CPUExecutionProvider", "OpenVINOExecutionProvider")),
    ],
)  # fmt: skip
def test_execution_providers_from_the_distributions_files(
    files: dict[str, list[str]], expected: tuple[str, ...]
) -> None:
    assert execution_providers(files) == expected


def test_a_simulated_gpu_host_is_read_whole() -> None:
    readers = host(
        dists={"kontur": "0.1.0", "onnxruntime-gpu": "1.22.0", "numpy": "2.4.6"},
        files={"onnxruntime-gpu": ["onnxruntime/capi/libonnxruntime_providers_cuda.so"]},
        drivers={"nvidia": "550.54.14"},
        nvidia="nvidia_version_550.txt",
    )
    m = manifest(readers)
    assert m.inference.onnxruntime == {"onnxruntime-gpu": "1.22.0"}
    assert m.inference.execution_providers == ("CPUExecutionProvider", "CUDAExecutionProvider")
    assert m.inference.openvino == {} and m.inference.opencv == {}
    assert m.libraries == {"numpy": "2.4.6", "model-signing": None}
    assert m.host.drivers == {"nvidia": "550.54.14"}
    assert m.host.nvidia is not None and "550.54.14" in m.host.nvidia
    assert (m.host.kernel, m.host.machine) == ("6.8.0-45-generic", "x86_64")
    assert m.ffmpeg.libraries == {"libavcodec": "62.28.102", "libavutil": "60.26.102"}
    assert m.components()["driver:nvidia"] == "550.54.14"


def test_sandbox_drops_what_changes_from_start_to_start() -> None:
    report = {
        "level": "full", "network": "netns+seccomp", "filesystem": "unmeasured",
        "syscalls": "seccomp-bpf", "user": "uid 65534", "scratch": "tmpfs 128 MiB",
        "limits": {"max_tasks": 259, "core_bytes": 0}, "missing": [],
        "scratch_dir": "/tmp/kontur-scratch-x1y2", "notes": ["pid namespace own"],
    }  # fmt: skip
    a = sandbox_from_report(report)
    b = sandbox_from_report({**report, "limits": {"max_tasks": 262, "core_bytes": 0},
                             "scratch_dir": "/tmp/kontur-scratch-q9"})  # fmt: skip
    assert a == b and a.limits == {"core_bytes": 0}


def test_the_host_collector_loads_no_inference_runtime() -> None:
    """The supervisor's maps must show no runtime (ADR 0014): collecting imports none."""
    code = (
        "import sys\n"
        "from kontur.runmanifest import Release, collect, sandbox_from_report\n"
        "m = collect(sandbox=sandbox_from_report({}), config_sha256='0'*64,\n"
        "            release=Release(model_id='x', digest=None, runtime='opencv'))\n"
        "assert m.inference.onnxruntime, 'positive control: onnxruntime is installed here'\n"
        "print(sorted(k for k in ('onnxruntime', 'openvino', 'cv2') if k in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
