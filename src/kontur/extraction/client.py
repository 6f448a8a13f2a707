"""The API's side of the query worker: the detector behind ``POST /v1/detect`` (ADR 0031).

:class:`QueryDetector` is the interface the route needs. Its production implementation,
:class:`SandboxedDetector`, starts ``python -m kontur.extraction.query_worker`` lazily (at
the first query), hands it the spec and the verified release bundle on stdin, waits for its
:class:`~kontur.extraction.messages.WorkerHello`, measures its isolation from outside
(:func:`kontur.worker.sandbox.measure`, as the supervisor does for the analytics worker: the
hello's report is only a claim) and refuses a worker whose sandbox falls short of a policy
that requires every mechanism, then sends one picture at a time (a lock: the API answers
from a thread pool) and parses every answer strictly. A worker that times
out, dies or breaks the protocol is killed (by its own pid) and the query answered 503; the
next query starts a fresh one. The worker inherits no descriptor but its three standard
ones and a minimal environment.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from kontur.extraction.errors import QueryWorkerError
from kontur.extraction.messages import (
    MAX_ANSWER_BYTES,
    InferAnswer,
    InferRequest,
    QueryDetection,
    WorkerHello,
    read_frame,
    write_frame,
)

__all__ = ["DetectAnswer", "QueryDetector", "QueryWorkerSpec", "SandboxedDetector"]

log = logging.getLogger("kontur.extraction")


@dataclass(frozen=True, slots=True)
class DetectAnswer:
    """Detections on one picture, and the model that made them."""

    model_id: str
    class_names: tuple[str, ...]
    detections: tuple[QueryDetection, ...]


class QueryDetector(Protocol):
    """What ``POST /v1/detect`` runs a picture through (never the model in the API itself)."""

    def detect(self, picture: np.ndarray, timeout_s: float) -> DetectAnswer:
        """Detections on one BGR uint8 picture; QueryWorkerError when none can be had."""
        ...

    def close(self) -> None:
        """Stop whatever runs the model."""
        ...


@dataclass(frozen=True, slots=True)
class QueryWorkerSpec:
    """What the query worker runs, and in which sandbox."""

    detector: Literal["release", "hog"]
    scratch_dir: Path
    """Its scratch dir (a private tmpfs is mounted there)."""
    deny: tuple[Path, ...]
    """Paths that must stay unreachable from it: the data dir (archive, users, keys)."""
    model_id: str = "builtin:hog"
    bundle: tuple[dict[str, Any], ...] = ()
    """The bundle index of the verified release (:meth:`PreparedRelease.worker_spec`)."""
    platform: str = "cpu"
    score_threshold: float = 0.3
    nms_threshold: float = 0.45
    intra_op_threads: int = 1
    sandbox: dict[str, Any] = field(default_factory=dict)
    """The sandbox policy's JSON form (:class:`kontur.worker.sandbox.SandboxPolicy`); {} is
    the full sandbox."""

    @classmethod
    def from_release(cls, entries: dict[str, Any], **kw: Any) -> QueryWorkerSpec:
        """From the release entries of :meth:`kontur.runtime.models.PreparedRelease.worker_spec`."""
        return cls("release", model_id=entries["model_id"], bundle=tuple(entries["bundle"]), **kw)

    def to_json(self) -> dict[str, Any]:
        """The spec the worker reads (the worker's own spec keys, plus the sandbox's)."""
        return {
            "detector": self.detector,
            "model_id": self.model_id,
            "bundle": list(self.bundle),
            "platform": self.platform,
            "worker": {
                "score_threshold": self.score_threshold,
                "nms_threshold": self.nms_threshold,
                "intra_op_threads": self.intra_op_threads,
            },
            "sandbox": self.sandbox,
            "scratch_dir": str(self.scratch_dir),
            "deny": [str(p) for p in self.deny],
        }


class SandboxedDetector:
    """The production :class:`QueryDetector` (see the module)."""

    def __init__(
        self, spec: QueryWorkerSpec, blob: bytes = b"", *, start_timeout_s: float = 120.0
    ) -> None:
        self.spec = spec
        self._blob = blob
        self._start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self.hello: WorkerHello | None = None
        self.isolation: dict[str, Any] | None = None
        """The running worker's isolation as measured from outside (``source: supervisor``)."""
        self._seq = 0
        self._lock = threading.Lock()
        # The worker asks for SIGKILL when the *thread* that started it ends (PDEATHSIG is
        # per thread), and the API answers from a pool whose idle threads end: it is started
        # from this one thread, which lives as long as the detector.
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="query-worker-spawner")

    def detect(self, picture: np.ndarray, timeout_s: float) -> DetectAnswer:
        """Run ``picture`` through the worker, starting it first if none runs."""
        if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
            raise ValueError(f"expected a BGR uint8 picture, got {picture.dtype} {picture.shape}")
        height, width = picture.shape[:2]
        with self._lock:
            self._seq = (self._seq + 1) % (1 << 32)
            req = InferRequest(self._seq, height, width, np.ascontiguousarray(picture).tobytes())
            proc, hello = self._running()
            try:
                self._send(proc, req)
            except OSError:  # it died since the last query, before this one: a fresh one
                self._stop("its stdin is closed")
                proc, hello = self._running()
                try:
                    self._send(proc, req)
                except OSError as exc:
                    self._stop(f"{exc}")
                    raise QueryWorkerError(
                        f"query worker: expected a running worker, got {exc}"
                    ) from None
            answer = self._receive(proc, req, len(hello.class_names), timeout_s)
        if answer.error is not None:
            raise QueryWorkerError(
                f"query worker: expected detections, got the model's error {answer.error}"
            )
        return DetectAnswer(hello.model_id, hello.class_names, answer.detections)

    @staticmethod
    def _send(proc: subprocess.Popen[bytes], req: InferRequest) -> None:
        assert proc.stdin is not None
        write_frame(proc.stdin.fileno(), req.to_bytes())

    def _receive(
        self, proc: subprocess.Popen[bytes], req: InferRequest, classes: int, timeout_s: float
    ) -> InferAnswer:
        assert proc.stdout is not None
        try:
            raw = read_frame(proc.stdout.fileno(), MAX_ANSWER_BYTES, timeout_s)
            return InferAnswer.from_bytes(
                raw, seq=req.seq, width=req.width, height=req.height, classes=classes
            )
        except (OSError, QueryWorkerError) as exc:
            self._stop(f"{exc}")
            if isinstance(exc, QueryWorkerError):
                raise
            raise QueryWorkerError(f"query worker: expected a running worker, got {exc}") from None

    def _running(self) -> tuple[subprocess.Popen[bytes], WorkerHello]:
        if self._proc is not None and self._proc.poll() is None and self.hello is not None:
            return self._proc, self.hello
        self._stop("not running")
        env = {"PATH": os.defpath, "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1"}
        proc = self._spawner.submit(
            subprocess.Popen, [sys.executable, "-m", "kontur.extraction.query_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True, env=env,
        ).result()  # fmt: skip
        self._proc = proc
        try:
            assert proc.stdin is not None and proc.stdout is not None
            write_frame(proc.stdin.fileno(), json.dumps(self.spec.to_json()).encode())
            write_frame(proc.stdin.fileno(), self._blob)
            raw = read_frame(proc.stdout.fileno(), MAX_ANSWER_BYTES, self._start_timeout_s)
            hello = WorkerHello.from_bytes(raw)
            self.isolation = self._measure(proc.pid, hello)
        except (OSError, QueryWorkerError) as exc:
            self._stop(f"start: {exc}")
            raise QueryWorkerError(f"query worker: expected it to start, got {exc}") from None
        self.hello = hello
        log.info("query worker %d runs %s (%s), isolation %s (measured)", proc.pid,
                 hello.model_id, hello.detector, self.isolation.get("level"))  # fmt: skip
        return proc, hello

    def _measure(self, pid: int, hello: WorkerHello) -> dict[str, Any]:
        """The worker's isolation from ``/proc``; QueryWorkerError when a policy requiring
        every mechanism is not met (the worker refuses to start itself; this is the check
        that does not take its word for it)."""
        from kontur.worker.sandbox import SandboxPolicy, measure

        policy = SandboxPolicy.from_json(self.spec.sandbox, default_scratch=self.spec.scratch_dir)
        report = measure(pid, policy, claimed=hello.isolation).to_json()
        if policy.required and report["level"] != "full":
            missing = "; ".join(str(m) for m in report.get("missing", ())) or "unknown"
            raise QueryWorkerError(f"query worker: expected full isolation, measured {missing}")
        return report

    def _stop(self, why: str) -> None:
        proc, self._proc, self.hello = self._proc, None, None
        if proc is None:
            return
        if proc.poll() is None:
            log.warning("query worker %d stopped: %s", proc.pid, why)
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()

    @property
    def pid(self) -> int | None:
        """The running worker's pid, if one runs."""
        return None if self._proc is None or self._proc.poll() is not None else self._proc.pid

    def close(self) -> None:
        """Stop the worker (closing its stdin ends it; a kill makes sure)."""
        with self._lock:
            self._stop("closed")
