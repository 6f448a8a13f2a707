"""The run manifest: every component version one start of kontur ran with (issue 15 §3).

A :class:`RunManifest` is a typed, frozen value. It is built only by the collector
(:mod:`kontur.runmanifest.collector`) or parsed back with :meth:`RunManifest.from_json` /
:meth:`RunManifest.from_payload`, which check every field and, for a stored one, its digest.

Its digest (:meth:`RunManifest.digest`) is the SHA-256 of its canonical JSON (the archive's
canonical form: sorted keys, no spaces, ASCII): two starts on the same node with the same
release and config have the same digest, and every decision record names it.

:func:`changes` compares two manifests component by component (:meth:`RunManifest.components`
flattens one into ``name → version``); ``stack`` marks the components of the inference stack
that the allow-list judges (runtime distributions, execution providers, kernel drivers).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kontur.runmanifest.errors import ManifestInvalid

__all__ = [
    "FORMAT",
    "Change",
    "Ffmpeg",
    "Host",
    "Inference",
    "Release",
    "RunManifest",
    "Sandbox",
    "canonical_bytes",
    "changes",
]

#: The manifest's format number (``format`` in its JSON).
FORMAT: Literal[1] = 1
_HEX64 = r"^[0-9a-f]{64}$"
_Text = str  # a version or fact as its source spells it


def canonical_bytes(obj: Mapping[str, Any]) -> bytes:
    """The canonical JSON bytes of ``obj``, as the archive hashes a payload."""
    text = json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return text.encode("ascii")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class Ffmpeg(_Frozen):
    """FFmpeg as PyAV reports it (``av.library_versions``, ``av.ffmpeg_version_info``)."""

    pyav: _Text | None
    ffmpeg: _Text | None
    libraries: dict[str, _Text]
    """``libavcodec`` → ``62.28.102`` (major.minor.micro)."""


class Inference(_Frozen):
    """The inference runtimes installed (distribution → version; empty: none)."""

    onnxruntime: dict[str, _Text]
    execution_providers: tuple[str, ...]
    """ONNX Runtime's EPs, as its installed distributions' files show them (ADR 0035)."""
    openvino: dict[str, _Text]
    opencv: dict[str, _Text]


class Host(_Frozen):
    """The machine: kernel (``uname``), CPU (``/proc/cpuinfo``), accelerator drivers."""

    kernel: _Text
    kernel_build: _Text
    machine: _Text
    cpu_model: _Text | None
    microcode: _Text | None
    drivers: dict[str, _Text]
    """Loaded accelerator kernel modules → version (``/sys/module``, as the stack probe)."""
    nvidia: _Text | None
    """The first line of ``/proc/driver/nvidia/version`` when NVIDIA's driver is loaded."""


class Sandbox(_Frozen):
    """The worker's isolation in force, measured by the supervisor from ``/proc``."""

    level: _Text
    network: _Text
    filesystem: _Text
    syscalls: _Text
    user: _Text
    scratch: _Text
    limits: dict[str, int | bool | None]
    missing: tuple[str, ...]


class Release(_Frozen):
    """The model release the run verified (or the built-in fallback)."""

    model_id: _Text
    digest: _Text | None = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    """The signed release's digest (``sha256:…``); None for the built-in HOG fallback."""
    runtime: _Text


