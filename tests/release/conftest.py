"""Fixtures for the release tests: key material made once, a manual clock, small releases."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kontur.clock import ManualClock
from kontur.release import KeyPair, build_release, issue_signing_cert, keygen, make_ca

#: A stand-in model: the release layer never parses model bytes, it only signs them.
MODEL_NAME = "tiny.onnx"
MODEL_BYTES = bytes(range(256)) * 64


@dataclass(frozen=True)
class Keyring:
    """Key mode: ``key`` and an unrelated ``other``; certificate mode: two private CAs."""

    key: KeyPair
    other: KeyPair
    ca: KeyPair
    leaf: KeyPair
    other_ca: KeyPair
    other_leaf: KeyPair


@pytest.fixture(scope="session")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> Keyring:
    root = tmp_path_factory.mktemp("keys")
    ca = make_ca(root / "ca")
    other_ca = make_ca(root / "other-ca", common_name="someone else's CA")
    return Keyring(
        key=keygen(root / "key"),
        other=keygen(root / "other"),
        ca=ca,
        leaf=issue_signing_cert(ca, root / "leaf"),
        other_ca=other_ca,
        other_leaf=issue_signing_cert(other_ca, root / "other-leaf"),
    )


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock starting at the real now: the certificate-mode key material is issued
    against the real clock, and a signing certificate must be valid at the signing time and
    at the reference time (ADR 0016)."""
    return ManualClock(wall=time.time())


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "src" / MODEL_NAME
    path.parent.mkdir()
    path.write_bytes(MODEL_BYTES)
    return path


Builder = Callable[..., Path]


@pytest.fixture
def build(tmp_path: Path, model: Path, keyring: Keyring, clock: ManualClock) -> Builder:
    """``build(version=3, cert=False, platforms=..., models=..., out=...)`` -> release dir."""

    def make(
        version: int = 3,
        *,
        cert: bool = False,
        platforms: tuple[str, ...] = ("cpu", "gpu"),
        models: list[Path] | None = None,
        out: str | None = None,
        name: str = "tiny",
        output_format: str = "yolox",
    ) -> Path:
        signer = keyring.leaf if cert else keyring.key
        built = build_release(
            models or [model],
            output_format,
            tmp_path / (out or f"{name}-v{version}{'-cert' if cert else ''}"),
            name=name,
            version=version,
            key=signer.private_key,
            cert=signer.cert if cert else None,
            platforms=platforms,
            clock=clock,
        )
        return built.directory

    return make
