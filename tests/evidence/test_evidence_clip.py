"""The clip: segments remuxed into MP4 keep every NAL unit and their Media Signing.

Real signed footage: the ONVIF interoperability vectors signed by the reference library
(H.264 and H.265, with B-frames), cut into segments the way ingest stores them.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest
from cryptography import x509
from tests.conftest import shared

from kontur.evidence.clip import clip_stream, read_mp4, units_of_segments, write_mp4
from kontur.evidence.media import validate_clip
from kontur.ingest.segment import pack_segment
from kontur.ingest.source import probe, read_gops

REFERENCE_TIME = datetime(2026, 11, 30, tzinfo=UTC)  # as tests/ingest/oms/test_oms_vectors.py


def _segments(path: Path) -> list[list[bytes]]:
    """One kontur segment per GOP, as ingest stores them."""
    src = str(path)
    return [[pack_segment(g.header, g.packets)] for g in read_gops(src, probe(src), decode=False)]


def _picture_times(mp4: bytes) -> list[int]:
    """Presentation times of the decoded pictures; an SEI-only sample (the signed end of
    stream) gives none, and the decoder says so with InvalidDataError."""
    times: list[int] = []
    with av.open(io.BytesIO(mp4)) as container:
        for packet in container.demux(video=0):
            try:
                times += [f.pts for f in packet.decode()]
            except av.InvalidDataError:
                continue
    return times


def _anchors() -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(shared("oms", "keys", "ca_ec.pem").read_bytes())


@pytest.mark.parametrize(
    "vector",
    ["streams/pets_h265_default.mp4", "streams/car_h264_bframes_mkv.mkv"],
    ids=["h265", "h264-bframes-mkv"],
)
def test_remux_keeps_every_nal_unit_and_the_signature(vector: str) -> None:
    segments = _segments(shared("oms", *vector.split("/")))
    stream = clip_stream(segments)
    mp4 = write_mp4(stream)
    clip = read_mp4(io.BytesIO(mp4))
    assert list(clip.units) == units_of_segments(stream)
    results, dropped = validate_clip(
        clip.codec, clip.parameter_sets, clip.units, _anchors(), REFERENCE_TIME
    )
    assert dropped == 0 and len(results) == len(segments)
    assert {r.result.value for r in results} == {"authentic"}
    times = _picture_times(mp4)
    assert len(times) >= len(clip.units) - 1  # every picture (the last sample may be EOS)
    assert times == sorted(set(times))  # B-frames in presentation order


def test_a_clip_cut_from_the_middle_drops_only_its_lead_in_sei() -> None:
    """GOP 3 onwards of a ten-GOP stream: GOP 3 carries GOP 2's SEI, which signs nothing in
    the clip; without dropping it GOP 3 would read NOT_AUTHENTIC."""
    segments = _segments(shared("oms", "streams", "pets_h264_default.mp4"))[3:]
    clip = read_mp4(io.BytesIO(write_mp4(clip_stream(segments))))
    results, dropped = validate_clip(
        clip.codec, clip.parameter_sets, clip.units, _anchors(), REFERENCE_TIME
    )
    assert dropped == 1
    assert [r.gop_counter for r in results] == list(range(4, 11))
    assert {r.result.value for r in results} == {"authentic"}
