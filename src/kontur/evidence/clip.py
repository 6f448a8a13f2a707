"""The clip: archived segments remuxed into a playable MP4, and an MP4 read back as NAL units.

No byte of video is re-encoded. :func:`write_mp4` muxes the segments' packets, in order, as
MP4 samples with PyAV: every NAL unit stays as the camera sent it, ONVIF Media Signing SEIs
included (the signed end of stream stays an SEI-only sample after the last picture). Only
the framing may change: Annex-B packets (raw or RTSP sources) become length-prefixed samples,
as MP4 requires, so clip and segments are compared NAL unit by NAL unit
(:func:`units_of_segments`, :func:`read_mp4`).

Times: the segments keep each packet's presentation time. Where ingest had none to keep (an
AVI's decode-order stamps, a raw stream: the segment header says ``pts: synthesised``) the
packets are decoded once to learn their presentation order, and the clip gets one tick per
picture at the stream's frame rate. Decode times are rebuilt from the sorted presentation
times, so B-frames stay in place.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Any

import av

from kontur.decoder.packets import padded_packet
from kontur.evidence.errors import BundleInputError, ExportError
from kontur.ingest.oms.errors import OmsError
from kontur.ingest.oms.nal import Codec, parse_extradata, split_packet
from kontur.ingest.segment import SegmentPacket, unpack_segment

__all__ = ["ClipStream", "Mp4Clip", "clip_stream", "read_mp4", "units_of_segments", "write_mp4"]

#: ffmpeg codec name -> Media Signing codec.
CODECS: dict[str, Codec] = {"h264": Codec.H264, "hevc": Codec.H265}

#: One access unit as NAL units (no framing).
Unit = tuple[bytes, ...]


@dataclass(frozen=True)
class ClipStream:
    """The clip's packets in decode order and what a muxer needs to know of the stream."""

    codec: str
    extradata: bytes
    time_base: Fraction
    fps: float
    width: int
    height: int
    synthesised: bool
    packets: tuple[SegmentPacket, ...]
    gop_packets: tuple[int, ...]
    """How many packets each GOP of the clip has, in clip order."""


@dataclass(frozen=True)
class Mp4Clip:
    """An MP4 read back: codec, the avcC/hvcC parameter sets, each sample as NAL units."""

    codec: Codec
    parameter_sets: tuple[bytes, ...]
    units: tuple[Unit, ...]
    keyframes: tuple[bool, ...]


def clip_stream(gops: Sequence[Sequence[bytes]]) -> ClipStream:
    """The clip of these GOPs, each given as its segment files' bytes (in order).

    Raises ExportError when a segment does not parse or the stream's codec or parameter
    sets change inside the clip (a clip has one MP4 track).
    """
    header: dict[str, Any] | None = None
    packets: list[SegmentPacket] = []
    sizes: list[int] = []
    for n, segments in enumerate(gops):
        count = 0
        for data in segments:
            try:
                head, pkts = unpack_segment(data)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ExportError(f"clip GOP {n}: expected a kontur segment, got {exc}") from None
            if not isinstance(head, dict):
                raise ExportError(f"clip GOP {n}: expected a segment header object")
            if "codec" in head:  # a signed end of stream's segment carries no stream facts
                header = _same_stream(header, head, n)
            packets += pkts
            count += len(pkts)
        sizes.append(count)
    if header is None or str(header.get("codec")) not in CODECS:
        got = None if header is None else header.get("codec")
        raise ExportError(f"clip: expected H.264 or H.265 segments, got codec {got!r}")
    try:
        return ClipStream(
            codec=str(header["codec"]),
            extradata=bytes.fromhex(str(header.get("extradata") or "")),
            time_base=_time_base(header),
            fps=float(header.get("fps") or 25.0) or 25.0,
            width=int(header.get("width") or 0),
            height=int(header.get("height") or 0),
            synthesised=header.get("pts") == "synthesised",
            packets=tuple(packets),
            gop_packets=tuple(sizes),
        )
    except (TypeError, ValueError) as exc:
        raise ExportError(f"clip: expected a well-formed segment header, got {exc}") from None


def _same_stream(seen: dict[str, Any] | None, header: dict[str, Any], n: int) -> dict[str, Any]:
    if seen is not None:
        for key in ("codec", "extradata", "time_base"):
            if seen.get(key) != header.get(key):
                raise ExportError(
                    f"clip GOP {n}: expected {key} {str(seen.get(key))[:40]!r} as in the "
                    f"first GOP, got {str(header.get(key))[:40]!r} (one clip, one stream)"
                )
    return header


def _time_base(header: dict[str, Any]) -> Fraction:
    try:
        tb = Fraction(str(header.get("time_base")))
    except (ValueError, ZeroDivisionError):
        return Fraction(1, 90000)
    return tb if tb > 0 else Fraction(1, 90000)


def units_of_segments(stream: ClipStream) -> list[Unit]:
    """Each packet of the clip's segments as NAL units (Annex-B or length-prefixed)."""
    size = _length_size(stream)
    return [_split(p.data, size, CODECS[stream.codec]) for p in stream.packets]


def _length_size(stream: ClipStream) -> int:
    try:
        return parse_extradata(stream.extradata, CODECS[stream.codec])[0]
    except OmsError:
        return 4


def _split(data: bytes, size: int, codec: Codec) -> Unit:
    try:
        return tuple(bytes(n) for n in split_packet(data, size, codec))
    except OmsError:
        return (data,)  # unsplittable bytes compare (and fail) as one unit


