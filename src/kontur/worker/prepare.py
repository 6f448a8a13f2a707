"""Probe the sources and bench the detector inside the worker's sandbox (issue 8, part 6).

The supervisor never parses or decodes a source's bytes and never loads an inference runtime.
Before a run it starts this module once, sandboxed exactly like the worker, with the release's
verified bytes on stdin: ``python -m kontur.worker.prepare SPEC.json``. Order of steps:

1. read the verified release from stdin (re-checked part by part, as the worker does);
2. enter the sandbox. The local source files were opened read-only by the supervisor and are
   inherited as descriptors, so the sandbox grants no path at all beyond its scratch dir;
3. probe every source (:func:`kontur.ingest.source.probe`): codec, size, frame rate, and
   whether the demo camera may sign it (an H.264/H.265 file with no OMS SEI, ADR 0046);
4. bench the platforms the release allows on the first camera's first frames: decoded from
   its file, or, for a strict camera (verify before decode) or a live one (the sandbox has
   no network), synthetic frames of its size, so that not one byte of unverified video is
   decoded for a bench;
5. write one JSON line on the result descriptor: ``{"probes": ..., "measurements": ...}``,
   or ``{"error": "..."}`` (one line, what was expected and what was found).

Everything it writes is the claim of an untrusted process. The supervisor parses it strictly
(:class:`PrepareResult`); a lying bench can only choose among the platforms this machine has
and the signed release allows, and the residual risk R_j(p) comes from the trusted catalogue.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kontur.errors import KonturError
from kontur.runtime.spec import exit_now, read_spec

__all__ = ["PrepareResult", "ProbeClaim", "main"]

#: Imported inside the sandbox before the uid drop (the worker's list plus the demuxer).
PREPARE_PRELOAD = (
    "av",
    "kontur.ingest.democam",
    "kontur.ingest.source",
    "kontur.worker.bench",
    "numpy",
)

#: All a bare model's shape probe imports (ADR 0059): not the detectors' libraries, whose
#: import (supervision, scipy, trackers) is most of a sandboxed process's start.
SHAPE_PRELOAD = ("onnxruntime",)

#: How a strict camera's bench says what it ran on.
SYNTHETIC = "synthetic frames: strict or live camera, no unverified video decoded"


class ProbeClaim(BaseModel):
    """What the sandboxed probe says of one source."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    codec: str = Field(max_length=32)
    width: int = Field(gt=0, le=16384)
    height: int = Field(gt=0, le=16384)
    fps: float = Field(gt=0, le=1000)
    frames_declared: int = Field(ge=0)
    fps_from: str = Field(max_length=32)
    notes: tuple[str, ...] = Field(default=(), max_length=8)
    signable: bool = False
    """The demo camera may sign it: H.264/H.265 with no OMS SEI in its first GOPs (ADR 0046)."""


class PrepareResult(BaseModel):
    """The one line the prepare process writes (see the module)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    output_shape: tuple[int | str | None, ...] | None = Field(default=None, max_length=8)
    """``mode: output_shape``: a bare ONNX model's first output shape."""
    probes: dict[str, ProbeClaim] = Field(default_factory=dict)
    measurements: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    error: str | None = Field(default=None, max_length=2000)
    exit_code: int = Field(default=2, ge=1, le=2)
    """1: a refusal (no platform the release allows), 2: bad input (a source, a model)."""


def _probe(src: dict[str, Any]) -> tuple[Any, Any]:
    from kontur.ingest.source import probe

    f = os.fdopen(src["fd"], "rb", closefd=False)
    f.seek(0)
    return probe(src["source"], file=f), f


def _claim(src: dict[str, Any], pr: Any, f: Any) -> ProbeClaim:
    from kontur.ingest.democam import demo_signable

    i = pr.info
    f.seek(0)
    return ProbeClaim(
        codec=i.codec, width=i.width, height=i.height, fps=float(i.fps),
        frames_declared=pr.frames_declared, fps_from=pr.fps_from, notes=tuple(pr.notes),
        signable=demo_signable(src["source"], i.codec, file=f),
    )  # fmt: skip


