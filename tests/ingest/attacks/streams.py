"""Builders for the attack suite: real footage in, signed and then tampered MP4 files out.

Everything works on demuxed packets (one access unit each, length-prefixed NAL units as MP4
stores them) and writes them back with PyAV, stream-copied: no picture is re-encoded after
signing. A :class:`Clip` is the packet list of one file plus what is needed to mux it again
(the source file as stream template, the codec extradata).

GOPs are cut the way ingest cuts them (:mod:`kontur.ingest.source`): a GOP starts at a
keyframe packet. In a kontur-signed stream the SEI that signs GOP ``k`` sits in the second
access unit of GOP ``k+1``; the final SEI-only access unit belongs to the last GOP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av

from kontur.ingest.oms.nal import Codec, NalKind, parse_nal_header, split_packet
from kontur.ingest.oms.sei import OmsSei, is_oms_sei

__all__ = [
    "Clip",
    "Packet",
    "encode",
    "flip",
    "join_nals",
    "read_clip",
    "strip_oms",
    "utc",
]

_CODECS = {"h264": Codec.H264, "hevc": Codec.H265}


@dataclass(frozen=True)
class Packet:
    """One demuxed access unit."""

    data: bytes
    pts: int | None
    dts: int | None
    duration: int
    keyframe: bool

    def nals(self) -> list[bytes]:
        """The NAL units of the packet (4-byte length prefixes, as written by PyAV/kontur)."""
        return split_packet(self.data, 4)

    def with_nals(self, nals: Sequence[bytes]) -> Packet:
        """The same packet carrying ``nals`` instead."""
        return replace(self, data=join_nals(nals))


def join_nals(nals: Sequence[bytes]) -> bytes:
    """Length-prefixed (4 bytes) framing of ``nals``."""
    return b"".join(len(n).to_bytes(4, "big") + n for n in nals)


def flip(data: bytes, pos: int, mask: int = 0x01) -> bytes:
    """``data`` with the bits of ``mask`` flipped at ``pos``."""
    return data[:pos] + bytes([data[pos] ^ mask]) + data[pos + 1 :]


@dataclass(frozen=True)
class Clip:
    """The packets of one video file and how to mux them again."""

    template: Path
    codec: Codec
    extradata: bytes
    packets: tuple[Packet, ...]

    # -- reading the structure -----------------------------------------------------------

    def gops(self) -> list[list[Packet]]:
        """Packets cut into GOPs at keyframes (as ingest cuts them)."""
        out: list[list[Packet]] = []
        for p in self.packets:
            if p.keyframe or not out:
                out.append([])
            out[-1].append(p)
        return out

    def is_sei(self, nal: bytes) -> bool:
        """Whether ``nal`` is an ONVIF Media Signing SEI."""
        return is_oms_sei(nal, self.codec)

    def is_slice(self, nal: bytes) -> bool:
        """Whether ``nal`` is a coded slice."""
        return parse_nal_header(nal, self.codec).is_slice

    def is_parameter_set(self, nal: bytes) -> bool:
        """Whether ``nal`` is an SPS/PPS/VPS."""
        return parse_nal_header(nal, self.codec).kind is NalKind.PARAMETER_SET

    def seis(self) -> list[tuple[int, int]]:
        """(packet index, NAL index) of every OMS SEI, in order."""
        return [
            (i, j)
            for i, p in enumerate(self.packets)
            for j, n in enumerate(p.nals())
            if self.is_sei(n)
        ]

    def sei(self, index: int) -> OmsSei:
        """The ``index``-th OMS SEI, parsed."""
        i, j = self.seis()[index]
        return OmsSei.from_nal(self.packets[i].nals()[j], self.codec)

    # -- building variants ---------------------------------------------------------------

    def with_packets(self, packets: Sequence[Packet], *, restamp: bool = False) -> Clip:
        """The clip with other packets (``restamp``: consecutive timestamps, no B-frames)."""
        if restamp:
            step = max(p.duration for p in packets) or 1
            packets = [replace(p, pts=i * step, dts=i * step) for i, p in enumerate(packets)]
        return replace(self, packets=tuple(packets))

    def from_gops(self, gops: Sequence[Sequence[Packet]]) -> Clip:
        """The clip made of ``gops`` in this order, restamped."""
        return self.with_packets([p for g in gops for p in g], restamp=True)

    def map_nals(self, fn: Callable[[int, int, bytes], bytes | None]) -> Clip:
        """Every NAL unit through ``fn(packet index, nal index, nal)``; None drops it.

        A packet left without NAL units is dropped.
        """
        out: list[Packet] = []
        for i, p in enumerate(self.packets):
            kept = [m for j, n in enumerate(p.nals()) if (m := fn(i, j, n)) is not None]
            if kept:
                out.append(p.with_nals(kept))
        return replace(self, packets=tuple(out))

    def times(self) -> list[tuple[int, float]]:
        """(GOP, presentation time in s) of every packet."""
        tb = _time_base(self.template)
        out, gop = [], -1
        for p in self.packets:
            gop += p.keyframe
            assert p.pts is not None
            out.append((gop, float(p.pts * tb)))
        return out

    def with_times(self, seconds: Sequence[float]) -> Clip:
        """The same packets at other presentation times (s): only the container's timestamps
        change, never a byte of the bitstream. No B-frames assumed: dts = pts."""
        tb = _time_base(self.template)
        ticks = [round(t / tb) for t in seconds]
        packets = [replace(p, pts=t, dts=t) for p, t in zip(self.packets, ticks, strict=True)]
        return self.with_packets(packets)

    def gop_start(self, gop: int) -> int:
        """Packet index of the first packet of GOP ``gop``."""
        return sum(len(g) for g in self.gops()[:gop])

    # -- writing -------------------------------------------------------------------------

    def write(self, target: Path) -> Path:
        """Mux the packets into ``target`` (MP4), stream-copied from the template's stream."""
        with av.open(str(self.template)) as src, av.open(str(target), "w") as dst:
            stream = src.streams.video[0]
            ostream = dst.add_stream_from_template(stream)
            if self.extradata != bytes(stream.codec_context.extradata or b""):
                ostream.codec_context.extradata = self.extradata
            time_base = stream.time_base
            assert time_base is not None
            for p in self.packets:
                out = av.Packet(p.data)
                out.pts, out.dts, out.duration = p.pts, p.dts, p.duration
                out.time_base = time_base
                out.is_keyframe = p.keyframe
                out.stream = ostream
                dst.mux(out)
        return target


