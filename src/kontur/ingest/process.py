"""The ingest process for one camera: demux, sign-check, archive, decode and publish frames.

:class:`IngestLoop` is the shell around the pure ingest core
(:class:`~kontur.ingest.core.IngestCore`, shared with
:func:`kontur.ingest.recording.check_recording`): it reads the source, hands the core each
packet, frame and GOP cut, and acts on the events it returns, in order: it writes the ring
(:class:`~kontur.ingest.core.Publish`), stores segments
(:class:`~kontur.ingest.core.StoreSegment`), runs the sandboxed decoder
(:class:`~kontur.ingest.core.Decode`, strict mode) and sends :class:`GopClosed`
(:class:`~kontur.ingest.core.Closed`). The verdict logic lives in the core.

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
import os
import shutil
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from kontur.archive import SegmentRef, SegmentStore
from kontur.clock import SystemClock
from kontur.config import Profile
from kontur.decoder.client import DecoderEventKind, DecoderSettings, SandboxedDecoder
from kontur.errors import KonturError
from kontur.ingest.checks import GopChecker, StreamInfo
from kontur.ingest.core import Closed, Decode, Event, IngestCore, Publish, StoreSegment
from kontur.ingest.democam import DemoCamera
from kontur.ingest.freshness import FreshnessPolicy
from kontur.ingest.inventory import FreshnessGuard, FreshnessStore, Inventory
from kontur.ingest.revocation import Revocations, Revoked
from kontur.ingest.rtsp import RtspPolicy
from kontur.ingest.segment import SegmentPacket, pack_segment
from kontur.ingest.signedtime import TimeCheckPolicy
from kontur.ingest.source import (
    DecodedFrame,
    GopDecoder,
    RawGop,
    is_live,
    probe,
    read_gops,
)
from kontur.ingest.tamperwatch import TamperWatch
from kontur.ingest.trust import OMS_CODECS
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


class IngestLoop:
    """One camera's ingest, wired to its ring and pipes."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.camera_id: str = spec["camera_id"]
        self.source: str = spec["source"]
        self.profile = Profile.model_validate(spec["profile"])
        # an ingest restarted on a live camera goes on from the supervisor's frame and GOP
        self.first_gop: int = spec.get("first_gop", 0)
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
        self.demo_spec: dict[str, str] | None = spec.get("demo_camera")
        self.inventory = Inventory.open(self.data_dir, self.clock)
        enrolled = self.inventory.camera(self.camera_id)
        # a camera the inventory marks critical is strict whatever the config says
        self.strict = self.strict or (enrolled is not None and enrolled.critical)
        self.freshness = FreshnessStore.open(self.data_dir)
        # the archive's revocations (ADR 0021): the authority when the inventory forgets one
        self.revocations = Revocations.from_json(spec.get("revocations"))
        self.guard: FreshnessGuard | None = None
        self.demo: DemoCamera | None = None
        self.decoder: GopDecoder | None = None
        # the verdict logic (trust, checks, held GOPs, signed time, merge) is the pure core
        # that kontur verify and the attack suite drive too
        self.core = IngestCore(
            self.camera_id,
            checker=GopChecker(self.camera_id, self.profile, first_index=self.first_gop),
            strict=self.strict,
            first_gop=self.first_gop,
            first_frame=spec.get("first_frame", 0),
            time_policy=TimeCheckPolicy(**(spec.get("time_check") or {})),
        )
        self.stride = 1
        self.gops = 0
        self.last_pts: int | None = None
        self._t0: float | None = None

    @property
    def frames(self) -> int:
        """Frames ingested so far (the next frame's index)."""
        return self.core.frames

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

    def _publish(self, ev: Publish) -> None:
        """One frame to the ring for analysis; one that cannot go is counted, never fatal."""
        pts_s = ev.pts_s
        if self.realtime:
            if self._t0 is None:
                self._t0 = time.monotonic() - pts_s
            delay = self._t0 + pts_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if self.decoder_fault and pts_s >= DECODER_FAULT_AT_S and self.remote is not None:
            self.decoder_fault = None  # `kontur demo --inject-fault decoder-crash`, once
            self.remote.inject_crash()
        image = self.tamper.frame(ev.image, pts_s, ev.frame_index)
        why = self._too_large
        if why is None:
            try:
                self._write(image, ev)
                return
            except Exception as exc:  # one bad frame must never stop recording
                why = _one_line(exc)
        self.core.unpublished(why)  # its GOP's verdict says why (PROFILE_CHANGED)
        self.not_published += 1

    def _write(self, image: np.ndarray, ev: Publish) -> None:
        """Write one frame and its :class:`FrameReady` into the ring, then wake the readers."""
        seq = self.ring.seq + 1
        analyse = self.stride > 0 and ev.frame_index % self.stride == 0
        meta = (
            FrameReady(
                camera_id=self.camera_id,
                seq=seq,
                frame_index=ev.frame_index,
                pts_s=ev.pts_s,
                gop_index=ev.gop_index,
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

    def _act(self, events: list[Event]) -> None:
        """Carry out the core's events in order: publish, store, decode, send verdicts."""
        todo = deque(events)
        while todo:
            ev = todo.popleft()
            if isinstance(ev, Publish):
                if not stop_requested():
                    self._publish(ev)
            elif isinstance(ev, StoreSegment):
                self._store(ev)
            elif isinstance(ev, Decode):
                todo.extendleft(reversed(self._decode(ev)))
            elif isinstance(ev, Closed):
                self._send_closed(ev)

    def _decode(self, ev: Decode) -> list[Event]:
        """Strict mode: decode a decided GOP's verified bytes (none if it may not be decoded)
        and publish its frames as they decode; no image outlives its publishing."""
        if ev.decode and self.decoder is not None:
            for fr in self.decoder.frames(list(ev.packets), list(ev.pictures)):
                self._act(list(self.core.frame(fr.pts_s, fr.image)))
                self._poll_control()
        return self.core.decoded(self._take_decoder_notes())

    def _start(self, header: dict[str, object], info: StreamInfo) -> None:
        """First packet: the demo camera, the core's trust shell and (strict) the decoder."""
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
        self.core.start(header, info, guard=self.guard, demo=self.demo is not None)
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
        """Each packet as demuxed: the demo camera signs it, the core checks it.

        Called before the packet's GOP is yielded, so it belongs to the GOP the core is
        reading, and a verdict on the previous GOP (its SEI rides in this GOP's second access
        unit) is acted on two frames after that GOP ended.
        """
        if not self.core.started:
            self._start(header, info)
        if self.demo is not None:
            packet = self.demo.sign_packet(packet)
        self.last_pts = packet.pts if packet.pts is not None else self.last_pts
        self._act(self.core.packet(packet, info))
        return packet

    def _on_frame(self, frame: DecodedFrame) -> None:
        """Default mode: each frame to analytics as soon as it is decoded.

        The decoder is drained before its GOP is yielded, so the frame belongs to the GOP
        the core is reading; its verdict follows with :class:`GopClosed`, and the gate holds
        any decision on the frame until then.
        """
        self._act(list(self.core.frame(frame.pts_s, frame.image)))
        self._poll_control()

    def _handle_gop(self, gop: RawGop) -> None:
        """A GOP cut: store its segment, then the core holds it for its verdict."""
        # only the frames' times travel on: their images went to the ring as they decoded
        notes = [*gop.notes, *([] if self.strict else self._take_decoder_notes())]
        ref = self._store(self.core.cut(gop, notes))
        self._act(self.core.stored(ref))

    def _store(self, ev: StoreSegment) -> SegmentRef:
        """Write the segment (fsynced) and have the supervisor archive it at once."""
        ref = self.store.put(pack_segment(ev.header, list(ev.packets)))
        self.to_supervisor.send(
            SegmentStored(
                camera_id=self.camera_id,
                gop_index=ev.gop_index,
                segment_sha256=ref.sha256,
                segment_size=ref.size,
                end_of_stream=ev.end_of_stream,
            )
        )
        return ref

    def _send_closed(self, c: Closed) -> None:
        """A GOP's verdict to the supervisor (archive) and, through the tamper monitor, the
        gate."""
        if c.segment is None:
            raise RuntimeError(f"expected GOP {c.verdict.gop_index} stored, got no segment")
        msg = GopClosed(
            verdict=c.verdict,
            first_frame=c.first_frame,
            last_frame=c.last_frame,
            start_pts_s=c.start_pts_s,
            end_pts_s=c.end_pts_s,
            segment_sha256=c.segment.sha256,
            segment_size=c.segment.size,
            signature=c.signature(),
            decoded=c.decoded,
        )
        self.to_supervisor.send(msg)
        self.tamper.to_gate(msg)  # after the monitor could confirm an event on its frames
        self.gops += 1

    def _finish(self) -> None:
        """End of source: the signed end of stream, then whatever the core holds."""
        if not self.core.started:
            return
        eos = self.demo.finish(self.last_pts) if self.demo is not None else None
        self._act(self.core.finish(eos))

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
            self.core.abort()  # a GOP being stored or decoded when it failed never closes
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
