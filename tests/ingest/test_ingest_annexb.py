"""Raw Annex-B elementary streams (``.h264``/``.h265`` and aliases) through probe/read_gops.

The raw files are made here from real footage with PyAV's ``*_mp4toannexb`` bitstream
filters: PETS09 (H.264, AVI) and the signed OMS vector ``pets_h265_default.mp4`` (H.265).
A stream with no VUI timing is encoded here with libx265 (``vui-timing-info=0``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from tests.ingest.conftest import extract_annexb

from kontur.ingest.errors import SourceCorrupt
from kontur.ingest.segment import pack_segment, unpack_segment
from kontur.ingest.source import DEFAULT_RAW_FPS, RawGop, SourceProbe, probe, read_gops

PETS = "video/pets09_s2l1_480x360.avi"
PETS_H264_SIGNED = "oms/streams/pets_h264_default.mp4"
PETS_H265_SIGNED = "oms/streams/pets_h265_default.mp4"

Ingested = tuple[Path, SourceProbe, list[RawGop]]


def _ingest(path: Path, fps: float | None = None) -> Ingested:
    result = probe(str(path), fps=fps)
    return path, result, list(read_gops(str(path), result))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("annexb")


@pytest.fixture(scope="module")
def pets_container(shared_file: Callable[[str], Path]) -> Ingested:
    return _ingest(shared_file(PETS))


@pytest.fixture(scope="module")
def pets_h264(shared_file: Callable[[str], Path], workdir: Path) -> Ingested:
    return _ingest(extract_annexb(shared_file(PETS), workdir / "pets.h264"))


@pytest.fixture(scope="module")
def pets_h265(shared_file: Callable[[str], Path], workdir: Path) -> Ingested:
    return _ingest(extract_annexb(shared_file(PETS_H265_SIGNED), workdir / "pets.h265"))


def _no_vui_hevc(path: Path, frames: int = 12) -> Path:
    """A raw HEVC stream whose SPS carries no VUI timing (libx265 ``vui-timing-info=0``)."""
    try:
        av.codec.Codec("libx265", "w")
    except Exception:  # PyAV raises UnknownCodecError or ValueError by version
        pytest.skip("libx265 is not in this PyAV build")
    with av.open(str(path), "w", format="hevc") as out:
        stream = out.add_stream("libx265", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        # scenecut off and min-keyint = keyint: a GOP every 6 frames whatever x265's
        # lookahead makes of the flat frames (scenecut once cut every frame in the suite)
        params = "log-level=none:vui-timing-info=0:keyint=6:min-keyint=6:scenecut=0:bframes=0"
        stream.options = {"x265-params": params}
        for i in range(frames):
            img = np.full((48, 64, 3), (i * 19) % 256, dtype=np.uint8)
            img[i % 48, :, :] = 255  # a moving line: no two frames alike
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with av.open(str(path)) as src:
        keys = [int(p.is_keyframe) for p in src.demux(src.streams.video[0]) if p.size]
    assert keys == [int(i % 6 == 0) for i in range(frames)], f"libx265 made key frames {keys}"
    return path


# --- H.264 ------------------------------------------------------------------------------


def test_raw_h264_has_the_container_frames_and_gops(
    pets_container: Ingested, pets_h264: Ingested
) -> None:
    _, _, ref = pets_container
    _, result, gops = pets_h264
    assert (result.info.codec, result.info.width, result.info.height) == ("h264", 480, 360)
    assert [len(g.packets) for g in gops] == [len(g.packets) for g in ref] == [250, 250, 250, 45]
    assert [len(g.frames) for g in gops] == [len(g.frames) for g in ref]
    assert sum(len(g.frames) for g in gops) == 795
    assert all(f.image is not None for g in gops for f in g.frames)
    assert all(g.packets[0].keyframe for g in gops)


def test_raw_h264_frames_match_the_container_pixels(
    pets_container: Ingested, pets_h264: Ingested
) -> None:
    ref = [f.image for g in pets_container[2] for f in g.frames]
    ours = [f.image for g in pets_h264[2] for f in g.frames]
    for k in (0, 1, 246, 500, 794):
        a, b = ours[k], ref[k]
        assert a is not None and b is not None and np.array_equal(a, b), f"frame {k} differs"


def test_raw_h264_fps_comes_from_the_sps_vui_and_is_said(pets_h264: Ingested) -> None:
    _, result, gops = pets_h264
    assert (result.info.fps, result.fps_from) == (10.0, "sps-vui")
    note = "raw h264 stream carries no timestamps; frames stamped at 10 fps from the SPS VUI timing"
    assert result.notes == (note,)
    assert gops[0].notes == [note]
    assert all(not g.notes for g in gops[1:])
    assert gops[0].header["fps_from"] == "sps-vui"


def test_raw_h264_presentation_times_are_index_over_fps(pets_h264: Ingested) -> None:
    pts = [f.pts_s for g in pets_h264[2] for f in g.frames]
    assert pts == pytest.approx([i / 10.0 for i in range(795)], abs=1e-6)


def test_raw_h264_packets_are_the_file_bytes_exactly(pets_h264: Ingested) -> None:
    path, _, gops = pets_h264
    packets = [p for g in gops for p in g.packets]
    assert b"".join(p.data for p in packets) == path.read_bytes()
    assert all(p.data.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")) for p in packets)
    header = gops[0].header
    assert header["framing"] == "annexb"
    assert str(header["extradata"]).startswith(("000001", "00000001")), "expected Annex-B SPS/PPS"


def test_raw_gop_survives_the_segment_round_trip(pets_h264: Ingested) -> None:
    gop = pets_h264[2][1]
    header, packets = unpack_segment(pack_segment(gop.header, gop.packets))
    assert header == gop.header
    assert packets == gop.packets


def test_264_suffix_is_read_as_raw_h264(shared_file: Callable[[str], Path], workdir: Path) -> None:
    path = extract_annexb(shared_file(PETS_H264_SIGNED), workdir / "signed.264")
    _, result, gops = _ingest(path)
    assert (result.info.codec, result.fps_from) == ("h264", "sps-vui")
    assert len(gops) == 10
    assert sum(len(g.frames) for g in gops) == 200


def test_container_packets_are_avcc_with_avcc_extradata(
    shared_file: Callable[[str], Path],
) -> None:
    path = str(shared_file(PETS_H264_SIGNED))
    result = probe(path)
    assert result.fps_from == "container" and result.notes == ()
    gop = next(iter(read_gops(path, result)))
    assert gop.header["framing"] == "avcc"
    assert str(gop.header["extradata"]).startswith("01"), "expected an avcC record"
    first = gop.packets[0].data
    assert int.from_bytes(first[:4], "big") < len(first), "expected a 4-byte NAL length"


# --- H.265 ------------------------------------------------------------------------------


def test_raw_h265_has_every_picture_of_the_container_in_its_gops(
    shared_file: Callable[[str], Path], pets_h265: Ingested
) -> None:
    with av.open(str(shared_file(PETS_H265_SIGNED))) as container:
        stream = container.streams.video[0]
        samples = [(p.is_keyframe, p.pts) for p in container.demux(stream) if p.size]
    # the signer's last MP4 sample is a SEI-only access unit (no picture), flagged as sync
    pictures = samples[:-1]
    keys = [i for i, (key, _) in enumerate(pictures) if key]
    container_gops = [b - a for a, b in itertools.pairwise([*keys, len(pictures)])]
    _, result, gops = pets_h265
    assert (result.info.codec, result.info.width, result.info.height) == ("hevc", 480, 360)
    assert (result.info.fps, result.fps_from) == (10.0, "sps-vui")
    assert container_gops == [20] * 10
    # frames belong to the GOP whose packet the (threaded) decoder was fed: compare packets;
    # the raw parser does not flag the SEI-only access unit as a keyframe: it ends GOP 10
    assert [len(g.packets) for g in gops] == [*container_gops[:-1], 21]
    assert len(samples) == sum(len(g.packets) for g in gops) == 201
    assert sum(len(g.frames) for g in gops) == 200
    assert all(f.image is not None for g in gops for f in g.frames)
    assert gops[0].header["framing"] == "annexb"
    extradata = str(gops[0].header["extradata"])
    assert extradata.startswith(("000001", "00000001")), "expected Annex-B VPS/SPS/PPS"


@pytest.mark.xfail(
    strict=True,
    reason="KNOWN GAP (container H.265, not Annex-B): the reference signer's MP4 gives its "
    "last picture and its trailing SEI-only sample the same pts and a zero duration "
    "(oms README quirk 1); FFmpeg then returns 199 of 200 pictures. The SEI-only sample is "
    "no longer fed to the decoder nor counted as a frame, so ingest no longer calls the "
    "file truncated (test_signed_mp4_with_an_sei_only_last_sample_is_not_truncated)",
)
def test_container_h265_decodes_every_picture(shared_file: Callable[[str], Path]) -> None:
    path = str(shared_file(PETS_H265_SIGNED))
    frames = sum(len(g.frames) for g in read_gops(path, probe(path)))
    assert frames == 200


@pytest.mark.parametrize("vector", [PETS_H265_SIGNED, "oms/streams/pets_h264_default.mp4"])
def test_signed_mp4_with_an_sei_only_last_sample_is_not_truncated(
    shared_file: Callable[[str], Path], vector: str
) -> None:
    # the signed end of stream is an access unit with no picture: neither a damaged frame nor
    # a missing one
    path = str(shared_file(vector))
    gops = list(read_gops(path, probe(path)))
    assert sum(len(g.packets) for g in gops) == 201
    assert all(f.image is not None for g in gops for f in g.frames)


def test_raw_h265_without_vui_timing_defaults_to_25_fps_and_says_so(workdir: Path) -> None:
    _, result, gops = _ingest(_no_vui_hevc(workdir / "no_vui.h265"))
    assert (result.info.fps, result.fps_from) == (DEFAULT_RAW_FPS, "default")
    note = (
        "raw hevc stream carries no timestamps; frames stamped at 25 fps by default "
        "(no SPS VUI timing, none declared)"
    )
    assert gops[0].notes == [note]
    pts = [f.pts_s for g in gops for f in g.frames]
    assert pts == pytest.approx([i / 25.0 for i in range(12)], abs=1e-6)


def test_raw_h265_without_vui_timing_takes_the_declared_fps(workdir: Path) -> None:
    _, result, gops = _ingest(_no_vui_hevc(workdir / "no_vui_declared.hevc"), fps=12.5)
    assert (result.info.fps, result.fps_from) == (12.5, "declared")
    assert gops[0].header["fps_from"] == "declared"
    assert "frames stamped at 12.5 fps as declared (no SPS VUI timing)" in gops[0].notes[0]
    assert [len(g.packets) for g in gops] == [6, 6]
    pts = [f.pts_s for g in gops for f in g.frames]
    assert pts == pytest.approx([i / 12.5 for i in range(12)], abs=1e-6)


def test_vui_timing_wins_over_a_declared_fps(pets_h264: Ingested) -> None:
    path = pets_h264[0]
    result = probe(str(path), fps=30.0)
    assert (result.info.fps, result.fps_from) == (10.0, "sps-vui")


# --- bad input --------------------------------------------------------------------------


def test_random_bytes_named_h264_are_source_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "noise.h264"
    path.write_bytes(np.random.default_rng(3).bytes(4096))
    with pytest.raises(SourceCorrupt, match=r"source .*noise\.h264: expected"):
        probe(str(path))
