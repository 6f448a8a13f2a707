"""The sandboxed query worker: ``python -m kontur.extraction.query_worker`` (ADR 0031).

The model is untrusted, so ``POST /v1/detect`` never runs it inside the API process. The API
starts this process lazily (:class:`~kontur.extraction.client.SandboxedDetector`) and talks to
it over its stdin and stdout (:mod:`kontur.extraction.messages`). Order of steps:

1. point fd 1 at stderr (keeping the real stdout for the protocol), and ask the kernel for
   SIGKILL when the API dies;
2. read the spec and the verified release bundle from stdin; re-check every part's SHA-256
   (:func:`kontur.worker.bundle.unpack`);
3. enter the worker's sandbox (:func:`kontur.worker.sandbox.enter`: no network, no file but
   its scratch dir, seccomp, limits, uid 65534; the data dir denied) before numpy or an
   inference runtime is imported, so no other thread exists yet;
4. build the detector *from those bytes* with the worker's own code
   (:func:`kontur.worker.process.build_detector`), send :class:`WorkerHello`;
5. answer :class:`InferRequest` after :class:`InferRequest` until stdin ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from kontur.extraction.messages import (
    InferAnswer,
    InferRequest,
    QueryDetection,
    WorkerHello,
    read_frame,
    write_frame,
)
from kontur.worker.bundle import MAX_BUNDLE_BYTES, BundlePart, unpack
from kontur.worker.process import SANDBOX_PRELOAD, build_detector
from kontur.worker.sandbox import SandboxPolicy, enter

__all__ = ["PRELOAD", "main"]

#: The worker's own preload, and what answering needs after the drop to uid 65534.
PRELOAD = (*SANDBOX_PRELOAD, "numpy", "kontur.extraction.messages")
_MAX_SPEC = 1 << 20
_MAX_REQUEST = 16 + 8192 * 8192 * 3


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:
        raise SystemExit(0)


def _policy(spec: dict[str, Any]) -> SandboxPolicy:
    policy = SandboxPolicy.from_json(
        spec.get("sandbox") or {}, default_scratch=Path(spec["scratch_dir"])
    )
    deny = tuple(Path(p) for p in spec.get("deny", ()))
    return dataclasses.replace(
        policy, preload=(*PRELOAD, *policy.preload), denied_paths=(*policy.denied_paths, *deny)
    )


def _serve(stdin: int, out: int, detector: Any) -> None:
    import numpy as np

    while True:
        try:
            raw = read_frame(stdin, _MAX_REQUEST)
        except Exception:
            return  # stdin ended (the API closed it or died): stop
        req = InferRequest.from_bytes(raw)
        frame = np.frombuffer(req.pixels, np.uint8).reshape(req.height, req.width, 3)
        try:
            dets = detector.infer(frame)
            rows = [
                ([float(v) for v in box], float(conf), int(cls))
                for box, conf, cls in zip(dets.xyxy, dets.confidence, dets.class_id, strict=True)
            ]
            found = tuple(QueryDetection((b[0], b[1], b[2], b[3]), c, k) for b, c, k in rows)
            answer = InferAnswer(req.seq, found)
        except Exception as exc:  # the model's failure is an answer, not the worker's death
            answer = InferAnswer(req.seq, (), f"{type(exc).__name__}: {exc}")
        write_frame(out, answer.to_bytes())


def main() -> int:
    """Steps 1-5 of the module."""
    out = os.dup(1)
    os.dup2(2, 1)
    _die_with_parent()
    stdin = sys.stdin.fileno()
    spec = json.loads(read_frame(stdin, _MAX_SPEC))
    blob = read_frame(stdin, MAX_BUNDLE_BYTES)
    release = None
    if spec["detector"] == "release":
        release = unpack(blob, tuple(BundlePart.from_json(p) for p in spec["bundle"]))
    isolation = enter(_policy(spec))
    detector = build_detector(spec, release)
    hello = WorkerHello(
        detector.model_id, detector.name, tuple(detector.class_names), isolation.to_json()
    )
    write_frame(out, hello.to_bytes())
    _serve(stdin, out, detector)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
