"""Sign a video file: demux with PyAV, run :class:`~kontur.ingest.oms.signer.OmsSigner`, remux.

The I/O shell around the pure signer. Packets pass through **without re-encoding**: every
NAL unit is kept byte for byte, the OMS SEIs are inserted into the packets (length-prefixed
in MP4/MKV samples, Annex-B with start codes in raw ``.h264``/``.h265``), the codec
extradata (avcC/hvcC) and the timestamps are kept. The final, end-of-stream SEI becomes an
SEI-only access unit with a non-zero duration so that demuxers deliver it (the reference's
own MP4s lose it, see quirk 1 of the vector README). Audio streams are copied as they are
into MP4/MKV outputs (when the muxer takes them); raw outputs hold the video only. Other
streams (subtitles, data) are dropped; the summary lists what was dropped.

The SEIs carry no emulation prevention (as the reference writes them) in length-prefixed
output. In Annex-B output, where a start-code pattern inside the SEI payload would cut the
NAL unit, emulation prevention is applied to the OMS SEIs (reserved bit 6 stays 0: the
document was hashed without it, which validators undo before hashing).

Outputs go to a temporary file next to the target and are renamed into place only when
complete; a failure leaves no partial output.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from kontur.ingest.oms.errors import NalParseError
from kontur.ingest.oms.keys import SignedOutputError, SignerInputError, SigningIdentity
from kontur.ingest.oms.nal import (
    Codec,
    add_emulation_prevention,
    is_annexb,
    parse_extradata,
    parse_nal_header,
    split_packet,
)
from kontur.ingest.oms.sei import is_oms_sei
from kontur.ingest.oms.signer import OmsSigner, SignedAccessUnit, SignerOptions

__all__ = [
    "CONTAINER_FORMATS",
    "RAW_SUFFIXES",
    "SignSummary",
    "output_format",
    "sign_file",
]

#: Output suffix -> FFmpeg muxer name.
CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
#: Raw Annex-B output suffixes and the codec each one holds.
RAW_SUFFIXES = {
    ".h264": Codec.H264,
    ".264": Codec.H264,
    ".h265": Codec.H265,
    ".265": Codec.H265,
    ".hevc": Codec.H265,
}
_CODECS = {"h264": Codec.H264, "hevc": Codec.H265}
_RAW_INPUTS = {".h264": "h264", ".264": "h264", ".h265": "hevc", ".265": "hevc", ".hevc": "hevc"}
_START_CODE = b"\x00\x00\x00\x01"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SignSummary:
    """What :func:`sign_file` did."""

    input: str
    output: str
    codec: str
    container: str
    access_units: int
    gops_signed: int
    seis: int
    sei_bytes: int
    input_bytes: int
    output_bytes: int
    certificate_sei: bool
    kontur_extensions: bool
    copied_streams: int
    dropped_streams: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {**self.__dict__, "dropped_streams": list(self.dropped_streams)}


def output_format(path: Path, codec: Codec) -> str:
    """The muxer for ``path`` (``"raw"`` for Annex-B); raises :class:`SignedOutputError`."""
    suffix = path.suffix.lower()
    if suffix in CONTAINER_FORMATS:
        return CONTAINER_FORMATS[suffix]
    if suffix in RAW_SUFFIXES:
        if RAW_SUFFIXES[suffix] is not codec:
            raise SignedOutputError(
                f"expected a {codec.value} output suffix for {codec.value} video, got {suffix!r}"
            )
        return "raw"
    known = ", ".join(sorted({*CONTAINER_FORMATS, *RAW_SUFFIXES}))
    raise SignedOutputError(f"expected an output suffix among {known}, got {suffix or 'none'!r}")


def _publish(tmp: Path, target: Path) -> None:
    """Move the finished ``tmp`` to ``target``, never over a file there: a hard link fails
    when the name exists (a check before writing leaves a window for one to appear). A file
    system without hard links gets a rename after the same check."""
    exists = f"--out {target}: expected a new file, got an existing one (remove it first)"
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise SignerInputError(exists) from None
    except OSError:  # no hard links here (EPERM, ENOTSUP): checked, then renamed
        if target.exists():
            raise SignerInputError(exists) from None
        os.replace(tmp, target)
        return
    tmp.unlink()


def sign_file(
    source: Path,
    target: Path,
    identity: SigningIdentity,
    base_time: dt.datetime,
    options: SignerOptions | None = None,
    progress: Progress | None = None,
) -> SignSummary:
    """Sign ``source`` into ``target``; capture time of each access unit = ``base_time`` + pts.

    Raises :class:`SignerInputError` (unreadable input, not H.264/H.265, already signed) and
    :class:`SignedOutputError` (bad suffix, unwritable target).
    """
    options = options or SignerOptions()
    try:
        container = av.open(str(source), format=_RAW_INPUTS.get(source.suffix.lower()))
    except (av.error.FFmpegError, OSError) as exc:
        raise SignerInputError(f"expected a readable video file at {source}, got: {exc}") from None
    with container:
        if not container.streams.video:
            raise SignerInputError(f"expected a video stream in {source}, found none")
        stream = container.streams.video[0]
        codec = _codec_of(stream, source)
        if "avi" in container.format.name.split(",") and stream.codec_context.has_b_frames:
            # AVI stores decode-order stamps only: copied packets would get wrong pts
            raise SignerInputError(
                f"expected presentation timestamps in {source}, got an AVI with B-frames, "
                "which carries none: remux it to MP4/MKV first"
            )
        fmt = output_format(target, codec)
        # VPS/SPS/PPS only (an hvcC's SEI arrays are left out): the claim is the same in
        # every container, so a raw copy of the output still validates
        length_size, parameter_sets = parse_extradata(stream.codec_context.extradata, codec)
        signer = OmsSigner(codec, identity, options, parameter_sets)
        job = _Job(container, stream, codec, length_size, signer, base_time, progress)
        tmp = _temp_path(target)
        try:
            if fmt == "raw":
                _write_raw(job, tmp, parameter_sets)
            else:
                _write_container(job, tmp, fmt)
            _publish(tmp, target)
        except av.error.FFmpegError as exc:
            tmp.unlink(missing_ok=True)
            raise SignerInputError(
                f"expected {source} to remux cleanly, FFmpeg failed after "
                f"{job.access_units} access units: {exc}"
            ) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return SignSummary(
        input=str(source),
        output=str(target),
        codec=codec.value,
        container=fmt,
        access_units=job.access_units,
        gops_signed=signer.gops_signed,
        seis=signer.seis_emitted,
        sei_bytes=job.sei_bytes,
        input_bytes=source.stat().st_size,
        output_bytes=target.stat().st_size,
        certificate_sei=options.certificate_sei,
        kontur_extensions=options.kontur_extensions,
        copied_streams=job.copied,
        dropped_streams=tuple(job.dropped),
    )


def _codec_of(stream: Any, source: Path) -> Codec:
    name = stream.codec_context.name
    if name not in _CODECS:
        raise SignerInputError(f"expected H.264 or H.265 video in {source}, got {name}")
    return _CODECS[name]


def _temp_path(target: Path) -> Path:
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise SignedOutputError(f"expected an existing directory for {target}, got none")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=directory)
    except OSError as exc:
        raise SignedOutputError(
            f"expected a writable directory for {target}: {exc.strerror}"
        ) from None
    os.close(fd)
    return Path(name)


class _Job:
    """One signing run: iterates the input packets and signs them access unit by access unit."""

    def __init__(
        self,
        container: Any,
        stream: Any,
        codec: Codec,
        length_size: int,
        signer: OmsSigner,
        base_time: dt.datetime,
        progress: Progress | None,
    ) -> None:
        self.container, self.stream, self.codec = container, stream, codec
        self.length_size, self.signer, self.base_time = length_size, signer, base_time
        self.progress = progress
        self.total = int(stream.frames or 0)
        self.access_units = 0
        self.sei_bytes = 0
        self.annexb_input = False
        self.copied = 0
        self.dropped: list[str] = [
            f"{s.type} {s.codec_context.name}"
            for s in container.streams
            if s.index != stream.index and s.type != "audio"
        ]
        self._first_pts: int | None = None

    def signed_packets(self, *others: Any) -> Iterator[tuple[Any, SignedAccessUnit | None]]:
        """(input packet, signed access unit) for every non-empty video packet, in order;
        packets of the ``others`` streams (audio) come through as (packet, None)."""
        for packet in self.container.demux(self.stream, *others):
            if packet.size == 0:
                continue
            if packet.stream.index != self.stream.index:
                yield packet, None
                continue
            data = bytes(packet)
            self.annexb_input = is_annexb(data)
            try:
                nals = split_packet(data, self.length_size, self.codec)
            except NalParseError as exc:
                raise SignerInputError(
                    f"expected well-formed NAL units in access unit {self.access_units} "
                    f"(pts {packet.pts}): {exc}"
                ) from None
            signed = self.signer.sign_access_unit(nals, self._capture_time(packet))
            self.access_units += 1
            self.sei_bytes += signed.sei_bytes
            if self.progress is not None:
                self.progress(self.access_units, self.total)
            yield packet, signed

    def finish(self) -> SignedAccessUnit | None:
        """The final SEI-only access unit."""
        final = self.signer.finish()
        if final is not None:
            self.sei_bytes += final.sei_bytes
        return final

    def _capture_time(self, packet: Any) -> dt.datetime:
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None or packet.time_base is None:
            return self.base_time
        if self._first_pts is None:
            self._first_pts = ts
        offset = Fraction(ts - self._first_pts) * Fraction(packet.time_base)
        return self.base_time + dt.timedelta(microseconds=round(offset * 1_000_000))

    def frame(self, au: SignedAccessUnit) -> bytes:
        """Packet bytes of ``au`` in the input framing (Annex-B SEIs get emulation prevention)."""
        if self.annexb_input:
            return annexb_bytes(au.nal_units, self.codec)
        size = self.length_size
        return b"".join(len(n).to_bytes(size, "big") + n for n in au.nal_units)


def annexb_bytes(nal_units: tuple[bytes, ...] | list[bytes], codec: Codec) -> bytes:
    """Annex-B bytes of ``nal_units``; OMS SEIs get emulation prevention bytes."""
    out = bytearray()
    for nal in nal_units:
        if is_oms_sei(nal, codec):
            nal = add_emulation_prevention(nal)
        out += _START_CODE + nal
    return bytes(out)


def _write_container(job: _Job, tmp: Path, fmt: str) -> None:
    try:
        output = av.open(str(tmp), "w", format=fmt)
    except (av.error.FFmpegError, OSError) as exc:
        raise SignedOutputError(f"expected a writable output {tmp}, got: {exc}") from None
    with output:
        ostream = output.add_stream_from_template(job.stream)
        copies = _copy_streams(job, output)
        time_base = job.stream.time_base
        last: tuple[int, int, int] | None = None  # (dts, end of presentation, duration)
        targets = {src.index: dst for src, dst in copies}
        for packet, signed in job.signed_packets(*(src for src, _ in copies)):
            if signed is None:  # audio: passed through as is
                packet.stream = targets[packet.stream.index]
                output.mux(packet)
                continue
            out = av.Packet(job.frame(signed))
            out.pts, out.dts, out.duration = packet.pts, packet.dts, packet.duration
            out.time_base = time_base
            out.is_keyframe = packet.is_keyframe
            out.stream = ostream
            output.mux(out)
            last = _advance(last, packet)
        final = job.finish()
        if final is not None and last is not None:
            dts, end, duration = last
            out = av.Packet(job.frame(final))
            out.dts, out.pts, out.duration = dts + duration, max(end, dts + duration), duration
            out.time_base = time_base
            out.stream = ostream
            output.mux(out)


def _copy_streams(job: _Job, output: Any) -> list[tuple[Any, Any]]:
    """Output streams for the input's audio streams the muxer takes; the rest is dropped."""
    copies: list[tuple[Any, Any]] = []
    for stream in job.container.streams.audio:
        try:
            copies.append((stream, output.add_stream_from_template(stream)))
        except (av.error.FFmpegError, ValueError):
            job.dropped.append(f"{stream.type} {stream.codec_context.name}")
    job.copied = len(copies)
    return copies


