"""Which model the perimeter runs: always a signed release, verified before use.

Steps at start (:func:`prepare_release`):

1. A release directory with a trust anchor (``--release DIR --pub P | --ca CA``) is
   verified and installed into the run's release store (``DATA_DIR/releases``), which
   refuses a rollback, an expired release, one signed for no platform we may use, and one
   whose signed name is not among the config's ``release.names`` (ADR 0016).
2. A bare model file (``--model X.onnx`` or ``X.xml``) is wrapped in a *throwaway* release:
   a fresh demo key is generated under ``DATA_DIR/run``, the release is signed with it,
   then verified and installed exactly like a real one. The summary and the archive say so.
3. The verified bytes (never the files again) go to the worker on stdin
   (:mod:`kontur.worker.bundle`); the installed files are re-hashed in the background by
   the model-integrity monitor.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kontur.clock import Clock
from kontur.config import ReleaseAuditConfig
from kontur.errors import ConfigError
from kontur.release.audit import AuditPolicy
from kontur.release.errors import KeyMaterialError
from kontur.release.keys import keygen
from kontur.release.manifest import AuditRecord
from kontur.release.signing import Trust, VerifiedRelease, build_release
from kontur.release.store import ReleaseStore
from kontur.worker.bundle import pack
from kontur.worker.errors import ModelFormatError, ModelUnreadable

__all__ = [
    "PreparedRelease",
    "audit_policy",
    "format_from_output_shape",
    "prepare_release",
]


@dataclass(frozen=True)
class PreparedRelease:
    release: VerifiedRelease
    #: Where the installed, write-once copy lives (watched by the integrity monitor).
    installed_dir: Path
    #: SHA-256 of every installed file, as recorded at install.
    installed_files: dict[str, str]
    throwaway: bool
    signer: str

    @property
    def model_id(self) -> str:
        return self.release.model_id

    def worker_spec(self) -> tuple[dict[str, Any], bytes]:
        """The worker's spec entries and the stdin blob of verified bytes."""
        blob, index = pack(self.release.manifest.raw, self.release.files)
        spec = {
            "detector": "release",
            "model_id": self.model_id,
            "bundle": [p.to_json() for p in index],
        }
        return spec, blob

    def to_summary(self) -> dict[str, Any]:
        m = self.release.manifest.manifest
        return {
            "name": m.name,
            "version": m.version,
            "digest": self.release.digest,
            "signer": self.signer,
            "format": m.output_format,
            "runtime": m.files.runtime,
            "platforms": list(m.platforms),
            "critical_classes": list(m.critical_classes),
            "expires": m.expires.isoformat(),
            "installed": str(self.installed_dir),
            "throwaway": self.throwaway,
            "audit": _audit_summary(m.robustness_audit),
        }


def _audit_summary(audit: AuditRecord | None) -> dict[str, Any] | None:
    if audit is None:
        return None
    keep = {"report_sha256", "audited", "clip", "clean_ap50", "mpc", "rpc", "trigger"}
    return audit.model_dump(mode="json", include=keep | {"patch_recall_drop"})


def audit_policy(config: ReleaseAuditConfig) -> AuditPolicy:
    """The site config's ``release.audit`` as the release store's policy."""
    return AuditPolicy(
        required=config.required, min_rpc=config.min_rpc, max_patch_drop=config.max_patch_drop
    )


def format_from_output_shape(model: Path, shape: tuple[object, ...]) -> str:
    """``yolox`` or ``yolov8`` from an ONNX model's first output shape (read in the sandbox:
    :mod:`kontur.worker.prepare`)."""
    if len(shape) == 3 and shape[2] == 85:
        return "yolox"
    if len(shape) == 3 and shape[1] == 84:
        return "yolov8"
    raise ModelFormatError(
        f"model {model}: expected a YOLOX [1,N,85] or YOLOv8 [1,84,N] output, got {list(shape)}"
    )


def _model_files(model: Path) -> list[Path]:
    if not model.is_file():
        raise ModelUnreadable(f"model {model}: expected a readable model file, found nothing")
    if model.suffix.lower() == ".xml":
        weights = model.with_suffix(".bin")
        if not weights.is_file():
            raise ModelUnreadable(f"model {model}: expected its weights {weights}, found nothing")
        return [model, weights]
    return [model]


def _throwaway(
    model: Path,
    fmt: str | None,
    run_dir: Path,
    clock: Clock,
    store: ReleaseStore,
    guess: Callable[[Path], str],
) -> tuple[Path, Trust, str]:
    files = _model_files(model)
    output_format = fmt or ("ssd" if model.suffix.lower() == ".xml" else guess(model))
    key_dir = run_dir / "demo-release-key"
    if key_dir.exists():
        shutil.rmtree(key_dir)
    key_dir.mkdir(parents=True, mode=0o700)
    pair = keygen(key_dir)
    stem = re.sub(r"[^a-z0-9._-]+", "-", model.stem.lower()).strip("-.") or "model"
    out = run_dir / "demo-release"
    if out.exists():
        shutil.rmtree(out)
    name = f"demo-{stem}"[:64]
    build_release(
        files,
        output_format,
        out,
        name=name,
        # a fresh key each run: the next version, so a data dir can be used for another demo
        # (the store refuses a same-version release with other bytes, and any rollback)
        version=(store.highest(name) or 0) + 1,
        key=pair.private_key,
        clock=clock,
    )
    return out, Trust.key(pair.public_key), name


def prepare_release(
    *,
    data_dir: Path,
    clock: Clock,
    release_dir: Path | None = None,
    trust: Trust | None = None,
    model: Path | None = None,
    model_format: str | None = None,
    guess: Callable[[Path], str] | None = None,
    release_names: tuple[str, ...] = (),
    audit_policy: AuditPolicy | None = None,
) -> PreparedRelease:
    """Verify and install the release to run (module docstring, steps 1-2).

    ``guess`` reads a bare ONNX model's format without ``--format``; it runs the model in the
    worker's sandbox (the supervisor loads no inference runtime). ``release_names`` is the
    config's ``release.names``: the names a ``release_dir`` may carry. ``audit_policy`` is
    the config's ``release.audit`` floor (ADR 0033).
    """
    throwaway = release_dir is None
    store = ReleaseStore(data_dir / "releases")
    names = release_names
    if release_dir is None:
        if model is None:
            raise ModelUnreadable("model: expected --release DIR or --model FILE, got neither")
        if guess is None and model_format is None and model.suffix.lower() != ".xml":
            raise ModelFormatError(f"model {model}: expected --format, got none")
        release_dir, trust, name = _throwaway(
            model, model_format, data_dir / "run", clock, store, guess or (lambda m: "")
        )
        names = (name,)
    elif not names:
        raise ConfigError(
            f"release {release_dir}: expected the config to name the releases this site runs "
            "(release.names), got none"
        )
    if trust is None:
        raise KeyMaterialError(f"release {release_dir}: expected --pub or --ca, got neither")
    release = store.install(
        release_dir, trust, clock, expected_names=names, audit_policy=audit_policy
    )
    m = release.manifest.manifest
    record = store.record(m.name, m.version)
    return PreparedRelease(
        release=release,
        installed_dir=store.root / m.name / str(m.version),
        installed_files=dict(record.files),
        throwaway=throwaway,
        signer=release.signer,
    )
