"""ONVIF Media Signing signer: a pure state machine that signs H.264/H.265 access units.

It reproduces the reference C library ``onvif/media-signing-framework`` r25.12.3
(``oms_signer.c``, ``oms_common.c``, ``oms_tlv.c``) with its GStreamer signer app, so that
the reference validator accepts the output:

* only slices are hashed (H.264 types 1/5, H.265 0-1/16-21), each NAL unit without its
  trailing ``0x00`` bytes; the primary IDR/IRAP slice of a GOP is hashed plainly and becomes
  the *anchor*, every other slice hash is ``SHA256(anchor || SHA256(nal))``;
* the GOP hash is SHA-256 over the concatenated NAL-unit hashes; the linked hash is the
  anchor hash of the previous GOP (zeros for the first SEI);
* at the primary slice of GOP k+1 the SEI signing GOP k is built; it is inserted before the
  first primary slice of a later access unit that only AUD / parameter sets precede (the
  reference app inserts at the head of an access unit): normally the 2nd access unit of GOP
  k+1. Where every access unit opens with another SEI, an SEI pending since the previous
  access unit goes before the first primary slice anyway (kontur; else it would never fit);
* SEI = user-data-unregistered, UUID ``005bc93f-2d71-5e95-ada4-796f90877a6f``, reserved byte
  (bit 7: certificate SEI, bit 6: emulation prevention before signing = 0), TLVs (1-byte tag,
  2-byte big-endian length) in the order crypto info (4), vendor info (5), certificates (6),
  general (1), hash list (2), arbitrary data (7), signature (3), then the stop byte ``0x80``;
  no emulation prevention (the writer adds it for Annex-B output only);
* the signature covers SHA-256 of the SEI from its NAL header up to the signature TLV:
  ECDSA (DER, padded with ``0x01`` to 72 bytes) or RSA-PSS (SHA-256, maximum salt);
* :meth:`OmsSigner.finish` builds the reference's end-of-stream SEI, whose General TLV is
  stale (GOP hash, NAL count and times of the previous SEI, GOP counter advanced) while its
  hash list covers the last GOP. Deviations: when that SEI carries no hash list (low-bitrate
  mode, or a GOP over 300 NAL units) the stale values would fail the last GOP in every
  validator; when it is the first SEI of the stream (a one-GOP clip) there is no previous
  SEI, and the reference writes its initial state (start time 0, all-zero GOP hash, 0 NAL
  units), which only a hash-list fallback can excuse and which fails outright past the
  list's capacity. In both cases kontur writes the last GOP's own hash, count and times
  (the reference validator then matches the GOP hash directly);
* a GOP of more than 600 hashable NAL units gets no hash list but, unlike the reference, a
  correct NAL count. 600 is the reference's own bound (:data:`MAX_HASH_LIST_ENTRIES`): its
  list buffer holds 300 hashes of 64 bytes, i.e. 600 SHA-256 entries, and kontur's SEI parser
  accepts the same (:data:`MAX_HASH_LIST_BYTES`);
* certificate-SEI mode (reference ``-C 0``): one SEI with only crypto/vendor/certificates
  (reserved bit 7), built before the first access unit and placed like the others (in the 1st
  access unit when it starts with its slice, else the 2nd); the GOP SEIs omit those TLVs.

kontur extensions travel in the ARBITRARY_DATA TLV (tag 7): the only extra tag the
reference validator decodes without failing (an unknown tag aborts its ``tlv_decode``). It
holds the parameter-set claim of :mod:`kontur.ingest.oms.hashing` (SPS/PPS/VPS in effect for
the GOP: the extradata's plus the in-band ones of the GOP's access units) and, in the final
SEI only, :data:`~kontur.ingest.oms.hashing.END_OF_STREAM_MARKER` (a clean stop, as opposed
to a truncated stream). See :func:`kontur_claim`.

The signer never reads the clock: each access unit comes with its capture time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from kontur.ingest.oms.hashing import (
    END_OF_STREAM_MARKER,
    GopHasher,
    encode_parameter_set_claim,
    gop_hash,
    parameter_set_digest,
)
from kontur.ingest.oms.keys import SignerInputError, SigningIdentity
from kontur.ingest.oms.limits import MAX_HASH_LIST_ENTRIES
from kontur.ingest.oms.nal import Codec, NalInfo, NalKind, parse_nal_header
from kontur.ingest.oms.sei import (
    SHA256_OID,
    ArbitraryDataTlv,
    CertificatesTlv,
    CryptoInfoTlv,
    GeneralTlv,
    HashListTlv,
    OmsTlv,
    VendorInfoTlv,
    build_sei,
    datetime_to_filetime,
    is_oms_sei,
)

__all__ = [
    "END_OF_STREAM_MARKER",
    "KONTUR_VENDOR_INFO",
    "REFERENCE_CODE_VERSION",
    "REFERENCE_VENDOR_INFO",
    "OmsSigner",
    "SignedAccessUnit",
    "SignerOptions",
    "VendorInfo",
    "kontur_claim",
    "oms_timestamp",
]

#: Library version written in the General TLV (the reference release kontur follows).
REFERENCE_CODE_VERSION = (25, 12, 3)
_HASH_SIZE = 32


@dataclass(frozen=True)
class VendorInfo:
    """Vendor-info TLV content (each string at most 255 bytes of UTF-8)."""

    firmware_version: str
    serial_number: str
    manufacturer: str

    def tlv(self) -> VendorInfoTlv:
        """The vendor-info TLV; raises :class:`SignerInputError` for a string over 255 bytes."""
        parts = [t.encode() for t in (self.firmware_version, self.serial_number, self.manufacturer)]
        for raw in parts:
            if len(raw) > 255:
                raise SignerInputError(f"expected a vendor string of <= 255 bytes, got {len(raw)}")
        return VendorInfoTlv(1, *parts)


#: What the reference signer app writes.
REFERENCE_VENDOR_INFO = VendorInfo("r25.12.3", "N/A", "Media Signing Framework")
#: What kontur writes by default.
KONTUR_VENDOR_INFO = VendorInfo("kontur", "N/A", "kontur")


@dataclass(frozen=True)
class SignerOptions:
    """Signer settings.

    ``certificate_sei``: reference ``-C 0`` mode. ``low_bitrate``: omit hash lists.
    ``kontur_extensions``: add kontur's ARBITRARY_DATA TLV (parameter-set claim, end-of-stream
    marker in the final SEI); off gives byte for byte the reference layout.
    """

    certificate_sei: bool = False
    low_bitrate: bool = False
    kontur_extensions: bool = True
    vendor_info: VendorInfo = KONTUR_VENDOR_INFO
    code_version: tuple[int, int, int] = REFERENCE_CODE_VERSION


@dataclass(frozen=True)
class SignedAccessUnit:
    """One access unit to emit: the original NAL units with any OMS SEI inserted."""

    nal_units: tuple[bytes, ...]
    seis: tuple[bytes, ...] = ()

    @property
    def sei_bytes(self) -> int:
        """Bytes of OMS SEI NAL units inserted into this access unit."""
        return sum(len(s) for s in self.seis)


def oms_timestamp(when: dt.datetime) -> int:
    """``when`` (timezone-aware) as ONVIF time: 100-ns ticks since 1601-01-01 UTC."""
    if when.tzinfo is None:
        raise SignerInputError(f"expected a timezone-aware capture time, got naive {when}")
    return datetime_to_filetime(when)


def kontur_claim(parameter_sets: Sequence[bytes], end_of_stream: bool) -> bytes:
    """kontur's ARBITRARY_DATA payload: the parameter-set claim (+ end-of-stream marker)."""
    claim = encode_parameter_set_claim(parameter_set_digest(parameter_sets))
    return claim + END_OF_STREAM_MARKER if end_of_stream else claim


