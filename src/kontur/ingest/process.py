"""The ingest process for one camera: demux, sign-check, archive, decode and publish frames.

Steps per GOP, in order:

1. demux the GOP's packets (:func:`read_gops`; in strict mode without decoding them);
2. a demo clip is signed on the fly by the simulated camera (:mod:`kontur.ingest.democam`);
3. store the packets as a write-once segment (fsynced before anyone hears of it), so
   recording never waits on verification or analytics;
4. default mode: decode at once and publish each frame to the shared-memory ring as soon as
   the decoder returns it;
5. feed the packets to the camera's trust shell (:class:`CameraTrust`: ONVIF Media Signing,
   then freshness, replay, key, revocation); it decides earlier GOPs, normally the previous
   one, whose signature travels in this GOP's second access unit;
6. for each decided GOP: strict mode decodes its *verified* bytes now and publishes them
   (a GOP that did not verify never reaches the decoder); the verdict merges the trust
   findings with :class:`GopChecker`'s (profile, decodability, timestamps, source notes)
   and the signed-time check of its frames' times (:mod:`kontur.ingest.signedtime`: the
   times decisions run on against the signed capture times, RETIMED when they disagree);
   :class:`GopClosed` goes to the supervisor (archive) and the gate.

At the end of the source the simulated camera's signed end of stream (if any) goes through
step 5, and the trust shell decides what is left (a stream cut mid-GOP stays PENDING).

Each decoded frame passes the camera's tamper monitor on its way to the ring
(:class:`~kontur.ingest.tamperwatch.TamperWatch`, ADR 0030): its alarms go to the supervisor
and the gate, and a GOP's verdict reaches the gate only once the monitor could have confirmed
an event on its frames.

Recording never waits on analytics: the ring waits only for readers that make progress, at
most ``max_wait_s`` a frame, and a live (URL) or paced (``realtime``) source never waits at
all: a frame the worker did not take in time is skipped for analysis (counted, and reported
as ``SourceEnded.frames_skipped``), never for recording.

Memory is bounded by design: no decoded image is held beyond the one being published. In
default mode each frame goes to the ring as it is decoded and its GOP keeps only its times
(:class:`FrameTimes`); strict mode streams a verified GOP's frames the same way
(:meth:`GopDecoder.frames`). What grows with a GOP's length is its compressed packets, which
the segment store and the trust shell need.

A frame that cannot be published (too large for the wire, a size that does not fit the
ring, any error while writing it) is not analysed; it is counted, the GOP's verdict says
why (PROFILE_CHANGED), and recording goes on: one bad frame never stops ingest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from kontur.archive import SegmentRef, SegmentStore
from kontur.clock import SystemClock
from kontur.config import Profile
from kontur.decoder.client import DecoderEventKind, DecoderSettings, SandboxedDecoder
from kontur.errors import KonturError
from kontur.ingest.checks import Finding, GopChecker, StreamInfo, merge_findings
from kontur.ingest.democam import DemoCamera
from kontur.ingest.freshness import FreshnessPolicy
from kontur.ingest.inventory import FreshnessGuard, FreshnessStore, Inventory
from kontur.ingest.revocation import Revocations, Revoked
from kontur.ingest.rtsp import RtspPolicy
from kontur.ingest.segment import SegmentPacket, pack_segment
from kontur.ingest.signedtime import FrameSpan, SignedTimeCheck, TimeCheck, TimeCheckPolicy
from kontur.ingest.source import (
    DecodedFrame,
    FrameTimes,
    GopDecoder,
    RawGop,
    is_live,
    probe,
    read_gops,
)
from kontur.ingest.tamperwatch import TamperWatch
from kontur.ingest.trust import OMS_CODECS, CameraTrust, GopTrust
from kontur.ingest.verdict import Verdict
from kontur.runtime.spec import install_stop_handler, read_spec, stop_requested
from kontur.wire import (
    ControlMessage,
    DecoderEvent,
    FrameReady,
    GopClosed,
    SegmentStored,
    SourceEnded,
)
from kontur.wire.channel import Inbox, Outbox
from kontur.wire.framering import WORKER_READER, FrameRing
from kontur.wire.messages import MAX_FRAME_SIDE
from kontur.worker.sandbox import IsolationReport

__all__ = ["IngestLoop", "main"]

#: Why the demo camera's GOPs are not time-checked: it signs inside ingest, after the demuxer.
DEMO_TIMES = (
    "signed by the simulated demo camera with the time ingest read it, after the container "
    "(its times say nothing about the container's)"
)


#: Stream time at which ``decoder-crash`` kills the decoder (as the worker faults start).
DECODER_FAULT_AT_S = 3.0


def _decoder_settings(spec: dict[str, Any], profile: Profile) -> DecoderSettings | None:
    """The sandboxed decoder's settings (ADR 0038); None when ``unsafe_in_process``.

    Without a ``decoder`` entry in the spec: the defaults, a scratch dir of its own under
    the system's temporary dir, the data dir denied. A slot of the frame buffer holds a frame
    of four times the profile's pixels (at least 1080p): a camera switching to more decodes
    nothing.
    """
    d = spec.get("decoder")
    if d is None:  # removed by main() at exit
        scratch = Path(tempfile.mkdtemp(prefix="kontur-decoder-"))
        d = {"sandbox": {"scratch_dir": str(scratch), "deny": [spec["data_dir"]]}}
    if d.get("in_process"):
        return None
    pixels = min(max(4 * profile.width * profile.height, 1920 * 1080), MAX_FRAME_SIDE**2)
    return DecoderSettings(
        sandbox={"required": "all", **d["sandbox"]},
        slot_bytes=3 * pixels,
        timeout_s=float(d.get("timeout_s", 10.0)),
        max_restarts=int(d.get("max_restarts", 5)),
        threads=int(d.get("threads", 0)),
    )


def _one_line(exc: Exception) -> str:
    """Why publishing a frame failed, in one line an operator can read."""
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(map(str, err['loc']))}: {err['msg']}"
    return (str(exc).splitlines() or [""])[0] or type(exc).__name__


def _sized(
    frames: Iterator[DecodedFrame],
) -> tuple[tuple[int, int] | None, Iterator[DecodedFrame]]:
    """The ``(width, height)`` of a GOP's first decoded image, and all its frames again.

    Reads ahead only to the first frame that decoded (the failed ones before it have no
    image), so no more than one image is held.
    """
    head: list[DecodedFrame] = []
    for fr in frames:
        head.append(fr)
        if fr.image is not None:
            break
    size = None
    if head and head[-1].image is not None:
        h, w = head[-1].image.shape[:2]
        size = (int(w), int(h))

    def replay() -> Iterator[DecodedFrame]:
        while head:
            yield head.pop(0)
        yield from frames

    return size, replay()


@dataclass
class _Held:
    """A GOP archived and (in default mode) published, waiting for its signature verdict."""

    info: StreamInfo
    packets: list[SegmentPacket]
    header: dict[str, object]
    notes: list[str]
    times: FrameTimes
    """Its frames' count and time span (never their images: those went to the ring)."""
    first_frame: int
    last_frame: int
    ref: SegmentRef
    findings: list[Finding] = field(default_factory=list)


