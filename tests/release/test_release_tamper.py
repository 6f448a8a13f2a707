"""Attacks on a signed release, one vector each, named after the attack it models.

Each vector changes a freshly signed release directory (or the trust it is checked with)
and names the exact error and a fragment of its one-line message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from tests.release.conftest import MODEL_NAME, Builder, Keyring

from kontur.clock import ManualClock
from kontur.release import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    PlatformNotAllowed,
    ReleaseError,
    ReleaseExpired,
    SignatureInvalid,
    UntrustedSigner,
    verify_release,
)


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_thresholds(d: Path) -> None:
    obj = json.loads((d / MANIFEST_NAME).read_bytes())
    obj["thresholds"]["score"] = 0.01  # every weak detection would now count
    (d / MANIFEST_NAME).write_text(json.dumps(obj, sort_keys=True, indent=2) + "\n")


def _forge_payload(d: Path) -> None:
    """Swap the model and rewrite the signed digests to match, keeping the old signature."""
    (d / MODEL_NAME).write_bytes(b"evil model")
    bundle = json.loads((d / SIGNATURE_NAME).read_bytes())
    env = bundle["dsseEnvelope"]
    statement = json.loads(base64.b64decode(env["payload"]))
    for r in statement["predicate"]["resources"]:
        if r["name"] == MODEL_NAME:
            r["digest"] = hashlib.sha256(b"evil model").hexdigest()
    root = hashlib.sha256()
    for r in sorted(statement["predicate"]["resources"], key=lambda r: r["name"]):
        root.update(bytes.fromhex(r["digest"]))
    statement["subject"][0]["digest"]["sha256"] = root.hexdigest()
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (d / SIGNATURE_NAME).write_text(json.dumps(bundle))


def _symlink_model(d: Path) -> None:
    copy = d.parent / "elsewhere.onnx"
    copy.write_bytes((d / MODEL_NAME).read_bytes())
    (d / MODEL_NAME).unlink()
    os.symlink(copy, d / MODEL_NAME)


def _add(name: str) -> Callable[[Path], None]:
    def add(d: Path) -> None:
        (d / name).write_text("an unsigned extra")

    return add


def _subdir(d: Path) -> None:
    (d / "extra").mkdir()
    (d / "extra" / "payload.py").write_text("import os")


Tamper = Callable[[Path], None]

#: (attack, change to the release directory, expected error, message fragment)
DIRECTORY_VECTORS: list[tuple[str, Tamper, type[ReleaseError], str]] = [
    ("model_byte_flipped", lambda d: _flip(d / MODEL_NAME, 1000), SignatureInvalid,
     f"changed file {MODEL_NAME}"),
    ("manifest_byte_flipped", lambda d: _flip(d / MANIFEST_NAME, 30), SignatureInvalid,
     f"changed file {MANIFEST_NAME}"),
    ("thresholds_edited", _edit_thresholds, SignatureInvalid, f"changed file {MANIFEST_NAME}"),
    ("extra_file", _add("notes.txt"), SignatureInvalid, "extra file notes.txt"),
    ("extra_gitignore", _add(".gitignore"), SignatureInvalid, "extra file .gitignore"),
    ("extra_directory", _subdir, SignatureInvalid, "extra file extra"),
    ("model_missing", lambda d: (d / MODEL_NAME).unlink(), SignatureInvalid,
     f"missing file {MODEL_NAME}"),
    ("manifest_missing", lambda d: (d / MANIFEST_NAME).unlink(), SignatureInvalid,
     f"missing file {MANIFEST_NAME}"),
    ("model_symlinked", _symlink_model, SignatureInvalid, "symlink"),
    ("signature_missing", lambda d: (d / SIGNATURE_NAME).unlink(), SignatureInvalid,
     f"expected {SIGNATURE_NAME}, got none"),
    ("signature_garbage", _add(SIGNATURE_NAME), SignatureInvalid, "expected a Sigstore bundle"),
    ("payload_forged", _forge_payload, SignatureInvalid, "does not verify (forged or altered)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("tamper", "error", "fragment"),
    [v[1:] for v in DIRECTORY_VECTORS],
    ids=[v[0] for v in DIRECTORY_VECTORS],
)
def test_tampered_directory_is_refused(
    build: Builder,
    keyring: Keyring,
    clock: ManualClock,
    tamper: Tamper,
    error: type[ReleaseError],
    fragment: str,
) -> None:
    rel = build()
    tamper(rel)
    with pytest.raises(ReleaseError) as info:
        verify_release(rel, public_key=keyring.key.public_key, clock=clock)
    assert type(info.value) is error
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 1


def test_wrong_key(build: Builder, keyring: Keyring, clock: ManualClock) -> None:
    rel = build()
    with pytest.raises(SignatureInvalid, match="got one by another key"):
        verify_release(rel, public_key=keyring.other.public_key, clock=clock)


def test_untrusted_ca(build: Builder, keyring: Keyring, clock: ManualClock) -> None:
    rel = build(cert=True)
    assert keyring.other_ca.ca_cert is not None
    with pytest.raises(UntrustedSigner, match="expected a certificate chaining to the given CA"):
        verify_release(rel, ca_certs=[keyring.other_ca.ca_cert], clock=clock)


def test_leaf_of_another_ca_with_our_ca_trusted(
    tmp_path: Path, model: Path, keyring: Keyring, clock: ManualClock
) -> None:
    from kontur.release import build_release

    assert keyring.other_leaf.cert is not None and keyring.ca.ca_cert is not None
    built = build_release(
        [model], "yolox", tmp_path / "r", name="tiny", version=1,
        key=keyring.other_leaf.private_key, cert=keyring.other_leaf.cert, clock=clock,
    )  # fmt: skip
    with pytest.raises(UntrustedSigner, match="chaining to the given CA"):
        verify_release(built.directory, ca_certs=[keyring.ca.ca_cert], clock=clock)


def test_key_mode_signature_checked_as_certificate_mode(
    build: Builder, keyring: Keyring, clock: ManualClock
) -> None:
    rel = build()
    assert keyring.ca.ca_cert is not None
    with pytest.raises(SignatureInvalid, match="expected a certificate-mode signature, got key"):
        verify_release(rel, ca_certs=[keyring.ca.ca_cert], clock=clock)


def test_certificate_mode_signature_checked_with_a_key(
    build: Builder, keyring: Keyring, clock: ManualClock
) -> None:
    rel = build(cert=True)
    with pytest.raises(SignatureInvalid, match="expected a key-mode signature, got certificate"):
        verify_release(rel, public_key=keyring.leaf.public_key, clock=clock)


def test_expired(build: Builder, keyring: Keyring, clock: ManualClock) -> None:
    rel = build()
    clock.advance(timedelta(days=365).total_seconds())
    with pytest.raises(ReleaseExpired, match=r"release tiny@3: expected a time before expires"):
        verify_release(rel, public_key=keyring.key.public_key, clock=clock)


def test_signed_for_another_platform(build: Builder, keyring: Keyring, clock: ManualClock) -> None:
    rel = build(platforms=("gpu",))
    verify_release(rel, public_key=keyring.key.public_key, platform="gpu", clock=clock)
    with pytest.raises(
        PlatformNotAllowed, match="release tiny@3: expected platform cpu among the signed"
    ):
        verify_release(rel, public_key=keyring.key.public_key, platform="cpu", clock=clock)


def test_the_bytes_handed_on_are_the_bytes_verified(
    build: Builder, keyring: Keyring, clock: ManualClock
) -> None:
    """Changing the file after verification does not change what the caller holds."""
    rel = build()
    v = verify_release(rel, public_key=keyring.key.public_key, clock=clock)
    _flip(rel / MODEL_NAME, 0)
    assert hashlib.sha256(v.files[MODEL_NAME]).hexdigest() == v.file_digests[MODEL_NAME]
