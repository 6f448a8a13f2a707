"""A hostile RTSP camera on loopback: real footage as RTP over TCP, optionally mutated.

The RTP fuzz tests (ADR 0038: the RTSP/RTP client still parses untrusted bytes inside
ingest) need a peer that says what a real camera says, byte for byte, and can then lie in
exactly chosen, seeded ways. gst-rtsp-server cannot be made to lie, so this is a small
server of its own: one thread per connection, plain sockets, nothing else.

It answers OPTIONS, DESCRIBE (an SDP for H264/90000, payload type 96, packetization-mode=1,
sprop-parameter-sets from the clip's SPS/PPS, ``a=control``), SETUP (RTP/AVP/TCP, unicast,
interleaved=0-1, a Session), PLAY, GET_PARAMETER and TEARDOWN, then streams the clip's
access units as RTP (RFC 6184: single NAL unit packets, FU-A for NAL units over
:data:`MTU`, 90 kHz timestamps, the marker bit on an access unit's last packet) framed
``$ channel length16 packet`` (RFC 2326 §10.12), and closes its side.

A :class:`Plan` says what one connection gets; :func:`plan` draws one from a seed and the
mutation kinds in :data:`KINDS` (flipped RTP header and payload bytes, interleaved lengths
that lie, truncated packets, broken FU-A start/end bits, aggregation packets with lying
sizes, sequence jumps, duplicates and drops, garbage between frames, malformed RTCP,
malformed SDP, malformed RTSP replies, a stall, a cut mid-packet). The same seed gives the
same bytes on the wire.

The server serves ``sessions`` connections, then stops listening: a client that reconnects
once more is refused, so a reconnecting reader ends.
"""

from __future__ import annotations

import base64
import random
import re
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av

__all__ = ["KINDS", "MTU", "Clip", "HostileRtspServer", "Plan", "Served", "plan", "redirect"]

#: Largest NAL unit sent whole; larger ones go as FU-A fragments of this payload size.
MTU = 1400
START = b"\x00\x00\x00\x01"
PT = 96
FU_A, STAP_A = 28, 24


@dataclass(frozen=True)
class Clip:
    """An H.264 clip as a camera sends it: NAL units per access unit, in decode order."""

    sps: bytes
    pps: bytes
    units: tuple[tuple[bytes, ...], ...]
    """Each access unit's NAL units (no start codes); an IDR's is led by SPS and PPS, as a
    camera repeats its parameter sets in band."""
    pts90: tuple[int, ...]
    """Each access unit's presentation time on the 90 kHz RTP clock."""
    fps: float

    @classmethod
    def from_mp4(cls, path: Path, frames: int) -> Clip:
        """The first ``frames`` samples of ``path``, split on their avcC length prefixes."""
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            sps, pps, size = _avcc_parameter_sets(bytes(stream.codec_context.extradata or b""))
            tb, rate = stream.time_base, stream.average_rate
            assert tb is not None and rate is not None
            units: list[tuple[bytes, ...]] = []
            pts: list[int] = []
            for packet in container.demux(stream):
                if len(units) >= frames:
                    break
                if not packet.size:
                    continue
                nals = _split_lengths(bytes(packet), size)
                if any(n[0] & 0x1F == 5 for n in nals):
                    nals = [sps, pps, *nals]
                units.append(tuple(nals))
                assert packet.pts is not None
                pts.append(round(packet.pts * tb * 90000))
        return cls(sps, pps, tuple(units), tuple(pts), float(rate))

    def annexb(self, index: int) -> bytes:
        """Access unit ``index`` with 4-byte start codes: what FFmpeg's depacketiser yields."""
        return b"".join(START + nal for nal in self.units[index])

    def idr(self, index: int) -> bool:
        """Whether access unit ``index`` holds an IDR slice."""
        return any(n[0] & 0x1F == 5 for n in self.units[index])


