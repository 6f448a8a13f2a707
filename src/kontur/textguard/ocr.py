"""OCR of one frame in a sandboxed process: the parent's side (:func:`run_ocr`).

The OCR is a model run over pixels a stranger can paint, so it runs as the analytics worker
does (ADR 0010): in a process of its own, in the worker's sandbox
(:mod:`kontur.worker.sandbox`: no network, nothing readable but the interpreter and its
libraries, nothing writable but a size-capped scratch tmpfs, seccomp with no new process and
no ``execve``, memory, CPU, file and task limits, uid 65534), and talking over a pipe in typed
messages (:mod:`kontur.textguard.messages`). One process per frame: nothing one frame did to
the OCR survives to the next.

Order of steps (:func:`run_ocr`): check the frame; make a private temp dir (the child's
scratch and its log); start the child; send the request and the frame; read its
``OcrReady``; measure its sandbox from ``/proc`` (:func:`kontur.worker.sandbox.measure`;
the child's own report is only a claim); send ``G``; read its ``OcrResult``; reap it and
remove the temp dir. Past ``timeout_s`` the child is killed. Whatever the child says is
parsed strictly and bounded; the guard (:mod:`kontur.textguard.guard`) bounds it again.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from kontur.textguard.errors import OcrFailed, OcrUnavailable, TextGuardError
from kontur.textguard.messages import (
    MAX_FRAME_SIDE,
    MAX_MESSAGE_BYTES,
    OcrFailure,
    OcrLine,
    OcrReady,
    OcrRequest,
    OcrResult,
    decode_child,
)
from kontur.textguard.normalise import clean
from kontur.worker.sandbox import IsolationReport, SandboxPolicy, measure
from kontur.worker.sandbox.policy import NOBODY

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["PRELOAD", "OcrOptions", "OcrRun", "require_ocr", "run_ocr", "sandbox_policy"]

#: Imported inside the sandbox before the drop to uid 65534: the engine, built at import.
PRELOAD = ("kontur.textguard._engine",)
_M = TypeVar("_M", OcrReady, OcrResult)
_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "PYTHONPATH", "TZ")
_MiB = 1 << 20


@dataclass(frozen=True)
class OcrOptions:
    """How the OCR process is confined and how long it may take.

    ``deny``: paths that must stay unreachable (the data dir with the archive and keys); a
    policy whose readable paths hold one is refused. ``require_full``: refuse to read the
    frame unless the measured isolation is ``full``. ``unsafe_skip``: sandbox mechanisms not
    applied (tests only; the sandbox logs a warning).
    """

    scratch_root: Path | None = None
    deny: tuple[Path, ...] = ()
    memory_mb: int = 3072
    cpu_seconds: int = 300
    timeout_s: float = 300.0
    threads: int = 1
    uid: int = NOBODY
    gid: int = NOBODY
    require_full: bool = False
    unsafe_skip: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class OcrRun:
    """What the OCR read, which engine read it, and the child's isolation: its own claim
    and the parent's measurement (the one to act on)."""

    lines: tuple[OcrLine, ...]
    engine: str
    claimed: IsolationReport
    measured: IsolationReport


def require_ocr() -> None:
    """OcrUnavailable (one line) when ``rapidocr-onnxruntime`` is not installed here."""
    if importlib.util.find_spec("rapidocr_onnxruntime") is None:
        raise OcrUnavailable(
            "ocr: expected rapidocr-onnxruntime installed (pip install rapidocr-onnxruntime), "
            "got none"
        )


def sandbox_policy(options: OcrOptions, scratch: Path) -> SandboxPolicy:
    """The sandbox the OCR process enters: the worker's, tighter (files, tasks, scratch)."""
    return SandboxPolicy(
        scratch_dir=scratch,
        denied_paths=options.deny,
        memory_bytes=options.memory_mb * _MiB,
        cpu_seconds=options.cpu_seconds,
        max_open_files=64,
        max_file_bytes=_MiB,
        max_tasks=64,
        scratch_max_bytes=16 * _MiB,
        uid=options.uid,
        gid=options.gid,
        unsafe_skip=options.unsafe_skip,
        preload=PRELOAD,
    )


