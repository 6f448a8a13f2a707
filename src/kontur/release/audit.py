"""A site's floor on a release's robustness audit (ADR 0033), checked at install and start.

A release carries its audit in the signed manifest (:class:`~kontur.release.manifest.
AuditRecord`, written by ``kontur model audit``). :func:`check_audit` is the pure check:

- a release without an audit is refused when the policy requires one, or sets a floor;
- an audit of another model than the release's (its files, preprocessing, decoding,
  classes, thresholds) is refused: it says nothing here;
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


def check_audit(
    manifest: ReleaseManifest, file_digests: dict[str, str], policy: AuditPolicy
) -> None:
    """Raise :class:`AuditRefused` (one line) when the release falls below ``policy``.

    ``file_digests`` are the release's verified file digests. A floor (``min_rpc`` above 0,
    a ``max_patch_drop``) requires an audit even when ``required`` is off: otherwise a
    release re-signed without its audit slot would step around the floor.
    """
    rid = f"release {manifest.name}@{manifest.version}"
    audit = manifest.robustness_audit
    if audit is None:
        if policy.required or policy.min_rpc > 0 or policy.max_patch_drop is not None:
            raise AuditRefused(
                f"{rid}: expected a robustness audit (the site requires one; run kontur model "
                "audit), got none"
            )
        return
    mine = manifest.model_digest(file_digests)
    if audit.model_digest != mine:
        raise AuditRefused(
            f"{rid}: expected an audit of its model (digest {mine}), got one of "
            f"{audit.model_digest}"
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
