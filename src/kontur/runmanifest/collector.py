"""The collector: reads every component version of this node into a :class:`RunManifest`.

It runs in the supervisor, at start, and imports no inference runtime (the supervisor's
``/proc/self/maps`` must show none, ADR 0014): every version comes from where the stack
probe of ADR 0034 reads it, and the readers are injected so the parsing is tested on
recorded ``/proc`` files:

- Python distributions: installed metadata (``importlib.metadata``, read, never imported),
  the providers of a module found as :func:`kontur.placement.probe.module_distributions`;
- ONNX Runtime's execution providers: the CPU EP (built into the runtime) and one per
  provider library its installed distributions ship (``libonnxruntime_providers_cuda.so`` →
  ``CUDAExecutionProvider``), read from their file lists (``RECORD``);
- FFmpeg: as PyAV reports it (``av.library_versions``, ``av.ffmpeg_version_info``; PyAV is
  already loaded in the supervisor, which probes RTSP sources, and reading them decodes
  nothing);
- the kernel: ``uname``; the CPU: the first processor's ``model name`` and ``microcode`` in
  ``/proc/cpuinfo``; accelerator drivers: :func:`kontur.placement.probe.driver_version` for
  the modules of :data:`~kontur.placement.allowlist.DRIVER_MODULES`, and NVIDIA's own
  ``/proc/driver/nvidia/version``.

The sandbox, release and config parts are facts the supervisor already owns (its
measurement of the worker, the verified release, the archived config) and are passed in.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kontur.placement.allowlist import DRIVER_MODULES
from kontur.placement.probe import driver_version, module_distributions
from kontur.runmanifest.model import (
    Ffmpeg,
    Host,
    Inference,
    Release,
    RunManifest,
    Sandbox,
)

__all__ = [
    "CPUINFO",
    "NVIDIA_VERSION",
    "Readers",
    "collect",
    "execution_providers",
    "parse_cpuinfo",
    "parse_nvidia_version",
    "sandbox_from_report",
]

CPUINFO = Path("/proc/cpuinfo")
NVIDIA_VERSION = Path("/proc/driver/nvidia/version")
#: The import names whose providing distributions the manifest lists.
RUNTIME_IMPORTS = ("onnxruntime", "openvino", "cv2")
#: Other libraries the manifest names, by distribution.
LIBRARIES = ("numpy", "model-signing")
_MAX_FACT = 200
#: Measured limits whose value differs between starts of the same isolation.
VOLATILE_LIMITS = frozenset({"max_tasks"})
_PROVIDER_LIB = re.compile(r"(?:^|/)libonnxruntime_providers_([a-z0-9]+)\.(?:so|dll|dylib)$")
#: ``libonnxruntime_providers_<name>`` → the EP's name as ONNX Runtime spells it.
_EP_NAMES = {
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "dnnl": "DnnlExecutionProvider",
    "vitisai": "VitisAIExecutionProvider",
    "qnn": "QNNExecutionProvider",
}


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text("utf-8", errors="replace")
    except OSError:
        return None


def _dist_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _dist_files(dist: str) -> list[str]:
    try:
        return [str(f) for f in metadata.files(dist) or ()]
    except metadata.PackageNotFoundError:
        return []


def _pyav() -> tuple[str | None, str | None, dict[str, str]]:
    """``(PyAV, FFmpeg, {library: version})`` as PyAV reports them."""
    try:
        import av
    except ImportError:
        return None, None, {}
    libs = {name: ".".join(str(p) for p in v) for name, v in av.library_versions.items()}
    return str(av.__version__), getattr(av, "ffmpeg_version_info", None), libs


@dataclass(frozen=True)
class Readers:
    """Where the collector reads each fact (the host by default; tests inject their own)."""

    read_text: Callable[[Path], str | None] = _read_text
    dist_version: Callable[[str], str | None] = _dist_version
    dist_files: Callable[[str], list[str]] = _dist_files
    providers: Callable[[Iterable[str]], dict[str, tuple[str, ...]]] = module_distributions
    driver: Callable[[str], str | None] = driver_version
    uname: Callable[[], tuple[str, str, str]] = field(
        default=lambda: (os.uname().release, os.uname().version, os.uname().machine)
    )
    python: Callable[[], tuple[str, str]] = field(
        default=lambda: (platform.python_version(), platform.python_implementation())
    )
    pyav: Callable[[], tuple[str | None, str | None, dict[str, str]]] = _pyav


def _fact(text: str) -> str:
    return " ".join(text.split())[:_MAX_FACT]


def parse_cpuinfo(text: str | None) -> tuple[str | None, str | None]:
    """The first processor's ``(model name, microcode)``; None for what it does not show."""
    found: dict[str, str] = {}
    for line in (text or "").splitlines():
        if not line.strip() and found:
            break  # the end of the first processor's block
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("model name", "microcode") and value.strip():
            found.setdefault(key.strip(), _fact(value))
    return found.get("model name"), found.get("microcode")


