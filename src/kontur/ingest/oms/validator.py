"""A pure ONVIF Media Signing validator: access units in, per-GOP results out.

Order of calls (anything else raises RuntimeError)::

    v = OmsValidator(codec, trust_anchors, reference_time=...)   # 1. construct
    v.set_parameter_sets(nals)        # 2. optional, before the first push: avcC/hvcC sets
    for au in access_units:           # 3. decode order
        results += v.push(au)
    results += v.finish(reference_time)   # 4. once; then the validator is closed

The validator never reads the clock, the disk or the network.

GOPs. A GOP starts at a primary IDR/IRAP slice. Hashable NAL units (slices and unsigned
OMS SEIs) are hashed on arrival (:class:`~kontur.ingest.oms.hashing.GopHasher`); only
their hashes are kept. An OMS SEI signs the latest *closed* GOP that has no SEI yet, or,
if there is none, the GOP still open (the reference's end-of-stream SEI, or a signer that
puts the SEI before the next key frame). Older closed GOPs left without SEI are NOT_AUTHENTIC.

Checks for the GOP an SEI signs (reasons name what was expected and what was found):
signature over the SEI document with the leaf key of the carried chain; GOP counter
continuity; hash list vs. the received hashes (a received hash not in the list is
NOT_AUTHENTIC, list entries not received are MISSING -- never AUTHENTIC); without hash list
(low-bitrate mode) the GOP hash and NAL count; the linked hash against the previous GOP's
anchor; kontur's parameter-set claim (see :mod:`kontur.ingest.oms.hashing`); provenance at
capture time (see :mod:`kontur.ingest.oms.provenance`). With signing frequency > 1 an unsigned
SEI covers a GOP and is itself covered by the hash list of the next signed SEI.

Parameter sets: the reference does not hash SPS/PPS/VPS. kontur's signer signs a digest of
the parameter sets in effect for each GOP in the ARBITRARY_DATA TLV; a claim that does not
match is NOT_AUTHENTIC. Streams without the claim (reference signer) keep their result with
``parameter_sets_covered=False`` and a reason, unless ``require_parameter_set_claim``.
Which GOP an in-band parameter set belongs to follows the signer: the non-slice NAL units
of an access unit are held until its first slice and go to the GOP of that slice, so the
SPS/PPS/VPS ahead of an IDR/IRAP slice belong to the GOP it starts (and the decoder uses
them for that GOP); an access unit without a slice gives them to the open GOP, or, before
any GOP, to the first one. ``picture_size`` of a result is the size in the SPS in effect
for the GOP (:func:`~kontur.ingest.oms.nal.sps_picture_size`).

Where kontur is stricter than the reference: dropped NAL units are MISSING; the last GOP
without its signed end-of-stream SEI is PENDING (truncation reported); certificates are
checked at capture time; ``reference_result`` says what the reference would report.

Reference quirk tolerated: the end-of-stream SEI of the reference signer repeats the
previous SEI's GOP hash and NAL count (README quirk 2), or, in a one-GOP stream where it is
the first SEI, its initial all-zero GOP hash and count 0; with a hash list, that stale pair
is accepted (noted in the reasons) because the signed hash list itself is checked (the
reference validator falls back to the hash list the same way).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from kontur.ingest.oms.errors import NalParseError, OmsError, OmsLimitExceeded
from kontur.ingest.oms.hashing import (
    GopHasher,
    claims_end_of_stream,
    decode_parameter_set_claim,
    gop_hash,
    hash_bytes,
    parameter_set_digest,
)
from kontur.ingest.oms.limits import (
    MAX_NALS_PER_ACCESS_UNIT,
    MAX_NALS_PER_GOP,
    MAX_PARAMETER_SETS,
    MAX_PENDING_GOPS,
)
from kontur.ingest.oms.nal import (
    Codec,
    NalInfo,
    parse_nal_header,
    sps_picture_size,
    strip_trailing_zeros,
)
from kontur.ingest.oms.provenance import (
    ChainChecker,
    Provenance,
    ProvenanceCheck,
    derive_capture_time,
    load_pem_chain,
)
from kontur.ingest.oms.sei import GeneralTlv, HashListTlv, OmsSei, is_oms_sei

__all__ = [
    "AccessUnit",
    "OmsResult",
    "OmsValidator",
    "SignedGopResult",
]

_Nal = bytes | memoryview
_PS_MISMATCH = "parameter sets (SPS/PPS/VPS) in effect do not match the signed claim"
_NO_CLAIM = "parameter sets are not covered by the signature (no kontur claim)"
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
#: ECDSA over a prehashed digest, per hash name (stateless, built once).
_ECDSA = {name: ec.ECDSA(utils.Prehashed(algo())) for name, algo in _HASHES.items()}
_SHA256 = hashlib.sha256
#: Marks of hashed NAL units (slices, unsigned OMS SEI) in a NAL-unit string.
_ENTRY_MARKS = frozenset("IiPps")
#: NAL-unit string -> validation string when every hashed unit verified ('.').
_ALL_VERIFIED = str.maketrans(
    {
        "I": ".",
        "i": ".",
        "P": ".",
        "p": ".",
        "s": ".",
        "S": ".",
        "C": ".",
        "v": "_",
        "z": "_",
        "o": "_",
        "U": "_",
    }
)


class OmsResult(enum.Enum):
    """Verdict for one GOP."""

    AUTHENTIC = "authentic"
    MISSING = "missing"
    NOT_AUTHENTIC = "not_authentic"
    UNSIGNED = "unsigned"
    PENDING = "pending"


_SEVERITY = {
    OmsResult.AUTHENTIC: 0,
    OmsResult.PENDING: 1,
    OmsResult.MISSING: 2,
    OmsResult.UNSIGNED: 3,
    OmsResult.NOT_AUTHENTIC: 4,
}
_REFERENCE_NAME = {
    OmsResult.AUTHENTIC: "valid",
    OmsResult.MISSING: "valid_with_missing",
    OmsResult.NOT_AUTHENTIC: "invalid",
    OmsResult.UNSIGNED: "unsigned",
    OmsResult.PENDING: "pending",
}


@dataclass(frozen=True)
class AccessUnit:
    """One access unit in decode order: NAL units without start codes/length prefixes.

    The units may be read-only memoryviews into the demuxed packet (``validate_file`` passes
    them so, to spare a copy of every byte).
    """

    nals: tuple[bytes | memoryview, ...]
    pts: int | None = None
    keyframe: bool = False


@dataclass(frozen=True)
class SignedGopResult:
    """The decision for one GOP.

    ``index``: 0-based GOP in received order. ``result`` + ``reasons``: the verdict and why.
    ``gop_counter``/``sei_num_nalus``: from the SEI that signed it (None if none did).
    ``gop_hash``: ``H(signed hash list)`` (the SEI's GOP hash in low-bitrate mode), for
    replay detection. ``capture_start``/``capture_end``: UTC capture times derived from the
    SEI (see :func:`~kontur.ingest.oms.provenance.derive_capture_time`). ``signer_key_der``:
    SubjectPublicKeyInfo of the signing key; ``certificate_chain``: DER, leaf first, as
    carried. ``provenance``: chain check at capture time. ``frames``: access units with a
    slice; ``nalus_expected`` (signed list length / NAL count) vs. ``nalus_received``
    (hashable NAL units). ``validation_string``/``nalu_string``: the reference's alphabet
    over this GOP's NAL units in kontur's view (no GStreamer AUDs). ``end_of_stream``: the
    GOP was signed by the final SEI and nothing followed (or the SEI carries kontur's signed
    end-of-stream marker). ``reference_result``: what the reference would report (valid /
    valid_with_missing / invalid / unsigned / pending). ``parameter_sets_covered``: a kontur
    parameter-set claim was verified. ``sei_ordinal``: 0-based ordinal of the signed SEI
    that decided this GOP (GOPs of one reference report share it). ``picture_size``:
    ``(width, height)`` from the SPS in effect for the GOP (the GOP's own in-band SPS, else
    the last in-band SPS before it, else the container's), None when no SPS parses.
    ``signed_times``: ``(first frame, next GOP's first frame)`` as the SEI signs them, raw
    FILETIME ticks (not corrected for README quirk 3, which is in the base only: differences
    are right); the second is None when the SEI does not state it (quirk 2's repeated times,
    the initial state) and, in the final SEI, may be the last frame instead. None when the
    SEI signs no time. :mod:`kontur.ingest.signedtime` checks the container against them.
    """

    index: int
    result: OmsResult
    reasons: tuple[str, ...]
    gop_counter: int | None
    gop_hash: bytes | None
    capture_start: datetime | None
    capture_end: datetime | None
    signer_key_der: bytes | None
    certificate_chain: tuple[bytes, ...]
    provenance: ProvenanceCheck
    frames: int
    nalus_expected: int | None
    nalus_received: int
    validation_string: str
    nalu_string: str
    end_of_stream: bool
    reference_result: str
    parameter_sets_covered: bool
    sei_ordinal: int | None
    sei_num_nalus: int | None = None
    picture_size: tuple[int, int] | None = None
    signed_times: tuple[int, int | None] | None = None


@dataclass(slots=True, eq=False)  # identity: GOPs are found and removed as objects
class _Gop:
    index: int
    partial: bool
    inherited_sps: bytes | None = None  # the last in-band SPS before this GOP
    anchor: bytes | None = None
    entries: list[bytes] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)  # NAL-unit chars; entries are _ENTRY_MARKS
    frames: int = 0
    ps: set[bytes] = field(default_factory=set)
    sps: bytes | None = None  # the last in-band SPS of this GOP
    closed: bool = False
    overflow: bool = False
    errors: list[str] = field(default_factory=list)
    bad_marks: set[int] = field(default_factory=set)
    unsigned_sei: OmsSei | None = None  # signing frequency > 1: waiting for a signed SEI
    content: tuple[OmsResult, list[str], str, int | None, OmsResult] | None = None
    sei_ordinal: int | None = None
    signed_times: tuple[int, int | None] | None = None  # see SignedGopResult


@dataclass
class _Signer:
    """Key material in effect: from the last certificates TLV."""

    pem: bytes
    chain: list[x509.Certificate]
    der_chain: tuple[bytes, ...]
    key_der: bytes
    name: str  # leaf subject (RFC 4514)
    key: object  # the leaf's public key
    #: Provenance of the chain against the validator's anchors, or why it cannot be checked.
    checker: ChainChecker | str
    is_ec: bool = field(init=False)

    def __post_init__(self) -> None:
        self.is_ec = isinstance(self.key, ec.EllipticCurvePublicKey)


class OmsValidator:
    """Validate a signed H.264/H.265 stream GOP by GOP (see the module docstring)."""

    def __init__(
        self,
        codec: Codec,
        trust_anchors: Sequence[x509.Certificate] = (),
        *,
        reference_time: datetime | None = None,
        require_parameter_set_claim: bool = False,
    ) -> None:
        """A validator for ``codec`` trusting ``trust_anchors`` (may be empty)."""
        self.codec = codec
        self.anchors = list(trust_anchors)
        self.reference_time = reference_time
        self.require_claim = require_parameter_set_claim
        self._hasher = GopHasher()
        self._container_ps: set[bytes] = set()
        self._container_sps: bytes | None = None
        self._gops: list[_Gop] = []  # undecided, oldest first
        self._open: _Gop | None = None  # the open GOP (the last of _gops, not closed)
        self._count = 0
        self._anchors: dict[int, bytes | None] = {}
        self._signer: _Signer | None = None
        self._signers: dict[bytes, _Signer] = {}  # PEM chain -> parsed, bounded
        self._last_counter: int | None = None
        self._last_general: tuple[bytes, int] | None = None
        self._last_times: tuple[int, int] | None = None  # (start, end) of the previous SEI
        self._seen_sei = False
        self._ordinal = 0
        self._held: SignedGopResult | None = None  # decided open GOP (maybe end of stream)
        self._waiting: list[tuple[_Nal, NalInfo]] = []  # non-slice units before any GOP
        self._last_sps: bytes | None = None
        self._sizes: dict[bytes, tuple[int, int] | None] = {}
        self._ps_digests: dict[frozenset[bytes], bytes] = {}
        self._infos: dict[int, NalInfo] = {}
        self._last_list: tuple[HashListTlv, bytes] | None = None
        self._started = False
        self._finished = False

    # -- public steps -------------------------------------------------------------------

    def set_parameter_sets(self, nals: Iterable[bytes]) -> None:
        """Parameter sets from the container (avcC/hvcC); only before the first push."""
        if self._started or self._finished:
            raise RuntimeError("set_parameter_sets must be called before the first push")
        for nal in nals:
            ps = bytes(strip_trailing_zeros(nal))
            if len(ps) < self.codec.header_size or not self._info(ps).is_core_parameter_set:
                continue  # an hvcC's SEI array, say: no parameter set of the claim
            self._container_ps.add(ps)
            if len(self._container_ps) > MAX_PARAMETER_SETS:
                raise OmsLimitExceeded(f"more than {MAX_PARAMETER_SETS} container parameter sets")
            if self._container_sps is None and len(ps) > 1 and self._info(ps).is_sps:
                self._container_sps = ps

    def push(self, au: AccessUnit) -> list[SignedGopResult]:
        """Feed one access unit (decode order); returns the GOP results it decided."""
        if self._finished:
            raise RuntimeError("push after finish")
        self._started = True
        out: list[SignedGopResult] = []
        if len(au.nals) > MAX_NALS_PER_ACCESS_UNIT:
            gop = self._current() or self._open_gop(partial=True)
            gop.errors.append(
                f"access unit of {len(au.nals)} NAL units exceeds {MAX_NALS_PER_ACCESS_UNIT}"
            )
            return out
        held = self._push_nals(au.nals, out)
        if held:  # an access unit without a slice: its units go to the open GOP
            if self._open is not None:
                self._give(self._open, held)
            else:
                self._wait(held)
        if not out:
            return out
        return sorted(out, key=lambda r: r.index)

    def _push_nals(
        self, nals: Sequence[_Nal], out: list[SignedGopResult]
    ) -> list[tuple[_Nal, NalInfo]] | None:
        """The units of one access unit; returns the non-slice units of a slice-less one.

        The common case, a slice of the open GOP, is handled inline: two hashes, two appends.
        """
        infos, h264, sha, limit = self._infos, self.codec is Codec.H264, _SHA256, MAX_NALS_PER_GOP
        held: list[tuple[_Nal, NalInfo]] | None = None  # non-slice units before the 1st slice
        first = True
        for nal in nals:
            size = len(nal)
            if not size:
                continue
            if h264:
                key = nal[0] | 0x100 if size > 1 and nal[1] & 0x80 else nal[0]
            else:  # too short for the cache (-1): parsed, and refused, below
                key = nal[0] << 8 | nal[1] | (nal[2] & 0x80) << 9 if size > 2 else -1
            info = infos.get(key) or self._parse(nal)
            if info is None:
                continue
            if info.is_slice:
                gop = self._open
                if gop is None or info.starts_gop or self._held is not None:
                    gop = self._gop_for(info, out)
                if first:
                    first = False
                    gop.frames += 1
                    if held or self._waiting:
                        self._give(gop, held)
                        held = None
                if len(gop.entries) >= limit:
                    gop.overflow = True
                elif info.starts_gop and gop.anchor is None:
                    self._add_anchor(gop, nal, info)
                else:  # a hashed slice of the open GOP: H(anchor || H(nal))
                    digest = sha(nal if nal[-1] else strip_trailing_zeros(nal)).digest()
                    gop.entries.append(sha(self._hasher.anchor + digest).digest())
                    gop.marks.append(info.mark)
            elif info.is_sei and is_oms_sei(nal, self.codec):
                out += self._oms_sei(nal)
            elif first:
                if held is None:
                    held = []
                held.append((nal, info))
            else:
                self._other(self._open, nal, info)
        return held

    def _parse(self, nal: _Nal) -> NalInfo | None:
        """Header of a unit not in the cache; None (recorded in the GOP) when malformed."""
        try:
            return self._info(nal)
        except NalParseError as exc:
            gop = self._current() or self._open_gop(partial=True)
            gop.errors.append(f"malformed NAL unit: {exc}")
            return None

    def finish(self, reference_time: datetime | None = None) -> list[SignedGopResult]:
        """End of input: decide what is left (PENDING / UNSIGNED); closes the validator."""
        if self._finished:
            raise RuntimeError("finish called twice")
        self._finished = True
        if reference_time is not None:
            self.reference_time = reference_time
        out: list[SignedGopResult] = []
        if self._held is not None:
            out.append(_replace_eos(self._held, True))
            self._held = None
        # the SEI of the newest closed GOP may sit in the (truncated) next GOP: pending;
        # an older closed GOP should have had its SEI long ago
        closed = [g for g in self._gops if g.closed and g.unsigned_sei is None]
        overdue = closed[:-1]
        for gop in self._gops:
            if not self._seen_sei:
                why = "no OMS SEI in the stream"
                out.append(self._emit(gop, OmsResult.UNSIGNED, [why], "unsigned"))
            elif gop in overdue:
                why = "no SEI signed this GOP before the stream ended"
                out.append(self._emit(gop, OmsResult.NOT_AUTHENTIC, [why], "invalid"))
            else:
                why = (
                    "stream ended before the SEI signing this GOP arrived "
                    "(truncated, or the signed end-of-stream SEI is missing)"
                )
                out.append(self._emit(gop, OmsResult.PENDING, [why], "pending"))
        self._gops = []
        self._open = None
        return sorted(out, key=lambda r: r.index)

    # -- NAL handling -------------------------------------------------------------------

    def _info(self, nal: _Nal) -> NalInfo:
        """parse_nal_header, remembered under the key push computes (raises NalParseError)."""
        info = parse_nal_header(nal, self.codec)
        primary = 0x100 if self.codec is Codec.H264 else 0x10000
        key = nal[0] if self.codec is Codec.H264 else nal[0] << 8 | nal[1]
        if len(self._infos) < 4096:
            self._infos[key | primary if info.is_primary_slice else key] = info
        return info

    @property
    def current_gop_index(self) -> int | None:
        """Index of the GOP the last slice went to (None before the first slice).

        The ingest shell checks it against its own GOP cut, so that a verdict is never
        attached to packets of another GOP.
        """
        return self._open.index if self._open is not None else None

    def _current(self) -> _Gop | None:
        return self._open

    def _open_gop(self, partial: bool) -> _Gop:
        gop = _Gop(self._count, partial, self._last_sps)
        self._anchors.pop(self._count - MAX_PENDING_GOPS - 4, None)
        self._count += 1
        self._gops.append(gop)
        self._open = gop
        return gop

    def _drop(self, gop: _Gop) -> None:
        self._gops.remove(gop)
        if gop is self._open:
            self._open = None

    def _gop_for(self, info: NalInfo, out: list[SignedGopResult]) -> _Gop:
        """The GOP a slice belongs to, opening (and closing) GOPs as the slice demands."""
        if self._held is not None:
            out.append(_replace_eos(self._held, False))
            self._held = None
            if not info.starts_gop:  # slices after the SEI that signed this GOP
                return self._open_gop(partial=True)
        current = self._open
        if info.starts_gop:
            if current is not None:
                current.closed = True
                self._open = None
                out += self._evict()
            self._hasher.start_gop()
            return self._open_gop(partial=False)
        return current if current is not None else self._open_gop(partial=True)

    def _add_anchor(self, gop: _Gop, nal: _Nal, info: NalInfo) -> None:
        entry = self._hasher.entry(nal, info)
        gop.anchor = self._hasher.anchor
        self._anchors[gop.index] = gop.anchor
        gop.marks.append(info.mark)
        gop.entries.append(entry)

    def _add_entry(self, gop: _Gop, entry: bytes, char: str) -> None:
        if len(gop.entries) >= MAX_NALS_PER_GOP:
            gop.overflow = True
            return
        gop.marks.append(char)
        gop.entries.append(entry)

    def _give(self, gop: _Gop, held: list[tuple[_Nal, NalInfo]] | None) -> None:
        """Units held before an access unit's first slice go to that slice's GOP."""
        waiting, self._waiting = self._waiting, []
        for nal, info in (*waiting, *(held or ())):
            self._other(gop, nal, info)

    def _wait(self, held: list[tuple[_Nal, NalInfo]]) -> None:
        """No GOP open: keep the units (bounded) for the first GOP to come."""
        for item in held:
            if len(self._waiting) >= MAX_NALS_PER_GOP:
                break
            self._waiting.append(item)

    def _other(self, gop: _Gop | None, nal: _Nal, info: NalInfo) -> None:
        if gop is None:
            return
        if info.is_core_parameter_set:
            if len(gop.ps) < MAX_PARAMETER_SETS:
                ps = bytes(strip_trailing_zeros(nal))
                gop.ps.add(ps)
                if info.is_sps:
                    gop.sps = self._last_sps = ps
            else:
                gop.overflow = True
        if len(gop.marks) < MAX_NALS_PER_GOP:
            gop.marks.append(info.mark)

    def _evict(self) -> list[SignedGopResult]:
        out: list[SignedGopResult] = []
        closed = [g for g in self._gops if g.closed]
        while len(closed) > MAX_PENDING_GOPS:
            gop = closed.pop(0)
            self._drop(gop)
            if self._seen_sei:
                why = f"no SEI signed this GOP within {MAX_PENDING_GOPS} GOPs"
                out.append(self._emit(gop, OmsResult.NOT_AUTHENTIC, [why], "invalid"))
            else:
                out.append(
                    self._emit(gop, OmsResult.UNSIGNED, ["no OMS SEI in the stream"], "unsigned")
                )
        return out

    def _picture_size(self, gop: _Gop) -> tuple[int, int] | None:
        sps = gop.sps or gop.inherited_sps or self._container_sps
        if sps is None:
            return None
        if sps not in self._sizes:
            if len(self._sizes) >= MAX_PARAMETER_SETS:
                self._sizes.clear()
            self._sizes[sps] = sps_picture_size(sps, self.codec)
        return self._sizes[sps]

    # -- SEI handling -------------------------------------------------------------------

    def _target(self) -> tuple[_Gop | None, list[_Gop]]:
        """The GOP an arriving SEI signs, and the older closed GOPs it leaves unsigned."""
        closed = [g for g in self._gops if g.closed and g.unsigned_sei is None]
        if closed:
            return closed[-1], closed[:-1]
        return self._open, []

    def _oms_sei(self, nal: _Nal) -> list[SignedGopResult]:
        self._seen_sei = True
        target, skipped = self._target()
        try:
            sei = OmsSei.from_nal(nal, self.codec)
        except OmsError as exc:
            if target is not None:
                target.errors.append(f"malformed OMS SEI: {exc}")
            return []
        current = self._open
        if not sei.is_signed and not sei.certificate_sei and current is not None:
            entry = hash_bytes(strip_trailing_zeros(nal), sei.hash_name)
            self._add_entry(current, entry, "s")
        elif current is not None and len(current.marks) < MAX_NALS_PER_GOP:
            current.marks.append("C" if sei.certificate_sei else "S")
        general = sei.general
        if (
            current is not None
            and general is not None
            and self._last_counter is not None
            and general.gop_counter <= self._last_counter
        ):
            current.bad_marks.add(len(current.marks) - 1)  # an old (replayed) SEI: 'N'
        if sei.certificates is not None:
            self._set_signer(sei, target)
        if sei.certificate_sei:
            return []
        return self._sign_target(sei, target, skipped)

    def _set_signer(self, sei: OmsSei, target: _Gop | None) -> None:
        certs = sei.certificates
        assert certs is not None
        if self._signer is not None and self._signer.pem == certs.chain_pem:
            return
        known = self._signers.get(certs.chain_pem)
        if known is not None:  # parsed and its structure checked before: every SEI repeats it
            self._signer = known
            return
        try:
            chain, der, key, name, public = _parse_chain(certs.chain_pem)
        except (
            ValueError,
            TypeError,
            UnsupportedAlgorithm,
            x509.DuplicateExtension,
            OmsError,
        ) as exc:
            if target is not None:
                target.errors.append(f"certificate chain does not parse: {exc}")
            self._signer = None
            return
        checker: ChainChecker | str
        try:
            checker = ChainChecker(chain, self.anchors)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            checker = f"certificate chain cannot be checked: {exc}"
        self._signer = _Signer(certs.chain_pem, chain, der, key, name, public, checker)
        if len(self._signers) >= 8:
            self._signers.clear()
        self._signers[certs.chain_pem] = self._signer

    def _sign_target(
        self, sei: OmsSei, target: _Gop | None, skipped: list[_Gop]
    ) -> list[SignedGopResult]:
        out: list[SignedGopResult] = []
        general = sei.general
        assert general is not None
        for gop in skipped:
            self._drop(gop)
            why = (
                f"no SEI signed this GOP (the next SEI, GOP counter {general.gop_counter}, "
                "signs a later GOP)"
            )
            out.append(self._emit(gop, OmsResult.NOT_AUTHENTIC, [why], "invalid", self._ordinal))
        expected = None if self._last_counter is None else self._last_counter + 1 + len(skipped)
        self._last_counter = general.gop_counter
        if target is None:
            return out
        target.content = self._check_content(sei, target, expected)
        target.signed_times = _signed_times(general, self._last_times)
        self._last_times = (general.start_timestamp, general.end_timestamp)
        if not sei.is_signed:
            target.unsigned_sei = sei
            self._last_general = (general.gop_hash, general.num_nalus)
            return out
        self._last_general = (general.gop_hash, general.num_nalus)
        out += self._decide_signed(sei, target)
        return out

    def _check_content(
        self, sei: OmsSei, gop: _Gop, expected: int | None
    ) -> tuple[OmsResult, list[str], str, int | None, OmsResult]:
        """(result, reasons, per-entry status, nalus expected, the reference's result)."""
        general = sei.general
        assert general is not None
        reasons: list[str] = list(gop.errors)
        result = OmsResult.NOT_AUTHENTIC if gop.errors else OmsResult.AUTHENTIC
        if expected is not None and general.gop_counter != expected:
            reasons.append(f"expected GOP counter {expected}, got {general.gop_counter}")
            result = OmsResult.NOT_AUTHENTIC
        if gop.overflow:
            reasons.append(f"GOP exceeds {MAX_NALS_PER_GOP} NAL units or parameter-set bound")
            result = OmsResult.NOT_AUTHENTIC
        hl = sei.hash_list
        if hl is not None:
            res, why, status = self._match_list(gop, hl, general)
            expected_n: int | None = len(hl.hashes)
        else:
            res, why, status = self._match_gop_hash(gop, general, sei.hash_name)
            expected_n = general.num_nalus
        reasons += why
        result = _worst(result, res)
        link = self._check_link(gop, general.linked_hash)
        if link:
            reasons.append(link)
            result = OmsResult.NOT_AUTHENTIC
            if status:
                status = "N" + status[1:]  # the anchor does not chain to the previous GOP
        reference = result  # the reference does not look at parameter sets
        claim = self._check_claim(sei, gop)
        if claim[0]:
            reasons.append(claim[0])
            result = _worst(result, claim[1])
        return result, reasons, status, expected_n, reference

    def _match_list(
        self, gop: _Gop, hl: HashListTlv, general: GeneralTlv
    ) -> tuple[OmsResult, list[str], str]:
        reasons: list[str] = []
        signed = hl.hashes
        if len(signed) == len(gop.entries) and hl.joined == b"".join(gop.entries):
            result = OmsResult.AUTHENTIC  # the common case: one comparison
            status = "." * len(gop.entries)
        else:
            marks = ["."] * len(gop.entries)
            result, why = _align(gop, signed, marks)
            reasons += why
            status = "".join(marks)
        size = len(signed[0]) if signed else 32
        listed = self._list_hash(hl, size)
        if general.gop_hash != listed or general.num_nalus != len(signed):
            if self._last_general == (general.gop_hash, general.num_nalus):
                reasons.append(
                    "GOP hash and NAL count repeat the previous SEI's (reference end-of-stream "
                    "SEI quirk 2); the signed hash list was checked instead"
                )
            elif self._initial_general(general):
                reasons.append(
                    "GOP hash and NAL count are the reference signer's initial values (its "
                    "end-of-stream SEI of a one-GOP stream, quirk 2: no previous SEI to "
                    "repeat); the signed hash list was checked instead"
                )
            else:
                reasons.append("GOP hash or NAL count in the SEI does not match its hash list")
                result = OmsResult.NOT_AUTHENTIC
        return result, reasons, status

    def _initial_general(self, general: GeneralTlv) -> bool:
        """Whether ``general`` is the reference signer's state before its first SEI
        (see :func:`_reference_initial`) and no SEI came before it."""
        return self._last_general is None and _reference_initial(general)

    def _list_hash(self, hl: HashListTlv, size: int) -> bytes:
        """``gop_hash`` of a signed hash list (the last one remembered: asked twice per SEI)."""
        if not hl.joined:
            return bytes(size)
        last = self._last_list
        if last is not None and last[0] is hl:
            return last[1]
        digest = gop_hash((hl.joined,), size=size)
        self._last_list = (hl, digest)
        return digest

    def _match_gop_hash(
        self, gop: _Gop, general: GeneralTlv, hash_name: str
    ) -> tuple[OmsResult, list[str], str]:
        computed = gop_hash(gop.entries, hash_name, len(general.gop_hash))
        if computed == general.gop_hash and general.num_nalus == len(gop.entries):
            return OmsResult.AUTHENTIC, [], "." * len(gop.entries)
        why = (
            f"GOP hash does not match the {len(gop.entries)} NAL units received "
            f"(SEI expects {general.num_nalus}; low-bitrate mode, no hash list)"
        )
        return OmsResult.NOT_AUTHENTIC, [why], "N" * len(gop.entries)

    def _check_link(self, gop: _Gop, linked: bytes) -> str | None:
        prev = self._anchors.get(gop.index - 1, None) if gop.index > 0 else None
        if gop.index == 0 or (gop.index - 1) not in self._anchors or prev is None:
            return None  # first GOP received: the previous anchor is unknown
        if linked != prev:
            return (
                "linked hash does not match the anchor of the previous GOP "
                "(a GOP is missing, reordered or replayed before this one)"
            )
        return None

    def _check_claim(self, sei: OmsSei, gop: _Gop) -> tuple[str | None, OmsResult]:
        data = sei.arbitrary_data
        digest = decode_parameter_set_claim(data.data) if data is not None else None
        if digest is None:
            if self.require_claim:
                return "parameter sets are not covered by a kontur claim", OmsResult.NOT_AUTHENTIC
            return None, OmsResult.AUTHENTIC
        if self._ps_digest(gop) != digest:
            return _PS_MISMATCH, OmsResult.NOT_AUTHENTIC
        return None, OmsResult.AUTHENTIC

    def _ps_digest(self, gop: _Gop) -> bytes:
        """Digest of the parameter sets in effect for ``gop`` (cached per in-band set)."""
        key = frozenset(gop.ps)
        digest = self._ps_digests.get(key)
        if digest is None:
            if len(self._ps_digests) >= MAX_PARAMETER_SETS:
                self._ps_digests.clear()
            digest = self._ps_digests[key] = parameter_set_digest(self._container_ps | gop.ps)
        return digest

    def _decide_signed(self, sei: OmsSei, target: _Gop) -> list[SignedGopResult]:
        self._ordinal += 1
        ordinal = self._ordinal - 1
        sig_problem = self._verify_signature(sei)
        chained = [g for g in self._gops if g.unsigned_sei is not None and g is not target]
        out: list[SignedGopResult] = []
        status = target.content[2] if target.content else ""
        verified = (
            {e for e, s in zip(target.entries, status, strict=False) if s == "."}
            if chained
            else set()
        )
        for gop in chained:
            self._drop(gop)
            extra = [] if sig_problem is None else [sig_problem]
            unsigned = gop.unsigned_sei
            assert unsigned is not None
            if hash_bytes(strip_trailing_zeros(unsigned.nal), unsigned.hash_name) not in verified:
                extra.append(
                    "the unsigned SEI covering this GOP is not covered by a verified signature"
                )
            out.append(self._decide(gop, unsigned, extra, ordinal))
        self._drop(target)
        result = self._decide(target, sei, [] if sig_problem is None else [sig_problem], ordinal)
        data = sei.arbitrary_data
        if data is not None and claims_end_of_stream(data.data):
            result = replace(result, end_of_stream=True)
            result = replace(result, reasons=(*result.reasons, "signed end-of-stream marker"))
        if not target.closed and not result.end_of_stream:
            self._held = result
        else:
            out.append(result)
        return out

    def _verify_signature(self, sei: OmsSei) -> str | None:
        sig = sei.signature
        assert sig is not None
        if self._signer is None:
            return "no signing certificate received: the signature cannot be verified"
        key = self._signer.key
        name = self._signer.name
        digest = hash_bytes(sei.signed_bytes, sei.hash_name)
        try:
            if self._signer.is_ec:
                ec_key = cast(ec.EllipticCurvePublicKey, key)
                ec_key.verify(sig.signature, digest, _ECDSA[sei.hash_name])
            elif isinstance(key, rsa.RSAPublicKey):
                algo = _HASHES[sei.hash_name]()
                pss = padding.PSS(padding.MGF1(_HASHES[sei.hash_name]()), padding.PSS.AUTO)
                key.verify(sig.signature, digest, pss, utils.Prehashed(algo))
            else:
                return f"unsupported key type of certificate {name}"
        except InvalidSignature:
            return f"signature does not verify with the key of certificate {name}"
        return None

    def _decide(self, gop: _Gop, sei: OmsSei, extra: list[str], ordinal: int) -> SignedGopResult:
        no_check = OmsResult.NOT_AUTHENTIC
        content = gop.content or (no_check, ["no content check"], "", None, no_check)
        result, reasons, status, expected_n, reference = content
        reasons = list(reasons) + extra
        if extra:
            result = reference = OmsResult.NOT_AUTHENTIC
        ref = _REFERENCE_NAME[reference]
        general = sei.general
        assert general is not None
        start_raw = general.start_time
        if general.start_timestamp == 0 and _reference_initial(general):
            # the reference's initial start time: its end time is the GOP's first frame
            start_raw = general.end_time
            reasons.append("start time 0 (reference initial state): the end time is used")
        start, note = derive_capture_time(start_raw, self.reference_time)
        end, _ = derive_capture_time(general.end_time, self.reference_time)
        if note:
            reasons.append(note)
        prov = self._provenance(start)
        data = sei.arbitrary_data
        claimed = data is not None and decode_parameter_set_claim(data.data) is not None
        covered = claimed and _PS_MISMATCH not in reasons
        if not claimed:
            reasons.append(_NO_CLAIM)
        hl = sei.hash_list
        ident = self._list_hash(hl, len(general.gop_hash)) if hl else general.gop_hash
        vstr, nstr = _strings(gop, status)
        signer = self._signer
        return SignedGopResult(
            index=gop.index,
            result=result,
            reasons=tuple(reasons),
            gop_counter=general.gop_counter,
            gop_hash=ident,
            capture_start=start,
            capture_end=end,
            signer_key_der=signer.key_der if signer else None,
            certificate_chain=signer.der_chain if signer else (),
            provenance=prov,
            frames=gop.frames,
            nalus_expected=expected_n,
            nalus_received=len(gop.entries),
            validation_string=vstr,
            nalu_string=nstr,
            end_of_stream=False,
            reference_result=ref,
            parameter_sets_covered=covered,
            sei_ordinal=ordinal,
            sei_num_nalus=general.num_nalus,
            picture_size=self._picture_size(gop),
            signed_times=gop.signed_times,
        )

    def _provenance(self, capture: datetime | None) -> ProvenanceCheck:
        if self._signer is None:
            return ProvenanceCheck(Provenance.UNKNOWN, "no certificate chain received")
        moment = capture or self.reference_time
        if moment is None:
            return ProvenanceCheck(Provenance.NOT_OK, "no capture time and no reference time")
        checker = self._signer.checker
        if isinstance(checker, str):
            return ProvenanceCheck(Provenance.NOT_OK, checker)
        try:
            return checker.check(moment)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            return ProvenanceCheck(Provenance.NOT_OK, f"certificate chain cannot be checked: {exc}")

    def _emit(
        self, gop: _Gop, result: OmsResult, reasons: list[str], ref: str, ordinal: int | None = None
    ) -> SignedGopResult:
        char = {OmsResult.PENDING: "P", OmsResult.NOT_AUTHENTIC: "N"}.get(result, "U")
        vstr, nstr = _strings(gop, char * len(gop.entries))
        return SignedGopResult(
            index=gop.index,
            result=result,
            reasons=tuple(gop.errors) + tuple(reasons),
            gop_counter=None,
            gop_hash=None,
            capture_start=None,
            capture_end=None,
            signer_key_der=None,
            certificate_chain=(),
            provenance=ProvenanceCheck(Provenance.UNKNOWN, "not signed"),
            frames=gop.frames,
            nalus_expected=None,
            nalus_received=len(gop.entries),
            validation_string=vstr,
            nalu_string=nstr,
            end_of_stream=False,
            reference_result=ref,
            parameter_sets_covered=False,
            sei_ordinal=ordinal,
            picture_size=self._picture_size(gop),
        )


@lru_cache(maxsize=16)
def _parse_chain(
    pem: bytes,
) -> tuple[list[x509.Certificate], tuple[bytes, ...], bytes, str, object]:
    """(chain, DER chain, key SPKI, leaf name, leaf key) of a PEM chain, parsed once per
    distinct chain (every SEI of a camera repeats it; the result is never mutated).

    Raises what parsing raises (not cached).
    """
    chain = load_pem_chain(pem)
    der = tuple(c.public_bytes(serialization.Encoding.DER) for c in chain)
    public = chain[0].public_key()
    key = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    name = chain[0].subject.rfc4514_string()
    for cert in chain:  # parse lazily-decoded fields now, not mid-validation
        _ = (cert.subject, cert.issuer, cert.not_valid_before_utc, cert.not_valid_after_utc)
        _ = list(cert.extensions)
    return chain, der, key, name, public


def _reference_initial(general: GeneralTlv) -> bool:
    """Whether ``general`` repeats the reference signer's state before its first SEI.

    The reference's end-of-stream SEI repeats the previous SEI's start time, GOP hash and
    NAL count (README quirk 2); in a one-GOP stream it is the first SEI (GOP counter 1, zero
    linked hash) and repeats the initial values: start time 0, all-zero GOP hash, count 0
    (``oms_signer.c``), its end time being the GOP's first frame.
    """
    zeros = bytes(len(general.gop_hash))
    return (
        general.gop_counter == 1
        and general.linked_hash == zeros
        and general.gop_hash == zeros
        and general.num_nalus == 0
    )


def _signed_times(
    general: GeneralTlv, previous: tuple[int, int] | None
) -> tuple[int, int | None] | None:
    """``(first frame, next GOP's first frame)`` in raw ticks for the GOP ``general`` signs.

    The reference signer's end-of-stream SEI repeats the previous SEI's times (README quirk
    2), or, as the first SEI of a one-GOP stream, its initial start time 0 (see
    :func:`_reference_initial`): either way its end time is this GOP's first frame and the
    next GOP's is not stated. A time of 0 is no signed time.
    """
    start, end = general.start_timestamp, general.end_timestamp
    if (start, end) == previous or (start == 0 and _reference_initial(general)):
        return (end, None) if end > 0 else None
    if start <= 0:
        return None
    return start, (end if end > 0 else None)


def _worst(a: OmsResult, b: OmsResult) -> OmsResult:
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


def _align(gop: _Gop, signed: tuple[bytes, ...], status: list[str]) -> tuple[OmsResult, list[str]]:
    """Received hashes vs. the signed list: foreign ones are N, list entries never received M.

    Same length: compared position by position (a modified NAL is N, not missing). Otherwise
    received hashes are matched in order against the list.
    """
    reasons: list[str] = []
    chars = [c for c in gop.marks if c in _ENTRY_MARKS]
    bad = 0
    matched = 0
    pos = 0
    for i, entry in enumerate(gop.entries):
        if len(gop.entries) == len(signed):
            found = i if signed[i] == entry else -1
        else:
            found = signed.index(entry, pos) if entry in signed[pos:] else -1
        if found < 0:
            status[i] = "N"
            bad += 1
            if bad <= 10:
                char = chars[i] if i < len(chars) else "?"
                reasons.append(
                    f"hash of NAL {i} ({_label(char)}) does not match the signed hash list"
                )
            continue
        matched += 1
        pos = found + 1
    if bad > 10:
        reasons.append(f"... {bad} NAL units in all do not match the signed hash list")
    missing = max(0, len(signed) - matched - bad)
    if missing:
        reasons.append(f"{missing} of {len(signed)} signed NAL units were not received")
    if bad:
        return OmsResult.NOT_AUTHENTIC, reasons
    return (OmsResult.MISSING if missing else OmsResult.AUTHENTIC), reasons


_LABELS = {"I": "I slice", "i": "I slice", "P": "P slice", "p": "P slice", "s": "unsigned SEI"}


def _label(char: str) -> str:
    return _LABELS.get(char, "NAL")


def _strings(gop: _Gop, status: str) -> tuple[str, str]:
    """(validation string, NAL-unit string) of ``gop`` given the per-entry ``status``."""
    nstr = "".join(gop.marks)
    if not gop.bad_marks and status.count(".") == len(status) == len(gop.entries):
        return nstr.translate(_ALL_VERIFIED), nstr  # the common case, in C
    vchars: list[str] = []
    idx = 0
    for pos, char in enumerate(gop.marks):
        entry = char in _ENTRY_MARKS
        if pos in gop.bad_marks:
            vchars.append("N")
        elif not entry:
            vchars.append("." if char in "SC" else "_")
        else:
            vchars.append(status[idx] if idx < len(status) else "U")
        idx += entry
    return "".join(vchars), nstr


def _replace_eos(result: SignedGopResult, eos: bool) -> SignedGopResult:
    return replace(result, end_of_stream=eos)
