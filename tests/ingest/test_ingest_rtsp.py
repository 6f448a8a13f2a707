"""RTSP ingest against a real RTSP server on loopback (GStreamer's gst-rtsp-server).

The server serves the signed OMS vectors ``filesrc ! qtdemux ! h26Xparse ! rtph26Xpay``;
the client is PyAV over TCP. What we observe and pin down here:

* every access unit arrives byte for byte: an RTSP packet is the MP4 sample with each 4-byte
  NAL length replaced by a 4-byte start code, so the ONVIF Media Signing SEIs arrive
  byte-identical: the RTP path adds no emulation prevention (and h264parse/h265parse with
  ``config-interval=0`` insert nothing);
* those SEIs are written without emulation prevention and contain ``00 00 01``: in the
  Annex-B packets a start-code scan would cut them, so NAL boundaries must come from the
  depacketiser, not from scanning (recorded by a test below);
* the server's end of file is followed by RTCP BYE before the last two samples of the file
  (a picture and the trailing SEI-only access unit) are read: 199 of 201 samples arrive.
"""

from __future__ import annotations

import itertools
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import pytest
from tests.ingest.conftest import RtspServer

from kontur.ingest.rtsp import RtspPolicy, SourceUnreachable, redact
from kontur.ingest.source import RawGop, probe, read_gops

PETS_H264 = "oms/streams/pets_h264_default.mp4"
PETS_H265 = "oms/streams/pets_h265_default.mp4"
CAR_H264 = "oms/streams/car_h264_default.mp4"
OMS_UUID = bytes.fromhex("005bc93f2d715e95ada4796f90877a6f")
START = b"\x00\x00\x00\x01"

#: Quick to give up: used where the stream is not expected back.
ONE_SHOT = RtspPolicy(open_timeout_s=3, read_timeout_s=2, max_attempts=0)

