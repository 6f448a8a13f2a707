"""Build and verify signed model releases with OpenSSF model signing (ECDSA P-256).

Layout of a release directory (ADR 0009)::

    DIR/
      release.json        the manifest (:mod:`kontur.release.manifest`)
      yolox_nano.onnx     the model: one ``.onnx``, or an OpenVINO ``.xml`` and ``.bin``
      release.sig         Sigstore bundle: a DSSE envelope over an in-toto statement

The signature covers every entry of ``DIR`` except ``release.sig`` itself, which the
hashing configuration ignores *by exact name* (the name is part of the signed payload).
Any other extra entry, a missing file or a changed byte makes verification fail.

:func:`verify_release` takes these steps, in this order:

1. load the trust material: a P-256 public key (key mode) or CA certificates (certificate
   mode); an empty CA list is refused, never replaced by the operating system's roots;
2. read ``release.sig`` once and check that its mode (key or certificate) is the one asked;
3. let model-signing check the signature over the payload and hash ``DIR`` against the
   signed per-file digests, with the hashing configuration set explicitly (whole files,
   SHA-256, git paths *not* ignored) rather than guessed from the signature;
4. check that ``DIR`` holds exactly the signed files plus ``release.sig``;
5. read each signed file once into memory and compare its SHA-256 with the signed digest,
   so the bytes handed on are the bytes that were verified (no check-then-use gap);
6. parse ``release.json`` from those bytes; the signed files must be exactly
   ``release.json`` and the files it names;
7. certificate mode: apply kontur's signer policy (:mod:`kontur.release.signer`, ADR 0016):
   a codeSigning (or kontur release-signing) EKU, valid at the signing time (the signed
   ``created``) and at the injected clock's now, chaining to a given CA at both times;
8. check the name against the expected names when given (a valid signature over another
   model is refused), then expiry against the injected clock, then the platform when given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography import exceptions as crypto_exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pydantic import ValidationError

from kontur.clock import Clock
from kontur.release import keys
from kontur.release.errors import (
    KeyMaterialError,
    ManifestError,
    OutputNotEmpty,
    PlatformNotAllowed,
    ReleaseExpired,
    ReleaseNameMismatch,
    ReleaseNotFound,
    SignatureInvalid,
    UntrustedSigner,
)
from kontur.release.manifest import (
    MANIFEST_NAME,
    PLATFORMS,
    AuditRecord,
    ReleaseFiles,
    ReleaseManifest,
    SignedManifest,
    Thresholds,
    preset,
)
from kontur.release.signer import SignerPolicy, check_signer

__all__ = [
    "MAX_FILE_BYTES",
    "SIGNATURE_NAME",
    "BuiltRelease",
    "Trust",
    "VerifiedRelease",
    "build_audited_release",
    "build_release",
    "release_digest",
    "verify_release",
]

SIGNATURE_NAME = "release.sig"
#: Bound on one file of a release: no model this perimeter runs comes near it.
MAX_FILE_BYTES = 1 << 30
_MAX_SIGNATURE_BYTES = 1 << 20
Mode = Literal["key", "certificate"]


@dataclass(frozen=True)
class Trust:
    """What a release must be signed by: one public key, or a certificate from given CAs."""

    public_key: Path | None = None
    ca_certs: tuple[Path, ...] = ()
    #: Certificate mode: what the signing certificate must be (EKU, validity; ADR 0016).
    signer_policy: SignerPolicy = field(default_factory=SignerPolicy)

    def __post_init__(self) -> None:
        if (self.public_key is None) == (not self.ca_certs):
            got = "both" if self.public_key is not None else "neither"
            raise KeyMaterialError(f"trust: expected a public key or CA certificates, got {got}")

    @classmethod
    def key(cls, public_key: Path) -> Trust:
        """Key mode: the release must be signed by the private half of ``public_key``."""
        return cls(public_key=public_key)

    @classmethod
    def ca(cls, *ca_certs: Path, policy: SignerPolicy | None = None) -> Trust:
        """Certificate mode: the signing certificate must chain to one of ``ca_certs`` and
        meet ``policy`` (default: :class:`~kontur.release.signer.SignerPolicy`)."""
        return cls(ca_certs=tuple(ca_certs), signer_policy=policy or SignerPolicy())

    @property
    def mode(self) -> Mode:
        return "key" if self.public_key is not None else "certificate"


@dataclass(frozen=True)
class VerifiedRelease:
    """A release whose signature and bytes were verified; load the model from ``files``."""

    manifest: SignedManifest
    #: The verified model file bytes by name (``release.json`` is ``manifest.raw``).
    #: Treat as read-only: these are the exact bytes whose digests were signed.
    files: dict[str, bytes]
    #: ``key sha256:<SPKI DER>`` or ``cert <subject> sha256:<certificate DER>``.
    signer: str
    #: ``sha256:<hex>`` over the sorted per-file digests (the in-toto subject digest).
    digest: str
    #: SHA-256 hex of every signed file, ``release.json`` included.
    file_digests: dict[str, str]
    #: The exact bytes of ``release.sig`` that were verified.
    signature: bytes

    @property
    def model_id(self) -> str:
        """``name@version``, e.g. ``yolox-nano@3``."""
        m = self.manifest.manifest
        return f"{m.name}@{m.version}"


@dataclass(frozen=True)
class BuiltRelease:
    """What :func:`build_release` wrote."""

    directory: Path
    manifest: SignedManifest
    digest: str


@dataclass(frozen=True)
class _Bundle:
    """The parts of ``release.sig`` kontur reads; trusted only after step 3."""

    mode: Mode
    payload: bytes
    leaf_der: bytes | None
    #: Certificate mode: every certificate of the bundle's chain, leaf first.
    chain_der: tuple[bytes, ...] = ()


def release_digest(file_digests: dict[str, str]) -> str:
    """``sha256:<hex>`` over the per-file digests sorted by name (model-signing's subject)."""
    h = hashlib.sha256()
    for name in sorted(file_digests):
        h.update(bytes.fromhex(file_digests[name]))
    return "sha256:" + h.hexdigest()


def _model_signing(module: str) -> Any:
    """A model-signing module, imported late (it is slow to import) and typed ``Any``
    (the library has no annotations)."""
    return importlib.import_module(f"model_signing.{module}")


def _hashing_config() -> Any:
    hashing = _model_signing("hashing")
    # Whole files, SHA-256, and git paths hashed like any other file: the default config
    # (and the one the verifier would guess) silently skips .git*, so an added .gitignore
    # would pass unnoticed.
    return (
        hashing.Config()
        .use_file_serialization(hashing_algorithm="sha256", allow_symlinks=False)
        .set_ignored_paths(paths=[SIGNATURE_NAME], ignore_git_paths=False)
    )


def _read_regular(path: Path, limit: int) -> bytes:
    """The whole file, read once, refusing symlinks and anything not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SignatureInvalid(f"{path}: expected a signed file, got none (missing)") from None
    except OSError as exc:
        raise SignatureInvalid(f"{path}: expected a regular file, got {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise SignatureInvalid(f"{path}: expected a regular file, got another kind")
        if st.st_size > limit:
            raise SignatureInvalid(f"{path}: expected at most {limit} bytes, got {st.st_size}")
        return f.read(limit + 1)


def _parse_bundle(raw: bytes) -> _Bundle:
    where = SIGNATURE_NAME
    try:
        obj = json.loads(raw)
        material = obj["verificationMaterial"]
        payload = base64.b64decode(obj["dsseEnvelope"]["payload"], validate=True)
        chain = material.get("x509CertificateChain")
        if chain is not None:
            ders = tuple(
                base64.b64decode(c["rawBytes"], validate=True) for c in chain["certificates"]
            )
            return _Bundle("certificate", payload, ders[0], ders)
        if material.get("publicKey", {}).get("hint"):
            return _Bundle("key", payload, None)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, binascii.Error) as exc:
        raise SignatureInvalid(
            f"{where}: expected a Sigstore bundle, got unreadable data ({exc!r})"
        ) from None
    raise SignatureInvalid(f"{where}: expected a public key hint or a certificate chain, got none")


def _signed_digests(payload: bytes) -> dict[str, str]:
    """Per-file SHA-256 hex digests from a verified in-toto payload."""
    try:
        predicate = json.loads(payload)["predicate"]
        ser = predicate["serialization"]
        method, hash_type = ser["method"], ser["hash_type"]
        resources = [(r["name"], r["algorithm"], r["digest"]) for r in predicate["resources"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureInvalid(
            f"signed payload: expected model-signing v1.0, got {exc!r}"
        ) from None
    if (method, hash_type) != ("files", "sha256"):
        raise SignatureInvalid(
            f"signed payload: expected whole-file sha256 hashing, got {method}/{hash_type}"
        )
    digests: dict[str, str] = {}
    for name, algorithm, digest in resources:
        if algorithm != "sha256" or not isinstance(name, str) or "/" in name:
            raise SignatureInvalid(f"signed payload: expected plain sha256 files, got {name!r}")
        digests[name] = str(digest)
    return digests


def _mismatch(directory: Path, signed: dict[str, str]) -> SignatureInvalid:
    """Name each extra, missing and changed file of ``directory`` (after step 3 failed)."""
    present = {e.name for e in os.scandir(directory)} - {SIGNATURE_NAME}
    parts = []
    if extra := sorted(present - signed.keys()):
        parts.append(f"extra file {', '.join(extra)}")
    if missing := sorted(signed.keys() - present):
        parts.append(f"missing file {', '.join(missing)}")
    for name in sorted(present & signed.keys()):
        path = directory / name
        if path.is_symlink() or not path.is_file():
            parts.append(f"{name} is not a regular file")
            continue
        with path.open("rb") as f:
            got = hashlib.file_digest(f, "sha256").hexdigest()
        if got != signed[name]:
            parts.append(f"changed file {name} (expected sha256 {signed[name]}, got {got})")
    found = "; ".join(parts) or "a mismatch the library reported"
    return SignatureInvalid(f"release {directory}: expected exactly the signed files, got {found}")


def _library_verify(directory: Path, bundle: _Bundle, raw_sig: bytes, trust: Trust) -> None:
    """Step 3: model-signing checks the signature and hashes ``directory``."""
    from OpenSSL import crypto

    config = _model_signing("verifying").Config().set_hashing_config(_hashing_config())
    if trust.public_key is not None:
        try:  # the library reads the key again: a pipe is empty now, a file may have changed
            config.use_elliptic_key_verifier(public_key=trust.public_key)
        except ValueError as exc:
            raise KeyMaterialError(
                f"public key {trust.public_key}: expected the PEM key read before, got {exc}"
            ) from None
    else:
        config.use_certificate_verifier(certificate_chain=trust.ca_certs)
    with tempfile.TemporaryDirectory(prefix="kontur-sig-") as tmp:
        # Verify the very bytes read in step 2, not whatever release.sig holds by now.
        sig = Path(tmp) / SIGNATURE_NAME
        sig.write_bytes(raw_sig)
        try:
            config.verify(directory, sig)
        except crypto.X509StoreContextError as exc:
            raise UntrustedSigner(
                f"{SIGNATURE_NAME}: expected a certificate chaining to the given CA, got {exc}"
            ) from None
        except crypto_exceptions.InvalidSignature:
            raise SignatureInvalid(
                f"{SIGNATURE_NAME}: expected a valid ECDSA signature over the payload, "
                "got one that does not verify (forged or altered)"
            ) from None
        except ValueError as exc:
            raise _map_value_error(directory, bundle, str(exc)) from None
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            # A bundle that parses as JSON but lacks parts the library indexes blindly.
            raise SignatureInvalid(
                f"{SIGNATURE_NAME}: expected a complete Sigstore bundle, got {exc!r}"
            ) from None


def _map_value_error(directory: Path, bundle: _Bundle, message: str) -> Exception:
    if message.startswith("Signature mismatch"):
        return _mismatch(directory, _signed_digests(bundle.payload))
    if message.startswith("Key mismatch"):
        return SignatureInvalid(
            f"{SIGNATURE_NAME}: expected a signature by the given public key, "
            "got one by another key"
        )
    if "cannot be used for signing" in message:
        return UntrustedSigner(
            f"{SIGNATURE_NAME}: expected a certificate allowed to sign (digitalSignature or "
            "codeSigning), got one with neither"
        )
    if "symlink" in message:
        return SignatureInvalid(f"release {directory}: expected regular files, got a symlink")
    first = message.splitlines()[0] if message else "no reason"
    return SignatureInvalid(f"{SIGNATURE_NAME}: expected a valid signature, got: {first}")


def _check_trust_material(trust: Trust) -> None:
    """Step 1: fail with :class:`KeyMaterialError` before model-signing sees bad input."""
    if trust.public_key is not None:
        keys.load_public_key(trust.public_key)
        return
    for path in trust.ca_certs:
        keys.load_certificates(path, "CA certificate")


def _signer(bundle: _Bundle, trust: Trust) -> str:
    if trust.public_key is not None:
        return "key " + keys.public_key_fingerprint(keys.load_public_key(trust.public_key))
    assert bundle.leaf_der is not None
    leaf = x509.load_der_x509_certificate(bundle.leaf_der)
    return f"cert {leaf.subject.rfc4514_string()} sha256:{leaf.fingerprint(hashes.SHA256()).hex()}"


def _read_signed(directory: Path, signed: dict[str, str]) -> dict[str, bytes]:
    """Steps 4 and 5: exactly the signed files are present; read each once and compare."""
    present = {e.name for e in os.scandir(directory)} - {SIGNATURE_NAME}
    if present != signed.keys():
        raise _mismatch(directory, signed)
    files: dict[str, bytes] = {}
    for name, want in sorted(signed.items()):
        data = _read_regular(directory / name, MAX_FILE_BYTES)
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise SignatureInvalid(
                f"release {directory}: changed file {name} (expected sha256 {want}, got {got})"
            )
        files[name] = data
    return files


def _parse_manifest(files: dict[str, bytes]) -> SignedManifest:
    """Step 6: the manifest from the verified bytes; the signed set is exactly what it names."""
    if MANIFEST_NAME not in files:
        raise ManifestError(f"{MANIFEST_NAME}: expected among the signed files, got none")
    raw = files[MANIFEST_NAME]
    manifest = ReleaseManifest.from_json(raw)
    expected = {MANIFEST_NAME, *manifest.signed_names()}
    if set(files) != expected:
        raise ManifestError(
            f"{MANIFEST_NAME}: expected signed files {sorted(expected)}, got {sorted(files)}"
        )
    audit = manifest.robustness_audit
    if audit is not None:
        got = hashlib.sha256(files[audit.report]).hexdigest()
        if got != audit.report_sha256:
            raise ManifestError(
                f"{MANIFEST_NAME}: robustness_audit: expected report {audit.report} with sha256 "
                f"{audit.report_sha256}, got {got}"
            )
    return SignedManifest(manifest, raw)


def _check_signer(bundle: _Bundle, trust: Trust, manifest: ReleaseManifest, when: datetime) -> None:
    """Step 7: certificate mode only, the signer policy at the signing time and at ``when``."""
    if trust.mode != "certificate":
        return
    anchors = [c for p in trust.ca_certs for c in keys.load_certificates(p, "CA certificate")]
    check_signer(
        bundle.chain_der, anchors, trust.signer_policy, signed_at=manifest.created, now=when
    )


def _check_name(manifest: ReleaseManifest, expected: tuple[str, ...] | None) -> None:
    """Step 8, first: the release is one of the ``expected`` names (None: any name)."""
    if expected is None:
        return
    if isinstance(expected, str):  # a str is a sequence too: "tiny" would match "t"
        raise TypeError(f"expected_names: expected a tuple of names, got str {expected!r}")
    if manifest.name not in expected:
        want = expected[0] if len(expected) == 1 else f"one of {', '.join(expected) or '(none)'}"
        raise ReleaseNameMismatch(
            f"release {manifest.name}@{manifest.version}: expected release name {want}, "
            f"got {manifest.name}"
        )


def _check_policy(manifest: ReleaseManifest, *, when: datetime, platform: str | None) -> None:
    """Step 8: not expired at ``when``; ``platform`` (if given) among the signed platforms."""
    rid = f"{manifest.name}@{manifest.version}"
    if manifest.expired_at(when):
        raise ReleaseExpired(
            f"release {rid}: expected a time before expires {manifest.expires.isoformat()}, "
            f"got {when.isoformat()}"
        )
    if platform is not None and platform not in manifest.platforms:
        raise PlatformNotAllowed(
            f"release {rid}: expected platform {platform} among the signed platforms, "
            f"got {', '.join(manifest.platforms)}"
        )


def verify_release(
    directory: Path,
    *,
    public_key: Path | None = None,
    ca_certs: Sequence[Path] = (),
    platform: str | None = None,
    expected_names: tuple[str, ...] | None = None,
    signer_policy: SignerPolicy | None = None,
    clock: Clock,
) -> VerifiedRelease:
    """Verify the release in ``directory`` (steps 1-8 above) and return its verified bytes.

    ``expected_names``: the release's signed name must be one of these (an empty tuple
    accepts none); None checks no name, for callers that only inspect a release.
    ``signer_policy`` applies in certificate mode (default :class:`SignerPolicy`).
    """
    trust = Trust(
        public_key=public_key,
        ca_certs=tuple(ca_certs),
        signer_policy=signer_policy or SignerPolicy(),
    )
    _check_trust_material(trust)
    if not directory.is_dir():
        raise ReleaseNotFound(f"release {directory}: expected a directory, got none")
    if not (directory / SIGNATURE_NAME).exists():
        raise SignatureInvalid(f"release {directory}: expected {SIGNATURE_NAME}, got none")
    raw_sig = _read_regular(directory / SIGNATURE_NAME, _MAX_SIGNATURE_BYTES)
    bundle = _parse_bundle(raw_sig)
    if bundle.mode != trust.mode:
        raise SignatureInvalid(
            f"{SIGNATURE_NAME}: expected a {trust.mode}-mode signature, got {bundle.mode} mode"
        )
    _library_verify(directory, bundle, raw_sig, trust)
    signed = _signed_digests(bundle.payload)
    files = _read_signed(directory, signed)
    manifest = _parse_manifest(files)
    when = datetime.fromtimestamp(clock.wall(), UTC)
    _check_signer(bundle, trust, manifest.manifest, when)
    _check_name(manifest.manifest, expected_names)
    _check_policy(manifest.manifest, when=when, platform=platform)
    return VerifiedRelease(
        manifest=manifest,
        files={n: b for n, b in files.items() if n != MANIFEST_NAME},
        signer=_signer(bundle, trust),
        digest=release_digest(signed),
        file_digests=dict(signed),
        signature=raw_sig,
    )


def _release_files(model_paths: Sequence[Path]) -> ReleaseFiles:
    suffixes = sorted(p.suffix.lower() for p in model_paths)
    by_suffix = {p.suffix.lower(): p.name for p in model_paths}
    got = ", ".join(p.name for p in model_paths) or "none"
    try:
        if suffixes == [".onnx"]:
            return ReleaseFiles(runtime="onnx", model=by_suffix[".onnx"])
        if suffixes == [".bin", ".xml"]:
            return ReleaseFiles(
                runtime="openvino", model=by_suffix[".xml"], weights=by_suffix[".bin"]
            )
    except ValidationError as exc:
        raise ManifestError(f"model files: {exc.errors()[0]['msg']}") from None
    raise ManifestError(f"model files: expected one .onnx, or an OpenVINO .xml and .bin, got {got}")


def _check_signing_material(key: Path, cert: Path | None) -> None:
    private = keys.load_private_key(key)
    if cert is None:
        return
    leaf = keys.load_certificates(cert, "signing certificate")[0]
    if leaf.public_key() != private.public_key():
        raise KeyMaterialError(
            f"signing certificate {cert}: expected the public key of {key}, got another key"
        )


def _sign(directory: Path, key: Path, cert: Path | None, cert_chain: Sequence[Path]) -> None:
    config = _model_signing("signing").Config().set_hashing_config(_hashing_config())
    if cert is None:
        config.use_elliptic_key_signer(private_key=key)
    else:
        # model-signing cannot sign with an empty chain (it parses b"" as PEM and fails);
        # the leaf stands in for it, adding nothing a verifier trusts.
        config.use_certificate_signer(
            private_key=key, signing_certificate=cert, certificate_chain=list(cert_chain) or [cert]
        )
    config.sign(directory, directory / SIGNATURE_NAME)


def _prepare_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise OutputNotEmpty(f"release {out_dir}: expected a new or empty directory, got entries")
    out_dir.mkdir(parents=True, exist_ok=True)


def build_release(
    model_paths: Sequence[Path],
    output_format: str,
    out_dir: Path,
    *,
    name: str,
    version: int,
    key: Path,
    cert: Path | None = None,
    cert_chain: Sequence[Path] = (),
    thresholds: Thresholds | None = None,
    critical_classes: tuple[str, ...] = ("person",),
    platforms: tuple[str, ...] = PLATFORMS,
    valid_for: timedelta = timedelta(days=365),
    clock: Clock,
) -> BuiltRelease:
    """Copy the model file(s) into ``out_dir``, write ``release.json`` and sign them together.

    Key mode signs with ``key``; certificate mode also embeds ``cert`` (issued for ``key``)
    and any intermediate certificates in ``cert_chain``.
    """
    files = _release_files(model_paths)
    _check_signing_material(key, cert)
    created = datetime.fromtimestamp(clock.wall(), UTC)
    manifest = preset(
        output_format,
        name=name,
        version=version,
        files=files,
        created=created,
        valid_for=valid_for,
        thresholds=thresholds,
        critical_classes=critical_classes,
        platforms=platforms,
    )
    contents = {path.name: _read_model(path) for path in model_paths}
    return _write_signed(out_dir, manifest, contents, key, cert, cert_chain)


def _write_signed(
    out_dir: Path,
    manifest: ReleaseManifest,
    files: dict[str, bytes],
    key: Path,
    cert: Path | None,
    cert_chain: Sequence[Path],
) -> BuiltRelease:
    """Write ``release.json`` and ``files`` into the new ``out_dir`` and sign them together."""
    raw = manifest.to_json()
    contents = {MANIFEST_NAME: raw, **files}
    _prepare_out_dir(out_dir)
    try:
        for fname, data in contents.items():
            (out_dir / fname).write_bytes(data)
        _sign(out_dir, key, cert, cert_chain)
        signed = _signed_digests(_parse_bundle((out_dir / SIGNATURE_NAME).read_bytes()).payload)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    mine = {n: hashlib.sha256(b).hexdigest() for n, b in contents.items()}
    if signed != mine:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise SignatureInvalid(f"release {out_dir}: expected to sign {sorted(mine)}, signed others")
    return BuiltRelease(out_dir, SignedManifest(manifest, raw), release_digest(mine))


def build_audited_release(
    source: VerifiedRelease,
    audit: AuditRecord,
    report: bytes,
    out_dir: Path,
    *,
    key: Path,
    cert: Path | None = None,
    cert_chain: Sequence[Path] = (),
    version: int | None = None,
    clock: Clock,
) -> BuiltRelease:
    """``source`` re-released with ``audit`` in its audit slot and ``report`` beside it,
    signed as a new version (default: the source's + 1).

    The audit must be of the source's model (``audit.model_digest``) and ``report`` the
    bytes ``audit.report_sha256`` names; a report the source already carried is replaced.
    The new version expires when the source does: an audit does not extend a model's life.
    """
    old = source.manifest.manifest
    if old.model_digest(source.file_digests) != audit.model_digest:
        raise ManifestError(
            f"audit: expected an audit of {old.name}@{old.version}'s model, got one of "
            f"{audit.model_digest}"
        )
    if hashlib.sha256(report).hexdigest() != audit.report_sha256:
        raise ManifestError(f"audit: expected report bytes of sha256 {audit.report_sha256}")
    new_version = old.version + 1 if version is None else version
    if new_version <= old.version:
        raise ManifestError(
            f"version: expected more than {old.name}'s {old.version}, got {new_version}"
        )
    _check_signing_material(key, cert)
    created = datetime.fromtimestamp(clock.wall(), UTC)
    fields = old.model_dump(by_alias=True) | {
        "version": new_version,
        "created": created,
        "expires": old.expires,
        "robustness_audit": audit,
    }
    try:
        manifest = ReleaseManifest.model_validate(fields, strict=False)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(x) for x in e["loc"]) or "(top)"
        raise ManifestError(f"{MANIFEST_NAME}: {where}: {e['msg']}") from None
    files = {n: source.files[n] for n in old.files.names()} | {audit.report: report}
    return _write_signed(out_dir, manifest, files, key, cert, cert_chain)


def _read_model(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ReleaseNotFound(
            f"model file {path}: expected a readable file, got {exc.strerror}"
        ) from None
