"""Truncation comes from the bitstream, never from a container header's frame count.

Issue 9, item 5a: a valid 1280x720 AVI whose header claims twice the frames it holds made
``kontur demo`` exit 1 with "truncated". A header count is unsigned metadata that muxers and
editors get wrong; it is now a note on the last GOP. A file really cut short is still
truncated: the demuxer reads its last packet short, or its tail does not decode.

Every file is made here from the real PETS09 footage of ``../shared/data`` (skipped when
absent) and named after what it models.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import pytest
from tests.ingest.ingest_harness import IngestRig

from kontur.ingest.errors import SourceTruncated
from kontur.ingest.source import RawGop, probe, read_gops
from kontur.ingest.verdict import Verdict
from kontur.wire.messages import GopClosed

PETS = "video/pets09_s2l1_480x360.avi"
FRAMES = 30
KEYINT = 10
CUT_SHORT = "expected the last packet whole, got one cut short by the end of the file"
DAMAGED_TAIL = "expected the last frames to decode, got a damaged tail after"


def _encode(source: Path, target: Path, size: tuple[int, int], fmt: str | None = None) -> Path:
    """``FRAMES`` pictures of ``source`` as H.264 (libx264, GOP ``KEYINT``, no B-frames)."""
    with av.open(str(source)) as src, av.open(str(target), "w", format=fmt) as dst:
        stream = dst.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.options = {
            "preset": "ultrafast",
            "x264-params": f"keyint={KEYINT}:min-keyint={KEYINT}:scenecut=0:bframes=0",
        }
        for i, frame in enumerate(src.decode(video=0)):
            if i == FRAMES:
                break
            out = frame.reformat(width=size[0], height=size[1], format="yuv420p")
            out.pts, out.time_base = i, Fraction(1, 10)
            for packet in stream.encode(out):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    return target


def _scale_header_counts(path: Path, factor: int) -> None:
    """Multiply the AVI header's frame counts, both ahead of the ``movi`` list: avih
    dwTotalFrames and the video strh dwLength (FFmpeg leaves the OpenDML dmlh count at 0
    in files under 1 GB)."""
    data = bytearray(path.read_bytes())
    movi, strh = data.find(b"movi"), data.find(b"strh")
    assert data[strh + 8 : strh + 12] == b"vids", "expected the first stream to be video"
    for at in (data.find(b"avih") + 8 + 16, strh + 8 + 32):
        assert 0 < at < movi, "expected the AVI header fields ahead of the movi list"
        (count,) = struct.unpack_from("<I", data, at)
        assert count == FRAMES, f"expected a header count of {FRAMES}, got {count}"
        struct.pack_into("<I", data, at, count * factor)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def header_doubled(
    shared_file: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A valid 1280x720 AVI of real footage whose header claims twice the frames it holds."""
    path = tmp_path_factory.mktemp("avi") / "header_count_doubled.avi"
    _encode(shared_file(PETS), path, (1280, 720))
    _scale_header_counts(path, 2)
    return path


def _packets(path: Path) -> list[tuple[int, int]]:
    """``(position, size)`` of every video packet in the file."""
    with av.open(str(path)) as container:
        return [(int(p.pos), p.size) for p in container.demux(video=0) if p.size]


@pytest.mark.parametrize("decode", [True, False], ids=["decoded", "demux-only"])
def test_header_count_twice_the_frames_is_a_note_not_truncation(
    header_doubled: Path, decode: bool
) -> None:
    result = probe(str(header_doubled))
    assert result.frames_declared == 2 * FRAMES
    gops = list(read_gops(str(header_doubled), result, decode=decode))  # no SourceTruncated
    assert len(gops) == FRAMES // KEYINT
    assert sum(len(g.packets) for g in gops) == FRAMES
    if decode:
        assert sum(g.times.count for g in gops) == FRAMES
        assert all(f.image is not None for g in gops for f in g.frames)
    assert gops[-1].notes == [
        f"container header declares {2 * FRAMES} frames, the bitstream holds {FRAMES}: "
        "the header count is ignored (unsigned metadata)"
    ]
    assert all(g.notes == [] for g in gops[:-1])


