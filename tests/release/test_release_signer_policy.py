"""Issue 9, item 1: who may sign a release in certificate mode, when, and under which name.

Every certificate here is real (made with ``cryptography``), every release is really signed
with model-signing and verified end to end. Each vector is named after the attack it models
and asserts the exact error and a fragment of its one-line message (ADR 0016).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tests.release.conftest import Keyring
from typer.testing import CliRunner

from kontur.clock import ManualClock
from kontur.config import load_config
from kontur.errors import ConfigError
from kontur.release import (
    KONTUR_RELEASE_SIGNING_EKU,
    KeyMaterialError,
    ReleaseNameMismatch,
    ReleaseStore,
    SignerNotAllowed,
    SignerNotValid,
    SignerPolicy,
    Trust,
    UntrustedSigner,
    VerifiedRelease,
    build_release,
    verify_release,
)
from kontur.release.cli import model_app
from kontur.runtime.models import prepare_release

DAY = dt.timedelta(days=1)
NOW = dt.datetime.fromtimestamp(time.time(), dt.UTC).replace(microsecond=0)
CODE = ExtendedKeyUsageOID.CODE_SIGNING
SERVER = ExtendedKeyUsageOID.SERVER_AUTH


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _usage(*, sign: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _pem_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    fmt = serialization.PrivateFormat.PKCS8
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    )
    return path


@dataclass(frozen=True)
class Ca:
    """A private release CA: its key, certificate and the PEM file verifiers trust."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    pem: Path