def _avcc_parameter_sets(avcc: bytes) -> tuple[bytes, bytes, int]:
    """The first SPS, the first PPS and the NAL length size of an avcC record (ISO 14496-15
    §5.3.3.1)."""
    size = (avcc[4] & 3) + 1
    pos = 6
    sps_len = int.from_bytes(avcc[pos : pos + 2], "big")
    sps = avcc[pos + 2 : pos + 2 + sps_len]
    pos += 2 + sps_len + 1  # numOfPictureParameterSets
    pps_len = int.from_bytes(avcc[pos : pos + 2], "big")
    return sps, avcc[pos + 2 : pos + 2 + pps_len], size


def _split_lengths(sample: bytes, size: int) -> list[bytes]:
    out, pos = [], 0
    while pos < len(sample):
        n = int.from_bytes(sample[pos : pos + size], "big")
        out.append(sample[pos + size : pos + size + n])
        pos += size + n
    return out


@dataclass
class Rtp:
    """One interleaved frame on the way out: channel, RTP packet, and a length that may lie."""

    data: bytearray
    channel: int = 0
    length: int | None = None
    """The interleaved length field when it differs from ``len(data)``."""

    def frame(self) -> bytes:
        """``$ channel length16 data`` (RFC 2326 §10.12)."""
        n = len(self.data) if self.length is None else self.length
        return b"$" + bytes([self.channel & 0xFF]) + (n & 0xFFFF).to_bytes(2, "big") + self.data


def _rtp(seq: int, ts: int, ssrc: int, marker: bool, payload: bytes) -> Rtp:
    head = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | PT, seq & 0xFFFF,
                       ts & 0xFFFFFFFF, ssrc)  # fmt: skip
    return Rtp(bytearray(head + payload))


def packetize(clip: Clip, seq0: int, ts0: int, ssrc: int) -> list[Rtp]:
    """The clip as RTP (RFC 6184 §5.6 single NAL unit packets, §5.8 FU-A)."""
    out: list[Rtp] = []
    for unit, pts in zip(clip.units, clip.pts90, strict=True):
        payloads: list[bytes] = []
        for nal in unit:
            if len(nal) <= MTU:
                payloads.append(nal)
                continue
            indicator = (nal[0] & 0xE0) | FU_A
            body = nal[1:]
            chunks = [body[i : i + MTU] for i in range(0, len(body), MTU)]
            for k, chunk in enumerate(chunks):
                fu = (0x80 if k == 0 else 0) | (0x40 if k == len(chunks) - 1 else 0)
                payloads.append(bytes([indicator, fu | (nal[0] & 0x1F)]) + chunk)
        for k, payload in enumerate(payloads):
            out.append(_rtp(seq0 + len(out), ts0 + pts, ssrc, k == len(payloads) - 1, payload))
    return out


def sdp(clip: Clip, url: str, fmtp: str | None = None, extra: str = "") -> str:
    """The session description of an honest H.264 camera (RFC 6184 §8.1)."""
    if fmtp is None:
        sets = b",".join(base64.b64encode(p) for p in (clip.sps, clip.pps)).decode()
        fmtp = (
            f"packetization-mode=1;profile-level-id={clip.sps[1:4].hex()};"
            f"sprop-parameter-sets={sets}"
        )
    lines = [
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.1",
        "s=kontur hostile camera",
        "c=IN IP4 0.0.0.0",
        "t=0 0",
        "a=control:*",
        f"m=video 0 RTP/AVP {PT}",
        f"a=rtpmap:{PT} H264/90000",
        f"a=fmtp:{PT} {fmtp}",
        f"a=framerate:{clip.fps:g}",
        f"a=control:{url}/trackID=0",
    ]
    return "\r\n".join(lines) + "\r\n" + extra


@dataclass
class Plan:
    """What one connection gets: its SDP, the bytes after PLAY, and how the server ends."""

    sdp: str
    chunks: list[bytes]
    mutations: list[str] = field(default_factory=list)
    stall: bool = False
    """Fall silent after the chunks, holding the connection open, instead of closing."""
    reply: Callable[[str, bytes], bytes] | None = None
    """Rewrites the RTSP reply to a method (the method, the honest reply)."""


# ---------------------------------------------------------------- mutations
# Each takes the packets (or the plan) and a seeded random.Random, and says what it did.


def _some(rng: random.Random, items: list[Rtp], most: int = 8) -> list[Rtp]:
    return rng.sample(items, min(len(items), rng.randint(1, most)))


