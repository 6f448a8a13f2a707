"""Building and verifying releases: key mode, certificate mode, real models, key material."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from tests.conftest import shared
from tests.release.conftest import MODEL_BYTES, MODEL_NAME, Builder, Keyring

from kontur.clock import ManualClock
from kontur.release import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    KeyMaterialError,
    ManifestError,
    OutputNotEmpty,
    ReleaseError,
    ReleaseNotFound,
    Thresholds,
    build_release,
    keygen,
    verify_release,
)
from kontur.release.keys import load_public_key, public_key_fingerprint


def test_key_mode_round_trip(build: Builder, keyring: Keyring, clock: ManualClock) -> None:
    rel = build(version=3)
    assert sorted(p.name for p in rel.iterdir()) == [MANIFEST_NAME, SIGNATURE_NAME, MODEL_NAME]
    v = verify_release(rel, public_key=keyring.key.public_key, platform="cpu", clock=clock)
    assert v.model_id == "tiny@3"
    assert v.files == {MODEL_NAME: MODEL_BYTES}
    assert v.manifest.raw == (rel / MANIFEST_NAME).read_bytes()
    assert v.manifest.manifest.files.model == MODEL_NAME
    want = public_key_fingerprint(load_public_key(keyring.key.public_key))
    assert v.signer == f"key {want}"
    assert v.file_digests[MODEL_NAME] == hashlib.sha256(MODEL_BYTES).hexdigest()
    assert v.signature == (rel / SIGNATURE_NAME).read_bytes()


def test_digest_is_the_signed_subject_digest(
    build: Builder, keyring: Keyring, clock: ManualClock
) -> None:
    rel = build()
    v = verify_release(rel, public_key=keyring.key.public_key, clock=clock)
    bundle = json.loads((rel / SIGNATURE_NAME).read_bytes())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert v.digest == "sha256:" + statement["subject"][0]["digest"]["sha256"]
    assert statement["predicate"]["serialization"]["ignore_paths"] == [SIGNATURE_NAME]


def test_certificate_mode_round_trip(build: Builder, keyring: Keyring, clock: ManualClock) -> None:
    rel = build(cert=True)
    assert keyring.ca.ca_cert is not None
    v = verify_release(rel, ca_certs=[keyring.ca.ca_cert], clock=clock)
    assert v.signer.startswith("cert CN=kontur release signer,O=kontur sha256:")
    assert v.files == {MODEL_NAME: MODEL_BYTES}


def test_certificate_mode_accepts_any_of_several_roots(
    build: Builder, keyring: Keyring, clock: ManualClock
) -> None:
    rel = build(cert=True)
    assert keyring.ca.ca_cert is not None and keyring.other_ca.ca_cert is not None
    roots = [keyring.other_ca.ca_cert, keyring.ca.ca_cert]
    assert verify_release(rel, ca_certs=roots, clock=clock).model_id == "tiny@3"


def test_real_onnx_model(tmp_path: Path, keyring: Keyring, clock: ManualClock) -> None:
    onnx = shared("models", "yolox_nano.onnx")
    built = build_release(
        [onnx], "yolox", tmp_path / "rel", name="yolox-nano", version=1,
        key=keyring.key.private_key, clock=clock,
    )  # fmt: skip
    v = verify_release(built.directory, public_key=keyring.key.public_key, clock=clock)
    assert v.files == {"yolox_nano.onnx": onnx.read_bytes()}
    assert v.manifest.manifest.files.runtime == "onnx"
    assert v.digest == built.digest


def test_real_openvino_pair(tmp_path: Path, keyring: Keyring, clock: ManualClock) -> None:
    xml = shared("models", "pedestrian-detection-adas-0002.xml")
    weights = xml.with_suffix(".bin")
    built = build_release(
        [xml, weights], "ssd", tmp_path / "rel", name="pedestrian", version=2,
        key=keyring.key.private_key, thresholds=Thresholds(score=0.6, nms_iou=0.4), clock=clock,
    )  # fmt: skip
    v = verify_release(built.directory, public_key=keyring.key.public_key, clock=clock)
    m = v.manifest.manifest
    assert (m.files.runtime, m.files.model, m.files.weights) == ("openvino", xml.name, weights.name)
    assert m.thresholds.score == 0.6
    assert v.files[weights.name] == weights.read_bytes()


def test_build_refuses_a_non_empty_output(build: Builder, model: Path) -> None:
    rel = build()
    with pytest.raises(OutputNotEmpty, match="expected a new or empty directory"):
        build(out=rel.name)


@pytest.mark.parametrize(
    ("names", "fragment"),
    [
        (["a.onnx", "b.onnx"], "got a.onnx, b.onnx"),
        (["model.xml"], "got model.xml"),
        (["model.pt"], "got model.pt"),
    ],
)
def test_build_refuses_other_model_files(
    tmp_path: Path, keyring: Keyring, clock: ManualClock, names: list[str], fragment: str
) -> None:
    paths = [tmp_path / n for n in names]
    for p in paths:
        p.write_bytes(b"x")
    with pytest.raises(ManifestError, match=fragment):
        build_release(
            paths, "yolox", tmp_path / "out", name="m", version=1,
            key=keyring.key.private_key, clock=clock,
        )  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_build_refuses_a_platform_outside_the_schema(build: Builder) -> None:
    with pytest.raises(ManifestError, match="platforms"):
        build(platforms=("tpu",))


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    pair = keygen(tmp_path / "k")
    assert stat.S_IMODE(pair.private_key.stat().st_mode) == 0o600
    assert b"BEGIN PUBLIC KEY" in pair.public_key.read_bytes()
    with pytest.raises(KeyMaterialError, match="not overwritten"):
        keygen(tmp_path / "k")


def test_ed25519_is_refused_up_front(tmp_path: Path, model: Path, clock: ManualClock) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "ed.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(KeyMaterialError, match="expected an ECDSA P-256 key, got Ed25519"):
        build_release([model], "yolox", tmp_path / "r", name="m", version=1, key=path, clock=clock)


def test_a_certificate_for_another_key_is_refused(
    tmp_path: Path, model: Path, keyring: Keyring, clock: ManualClock
) -> None:
    with pytest.raises(KeyMaterialError, match="expected the public key of"):
        build_release(
            [model], "yolox", tmp_path / "r", name="m", version=1,
            key=keyring.key.private_key, cert=keyring.leaf.cert, clock=clock,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"public_key": Path("/nonexistent/k.pub")}, KeyMaterialError, "expected a readable file"),
        ({}, KeyMaterialError, "expected a public key or CA certificates, got neither"),
        ({"ca_certs": [Path("/nonexistent/ca.pem")]}, KeyMaterialError, "readable file"),
    ],
    ids=["public_key_missing", "no_trust", "ca_missing"],
)
def test_trust_material_problems(
    build: Builder,
    clock: ManualClock,
    kwargs: dict[str, Any],
    error: type[ReleaseError],
    fragment: str,
) -> None:
    rel = build()
    with pytest.raises(error, match=fragment) as info:
        verify_release(rel, clock=clock, **kwargs)
    assert info.value.exit_code == 2


def test_a_missing_release_directory(tmp_path: Path, keyring: Keyring, clock: ManualClock) -> None:
    with pytest.raises(ReleaseNotFound, match="expected a directory, got none"):
        verify_release(tmp_path / "nope", public_key=keyring.key.public_key, clock=clock)