def make_ca(tmp: Path, start: dt.datetime, end: dt.datetime) -> Ca:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("test release CA")
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(sign=False, cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Ca(key, cert, tmp / "ca.pem")


@dataclass(frozen=True)
class Leaf:
    key: Path
    cert: Path


def make_leaf(
    tmp: Path,
    ca: Ca,
    *,
    eku: Sequence[x509.ObjectIdentifier] | None = (CODE,),
    start: dt.datetime = NOW - 30 * DAY,
    end: dt.datetime = NOW + 300 * DAY,
    is_ca: bool = False,
    cn: str = "test signer",
) -> Leaf:
    """A P-256 leaf issued by ``ca`` with the given EKU (None: no EKU extension at all)."""
    key = ec.generate_private_key(ec.SECP256R1())
    b = (
        x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(_usage(sign=True, cert_sign=is_ca), critical=True)
    )  # fmt: skip
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    cert = b.sign(ca.key, hashes.SHA256())
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "leaf.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Leaf(_pem_key(tmp / "leaf.key", key), tmp / "leaf.pem")


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Ca:
    return make_ca(tmp_path_factory.mktemp("ca"), NOW - 1000 * DAY, NOW + 1000 * DAY)


Sign = Callable[..., Path]


@pytest.fixture
def sign(tmp_path: Path, model: Path) -> Sign:
    """``sign(leaf, name=..., at=datetime)`` -> a release directory signed by ``leaf`` at ``at``."""
    count = iter(range(1000))

    def make(leaf: Leaf, *, name: str = "tiny", at: dt.datetime = NOW) -> Path:
        built = build_release(
            [model], "yolox", tmp_path / f"rel-{next(count)}", name=name, version=1,
            key=leaf.key, cert=leaf.cert, clock=ManualClock(wall=at.timestamp()),
        )  # fmt: skip
        return built.directory

    return make


def _verify(rel: Path, ca: Ca, *, at: dt.datetime = NOW, **kw: Any) -> VerifiedRelease:
    return verify_release(rel, ca_certs=[ca.pem], clock=ManualClock(wall=at.timestamp()), **kw)


# --- purpose: which certificates may sign releases ------------------------------------------


@pytest.mark.parametrize(
    ("eku", "fragment"),
    [
        ([SERVER], "expected ExtendedKeyUsage codeSigning, kontur-release-signing, got serverAuth"),
        (None, "got no ExtendedKeyUsage"),
        ([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE], "got anyExtendedKeyUsage"),
        ([SERVER, ExtendedKeyUsageOID.CLIENT_AUTH], "got clientAuth, serverAuth"),
    ],
    ids=["tls_server_cert_signs_release", "no_eku", "any_eku", "tls_client_and_server"],
)
def test_a_certificate_not_for_code_signing_cannot_sign_a_release(
    tmp_path: Path, ca: Ca, sign: Sign, eku: list[x509.ObjectIdentifier] | None, fragment: str
) -> None:
    rel = sign(make_leaf(tmp_path / "leaf", ca, eku=eku), name="totally-other-model")
    with pytest.raises(SignerNotAllowed, match=fragment) as info:
        _verify(rel, ca)
    assert isinstance(info.value, UntrustedSigner)
    assert str(info.value).startswith("signing certificate CN=test signer: ")


def test_a_ca_certificate_cannot_sign_a_release(tmp_path: Path, ca: Ca, sign: Sign) -> None:
    rel = sign(make_leaf(tmp_path / "leaf", ca, is_ca=True))
    with pytest.raises(SignerNotAllowed, match="expected an end-entity certificate, got a CA"):
        _verify(rel, ca)


@pytest.mark.parametrize(
    "eku",
    [[CODE], [KONTUR_RELEASE_SIGNING_EKU], [SERVER, CODE]],
    ids=["code_signing", "kontur_eku", "code_signing_among_others"],
)
def test_a_code_signing_or_kontur_certificate_signs(
    tmp_path: Path, ca: Ca, sign: Sign, eku: list[x509.ObjectIdentifier]
) -> None:
    v = _verify(sign(make_leaf(tmp_path / "leaf", ca, eku=eku)), ca, expected_names=("tiny",))
    assert v.model_id == "tiny@1" and v.signer.startswith("cert CN=test signer sha256:")


def test_kontur_only_policy_refuses_a_generic_code_signing_certificate(
    tmp_path: Path, ca: Ca, sign: Sign
) -> None:
    strict = SignerPolicy.kontur_only()
    generic = sign(make_leaf(tmp_path / "generic", ca, eku=[CODE]))
    with pytest.raises(SignerNotAllowed, match="expected ExtendedKeyUsage kontur-release-signing"):
        _verify(generic, ca, signer_policy=strict)
    ours = sign(make_leaf(tmp_path / "ours", ca, eku=[KONTUR_RELEASE_SIGNING_EKU]))
    assert _verify(ours, ca, signer_policy=strict).model_id == "tiny@1"


def test_an_empty_signer_policy_is_refused() -> None:
    with pytest.raises(KeyMaterialError, match="expected at least one EKU purpose, got none"):
        SignerPolicy(purposes=frozenset())


# --- time: valid at the signing time and now ------------------------------------------------


def test_an_expired_leaf_is_refused_even_for_a_release_signed_while_valid(
    tmp_path: Path, ca: Ca, sign: Sign
) -> None:
    """The review finding: model-signing checks the chain at the leaf's notBefore only."""
    leaf = make_leaf(tmp_path / "leaf", ca, start=NOW - 400 * DAY, end=NOW - 30 * DAY)
    rel = sign(leaf, at=NOW - 60 * DAY)
    assert _verify(rel, ca, at=NOW - 50 * DAY).model_id == "tiny@1"  # while it was valid
    with pytest.raises(SignerNotValid, match=r"expected valid now .*, got valid .* to "):
        _verify(rel, ca)


def test_a_release_signed_before_the_leaf_was_valid_is_refused(
    tmp_path: Path, ca: Ca, sign: Sign
) -> None:
    rel = sign(make_leaf(tmp_path / "leaf", ca, start=NOW - 10 * DAY), at=NOW - 20 * DAY)
    with pytest.raises(SignerNotValid, match="expected valid at the signing time"):
        _verify(rel, ca)


def test_a_signing_time_in_the_future_is_refused(tmp_path: Path, ca: Ca, sign: Sign) -> None:
    rel = sign(make_leaf(tmp_path / "leaf", ca), at=NOW + DAY)
    with pytest.raises(SignerNotValid, match=r"expected a signing time no later than .* future"):
        _verify(rel, ca)


def test_a_leaf_outliving_its_expired_ca_is_refused(tmp_path: Path, sign: Sign) -> None:
    old_ca = make_ca(tmp_path / "old-ca", NOW - 400 * DAY, NOW - DAY)
    leaf = make_leaf(tmp_path / "leaf", old_ca, start=NOW - 300 * DAY, end=NOW + 300 * DAY)
    rel = sign(leaf, at=NOW - 100 * DAY)
    assert _verify(rel, old_ca, at=NOW - 90 * DAY).model_id == "tiny@1"
    with pytest.raises(UntrustedSigner, match="expected a chain to a given CA valid at") as info:
        _verify(rel, old_ca)
    assert type(info.value) is UntrustedSigner


# --- name: a valid signature over another model is not one over this model ------------------


def test_a_valid_release_under_another_name_is_refused(
    tmp_path: Path, ca: Ca, sign: Sign, keyring: Keyring
) -> None:
    rel = sign(make_leaf(tmp_path / "leaf", ca), name="totally-other-model")
    with pytest.raises(
        ReleaseNameMismatch, match="expected release name yolox-nano, got totally-other-model"
    ):
        _verify(rel, ca, expected_names=("yolox-nano",))
    with pytest.raises(ReleaseNameMismatch, match="expected release name one of a, b, got"):
        _verify(rel, ca, expected_names=("a", "b"))
    with pytest.raises(ReleaseNameMismatch, match=r"expected release name one of \(none\)"):
        _verify(rel, ca, expected_names=())
    with pytest.raises(TypeError, match="expected a tuple of names, got str"):
        _verify(rel, ca, expected_names="totally-other-model")


def test_the_store_installs_only_the_expected_name(tmp_path: Path, ca: Ca, sign: Sign) -> None:
    store = ReleaseStore(tmp_path / "store")
    rel = sign(make_leaf(tmp_path / "leaf", ca), name="totally-other-model")
    clock = ManualClock(wall=NOW.timestamp())
    with pytest.raises(ReleaseNameMismatch, match="expected release name tiny"):
        store.install(rel, Trust.ca(ca.pem), clock, expected_names=("tiny",))
    assert store.installed("totally-other-model") == ()
    store.install(rel, Trust.ca(ca.pem), clock, expected_names=("totally-other-model",))
    assert store.load("totally-other-model", trust=Trust.ca(ca.pem), clock=clock).model_id == (
        "totally-other-model@1"
    )


# --- the runtime: the site config names the releases it runs --------------------------------


def test_the_perimeter_runs_only_a_release_the_config_names(
    tmp_path: Path, ca: Ca, sign: Sign
) -> None:
    rel = sign(make_leaf(tmp_path / "leaf", ca), name="totally-other-model")
    clock = ManualClock(wall=NOW.timestamp())
    common: dict[str, Any] = {"release_dir": rel, "trust": Trust.ca(ca.pem), "clock": clock}
    with pytest.raises(ConfigError, match=r"expected the config to name .*release.names.*none"):
        prepare_release(data_dir=tmp_path / "d0", **common)
    with pytest.raises(ReleaseNameMismatch, match="expected release name tiny, got totally-other"):
        prepare_release(data_dir=tmp_path / "d1", release_names=("tiny",), **common)
    assert not (tmp_path / "d1" / "releases" / "totally-other-model").exists()
    ok = prepare_release(
        data_dir=tmp_path / "d2", release_names=("tiny", "totally-other-model"), **common
    )
    assert ok.model_id == "totally-other-model@1" and not ok.throwaway


def test_config_release_names(tmp_path: Path) -> None:
    assert load_config().release.names == ()
    base = (
        "site: s\ncameras: [{id: c}]\nactions: {notify: {critical: false}}\n"
        "placement: {sla: {latency_ms_max: 250, throughput_fps_min: 5, accuracy_min: 0.8}}\n"
    )
    good, bad, unknown = tmp_path / "g.yaml", tmp_path / "b.yaml", tmp_path / "u.yaml"
    good.write_text(base + "release: {names: [yolox-nano, yolov8n]}\n")
    bad.write_text(base + "release: {names: ['../evil']}\n")
    unknown.write_text(base + "release: {names: [a], accept_any: true}\n")
    assert load_config(good).release.names == ("yolox-nano", "yolov8n")
    with pytest.raises(ConfigError, match=r"key release: .*expected release names like"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"key release\.accept_any: "):
        load_config(unknown)


# --- the command line -----------------------------------------------------------------------


def _kontur(*args: str | Path) -> tuple[int, str, str]:
    app = typer.Typer()
    app.add_typer(model_app, name="model")
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def _error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kontur: error: "), stderr
    return lines[0]


def test_cli_refuses_a_tls_certificate_signing_another_model(
    tmp_path: Path, ca: Ca, sign: Sign
) -> None:
    """The review's reproduction: a serverAuth leaf of the CA signs "totally-other-model"."""
    rel = sign(make_leaf(tmp_path / "leaf", ca, eku=[SERVER]), name="totally-other-model")
    code, out, err = _kontur(
        "model", "verify", rel, "--ca", ca.pem, "--name", "totally-other-model"
    )
    assert code == 1 and out == ""
    assert "expected ExtendedKeyUsage codeSigning, kontur-release-signing, got serverAuth" in (
        _error_line(err)
    )


def test_cli_verify_and_install_bind_the_name(tmp_path: Path, model: Path) -> None:
    pki = tmp_path / "pki"
    assert _kontur("model", "keygen", "--out", pki, "--ca")[0] == 0
    leaf = x509.load_pem_x509_certificate((pki / "release-signing.pem").read_bytes())
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert CODE in eku and KONTUR_RELEASE_SIGNING_EKU in eku  # keygen --ca: the happy path
    code, _, err = _kontur(
        "model", "release", model, "--format", "yolox", "--name", "yolox-nano", "--version", "1",
        "--key", pki / "release-signing.key", "--cert", pki / "release-signing.pem",
        "--out", tmp_path / "rel",
    )  # fmt: skip
    assert code == 0, err
    ca_opts = ("--ca", pki / "ca.pem")
    code, out, _ = _kontur("model", "verify", tmp_path / "rel", *ca_opts, "--name", "yolox-nano")
    assert code == 0 and out.startswith("valid: yolox-nano@1 ")
    code, _, err = _kontur("model", "verify", tmp_path / "rel", *ca_opts, "--name", "yolov8n")
    assert code == 1
    assert "expected release name yolov8n, got yolox-nano" in _error_line(err)
    code, _, err = _kontur("model", "verify", tmp_path / "rel", *ca_opts)
    assert code == 2 and "--name: expected the release name to accept" in _error_line(err)
    store = ("--store", tmp_path / "store")
    code, _, err = _kontur("model", "install", tmp_path / "rel", *ca_opts, *store, "--name", "x")
    assert code == 1 and "expected release name x, got yolox-nano" in _error_line(err)
    assert not (tmp_path / "store" / "yolox-nano").exists()
    code, out, err = _kontur(
        "model", "install", tmp_path / "rel", *ca_opts, *store, "--name", "yolox-nano"
    )
    assert code == 0 and out.startswith("installed: yolox-nano@1"), err