def _flip(buf: bytearray, lo: int, hi: int, rng: random.Random) -> None:
    if hi > lo:
        buf[rng.randrange(lo, hi)] ^= 1 << rng.randrange(8)


def m_rtp_header(pk: list[Rtp], rng: random.Random) -> str:
    """Bits flipped in RTP headers: version, padding, extension, CSRC count, PT, seq, ts."""
    for p in _some(rng, pk):
        for _ in range(rng.randint(1, 4)):
            _flip(p.data, 0, 12, rng)
    return "rtp_header"


def m_payload(pk: list[Rtp], rng: random.Random) -> str:
    """Bits flipped in payloads, mostly in the NAL / FU headers that steer depacketising."""
    for p in _some(rng, pk, 16):
        for _ in range(rng.randint(1, 4)):
            hi = 14 if rng.random() < 0.6 else len(p.data)
            _flip(p.data, 12, min(hi, len(p.data)), rng)
    return "payload"


def m_length(pk: list[Rtp], rng: random.Random) -> str:
    """Interleaved length fields that lie: zero, under a header, far too long, off by a few."""
    for p in _some(rng, pk, 3):
        n = len(p.data)
        p.length = rng.choice([0, 1, rng.randint(2, 11), 0xFFFF, n + rng.randint(1, 64),
                               max(0, n - rng.randint(1, 64))])  # fmt: skip
    return "length"


def m_truncate(pk: list[Rtp], rng: random.Random) -> str:
    """Packets cut short, length fields consistent: no payload, half a header, half an FU."""
    for p in _some(rng, pk, 6):
        del p.data[rng.randint(0, max(0, len(p.data) - 1)) :]
    return "truncate"


def m_fu_bits(pk: list[Rtp], rng: random.Random) -> str:
    """FU-A start/end bits broken: starts lost, ends doubled, both set, FU-B in place of FU-A."""
    fus = [p for p in pk if len(p.data) > 13 and p.data[12] & 0x1F == FU_A]
    for p in _some(rng, fus, 10):
        how = rng.randrange(4)
        if how == 0:
            p.data[13] &= 0x7F  # start bit cleared
        elif how == 1:
            p.data[13] |= 0x40  # end bit set in the middle
        elif how == 2:
            p.data[13] |= 0xC0  # start and end in one fragment
        else:
            p.data[12] = (p.data[12] & 0xE0) | 29  # FU-B (needs a DON, not allowed in mode 1)
    return "fu_bits"


def m_aggregate(pk: list[Rtp], rng: random.Random) -> str:
    """Aggregation packets (STAP-A/B, MTAP16/24) whose NAL sizes run past the packet."""
    for p in _some(rng, pk, 4):
        kind = rng.choice([STAP_A, 25, 26, 27])
        body = bytes(p.data[12:])
        size = rng.choice([0, 1, len(body) + rng.randint(1, 500), 0xFFFF])
        p.data[12:] = bytes([(body[0] & 0xE0) | kind]) + size.to_bytes(2, "big") + body
    return "aggregate"


def m_seq(pk: list[Rtp], rng: random.Random) -> str:
    """Sequence numbers that jump, packets dropped, duplicated and swapped."""
    at = rng.randrange(len(pk))
    jump = rng.choice([1, 2, 100, 0x7FFF, 0x8000, 0xFFFF])
    for p in pk[at:]:
        seq = (int.from_bytes(p.data[2:4], "big") + jump) & 0xFFFF
        p.data[2:4] = seq.to_bytes(2, "big")
    for _ in range(rng.randint(1, 6)):
        i = rng.randrange(len(pk) - 1)
        op = rng.randrange(3)
        if op == 0:
            del pk[i]
        elif op == 1:
            pk.insert(i, Rtp(bytearray(pk[i].data)))
        else:
            pk[i], pk[i + 1] = pk[i + 1], pk[i]
    return "seq"


