"""Signed model releases: the model, its preprocessing, thresholds and config as one unit.

Build a release with :func:`build_release`, check one with :func:`verify_release` (which
hands back the verified bytes to load from), install it with :class:`ReleaseStore`. The
command line is :data:`kontur.release.cli.model_app` (``kontur model …``). See ADR 0009;
who may sign in certificate mode, and the name binding, are ADR 0016
(:mod:`kontur.release.signer`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kontur._private import lazy_exports

if TYPE_CHECKING:  # the names' types for mypy; at run time each is imported on first use
    from kontur.release.audit import AuditPolicy, check_audit
    from kontur.release.errors import (
        AuditRefused,
        KeyMaterialError,
        ManifestError,
        OutputNotEmpty,
        PlatformNotAllowed,
        ReleaseError,
        ReleaseExpired,
        ReleaseNameMismatch,
        ReleaseNotFound,
        RollbackRefused,
        SignatureInvalid,
        SignerNotAllowed,
        SignerNotValid,
        StoreCorrupt,
        UntrustedSigner,
        VersionConflict,
    )
    from kontur.release.keys import KeyPair, issue_signing_cert, keygen, make_ca
    from kontur.release.manifest import (
        MANIFEST_NAME,
        AuditRecord,
        Preprocessing,
        ReleaseFiles,
        ReleaseManifest,
        SignedManifest,
        Thresholds,
        preset,
        preset_thresholds,
    )
    from kontur.release.signer import (
        DEFAULT_PURPOSES,
        KONTUR_RELEASE_SIGNING_EKU,
        SignerPolicy,
        check_signer,
    )
    from kontur.release.signing import (
        SIGNATURE_NAME,
        BuiltRelease,
        Trust,
        VerifiedRelease,
        build_audited_release,
        build_release,
        release_digest,
        verify_release,
    )
    from kontur.release.store import InstalledRelease, ReleaseStore, default_store_root

# Lazy (PEP 562): ``kontur.cli`` imports ``kontur.release.cli`` to register its commands, and
# mounting them must not import what only the commands need (ADR 0063).
_HOME = {
    **dict.fromkeys(("AuditPolicy", "check_audit"), "audit"),
    **dict.fromkeys(
        (
            "AuditRefused",
            "KeyMaterialError",
            "ManifestError",
            "OutputNotEmpty",
            "PlatformNotAllowed",
            "ReleaseError",
            "ReleaseExpired",
            "ReleaseNameMismatch",
            "ReleaseNotFound",
            "RollbackRefused",
            "SignatureInvalid",
            "SignerNotAllowed",
            "SignerNotValid",
            "StoreCorrupt",
            "UntrustedSigner",
            "VersionConflict",
        ),
        "errors",
    ),
    **dict.fromkeys(("KeyPair", "issue_signing_cert", "keygen", "make_ca"), "keys"),
    **dict.fromkeys(
        (
            "MANIFEST_NAME",
            "AuditRecord",
            "Preprocessing",
            "ReleaseFiles",
            "ReleaseManifest",
            "SignedManifest",
            "Thresholds",
            "preset",
            "preset_thresholds",
        ),
        "manifest",
    ),
    **dict.fromkeys(
        ("DEFAULT_PURPOSES", "KONTUR_RELEASE_SIGNING_EKU", "SignerPolicy", "check_signer"), "signer"
    ),
    **dict.fromkeys(
        (
            "SIGNATURE_NAME",
            "BuiltRelease",
            "Trust",
            "VerifiedRelease",
            "build_audited_release",
            "build_release",
            "release_digest",
            "verify_release",
        ),
        "signing",
    ),
    **dict.fromkeys(("InstalledRelease", "ReleaseStore", "default_store_root"), "store"),
}

__all__ = [
    "DEFAULT_PURPOSES",
    "KONTUR_RELEASE_SIGNING_EKU",
    "MANIFEST_NAME",
    "SIGNATURE_NAME",
    "AuditPolicy",
    "AuditRecord",
    "AuditRefused",
    "BuiltRelease",
    "InstalledRelease",
    "KeyMaterialError",
    "KeyPair",
    "ManifestError",
    "OutputNotEmpty",
    "PlatformNotAllowed",
    "Preprocessing",
    "ReleaseError",
    "ReleaseExpired",
    "ReleaseFiles",
    "ReleaseManifest",
    "ReleaseNameMismatch",
    "ReleaseNotFound",
    "ReleaseStore",
    "RollbackRefused",
    "SignatureInvalid",
    "SignedManifest",
    "SignerNotAllowed",
    "SignerNotValid",
    "SignerPolicy",
    "StoreCorrupt",
    "Thresholds",
    "Trust",
    "UntrustedSigner",
    "VerifiedRelease",
    "VersionConflict",
    "build_audited_release",
    "build_release",
    "check_audit",
    "check_signer",
    "default_store_root",
    "issue_signing_cert",
    "keygen",
    "make_ca",
    "preset",
    "preset_thresholds",
    "release_digest",
    "verify_release",
]

__getattr__ = lazy_exports(__name__, _HOME)
