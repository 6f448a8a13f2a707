"""The trust shell of one camera's ingest: Media Signing, then freshness, per GOP.

:class:`CameraTrust` is fed each GOP's packets exactly as demuxed (:meth:`CameraTrust.push`),
splits them into NAL units, runs the pure ONVIF Media Signing validator
(:class:`~kontur.ingest.oms.validator.OmsValidator`) over them and, for every GOP the
validator decides, asks the freshness layer (:class:`~kontur.ingest.inventory.FreshnessGuard`:
inventory, revocation, key, chain at capture time, replay window, GOP hashes seen before,
capture time against the trusted clock) for its verdict. :meth:`CameraTrust.finish` closes the
stream. It returns :class:`GopTrust` values: the findings (verdict, reason) of one GOP, which
:class:`~kontur.ingest.checks.GopChecker` merges with its own profile, decode and timestamp
findings.

Steps, in order (ADR 0012):

1. split each packet in its framing (length-prefixed for MP4/MKV, Annex-B for raw files and
   RTSP); the container's parameter sets (avcC/hvcC) are given to the validator first;
2. the validator decides GOP ``k`` when the SEI that signs it arrives (in the second access
   unit of GOP ``k+1``) or at the end of the stream, so results lag one GOP behind;
3. a signed GOP (AUTHENTIC, MISSING, NOT_AUTHENTIC) goes through the freshness guard; an
   UNSIGNED one too (DOWNGRADE after signed data, ``signing_required``); a PENDING one (the
   stream stopped before its signature arrived: truncation) does not;
4. without an inventory (``guard`` None: ``kontur verify --ca``) only the validator speaks.

Codecs that cannot carry Media Signing (MPEG-4 Part 2, MJPEG, VP8/9) are UNSIGNED at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from kontur.ingest.checks import StreamInfo
from kontur.ingest.freshness import CameraProfile, SignedGopFacts
from kontur.ingest.inventory import FreshnessGuard
from kontur.ingest.oms.errors import OmsError
from kontur.ingest.oms.nal import Codec, parse_extradata, parse_nal_header, split_packet
from kontur.ingest.oms.provenance import Provenance
from kontur.ingest.oms.validator import AccessUnit, OmsResult, OmsValidator, SignedGopResult
from kontur.ingest.segment import SegmentPacket
from kontur.ingest.signedtime import SignedTimes
from kontur.ingest.verdict import Verdict

__all__ = ["DENY_VERDICTS", "OMS_CODECS", "CameraTrust", "GopTrust"]

#: Findings whose GOP must never reach a decoder in strict mode (and that the gate denies).
DENY_VERDICTS = frozenset(
    {
        Verdict.REVOKED,
        Verdict.KEY_CHANGED,
        Verdict.REPLAYED,
        Verdict.DOWNGRADE,
        Verdict.NOT_AUTHENTIC,
    }
)

#: ffmpeg codec names that can carry ONVIF Media Signing SEIs.
OMS_CODECS: dict[str, Codec] = {"h264": Codec.H264, "hevc": Codec.H265}

_VERDICT = {
    OmsResult.AUTHENTIC: Verdict.AUTHENTIC,
    OmsResult.MISSING: Verdict.MISSING,
    OmsResult.NOT_AUTHENTIC: Verdict.NOT_AUTHENTIC,
    OmsResult.UNSIGNED: Verdict.UNSIGNED,
    OmsResult.PENDING: Verdict.PENDING,
}


@dataclass(frozen=True)
class GopTrust:
    """What signature and freshness found about one GOP."""

    gop_index: int
    findings: tuple[tuple[Verdict, str], ...]
    oms: SignedGopResult | None = None
    """The validator's full result (counter, capture times, strings), when there is one."""
    seen: dict[str, object] | None = None
    """What the freshness layer stored for this GOP (session, counter, hash, commit): kept in
    the archive so the replay state can be rebuilt from it (ADR 0013)."""

    @property
    def verified(self) -> bool:
        """True when the signature covers what arrived (AUTHENTIC or MISSING content)."""
        return self.oms is not None and self.oms.result in (OmsResult.AUTHENTIC, OmsResult.MISSING)

    @property
    def decodable(self) -> bool:
        """Strict mode may decode it: verified, and no finding that calls for DENY."""
        return self.verified and not any(v in DENY_VERDICTS for v, _ in self.findings)

    def signed_times(self) -> SignedTimes | str:
        """The signed capture times the container is checked against (ADR 0018), or why
        there are none to trust: only a verified signature with no DENY finding counts."""
        r = self.oms
        if r is None or r.result is OmsResult.UNSIGNED:
            return "the GOP carries no signature"
        if r.result is OmsResult.PENDING:
            return "the GOP's signature never arrived"
        if not self.decodable:
            return "the GOP's signature or signer did not verify"
        if r.signed_times is None:
            return "the SEI signs no capture time"
        start, next_start = r.signed_times
        # the final SEI names no next GOP (its end, where it has its own, is the last frame)
        return SignedTimes(start, None if r.end_of_stream else next_start)

    def record(self) -> dict[str, object]:
        """The signature facts the archive keeps next to the verdict."""
        r = self.oms
        if r is None:
            return {"signed": False}
        return {
            "signed": r.result is not OmsResult.UNSIGNED,
            "oms_result": r.result.value,
            "gop_counter": r.gop_counter,
            "gop_hash": r.gop_hash.hex() if r.gop_hash else None,
            "capture_start": r.capture_start.isoformat() if r.capture_start else None,
            "capture_end": r.capture_end.isoformat() if r.capture_end else None,
            "signer_key_sha256": (
                hashlib.sha256(r.signer_key_der).hexdigest() if r.signer_key_der else None
            ),
            "provenance": r.provenance.status.value,
            "end_of_stream": r.end_of_stream,
            "validation": r.validation_string,
            "parameter_sets_covered": r.parameter_sets_covered,
            "freshness": self.seen,
        }


