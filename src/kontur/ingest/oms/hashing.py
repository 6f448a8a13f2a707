"""The OMS NAL hashing scheme (as ``oms_common.c`` of the reference) and kontur's extension.

Per GOP, every *hashable* NAL unit contributes one entry to the hash list, in decode order:

* an OMS SEI without signature (signing frequency > 1): ``H(sei)``;
* the first primary IDR/IRAP slice of the GOP (the *anchor*): ``H(nal)``;
* every other slice: ``H(anchor || H(nal))``.

Signed OMS SEIs are not hashed by the signer (they travel in the next GOP). NAL units are
hashed up to the byte holding the stop bit (trailing ``0x00`` removed). The GOP hash is
``H(hash list)`` (all zeros when the list is empty); the *linked hash* of the SEI signing
GOP k is the anchor of GOP k-1 (zeros for the first signed GOP). Parameter sets, AUDs,
other SEIs and H.265 TSA/STSA/RADL/RASL are not hashed by the reference.

kontur extension -- parameter-set coverage. The reference leaves SPS/PPS/VPS unsigned, so
a changed parameter set still validates. kontur's signer puts a *parameter-set claim* in
the ARBITRARY_DATA TLV (tag 7), which the reference already writes between the hash list
and the signature, signs as part of the document and ignores on validation, so reference
validators still validate the stream. The claim is ``PS_CLAIM_MAGIC || digest`` where
``digest = SHA-256( concat over sorted distinct parameter-set NALs p of u32be(len p) || p )``
(optionally followed by :data:`END_OF_STREAM_MARKER` in the signer's final SEI)
over the parameter sets *in effect for the GOP*: the container's (avcC/hvcC) parameter sets
plus every parameter-set NAL unit carried in-band in the GOP's access units (trailing zero
bytes removed, emulation prevention left as is). Parameter sets are SPS and PPS (H.264),
VPS, SPS and PPS (H.265) by their NAL header (:attr:`~kontur.ingest.oms.nal.NalInfo.
is_core_parameter_set`), in every container: the SEI arrays an hvcC may hold (libx265's
settings SEI) are left out, since a raw Annex-B copy of the same stream carries them as
in-band SEIs or not at all, and the claim must not depend on the container.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from kontur.ingest.oms.nal import NalInfo, strip_trailing_zeros

__all__ = [
    "END_OF_STREAM_MARKER",
    "PS_CLAIM_MAGIC",
    "GopHasher",
    "claims_end_of_stream",
    "decode_parameter_set_claim",
    "encode_parameter_set_claim",
    "gop_hash",
    "hash_bytes",
    "parameter_set_digest",
]

#: Prefix of kontur's parameter-set claim inside the ARBITRARY_DATA TLV.
PS_CLAIM_MAGIC = b"kontur/ps/v1\x00"
#: Appended to the claim of the final SEI: the signer stopped the stream cleanly (signed).
END_OF_STREAM_MARKER = b"kontur/eos/v1\x00"


def hash_bytes(data: bytes | memoryview, hash_name: str = "sha256") -> bytes:
    """Digest of ``data`` with the named hashlib algorithm."""
    new = _CONSTRUCTORS.get(hash_name)
    if new is not None:
        return new(data).digest()
    return hashlib.new(hash_name, data).digest()


_CONSTRUCTORS = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def gop_hash(hashes: Iterable[bytes], hash_name: str = "sha256", size: int = 32) -> bytes:
    """``H(concatenated hash list)``; ``size`` zero bytes for an empty list (reference)."""
    joined = b"".join(hashes)
    if not joined:
        return bytes(size)
    return hash_bytes(joined, hash_name)


class GopHasher:
    """Hash-list entries of the NAL units of one stream, GOP by GOP, as the reference.

    Call :meth:`start_gop` at each GOP boundary (before hashing its first slice), then
    :meth:`entry` for each hashable NAL unit. The anchor persists across GOPs until the
    next GOP's first primary IRAP slice replaces it.
    """

    def __init__(self, hash_name: str = "sha256") -> None:
        """A hasher for the named algorithm; the initial anchor is all zeros."""
        self.hash_name = hash_name
        self._new = getattr(hashlib, hash_name)
        self.size = hashlib.new(hash_name).digest_size
        self.anchor = bytes(self.size)
        self.previous_anchor = bytes(self.size)
        self._has_anchor = False

    def start_gop(self) -> None:
        """A new GOP begins: its first primary IRAP slice becomes the next anchor."""
        self._has_anchor = False

    def entry(self, nal: bytes | memoryview, info: NalInfo, oms_sei: bool = False) -> bytes:
        """The hash-list entry of a hashable NAL unit (updating the anchor if it is one)."""
        digest: bytes = self._new(strip_trailing_zeros(nal)).digest()
        if oms_sei:
            return digest
        if info.starts_gop and not self._has_anchor:
            self.previous_anchor = self.anchor
            self.anchor = digest
            self._has_anchor = True
            return digest
        linked: bytes = self._new(self.anchor + digest).digest()
        return linked


def parameter_set_digest(nals: Iterable[bytes | memoryview]) -> bytes:
    """SHA-256 over the sorted distinct parameter sets, each prefixed by its u32be length."""
    distinct = sorted({bytes(strip_trailing_zeros(n)) for n in nals})
    h = hashlib.sha256()
    for nal in distinct:
        h.update(len(nal).to_bytes(4, "big"))
        h.update(nal)
    return h.digest()


def encode_parameter_set_claim(digest: bytes) -> bytes:
    """ARBITRARY_DATA payload carrying kontur's parameter-set claim."""
    if len(digest) != 32:
        raise ValueError(f"expected a 32-byte SHA-256 digest, got {len(digest)} bytes")
    return PS_CLAIM_MAGIC + digest


def decode_parameter_set_claim(data: bytes) -> bytes | None:
    """The digest of a kontur parameter-set claim, or None if ``data`` is not one.

    The claim may be followed by :data:`END_OF_STREAM_MARKER` (see :func:`claims_end_of_stream`).
    """
    size = len(PS_CLAIM_MAGIC) + 32
    if not data.startswith(PS_CLAIM_MAGIC) or data[size:] not in (b"", END_OF_STREAM_MARKER):
        return None
    digest = data[len(PS_CLAIM_MAGIC) : size]
    return digest if len(digest) == 32 else None


def claims_end_of_stream(data: bytes) -> bool:
    """Whether a kontur claim carries the signed end-of-stream marker."""
    return decode_parameter_set_claim(data) is not None and data.endswith(END_OF_STREAM_MARKER)
