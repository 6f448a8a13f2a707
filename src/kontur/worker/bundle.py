"""The verified release, as it travels from the supervisor to the worker on stdin.

The supervisor verifies the release's signature and reads its files once into memory
(:func:`kontur.release.signing.verify_release`). It sends those exact bytes to the worker as
one blob and puts the index — each part's name, size and SHA-256 — in the worker's spec.
The worker (:func:`unpack`) slices the blob by the index and re-checks every digest, so a
byte changed between the supervisor and the model session is caught before any model code
runs. Nothing is read from the release directory after it was verified.

Layout of the blob: the parts in index order, concatenated; the first part is always
``release.json``. The supervisor frames the blob with an 8-byte big-endian length.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from kontur.worker.errors import ModelIntegrityError

__all__ = ["MANIFEST_PART", "BundlePart", "pack", "unpack"]

MANIFEST_PART = "release.json"
#: Bound on the whole blob: no model this perimeter runs comes near it.
MAX_BUNDLE_BYTES = 1 << 30


@dataclass(frozen=True)
class BundlePart:
    name: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> BundlePart:
        return cls(name=str(obj["name"]), size=int(obj["size"]), sha256=str(obj["sha256"]))


def pack(manifest_raw: bytes, files: dict[str, bytes]) -> tuple[bytes, tuple[BundlePart, ...]]:
    """The blob and its index: ``release.json`` first, then the files by name."""
    parts = [(MANIFEST_PART, manifest_raw), *sorted(files.items())]
    index = tuple(BundlePart(n, len(b), hashlib.sha256(b).hexdigest()) for n, b in parts)
    return b"".join(b for _, b in parts), index


def unpack(blob: bytes, index: tuple[BundlePart, ...]) -> tuple[bytes, dict[str, bytes]]:
    """``(release.json bytes, {file name: bytes})``; raises if any part's digest differs."""
    if not index or index[0].name != MANIFEST_PART:
        raise ModelIntegrityError(
            f"release bundle: expected {MANIFEST_PART} as the first part, "
            f"got {index[0].name if index else 'no parts'}"
        )
    total = sum(p.size for p in index)
    if total != len(blob):
        raise ModelIntegrityError(f"release bundle: expected {total} bytes, got {len(blob)}")
    out: dict[str, bytes] = {}
    at = 0
    for part in index:
        data = blob[at : at + part.size]
        at += part.size
        got = hashlib.sha256(data).hexdigest()
        if got != part.sha256:
            raise ModelIntegrityError(
                f"release bundle part {part.name}: expected sha256 {part.sha256}, got {got}"
            )
        out[part.name] = data
    manifest = out.pop(MANIFEST_PART)
    return manifest, out