def m_rtcp(pk: list[Rtp], rng: random.Random) -> str:
    """RTCP on channel 1 that lies: short, wrong lengths, BYE, SR with absurd NTP time."""
    for _ in range(rng.randint(1, 4)):
        ssrc = int.from_bytes(pk[0].data[8:12], "big")
        kind = rng.randrange(4)
        if kind == 0:  # SR whose length field claims more than is there
            body = struct.pack("!BBHIIIIII", 0x80, 200, 0xFFFF, ssrc, *(rng.getrandbits(32)
                               for _ in range(5)))  # fmt: skip
        elif kind == 1:  # BYE mid-stream
            body = struct.pack("!BBHI", 0x81, 203, 1, ssrc)
        elif kind == 2:  # a header and nothing else
            body = bytes([0x80, rng.randrange(192, 210)])
        else:
            body = rng.randbytes(rng.randint(1, 200))
        pk.insert(rng.randrange(len(pk)), Rtp(bytearray(body), channel=1))
    return "rtcp"


def m_channel(pk: list[Rtp], rng: random.Random) -> str:
    """Frames on channels nobody set up (2..255)."""
    for p in _some(rng, pk, 4):
        p.channel = rng.randint(2, 255)
    return "channel"


PACKET_MUTATIONS = {
    "rtp_header": m_rtp_header,
    "payload": m_payload,
    "length": m_length,
    "truncate": m_truncate,
    "fu_bits": m_fu_bits,
    "aggregate": m_aggregate,
    "seq": m_seq,
    "rtcp": m_rtcp,
    "channel": m_channel,
}


def _garbage(chunks: list[bytes], rng: random.Random) -> None:
    """Bytes between frames: noise, a stray ``$``, an RTSP reply nobody asked for."""
    for _ in range(rng.randint(1, 5)):
        junk = rng.choice([
            rng.randbytes(rng.randint(1, 300)),
            b"$",
            b"$\x00",
            b"RTSP/1.0 200 OK\r\nCSeq: 99\r\nContent-Length: 40\r\n\r\n" + rng.randbytes(8),
            b"\r\n\r\n",
            b"ANNOUNCE rtsp://x RTSP/1.0\r\nCSeq: 1\r\n\r\n",
        ])  # fmt: skip
        chunks.insert(rng.randrange(len(chunks) + 1), junk)


def _bad_sdp(clip: Clip, url: str, rng: random.Random) -> str:
    """An SDP that lies: bad base64 parameter sets, absurd sizes and rates, unknown modes."""
    good = b",".join(base64.b64encode(p) for p in (clip.sps, clip.pps)).decode()
    variants = [
        ("packetization-mode=1;sprop-parameter-sets=!!!not*base64,@@@", ""),
        ("packetization-mode=1;sprop-parameter-sets=" + good[:-3], ""),
        ("packetization-mode=1;sprop-parameter-sets=" + ",".join([good] * 300), ""),
        ("packetization-mode=1;sprop-parameter-sets="
         + base64.b64encode(rng.randbytes(600)).decode(), ""),
        ("packetization-mode=99;profile-level-id=zzzzzz;sprop-parameter-sets=" + good, ""),
        ("packetization-mode=1;profile-level-id=ffffffffffffffffffff;sprop-parameter-sets=,,,",
         ""),
        (None, "a=framerate:1e308\r\n"),
        (None, "a=framerate:-5\r\n"),
        (None, "a=framerate:nan\r\n"),
        (None, f"m=video 0 RTP/AVP {PT}\r\na=rtpmap:{PT} H264/0\r\n"),
        (None, "a=rtpmap:96 H264/4294967295\r\n"),
        ("sprop-parameter-sets=" + "A" * 20000, ""),
    ]  # fmt: skip
    fmtp, extra = rng.choice(variants)
    text = sdp(clip, url, fmtp, extra)
    if fmtp is None and "framerate" in extra:
        text = text.replace(f"a=framerate:{clip.fps:g}\r\n", "")
    return text


