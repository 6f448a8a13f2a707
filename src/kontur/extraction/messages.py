"""The typed messages between the API and its sandboxed query worker, and their framing.

The API writes on the worker's stdin, the worker answers on its stdout (fd 1 is pointed at
stderr inside the worker, so nothing a library prints can land in the protocol). Every
message is a frame: a 4-byte big-endian length, then the payload. In order:

- API → worker, once: the spec (JSON), then the verified release bundle (the blob of
  :mod:`kontur.worker.bundle`, empty for the weight-free HOG detector);
- worker → API, once: :class:`WorkerHello` (JSON) after it entered its sandbox and built the
  detector from the verified bytes;
- then per query: API → worker :class:`InferRequest` (a 16-byte header ``KQR1``, sequence
  number, height, width, then the BGR pixels), worker → API :class:`InferAnswer` (JSON).

The worker runs an untrusted model: everything it says is parsed by ``from_bytes``, which
checks every invariant (the sequence number, at most :data:`MAX_DETECTIONS`, finite numbers,
a known class, boxes inside the picture). A frame that breaks them is a
:class:`~kontur.extraction.errors.QueryWorkerError`: the API kills the worker and answers 503.
This module imports no numpy: the worker reads its first frames before its sandbox exists.
"""

from __future__ import annotations

import json
import math
import os
import select
import struct
import time
from dataclasses import dataclass
from typing import Any

from kontur.extraction.errors import QueryWorkerError

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_DETECTIONS",
    "InferAnswer",
    "InferRequest",
    "QueryDetection",
    "WorkerHello",
    "read_frame",
    "write_frame",
]

MAX_DETECTIONS = 300
MAX_ANSWER_BYTES = 1 << 20
MAX_SIDE = 8192
_MAGIC = b"KQR1"
_HEADER = struct.Struct(">4sIII")
_LEN = struct.Struct(">I")


