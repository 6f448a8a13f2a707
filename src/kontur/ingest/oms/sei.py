"""The OMS SEI: parsing (every invariant checked) and byte-identical building.

Layout (user-data-unregistered SEI, as ``oms_signer.c``/``oms_tlv.c`` of the reference
write it; multi-byte fields big-endian)::

    NAL header (06 | 4E 01) . payload type 05 . payload size (FF-run)
    . UUID 005bc93f-2d71-5e95-ada4-796f90877a6f . reserved byte . TLV* . stop byte 80

reserved byte: bit 7 = certificate SEI ("golden"), bit 6 = emulation prevention applied
before hashing; bits 0-5 must be zero. TLV = tag (1 byte) . length (2 bytes) . value.
TLV order written by the reference: optional (crypto info 4, vendor info 5, certificates 6),
mandatory (general 1, hash list 2, arbitrary data 7), then the signature (3) last.

What is signed (the *document*): the NAL unit from its header up to, not including, the
signature TLV -- with the emulation prevention bytes if bit 6 is set, without otherwise.
The signature is over ``H(document)`` (the reference signs the digest). The payload size
field counts the payload *without* emulation prevention bytes and includes the signature
TLV, so a document can only be built once the signature's maximum size is known.

Timestamps are 64-bit counts of 100 ns since 1601-01-01 UTC (FILETIME); see
:func:`filetime_to_datetime`.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

from kontur.ingest.oms.errors import OmsLimitExceeded, SeiParseError, UnsupportedOmsVersion
from kontur.ingest.oms.limits import (
    MAX_CERT_CHAIN_BYTES,
    MAX_HASH_LIST_BYTES,
    MAX_SEI_BYTES,
)
from kontur.ingest.oms.nal import (
    Codec,
    NalKind,
    add_emulation_prevention,
    parse_nal_header,
    remove_emulation_prevention,
    strip_trailing_zeros,
)

__all__ = [
    "HASH_OIDS",
    "OMS_UUID",
    "STOP_BYTE",
    "ArbitraryDataTlv",
    "CertificatesTlv",
    "CryptoInfoTlv",
    "GeneralTlv",
    "HashListTlv",
    "OmsSei",
    "OmsTlv",
    "SeiDocument",
    "SignatureTlv",
    "Tag",
    "VendorInfoTlv",
    "build_sei",
    "datetime_to_filetime",
    "encode_tlv",
    "filetime_to_datetime",
    "is_oms_sei",
]

OMS_UUID = bytes.fromhex("005bc93f2d715e95ada4796f90877a6f")
STOP_BYTE = 0x80
USER_DATA_UNREGISTERED = 5
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)

#: DER-encoded hash algorithm OIDs (with the 06 tag) -> (hashlib name, digest size).
HASH_OIDS: dict[bytes, tuple[str, int]] = {
    bytes.fromhex("0609608648016503040201"): ("sha256", 32),
    bytes.fromhex("0609608648016503040202"): ("sha384", 48),
    bytes.fromhex("0609608648016503040203"): ("sha512", 64),
}
SHA256_OID = bytes.fromhex("0609608648016503040201")


class Tag(enum.IntEnum):
    """TLV tags of the reference (``oms_tlv.h``)."""

    GENERAL = 1
    HASH_LIST = 2
    SIGNATURE = 3
    CRYPTO_INFO = 4
    VENDOR_INFO = 5
    CERTIFICATES = 6
    ARBITRARY_DATA = 7


def filetime_to_datetime(value: int) -> datetime | None:
    """A FILETIME (100 ns since 1601 UTC) as an aware UTC datetime; None if out of range."""
    try:
        return _FILETIME_EPOCH + timedelta(microseconds=value // 10)
    except OverflowError:
        return None


def datetime_to_filetime(moment: datetime) -> int:
    """An aware datetime as FILETIME (100 ns since 1601-01-01 UTC)."""
    delta = moment - _FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def _version(tag: Tag, value: bytes, allowed: tuple[int, ...]) -> int:
    if not value:
        raise SeiParseError(f"{tag.name} TLV: expected a version byte, got an empty value")
    if value[0] not in allowed:
        want = " or ".join(str(v) for v in allowed)
        raise UnsupportedOmsVersion(f"{tag.name} TLV: expected version {want}, got {value[0]}")
    return value[0]


_GENERAL_V1 = struct.Struct(">BBBBBqIH")
_GENERAL_V2 = struct.Struct(">BBBBBqqIH")


@dataclass(frozen=True)
class GeneralTlv:
    """General information (tag 1): counters, timestamps, GOP hash and linked hash."""

    version: int
    code_version: tuple[int, int, int]
    triggered_partial_gop: int
    start_timestamp: int
    end_timestamp: int
    gop_counter: int
    num_nalus: int
    gop_hash: bytes
    linked_hash: bytes
    tag = Tag.GENERAL

    @classmethod
    def from_value(cls, value: bytes, hash_size: int) -> GeneralTlv:
        """Decode the value bytes; hashes must be ``hash_size`` bytes each."""
        version = _version(Tag.GENERAL, value, (1, 2))
        fixed = 1 + 3 + 1 + 8 + (8 if version >= 2 else 0) + 4 + 2
        if len(value) != fixed + 2 * hash_size:
            raise SeiParseError(
                f"GENERAL TLV: expected {fixed + 2 * hash_size} bytes for version {version} "
                f"with {hash_size}-byte hashes, got {len(value)}"
            )
        if version >= 2:
            _, major, minor, patch, partial, start, end, counter, count = _GENERAL_V2.unpack_from(
                value
            )
        else:
            _, major, minor, patch, partial, start, counter, count = _GENERAL_V1.unpack_from(value)
            end = start
        pos = fixed
        return cls(
            version,
            (major, minor, patch),
            partial,
            start,
            end,
            counter,
            count,
            value[pos : pos + hash_size],
            value[pos + hash_size :],
        )

    def encode(self) -> bytes:
        """The value bytes."""
        out = bytearray([self.version, *self.code_version, self.triggered_partial_gop])
        out += self.start_timestamp.to_bytes(8, "big", signed=True)
        if self.version >= 2:
            out += self.end_timestamp.to_bytes(8, "big", signed=True)
        out += self.gop_counter.to_bytes(4, "big") + self.num_nalus.to_bytes(2, "big")
        return bytes(out + self.gop_hash + self.linked_hash)

    @property
    def start_time(self) -> datetime | None:
        """``start_timestamp`` as UTC datetime (raw FILETIME; see README quirk 3)."""
        return filetime_to_datetime(self.start_timestamp)

    @property
    def end_time(self) -> datetime | None:
        """``end_timestamp`` as UTC datetime."""
        return filetime_to_datetime(self.end_timestamp)


#: struct layouts splitting a hash list into its hashes, per (count, hash size).
_LIST_LAYOUTS: dict[tuple[int, int], struct.Struct] = {}


@dataclass(frozen=True)
class HashListTlv:
    """Hash list (tag 2): one hash per hashed NAL unit of the (partial) GOP."""

    version: int
    hashes: tuple[bytes, ...]
    tag = Tag.HASH_LIST

    @classmethod
    def from_value(cls, value: bytes, hash_size: int) -> HashListTlv:
        """Decode; the list must be a whole number of ``hash_size`` hashes."""
        version = _version(Tag.HASH_LIST, value, (1,))
        body = value[1:]
        if len(body) % hash_size:
            raise SeiParseError(
                f"HASH_LIST TLV: expected a multiple of {hash_size} bytes, got {len(body)}"
            )
        count = len(body) // hash_size
        if len(body) > MAX_HASH_LIST_BYTES:
            most = MAX_HASH_LIST_BYTES // hash_size
            raise OmsLimitExceeded(f"hash list of {count} entries exceeds {most}")
        layout = _LIST_LAYOUTS.get((count, hash_size))
        if layout is None:  # at most MAX_HASH_LIST_BYTES / size per hash size: bounded
            layout = _LIST_LAYOUTS[count, hash_size] = struct.Struct(f">{f'{hash_size}s' * count}")
        tlv = cls(version, layout.unpack(body))
        tlv.__dict__["joined"] = body  # the cached_property, already known
        return tlv

    @cached_property
    def joined(self) -> bytes:
        """The hashes concatenated (as carried): compared and hashed in one piece."""
        return b"".join(self.hashes)

    def encode(self) -> bytes:
        """The value bytes."""
        return bytes([self.version]) + self.joined


@dataclass(frozen=True)
class SignatureTlv:
    """Signature (tag 3): DER/raw signature padded with 0x01 to ``max_size`` bytes."""

    version: int
    signature: bytes
    max_size: int
    tag = Tag.SIGNATURE

    @classmethod
    def from_value(cls, value: bytes) -> SignatureTlv:
        """Decode; padding after the signature must be 0x01 bytes as the reference writes."""
        version = _version(Tag.SIGNATURE, value, (1,))
        if len(value) < 3:
            raise SeiParseError(f"SIGNATURE TLV: expected at least 3 bytes, got {len(value)}")
        size = int.from_bytes(value[1:3], "big")
        room = len(value) - 3
        if size > room or size == 0:
            raise SeiParseError(
                f"SIGNATURE TLV: expected a signature of 1..{room} bytes, got size {size}"
            )
        padding = value[3 + size :]
        if padding.strip(b"\x01"):
            raise SeiParseError("SIGNATURE TLV: expected 0x01 padding after the signature")
        return cls(version, value[3 : 3 + size], room)

    def encode(self) -> bytes:
        """The value bytes."""
        pad = b"\x01" * (self.max_size - len(self.signature))
        return bytes([self.version]) + len(self.signature).to_bytes(2, "big") + self.signature + pad


@dataclass(frozen=True)
class CryptoInfoTlv:
    """Crypto information (tag 4): hash algorithm OID, signing algorithm OID, RSA size."""

    version: int
    hash_oid: bytes
    sign_oid: bytes
    rsa_size: int
    tag = Tag.CRYPTO_INFO

    @classmethod
    def from_value(cls, value: bytes) -> CryptoInfoTlv:
        """Decode; the hash OID must be one of :data:`HASH_OIDS`."""
        version = _version(Tag.CRYPTO_INFO, value, (1,))
        try:
            hlen = value[1]
            hash_oid = value[2 : 2 + hlen]
            slen = value[2 + hlen]
            sign_oid = value[3 + hlen : 3 + hlen + slen]
            end = 3 + hlen + slen + 2
        except IndexError:
            raise SeiParseError(f"CRYPTO_INFO TLV: truncated ({len(value)} bytes)") from None
        if end != len(value) or len(hash_oid) != hlen or len(sign_oid) != slen:
            raise SeiParseError(f"CRYPTO_INFO TLV: expected {end} bytes, got {len(value)}")
        if hash_oid not in HASH_OIDS:
            raise SeiParseError(
                f"CRYPTO_INFO TLV: expected a SHA-2 hash algorithm OID, got {hash_oid.hex()}"
            )
        return cls(version, hash_oid, sign_oid, int.from_bytes(value[end - 2 : end], "big"))

    def encode(self) -> bytes:
        """The value bytes."""
        return (
            bytes([self.version, len(self.hash_oid)])
            + self.hash_oid
            + bytes([len(self.sign_oid)])
            + self.sign_oid
            + self.rsa_size.to_bytes(2, "big")
        )

    @property
    def hash_name(self) -> str:
        """hashlib name of the hash algorithm."""
        return HASH_OIDS[self.hash_oid][0]

    @property
    def hash_size(self) -> int:
        """Digest size in bytes."""
        return HASH_OIDS[self.hash_oid][1]


@dataclass(frozen=True)
class VendorInfoTlv:
    """Vendor information (tag 5): firmware version, serial number, manufacturer."""

    version: int
    firmware_version: bytes
    serial_number: bytes
    manufacturer: bytes
    tag = Tag.VENDOR_INFO

    @classmethod
    def from_value(cls, value: bytes) -> VendorInfoTlv:
        """Decode three length-prefixed strings."""
        version = _version(Tag.VENDOR_INFO, value, (1,))
        parts: list[bytes] = []
        pos = 1
        for _ in range(3):
            if pos >= len(value):
                raise SeiParseError(f"VENDOR_INFO TLV: truncated at offset {pos}")
            size = value[pos]
            if pos + 1 + size > len(value):
                raise SeiParseError(f"VENDOR_INFO TLV: string at offset {pos} runs past the end")
            parts.append(value[pos + 1 : pos + 1 + size])
            pos += 1 + size
        if pos != len(value):
            raise SeiParseError(f"VENDOR_INFO TLV: expected {pos} bytes, got {len(value)}")
        return cls(version, parts[0], parts[1], parts[2])

    def encode(self) -> bytes:
        """The value bytes."""
        out = bytearray([self.version])
        for part in (self.firmware_version, self.serial_number, self.manufacturer):
            out += bytes([len(part)]) + part
        return bytes(out)


@dataclass(frozen=True)
class CertificatesTlv:
    """Certificates (tag 6): user-provisioned flag and the PEM chain, leaf first."""

    version: int
    user_provisioned: int
    chain_pem: bytes
    tag = Tag.CERTIFICATES

    @classmethod
    def from_value(cls, value: bytes) -> CertificatesTlv:
        """Decode; the chain must be non-empty and within :data:`MAX_CERT_CHAIN_BYTES`."""
        version = _version(Tag.CERTIFICATES, value, (1,))
        if len(value) < 3:
            raise SeiParseError("CERTIFICATES TLV: expected a non-empty certificate chain")
        if len(value) - 2 > MAX_CERT_CHAIN_BYTES:
            raise OmsLimitExceeded(
                f"certificate chain of {len(value) - 2} bytes exceeds {MAX_CERT_CHAIN_BYTES}"
            )
        return cls(version, value[1], value[2:])

    def encode(self) -> bytes:
        """The value bytes."""
        return bytes([self.version, self.user_provisioned]) + self.chain_pem


@dataclass(frozen=True)
class ArbitraryDataTlv:
    """Arbitrary data (tag 7), signed with the document. kontur's extension lives here."""

    version: int
    data: bytes
    tag = Tag.ARBITRARY_DATA

    @classmethod
    def from_value(cls, value: bytes) -> ArbitraryDataTlv:
        """Decode; the data must be non-empty."""
        version = _version(Tag.ARBITRARY_DATA, value, (1,))
        if len(value) < 2:
            raise SeiParseError("ARBITRARY_DATA TLV: expected non-empty data")
        return cls(version, value[1:])

    def encode(self) -> bytes:
        """The value bytes."""
        return bytes([self.version]) + self.data


