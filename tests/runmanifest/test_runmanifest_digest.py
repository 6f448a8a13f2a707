"""Issue 15 §3: the manifest's canonical JSON digest, and parsing a stored one strictly."""

from __future__ import annotations

import hashlib
import json

import pytest
from tests.runmanifest.conftest import manifest

from kontur.archive import canonical_json
from kontur.runmanifest import ManifestInvalid, RunManifest


def test_digest_is_sha256_of_the_archives_canonical_json(base: RunManifest) -> None:
    body = base.to_json()
    assert base.canonical() == canonical_json(body)
    assert base.digest() == hashlib.sha256(canonical_json(body)).hexdigest()


def test_same_host_same_digest_and_one_fact_moves_it(base: RunManifest) -> None:
    assert manifest().digest() == base.digest()
    assert manifest(config_sha256="ef" * 32).digest() != base.digest()


def test_a_stored_manifest_round_trips(base: RunManifest) -> None:
    payload = json.loads(json.dumps({"sha256": base.digest(), "manifest": base.to_json()}))
    assert RunManifest.from_payload(payload) == base


def test_manifest_edited_after_hashing_is_refused(base: RunManifest) -> None:
    body = base.to_json()
    body["inference"]["onnxruntime"] = {"onnxruntime": "1.31.0"}
    with pytest.raises(ManifestInvalid) as exc:
        RunManifest.from_payload({"sha256": base.digest(), "manifest": body})
    assert f"expected sha256 '{base.digest()}' to match its content, got " in str(exc.value)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda b: b.pop("kontur"), "run manifest kontur: Field required"),
        (lambda b: b.update(format=2), "run manifest format: Input should be 1"),
        (lambda b: b.update(extra="x"), "run manifest extra: Extra inputs are not permitted"),
        (lambda b: b.update(config_sha256="short"), "run manifest config_sha256: String should"),
        (lambda b: b["release"].update(digest="md5:00"), "run manifest release.digest: String"),
    ],
)
def test_malformed_manifest_names_the_field(base: RunManifest, edit: object, fragment: str) -> None:
    body = base.to_json()
    edit(body)  # type: ignore[operator]
    with pytest.raises(ManifestInvalid) as exc:
        RunManifest.from_json(json.dumps(body))
    assert str(exc.value).startswith(fragment)
    assert "\n" not in str(exc.value)


def test_payload_without_a_manifest_object_is_refused() -> None:
    with pytest.raises(ManifestInvalid, match="run manifest: expected an object, got list"):
        RunManifest.from_payload({"sha256": "00", "manifest": []})