def test_header_count_twice_the_frames_ingests_authentic(
    header_doubled: Path, tmp_path: Path
) -> None:
    # the perimeter's ingest process, as `kontur demo` runs it: the demo camera signs
    with IngestRig(tmp_path, header_doubled, sign=True) as rig:
        run = rig.run(timeout=180)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert run.ended.error is None
    assert run.ended.frames == FRAMES
    verdicts = [g.verdict for g in run.of(GopClosed)]
    assert [v.verdict for v in verdicts] == [Verdict.AUTHENTIC] * (FRAMES // KEYINT)
    assert not any("truncat" in why for v in verdicts for why in v.reasons), verdicts
    note = (
        f"container header declares {2 * FRAMES} frames, the bitstream holds {FRAMES}: "
        "the header count is ignored (unsigned metadata)"
    )
    assert note in verdicts[-1].reasons, verdicts[-1].reasons


def test_an_accurate_header_count_adds_no_note(
    shared_file: Callable[[str], Path], tmp_path: Path
) -> None:
    path = _encode(shared_file(PETS), tmp_path / "header_count_exact.avi", (480, 360))
    gops = list(read_gops(str(path), probe(str(path))))
    assert all(g.notes == [] for g in gops)


# --- files really cut short -------------------------------------------------------------


def test_avi_cut_inside_its_last_packet_is_truncated(
    shared_file: Callable[[str], Path], tmp_path: Path
) -> None:
    source = shared_file(PETS)
    pos, size = _packets(source)[400]  # the AVI chunk header (8 bytes), then its payload
    path = tmp_path / "cut_inside_last_packet.avi"
    path.write_bytes(source.read_bytes()[: pos + 8 + size // 2])
    result = probe(str(path))
    assert result.frames_declared == 795  # the header still promises them all
    got: list[RawGop] = []
    with pytest.raises(SourceTruncated, match=f"{CUT_SHORT} \\(truncated\\)$"):
        got.extend(read_gops(str(path), result))
    assert sum(len(g.packets) for g in got) == 401


def test_mp4_cut_inside_a_sample_is_truncated(
    shared_file: Callable[[str], Path], tmp_path: Path
) -> None:
    # moov first (faststart), so the cut file still opens and its last sample reads short
    full = _encode(shared_file(PETS), tmp_path / "whole.mp4", (480, 360))
    faststart = tmp_path / "faststart.mp4"
    with (
        av.open(str(full)) as src,
        av.open(str(faststart), "w", options={"movflags": "faststart"}) as dst,
    ):
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(video=0):
            if packet.size:
                packet.stream = out
                dst.mux(packet)
    pos, size = _packets(faststart)[25]
    path = tmp_path / "cut_inside_a_sample.mp4"
    path.write_bytes(faststart.read_bytes()[: pos + size // 2])
    with pytest.raises(SourceTruncated, match=CUT_SHORT):
        list(read_gops(str(path), probe(str(path))))


def test_raw_h264_cut_inside_a_picture_has_a_damaged_tail(
    shared_file: Callable[[str], Path], tmp_path: Path
) -> None:
    # a raw stream has no container to read short: the decoder finds the cut picture
    whole = _encode(shared_file(PETS), tmp_path / "whole.h264", (480, 360), fmt="h264")
    pos, size = _packets(whole)[25]  # a P picture of the last GOP
    path = tmp_path / "cut_mid_picture.h264"
    path.write_bytes(whole.read_bytes()[: pos + size // 2])
    got: list[RawGop] = []
    with pytest.raises(SourceTruncated, match=DAMAGED_TAIL):
        got.extend(read_gops(str(path), probe(str(path))))
    assert sum(len(g.packets) for g in got) == 26