OmsTlv = (
    GeneralTlv
    | HashListTlv
    | SignatureTlv
    | CryptoInfoTlv
    | VendorInfoTlv
    | CertificatesTlv
    | ArbitraryDataTlv
)


def encode_tlv(tlv: OmsTlv) -> bytes:
    """Tag, 2-byte big-endian length and value of one TLV."""
    value = tlv.encode()
    if len(value) > 0xFFFF:
        raise OmsLimitExceeded(f"{tlv.tag.name} TLV value of {len(value)} bytes exceeds 65535")
    return bytes([tlv.tag]) + len(value).to_bytes(2, "big") + value


def _default_header(codec: Codec) -> bytes:
    return b"\x06" if codec is Codec.H264 else b"\x4e\x01"


def _ff_run(value: int) -> bytes:
    return b"\xff" * (value // 255) + bytes([value % 255])


@dataclass(frozen=True)
class SeiDocument:
    """An OMS SEI before its signature: :attr:`signed_bytes` is what gets hashed and signed.

    Built by :func:`build_sei`; :meth:`finish` appends the signature TLV (if
    ``signature_max_size`` was given) and the stop byte.
    """

    codec: Codec
    head: bytes  # NAL header + payload type + payload size
    body: bytes  # UUID + reserved byte + TLVs, without emulation prevention
    epb_before_hashing: bool
    signature_max_size: int | None

    @property
    def signed_bytes(self) -> bytes:
        """The document: NAL bytes up to the signature TLV (escaped iff bit 6 is set)."""
        body = add_emulation_prevention(self.body) if self.epb_before_hashing else self.body
        return self.head + body

    def finish(self, signature: bytes | None, *, escape: bool | None = None) -> bytes:
        """The complete SEI NAL unit (no start code / length prefix).

        ``signature`` is required iff the document was built with a signature size.
        ``escape`` (default: ``epb_before_hashing``) applies emulation prevention to the
        payload, as the reference does with ``sei_epb``.
        """
        body = self.body
        if self.signature_max_size is not None:
            if signature is None or not 0 < len(signature) <= self.signature_max_size:
                raise ValueError(
                    f"expected a signature of 1..{self.signature_max_size} bytes, got "
                    f"{None if signature is None else len(signature)}"
                )
            body += encode_tlv(SignatureTlv(1, signature, self.signature_max_size))
        elif signature is not None:
            raise ValueError("document was built without room for a signature")
        if self.epb_before_hashing if escape is None else escape:
            body = add_emulation_prevention(body)
        return self.head + body + bytes([STOP_BYTE])


def build_sei(
    codec: Codec,
    tlvs: Sequence[OmsTlv],
    *,
    certificate_sei: bool = False,
    epb_before_hashing: bool = False,
    signature_max_size: int | None = None,
    nal_header: bytes | None = None,
) -> SeiDocument:
    """Lay out an OMS SEI with ``tlvs`` in the given order (signature excluded).

    Pass ``signature_max_size`` (e.g. 72 for ECDSA P-256 DER, 256 for RSA-2048) to reserve
    the signature TLV; leave it None for an unsigned SEI (signing frequency > 1).
    """
    if any(isinstance(t, SignatureTlv) for t in tlvs):
        raise ValueError("the signature TLV is added by SeiDocument.finish, not passed in")
    reserved = (0x80 if certificate_sei else 0) | (0x40 if epb_before_hashing else 0)
    body = OMS_UUID + bytes([reserved]) + b"".join(encode_tlv(t) for t in tlvs)
    size = len(body)
    if signature_max_size is not None:
        size += 3 + 3 + signature_max_size
    head = (nal_header or _default_header(codec)) + bytes([USER_DATA_UNREGISTERED]) + _ff_run(size)
    return SeiDocument(codec, head, body, epb_before_hashing, signature_max_size)


def is_oms_sei(nal: bytes | memoryview, codec: Codec) -> bool:
    """Whether ``nal`` is a user-data-unregistered SEI with the OMS UUID (cheap check)."""
    hsize = codec.header_size
    if len(nal) < hsize + 19:
        return False
    info = parse_nal_header(nal, codec)  # long enough: cannot raise
    if info.kind is not NalKind.SEI or nal[hsize] != USER_DATA_UNREGISTERED:
        return False
    pos = hsize + 1
    while pos < len(nal) and nal[pos] == 0xFF:
        pos += 1
    return bytes(nal[pos + 1 : pos + 17]) == OMS_UUID


_DECODERS: dict[Tag, Callable[[bytes], OmsTlv]] = {
    Tag.SIGNATURE: SignatureTlv.from_value,
    Tag.CRYPTO_INFO: CryptoInfoTlv.from_value,
    Tag.VENDOR_INFO: VendorInfoTlv.from_value,
    Tag.CERTIFICATES: CertificatesTlv.from_value,
    Tag.ARBITRARY_DATA: ArbitraryDataTlv.from_value,
}


_TAGS: dict[int, Tag] = {int(t): t for t in Tag}


def _split_tlvs(data: bytes, start: int = 0) -> list[tuple[Tag, int, bytes]]:
    """(tag, offset relative to ``start``, value) of each TLV in ``data[start:]``."""
    out: list[tuple[Tag, int, bytes]] = []
    seen: set[int] = set()
    end = len(data)
    at = start
    while at < end:
        pos = at - start
        if at + 3 > end:
            raise SeiParseError(f"truncated TLV header at offset {pos}")
        raw_tag = data[at]
        tag = _TAGS.get(raw_tag)
        if tag is None:
            raise SeiParseError(f"unknown TLV tag {raw_tag} at offset {pos}")
        if raw_tag in seen:
            raise SeiParseError(f"duplicate TLV tag {raw_tag} at offset {pos}")
        if Tag.SIGNATURE in seen:
            raise SeiParseError(f"TLV tag {raw_tag} after the signature is not signed")
        seen.add(raw_tag)
        length = data[at + 1] << 8 | data[at + 2]
        if at + 3 + length > end:
            raise SeiParseError(
                f"TLV tag {raw_tag} at offset {pos} claims {length} bytes, only {end - at - 3} left"
            )
        out.append((tag, pos, data[at + 3 : at + 3 + length]))
        at += 3 + length
    return out


@dataclass(frozen=True)
class OmsSei:
    """A parsed OMS SEI, with the exact bytes it signs.

    Build only through :meth:`from_nal`. ``nal`` is the unit as received (trailing zero
    bytes removed); :meth:`to_nal` rebuilds it byte for byte.
    """

    codec: Codec
    nal: bytes
    reserved_byte: int
    tlvs: tuple[OmsTlv, ...]
    signed_bytes: bytes
    emulation_prevented: bool
    hash_name: str = "sha256"
    _head_len: int = field(default=0, repr=False)
    _by_tag: dict[Tag, OmsTlv] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Index the TLVs by tag once (each tag occurs at most once)."""
        object.__setattr__(self, "_by_tag", {t.tag: t for t in reversed(self.tlvs)})

    @property
    def certificate_sei(self) -> bool:
        """Reserved bit 7: a certificate ("golden") SEI."""
        return bool(self.reserved_byte & 0x80)

    @property
    def epb_before_hashing(self) -> bool:
        """Reserved bit 6: the document was hashed with emulation prevention bytes."""
        return bool(self.reserved_byte & 0x40)

    @property
    def general(self) -> GeneralTlv | None:
        """The general TLV (absent only in a certificate SEI)."""
        found = self._by_tag.get(Tag.GENERAL)
        return found if isinstance(found, GeneralTlv) else None

    @property
    def hash_list(self) -> HashListTlv | None:
        """The hash list (absent in low-bitrate mode)."""
        found = self._by_tag.get(Tag.HASH_LIST)
        return found if isinstance(found, HashListTlv) else None

    @property
    def signature(self) -> SignatureTlv | None:
        """The signature TLV (absent in the unsigned SEIs of signing frequency > 1)."""
        found = self._by_tag.get(Tag.SIGNATURE)
        return found if isinstance(found, SignatureTlv) else None

    @property
    def crypto_info(self) -> CryptoInfoTlv | None:
        """The crypto information TLV."""
        found = self._by_tag.get(Tag.CRYPTO_INFO)
        return found if isinstance(found, CryptoInfoTlv) else None

    @property
    def vendor_info(self) -> VendorInfoTlv | None:
        """The vendor information TLV."""
        found = self._by_tag.get(Tag.VENDOR_INFO)
        return found if isinstance(found, VendorInfoTlv) else None

    @property
    def certificates(self) -> CertificatesTlv | None:
        """The certificate chain TLV."""
        found = self._by_tag.get(Tag.CERTIFICATES)
        return found if isinstance(found, CertificatesTlv) else None

    @property
    def arbitrary_data(self) -> ArbitraryDataTlv | None:
        """The arbitrary data TLV (kontur's parameter-set claim)."""
        found = self._by_tag.get(Tag.ARBITRARY_DATA)
        return found if isinstance(found, ArbitraryDataTlv) else None

    @property
    def is_signed(self) -> bool:
        """Whether the SEI carries a signature."""
        return self.signature is not None

    @classmethod
    def from_nal(cls, nal: bytes | memoryview, codec: Codec) -> OmsSei:
        """Parse an OMS SEI NAL unit (no start code / length prefix).

        Raises :class:`SeiParseError` (or :class:`UnsupportedOmsVersion`) for anything
        malformed and :class:`OmsLimitExceeded` past :data:`MAX_SEI_BYTES` and the TLV bounds.
        """
        raw = bytes(strip_trailing_zeros(nal))
        if len(raw) > MAX_SEI_BYTES:
            raise OmsLimitExceeded(f"SEI of {len(raw)} bytes exceeds {MAX_SEI_BYTES}")
        head_len, size = _parse_sei_head(raw, codec)
        body, escaped = _payload(raw, head_len, size)
        if not body.startswith(OMS_UUID):
            raise SeiParseError(f"expected the OMS UUID {OMS_UUID.hex()}, got {body[:16].hex()}")
        if len(body) < 17:
            raise SeiParseError("expected a reserved byte after the UUID, got end of payload")
        reserved = body[16]
        if reserved & 0x3F:
            raise SeiParseError(f"expected reserved bits 0-5 to be zero, got 0x{reserved:02x}")
        parts = _split_tlvs(body, 17)
        tlvs, hash_name = _decode_tlvs(parts)
        signed = b""
        if parts and parts[-1][0] is Tag.SIGNATURE:  # the signature is always the last TLV
            end = 17 + parts[-1][1]
            if escaped or reserved & 0x40:
                doc = body[:end]
                escape = add_emulation_prevention(doc) if reserved & 0x40 else doc
                signed = raw[:head_len] + escape
            else:  # received as signed: the document is a prefix of the NAL unit
                signed = raw[: head_len + end]
        if not reserved & 0x80 and not any(tag is Tag.GENERAL for tag, _, _ in parts):
            raise SeiParseError("expected a GENERAL TLV in a non-certificate SEI, found none")
        return cls(codec, raw, reserved, tuple(tlvs), signed, escaped, hash_name, head_len)

    def to_nal(self) -> bytes:
        """Rebuild the NAL unit from the parsed fields (byte-identical to :attr:`nal`)."""
        sig = self.signature
        doc = build_sei(
            self.codec,
            [t for t in self.tlvs if not isinstance(t, SignatureTlv)],
            certificate_sei=self.certificate_sei,
            epb_before_hashing=self.epb_before_hashing,
            signature_max_size=None if sig is None else sig.max_size,
            nal_header=self.nal[: self.codec.header_size],
        )
        return doc.finish(None if sig is None else sig.signature, escape=self.emulation_prevented)


def _parse_sei_head(raw: bytes, codec: Codec) -> tuple[int, int]:
    info = parse_nal_header(raw, codec)
    if info.kind is not NalKind.SEI:
        raise SeiParseError(f"expected an SEI NAL unit, got {info.label} (type {info.nal_type})")
    pos = codec.header_size
    if pos >= len(raw) or raw[pos] != USER_DATA_UNREGISTERED:
        got = raw[pos] if pos < len(raw) else "end of data"
        raise SeiParseError(f"expected SEI payload type 5 (user data unregistered), got {got}")
    pos += 1
    size = 0
    while pos < len(raw) and raw[pos] == 0xFF:
        size += 255
        pos += 1
    if pos >= len(raw):
        raise SeiParseError("truncated SEI payload size")
    return pos + 1, size + raw[pos]


def _payload(raw: bytes, head_len: int, size: int) -> tuple[bytes, bool]:
    if len(raw) - head_len == size + 1 and raw[-1] == STOP_BYTE:
        return raw[head_len:-1], False
    plain = remove_emulation_prevention(raw[head_len:])
    if len(plain) == size + 1 and plain[-1] == STOP_BYTE:
        return plain[:-1], True
    raise SeiParseError(
        f"expected an SEI payload of {size} bytes plus stop byte 0x80, got {len(plain)} bytes"
        + (f" ending 0x{plain[-1]:02x}" if plain else "")
    )


def _decode_tlvs(parts: list[tuple[Tag, int, bytes]]) -> tuple[list[OmsTlv], str]:
    crypto = next((v for tag, _, v in parts if tag is Tag.CRYPTO_INFO), None)
    hash_name, hash_size = "sha256", 32
    info: CryptoInfoTlv | None = None
    if crypto is not None:
        decoded = _decode_repeated(Tag.CRYPTO_INFO, crypto)
        assert isinstance(decoded, CryptoInfoTlv)
        info = decoded
        hash_name, hash_size = info.hash_name, info.hash_size
    tlvs: list[OmsTlv] = []
    for tag, _, value in parts:
        if tag is Tag.GENERAL:
            tlvs.append(GeneralTlv.from_value(value, hash_size))
        elif tag is Tag.HASH_LIST:
            tlvs.append(HashListTlv.from_value(value, hash_size))
        elif tag is Tag.CRYPTO_INFO and info is not None:
            tlvs.append(info)
        elif tag in _REPEATED:
            tlvs.append(_decode_repeated(tag, value))
        else:
            tlvs.append(_DECODERS[tag](value))
    return tlvs, hash_name


#: TLVs a camera repeats byte for byte in every SEI: decoded once per distinct value.
_REPEATED = frozenset({Tag.CRYPTO_INFO, Tag.VENDOR_INFO, Tag.CERTIFICATES})
_REPEATED_CACHE: dict[tuple[Tag, bytes], OmsTlv] = {}


def _decode_repeated(tag: Tag, value: bytes) -> OmsTlv:
    """Decode a repeated TLV, remembering the (immutable) result; errors are not remembered."""
    key = (tag, value)
    found = _REPEATED_CACHE.get(key)
    if found is None:
        found = _DECODERS[tag](value)
        if len(_REPEATED_CACHE) >= 64:
            _REPEATED_CACHE.clear()
        _REPEATED_CACHE[key] = found
    return found