class IngestLoop:
    """One camera's ingest, wired to its ring and pipes."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.camera_id: str = spec["camera_id"]
        self.source: str = spec["source"]
        self.profile = Profile.model_validate(spec["profile"])
        # an ingest restarted on a live camera goes on from the supervisor's frame and GOP
        self.first_gop: int = spec.get("first_gop", 0)
        self.checker = GopChecker(self.camera_id, self.profile, first_index=self.first_gop)
        self.data_dir = Path(spec["data_dir"])
        self.store = SegmentStore(self.data_dir)
        self.ring = FrameRing(
            spec["ring"],
            spec["slots"],
            self.profile.height,
            self.profile.width,
            spec["readers"],
            create=False,
        )
        self.wake_fds: list[int] = list(spec["wake_fds"])
        for fd in self.wake_fds:
            os.set_blocking(fd, False)
        self.to_supervisor = Outbox(spec["supervisor_fd"])
        self.to_gate = Outbox(spec["gate_fd"])
        self.control = Inbox(spec["control_fd"], "control")
        self.tamper = TamperWatch(
            self.camera_id, spec.get("tamper"), self.to_supervisor.send, self.to_gate.send
        )
        settings = _decoder_settings(spec, self.profile)
        self.remote = None if settings is None else SandboxedDecoder(settings, self._decoder)
        self.remote_scratch: Path | None = None
        if settings is not None and "decoder" not in spec:
            self.remote_scratch = Path(str(settings.sandbox["scratch_dir"]))
        self.decoder_fault: str | None = (spec.get("decoder") or {}).get("fault")
        self.decoder_notes: list[str] = []
        """Losses of the decoder since the last GOP took them (its verdict names them)."""
        os.set_blocking(spec["control_fd"], False)
        self.realtime: bool = spec.get("realtime", False)
        # a file standing in for a camera (kontur run): it starts again when it ends
        self.loop = bool(spec.get("loop", False)) and not is_live(self.source)
        # a live or paced source cannot wait for analytics: its frames are skipped for
        # analysis instead (counted by the ring), never delayed for recording
        live = self.realtime or is_live(self.source)
        self.max_wait_s: float = 0.0 if live else spec.get("max_wait_s", 5.0)
        self.reader_timeout_s: float = spec.get("reader_timeout_s", 2.0)
        self.unpublished: Counter[str] = Counter()
        """Why frames of the GOP being published could not go to the ring, and how many."""
        self.not_published = 0
        self._too_large = self._oversize()
        self.strict: bool = spec.get("critical", False)
        self.encryption_required: bool = spec.get("encryption_required", False)
        self.clock = SystemClock()
        fresh = spec.get("freshness") or {}
        self.policy = FreshnessPolicy(
            window=fresh.get("replay_window", 64),
            max_skew_s=fresh.get("max_skew_s", 2.0),
            max_delay_s=fresh.get("max_delay_s", 30.0),
        )
        self.times = SignedTimeCheck(TimeCheckPolicy(**(spec.get("time_check") or {})))
        self.demo_spec: dict[str, str] | None = spec.get("demo_camera")
        self.inventory = Inventory.open(self.data_dir, self.clock)
        enrolled = self.inventory.camera(self.camera_id)
        # a camera the inventory marks critical is strict whatever the config says
        self.strict = self.strict or (enrolled is not None and enrolled.critical)
        self.freshness = FreshnessStore.open(self.data_dir)
        # the archive's revocations (ADR 0021): the authority when the inventory forgets one
        self.revocations = Revocations.from_json(spec.get("revocations"))
        self.guard: FreshnessGuard | None = None
        self.trust: CameraTrust | None = None
        self.demo: DemoCamera | None = None
        self.decoder: GopDecoder | None = None
        self.held: dict[int, _Held] = {}
        self._info: StreamInfo | None = None
        self._gop_first: int | None = None  # first frame index of the GOP being read
        self.early: dict[int, GopTrust] = {}
        self.stride = 1
        self.frames: int = spec.get("first_frame", 0)
        self.gops = 0
        self.read = self.first_gop
        self.last_pts: int | None = None
        self._t0: float | None = None

    def _decoder(self, kind: DecoderEventKind, detail: str, iso: IsolationReport | None) -> None:
        """The sandboxed decoder started (with its measured isolation) or was lost."""
        msg = DecoderEvent(
            camera_id=self.camera_id,
            kind=kind,
            detail=detail[:500],
            isolation=None if iso is None else iso.level,
            missing=() if iso is None else tuple(m[:200] for m in iso.missing[:32]),
        )
        self.to_supervisor.send(msg)
        if kind != "started":
            after = "not restarted" if kind == "given_up" else "restarted for the next GOP"
            self.decoder_notes.append(
                f"sandboxed decoder {kind} ({detail[:200]}): the GOP's later frames were not "
                f"decoded; {after}"
            )

    def _take_decoder_notes(self) -> list[str]:
        notes, self.decoder_notes = self.decoder_notes, []
        if not notes and self.remote is not None and self.remote.given_up:
            notes = [f"sandboxed decoder given up after {self.remote.losses} losses: not decoded"]
        return notes

    def _poll_control(self) -> None:
        for msg in self.control.drain():
            if isinstance(msg, ControlMessage) and msg.command == "analysis_stride":
                self.stride = max(0, msg.value or 0)
            elif isinstance(msg, ControlMessage) and msg.command == "revoke":
                self._revoked(msg)

    def _revoked(self, msg: ControlMessage) -> None:
        """The supervisor archived a revocation of this camera: hold it, whatever the
        inventory says from now on (its key is the one enrolled now, before any edit)."""
        enrolled = self.inventory.camera(self.camera_id)
        key = enrolled.key_fingerprint if enrolled is not None else None
        entry = Revoked(self.camera_id, msg.value or 0, "", msg.detail or "", key)
        self.revocations = self.revocations.with_revoked(entry)
        if self.guard is not None:
            self.guard.revocations = self.revocations

    def _oversize(self) -> str | None:
        """Why no frame of this camera can be published (a ring beyond the wire), or None."""
        w, h = self.profile.width, self.profile.height
        if max(w, h) > MAX_FRAME_SIDE:
            return f"expected at most {MAX_FRAME_SIDE}x{MAX_FRAME_SIDE}, got {w}x{h}"
        return None

    def _fit(self, image: np.ndarray) -> np.ndarray:
        if image.shape[:2] == (self.profile.height, self.profile.width):
            return image
        import cv2  # only when a resolution change must be fitted into the ring

        return cv2.resize(image, (self.profile.width, self.profile.height))

    def _publish(self, image: np.ndarray, pts_s: float, gop_index: int) -> None:
        """One frame to the ring for analysis; one that cannot go is counted, never fatal."""
        if self.realtime:
            if self._t0 is None:
                self._t0 = time.monotonic() - pts_s
            delay = self._t0 + pts_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if self.decoder_fault and pts_s >= DECODER_FAULT_AT_S and self.remote is not None:
            self.decoder_fault = None  # `kontur demo --inject-fault decoder-crash`, once
            self.remote.inject_crash()
        image = self.tamper.frame(image, pts_s, self.frames)
        why = self._too_large
        if why is None:
            try:
                self._write(image, pts_s, gop_index)
                return
            except Exception as exc:  # one bad frame must never stop recording
                why = _one_line(exc)
        self.unpublished[why] += 1
        self.not_published += 1

    def _take_unpublished(self) -> list[Finding]:
        """The findings for the frames of a GOP that were not published (then forgets them)."""
        found = [
            (Verdict.PROFILE_CHANGED, f"{n} frame(s) not published for analysis: {why}")
            for why, n in self.unpublished.items()
        ]
        self.unpublished.clear()
        return found

    def _write(self, image: np.ndarray, pts_s: float, gop_index: int) -> None:
        """Write one frame and its :class:`FrameReady` into the ring, then wake the readers."""
        seq = self.ring.seq + 1
        analyse = self.stride > 0 and self.frames % self.stride == 0
        meta = (
            FrameReady(
                camera_id=self.camera_id,
                seq=seq,
                frame_index=self.frames,
                pts_s=pts_s,
                gop_index=gop_index,
                slot=seq % self.ring.slots,
                width=self.profile.width,
                height=self.profile.height,
                analyse=analyse,
            )
            .model_dump_json()
            .encode()
        )
        self.ring.write(
            self._fit(image),
            meta,
            max_wait_s=self.max_wait_s,
            reader_timeout_s=self.reader_timeout_s,
        )
        for fd in self.wake_fds:
            # the ring is the truth; a full or closed wake pipe loses nothing
            with contextlib.suppress(BlockingIOError, BrokenPipeError):
                os.write(fd, b"\x01")

    def _frames_in(self, index: int, held: _Held, frames: Iterator[DecodedFrame]) -> list[Finding]:
        """Strict mode: publish a verified GOP's frames as they decode; the findings.

        ``held`` gets the size the GOP really decodes to and its frames' times; no image
        outlives its publishing.
        """
        size, frames = _sized(frames)
        if size is not None:
            held.info = dataclasses.replace(held.info, width=size[0], height=size[1])
        got = self.checker.begin(held.info)
        if got != index:
            raise RuntimeError(f"expected checker GOP {index}, got {got}")
        held.times = FrameTimes()
        for fr in frames:
            held.times.add(fr)
            self.checker.frame(fr.pts_s, fr.image is not None)
            if fr.image is not None and not stop_requested():
                self._publish(fr.image, fr.pts_s, index)
            self.frames += 1
            self._poll_control()
        return [*self.checker.close_findings()[1], *self._take_unpublished()]

    def _start(self, header: dict[str, object], info: StreamInfo) -> None:
        """First packet: the trust shell, the demo camera and (strict) the verified decoder."""
        codec = OMS_CODECS.get(info.codec)
        if self.demo_spec is not None and codec is not None:
            self.demo = DemoCamera.load(
                codec,
                Path(self.demo_spec["key"]),
                Path(self.demo_spec["chain"]),
                header,
                self.clock,
            )
        self.guard = FreshnessGuard(
            self.inventory, self.freshness, self.policy, self.clock, self.revocations
        )
        self.trust = CameraTrust(
            self.camera_id, info.codec, header, guard=self.guard, first_gop=self.first_gop
        )
        if self.strict:
            synthesised = header.get("pts") == "synthesised"
            self.decoder = GopDecoder(
                info.codec,
                bytes.fromhex(str(header.get("extradata") or "")),
                None if synthesised else (str(header.get("time_base") or "") or None),
                info.fps,
                remote=self.remote,
            )

    def _on_packet(
        self, packet: SegmentPacket, header: dict[str, object], info: StreamInfo
    ) -> SegmentPacket:
        """Each packet as demuxed: the demo camera signs it, the trust shell checks it.

        Called before the packet's GOP is yielded, so GOP ``self.read`` is the one it belongs
        to, and a verdict on the previous GOP (its SEI rides in this GOP's second access unit)
        is acted on two frames after that GOP ended.
        """
        if self.trust is None:
            self._start(header, info)
        assert self.trust is not None
        self._info = info
        if self.demo is not None:
            packet = self.demo.sign_packet(packet)
        self.last_pts = packet.pts if packet.pts is not None else self.last_pts
        for decided in self.trust.push_packet(self.read, packet, info):
            self._decided(decided)
        return packet

    def _on_frame(self, frame: DecodedFrame) -> None:
        """Default mode: each frame to analytics as soon as it is decoded.

        The decoder is drained before its GOP is yielded, so the frame belongs to GOP
        ``self.read``; its verdict follows with :class:`GopClosed`, and the gate holds any
        decision on the frame until then.
        """
        if self._gop_first is None:
            info = self._info
            if info is not None and frame.image is not None:
                h, w = frame.image.shape[:2]
                info = dataclasses.replace(info, width=int(w), height=int(h))
            assert info is not None
            got = self.checker.begin(info)
            if got != self.read:
                raise RuntimeError(f"expected checker GOP {self.read}, got {got}")
            self._gop_first = self.frames
        self.checker.frame(frame.pts_s, frame.image is not None)
        if frame.image is not None and not stop_requested():
            self._publish(frame.image, frame.pts_s, self.read)
        self.frames += 1
        self._poll_control()

    def _decided(self, t: GopTrust) -> None:
        """A verdict: close its GOP now, or when the GOP has been cut (it may still be open)."""
        if t.gop_index in self.held:
            self._close(t)
        else:
            self.early[t.gop_index] = t

    def _handle_gop(self, gop: RawGop) -> None:
        index = self.read
        self.read += 1
        header = dict(gop.header, camera_id=self.camera_id, gop_index=index)
        if self.demo is not None:
            header["signed_by"] = "kontur demo camera (simulated, throwaway key)"
        ref = self._store(header, gop.packets, index)
        first = self.frames if self._gop_first is None else self._gop_first
        # only the frames' times travel on: their images went to the ring as they decoded
        notes = [*gop.notes, *([] if self.strict else self._take_decoder_notes())]
        held = _Held(gop.info, list(gop.packets), header, notes, gop.times, first, first, ref)
        if not self.strict:
            # its frames were published as decoded (_on_frame); a GOP without one still counts
            if self._gop_first is None:
                self.checker.begin(gop.info)
            self._gop_first = None
            held.findings = [*self.checker.close_findings()[1], *self._take_unpublished()]
            held.last_frame = max(first, self.frames - 1)
        self.held[index] = held
        if self.trust is not None:
            self.trust.set_info(index, gop.info)  # the decoded size, for the profile check
        early = self.early.pop(index, None)
        if early is not None:
            self._close(early)

    def _store(
        self, header: dict[str, object], packets: list[SegmentPacket], index: int
    ) -> SegmentRef:
        """Write the segment (fsynced) and have the supervisor archive it at once."""
        ref = self.store.put(pack_segment(header, packets))
        self.to_supervisor.send(
            SegmentStored(
                camera_id=self.camera_id,
                gop_index=index,
                segment_sha256=ref.sha256,
                segment_size=ref.size,
                end_of_stream=bool(header.get("end_of_stream")),
            )
        )
        return ref

    def _close(self, t: GopTrust) -> None:
        held = self.held.pop(t.gop_index, None)
        if held is None:
            return  # a GOP the validator counted that ingest did not cut (partial lead-in)
        decoded = True
        if self.strict:
            decoded = self.decoder is not None and t.decodable
            held.first_frame = self.frames
            frames: Iterator[DecodedFrame] = (
                self.decoder.frames(held.packets, self.trust.pictures(held.packets))
                if decoded and self.decoder is not None and self.trust is not None
                else iter(())
            )
            held.findings = self._frames_in(t.gop_index, held, frames)
            held.last_frame = max(held.first_frame, self.frames - 1)
            held.notes += self._take_decoder_notes()
            if not decoded:
                self.checker.resync()
                # a note, not a finding: the trust findings already say why it failed
                held.findings.append(
                    (Verdict.AUTHENTIC, "strict mode: not decoded (verify before decode)")
                )
        notes = [
            (Verdict.MISSING if "reconnected" in n else Verdict.AUTHENTIC, n) for n in held.notes
        ]
        timed = self._check_time(t, held)
        findings = [*t.findings, *held.findings, *notes, *timed.findings()]
        verdict = merge_findings(self.camera_id, t.gop_index, findings)
        msg = GopClosed(
            verdict=verdict,
            first_frame=held.first_frame,
            last_frame=held.last_frame,
            start_pts_s=held.times.start_pts_s,
            end_pts_s=held.times.end_pts_s,
            segment_sha256=held.ref.sha256,
            segment_size=held.ref.size,
            signature={**t.record(), "time": timed.record()},
            decoded=decoded,
        )
        self.to_supervisor.send(msg)
        self.tamper.to_gate(msg)  # after the monitor could confirm an event on its frames
        self.gops += 1

    def _check_time(self, t: GopTrust, held: _Held) -> TimeCheck:
        """The GOP's frame times (what the dwell timer and the verifier use) against its
        signed capture times (ADR 0018); a reconnect starts a new timeline."""
        if any("reconnected" in n for n in held.notes):
            self.times.resync()
        times = held.times
        frames = FrameSpan(times.start_pts_s, times.end_pts_s) if times.count else None
        signed = DEMO_TIMES if self.demo is not None else t.signed_times()
        return self.times.check(t.gop_index, signed, frames)

    def _finish(self) -> None:
        """End of source: the signed end of stream, then whatever the trust shell holds."""
        if self.trust is None:
            return
        if self.demo is not None:
            eos = self.demo.finish(self.last_pts)
            if eos is not None:
                index = self.read - 1
                header = {"camera_id": self.camera_id, "gop_index": index, "end_of_stream": True}
                self._store(header, [eos], index)
                info = self.held[index].info if index in self.held else None
                if info is not None:
                    self.held[index].packets.append(eos)
                    for decided in self.trust.push(index, [eos], info):
                        self._decided(decided)
        for decided in self.trust.finish():
            self._decided(decided)
        for index in sorted(self.held):
            self._close(GopTrust(index, ((Verdict.PENDING, "no signature verdict reached"),)))

    def run(self) -> str | None:
        """Ingest until the source ends or a stop is requested; returns an error or None."""
        error: str | None = None
        try:
            # the camera's TLS trust from the inventory; encryption_required refuses rtsp://
            policy = RtspPolicy(
                tls=self.inventory.rtsps_trust(self.camera_id),
                encryption_required=self.encryption_required,
            )
            gops = read_gops(
                self.source,
                # strict: not even the probe sends the decoder a byte before it verified
                probe(self.source, policy=policy, decoder=self.remote, decode=not self.strict),
                policy=policy,
                decode=not self.strict,
                on_packet=self._on_packet,
                on_frame=None if self.strict else self._on_frame,
                decoder=self.remote,
                loop=self.loop,
            )
            for gop in gops:
                self._handle_gop(gop)
                if stop_requested():
                    break
        except KonturError as exc:
            error = str(exc)
        try:
            self._finish()
        except KonturError as exc:
            error = error or str(exc)
        self.tamper.finish()
        end = SourceEnded(
            camera_id=self.camera_id,
            frames=self.frames,
            gops=self.gops,
            error=error,
            frames_skipped=self.ring.skipped(WORKER_READER),
        )
        self.to_supervisor.send(end)
        self.to_gate.send(end)
        return error


def main() -> int:
    """Entry point: ``python -m kontur.ingest.process SPEC.json``."""
    install_stop_handler()
    loop = IngestLoop(read_spec())
    try:
        loop.run()
    finally:
        if loop.remote is not None:
            loop.remote.close()
            if loop.remote_scratch is not None:  # a scratch dir of its own (no spec entry)
                shutil.rmtree(loop.remote_scratch, ignore_errors=True)
        # the supervisor owns the ring files; if it died (kill -9), nobody else will remove them
        loop.ring.close(unlink=os.getppid() == 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
