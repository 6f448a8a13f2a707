"""I/O shell: demux a file into access units and run the pure validator over them.

MP4/MKV samples are length-prefixed (AVCC/HVCC, length size from the extradata); raw
``.h264``/``.h265``/``.264``/``.265``/``.hevc`` files are Annex-B byte streams, demuxed by
PyAV's ``h264``/``hevc`` parsers into access units. The framing of every packet is checked
(:func:`~kontur.ingest.oms.nal.is_annexb`), so an MP4 with Annex-B samples also works.
Packets are read as delivered (no conversion to Annex-B: the reference writes SEIs without
emulation prevention, README quirk 7).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import av
from cryptography import x509

from kontur.ingest.oms.errors import NalParseError, OmsLimitExceeded, OmsReadError
from kontur.ingest.oms.limits import MAX_ACCESS_UNIT_BYTES
from kontur.ingest.oms.nal import (
    Codec,
    is_annexb,
    parse_extradata,
    split_annexb,
    split_length_prefixed_views,
    split_packet,
)
from kontur.ingest.oms.validator import AccessUnit, OmsValidator, SignedGopResult

__all__ = ["read_access_units", "validate_file"]

_RAW_FORMATS = {".h264": "h264", ".264": "h264", ".h265": "hevc", ".265": "hevc", ".hevc": "hevc"}
_CODECS = {"h264": Codec.H264, "hevc": Codec.H265, "h265": Codec.H265}


def read_access_units(
    path: str | Path, file: BinaryIO | None = None
) -> tuple[Codec, list[bytes], Iterator[AccessUnit]]:
    """Codec, container parameter sets and the access units (decode order) of ``path``
    (read from ``file`` when given: an open descriptor in a sandbox; ``path`` then only
    names it and picks the raw-stream parser from its suffix).

    Raises :class:`OmsReadError` when the file cannot be opened, has no H.264/H.265 video
    or its extradata does not parse.
    """
    return _open_units(path, views=False, file=file)


def _open_units(
    path: str | Path, *, views: bool, file: BinaryIO | None = None
) -> tuple[Codec, list[bytes], Iterator[AccessUnit]]:
    """:func:`read_access_units`; with ``views`` the NAL units are read-only memoryviews
    into the packets (no copy), for a consumer that does not keep them (the validator)."""
    path = Path(path)
    fmt = _RAW_FORMATS.get(path.suffix.lower())
    try:
        container = av.open(str(path) if file is None else file, "r", format=fmt)
    except (OSError, av.FFmpegError) as exc:
        raise OmsReadError(f"cannot open {path}: {exc}") from None
    if not container.streams.video:
        container.close()
        raise OmsReadError(f"{path}: expected a video stream, found none")
    stream = container.streams.video[0]
    name = stream.codec_context.name
    if name not in _CODECS:
        container.close()
        raise OmsReadError(f"{path}: expected H.264 or H.265 video, got {name}")
    codec = _CODECS[name]
    try:
        length_size, ps = parse_extradata(stream.codec_context.extradata, codec)
    except NalParseError as exc:
        container.close()
        raise OmsReadError(f"{path}: {exc}") from None
    return codec, ps, _packets(container, stream, length_size, path, codec, views)


def _packets(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    length_size: int,
    path: Path,
    codec: Codec,
    views: bool,
) -> Iterator[AccessUnit]:
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.size > MAX_ACCESS_UNIT_BYTES:
                raise OmsLimitExceeded(
                    f"{path}: packet of {packet.size} bytes exceeds {MAX_ACCESS_UNIT_BYTES}"
                )
            try:
                nals = _split(packet, length_size, codec, views)
            except NalParseError as exc:
                raise OmsReadError(f"{path}: packet at pts {packet.pts}: {exc}") from None
            yield AccessUnit(nals, packet.pts, bool(packet.is_keyframe))
    except av.FFmpegError as exc:
        raise OmsReadError(f"{path}: demux failed: {exc}") from None
    finally:
        container.close()


def _split(
    packet: av.Packet[av.video.stream.VideoStream], length_size: int, codec: Codec, views: bool
) -> tuple[bytes | memoryview, ...]:
    if not views:
        return tuple(split_packet(bytes(packet), length_size, codec))
    view = memoryview(packet).toreadonly()  # keeps the packet alive
    if is_annexb(view, length_size):
        return tuple(split_annexb(view, codec))
    return tuple(split_length_prefixed_views(view, length_size))


def validate_file(
    path: str | Path,
    trust_anchors: Sequence[x509.Certificate],
    reference_time: datetime,
    *,
    require_parameter_set_claim: bool = False,
) -> list[SignedGopResult]:
    """Validate every GOP of ``path``; results ordered by GOP index."""
    codec, ps, units = _open_units(path, views=True)
    validator = OmsValidator(
        codec,
        trust_anchors,
        reference_time=reference_time,
        require_parameter_set_claim=require_parameter_set_claim,
    )
    validator.set_parameter_sets(ps)
    results: list[SignedGopResult] = []
    for au in units:
        results += validator.push(au)
    results += validator.finish(reference_time)
    return sorted(results, key=lambda r: r.index)
