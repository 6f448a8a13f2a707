"""What still parses untrusted bytes in ingest (ADR 0038): the RTSP/RTP client. A hostile
camera on loopback (:mod:`tests.hostile_rtsp`) streams real footage as RTP interleaved over
TCP, as kontur always receives it (``rtsp_transport=tcp``), and lies in seeded ways: flipped
RTP header and payload bits, interleaved lengths that lie, truncated packets, broken FU-A
start/end bits, aggregation packets with lying sizes, sequence jumps, garbage between
frames, malformed RTCP, SDP and RTSP replies, a stall, a cut mid-packet.

Every mutant session goes through ingest's demux path (``probe``, then ``read_gops`` with
``decode=False``, reconnecting once per a small :class:`RtspPolicy`) and must end with one
of kontur's one-line errors, never another exception, never hanging. An ``rtsp://`` source
never ends normally: once the server stops serving, ``read_gops`` raises SourceUnreachable.
A few mutants also go through the sandboxed decoder, which may die on them: ingest goes on.
"""

from __future__ import annotations

import os
import random
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import shared
from tests.hang import Hang, alarms_raise_hang
from tests.hostile_rtsp import KINDS, Clip, HostileRtspServer, Plan, plan, redirect

from kontur.decoder.client import DecoderSettings, SandboxedDecoder
from kontur.errors import KonturError
from kontur.ingest.rtsp import ReplyRefused, RtspPolicy, SourceUnreachable
from kontur.ingest.source import DecodedFrame, RawGop, probe, read_gops

FRAMES = 200  # two GOPs of the car clip (IDRs at 0 and 161)
MUTANTS = 30
SEED = "kontur-rtp-fuzz-20261205"
HANG_S = 20

#: Small timeouts, one quick reconnect: each mutant costs well under a second unless it stalls.
POLICY = RtspPolicy(
    open_timeout_s=2,
    read_timeout_s=0.5,
    max_attempts=1,
    max_total_s=2,
    backoff_initial_s=0.01,
    backoff_max_s=0.01,
    jitter=0,
)
#: No reconnect: the honest stream is read exactly once.
ONE_SHOT = RtspPolicy(open_timeout_s=2, read_timeout_s=1, max_attempts=0)


@pytest.fixture(scope="module")
def clip() -> Clip:
    return Clip.from_mp4(shared("video", "car_traffic_640x360.mp4"), FRAMES)


@pytest.fixture
def hang_guard() -> Iterator[None]:
    with alarms_raise_hang():
        yield


def _server(
    clip: Clip, seed: str | None, kinds: tuple[str, ...], sessions: int
) -> HostileRtspServer:
    """A hostile camera whose connection ``n`` gets ``plan(seed/n, kinds)``."""
    url: list[str] = []
    server = HostileRtspServer(
        lambda n: plan(clip, url[0], None if seed is None else f"{seed}/{n}", kinds), sessions
    )
    url.append(server.url)
    return server


def _kinds(i: int) -> tuple[str, ...]:
    """Mutant ``i``'s kinds: every kind leads in turn, with up to two others drawn."""
    rng = random.Random(f"{SEED}/kinds/{i}")
    return tuple(dict.fromkeys([KINDS[i % len(KINDS)], *rng.sample(KINDS, rng.randint(0, 2))]))


@dataclass
class _Outcome:
    stage: str
    """How far ingest got: ``probe`` (refused there) or ``read`` (read_gops ran)."""
    packets: int
    error: KonturError


def _ingest(
    url: str,
    decoder: SandboxedDecoder | None = None,
    on_frame: Callable[[DecodedFrame], None] | None = None,
) -> _Outcome:
    """Ingest's RTSP path over ``url`` until it gives up; a non-Kontur error propagates.
    With a ``decoder`` the packets are decoded there, each frame handed to ``on_frame``."""
    stage, packets = "probe", 0
    decode = decoder is not None
    try:
        pr = probe(url, policy=POLICY)
        stage = "read"
        gops = read_gops(url, pr, policy=POLICY, decode=decode, decoder=decoder, on_frame=on_frame)
        for gop in gops:
            packets += len(gop.packets)
    except KonturError as exc:
        return _Outcome(stage, packets, exc)
    raise AssertionError(f"{url}: expected an rtsp:// source to end in SourceUnreachable")


def _guarded(
    url: str,
    what: str,
    decoder: SandboxedDecoder | None = None,
    on_frame: Callable[[DecodedFrame], None] | None = None,
) -> _Outcome:
    """:func:`_ingest`, failing the test on a hang, a non-Kontur error or a multi-line one."""
    signal.alarm(HANG_S)
    try:
        out = _ingest(url, decoder, on_frame)
    except Hang:
        pytest.fail(f"{what}: ingest hung for {HANG_S} s")
    except Exception as exc:
        pytest.fail(f"{what}: expected a one-line KonturError, got {exc!r}")
    finally:
        signal.alarm(0)
    message = str(out.error)
    assert message and "\n" not in message, (what, message)
    assert "Traceback" not in message, (what, message)
    return out


