"""Fixtures for the run manifest: injected readers over recorded ``/proc`` files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from kontur.runmanifest import Readers, Release, RunManifest, Sandbox, collect
from kontur.runmanifest.collector import CPUINFO, NVIDIA_VERSION

VECTORS = Path(__file__).parent / "vectors"

SANDBOX = Sandbox(
    level="full", network="netns+seccomp", filesystem="unmeasured: landlock",
    syscalls="seccomp-bpf (1 filter(s))", user="uid 65534 gid 65534", scratch="tmpfs 128 MiB",
    limits={"core_bytes": 0, "memory_bytes": 4294967296, "no_new_privs": True}, missing=(),
)  # fmt: skip
RELEASE = Release(model_id="yolox-nano@3", digest="sha256:" + "ab" * 32, runtime="onnx")
CONFIG = "cd" * 32


def vector(name: str) -> str:
    """A recorded file from ``vectors/``."""
    return (VECTORS / name).read_text()


def host(
    *,
    dists: dict[str, str] | None = None,
    files: dict[str, list[str]] | None = None,
    drivers: dict[str, str] | None = None,
    cpuinfo: str = "cpuinfo_x86_two_cpus.txt",
    nvidia: str | None = None,
) -> Readers:
    """Readers of a simulated host: installed distributions, /proc files, loaded drivers."""
    installed = {
        "kontur": "0.1.0", "onnxruntime": "1.32.0", "openvino": "2026.4.1",
        "opencv-python-headless": "4.14.0.94", "numpy": "2.4.6", "model-signing": "1.1.1",
    } if dists is None else dists  # fmt: skip
    provides = {"onnxruntime": "onnxruntime", "openvino": "openvino", "cv2": "opencv-python"}
    procfs = {CPUINFO: vector(cpuinfo)}
    if nvidia is not None:
        procfs[NVIDIA_VERSION] = vector(nvidia)

    def providers(modules: Iterable[str]) -> dict[str, tuple[str, ...]]:
        return {
            m: tuple(sorted(d for d in installed if d.startswith(provides.get(m, m))))
            for m in modules
        }

    return Readers(
        read_text=procfs.get,
        dist_version=installed.get,
        dist_files=lambda d: (files or {}).get(d, []),
        providers=providers,
        driver=(drivers or {}).get,
        uname=lambda: ("6.8.0-45-generic", "#45-Ubuntu SMP PREEMPT_DYNAMIC", "x86_64"),
        python=lambda: ("3.11.7", "CPython"),
        pyav=lambda: ("18.1.0", "8.1.2", {"libavcodec": "62.28.102", "libavutil": "60.26.102"}),
    )


def manifest(readers: Readers | None = None, **kw: object) -> RunManifest:
    """A manifest collected from ``readers`` (the default simulated host)."""
    args: dict[str, object] = {"sandbox": SANDBOX, "release": RELEASE, "config_sha256": CONFIG}
    args.update(kw)
    return collect(readers=readers or host(), **args)  # type: ignore[arg-type]


@pytest.fixture
def base() -> RunManifest:
    """The default simulated host's manifest."""
    return manifest()