Server = Callable[..., RtspServer]


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _avcc_nals(sample: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(sample):
        n = int.from_bytes(sample[pos : pos + 4], "big")
        out.append(sample[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def _samples(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [bytes(p) for p in container.demux(stream) if p.size]


def _first_session(url: str) -> tuple[list[RawGop], SourceUnreachable]:
    """Every GOP of one RTSP session, and the error that ends it (no reconnect allowed)."""
    gops: list[RawGop] = []
    with pytest.raises(SourceUnreachable) as err:
        gops.extend(read_gops(url, probe(url, policy=ONE_SHOT), policy=ONE_SHOT))
    return gops, err.value


def _is_oms_sei(nal: bytes, codec: str) -> bool:
    # H.264: NAL type 6, payload type 5 (user data unregistered); H.265: prefix SEI (39)
    head = 1 if codec == "h264" else 2
    kind = nal[0] & 0x1F if codec == "h264" else (nal[0] >> 1) & 0x3F
    return kind == (6 if codec == "h264" else 39) and OMS_UUID in nal[head : head + 24]


# --- the stream arrives byte for byte ------------------------------------------------


@pytest.mark.parametrize(("rel", "codec"), [(PETS_H264, "h264"), (PETS_H265, "h265")])
def test_rtsp_packets_are_the_file_samples_with_start_codes(
    rtsp_server: Server, shared_file: Callable[[str], Path], rel: str, codec: str
) -> None:
    path = shared_file(rel)
    server = rtsp_server(path, codec)
    gops, end = _first_session(server.url)
    assert "expected the stream back after it was lost (the stream ended)" in str(end)
    samples = _samples(path)
    got = [p.data for g in gops for p in g.packets]
    assert len(samples) == 201
    assert len(got) == 199, "the last two samples are lost behind the server's BYE"
    assert got == [b"".join(START + n for n in _avcc_nals(s)) for s in samples[:199]]
    assert all(g.header["framing"] == "annexb" for g in gops)
    assert all(g.packets[0].keyframe for g in gops)
    frames = [f for g in gops for f in g.frames]
    assert len(frames) >= 198
    assert all(f.image is not None and f.image.shape == (360, 480, 3) for f in frames)


@pytest.mark.parametrize(("rel", "codec"), [(PETS_H264, "h264"), (PETS_H265, "h265")])
def test_onvif_signing_seis_arrive_byte_identical(
    rtsp_server: Server, shared_file: Callable[[str], Path], rel: str, codec: str
) -> None:
    path = shared_file(rel)
    server = rtsp_server(path, codec)
    gops, _ = _first_session(server.url)
    stream = b"".join(p.data for g in gops for p in g.packets)
    seis = [n for s in _samples(path) for n in _avcc_nals(s) if _is_oms_sei(n, codec)]
    assert len(seis) == 10
    arrived = [sei for sei in seis if START + sei in stream]
    assert arrived == seis[:9], "every SEI before the lost tail arrives as is"
    # written without emulation prevention, and none added on the way: every SEI still holds
    # a 00 00 0x (x <= 3) run that an encoder would have escaped
    assert all(re.search(b"\x00\x00[\x00-\x03]", sei[1:]) for sei in arrived)


def test_an_annexb_start_code_scan_would_cut_the_signing_sei(
    rtsp_server: Server, shared_file: Callable[[str], Path]
) -> None:
    path = shared_file(PETS_H264)
    server = rtsp_server(path, "h264")
    gops, _ = _first_session(server.url)
    packet = gops[1].packets[1].data  # GOP 2's SEI rides with its first P slice
    sei = next(n for n in _avcc_nals(_samples(path)[21]) if _is_oms_sei(n, "h264"))
    assert packet.startswith(START + sei)
    scanned = re.split(b"\x00\x00\x01", packet)
    assert not any(part.rstrip(b"\x00") == sei for part in scanned)


# --- reconnect ---------------------------------------------------------------------------


def _gops_until(gops: Iterator[RawGop], stop: Callable[[RawGop], bool]) -> list[RawGop]:
    out = []
    for gop in gops:
        out.append(gop)
        if stop(gop):
            break
    return out


def test_a_dropped_stream_reconnects_with_backoff_and_reports_the_gap(
    rtsp_server: Server, shared_file: Callable[[str], Path]
) -> None:
    server = rtsp_server(shared_file(CAR_H264), "h264", fast=False)  # real time
    policy = RtspPolicy(open_timeout_s=3, read_timeout_s=2, backoff_initial_s=0.2, jitter=0.1)
    gops = read_gops(server.url, probe(server.url, policy=policy), policy=policy)
    first = next(gops)
    server.stop()  # the camera drops off the network mid-stream...
    restart = threading.Timer(0.8, server.start, kwargs={"fast": True})
    restart.start()  # ...and is back a little later
    t0 = time.monotonic()
    try:
        rest = _gops_until(gops, lambda g: bool(g.notes))
    finally:
        restart.join()
    gops.close()
    after = rest[-1]
    assert after.notes, "expected a reconnect note on the first GOP after the gap"
    note = after.notes[0]
    m = re.fullmatch(
        r"source reconnected after (\d+\.\d) s \((\d+) attempt\(s\), after: .+\); "
        r"about (\d+) frames lost",
        note,
    )
    assert m, note
    gap, attempts, lost = float(m[1]), int(m[2]), int(m[3])
    assert 0.8 <= gap <= time.monotonic() - t0 + 0.5
    assert attempts >= 2, "the first attempt (after ~0.2 s) finds the server still down"
    assert abs(lost - (gap * first.info.fps - 1)) <= 0.05 * first.info.fps + 1  # gap rounded
    # a gap, never silently joined: the GOP after it starts afresh at a keyframe
    assert after.packets[0].keyframe
    before = [f.pts_s for g in [first, *rest[:-1]] for f in g.frames]
    resumed = [f.pts_s for f in after.frames]
    assert resumed[0] - before[-1] >= gap - 0.05
    assert all(b > a for a, b in itertools.pairwise(resumed))


def test_a_stream_that_never_comes_back_is_a_bounded_source_error(
    rtsp_server: Server, shared_file: Callable[[str], Path]
) -> None:
    server = rtsp_server(shared_file(PETS_H264), "h264")
    policy = RtspPolicy(open_timeout_s=2, read_timeout_s=2, max_attempts=3, backoff_initial_s=0.1)
    gops = read_gops(server.url, probe(server.url, policy=policy), policy=policy)
    next(gops)
    server.stop()
    t0 = time.monotonic()
    with pytest.raises(SourceUnreachable) as err:
        list(gops)
    took = time.monotonic() - t0
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"source {server.url}: expected the stream back after it was lost")
    assert re.search(r"got .*[Cc]onnection refused on every reconnect attempt \(3 in ", message)
    assert took < 0.1 * (1 + 2 + 4) * 1.2 + 2


def test_a_silent_server_hits_the_read_timeout_then_the_open_timeout(
    rtsp_server: Server, shared_file: Callable[[str], Path]
) -> None:
    server = rtsp_server(shared_file(CAR_H264), "h264", fast=False)
    policy = RtspPolicy(open_timeout_s=0.5, read_timeout_s=0.5, max_attempts=1)
    gops = read_gops(server.url, probe(server.url, policy=policy), policy=policy)
    next(gops)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)  # hangs: the socket stays open, nothing is sent
    t0 = time.monotonic()
    with pytest.raises(SourceUnreachable, match=r"on every reconnect attempt \(1 in ") as err:
        list(gops)
    assert time.monotonic() - t0 < 4.0
    assert "expected the stream back after it was lost (no data for 0.5 s (read timeout))" in str(
        err.value
    )
    assert "got no answer within 0.5 s (open timeout: " in str(err.value)


def test_reconnecting_stops_at_the_total_time_budget(shared_file: Callable[[str], Path]) -> None:
    from kontur.ingest.rtsp import reconnect

    url = f"rtsp://127.0.0.1:{_dead_port()}/stream"
    policy = RtspPolicy(max_attempts=100, max_total_s=0.5, backoff_initial_s=0.05, jitter=0)
    t0 = time.monotonic()
    with pytest.raises(SourceUnreachable, match=r"on every reconnect attempt \(3 in 0\.\d s\)"):
        reconnect(url, policy, "read timeout")
    assert time.monotonic() - t0 < 1.0


def test_backoff_doubles_up_to_the_cap_with_bounded_jitter() -> None:
    import random

    policy = RtspPolicy(backoff_initial_s=0.5, backoff_max_s=3.0, jitter=0.2)
    rng = random.Random(1)
    for attempt, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (9, 3.0)]:
        waits = [policy.delay(attempt, rng) for _ in range(50)]
        assert all(base * 0.8 <= w <= base * 1.2 for w in waits), (attempt, waits)
        assert max(waits) - min(waits) > 0, "expected jitter"


# --- credentials -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:s3cret@10.0.0.7:554/live", "rtsp://***@10.0.0.7:554/live"),
        ("rtsp://admin@10.0.0.7/live", "rtsp://***@10.0.0.7/live"),
        ("rtsp://admin:p@ss@cam/live?x=1", "rtsp://***@cam/live?x=1"),
        ("RTSPS://u:p@cam/a@b", "RTSPS://***@cam/a@b"),
        ("rtsp://cam/live", "rtsp://cam/live"),
        ("/videos/a@b.mp4", "/videos/a@b.mp4"),
    ],
)
def test_redact_hides_user_and_password(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_unreachable_url_with_credentials_is_redacted() -> None:
    url = f"rtsp://alice:s3cret@127.0.0.1:{_dead_port()}/stream"
    with pytest.raises(SourceUnreachable) as err:
        probe(url, policy=ONE_SHOT)
    message = str(err.value)
    assert message.startswith("source rtsp://***@127.0.0.1:")
    assert "expected an RTSP server streaming video, got" in message
    assert "alice" not in message and "s3cret" not in message


def test_credentials_are_redacted_in_every_message(
    rtsp_server: Server, shared_file: Callable[[str], Path]
) -> None:
    server = rtsp_server(shared_file(PETS_H264), "h264")
    url = server.url.replace("rtsp://", "rtsp://alice:s3cret@")
    policy = RtspPolicy(open_timeout_s=2, read_timeout_s=2, max_attempts=2, backoff_initial_s=0.1)
    result = probe(url, policy=policy)
    texts = [result.source, *result.notes]
    gops = read_gops(url, result, policy=policy)
    gop = next(gops)
    texts += [str(gop.header), *gop.notes]
    server.stop()
    with pytest.raises(SourceUnreachable) as err:
        for g in gops:
            texts += [str(g.header), *g.notes]
    texts.append(str(err.value))
    assert result.source == redact(url) == server.url.replace("rtsp://", "rtsp://***@")
    assert gop.header["source"] == result.source
    assert not [t for t in texts if "alice" in t or "s3cret" in t]