def parse_nvidia_version(text: str | None) -> str | None:
    """The ``NVRM version: …`` line of ``/proc/driver/nvidia/version`` (its first line)."""
    for line in (text or "").splitlines():
        if line.strip():
            return _fact(line)
    return None


def execution_providers(files_by_dist: Mapping[str, Iterable[str]]) -> tuple[str, ...]:
    """The CPU EP (built in) and one per provider library the distributions ship, sorted."""
    eps = {"CPUExecutionProvider"} if files_by_dist else set()
    for files in files_by_dist.values():
        for f in files:
            m = _PROVIDER_LIB.search(f)
            if m is not None and m.group(1) != "shared":
                eps.add(_EP_NAMES.get(m.group(1), f"{m.group(1)} (provider library)"))
    return tuple(sorted(eps))


def sandbox_from_report(report: Mapping[str, Any]) -> Sandbox:
    """The manifest's sandbox part from :func:`kontur.worker.sandbox.measure`'s report.

    ``scratch_dir`` (a fresh path each run), the notes and the ``max_tasks`` limit (the
    uid's tasks at the worker's start plus the policy's: it varies from start to start; an
    unlimited one is in ``missing``) are left out: two starts with the same isolation must
    have the same digest.
    """
    limits = report.get("limits")
    if isinstance(limits, dict):
        limits = {k: v for k, v in limits.items() if k not in VOLATILE_LIMITS}
    return Sandbox(
        level=str(report.get("level", "degraded")),
        network=str(report.get("network", "unmeasured")),
        filesystem=str(report.get("filesystem", "unmeasured")),
        syscalls=str(report.get("syscalls", "unmeasured")),
        user=str(report.get("user", "unmeasured")),
        scratch=str(report.get("scratch", "unmeasured")),
        limits=dict(limits) if isinstance(limits, dict) else {},
        missing=tuple(str(m) for m in report.get("missing", ())),
    )


def _inference(readers: Readers) -> tuple[Inference, dict[str, str | None]]:
    providers = readers.providers(RUNTIME_IMPORTS)

    def versions(module: str) -> dict[str, str]:
        found = {d: readers.dist_version(d) for d in providers.get(module, ())}
        return {d: v for d, v in sorted(found.items()) if v is not None}

    ort = versions("onnxruntime")
    eps = execution_providers({d: readers.dist_files(d) for d in ort})
    inference = Inference(
        onnxruntime=ort, execution_providers=eps, openvino=versions("openvino"),
        opencv=versions("cv2"),
    )  # fmt: skip
    return inference, {lib: readers.dist_version(lib) for lib in LIBRARIES}


def _host(readers: Readers) -> Host:
    release, build, machine = readers.uname()
    model, microcode = parse_cpuinfo(readers.read_text(CPUINFO))
    modules = sorted(set(DRIVER_MODULES.values()))
    drivers = {m: v for m in modules if (v := readers.driver(m)) is not None}
    return Host(
        kernel=release, kernel_build=build, machine=machine, cpu_model=model,
        microcode=microcode, drivers=drivers,
        nvidia=parse_nvidia_version(readers.read_text(NVIDIA_VERSION)),
    )  # fmt: skip


def collect(
    *,
    sandbox: Sandbox,
    release: Release,
    config_sha256: str,
    readers: Readers | None = None,
) -> RunManifest:
    """Read this node's versions; ``sandbox``, ``release`` and the config digest are given."""
    readers = readers or Readers()
    inference, libraries = _inference(readers)
    pyav, ffmpeg, libs = readers.pyav()
    py_version, py_impl = readers.python()
    return RunManifest(
        kontur=readers.dist_version("kontur") or "unknown",
        python=py_version,
        python_implementation=py_impl,
        ffmpeg=Ffmpeg(pyav=pyav, ffmpeg=ffmpeg, libraries=dict(sorted(libs.items()))),
        inference=inference,
        libraries=libraries,
        host=_host(readers),
        sandbox=sandbox,
        release=release,
        config_sha256=config_sha256,
    )
