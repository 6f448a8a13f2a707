"""Errors of signed model releases: one root, one leaf per check.

::

    KonturError                         (kontur.errors)
    └── ReleaseError                    a release was refused; exit code 1
        ├── ManifestError               release.json is not a valid manifest (also a ValueError)
        ├── SignatureInvalid            changed byte, extra or missing file, wrong key, forged
        ├── UntrustedSigner             the signing certificate does not chain to a given CA
        │   ├── SignerNotAllowed        its purpose is wrong: no codeSigning or kontur EKU
        │   │                           (e.g. a TLS serverAuth certificate), or a CA (ADR 0016)
        │   └── SignerNotValid          not valid at the signing time or now (ADR 0016)
        ├── ReleaseNameMismatch         a valid release, but not the one asked for by name
        ├── RollbackRefused             a version lower than the highest one installed
        ├── VersionConflict             the installed version, but with other bytes
        ├── ReleaseExpired              the reference time is at or past ``expires``
        ├── PlatformNotAllowed          the release does not list this platform
        ├── StoreCorrupt                the release store's index does not parse
        ├── ReleaseNotFound             no release directory, or not installed; exit code 2
        ├── OutputNotEmpty              a release would overwrite existing files; exit code 2
        └── KeyMaterialError            a key or certificate missing, unreadable or unusable;
                                        exit code 2

Every message is one line saying what was expected and what was found, e.g.
``release yolox-nano: expected version >= 3 (installed), got 2``. ``exit_code`` is what the
CLI exits with: 1 for a release that is invalid, 2 for a usage problem (nothing to check,
or nothing to check it with).
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = [
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
]


class ReleaseError(KonturError):
    """Root of every refusal of a model release."""

    exit_code = 1


class ManifestError(ReleaseError, ValueError):
    """``release.json`` is not a valid manifest; the message says what and where."""


class SignatureInvalid(ReleaseError):
    """The signature does not cover exactly these bytes: a changed byte, an extra or missing
    file, a signature made with another key, or a forged or unreadable signature."""


class UntrustedSigner(ReleaseError):
    """The signing certificate does not chain to any of the CA certificates given as roots,
    or may not be used for signing."""


class SignerNotAllowed(UntrustedSigner):
    """The signing certificate may not sign releases: its ExtendedKeyUsage names none of the
    signer policy's purposes (codeSigning or kontur's release-signing EKU), it has no EKU,
    its KeyUsage lacks digitalSignature, or it is a CA certificate."""


class SignerNotValid(UntrustedSigner):
    """The signing certificate is not valid at the release's signing time (its signed
    ``created``) or at the reference time, or the signing time lies in the future."""


class ReleaseNameMismatch(ReleaseError):
    """A validly signed release whose name is not the one the caller expects: a signature
    over another model is not a signature over this one."""


class RollbackRefused(ReleaseError):
    """The release's version is lower than the highest one installed for its name."""


class VersionConflict(ReleaseError):
    """The version is already installed with a different release digest."""


class AuditRefused(ReleaseError):
    """The release's robustness audit is missing or below the site's floor (ADR 0033)."""


class ReleaseExpired(ReleaseError):
    """The reference time is at or past the release's ``expires``."""


class PlatformNotAllowed(ReleaseError):
    """The release does not list the platform it was asked to run on."""


class StoreCorrupt(ReleaseError):
    """The store's index does not parse; the store refuses to guess what was installed."""


class ReleaseNotFound(ReleaseError):
    """There is no release directory there, or the store has no such release."""

    exit_code = 2


class OutputNotEmpty(ReleaseError):
    """The directory a new release would be written to already holds files."""

    exit_code = 2


class KeyMaterialError(ReleaseError):
    """A key or certificate file is missing, unreadable, or of an unsupported kind."""

    exit_code = 2
