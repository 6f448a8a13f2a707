"""The pure ingest core of one camera: packets and frames in; publish, store and close out.

:class:`IngestCore` holds the state machine that turns one camera's stream into verdicts:
the trust shell (:class:`~kontur.ingest.trust.CameraTrust`: Media Signing, then freshness),
the GOPs cut and waiting for their signature verdict, the per-GOP checks
(:class:`~kontur.ingest.checks.GopChecker`, when given a profile), the signed-time check
(:mod:`kontur.ingest.signedtime`, ADR 0018) and the merge of all findings into one
:class:`~kontur.ingest.verdict.GopVerdict`. It reads no clock, opens no file, talks to no
process: what it needs from outside is handed in (the freshness guard, which owns the
trusted clock and the replay state, the packets, the frames), and what must happen outside
comes back as frozen events, in the order the shell must act on them.

Two shells drive it: the live ingest process (:class:`kontur.ingest.process.IngestLoop`:
demux, sandboxed decoder, ring, pipes, segment store, tamper monitor) and
:func:`kontur.ingest.recording.check_recording` (``kontur verify`` and the attack suite),
so the attack suite exercises the verdict logic of the live path.

Steps, in order (a step out of order raises :class:`RuntimeError`, a caller bug):

1. :meth:`IngestCore.start` once, with the first packet's GOP header and stream info;
2. for each GOP: its packets one by one as demuxed (:meth:`IngestCore.packet`), and in
   default mode its frames as the decoder returns them (:meth:`IngestCore.frame`, a picture
   that did not decode as ``image=None``; each decoded one comes back as a
   :class:`Publish`), with :meth:`IngestCore.unpublished` for a frame the shell could not
   publish;
3. the GOP cut: :meth:`IngestCore.cut` returns its :class:`StoreSegment`; the shell stores
   it, then :meth:`IngestCore.stored` with the segment's ref (None when nothing is stored);
4. a GOP is decided by a packet of a later GOP, its cut, or the end: default mode closes it
   at once (:class:`Closed`); strict mode (verify before decode) returns a :class:`Decode`
   first, and the shell feeds that GOP's decoded frames (:meth:`IngestCore.frame`) and then
   :meth:`IngestCore.decoded` before any other step;
5. :meth:`IngestCore.finish` at the end of the source (with the signed end of stream's
   packet, if the shell has one): the trust shell decides what is left.

A GOP's verdict merges, in this order: the trust findings, the checker's (profile,
decodability, timestamps) and the frames not published, the GOP's notes (a reconnect is
MISSING, others change no verdict), then the signed-time check of its frames' times.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from cryptography import x509

from kontur.ingest.checks import Finding, GopChecker, StreamInfo, merge_findings
from kontur.ingest.inventory import FreshnessGuard
from kontur.ingest.segment import SegmentPacket
from kontur.ingest.signedtime import FrameSpan, SignedTimeCheck, TimeCheck, TimeCheckPolicy
from kontur.ingest.source import DecodedFrame, FrameTimes, RawGop
from kontur.ingest.trust import CameraTrust, GopTrust
from kontur.ingest.verdict import GopVerdict, Verdict

if TYPE_CHECKING:
    from kontur.archive import SegmentRef

__all__ = ["DEMO_TIMES", "Closed", "Decode", "Event", "IngestCore", "Publish", "StoreSegment"]

#: Why the demo camera's GOPs are not time-checked: it signs inside ingest, after the demuxer.
DEMO_TIMES = (
    "signed by the simulated demo camera with the time ingest read it, after the container "
    "(its times say nothing about the container's)"
)

#: The trust finding of a GOP still held at the end whose signature never came.
UNDECIDED = "no signature verdict reached"


@dataclass(frozen=True, eq=False)
class Publish:
    """A decoded frame for analysis (its image lives until the shell's next step)."""

    image: np.ndarray
    pts_s: float
    gop_index: int
    frame_index: int


@dataclass(frozen=True)
class StoreSegment:
    """Packets to store as one write-once segment before anyone hears of them."""

    gop_index: int
    header: dict[str, object]
    packets: tuple[SegmentPacket, ...]

    @property
    def end_of_stream(self) -> bool:
        """The signed end of stream's own segment."""
        return bool(self.header.get("end_of_stream"))


@dataclass(frozen=True)
class Decode:
    """Strict mode: decode these verified bytes now (``decode`` False: nothing may reach the
    decoder), feed their frames, then call :meth:`IngestCore.decoded`."""

    gop_index: int
    packets: tuple[SegmentPacket, ...]
    pictures: tuple[bool, ...]
    """Whether each packet carries a picture (an SEI-only access unit is not decoded)."""
    decode: bool


@dataclass(frozen=True)
class Closed:
    """A GOP's verdict, the trust facts behind it and the frames it covers."""

    verdict: GopVerdict
    trust: GopTrust
    time: TimeCheck
    first_frame: int
    last_frame: int
    start_pts_s: float
    end_pts_s: float
    decoded: bool
    segment: SegmentRef | None

    def signature(self) -> dict[str, object]:
        """The signature and time facts the archive keeps next to the verdict."""
        return {**self.trust.record(), "time": self.time.record()}


#: What a step returns, in the order the shell must act on it.
Event = Publish | StoreSegment | Decode | Closed


@dataclass
class _Held:
    """A GOP cut (and in default mode published), waiting for its signature verdict."""

    info: StreamInfo
    packets: list[SegmentPacket]
    notes: list[str]
    times: FrameTimes
    """Its frames' count and time span (never their images)."""
    first_frame: int
    last_frame: int
    findings: list[Finding] = field(default_factory=list)
    segment: SegmentRef | None = None


@dataclass
class _Decoding:
    """Strict mode: the GOP whose frames the shell is feeding."""

    trust: GopTrust
    held: _Held
    ahead: list[float] = field(default_factory=list)
    """Times of the frames that failed before the first one decoded (its size opens it)."""
    begun: bool = False


class IngestCore:
    """One camera's ingest state machine (see the module docstring for the steps)."""

    def __init__(
        self,
        camera_id: str,
        *,
        checker: GopChecker | None = None,
        strict: bool = False,
        first_gop: int = 0,
        first_frame: int = 0,
        anchors: Sequence[x509.Certificate] = (),
        time_policy: TimeCheckPolicy | None = None,
        report_all: bool = False,
    ) -> None:
        """``checker`` None: no profile, decode or timestamp checks (a recording checked
        without decoding). ``report_all`` (a recording check): every GOP the signature
        decided is closed, cut or not, and only those; otherwise (live) every GOP cut is
        closed, one whose signature never came as PENDING."""
        self.camera_id = camera_id
        self.checker = checker
        self.strict = strict
        self.anchors = tuple(anchors)
        self.first_gop = first_gop
        self.report_all = report_all
        self.times = SignedTimeCheck(time_policy)
        self.trust: CameraTrust | None = None
        self.demo = False
        self.read = first_gop
        """The index of the GOP being read (the next one cut)."""
        self.frames = first_frame
        """The index the next frame gets."""
        self._info: StreamInfo | None = None
        self._gop_first: int | None = None
        self._times = FrameTimes()
        self._unpublished: Counter[str] = Counter()
        self._held: dict[int, _Held] = {}
        self._early: dict[int, GopTrust] = {}
        self._queue: deque[GopTrust] = deque()
        self._cutting: _Held | None = None
        self._decoding: _Decoding | None = None
        self._ended = False

    # -- steps ---------------------------------------------------------------------------

    def start(
        self,
        header: dict[str, object],
        info: StreamInfo,
        *,
        guard: FreshnessGuard | None,
        demo: bool = False,
    ) -> None:
        """Step 1: the trust shell for this stream. ``demo``: the simulated demo camera signs
        the packets inside ingest (its times are not checked, its segments say so)."""
        if self.trust is not None:
            raise RuntimeError("expected start() once, got a second call")
        self.trust = CameraTrust(
            self.camera_id,
            info.codec,
            header,
            guard=guard,
            anchors=self.anchors,
            first_gop=self.first_gop,
        )
        self.demo = demo

    @property
    def started(self) -> bool:
        """Whether :meth:`start` was called."""
        return self.trust is not None

    def packet(self, packet: SegmentPacket, info: StreamInfo) -> list[Event]:
        """Step 2: one packet of GOP ``read`` as demuxed; the GOPs it decided, acted on."""
        trust = self._ready("packet()")
        self._info = info
        self._queue.extend(trust.push_packet(self.read, packet, info))
        return self._drain()

    def frame(self, pts_s: float, image: np.ndarray | None) -> list[Publish]:
        """Steps 2 and 4: one frame as decoded (``image`` None: it did not decode)."""
        if self._decoding is not None:
            return self._decoded_frame(self._decoding, pts_s, image)
        self._ready("frame()")
        if self.strict:
            raise RuntimeError("expected frames only after a Decode in strict mode, got one")
        if self._gop_first is None:
            info = self._info
            if info is None:
                raise RuntimeError("expected a packet before the first frame, got none")
            if image is not None:
                h, w = image.shape[:2]
                info = dataclasses.replace(info, width=int(w), height=int(h))
            self._begin(info, self.read)
            self._gop_first = self.frames
        self._times.add(DecodedFrame(pts_s, image))
        if self.checker is not None:
            self.checker.frame(pts_s, image is not None)
        return self._next_frame(pts_s, image, self.read)

    def unpublished(self, why: str) -> None:
        """A frame the shell could not publish for analysis: its GOP's verdict says why."""
        self._unpublished[why] += 1

    def cut(self, gop: RawGop, notes: Sequence[str]) -> StoreSegment:
        """Step 3: GOP ``read`` ends (``gop`` as demuxed; ``notes`` go on its verdict)."""
        self._ready("cut()")
        index = self.read
        self.read += 1
        header = dict(gop.header, camera_id=self.camera_id, gop_index=index)
        if self.demo:
            header["signed_by"] = "kontur demo camera (simulated, throwaway key)"
        first = self.frames if self._gop_first is None else self._gop_first
        held = _Held(gop.info, list(gop.packets), list(notes), self._times, first, first)
        self._times = FrameTimes()
        if not self.strict:
            # its frames were published as decoded; a GOP without one still counts
            if self._gop_first is None and self.checker is not None:
                self.checker.begin(gop.info)
            self._gop_first = None
            held.findings = [*self._close_checker(), *self._take_unpublished()]
            held.last_frame = max(first, self.frames - 1)
        self._cutting = held
        return StoreSegment(index, header, tuple(gop.packets))

    def stored(self, segment: SegmentRef | None) -> list[Event]:
        """Step 3, second half: the cut GOP's segment is stored; it waits for its verdict."""
        held = self._cutting
        if held is None:
            raise RuntimeError("expected stored() after cut(), got it without a cut")
        assert self.trust is not None
        self._cutting = None
        index = self.read - 1
        held.segment = segment
        self._held[index] = held
        self.trust.set_info(index, held.info)  # the decoded size, for the profile check
        early = self._early.pop(index, None)
        if early is not None:
            self._queue.append(early)
        return self._drain()

    def decoded(self, notes: Sequence[str] = ()) -> list[Event]:
        """Step 4, strict mode: the GOP of the last :class:`Decode` is fed whole; ``notes``
        (decoder losses) go on its verdict. Returns its :class:`Closed`, then what follows."""
        d = self._decoding
        if d is None:
            raise RuntimeError("expected decoded() after a Decode, got it without one")
        held = d.held
        if not d.begun:
            self._open_decoded(d, held.info)
        held.findings = [*self._close_checker(), *self._take_unpublished()]
        held.last_frame = max(held.first_frame, self.frames - 1)
        held.notes += notes
        decode = d.trust.decodable
        if not decode:
            if self.checker is not None:
                self.checker.resync()
            # a note, not a finding: the trust findings already say why it failed
            held.findings.append(
                (Verdict.AUTHENTIC, "strict mode: not decoded (verify before decode)")
            )
        self._decoding = None
        return [self._closed(d.trust, held, decode), *self._drain()]

    def finish(self, tail: SegmentPacket | None = None) -> list[Event]:
        """Step 5: the end of the source. ``tail`` (the demo camera's signed end of stream)
        is stored on its own and joins the last GOP cut; then the trust shell decides what
        is left and every GOP still held closes (PENDING without a verdict, unless
        ``report_all``)."""
        if self._ended:
            raise RuntimeError("expected finish() once, got a second call")
        if self._cutting is not None or self._decoding is not None:
            raise RuntimeError("expected finish() between GOPs, got it inside a step")
        self._ended = True
        trust = self.trust
        if trust is None:
            return []  # the source ended before its first packet
        out: list[Event] = []
        if tail is not None:
            index = self.read - 1
            header = {"camera_id": self.camera_id, "gop_index": index, "end_of_stream": True}
            out.append(StoreSegment(index, header, (tail,)))
            held = self._held.get(index)
            if held is not None:
                held.packets.append(tail)
                self._queue.extend(trust.push(index, [tail], held.info))
        self._queue.extend(trust.finish())
        return [*out, *self._drain()]

    def abort(self) -> None:
        """The shell failed inside a step (a store or a decoder that raised): forget the GOP
        being stored or decoded and the verdicts waiting behind it; the GOPs still held
        close at :meth:`finish` (PENDING), as if those verdicts never came."""
        self._cutting = None
        self._decoding = None
        self._queue.clear()

    def pictures(self, packets: Sequence[SegmentPacket]) -> list[bool]:
        """Whether each packet carries a picture (:meth:`CameraTrust.pictures`)."""
        return self._ready("pictures()").pictures(packets)

    # -- inside --------------------------------------------------------------------------

    def _ready(self, step: str) -> CameraTrust:
        if self.trust is None:
            raise RuntimeError(f"expected start() before {step}, got none")
        if self._cutting is not None:
            raise RuntimeError(f"expected stored() after cut(), got {step}")
        if self._decoding is not None:
            raise RuntimeError(f"expected frames then decoded() after a Decode, got {step}")
        if self._ended:
            raise RuntimeError(f"expected {step} before finish(), got it after")
        return self.trust

    def _begin(self, info: StreamInfo, index: int) -> None:
        if self.checker is None:
            return
        got = self.checker.begin(info)
        if got != index:
            raise RuntimeError(f"expected checker GOP {index}, got {got}")

    def _close_checker(self) -> list[Finding]:
        return [] if self.checker is None else self.checker.close_findings()[1]

    def _take_unpublished(self) -> list[Finding]:
        """The findings for the frames of a GOP that were not published (then forgets them)."""
        found = [
            (Verdict.PROFILE_CHANGED, f"{n} frame(s) not published for analysis: {why}")
            for why, n in self._unpublished.items()
        ]
        self._unpublished.clear()
        return found

    def _next_frame(self, pts_s: float, image: np.ndarray | None, index: int) -> list[Publish]:
        out = [] if image is None else [Publish(image, pts_s, index, self.frames)]
        self.frames += 1
        return out

    def _decoded_frame(self, d: _Decoding, pts_s: float, image: np.ndarray | None) -> list[Publish]:
        """Strict mode: a frame of the GOP being decoded. The checker opens the GOP with the
        size of its first decoded frame; the frames that failed before it wait (no image)."""
        d.held.times.add(DecodedFrame(pts_s, image))
        if not d.begun:
            if image is None:
                d.ahead.append(pts_s)
                return self._next_frame(pts_s, image, d.trust.gop_index)
            h, w = image.shape[:2]
            self._open_decoded(d, dataclasses.replace(d.held.info, width=int(w), height=int(h)))
        if self.checker is not None:
            self.checker.frame(pts_s, image is not None)
        return self._next_frame(pts_s, image, d.trust.gop_index)

    def _open_decoded(self, d: _Decoding, info: StreamInfo) -> None:
        d.held.info = info
        self._begin(info, d.trust.gop_index)
        d.begun = True
        if self.checker is not None:
            for pts_s in d.ahead:
                self.checker.frame(pts_s, False)
        d.ahead = []

    def _drain(self) -> list[Event]:
        """Act on the decided GOPs in order: close each (or, strict, stop at its Decode); a
        verdict on a GOP not cut yet waits for its cut. At the end, what is still held."""
        out: list[Event] = []
        while self._decoding is None:
            if not self._queue and not self._end_queue():
                break
            t = self._queue.popleft()
            held = self._held.pop(t.gop_index, None)
            if held is None:
                self._early[t.gop_index] = t
            elif self.strict:
                out.append(self._decode(t, held))
            else:
                out.append(self._closed(t, held, True))
        return out

    def _end_queue(self) -> bool:
        """At the end: queue the next GOP to close without a verdict, if any; False if none."""
        if not self._ended:
            return False
        if self.report_all:
            if not self._early:
                return False
            index = min(self._early)
            t = self._early.pop(index)
            self._held[index] = _Held(StreamInfo("", 0, 0, 0.0), [], [], FrameTimes(), 0, 0)
            self._queue.append(t)
            return True
        if not self._held:
            return False
        index = min(self._held)
        self._queue.append(GopTrust(index, ((Verdict.PENDING, UNDECIDED),)))
        return True

    def _decode(self, t: GopTrust, held: _Held) -> Decode:
        assert self.trust is not None
        held.first_frame = self.frames
        held.times = FrameTimes()
        self._decoding = _Decoding(t, held)
        pictures = tuple(self.trust.pictures(held.packets))
        return Decode(t.gop_index, tuple(held.packets), pictures, t.decodable)

    def _closed(self, t: GopTrust, held: _Held, decoded: bool) -> Closed:
        """The verdict of a decided GOP: trust, checks, notes, then its signed time."""
        notes = [
            (Verdict.MISSING if "reconnected" in n else Verdict.AUTHENTIC, n) for n in held.notes
        ]
        timed = self._check_time(t, held)
        findings = [*t.findings, *held.findings, *notes, *timed.findings()]
        return Closed(
            verdict=merge_findings(self.camera_id, t.gop_index, findings),
            trust=t,
            time=timed,
            first_frame=held.first_frame,
            last_frame=held.last_frame,
            start_pts_s=held.times.start_pts_s,
            end_pts_s=held.times.end_pts_s,
            decoded=decoded,
            segment=held.segment,
        )

    def _check_time(self, t: GopTrust, held: _Held) -> TimeCheck:
        """The GOP's frame times (what the dwell timer and the verifier use) against its
        signed capture times (ADR 0018); a reconnect starts a new timeline."""
        if any("reconnected" in n for n in held.notes):
            self.times.resync()
        times = held.times
        frames = FrameSpan(times.start_pts_s, times.end_pts_s) if times.count else None
        signed = DEMO_TIMES if self.demo else t.signed_times()
        return self.times.check(t.gop_index, signed, frames)
