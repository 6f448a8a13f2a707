"""The release bundle the supervisor hands the worker: every part re-checked by digest."""

from __future__ import annotations

import pytest

from kontur.worker.bundle import MANIFEST_PART, BundlePart, pack, unpack
from kontur.worker.errors import ModelIntegrityError

MANIFEST = b'{"name": "m"}\n'
FILES = {"b.bin": b"\x00weights" * 100, "a.xml": b"<net/>"}


def test_round_trip_keeps_every_byte() -> None:
    blob, index = pack(MANIFEST, FILES)
    assert [p.name for p in index] == [MANIFEST_PART, "a.xml", "b.bin"]
    manifest, files = unpack(blob, index)
    assert manifest == MANIFEST
    assert files == FILES


def test_index_survives_json() -> None:
    _, index = pack(MANIFEST, FILES)
    assert tuple(BundlePart.from_json(p.to_json()) for p in index) == index


def test_flipped_byte_names_the_part() -> None:
    blob, index = pack(MANIFEST, FILES)
    bad = bytearray(blob)
    bad[len(MANIFEST) + 2] ^= 1  # inside a.xml
    with pytest.raises(ModelIntegrityError, match=r"part a\.xml: expected sha256 "):
        unpack(bytes(bad), index)


def test_flipped_byte_in_manifest_is_caught() -> None:
    blob, index = pack(MANIFEST, FILES)
    bad = bytearray(blob)
    bad[3] ^= 1
    with pytest.raises(ModelIntegrityError, match=r"part release\.json"):
        unpack(bytes(bad), index)


def test_truncated_blob_is_refused() -> None:
    blob, index = pack(MANIFEST, FILES)
    total = len(blob)
    with pytest.raises(ModelIntegrityError, match=rf"expected {total} bytes, got {total - 1}"):
        unpack(blob[:-1], index)


def test_index_without_manifest_first_is_refused() -> None:
    blob, index = pack(MANIFEST, FILES)
    with pytest.raises(ModelIntegrityError, match=r"expected release\.json as the first part"):
        unpack(blob, index[1:] + index[:1])
