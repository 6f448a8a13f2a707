"""The messages on the pipe between kontur and its sandboxed OCR process.

Parent → child, on the child's stdin: a 4-byte big-endian length, :class:`OcrRequest` as
JSON, the frame (BGR, ``height × width × 3`` bytes), later one byte ``G`` (go: the parent
has measured the child's sandbox). Child → parent, on its stdout: one JSON line each,
:class:`OcrReady` (the child's isolation *claim*, sent once inside the sandbox), then
:class:`OcrResult` or :class:`OcrFailure`.

The child runs a model over untrusted pixels, so everything it says is untrusted: a line is
refused past :data:`MAX_MESSAGE_BYTES`, parsed strictly (unknown keys, wrong types, NaN and
infinities refused) and bounded (:data:`MAX_OCR_LINES` lines of :data:`MAX_OCR_CHARS`
characters at most). Within those bounds the guard then keeps less
(:data:`kontur.textguard.field.MAX_LINES`, :data:`~kontur.textguard.field.MAX_CHARS`) and
clamps boxes to the frame; a message beyond them is a broken child and is refused whole.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from kontur.textguard.errors import OcrFailed
from kontur.textguard.normalise import clean

__all__ = [
    "MAX_FRAME_SIDE",
    "MAX_MESSAGE_BYTES",
    "MAX_OCR_CHARS",
    "MAX_OCR_LINES",
    "ChildMessage",
    "OcrFailure",
    "OcrLine",
    "OcrReady",
    "OcrRequest",
    "OcrResult",
    "decode_child",
]

MAX_MESSAGE_BYTES = 1 << 20
MAX_OCR_LINES = 1024
MAX_OCR_CHARS = 4096
MAX_FRAME_SIDE = 8192


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)


class OcrRequest(_Msg):
    """What the parent asks: the frame's size, the sandbox to enter, the OCR's threads."""

    type: Literal["request"] = "request"
    width: int = Field(ge=1, le=MAX_FRAME_SIDE)
    height: int = Field(ge=1, le=MAX_FRAME_SIDE)
    sandbox: dict[str, Any]
    threads: int = Field(default=1, ge=1, le=64)


Point = Annotated[list[float], Field(min_length=2, max_length=2)]


class OcrLine(_Msg):
    """One string the OCR read: its text, its box (four corner points), its confidence."""

    text: str = Field(max_length=MAX_OCR_CHARS)
    box: list[Point] = Field(min_length=4, max_length=4)
    score: float


class OcrReady(_Msg):
    """The child is in its sandbox; ``isolation`` is its own claim (the parent measures)."""

    type: Literal["ready"] = "ready"
    isolation: dict[str, Any]


class OcrResult(_Msg):
    """What the OCR read in the frame, and which engine read it."""

    type: Literal["result"] = "result"
    engine: str = Field(max_length=200)
    lines: list[OcrLine] = Field(max_length=MAX_OCR_LINES)


class OcrFailure(_Msg):
    """The child could not do it; one line saying why."""

    type: Literal["failure"] = "failure"
    error: str = Field(max_length=2000)


ChildMessage = Annotated[OcrReady | OcrResult | OcrFailure, Field(discriminator="type")]
_CHILD: TypeAdapter[OcrReady | OcrResult | OcrFailure] = TypeAdapter(ChildMessage)


def decode_child(line: bytes) -> OcrReady | OcrResult | OcrFailure:
    """Parse one line the child sent; OcrFailed (one line) when it is not a child message."""
    if len(line) > MAX_MESSAGE_BYTES:
        raise OcrFailed(f"ocr: expected a message <= {MAX_MESSAGE_BYTES} bytes, got {len(line)}")
    try:
        return _CHILD.validate_json(line)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
        where = ".".join(str(p) for p in first["loc"]) or "message"
        what = clean(f"{where}: {first['msg']}").text[:300]  # it may quote the child's bytes
        raise OcrFailed(f"ocr: expected a child message, got {what}") from None
