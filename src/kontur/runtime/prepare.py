"""The supervisor's side of the sandboxed probe and bench (:mod:`kontur.worker.prepare`).

The supervisor opens each local source read-only (it checks that the file exists, and reads
not one byte of it), starts the prepare process in the worker's sandbox with the descriptors
and the release's verified bytes, and parses the one line it answers strictly: every figure
in it is an untrusted claim (ADR 0014). An RTSP source is still probed here (its probe needs
the network the sandbox denies); the decoder sandbox of a later issue takes it over.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kontur.config import Config, Profile
from kontur.errors import KonturError
from kontur.ingest.errors import SourceNotFound
from kontur.ingest.source import probe
from kontur.placement.errors import MeasurementError
from kontur.placement.measure import Measurement
from kontur.runtime.supervisor import Block, Supervisor
from kontur.runtime.wiring import sandbox_spec
from kontur.worker.prepare import PrepareResult

__all__ = ["PrepareFailed", "Prepared", "output_shape", "prepare_sources"]

#: How long the sandboxed probe and bench may take.
PREPARE_TIMEOUT_S = 300.0


class PrepareFailed(KonturError):
    """The sandboxed probe or bench failed; its one-line reason says why."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Prepared:
    """Per camera its profile (and notes) and whether the demo camera may sign its clip
    (the sandbox's claim, ADR 0046); the bench's measurements per platform."""

    profiles: dict[str, Profile]
    notes: dict[str, tuple[str, ...]]
    measurements: dict[str, Measurement | None]
    signable: dict[str, bool]


def _is_local(source: str) -> bool:
    return "://" not in source


def _open_sources(sources: dict[str, str]) -> dict[str, int]:
    fds: dict[str, int] = {}
    for cam, source in sources.items():
        if not _is_local(source):
            continue
        if not Path(source).is_file():
            raise SourceNotFound(f"source {source}: expected a readable video file, found nothing")
        fds[cam] = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        os.set_inheritable(fds[cam], True)
    return fds


def _spec(
    config: Config,
    data_dir: Path,
    scratch: Path,
    worker: dict[str, Any],
    sources: dict[str, str],
    fds: dict[str, int],
    strict: dict[str, bool],
    allowed: list[str] | None,
    live: dict[str, Profile],
) -> dict[str, Any]:
    first = next(iter(sources))
    size = [live[first].width, live[first].height] if first in live else None
    return dict(
        worker,
        platform="cpu",
        worker=config.worker.model_dump(),
        sandbox=sandbox_spec(config, data_dir, scratch / "prepare"),
        prepare={
            "sources": [
                {"camera_id": c, "source": sources[c], "fd": fd, "strict": strict[c]}
                for c, fd in fds.items()
            ],
            "frames": config.placement.bench_frames,
            "allowed": allowed,
            "bench": {"camera_id": first, "size": size},
        },
    )


def _read_result(r: int, proc: Any) -> PrepareResult:
    """The first line the process writes (EOF when it exits: nobody else holds the pipe)."""
    deadline = time.monotonic() + PREPARE_TIMEOUT_S
    data = b""
    while b"\n" not in data and len(data) < 1 << 20:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([r], [], [], left)[0]:
            break
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        data += chunk
    line = data.split(b"\n", 1)[0]
    try:
        return PrepareResult.model_validate_json(line)
    except ValidationError as exc:
        if not data:  # it wrote nothing: how it ended is the news
            raise PrepareFailed(
                f"probe and bench (sandboxed): expected one result line, got none; {_ended(proc)}"
            ) from None
        raise PrepareFailed(
            f"probe and bench (sandboxed): expected one result line, got {len(data)} bytes "
            f"that do not parse ({exc.errors()[0]['msg']}); {_ended(proc)}"
        ) from None


