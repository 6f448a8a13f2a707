"""The messages between ingest and its sandboxed decoder process (ADR 0038).

Parent (ingest) → child, on the child's stdin: frames of a 4-byte big-endian length and a
JSON message, a :class:`PacketIn` followed by its ``size`` bytes of payload. The first is
:class:`DecoderStart` (the sandbox to enter), then :class:`DecoderOpen` (the codec), then
packets; :class:`FrameTaken` hands a slot of the frame buffer back.

Child → parent, on its stdout: one JSON line each. :class:`DecoderReady` (its isolation
*claim*, once, inside the sandbox), then per packet zero or more :class:`FrameOut` (the
frame's pixels are in a slot of the shared frame buffer, which the child writes again only
after the parent's :class:`FrameTaken` for it) and one :class:`PacketDone`;
:class:`DecoderFailure` before it exits on an error of its own.

The child parses a hostile bitstream with FFmpeg, so everything it says is untrusted: a
line is refused past :data:`MAX_LINE_BYTES`, parsed strictly (unknown keys, wrong types,
NaN and infinities refused), and checked against what was asked (:mod:`kontur.decoder.client`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from kontur.wire.messages import MAX_FRAME_SIDE

__all__ = [
    "MAX_FRAMES_PER_PACKET",
    "MAX_LINE_BYTES",
    "MAX_PACKET_BYTES",
    "MAX_PTS",
    "MAX_SIDE",
    "MAX_SLOTS",
    "ChildMessage",
    "DecoderFailure",
    "DecoderOpen",
    "DecoderReady",
    "DecoderStart",
    "FrameOut",
    "FrameTaken",
    "PacketDone",
    "PacketIn",
    "ParentMessage",
    "decode_child",
    "decode_parent",
]

#: The longest line the child may send.
MAX_LINE_BYTES = 1 << 16
#: The largest packet ingest hands the decoder (a compressed access unit).
MAX_PACKET_BYTES = 64 << 20
#: The most frames one packet (or one flush) may yield: a decoder holds back at most its
#: reorder depth and thread delay (tens of frames); more is a decoder that lies.
MAX_FRAMES_PER_PACKET = 64
#: The most slots the frame buffer may have.
MAX_SLOTS = 16
#: The widest or tallest frame the decoder may return: twice the wire's, so a frame too
#: large to publish still reaches ingest, which counts it and names it in the verdict; the
#: buffer's slot size is the real bound.
MAX_SIDE = 2 * MAX_FRAME_SIDE
_MAX_SEQ = 2**62
#: The largest packet or frame time (in the stream's time base) on the wire.
MAX_PTS = 2**62


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)


class DecoderStart(_Msg):
    """The sandbox the child enters (a :class:`~kontur.worker.sandbox.SandboxPolicy` JSON)."""

    type: Literal["start"] = "start"
    sandbox: dict[str, Any]
    buffer_fd: int = Field(ge=3, le=1 << 20)
    """The child's descriptor of the shared frame buffer (a memfd the parent made)."""


class DecoderOpen(_Msg):
    """The codec to decode: FFmpeg's name, its extradata, the frame buffer's size."""

    type: Literal["open"] = "open"
    codec: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    extradata_hex: str = Field(default="", max_length=1 << 20, pattern=r"^[0-9a-f]*$")
    threads: int = Field(default=0, ge=0, le=64)
    """FFmpeg's decoder threads (0: as many as it likes, frame and slice threading)."""
    slots: int = Field(ge=1, le=MAX_SLOTS)
    slot_bytes: int = Field(ge=3, le=MAX_FRAME_SIDE * MAX_FRAME_SIDE * 3)
    """The largest frame (BGR bytes) a slot holds; slot ``i`` starts at ``i * slot_bytes``."""


class PacketIn(_Msg):
    """One packet to decode (``size`` payload bytes follow), or a flush when ``size`` is 0."""

    type: Literal["packet"] = "packet"
    seq: int = Field(ge=0, le=_MAX_SEQ)
    size: int = Field(ge=0, le=MAX_PACKET_BYTES)
    pts: int | None = Field(default=None, ge=-MAX_PTS, le=MAX_PTS)


class FrameTaken(_Msg):
    """The parent is done with the frame in ``slot``."""

    type: Literal["taken"] = "taken"
    slot: int = Field(ge=0, lt=MAX_SLOTS)


ParentMessage = Annotated[
    DecoderStart | DecoderOpen | PacketIn | FrameTaken, Field(discriminator="type")
]


class DecoderReady(_Msg):
    """The child is in its sandbox; ``isolation`` is its own claim (the parent measures)."""

    type: Literal["ready"] = "ready"
    isolation: dict[str, Any]


class FrameOut(_Msg):
    """A decoded frame of packet ``seq`` is in buffer slot ``slot``: BGR,
    ``height × width × 3``."""

    type: Literal["frame"] = "frame"
    seq: int = Field(ge=0, le=_MAX_SEQ)
    slot: int = Field(ge=0, lt=MAX_SLOTS)
    width: int = Field(ge=1, le=MAX_SIDE)
    height: int = Field(ge=1, le=MAX_SIDE)
    pts: int | None = Field(default=None, ge=-MAX_PTS, le=MAX_PTS)
    corrupt: bool = False
    """FFmpeg flagged the frame corrupt (concealed errors)."""


class PacketDone(_Msg):
    """Packet ``seq`` is decoded: ``frames`` frames came out, or it failed with ``error``."""

    type: Literal["done"] = "done"
    seq: int = Field(ge=0, le=_MAX_SEQ)
    frames: int = Field(ge=0, le=MAX_FRAMES_PER_PACKET)
    error: str | None = Field(default=None, max_length=500)


class DecoderFailure(_Msg):
    """The child failed on its own (a bad request, a sandbox it could not enter)."""

    type: Literal["failure"] = "failure"
    error: str = Field(max_length=2000)


ChildMessage = Annotated[
    DecoderReady | FrameOut | PacketDone | DecoderFailure, Field(discriminator="type")
]

_CHILD: TypeAdapter[ChildMessage] = TypeAdapter(ChildMessage)
_PARENT: TypeAdapter[ParentMessage] = TypeAdapter(ParentMessage)


def decode_child(raw: bytes) -> ChildMessage:
    """Parse one line from the child (raises ``pydantic.ValidationError``)."""
    return _CHILD.validate_json(raw)


def decode_parent(raw: bytes) -> ParentMessage:
    """Parse one message from the parent (raises ``pydantic.ValidationError``)."""
    return _PARENT.validate_json(raw)