class RunManifest(_Frozen):
    """Every component version of one start (see the module)."""

    format: Literal[1] = FORMAT
    kontur: _Text
    python: _Text
    python_implementation: _Text
    ffmpeg: Ffmpeg
    inference: Inference
    libraries: dict[str, _Text | None]
    """``numpy``, ``model-signing`` → version (None: not installed)."""
    host: Host
    sandbox: Sandbox
    release: Release
    config_sha256: _Text = Field(pattern=_HEX64)

    def to_json(self) -> dict[str, Any]:
        """The manifest as JSON (what is hashed and archived)."""
        return self.model_dump(mode="json")

    def canonical(self) -> bytes:
        """The exact bytes :meth:`digest` hashes."""
        return canonical_bytes(self.to_json())

    def digest(self) -> str:
        """SHA-256 of :meth:`canonical`, 64 lowercase hex digits."""
        return hashlib.sha256(self.canonical()).hexdigest()

    @classmethod
    def from_json(cls, data: bytes | str) -> RunManifest:
        """Parse a manifest's JSON; ManifestInvalid names the first bad field."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "manifest"
            raise ManifestInvalid(f"run manifest {where}: {err['msg']}") from None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> RunManifest:
        """Parse a stored ``{sha256, manifest}``; the digest must match the content."""
        body, claimed = payload.get("manifest"), payload.get("sha256")
        if not isinstance(body, dict):
            raise ManifestInvalid(f"run manifest: expected an object, got {type(body).__name__}")
        manifest = cls.from_json(canonical_bytes(body))
        if manifest.digest() != claimed:
            raise ManifestInvalid(
                f"run manifest: expected sha256 {claimed!r} to match its content, "
                f"got {manifest.digest()}"
            )
        return manifest

    def components(self) -> dict[str, str | None]:
        """Every component flattened to ``name → version`` (what :func:`changes` compares)."""
        inf, host, sb = self.inference, self.host, self.sandbox
        out: dict[str, str | None] = {
            "kontur": self.kontur,
            "python": f"{self.python_implementation} {self.python}",
            "pyav": self.ffmpeg.pyav,
            "ffmpeg": self.ffmpeg.ffmpeg,
            "onnxruntime:execution_providers": ",".join(inf.execution_providers) or None,
            "kernel": f"{host.kernel} {host.kernel_build} {host.machine}",
            "cpu": host.cpu_model,
            "microcode": host.microcode,
            "gpu:nvidia": host.nvidia,
            "release": f"{self.release.model_id} {self.release.digest or '(built in)'}",
            "config": self.config_sha256,
        }
        out.update({f"ffmpeg:{k}": v for k, v in self.ffmpeg.libraries.items()})
        for dists in (inf.onnxruntime, inf.openvino, inf.opencv):
            out.update({f"runtime:{d}": v for d, v in dists.items()})
        out.update({f"library:{k}": v for k, v in self.libraries.items()})
        out.update({f"driver:{k}": v for k, v in host.drivers.items()})
        for name in ("level", "network", "filesystem", "syscalls", "user", "scratch"):
            out[f"sandbox:{name}"] = getattr(sb, name)
        out["sandbox:limits"] = " ".join(f"{k}={v}" for k, v in sorted(sb.limits.items()))
        out["sandbox:missing"] = "; ".join(sb.missing) or None
        return out


#: The components the allow-list judges: the inference stack (ADR 0034's).
STACK_PREFIXES = ("runtime:", "driver:", "onnxruntime:execution_providers")


@dataclass(frozen=True, slots=True)
class Change:
    """One component whose version differs between two manifests (None: absent)."""

    component: str
    before: str | None
    after: str | None

    @property
    def stack(self) -> bool:
        """True for a component of the inference stack (runtime, EP, driver)."""
        return self.component.startswith(STACK_PREFIXES)

    def to_json(self) -> dict[str, Any]:
        """``{component, before, after, stack}``."""
        return {"component": self.component, "before": self.before, "after": self.after,
                "stack": self.stack}  # fmt: skip

    def describe(self) -> str:
        """``runtime:onnxruntime 1.31.0 → 1.32.0``."""
        return f"{self.component} {self.before or '(none)'} → {self.after or '(none)'}"


def changes(before: RunManifest, after: RunManifest) -> tuple[Change, ...]:
    """Every component that differs, sorted by name."""
    a, b = before.components(), after.components()
    return tuple(
        Change(name, a.get(name), b.get(name))
        for name in sorted(a.keys() | b.keys())
        if a.get(name) != b.get(name)
    )