def write_frame(fd: int, payload: bytes) -> None:
    """Write one frame (length, payload); BrokenPipeError when the reader is gone."""
    view = memoryview(_LEN.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    out = bytearray()
    while len(out) < size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise QueryWorkerError(
                    f"query worker: expected an answer in time, got {len(out)} of {size} bytes"
                )
        chunk = os.read(fd, min(size - len(out), 1 << 20))
        if not chunk:
            raise QueryWorkerError(
                f"query worker: expected {size} bytes, got end of stream after {len(out)}"
            )
        out += chunk
    return bytes(out)


def read_frame(fd: int, limit: int, timeout_s: float | None = None) -> bytes:
    """Read one frame of at most ``limit`` bytes (QueryWorkerError otherwise, or on EOF/timeout)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    (size,) = _LEN.unpack(_read_exact(fd, _LEN.size, deadline))
    if size > limit:
        raise QueryWorkerError(
            f"query worker: expected a frame of at most {limit} bytes, got {size}"
        )
    return _read_exact(fd, size, deadline)


def _json(raw: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise QueryWorkerError(f"query worker: expected a JSON {what}, got {raw[:40]!r}") from None
    if not isinstance(obj, dict):
        raise QueryWorkerError(
            f"query worker: expected a JSON object as {what}, got {type(obj).__name__}"
        )
    return obj


@dataclass(frozen=True, slots=True)
class InferRequest:
    """One picture to run the detector on."""

    seq: int
    height: int
    width: int
    pixels: bytes
    """BGR uint8, row-major, ``height * width * 3`` bytes."""

    def to_bytes(self) -> bytes:
        """The frame payload."""
        return _HEADER.pack(_MAGIC, self.seq, self.height, self.width) + self.pixels

    @classmethod
    def from_bytes(cls, raw: bytes) -> InferRequest:
        """Parse a payload; ValueError naming what is wrong."""
        if len(raw) < _HEADER.size:
            raise ValueError(
                f"request: expected a {_HEADER.size}-byte header, got {len(raw)} bytes"
            )
        magic, seq, height, width = _HEADER.unpack(raw[: _HEADER.size])
        if magic != _MAGIC or not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE):
            raise ValueError(
                f"request: expected {_MAGIC!r} and sides 1..{MAX_SIDE}, "
                f"got {magic!r} {width}x{height}"
            )
        pixels = raw[_HEADER.size :]
        if len(pixels) != height * width * 3:
            raise ValueError(
                f"request: expected {height * width * 3} pixel bytes, got {len(pixels)}"
            )
        return cls(seq, height, width, pixels)


@dataclass(frozen=True, slots=True)
class QueryDetection:
    """One detection: a box in picture pixels, its confidence and class."""

    box: tuple[float, float, float, float]
    confidence: float
    class_id: int


@dataclass(frozen=True, slots=True)
class InferAnswer:
    """The worker's answer to one :class:`InferRequest`."""

    seq: int
    detections: tuple[QueryDetection, ...] = ()
    error: str | None = None

    def to_bytes(self) -> bytes:
        """The frame payload (JSON)."""
        rows = [[*d.box, d.confidence, d.class_id] for d in self.detections]
        return json.dumps(
            {"type": "answer", "seq": self.seq, "detections": rows, "error": self.error}
        ).encode()

    @classmethod
    def from_bytes(
        cls, raw: bytes, *, seq: int, width: int, height: int, classes: int
    ) -> InferAnswer:
        """Parse the worker's answer to request ``seq`` on a ``width`` x ``height`` picture."""
        obj = _json(raw, "answer")
        if obj.get("type") != "answer" or obj.get("seq") != seq:
            raise QueryWorkerError(
                f"query worker: expected the answer to query {seq}, got {str(obj)[:60]}"
            )
        if obj.get("error") is not None:
            return cls(seq, (), str(obj["error"])[:200])
        rows = obj.get("detections")
        if not isinstance(rows, list) or len(rows) > MAX_DETECTIONS:
            raise QueryWorkerError(
                f"query worker: expected at most {MAX_DETECTIONS} detections, got {str(rows)[:40]}"
            )
        return cls(seq, tuple(_detection(r, width, height, classes) for r in rows))


def _detection(row: object, width: int, height: int, classes: int) -> QueryDetection:
    ok = isinstance(row, list) and len(row) == 6
    nums = row if ok and isinstance(row, list) else []
    ok = ok and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in nums
    )
    if not ok:
        raise QueryWorkerError(
            f"query worker: expected [x1, y1, x2, y2, confidence, class], got {str(row)[:60]}"
        )
    x1, y1, x2, y2, conf, cls = nums
    box = (max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2))
    if not (
        box[0] <= box[2]
        and box[1] <= box[3]
        and 0.0 <= conf <= 1.0
        and cls == int(cls)
        and 0 <= cls < classes
    ):
        raise QueryWorkerError(
            f"query worker: expected a box inside the picture and a known class, got {row}"
        )
    return QueryDetection(
        (float(box[0]), float(box[1]), float(box[2]), float(box[3])), float(conf), int(cls)
    )


@dataclass(frozen=True, slots=True)
class WorkerHello:
    """The worker's first message: what it runs, and the isolation it claims."""

    model_id: str
    detector: str
    class_names: tuple[str, ...]
    isolation: dict[str, Any]

    def to_bytes(self) -> bytes:
        """The frame payload (JSON)."""
        return json.dumps(
            {"type": "hello", "model_id": self.model_id, "detector": self.detector,
             "class_names": list(self.class_names), "isolation": self.isolation}
        ).encode()  # fmt: skip

    @classmethod
    def from_bytes(cls, raw: bytes) -> WorkerHello:
        """Parse the hello; QueryWorkerError naming what is wrong."""
        obj = _json(raw, "hello")
        names = obj.get("class_names")
        strs = (
            isinstance(names, list)
            and 0 < len(names) <= 1000
            and all(isinstance(n, str) for n in names)
        )
        if obj.get("type") != "hello" or not strs or not isinstance(obj.get("isolation"), dict):
            raise QueryWorkerError(
                "query worker: expected a hello with class names and isolation, "
                f"got {str(obj)[:60]}"
            )
        model_id, detector = obj.get("model_id"), obj.get("detector")
        if not isinstance(model_id, str) or not isinstance(detector, str):
            raise QueryWorkerError(
                "query worker: expected model_id and detector as strings in its hello"
            )
        assert isinstance(names, list)
        return cls(model_id[:200], detector[:200], tuple(n[:64] for n in names), obj["isolation"])
