"""The sandboxed OCR process: ``python -m kontur.textguard._ocr_child`` (protocol on stdio).

Order of steps: read the request and the frame from stdin (before the sandbox: the pipe is
open already, and nothing else is read); enter the sandbox the request names
(:func:`kontur.worker.sandbox.enter`, before numpy or onnxruntime is imported, which the
policy's ``preload`` then imports, the engine with them: :mod:`kontur.textguard._engine`);
send :class:`~kontur.textguard.messages.OcrReady` with the isolation claim; wait for the
parent's ``G`` (it measures this process meanwhile); run the OCR; send
:class:`~kontur.textguard.messages.OcrResult`; exit. Any failure is one
:class:`~kontur.textguard.messages.OcrFailure` line and exit status 3.

This module imports nothing that starts a thread (the sandbox needs one thread at enter).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import BinaryIO

from kontur._private import read_exact
from kontur.textguard.messages import OcrFailure, OcrLine, OcrReady, OcrRequest, OcrResult
from kontur.worker.sandbox import SandboxPolicy, enter

__all__ = ["main"]

_MAX_REQUEST = 1 << 16


def _send(msg: OcrReady | OcrResult | OcrFailure) -> None:
    out = sys.stdout.buffer
    out.write(msg.model_dump_json().encode() + b"\n")
    out.flush()


def _request(stdin: BinaryIO) -> tuple[OcrRequest, bytes]:
    size = int.from_bytes(read_exact(stdin, 4), "big")
    if size > _MAX_REQUEST:
        raise ValueError(f"expected a request <= {_MAX_REQUEST} bytes, got {size}")
    req = OcrRequest.model_validate_json(read_exact(stdin, size))
    return req, read_exact(stdin, req.width * req.height * 3)


def _run(stdin: BinaryIO) -> None:
    req, pixels = _request(stdin)
    scratch = Path(str(req.sandbox.get("scratch_dir", "")))
    policy = SandboxPolicy.from_json(req.sandbox, default_scratch=scratch)
    os.environ["KONTUR_OCR_THREADS"] = str(req.threads)  # read by _engine at its import
    isolation = enter(policy)
    _send(OcrReady(isolation=isolation.to_json()))
    if stdin.read(1) != b"G":
        raise ValueError("expected the parent's go byte, got end of input")
    import numpy as np

    from kontur.textguard import _engine

    frame = np.frombuffer(pixels, np.uint8).reshape(req.height, req.width, 3)
    lines = [OcrLine.model_validate(line) for line in _engine.recognise(frame)]
    _send(OcrResult(engine=_engine.ENGINE, lines=lines))


def main() -> int:
    """Entry point (steps in the module doc)."""
    try:
        _run(sys.stdin.buffer)
    except Exception as exc:  # any failure of the untrusted work is one failure line
        _send(OcrFailure(error=f"{type(exc).__name__}: {exc}"[:2000]))
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