def _check_frame(frame: npt.NDArray[np.uint8]) -> tuple[int, int]:
    shape = getattr(frame, "shape", None)
    dtype = str(getattr(frame, "dtype", None))
    if shape is None or len(shape) != 3 or shape[2] != 3 or dtype != "uint8":
        raise TextGuardError(f"frame: expected a BGR uint8 image (h, w, 3), got {shape} {dtype}")
    h, w = int(shape[0]), int(shape[1])
    if not (1 <= h <= MAX_FRAME_SIDE and 1 <= w <= MAX_FRAME_SIDE):
        raise TextGuardError(f"frame: expected sides 1..{MAX_FRAME_SIDE}, got {w}x{h}")
    return w, h


class _Lines:
    """Lines from the child's stdout, each bounded in size and in time."""

    def __init__(self, fd: int, deadline: float) -> None:
        self.fd, self.deadline, self.buf = fd, deadline, b""

    def next(self) -> bytes | None:
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_MESSAGE_BYTES:
                raise OcrFailed(f"ocr: expected a line <= {MAX_MESSAGE_BYTES} bytes, got more")
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise OcrFailed("ocr: expected the OCR process to answer in time, got no answer")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line


def _log_tail(log: Path) -> str:
    with contextlib.suppress(OSError):
        lines = clean(log.read_bytes()[-4096:].decode("utf-8", "replace")).text
        return f": {lines[-300:]}" if lines else ""
    return ""


def _expect(lines: _Lines, want: type[_M], proc: subprocess.Popen[bytes], log: Path) -> _M:
    raw = lines.next()
    if raw is None:
        code = proc.wait(timeout=5)
        raise OcrFailed(f"ocr: expected a message, got end of output (exit {code}){_log_tail(log)}")
    msg = decode_child(raw)
    if isinstance(msg, OcrFailure):
        raise OcrFailed(f"ocr: expected {want.__name__}, got failure: {clean(msg.error).text}")
    if not isinstance(msg, want):
        raise OcrFailed(f"ocr: expected {want.__name__}, got {type(msg).__name__}")
    return msg


def _start(root: Path) -> tuple[subprocess.Popen[bytes], Path]:
    log = root / "child.log"
    env = {k: os.environ[k] for k in _ENV_KEYS if k in os.environ}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1")
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kontur.textguard._ocr_child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            cwd=root,
            start_new_session=True,
        )
    return proc, log


def _converse(
    proc: subprocess.Popen[bytes],
    log: Path,
    policy: SandboxPolicy,
    request: bytes,
    options: OcrOptions,
) -> OcrRun:
    assert proc.stdin is not None and proc.stdout is not None
    lines = _Lines(proc.stdout.fileno(), time.monotonic() + options.timeout_s)
    try:
        proc.stdin.write(request)
        proc.stdin.flush()
    except BrokenPipeError:
        pass  # the child died reading: _expect says how
    ready = _expect(lines, OcrReady, proc, log)
    try:
        claimed = IsolationReport.from_json(ready.isolation)
    except (ValueError, TypeError, KeyError) as exc:
        raise OcrFailed(
            f"ocr: expected an isolation report, got {clean(str(exc)).text[:300]}"
        ) from None
    try:
        measured = measure(proc.pid, policy, claimed=claimed)
    except OSError as exc:
        raise OcrFailed(f"ocr: expected to measure the OCR sandbox, got {exc}") from None
    if options.require_full and measured.level != "full":
        raise OcrFailed(f"ocr sandbox: expected full isolation, measured {list(measured.missing)}")
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(b"G")
        proc.stdin.close()
    result = _expect(lines, OcrResult, proc, log)
    return OcrRun(tuple(result.lines), result.engine, claimed, measured)


def run_ocr(frame: npt.NDArray[np.uint8], options: OcrOptions | None = None) -> OcrRun:
    """Read the text in ``frame`` (BGR) in a sandboxed OCR process (steps in the module doc).

    Raises OcrUnavailable without the OCR package, OcrFailed when the child fails, breaks the
    protocol or overruns ``timeout_s``, TextGuardError for a frame that is not BGR uint8.
    """
    opts = options or OcrOptions()
    w, h = _check_frame(frame)
    require_ocr()
    root = Path(tempfile.mkdtemp(prefix="kontur-ocr-", dir=opts.scratch_root)).absolute()
    os.chmod(root, 0o711)  # uid 65534 must traverse it to reach its scratch dir
    policy = sandbox_policy(opts, root / "scratch")
    req = OcrRequest(width=w, height=h, sandbox=policy.to_json(), threads=opts.threads)
    header = req.model_dump_json().encode()
    payload = len(header).to_bytes(4, "big") + header + frame.tobytes()
    proc, log = _start(root)
    try:
        return _converse(proc, log, policy, payload, opts)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        shutil.rmtree(root, ignore_errors=True)