def test_the_honest_stream_arrives_byte_for_byte(clip: Clip, hang_guard: None) -> None:
    """The harness is proven first: with no mutation, ingest reads every access unit of the
    clip byte for byte (Annex B), cut into the clip's two GOPs, then the source ends."""
    with _server(clip, None, (), sessions=2) as server:
        signal.alarm(HANG_S)
        gops: list[RawGop] = []
        with pytest.raises(SourceUnreachable, match="after it was lost \\(the stream ended\\)"):
            pr = probe(server.url, policy=ONE_SHOT)
            gops.extend(read_gops(server.url, pr, policy=ONE_SHOT, decode=False))
        signal.alarm(0)
    assert (pr.info.codec, pr.info.width, pr.info.height) == ("h264", 640, 360)
    assert pr.info.fps == pytest.approx(clip.fps, abs=0.01)
    assert [len(g.packets) for g in gops] == [161, FRAMES - 161]
    received = [p.data for g in gops for p in g.packets]
    assert all(data == clip.annexb(i) for i, data in enumerate(received))
    assert clip.idr(0) and clip.idr(161)
    assert gops[0].header["framing"] == "annexb"


def test_mutants_are_seeded_and_differ_from_the_honest_stream(clip: Clip) -> None:
    url = "rtsp://127.0.0.1:1/stream"
    honest = plan(clip, url, None)
    for kind in KINDS:
        a = plan(clip, url, f"{SEED}/{kind}", (kind,))
        b = plan(clip, url, f"{SEED}/{kind}", (kind,))
        assert (a.sdp, a.chunks, a.stall) == (b.sdp, b.chunks, b.stall), kind
        if kind == "reply":
            assert a.reply is not None
        else:
            assert (a.sdp, a.chunks) != (honest.sdp, honest.chunks), kind


def test_hostile_rtp_sessions_end_in_one_line_errors(clip: Clip, hang_guard: None) -> None:
    outcomes: list[_Outcome] = []
    served: set[str] = set()
    for i in range(MUTANTS):
        kinds = _kinds(i)
        with _server(clip, f"{SEED}/{i}", kinds, sessions=3) as server:
            outcomes.append(_guarded(server.url, f"mutant {i} {kinds}"))
            served.update(k for s in server.served for k in s.mutations)
    assert len(outcomes) == MUTANTS
    assert served == set(KINDS)  # every kind was served
    read = [o for o in outcomes if o.stage == "read"]
    assert len(read) >= MUTANTS // 2, [(o.stage, str(o.error)) for o in outcomes]
    assert sum(o.packets > 0 for o in read) >= MUTANTS // 3  # mutated packets reached GOPs
    assert any("read timeout" in str(o.error) for o in read)  # a stall was noticed
    # at the end, the server stops serving: the last reconnect is refused
    assert sum("on every reconnect attempt" in str(o.error) for o in read) >= MUTANTS // 3


def test_a_redirect_never_takes_ingest_to_another_host(clip: Clip, hang_guard: None) -> None:
    """A camera that answers DESCRIBE with 301 to another server: ingest must not read that
    server's stream under the configured camera's name (nor take it out of kontur's TLS).
    libavformat would follow it (and offer the camera's credentials there on a 401); the
    relay refuses the reply before FFmpeg reads it (ADR 0037), and the refusal is final."""
    with _server(clip, None, (), sessions=2) as elsewhere:
        url: list[str] = []

        def moved(n: int) -> Plan:
            honest = plan(clip, url[0], None)
            honest.reply = redirect(elsewhere.url)
            return honest

        with HostileRtspServer(moved, sessions=2) as camera:
            url.append(camera.url)
            out = _guarded(camera.url, "redirecting camera")
    assert not elsewhere.served, f"ingest followed the camera's redirect to {elsewhere.url}"
    assert isinstance(out.error, ReplyRefused) and out.stage == "probe", str(out.error)
    assert str(out.error) == (
        f"source {camera.url}: camera answered DESCRIBE with 301 to {elsewhere.url}: "
        "expected no redirect (a camera may not send kontur elsewhere)"
    )
    assert len(camera.served) == 1  # refused, not retried


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason="decoder sandbox: root")
def test_hostile_rtp_through_the_sandboxed_decoder(
    tmp_path: Path, clip: Clip, hang_guard: None
) -> None:
    """Mutant sessions decoded by the sandboxed decoder (ADR 0038). In the first one the
    decoder child is killed mid-GOP, as an exploit would crash it: the decoder is lost, the
    rest of that GOP counts as not decoded, a fresh child decodes the next GOP, and ingest
    reads on to the stream's end."""
    events: list[str] = []
    settings = DecoderSettings(sandbox={"scratch_dir": str(tmp_path / "dec")},
                               slot_bytes=3 * 1920 * 1080, timeout_s=5.0,
                               max_restarts=1000)  # fmt: skip
    decoder = SandboxedDecoder(settings, lambda kind, *_: events.append(kind))
    tally = {"decoded": 0, "failed": 0, "after_loss": 0}

    def on_frame(frame: DecodedFrame) -> None:
        tally["decoded" if frame.image is not None else "failed"] += 1
        if frame.image is not None and "crashed" in events:
            tally["after_loss"] += 1
        if tally["decoded"] == 40 and "crashed" not in events:
            assert decoder.inject_crash()

    try:
        reached = 0
        decoded = [("payload",), ("fu_bits",), ("truncate", "seq"), ("aggregate",)]
        for i, kinds in enumerate(decoded):
            with _server(clip, f"{SEED}/decode/{i}", kinds, sessions=2) as server:
                out = _guarded(server.url, f"decoded mutant {i} {kinds}", decoder, on_frame)
            assert isinstance(out.error, SourceUnreachable), (kinds, str(out.error))
            reached += out.packets > 0
        assert reached >= 3
        assert events[:2] == ["started", "crashed"] and events.count("started") >= 2, events
        assert tally["failed"] >= 100, tally  # the rest of GOP 0 after frame 40 (161 frames)
        assert tally["after_loss"] >= 3 * FRAMES // 2, tally  # fresh children decode on
        assert not decoder.given_up
    finally:
        decoder.close()
