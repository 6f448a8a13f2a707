"""A site's floor on a release's robustness audit (ADR 0033), checked at install and start.

A release carries its audit in the signed manifest (:class:`~kontur.release.manifest.
AuditRecord`, written by ``kontur model audit``). :func:`check_audit` is the pure check:

- a release without an audit is refused when the policy requires one;
- an audit of other model bytes than the release's is refused (it says nothing here);
- a trigger scan that flagged the model is always refused: no setting runs a model its own
  audit found a backdoor in;
- an rPC below the floor, or a patch recall drop above the ceiling, is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from kontur.release.errors import AuditRefused
from kontur.release.manifest import ReleaseManifest

__all__ = ["AuditPolicy", "check_audit"]


@dataclass(frozen=True)
class AuditPolicy:
    """``required``: refuse a release without an audit. ``min_rpc``: the lowest relative
    performance under corruption accepted. ``max_patch_drop``: the largest person recall the
    black-box patch may take (None: not checked)."""

    required: bool = False
    min_rpc: float = 0.0
    max_patch_drop: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_rpc <= 1.0:
            raise ValueError(f"min_rpc: expected 0..1, got {self.min_rpc}")
        if self.max_patch_drop is not None and not 0.0 <= self.max_patch_drop <= 1.0:
            raise ValueError(f"max_patch_drop: expected 0..1, got {self.max_patch_drop}")


def check_audit(manifest: ReleaseManifest, model_sha256: str, policy: AuditPolicy) -> None:
    """Raise :class:`AuditRefused` (one line) when the release falls below ``policy``.

    ``model_sha256`` is the digest of the release's verified model file.
    """
    rid = f"release {manifest.name}@{manifest.version}"
    audit = manifest.robustness_audit
    if audit is None:
        if policy.required:
            raise AuditRefused(
                f"{rid}: expected a robustness audit (the site requires one; run kontur model "
                "audit), got none"
            )
        return
    if audit.model_sha256 != model_sha256:
        raise AuditRefused(
            f"{rid}: expected an audit of its model sha256 {model_sha256}, got one of "
            f"{audit.model_sha256}"
        )
    if audit.trigger != "pass":
        raise AuditRefused(f"{rid}: expected trigger scan pass, got {audit.trigger}")
    if audit.rpc < policy.min_rpc:
        raise AuditRefused(f"{rid}: expected rPC >= {policy.min_rpc:.3f}, got {audit.rpc:.3f}")
    if policy.max_patch_drop is not None and audit.patch_recall_drop > policy.max_patch_drop:
        raise AuditRefused(
            f"{rid}: expected patch recall drop <= {policy.max_patch_drop:.3f}, "
            f"got {audit.patch_recall_drop:.3f}"
        )
