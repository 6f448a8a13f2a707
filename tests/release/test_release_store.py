"""The release store: write-once install, rollback refusal, idempotency, recheck, load."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from tests.release.conftest import MODEL_BYTES, MODEL_NAME, Builder, Keyring

from kontur.clock import ManualClock
from kontur.release import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    ReleaseExpired,
    ReleaseNotFound,
    ReleaseStore,
    RollbackRefused,
    SignatureInvalid,
    StoreCorrupt,
    Trust,
    VersionConflict,
    build_release,
    default_store_root,
)
from kontur.release.store import INDEX_NAME


@pytest.fixture
def store(tmp_path: Path) -> ReleaseStore:
    return ReleaseStore(tmp_path / "store")


@pytest.fixture
def trust(keyring: Keyring) -> Trust:
    return Trust.key(keyring.key.public_key)


def _flip(path: Path, at: int) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_install_writes_a_read_only_copy(
    build: Builder, store: ReleaseStore, trust: Trust, clock: ManualClock
) -> None:
    v = store.install(build(version=3), trust, clock, expected_names=("tiny",))
    where = store.root / "tiny" / "3"
    assert sorted(p.name for p in where.iterdir()) == [MANIFEST_NAME, SIGNATURE_NAME, MODEL_NAME]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o400 for p in where.iterdir())
    assert stat.S_IMODE(where.stat().st_mode) == 0o500  # no group/other bit (ADR 0021)
    assert (where / MODEL_NAME).read_bytes() == MODEL_BYTES
    assert store.installed("tiny") == (3,)
    assert store.highest("tiny") == 3
    index = json.loads((store.root / INDEX_NAME).read_bytes())
    assert index["releases"]["tiny"]["versions"]["3"]["digest"] == v.digest
    record = store.record("tiny")
    assert (record.version, record.digest, record.signer) == (3, v.digest, v.signer)
    assert set(record.files) == {MANIFEST_NAME, SIGNATURE_NAME, MODEL_NAME}
    assert not [p for p in (store.root / "tiny").iterdir() if p.name.startswith(".")]


def test_load_reverifies_from_disk(
    build: Builder, store: ReleaseStore, trust: Trust, clock: ManualClock
) -> None:
    store.install(build(version=1), trust, clock, expected_names=("tiny",))
    installed = store.install(build(version=2), trust, clock, expected_names=("tiny",))
    loaded = store.load("tiny", trust=trust, clock=clock, platform="cpu")
    assert (loaded.model_id, loaded.digest) == ("tiny@2", installed.digest)
    assert loaded.files == {MODEL_NAME: MODEL_BYTES}
    assert store.load("tiny", 1, trust=trust, clock=clock).model_id == "tiny@1"


def test_reinstalling_the_same_release_is_a_no_op(
    build: Builder, store: ReleaseStore, trust: Trust, clock: ManualClock
) -> None:
    rel = build(version=3)
    first = store.install(rel, trust, clock, expected_names=("tiny",))
    again = store.install(rel, trust, clock, expected_names=("tiny",))
    assert again.digest == first.digest
    assert store.installed("tiny") == (3,)


def test_same_version_with_other_bytes_is_refused(
    build: Builder, store: ReleaseStore, trust: Trust, clock: ManualClock, tmp_path: Path
) -> None:
    first = store.install(build(version=3), trust, clock, expected_names=("tiny",))
    other = tmp_path / "other" / MODEL_NAME
    other.parent.mkdir()
    other.write_bytes(b"a different model")
    with pytest.raises(VersionConflict, match=f"release tiny@3: expected digest {first.digest}"):
        store.install(
            build(version=3, models=[other], out="again"), trust, clock, expected_names=("tiny",)
        )


def test_rollback_is_refused(
    build: Builder, store: ReleaseStore, trust: Trust, clock: ManualClock
) -> None:
    store.install(build(version=2), trust, clock, expected_names=("tiny",))
    with pytest.raises(
        RollbackRefused, match=r"release tiny: expected version >= 2 \(installed\), got 1"
    ):
        store.install(build(version=1), trust, clock, expected_names=("tiny",))
    assert store.installed("tiny") == (2,)


def test_rollback_is_refused_even_without_the_index(
    build: Builder, store: ReleaseStore, trust: Trust, clock: ManualClock
) -> None:
    store.install(build(version=2), trust, clock, expected_names=("tiny",))
    (store.root / INDEX_NAME).unlink()
    with pytest.raises(RollbackRefused, match="expected version >= 2"):
        store.install(build(version=1), trust, clock, expected_names=("tiny",))


def test_an_expired_release_is_not_installed(
    build: Builder, store: ReleaseStore, trust: Trust, clock: ManualClock
) -> None:
    rel = build(version=1)
    clock.advance(timedelta(days=400).total_seconds())
    with pytest.raises(ReleaseExpired, match="release tiny@1: expected a time before expires"):
        store.install(rel, trust, clock, expected_names=("tiny",))
    assert store.installed("tiny") == ()


def test_a_tampered_release_is_not_installed(
    build: Builder, store: ReleaseStore, trust: Trust, clock: ManualClock
) -> None:
    rel = build(version=1)
    (rel / "extra.bin").write_bytes(b"x")
    with pytest.raises(SignatureInvalid, match=r"extra file extra\.bin"):
        store.install(rel, trust, clock, expected_names=("tiny",))
    assert not (store.root / "tiny").exists()


def test_recheck_finds_a_flipped_byte(
    build: Builder, store: ReleaseStore, trust: Trust, clock: ManualClock
) -> None:
    store.install(build(version=1), trust, clock, expected_names=("tiny",))
    store.recheck("tiny", 1)
    _flip(store.root / "tiny" / "1" / MODEL_NAME, 7)
    with pytest.raises(
        SignatureInvalid, match=f"installed release tiny@1: changed file {MODEL_NAME}"
    ):
        store.recheck("tiny", 1)
    with pytest.raises(SignatureInvalid, match=f"changed file {MODEL_NAME}"):
        store.load("tiny", 1, trust=trust, clock=clock)


def test_recheck_finds_an_added_file(
    build: Builder, store: ReleaseStore, trust: Trust, clock: ManualClock
) -> None:
    store.install(build(version=1), trust, clock, expected_names=("tiny",))
    where = store.root / "tiny" / "1"
    where.chmod(0o755)
    (where / "hook.py").write_text("print('hi')")
    with pytest.raises(SignatureInvalid, match="installed release tiny@1: expected files"):
        store.recheck("tiny", 1)


def test_load_refuses_a_validly_signed_swap(
    tmp_path: Path,
    build: Builder,
    store: ReleaseStore,
    trust: Trust,
    keyring: Keyring,
    clock: ManualClock,
) -> None:
    """Another release signed by the same key, dropped in place of an installed one."""
    store.install(build(version=1), trust, clock, expected_names=("tiny",))
    other = tmp_path / "other.onnx"
    other.write_bytes(b"other")
    swap = build_release(
        [other], "yolox", tmp_path / "swap", name="tiny", version=1,
        key=keyring.key.private_key, clock=clock,
    )  # fmt: skip
    where = store.root / "tiny" / "1"
    where.chmod(0o755)
    for p in where.iterdir():
        p.unlink()
    for p in swap.directory.iterdir():
        (where / p.name).write_bytes(p.read_bytes())
    with pytest.raises(SignatureInvalid, match=r"expected digest .* \(recorded at install\)"):
        store.load("tiny", 1, trust=trust, clock=clock)


def test_nothing_installed(store: ReleaseStore, trust: Trust, clock: ManualClock) -> None:
    with pytest.raises(ReleaseNotFound, match="release tiny: expected an installed version"):
        store.load("tiny", trust=trust, clock=clock)
    with pytest.raises(ReleaseNotFound, match="release tiny@4: expected installed"):
        store.recheck("tiny", 4)


def test_a_corrupt_index_is_not_guessed_around(
    build: Builder, store: ReleaseStore, trust: Trust, clock: ManualClock
) -> None:
    store.install(build(version=1), trust, clock, expected_names=("tiny",))
    (store.root / INDEX_NAME).write_text("{not json")
    with pytest.raises(StoreCorrupt, match=f"{INDEX_NAME}: expected a kontur.release-store/1"):
        store.install(build(version=2), trust, clock, expected_names=("tiny",))


def test_certificate_mode_install(
    build: Builder, store: ReleaseStore, keyring: Keyring, clock: ManualClock
) -> None:
    assert keyring.ca.ca_cert is not None
    trust = Trust.ca(keyring.ca.ca_cert)
    v = store.install(build(version=5, cert=True), trust, clock, expected_names=("tiny",))
    assert v.signer.startswith("cert CN=kontur release signer")


def test_default_store_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KONTUR_DATA_DIR", str(tmp_path))
    assert default_store_root() == tmp_path / "releases"
    monkeypatch.delenv("KONTUR_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_root() == tmp_path / "xdg" / "kontur" / "releases"
    assert os.environ.get("KONTUR_DATA_DIR") is None