def _bad_reply(rng: random.Random) -> Callable[[str, bytes], bytes]:
    """An RTSP reply that lies in one method: status, Content-Length, Transport, Session."""
    method = rng.choice(["OPTIONS", "DESCRIBE", "SETUP", "PLAY"])
    how = rng.randrange(6)
    noise = rng.randbytes(40).replace(b"\n", b"")

    def rewrite(m: str, reply: bytes) -> bytes:
        if m != method:
            return reply
        head, _, body = reply.partition(b"\r\n\r\n")
        if how == 0:  # says more body than it sends
            head = re.sub(rb"\r\nContent-Length: \d+", b"", head)
            return head + b"\r\nContent-Length: 99999\r\n\r\n" + body
        if how == 1:
            return head.replace(b"CSeq: ", b"CSeq: 1") + b"\r\n\r\n" + body
        if how == 2:
            return head.replace(b"interleaved=0-1", b"interleaved=200-201") + b"\r\n\r\n" + body
        if how == 3:
            return head + b"\r\nSession: " + b"x" * 5000 + b";timeout=-1\r\n\r\n" + body
        if how == 4:
            return b"RTSP/1.0 301 Moved\r\n" + head.split(b"\r\n", 1)[1] + (
                b"\r\nLocation: rtsp://127.0.0.1:1/stream\r\n\r\n")  # fmt: skip
        return b"RTSP/1.0 " + noise + b"\r\n\r\n"

    return rewrite


def redirect(location: str) -> Callable[[str, bytes], bytes]:
    """A reply rewrite (:attr:`Plan.reply`): DESCRIBE answered ``301 Moved Permanently`` to
    ``location`` (RFC 2326 §11.3.2), as a camera that sends its client elsewhere."""

    def rewrite(method: str, reply: bytes) -> bytes:
        if method != "DESCRIBE":
            return reply
        cseq = reply.split(b"CSeq: ", 1)[1].split(b"\r\n", 1)[0]
        return b"RTSP/1.0 301 Moved Permanently\r\nCSeq: %s\r\nLocation: %s\r\n\r\n" % (
            cseq,
            location.encode(),
        )

    return rewrite


#: Every mutation kind :func:`plan` knows: packet mutations, then session ones.
KINDS = (*PACKET_MUTATIONS, "garbage", "sdp", "reply", "stall", "cut")


def plan(clip: Clip, url: str, seed: str | None, kinds: tuple[str, ...] = ()) -> Plan:
    """What a connection gets: the honest stream for ``seed`` None, else ``kinds`` applied
    with ``random.Random(seed)`` (the wire bytes depend on nothing else)."""
    rng = random.Random(seed or "honest")
    packets = packetize(clip, rng.getrandbits(16), rng.getrandbits(32), rng.getrandbits(32))
    out = Plan(sdp(clip, url), [])
    if seed is None:
        out.chunks = [p.frame() for p in packets]
        return out
    for kind in kinds:
        if kind in PACKET_MUTATIONS:
            PACKET_MUTATIONS[kind](packets, rng)
    out.chunks = [p.frame() for p in packets]
    if "garbage" in kinds:
        _garbage(out.chunks, rng)
    if "sdp" in kinds:
        out.sdp = _bad_sdp(clip, url, rng)
    if "reply" in kinds:
        out.reply = _bad_reply(rng)
    if "stall" in kinds:
        out.chunks = out.chunks[: rng.randrange(len(out.chunks))]
        out.stall = True
    if "cut" in kinds:
        at = rng.randrange(len(out.chunks))
        out.chunks = [*out.chunks[:at], out.chunks[at][: rng.randrange(len(out.chunks[at]))]]
    out.mutations = list(kinds)
    return out


# ---------------------------------------------------------------- the server


@dataclass
class Served:
    """One connection as served: the mutations it got, the requests it read (request line
    and headers) and the bytes it sent after PLAY."""

    mutations: list[str]
    requests: list[str] = field(default_factory=list)
    sent: int = 0