def _time_base(path: Path) -> Fraction:
    with av.open(str(path)) as c:
        tb = c.streams.video[0].time_base
    assert tb is not None
    return Fraction(tb)


def read_clip(path: Path) -> Clip:
    """The video packets of ``path`` (empty packets skipped)."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        codec = _CODECS[stream.codec_context.name]
        packets = tuple(
            Packet(bytes(p), p.pts, p.dts, int(p.duration or 0), bool(p.is_keyframe))
            for p in c.demux(stream)
            if p.size
        )
        extradata = bytes(stream.codec_context.extradata or b"")
    return Clip(path, codec, extradata, packets)


def strip_oms(source: Path, target: Path) -> Path:
    """An unsigned copy of ``source``: its OMS SEIs removed (SEI-only packets dropped)."""
    clip = read_clip(source)
    return clip.map_nals(lambda _i, _j, n: None if clip.is_sei(n) else n).write(target)


def encode(
    source: Path,
    target: Path,
    *,
    start: int = 0,
    frames: int = 120,
    gop: int = 10,
    size: tuple[int, int] | None = None,
    rate: int = 10,
) -> Path:
    """Re-encode ``frames`` pictures of ``source`` from ``start`` to H.264 MP4 (libx264).

    Fixed GOP of ``gop`` frames, no B-frames, in-band SPS/PPS at every IDR (so that clips
    of different encodes can be concatenated); ``size`` scales the pictures.
    """
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        istream = src.streams.video[0]
        width, height = size or (istream.width, istream.height)
        ostream = dst.add_stream("libx264", rate=rate)
        ostream.width, ostream.height, ostream.pix_fmt = width, height, "yuv420p"
        ostream.time_base = Fraction(1, rate)
        ostream.options = {
            "preset": "ultrafast",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:repeat-headers=1",
        }
        n = 0
        for index, frame in enumerate(src.decode(istream)):
            if index < start:
                continue
            if n == frames:
                break
            picture = frame.reformat(width=width, height=height, format="yuv420p")
            picture.pts, picture.time_base = n, Fraction(1, rate)
            for packet in ostream.encode(picture):
                dst.mux(packet)
            n += 1
        for packet in ostream.encode(None):
            dst.mux(packet)
    return target


def utc(seconds: float) -> dt.datetime:
    """Epoch seconds as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def enrolled_signed_clip(tmp: Path, source: Path, frames: int, gop: int) -> tuple[Path, Path]:
    """A site inventory (``tmp/data``) with camera ``cam`` enrolled, and the first ``frames``
    pictures of ``source`` (GOPs of ``gop``) signed by that camera, captured until about now:
    (the data dir, the signed clip)."""
    import time

    from kontur.clock import SystemClock
    from kontur.ingest.inventory import Inventory
    from kontur.ingest.oms.keys import load_signing_identity
    from kontur.ingest.oms.writer import sign_file

    data = tmp / "data"
    with Inventory.open(data, SystemClock()) as inv:
        inv.init_ca()
        issued = inv.issue("cam", tmp / "keys")
        chain = issued.chain_path.read_bytes()
        inv.enroll("cam", chain)
    identity = load_signing_identity(issued.key_path.read_bytes(), chain)
    raw = encode(source, tmp / "raw.mp4", frames=frames, gop=gop)
    signed = tmp / "signed.mp4"
    sign_file(raw, signed, identity, utc(time.time() - 6))
    return data, signed