def _signed(r: SignedGopResult) -> bool:
    return r.result not in (OmsResult.UNSIGNED, OmsResult.PENDING)


class CameraTrust:
    """Media Signing + freshness for the stream of one camera (see the module docstring)."""

    def __init__(
        self,
        camera_id: str,
        codec: str,
        header: dict[str, object],
        *,
        guard: FreshnessGuard | None,
        anchors: Sequence[x509.Certificate] = (),
        first_gop: int = 0,
    ) -> None:
        """``header`` is a GOP header of :func:`kontur.ingest.source.read_gops` (extradata);
        ``first_gop`` the index of the first GOP fed (an ingest restarted on a live camera
        goes on from where the last one stopped; the validator counts from 0)."""
        self.camera_id = camera_id
        self.guard = guard
        self._offset = first_gop
        self._codec = OMS_CODECS.get(codec)
        self._validator: OmsValidator | None = None
        self._length_size = 4
        self._session: str | None = None
        self._info: dict[int, StreamInfo] = {}
        self._closed = False
        self._errors: dict[int, list[str]] = {}
        self._last_index: int | None = None
        if self._codec is None:
            return
        extradata = bytes.fromhex(str(header.get("extradata") or ""))
        self._validator = OmsValidator(self._codec, anchors)
        try:
            self._length_size, ps = parse_extradata(extradata, self._codec)
        except OmsError:
            ps = []  # an unreadable avcC: the slices themselves still verify or fail
        self._validator.set_parameter_sets(ps)

    def push(
        self, gop_index: int, packets: Sequence[SegmentPacket], info: StreamInfo
    ) -> list[GopTrust]:
        """Feed one GOP's packets; returns the GOPs decided by them (usually the previous)."""
        out: list[GopTrust] = []
        for p in packets:
            out += self.push_packet(gop_index, p, info)
        return out

    def set_info(self, gop_index: int, info: StreamInfo) -> None:
        """What GOP ``gop_index`` turned out to be (its decoded size), for the profile check."""
        if gop_index in self._info:  # not decided yet
            self._info[gop_index] = info

    def push_packet(
        self, gop_index: int, packet: SegmentPacket, info: StreamInfo
    ) -> list[GopTrust]:
        """Feed one packet of GOP ``gop_index`` as it arrives; returns the GOPs it decided.

        The SEI that signs GOP k sits in the second access unit of GOP k+1, so packet by
        packet a verdict is known two frames after its GOP ends, not a whole GOP later.
        """
        if self._closed:
            raise RuntimeError("push after finish()")
        if self._validator is None:
            first, self._last_index = gop_index != self._last_index, gop_index
            why = f"codec {info.codec} cannot carry ONVIF Media Signing (no signature)"
            return [GopTrust(gop_index, ((Verdict.UNSIGNED, why),))] if first else []
        self._info.setdefault(gop_index, info)  # dropped when the GOP is decided
        try:
            nals = tuple(split_packet(packet.data, self._length_size, self._codec))
        except OmsError as exc:
            # unparseable framing: feed nothing; the GOP's signature will not verify
            nals = ()
            self._errors.setdefault(gop_index, []).append(f"packet does not split: {exc}")
        results = self._validator.push(AccessUnit(nals, packet.pts, packet.keyframe))
        self._check_alignment(gop_index, nals)
        return [self._decide(r) for r in results]

    def _check_alignment(self, gop_index: int, nals: Sequence[bytes | memoryview]) -> None:
        """A packet with a picture must sit in the GOP the signature puts it in.

        Ingest cuts GOPs where the bitstream starts one (an IDR/IRAP slice), as the validator
        does; if the two ever disagree (a forged container keyframe flag, a stream the cut
        misreads), both GOPs are refused rather than one judged by the other's verdict.
        """
        assert self._validator is not None and self._codec is not None
        signed_as = self._validator.current_gop_index
        if signed_as is None or signed_as + self._offset == gop_index:
            return
        signed_as += self._offset
        try:
            if not any(parse_nal_header(n, self._codec).is_slice for n in nals):
                return
        except OmsError:
            return  # the validator reports the malformed unit itself
        why = (
            f"GOP boundaries disagree: ingest GOP {gop_index} holds a picture that the "
            f"bitstream places in GOP {signed_as}"
        )
        for index in {gop_index, signed_as}:
            errors = self._errors.setdefault(index, [])
            if why not in errors:
                errors.append(why)

    def pictures(self, packets: Sequence[SegmentPacket]) -> list[bool]:
        """Whether each packet carries a picture (an SEI-only access unit does not)."""
        if self._codec is None:
            return [True] * len(packets)
        out = []
        for p in packets:
            try:
                nals = split_packet(p.data, self._length_size, self._codec)
                out.append(any(parse_nal_header(n, self._codec).is_slice for n in nals))
            except OmsError:
                out.append(True)  # let the decoder judge bytes we cannot split
        return out

    def finish(self) -> list[GopTrust]:
        """End of stream: decide what is left (truncation shows as PENDING)."""
        if self._closed:
            raise RuntimeError("finish() called twice")
        self._closed = True
        if self._validator is None:
            return []
        return [self._decide(r) for r in self._validator.finish()]

    def _decide(self, r: SignedGopResult) -> GopTrust:
        verdict = _VERDICT[r.result]
        index = r.index + self._offset
        findings: list[tuple[Verdict, str]] = [(verdict, why) for why in r.reasons]
        findings += [(Verdict.NOT_AUTHENTIC, why) for why in self._errors.pop(index, [])]
        if not findings:
            findings.append((verdict, f"Media Signing: {r.result.value}"))
        seen: dict[str, object] | None = None
        info = self._info.pop(index, None)
        if self.guard is not None and r.result is not OmsResult.PENDING:
            result = self.guard.check(self._facts(r, info))
            findings += [(result.verdict, why) for why in result.reasons]
            seen = result.seen_payload()
        elif _signed(r) and r.provenance.status is not Provenance.OK:
            # no inventory: the trust anchors given are all there is to root the key in
            findings.append((Verdict.NOT_AUTHENTIC, f"provenance: {r.provenance.reason}"))
        return GopTrust(index, tuple(findings), r, seen)

    def _facts(self, r: SignedGopResult, info: StreamInfo | None) -> SignedGopFacts:
        signed = r.result is not OmsResult.UNSIGNED
        if signed and r.signer_key_der is not None and self._session is None:
            # key + first counter + first signed capture time: a camera whose counter restarts
            # (a reboot, the next recording) starts a new session; a replay of the same
            # recording keeps the old id and meets its replay window (ADR 0013)
            key = hashlib.sha256(r.signer_key_der).hexdigest()[:16]
            start = r.capture_start.isoformat() if r.capture_start else "-"
            self._session = f"{key}:{r.gop_counter}:{start}"
        profile = None
        if info is not None and info.fps > 0:
            # the size the signed SPS in effect says (seen without decoding: strict mode and
            # kontur verify), else what the container or the decoder said
            width, height = r.picture_size or (info.width, info.height)
            if width > 0 and height > 0:
                profile = CameraProfile(info.codec, width, height, info.fps)
        return SignedGopFacts(
            camera_id=self.camera_id,
            session_id=self._session or "unsigned",
            gop_index=r.index + self._offset,
            signed=signed,
            signature_ok=r.result in (OmsResult.AUTHENTIC, OmsResult.MISSING),
            gop_counter=r.gop_counter if signed else None,
            gop_hash=r.gop_hash if signed else None,
            capture_start=r.capture_start,
            capture_end=r.capture_end,
            signer_key_der=r.signer_key_der,
            certificate_chain=r.certificate_chain,
            profile=profile,
        )