def _advance(last: tuple[int, int, int] | None, packet: Any) -> tuple[int, int, int]:
    duration = int(packet.duration or (last[2] if last else 1) or 1)
    dts = packet.dts if packet.dts is not None else (packet.pts or 0)
    pts = packet.pts if packet.pts is not None else dts
    end = max(pts + duration, last[1] if last else 0)
    return dts, end, duration


def _write_raw(job: _Job, tmp: Path, parameter_sets: list[bytes]) -> None:
    try:
        handle = tmp.open("wb")
    except OSError as exc:
        raise SignedOutputError(f"expected a writable output {tmp}, got {exc.strerror}") from None
    with handle:
        job.dropped += [f"audio {s.codec_context.name}" for s in job.container.streams.audio]
        for _packet, signed in job.signed_packets():
            assert signed is not None  # only the video stream is demuxed
            nals = list(signed.nal_units)
            infos = [parse_nal_header(n, job.codec) for n in nals]
            has_ps = any(i.is_parameter_set for i in infos)
            if parameter_sets and not has_ps and any(i.starts_gop for i in infos):
                nals = [*parameter_sets, *nals]  # like FFmpeg's mp4toannexb: PS before each IDR
            handle.write(annexb_bytes(nals, job.codec))
        final = job.finish()
        if final is not None:
            handle.write(annexb_bytes(final.nal_units, job.codec))
