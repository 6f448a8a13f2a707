"""Named bounds on every size the OMS code accepts from a (possibly hostile) stream.

Exceeding one raises :class:`~kontur.ingest.oms.errors.OmsLimitExceeded` (parsers) or
turns the affected GOP NOT_AUTHENTIC (validator).
"""

from __future__ import annotations

__all__ = [
    "MAX_ACCESS_UNIT_BYTES",
    "MAX_CERTIFICATES",
    "MAX_CERT_CHAIN_BYTES",
    "MAX_HASH_LIST_BYTES",
    "MAX_HASH_LIST_ENTRIES",
    "MAX_NALS_PER_ACCESS_UNIT",
    "MAX_NALS_PER_GOP",
    "MAX_NAL_BYTES",
    "MAX_PARAMETER_SETS",
    "MAX_PENDING_GOPS",
    "MAX_SEI_BYTES",
]

#: Largest NAL unit accepted (bytes); a 4K intra frame stays well below.
MAX_NAL_BYTES = 64 * 1024 * 1024
#: Largest access unit (packet) accepted (bytes).
MAX_ACCESS_UNIT_BYTES = 128 * 1024 * 1024
#: Most NAL units in one access unit.
MAX_NALS_PER_ACCESS_UNIT = 1024
#: Largest OMS SEI NAL unit (bytes). TLV lengths are 16-bit; a full SEI with a chain is ~2 KiB.
MAX_SEI_BYTES = 256 * 1024
#: Largest hash-list TLV body (bytes): the reference's list buffer, 300 hashes of up to 64
#: bytes (``oms_defines.h`` HASH_LIST_SIZE), so 600 SHA-256 or 300 SHA-512 entries.
MAX_HASH_LIST_BYTES = 300 * 64
#: Most SHA-256 hashes in one hash-list TLV (kontur signs with SHA-256).
MAX_HASH_LIST_ENTRIES = MAX_HASH_LIST_BYTES // 32
#: Largest certificate chain (PEM bytes) in a certificates TLV.
MAX_CERT_CHAIN_BYTES = 32 * 1024
#: Most certificates in a chain.
MAX_CERTIFICATES = 8
#: Most hashable NAL units buffered for one GOP before its SEI arrives.
MAX_NALS_PER_GOP = 4096
#: Most GOPs held waiting for their SEI.
MAX_PENDING_GOPS = 8
#: Most distinct parameter-set NAL units tracked.
MAX_PARAMETER_SETS = 64