def _timeline(stream: ClipStream) -> tuple[list[int], list[int], Fraction]:
    """Presentation and decode times for every packet, and their time base."""
    if stream.synthesised or any(p.pts is None for p in stream.packets):
        rank = _presentation_rank(stream)
        tb = Fraction(1000, max(1, round(stream.fps * 1000)))
        pts = [rank[i] for i in range(len(stream.packets))]
    else:
        tb = stream.time_base
        pts = [int(p.pts or 0) for p in stream.packets]
    used: set[int] = set()
    for i, t in enumerate(pts):  # an SEI-only sample may repeat the last picture's time
        pts[i] = t if t not in used else max(used) + 1
        used.add(pts[i])
    ordered = sorted(pts)
    shift = max([0, *(o - p for o, p in zip(ordered, pts, strict=True))])
    return pts, [o - shift for o in ordered], tb


def _presentation_rank(stream: ClipStream) -> dict[int, int]:
    """Decode once: packet index -> its place in presentation order (a packet that gives
    no picture, such as an SEI-only access unit, goes after the pictures)."""
    ctx: Any = av.CodecContext.create(stream.codec, "r")
    if stream.extradata:
        ctx.extradata = stream.extradata
    order: list[int] = []
    for i, p in enumerate(stream.packets):
        packet = padded_packet(p.data, i)
        packet.dts = i
        try:
            order += [int(f.pts) for f in ctx.decode(packet) if f.pts is not None]
        except av.FFmpegError:
            continue
    with contextlib.suppress(av.FFmpegError):
        order += [int(f.pts) for f in ctx.decode(None) if f.pts is not None]
    rank = {i: n for n, i in enumerate(dict.fromkeys(order))}
    for i in range(len(stream.packets)):
        rank.setdefault(i, len(rank))
    return rank


def write_mp4(stream: ClipStream) -> bytes:
    """The clip as MP4 bytes: every packet one sample, nothing re-encoded."""
    pts, dts, tb = _timeline(stream)
    buf = io.BytesIO()
    with _template(stream) as template, av.open(buf, "w", format="mp4") as out:
        ost: Any = out.add_stream_from_template(template)
        ctx = ost.codec_context
        ctx.extradata = stream.extradata or None
        ctx.width, ctx.height = stream.width, stream.height
        ost.time_base = tb
        for p, t, d in zip(stream.packets, pts, dts, strict=True):
            packet = av.Packet(p.data)
            packet.pts, packet.dts, packet.time_base = t, d, tb
            packet.is_keyframe, packet.stream = p.keyframe, ost
            out.mux(packet)
    return buf.getvalue()


def _template(stream: ClipStream) -> Any:
    """An input stream of the clip's codec for ``add_stream_from_template``: PyAV opens an
    encoder for a stream made any other way, and a muxed-only stream takes no extradata.
    It is a raw Annex-B stream of the parameter sets and the first access unit."""
    codec = CODECS[stream.codec]
    ps = [] if not stream.extradata else _parameter_sets(stream.extradata, codec)
    first = _split(stream.packets[0].data, _length_size(stream), codec) if stream.packets else ()
    raw = b"".join(b"\x00\x00\x00\x01" + n for n in (*ps, *first))
    try:
        container = av.open(io.BytesIO(raw), format=stream.codec)
    except av.FFmpegError as exc:
        raise ExportError(f"clip: expected a demuxable {stream.codec} stream, got {exc}") from None
    return _Template(container)


def _parameter_sets(extradata: bytes, codec: Codec) -> list[bytes]:
    try:
        return parse_extradata(extradata, codec)[1]
    except OmsError:
        return []


class _Template:
    """Context manager yielding the template container's video stream."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def __enter__(self) -> Any:
        if not self._container.streams.video:
            self._container.close()
            raise ExportError("clip: expected a video stream in the template, got none")
        return self._container.streams.video[0]

    def __exit__(self, *exc: object) -> None:
        self._container.close()


def read_mp4(file: IO[bytes]) -> Mp4Clip:
    """Read an MP4 (or any container PyAV reads) back: its samples as NAL units.

    Raises BundleInputError when it is not a readable H.264/H.265 video.
    """
    try:
        container: Any = av.open(file, "r")
    except (OSError, av.FFmpegError) as exc:
        raise BundleInputError(f"clip: expected an MP4 file, got {exc}") from None
    with container:
        if not container.streams.video:
            raise BundleInputError("clip: expected a video stream, got none")
        vs = container.streams.video[0]
        codec = CODECS.get(vs.codec_context.name)
        if codec is None:
            raise BundleInputError(f"clip: expected H.264/H.265, got {vs.codec_context.name}")
        extradata = bytes(vs.codec_context.extradata or b"")
        try:
            size, ps = parse_extradata(extradata, codec)
        except OmsError as exc:
            raise BundleInputError(f"clip: expected avcC/hvcC extradata, got {exc}") from None
        units, keys = [], []
        try:
            for p in container.demux(vs):
                if p.size:
                    units.append(_split(bytes(p), size, codec))
                    keys.append(bool(p.is_keyframe))
        except av.FFmpegError as exc:
            raise BundleInputError(f"clip: expected a readable MP4, got {exc}") from None
    return Mp4Clip(codec, tuple(bytes(n) for n in ps), tuple(units), tuple(keys))
