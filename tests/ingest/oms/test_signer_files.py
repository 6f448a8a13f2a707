"""Signing files: containers, raw Annex-B, untouched pictures and timestamps, validation."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from cryptography import x509

from kontur.ingest.oms.keys import (
    SignedOutputError,
    SignerInputError,
    SigningIdentity,
    chain_pem,
    load_signing_identity,
    make_ca,
    make_camera_certificate,
    private_key_pem,
)
from kontur.ingest.oms.nal import Codec, split_annexb, split_packet
from kontur.ingest.oms.reader import validate_file
from kontur.ingest.oms.sei import OmsSei, is_oms_sei
from kontur.ingest.oms.validator import OmsResult
from kontur.ingest.oms.writer import output_format, sign_file

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2036, 1, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def site() -> tuple[x509.Certificate, SigningIdentity]:
    ca_key, ca = make_ca("kontur test CA", T0, T1)
    key, cert = make_camera_certificate(ca_key, ca, "cam-1", T0, T1)
    return ca, load_signing_identity(private_key_pem(key), chain_pem(cert, ca))


def strip_oms(source: Path, target: Path) -> Path:
    """Remux ``source`` without its OMS SEIs (an unsigned copy of a reference vector)."""
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream = src.streams.video[0]
        codec = Codec.H264 if stream.codec_context.name == "h264" else Codec.H265
        ostream = dst.add_stream_from_template(stream)
        for packet in src.demux(stream):
            nals = [n for n in split_packet(bytes(packet)) if not is_oms_sei(n, codec)]
            if packet.size == 0 or not nals:
                continue
            out = av.Packet(b"".join(len(n).to_bytes(4, "big") + n for n in nals))
            out.pts, out.dts, out.duration = packet.pts, packet.dts, packet.duration
            out.time_base, out.is_keyframe, out.stream = (
                packet.time_base,
                packet.is_keyframe,
                ostream,
            )
            dst.mux(out)
    return target


@pytest.fixture(scope="module")
def unsigned(
    shared_file: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("unsigned")
    return {
        codec: strip_oms(
            shared_file(f"oms/streams/pets_{codec}_default.mp4"), base / f"{codec}.mp4"
        )
        for codec in ("h264", "h265")
    }


def picture_digests(path: Path) -> list[str]:
    """MD5 of every decoded picture (all planes), in presentation order.

    The SEI-only final access unit is not sent to the decoder: FFmpeg's H.264 decoder
    answers "no frame!" (invalid data) for a packet without a slice, for the reference's
    own files too.
    """
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = Codec.H264 if stream.codec_context.name == "h264" else Codec.H265
        for packet in container.demux(stream):
            if packet.size and all(is_oms_sei(n, codec) for n in split_packet(bytes(packet))):
                continue
            frames += packet.decode()
    return [hashlib.md5(b"".join(bytes(p) for p in f.planes)).hexdigest() for f in frames]


def packets(path: Path) -> list[tuple[int | None, int | None, int | None, bytes]]:
    with av.open(str(path)) as container:
        return [(p.pts, p.dts, p.duration, bytes(p)) for p in container.demux(video=0) if p.size]


CASES = [("h264", ".mp4"), ("h264", ".mkv"), ("h264", ".h264"), ("h265", ".mp4"), ("h265", ".h265")]


@pytest.mark.parametrize(("codec", "suffix"), CASES)
def test_signed_file_validates_and_keeps_pictures(
    unsigned: dict[str, Path],
    site: tuple[x509.Certificate, SigningIdentity],
    tmp_path: Path,
    codec: str,
    suffix: str,
) -> None:
    ca, identity = site
    target = tmp_path / f"signed{suffix}"
    summary = sign_file(unsigned[codec], target, identity, T0)
    assert (summary.access_units, summary.gops_signed, summary.seis) == (200, 10, 10)
    assert summary.output_bytes - summary.input_bytes > summary.sei_bytes * 0.9
    results = validate_file(target, [ca], NOW, require_parameter_set_claim=True)
    assert [r.result for r in results] == [OmsResult.AUTHENTIC] * 10, results[-1].reasons
    assert picture_digests(target) == picture_digests(unsigned[codec])
    assert list(target.parent.iterdir()) == [target]  # no temporary file left


def test_container_output_keeps_timestamps_and_delivers_the_final_sei(
    unsigned: dict[str, Path], site: tuple[x509.Certificate, SigningIdentity], tmp_path: Path
) -> None:
    _, identity = site
    target = tmp_path / "signed.mp4"
    sign_file(unsigned["h264"], target, identity, T0)
    before, after = packets(unsigned["h264"]), packets(target)
    assert len(after) == len(before) + 1
    assert [p[:3] for p in after[:-1]] == [p[:3] for p in before]
    _pts, dts, duration, data = after[-1]
    last_dts = before[-1][1]
    assert duration and duration > 0 and dts is not None and last_dts is not None
    assert dts > last_dts
    final = split_packet(data)
    assert len(final) == 1 and OmsSei.from_nal(final[0], Codec.H264).general is not None
    for (_, _, _, b), (_, _, _, a) in zip(before, after, strict=False):
        kept = [n for n in split_packet(a) if not is_oms_sei(n, Codec.H264)]
        assert kept == split_packet(b)  # every original NAL unit, byte for byte


def test_raw_output_escapes_only_the_oms_seis(
    unsigned: dict[str, Path], site: tuple[x509.Certificate, SigningIdentity], tmp_path: Path
) -> None:
    _, identity = site
    target = tmp_path / "signed.h264"
    assert sign_file(unsigned["h264"], target, identity, T0).dropped_streams == ()
    nals = split_annexb(target.read_bytes())
    seis = [n for n in nals if is_oms_sei(n, Codec.H264)]
    assert len(seis) == 10
    for sei in seis:
        assert b"\x00\x00\x00" not in sei and b"\x00\x00\x01" not in sei
        parsed = OmsSei.from_nal(sei, Codec.H264)
        assert parsed.emulation_prevented and not parsed.epb_before_hashing


def test_avi_with_b_frames_is_refused_rather_than_given_wrong_timestamps(
    shared_file: Callable[[str], Path],
    site: tuple[x509.Certificate, SigningIdentity],
    tmp_path: Path,
) -> None:
    # AVI stores decode-order stamps only; PETS09's H.264 has B-frames, so copied packets
    # would carry presentation times in the wrong order. Refused, and nothing is written.
    _, identity = site
    source = shared_file("video/pets09_s2l1_480x360.avi")
    with pytest.raises(SignerInputError, match="AVI with B-frames, which carries none"):
        sign_file(source, tmp_path / "pets.mp4", identity, T0)
    assert list(tmp_path.iterdir()) == []


def test_refuses_signed_input_and_leaves_no_output(
    shared_file: Callable[[str], Path],
    site: tuple[x509.Certificate, SigningIdentity],
    tmp_path: Path,
) -> None:
    _, identity = site
    target = tmp_path / "again.mp4"
    with pytest.raises(SignerInputError, match="input is already signed"):
        sign_file(shared_file("oms/streams/pets_h264_default.mp4"), target, identity, T0)
    assert list(tmp_path.iterdir()) == []


def test_refuses_bad_outputs(
    unsigned: dict[str, Path], site: tuple[x509.Certificate, SigningIdentity], tmp_path: Path
) -> None:
    _, identity = site
    with pytest.raises(SignedOutputError, match="expected a h264 output suffix"):
        sign_file(unsigned["h264"], tmp_path / "x.h265", identity, T0)
    with pytest.raises(SignedOutputError, match="expected an output suffix among"):
        sign_file(unsigned["h264"], tmp_path / "x.avi", identity, T0)
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(SignedOutputError, match="expected an existing directory"):
        sign_file(unsigned["h264"], blocker / "x.mp4", identity, T0)
    assert output_format(Path("a.MKV"), Codec.H264) == "matroska"


def test_refuses_non_h26x_video(
    site: tuple[x509.Certificate, SigningIdentity], tmp_path: Path
) -> None:
    _, identity = site
    source = tmp_path / "mpeg4.mp4"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(3):
            frame = av.VideoFrame(64, 48, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(SignerInputError, match=r"expected H\.264 or H\.265 video .* got mpeg4"):
        sign_file(source, tmp_path / "out.mp4", identity, T0)


def test_a_file_that_appears_at_the_output_while_signing_is_never_overwritten(
    unsigned: dict[str, Path], site: tuple[x509.Certificate, SigningIdentity], tmp_path: Path
) -> None:
    """``kontur sign`` checks --out first, but a file may appear there while it signs: the
    signed output is published by a hard link, which fails on an existing name."""
    _, identity = site
    target = tmp_path / "signed.mp4"
    target.write_bytes(b"someone else's recording")
    with pytest.raises(SignerInputError, match="expected a new file, got an existing one"):
        sign_file(unsigned["h264"], target, identity, T0)
    assert target.read_bytes() == b"someone else's recording"
    assert [p.name for p in tmp_path.iterdir()] == ["signed.mp4"]  # no temporary file left