def _frames(spec: dict[str, Any], opened: dict[str, tuple[Any, Any]]) -> tuple[list[Any], bool]:
    """The bench's frames, and whether they are synthetic (a strict or live camera)."""
    import numpy as np

    from kontur.worker.bench import bench_frames

    bench, n = spec["prepare"]["bench"], int(spec["prepare"]["frames"])
    src = next(
        (x for x in spec["prepare"]["sources"] if x["camera_id"] == bench["camera_id"]), None
    )
    if src is not None and not src["strict"]:
        pr, f = opened[src["camera_id"]]
        f.seek(0)
        return bench_frames(src["source"], n, file=f), False
    if src is not None:
        pr, _ = opened[src["camera_id"]]
        width, height = pr.info.width, pr.info.height
    else:
        width, height = bench["size"]
    rng = np.random.default_rng(0)
    shape = (int(height), int(width), 3)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)], True


def _bench(spec: dict[str, Any], release: Any, frames: list[Any], synthetic: bool) -> Any:
    from kontur.worker.bench import measure_platforms
    from kontur.worker.process import build_detector

    def make(platform: str) -> Any:
        return build_detector(dict(spec, platform=platform), release).infer

    out = measure_platforms(_platforms(spec), make, frames)
    if synthetic:
        out = {
            p: m and dataclasses.replace(m, accuracy_basis=f"{m.accuracy_basis} ({SYNTHETIC})")
            for p, m in out.items()
        }
    return {p: (m.to_json() if m is not None else None) for p, m in out.items()}


def _platforms(spec: dict[str, Any]) -> dict[str, str]:
    """The platforms this machine has that the release allows (the HOG fallback: all)."""
    from kontur.placement.available import available_platforms

    have = available_platforms()
    allowed = spec["prepare"]["allowed"]
    usable = {p: how for p, how in have.items() if allowed is None or p in allowed}
    if not usable:
        raise PrepareError(
            f"release {spec.get('model_id')}: expected one of the platforms {sorted(have)} "
            f"this machine has, got a release for {allowed}"
        )
    return usable


class PrepareError(KonturError):
    """Nothing the release allows can run here (a refusal, as the release store's)."""

    exit_code = 1


def _output_shape(spec: dict[str, Any]) -> PrepareResult:
    """A bare (unsigned) model's first output shape, to guess its format: ONNX Runtime parses
    the model here, in the sandbox, not in the supervisor."""
    import onnxruntime as ort

    with os.fdopen(spec["model_fd"], "rb") as f:
        data = f.read()
    try:
        sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for a bad model
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return PrepareResult(
            error=f"model {spec['model_name']}: expected an ONNX model, got {first}"
        )
    shape = tuple(d if isinstance(d, int | str) else None for d in sess.get_outputs()[0].shape)
    return PrepareResult(output_shape=shape)


def _run(spec: dict[str, Any], release: Any) -> PrepareResult:
    probes: dict[str, ProbeClaim] = {}
    opened: dict[str, tuple[Any, Any]] = {}
    for src in spec["prepare"]["sources"]:
        pr, f = opened[src["camera_id"]] = _probe(src)
        probes[src["camera_id"]] = _claim(src, pr, f)
    measurements = _bench(spec, release, *_frames(spec, opened))
    return PrepareResult(probes=probes, measurements=measurements)


def main() -> int:
    """Entry point: ``python -m kontur.worker.prepare SPEC.json`` (release bytes on stdin)."""
    from kontur.worker.process import _read_release, sandbox_policy
    from kontur.worker.sandbox import enter

    spec = read_spec()
    out = os.fdopen(spec["result_fd"], "w")
    try:
        shape_only = spec.get("mode") == "output_shape"
        release = _read_release(spec) if not shape_only and spec["detector"] != "hog" else None
        if shape_only:
            enter(sandbox_policy(spec, Path(sys.argv[1]), SHAPE_PRELOAD))
        else:
            policy = sandbox_policy(spec, Path(sys.argv[1]))
            enter(dataclasses.replace(policy, preload=(*policy.preload, *PREPARE_PRELOAD)))
        result = _output_shape(spec) if shape_only else _run(spec, release)
    except KonturError as exc:
        code = 1 if exc.exit_code == 1 else 2
        result = PrepareResult(error=" ".join(str(exc).split())[:2000], exit_code=code)
    out.write(json.dumps(result.model_dump(mode="json")) + "\n")
    out.close()
    return 0


if __name__ == "__main__":
    exit_now(main())  # (not the teardown of ONNX Runtime and scipy: ADR 0059)