class HostileRtspServer:
    """Serves ``rtsp://127.0.0.1:PORT/stream`` for ``sessions`` connections, then refuses.

    Connection ``n`` gets ``plans(n)`` (see :func:`plan`). ``served`` records, per
    connection, the mutations it got and the bytes it sent after PLAY.
    """

    def __init__(self, plans: Callable[[int], Plan], sessions: int = 3) -> None:
        self._plans = plans
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"rtsp://127.0.0.1:{self._listener.getsockname()[1]}/stream"
        self.sessions = sessions
        self.served: list[Served] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept.start()

    def __enter__(self) -> HostileRtspServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening and end every connection."""
        self._stop.set()
        self._accept.join(5)
        for t in self._threads:
            t.join(5)

    def _accept_loop(self) -> None:
        try:
            n = 0
            while n < self.sessions and not self._stop.is_set():
                try:
                    conn, _ = self._listener.accept()
                except TimeoutError:
                    continue
                t = threading.Thread(target=self._connection, args=(conn, n), daemon=True)
                t.start()
                self._threads.append(t)
                n += 1
        finally:
            self._listener.close()  # the next connect is refused

    def _connection(self, conn: socket.socket, n: int) -> None:
        session = self._plans(n)
        record = Served(session.mutations)
        self.served.append(record)
        lock = threading.Lock()
        done = threading.Event()
        sender: threading.Thread | None = None
        conn.settimeout(0.2)
        try:
            reader = _Requests(conn, self._stop, record.requests)
            for method, cseq in reader:
                reply = self._reply(session, method, cseq)
                if session.reply is not None:
                    reply = session.reply(method, reply)
                with lock:
                    conn.sendall(reply)
                if method == "PLAY" and sender is None:
                    sender = threading.Thread(
                        target=self._stream, args=(conn, lock, session, done, record), daemon=True
                    )
                    sender.start()
                if method == "TEARDOWN":
                    break
        except OSError:
            pass
        finally:
            done.set()
            if sender is not None:
                sender.join(5)
            conn.close()

    def _reply(self, session: Plan, method: str, cseq: str) -> bytes:
        head = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n"
        body = b""
        if method == "OPTIONS":
            head += "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n"
        elif method == "DESCRIBE":
            body = session.sdp.encode("latin-1")
            head += f"Content-Base: {self.url}/\r\nContent-Type: application/sdp\r\n"
            head += f"Content-Length: {len(body)}\r\n"
        elif method == "SETUP":
            head += "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 4711;timeout=60\r\n"
        elif method in ("PLAY", "GET_PARAMETER", "TEARDOWN"):
            head += "Session: 4711\r\n"
        else:
            head = f"RTSP/1.0 501 Not Implemented\r\nCSeq: {cseq}\r\n"
        return head.encode() + b"\r\n" + body

    def _stream(
        self, conn: socket.socket, lock: threading.Lock, session: Plan, done: threading.Event,
        record: Served,
    ) -> None:  # fmt: skip
        try:
            for chunk in session.chunks:
                if done.is_set() or self._stop.is_set():
                    return
                with lock:
                    conn.sendall(chunk)
                record.sent += len(chunk)
            if not session.stall:
                conn.shutdown(socket.SHUT_WR)  # end of stream: FIN after the last byte
        except OSError:
            return


class _Requests:
    """RTSP requests from the client as ``(method, cseq)``, skipping interleaved frames
    (RTCP receiver reports); ends at EOF or when the server stops."""

    def __init__(self, conn: socket.socket, stop: threading.Event, log: list[str]) -> None:
        self._conn, self._stop, self._log, self._buf = conn, stop, log, b""

    def __iter__(self) -> _Requests:
        return self

    def _fill(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._conn.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise StopIteration
            self._buf += data
            return
        raise StopIteration

    def __next__(self) -> tuple[str, str]:
        while True:
            if self._buf[:1] == b"$":
                if len(self._buf) < 4:
                    self._fill()
                    continue
                n = 4 + int.from_bytes(self._buf[2:4], "big")
                if len(self._buf) < n:
                    self._fill()
                    continue
                self._buf = self._buf[n:]
                continue
            head, sep, rest = self._buf.partition(b"\r\n\r\n")
            if not sep:
                self._fill()
                continue
            lines = head.decode("latin-1").split("\r\n")
            fields = dict(
                (k.strip().lower(), v.strip())
                for k, _, v in (ln.partition(":") for ln in lines[1:])
            )
            length = int(fields.get("content-length", "0") or 0)
            if len(rest) < length:
                self._fill()
                continue
            self._buf = rest[length:]
            self._log.append("\r\n".join(lines))
            return lines[0].split(" ")[0], fields.get("cseq", "0")
