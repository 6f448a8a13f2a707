"""Drive the reference C library (onvif/media-signing-framework r25.12.3) over video files.

    python reference.py sign SOURCE TARGET.mkv [lowbitrate] [certsei]
    python reference.py validate FILE CA.pem

``sign`` signs the access units of SOURCE with ``oms_sign`` (the reference library; key
``tests/ec_signing.key`` and chain ``tests/ec_cert_chain.pem`` of the reference repository,
next to this file; capture time 2026-06-01 12:00 UTC + pts) and muxes the result into
TARGET with the original timestamps, the final SEI-only access unit one frame after the
last. ``validate`` feeds every NAL unit of FILE (container parameter sets first) to
``oms_validate`` and prints its reports. Build both as the README of ``vectors/`` says.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from kontur.ingest.oms.nal import Codec, parse_extradata, split_packet
from kontur.ingest.oms.reader import read_access_units
from kontur.ingest.oms.sei import datetime_to_filetime

HERE = Path(__file__).parent
BASE = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def sign(source: str, target: str, low_bitrate: bool, certificate_sei: bool) -> None:
    """Sign ``source`` into ``target`` with the reference library."""
    with av.open(source) as container:
        stream = container.streams.video[0]
        codec = Codec.H264 if stream.codec_context.name == "h264" else Codec.H265
        size, _ = parse_extradata(stream.codec_context.extradata, codec)
        packets = [
            (p.pts, p.dts, p.duration, split_packet(bytes(p), size, codec))
            for p in container.demux(stream)
            if p.size
        ]
        time_base = stream.time_base
    assert time_base is not None
    first = packets[0][0] or 0
    with tempfile.TemporaryDirectory() as tmp:
        raw_in, raw_out = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        with raw_in.open("wb") as f:
            for pts, _, _, nals in packets:
                offset = float(Fraction((pts or 0) - first) * time_base)
                when = BASE + dt.timedelta(microseconds=round(offset * 1e6))
                f.write(_u32(len(nals)) + datetime_to_filetime(when).to_bytes(8, "big"))
                f.writelines(_u32(len(n)) + n for n in nals)
        command = [
            str(HERE / "oms_sign"),
            "1" if codec is Codec.H265 else "0",
            str(HERE / "ec_signing.key"),
            str(HERE / "ec_cert_chain.pem"),
            "1" if low_bitrate else "0",
            "1" if certificate_sei else "0",
            str(raw_in),
            str(raw_out),
        ]
        subprocess.run(command, check=True)
        units = _read_units(raw_out.read_bytes())
    assert len(units) == len(packets) + 1
    with av.open(source) as container, av.open(target, "w") as out:
        ostream = out.add_stream_from_template(container.streams.video[0])
        for (pts, dts, duration, _), nals in zip(packets, units, strict=False):
            _mux(ostream, nals, size, (pts, dts, duration, time_base))
        pts, dts, duration, _ = packets[-1]
        step = duration or 1
        end = (dts if dts is not None else pts or 0) + step
        _mux(ostream, units[-1], size, (max((pts or 0) + step, end), end, step, time_base))


def _read_units(data: bytes) -> list[list[bytes]]:
    units: list[list[bytes]] = []
    pos = 0
    while pos < len(data):
        count = int.from_bytes(data[pos : pos + 4], "big")
        pos += 12  # count, timestamp
        nals = []
        for _ in range(count):
            size = int.from_bytes(data[pos : pos + 4], "big")
            nals.append(data[pos + 4 : pos + 4 + size])
            pos += 4 + size
        units.append(nals)
    return units


def _mux(ostream: Any, nals: list[bytes], size: int, times: tuple[Any, ...]) -> None:
    packet = av.Packet(b"".join(len(n).to_bytes(size, "big") + n for n in nals))
    packet.pts, packet.dts, packet.duration, packet.time_base = times
    packet.stream = ostream
    ostream.container.mux(packet)


def validate(path: str, ca: str) -> None:
    """Print the reference validator's reports for ``path`` trusting ``ca``."""
    codec, parameter_sets, units = read_access_units(path)
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.writelines(_u32(len(n)) + n for n in parameter_sets)
        f.writelines(_u32(len(n)) + bytes(n) for au in units for n in au.nals)
        f.flush()
        flag = "1" if codec is Codec.H265 else "0"
        subprocess.run([str(HERE / "oms_validate"), flag, ca, f.name], check=True)


if __name__ == "__main__":
    if sys.argv[1] == "sign":
        sign(sys.argv[2], sys.argv[3], "lowbitrate" in sys.argv[4:], "certsei" in sys.argv[4:])
    else:
        validate(sys.argv[2], sys.argv[3])