@dataclass
class _GopState:
    """Mutable state of the (partial) GOP being signed (reference ``gop_info_t``)."""

    hasher: GopHasher = field(default_factory=GopHasher)
    hashes: list[bytes] = field(default_factory=list)
    start_ts: int = 0
    end_ts: int = 0
    last_ts: int = 0
    counter: int = 0
    num_nalus: int = 0
    gop_hash: bytes = bytes(_HASH_SIZE)
    parameter_sets: list[bytes] = field(default_factory=list)
    sealed_parameter_sets: list[bytes] = field(default_factory=list)


class OmsSigner:
    """Signs access units in decode order; see the module docstring for the format.

    ``parameter_sets`` are the SPS/PPS/VPS of the codec extradata (avcC/hvcC), covered by the
    kontur claim together with the in-band parameter sets of each GOP. The claim covers SPS
    and PPS (H.264), VPS, SPS and PPS (H.265) only, in every container: any other unit
    passed here (an hvcC's SEI) is left out, as the validator leaves it out.
    """

    def __init__(
        self,
        codec: Codec,
        identity: SigningIdentity,
        options: SignerOptions | None = None,
        parameter_sets: Sequence[bytes] = (),
    ) -> None:
        """Set up a signer; in certificate-SEI mode the certificate SEI is built at once."""
        self._codec = codec
        self._identity = identity
        self._options = options or SignerOptions()
        self._vendor = self._options.vendor_info.tlv()
        self._extradata_ps = [
            bytes(p)
            for p in parameter_sets
            if len(p) >= codec.header_size and parse_nal_header(p, codec).is_core_parameter_set
        ]
        self._gop = _GopState()
        self._pending: list[bytes] = []
        self._pending_since = 0  # access unit during which the oldest pending SEI was built
        self._signing_started = False
        self._finished = False
        self._access_units = 0
        #: OMS SEIs handed out so far (placed in access units).
        self.seis_emitted = 0
        #: GOPs whose SEI has been built (the final SEI counts the last GOP).
        self.gops_signed = 0
        if self._options.certificate_sei:
            # Built before any NAL unit, as the reference app does; it does not touch the
            # GOP state, so it may wait for the first eligible primary slice.
            self._queue(self._build_sei(certificate=True), -1)

    @property
    def pending_seis(self) -> int:
        """SEIs built but not yet placed (waiting for an eligible primary slice)."""
        return len(self._pending)

    def sign_access_unit(
        self, nal_units: Sequence[bytes], capture_time: dt.datetime
    ) -> SignedAccessUnit:
        """Hash one access unit and return it with the pending SEIs inserted where they belong.

        Raises :class:`SignerInputError` for an already OMS-signed input, an empty access unit
        or a call after :meth:`finish`.
        """
        if self._finished:
            raise SignerInputError("expected no access unit after finish(), got one")
        if not nal_units:
            raise SignerInputError(
                f"expected NAL units in access unit {self._access_units}, got none"
            )
        ts = oms_timestamp(capture_time)
        infos = [parse_nal_header(n, self._codec) for n in nal_units]
        for nal, info in zip(nal_units, infos, strict=True):
            if info.kind is NalKind.SEI and is_oms_sei(nal, self._codec):
                raise SignerInputError(
                    "expected unsigned video, got an ONVIF Media Signing SEI in access unit "
                    f"{self._access_units} (input is already signed)"
                )
        if any(info.starts_gop for info in infos):
            gop = self._gop
            gop.sealed_parameter_sets, gop.parameter_sets = gop.parameter_sets, []
        out: list[bytes] = []
        inserted: list[bytes] = []
        header_only = True  # only AUD / parameter sets so far in this access unit
        for nal, info in zip(nal_units, infos, strict=True):
            overdue = self._access_units - self._pending_since >= 2
            eligible = header_only or overdue
            if self._pending and eligible and info.is_slice and info.is_primary_slice:
                # FIFO; the reference app would reverse several SEIs due in one access unit
                # (an edge case: a one-frame GOP), kontur keeps them in signing order.
                inserted.extend(self._pending)
                out.extend(self._pending)
                self._pending.clear()
            header_only &= info.kind in (NalKind.AUD, NalKind.PARAMETER_SET)
            self._add_nal(bytes(nal), info, ts)
            out.append(bytes(nal))
        self._access_units += 1
        self.seis_emitted += len(inserted)
        return SignedAccessUnit(tuple(out), tuple(inserted))

    def finish(self) -> SignedAccessUnit | None:
        """End the stream: any pending SEI and the reference's end-of-stream SEI as one
        SEI-only access unit; ``None`` when nothing was signed."""
        if self._finished:
            raise SignerInputError("expected finish() once, got a second call")
        self._finished = True
        if not self._signing_started:
            return None
        seis = (*self._pending, self._build_sei(end_of_stream=True))
        self._pending.clear()
        self.gops_signed += 1
        self.seis_emitted += len(seis)
        return SignedAccessUnit(seis, seis)

    def _queue(self, sei: bytes, access_unit: int) -> None:
        if not self._pending:
            self._pending_since = access_unit
        self._pending.append(sei)

    def _add_nal(self, nal: bytes, info: NalInfo, ts: int) -> None:
        gop = self._gop
        gop.last_ts = ts
        if info.is_core_parameter_set:
            gop.parameter_sets.append(nal)
        if info.starts_gop:
            gop.start_ts, gop.end_ts = gop.end_ts, ts
            gop.num_nalus = len(gop.hashes)
            gop.gop_hash = gop_hash(gop.hashes)
            if self._signing_started and gop.counter > 0:
                self._queue(self._build_sei(), self._access_units)
                self.gops_signed += 1
            gop.counter += 1
        if info.is_slice:
            gop.hashes.append(gop.hasher.entry(nal, info))
        self._signing_started = True

    def _optional_tlvs(self) -> list[OmsTlv]:
        return [
            CryptoInfoTlv(1, SHA256_OID, b"", 0),
            self._vendor,
            CertificatesTlv(1, 0, self._identity.embedded_chain),
        ]

    def _mandatory_tlvs(self, end_of_stream: bool) -> list[OmsTlv]:
        gop = self._gop
        listed = 0 < len(gop.hashes) <= MAX_HASH_LIST_ENTRIES and not self._options.low_bitrate
        start, end, count, digest = gop.start_ts, gop.end_ts, gop.num_nalus, gop.gop_hash
        if end_of_stream and (not listed or self.gops_signed == 0):
            # The reference repeats the previous SEI's values here (README quirk 2), which
            # fails the last GOP when no hash list backs it; kontur states the last GOP.
            # With no previous SEI (a one-GOP stream) there is nothing to repeat: the
            # reference writes its initial state (zero GOP hash, 0 NAL units, start time 0)
            # beside the hash list, which a validator can only excuse or reject.
            start, end, count, digest = (
                gop.end_ts,
                gop.last_ts,
                len(gop.hashes),
                gop_hash(gop.hashes),
            )
        tlvs: list[OmsTlv] = [
            GeneralTlv(
                2,
                self._options.code_version,
                0,
                start,
                end,
                gop.counter & 0xFFFFFFFF,
                count & 0xFFFF,
                digest,
                gop.hasher.previous_anchor,
            )
        ]
        if listed:
            tlvs.append(HashListTlv(1, tuple(gop.hashes)))
        if self._options.kontur_extensions:
            in_band = gop.parameter_sets if end_of_stream else gop.sealed_parameter_sets
            claim = kontur_claim([*self._extradata_ps, *in_band], end_of_stream)
            tlvs.append(ArbitraryDataTlv(1, claim))
        return tlvs

    def _build_sei(self, *, certificate: bool = False, end_of_stream: bool = False) -> bytes:
        """Build, hash and sign one SEI; then start a new hash list like the reference."""
        tlvs: list[OmsTlv] = []
        if certificate or not self._options.certificate_sei:
            tlvs += self._optional_tlvs()
        if not certificate:
            tlvs += self._mandatory_tlvs(end_of_stream)
        max_sig = self._identity.max_signature_size
        document = build_sei(
            self._codec, tlvs, certificate_sei=certificate, signature_max_size=max_sig
        )
        signature = self._identity.sign_digest(hashlib.sha256(document.signed_bytes).digest())
        if not certificate:
            self._gop.hashes = []
            self._gop.hasher.start_gop()
        return document.finish(signature)