def _ended(proc: Any) -> str:
    """How the sandboxed process ended: its exit code, or the signal that killed it (a crash
    in a native library, such as OpenCV's on a frame smaller than its window)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=2.0)
    code = proc.poll()
    if code is None:
        return "it was still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"it was killed by {name} (exit {code})"
    return f"it exited with code {code}"


def _measurements(raw: dict[str, dict[str, Any] | None]) -> dict[str, Measurement | None]:
    out: dict[str, Measurement | None] = {"cpu": None, "gpu": None, "npu": None}
    for platform, m in raw.items():
        if platform not in out:
            raise PrepareFailed(f"bench: expected platforms cpu, gpu, npu, got {platform!r}")
        try:
            measured = None if m is None else Measurement.from_json(m)
        except MeasurementError as exc:
            raise PrepareFailed(f"bench of {platform}: {exc}") from None
        if measured is not None and measured.platform != platform:
            raise PrepareFailed(f"bench: a measurement of another platform filed as {platform}")
        out[platform] = measured
    if out["cpu"] is None:
        raise PrepareFailed("bench: expected a CPU measurement (the reference), got none")
    return out


def _run_sandboxed(
    supervisor: Supervisor,
    spec: dict[str, Any],
    fds: tuple[int, ...],
    stdin: bytes | None,
    scratch: Path,
) -> PrepareResult:
    """Start the prepare process with ``spec`` (its ``result_fd`` is set here) and parse it."""
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        block = Block(
            "prepare",
            "kontur.worker.prepare",
            dict(spec, result_fd=w),
            (w, *fds),
            stdin_data=stdin,
            minimal_env=True,
            log_path=scratch / "prepare.log",
        )
        proc = supervisor.spawn_once(block)
        os.close(w)
        w = -1
        try:
            result = _read_result(r, proc)
        except BaseException:  # a probe that failed is stopped at once, never left behind
            supervisor.reap_once(proc, grace_s=0.0)
            raise
        supervisor.reap_once(proc)
    finally:
        for fd in (r, w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
    if result.error is not None:
        raise PrepareFailed(result.error, result.exit_code)
    return result


def output_shape(
    supervisor: Supervisor, config: Config, data_dir: Path, scratch: Path, model: Path
) -> tuple[object, ...]:
    """A bare ONNX model's first output shape, read by ONNX Runtime in the sandbox."""
    fd = os.open(model, os.O_RDONLY | os.O_CLOEXEC)
    os.set_inheritable(fd, True)
    spec = {
        "mode": "output_shape",
        "detector": "onnx",
        "model_fd": fd,
        "model_name": str(model),
        "platform": "cpu",
        "sandbox": sandbox_spec(config, data_dir, scratch / "prepare"),
    }
    try:
        result = _run_sandboxed(supervisor, spec, (fd,), None, scratch)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    if result.output_shape is None:
        raise PrepareFailed(f"model {model}: expected its output shape, got none")
    return tuple(result.output_shape)


def prepare_sources(
    supervisor: Supervisor,
    config: Config,
    data_dir: Path,
    scratch: Path,
    worker: dict[str, Any],
    model_bytes: bytes | None,
    sources: dict[str, str],
    strict: dict[str, bool],
    allowed: list[str] | None,
) -> Prepared:
    """Probe every source and bench the detector, in the sandbox (see the module)."""
    live = _probe_live(sources, data_dir, config)
    fds = _open_sources(sources)
    try:
        spec = _spec(config, data_dir, scratch, worker, sources, fds, strict, allowed, live)
        result = _run_sandboxed(supervisor, spec, tuple(fds.values()), model_bytes, scratch)
    finally:
        for fd in fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
    return _prepared(result, sources, live)


def _probe_live(sources: dict[str, str], data_dir: Path, config: Config) -> dict[str, Profile]:
    """RTSP sources are probed here: the sandbox has no network (see the module). An
    ``rtsps://`` camera is checked as ingest checks it (ADR 0037: inventory trust)."""
    from kontur.ingest.rtsp import camera_policy

    required = {c.id: c.encryption_required for c in config.cameras}
    out: dict[str, Profile] = {}
    for cam, source in sources.items():
        if not _is_local(source):
            policy = camera_policy(data_dir, cam, encryption_required=required.get(cam, False))
            # the supervisor decodes nothing: the first frame is ingest's decoder's (ADR 0038)
            out[cam] = probe(source, policy=policy, decode=False).profile()
    return out


def _prepared(result: PrepareResult, sources: dict[str, str], live: dict[str, Profile]) -> Prepared:
    profiles: dict[str, Profile] = dict(live)
    notes: dict[str, tuple[str, ...]] = {cam: () for cam in live}
    signable = dict.fromkeys(sources, False)  # a live camera signs its own stream
    for cam, source in sources.items():
        if not _is_local(source):
            continue
        claim = result.probes.get(cam)
        if claim is None:
            raise PrepareFailed(f"probe: expected a result for camera {cam}, got none")
        profiles[cam] = Profile(
            codec=claim.codec, width=claim.width, height=claim.height, fps=claim.fps
        )
        notes[cam] = claim.notes
        signable[cam] = claim.signable
    return Prepared(profiles, notes, _measurements(result.measurements), signable)
