"""``release.json``: what a signed model release promises, parsed and frozen.

A release is a directory: the model file(s) plus ``release.json``, signed together with
OpenSSF model signing (:mod:`kontur.release.signing`). The manifest says everything the
worker needs to run the model *as its publisher meant*: preprocessing, output decoding,
thresholds, class names, the classes allowed to feed critical decisions and the platforms
the release may run on. Changing any of it changes the signed bytes.

Build a manifest only through :meth:`ReleaseManifest.from_json`, which checks every
invariant, and keep the exact bytes beside it (:class:`SignedManifest`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from kontur.release.classes import COCO_CLASSES
from kontur.release.errors import ManifestError

__all__ = [
    "AUDIT_SCHEMA",
    "FORMATS",
    "MANIFEST_NAME",
    "MAX_MANIFEST_BYTES",
    "PLATFORMS",
    "SCHEMA",
    "AuditRecord",
    "ManifestError",
    "OutputFormat",
    "Platform",
    "Preprocessing",
    "ReleaseFiles",
    "ReleaseManifest",
    "SignedManifest",
    "Thresholds",
    "preset",
    "preset_thresholds",
]

SCHEMA = "kontur.release/1"
AUDIT_SCHEMA = "kontur.audit/1"
MANIFEST_NAME = "release.json"
MAX_MANIFEST_BYTES = 1 << 20

OutputFormat = Literal["yolox", "yolov8", "ssd"]
Platform = Literal["cpu", "gpu", "npu"]
Runtime = Literal["onnx", "openvino"]
FORMATS: tuple[str, ...] = ("yolox", "yolov8", "ssd")
PLATFORMS: tuple[str, ...] = ("cpu", "gpu", "npu")

_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Preprocessing(_Frozen):
    """How a frame (BGR uint8, H×W×3) becomes the model's input tensor (NCHW float32)."""

    input_width: int = Field(gt=0, le=4096)
    input_height: int = Field(gt=0, le=4096)
    colour: Literal["bgr", "rgb"]
    #: ``x' = (x * scale - mean[c]) / std[c]``, channel order after the colour conversion.
    scale: float = Field(gt=0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    #: Letterbox keeps the aspect ratio and pads with ``pad_value``; otherwise plain resize.
    letterbox: bool
    pad_value: int = Field(default=114, ge=0, le=255)

    @model_validator(mode="after")
    def _std_positive(self) -> Preprocessing:
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")
        return self


class Thresholds(_Frozen):
    score: float = Field(gt=0, lt=1)
    nms_iou: float = Field(gt=0, lt=1)


class ReleaseFiles(_Frozen):
    """The model files, by role, as plain names inside the release directory."""

    runtime: Runtime
    model: str
    #: OpenVINO IR weights (``.bin``); absent for ONNX.
    weights: str | None = None

    @model_validator(mode="after")
    def _names(self) -> ReleaseFiles:
        for n in (self.model, self.weights):
            if n is not None and (not _FILE.match(n) or n == MANIFEST_NAME):
                raise ValueError(f"file name must be a plain name inside the release, got {n!r}")
        if self.runtime == "openvino" and self.weights is None:
            raise ValueError("an OpenVINO release needs its weights file")
        if self.runtime == "onnx" and self.weights is not None:
            raise ValueError("an ONNX release has no separate weights file")
        return self

    def names(self) -> tuple[str, ...]:
        return (self.model,) if self.weights is None else (self.model, self.weights)


class AuditRecord(_Frozen):
    """The robustness audit a release carries (``kontur model audit``, ADR 0033).

    The full report is a file of the release (``report``), signed with it; these are the
    figures a site's policy checks at install and at start. ``model_digest`` names what was
    audited (:meth:`ReleaseManifest.model_digest`: every model file and the preprocessing,
    decoding, classes and thresholds): an audit of another model says nothing about this one.
    ``corruptions``, ``patch_queries`` and ``trigger_budget`` say how thorough it was.
    """

    schema_: Literal["kontur.audit/1"] = Field(alias="schema")
    report: str
    report_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    model_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    audited: AwareDatetime
    clip: str = Field(min_length=1, max_length=256)
    frames: int = Field(ge=1)
    #: Corruption x severity runs behind ``mpc``.
    corruptions: int = Field(ge=1)
    patch_queries: int = Field(ge=0)
    trigger_budget: int = Field(ge=0)
    #: Person AP at IoU 0.5 on the clean frames.
    clean_ap50: float = Field(ge=0, le=1)
    #: Mean AP50 over every corruption and severity (Michaelis et al. 2019).
    mpc: float = Field(ge=0, le=1)
    #: ``mpc / clean_ap50``; above 1 only by chance.
    rpc: float = Field(ge=0, le=10)
    trigger: Literal["pass", "flagged"]
    #: Person recall lost to the black-box patch, beyond a control patch of its size.
    patch_recall_drop: float = Field(ge=-1, le=1)

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)

    @model_validator(mode="after")
    def _report_name(self) -> AuditRecord:
        want = min(self.mpc / self.clean_ap50, 10.0) if self.clean_ap50 > 0 else 0.0
        if abs(self.rpc - want) > 1e-6:
            raise ValueError(f"rpc: expected mpc / clean_ap50 = {want:.6f}, got {self.rpc:.6f}")
        if not _FILE.match(self.report) or self.report == MANIFEST_NAME:
            raise ValueError(
                f"report must be a plain file name in the release, got {self.report!r}"
            )
        return self


#: The highest version ``kontur model release`` gives (a signed 32-bit integer's): a slip of
#: the finger (10**23), once installed, would refuse every later version of the name. Not a
#: schema bound, so that a release already signed and installed above it still loads.
MAX_VERSION = 2**31 - 1


class ReleaseManifest(_Frozen):
    schema_: Literal["kontur.release/1"] = Field(alias="schema")
    name: str = Field(pattern=_NAME)
    #: Monotonic: install refuses a version lower than the highest installed for this name.
    version: int = Field(ge=1)
    created: AwareDatetime
    expires: AwareDatetime
    files: ReleaseFiles
    preprocessing: Preprocessing
    output_format: OutputFormat
    class_names: tuple[str, ...] = Field(min_length=1, max_length=1000)
    thresholds: Thresholds
    #: Only these classes may feed a critical decision (a door, an alarm).
    critical_classes: tuple[str, ...]
    platforms: tuple[Platform, ...] = Field(min_length=1)
    #: ``None``: not audited. Otherwise the audit and its signed report file.
    robustness_audit: AuditRecord | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)

    @model_validator(mode="after")
    def _consistent(self) -> ReleaseManifest:
        if self.expires <= self.created:
            raise ValueError(f"expires {self.expires} must be after created {self.created}")
        unknown = [c for c in self.critical_classes if c not in self.class_names]
        if unknown:
            raise ValueError(f"critical classes {unknown} are not among the class names")
        if len(set(self.platforms)) != len(self.platforms):
            raise ValueError(f"platforms listed twice: {self.platforms}")
        if self.robustness_audit is not None and self.robustness_audit.report in self.files.names():
            raise ValueError(f"audit report {self.robustness_audit.report!r} is a model file name")
        return self

    def model_digest(self, file_digests: dict[str, str]) -> str:
        """SHA-256 over what decides the model's detections: each model file's digest (from
        ``file_digests``, the verified ones) and the preprocessing, output format, class
        names and thresholds. What a robustness audit is bound to."""
        doc = {
            "files": {n: file_digests[n] for n in self.files.names()},
            **self.model_dump(
                mode="json",
                include={"preprocessing", "output_format", "class_names", "thresholds"},
            ),
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def signed_names(self) -> tuple[str, ...]:
        """Every file the release signs besides ``release.json``: the model file(s) and the
        audit report, if any."""
        audit = () if self.robustness_audit is None else (self.robustness_audit.report,)
        return (*self.files.names(), *audit)

    @classmethod
    def from_json(cls, data: bytes) -> ReleaseManifest:
        """Parse and check; any problem is a :class:`ManifestError` naming the field."""
        if len(data) > MAX_MANIFEST_BYTES:
            raise ManifestError(
                f"{MANIFEST_NAME}: expected at most {MAX_MANIFEST_BYTES} bytes, got {len(data)}"
            )
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{MANIFEST_NAME}: expected JSON, got {exc}") from None
        if not isinstance(raw, dict):
            raise ManifestError(f"{MANIFEST_NAME}: expected an object, got {type(raw).__name__}")
        try:
            return cls.model_validate_json(data, strict=False)
        except ValidationError as exc:
            e = exc.errors()[0]
            where = ".".join(str(p) for p in e["loc"]) or "(top)"
            raise ManifestError(f"{MANIFEST_NAME}: {where}: {e['msg']}") from None

    def to_json(self) -> bytes:
        """Canonical bytes: sorted keys, UTF-8, trailing newline."""
        obj = self.model_dump(mode="json", by_alias=True)
        return (json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()

    def expired_at(self, when: datetime) -> bool:
        return when >= self.expires


@dataclass(frozen=True)
class SignedManifest:
    """A manifest with the exact bytes it was parsed from (the bytes that were signed)."""

    manifest: ReleaseManifest
    raw: bytes


@functools.cache
def _presets() -> dict[str, dict[str, object]]:
    return {
        "yolox": {
            "preprocessing": Preprocessing(
                input_width=416, input_height=416, colour="bgr", scale=1.0, letterbox=True
            ),
            "class_names": COCO_CLASSES,
            "thresholds": Thresholds(score=0.3, nms_iou=0.45),
        },
        "yolov8": {
            "preprocessing": Preprocessing(
                input_width=640, input_height=640, colour="rgb", scale=1 / 255, letterbox=True
            ),
            "class_names": COCO_CLASSES,
            "thresholds": Thresholds(score=0.25, nms_iou=0.45),
        },
        "ssd": {
            "preprocessing": Preprocessing(
                input_width=672, input_height=384, colour="bgr", scale=1.0, letterbox=False
            ),
            # Label 1 of the Open Model Zoo pedestrian SSD; label 0 is the background.
            "class_names": ("background", "person"),
            "thresholds": Thresholds(score=0.5, nms_iou=0.45),
        },
    }


def preset_thresholds(output_format: str) -> Thresholds:
    """The known-good thresholds for ``output_format``."""
    if output_format not in _presets():
        raise ManifestError(f"output format: expected one of {FORMATS}, got {output_format!r}")
    t = _presets()[output_format]["thresholds"]
    assert isinstance(t, Thresholds)
    return t


def preset(
    output_format: str,
    *,
    name: str,
    version: int,
    files: ReleaseFiles,
    created: datetime | None = None,
    valid_for: timedelta = timedelta(days=365),
    thresholds: Thresholds | None = None,
    critical_classes: tuple[str, ...] = ("person",),
    platforms: tuple[str, ...] = PLATFORMS,
) -> ReleaseManifest:
    """A manifest with the known-good preprocessing for ``output_format``."""
    if output_format not in _presets():
        raise ManifestError(f"output format: expected one of {FORMATS}, got {output_format!r}")
    p = _presets()[output_format]
    now = created or datetime.now(UTC)
    fields = {
        "schema": SCHEMA,
        "name": name,
        "version": version,
        "created": now,
        "expires": now + valid_for,
        "files": files,
        "preprocessing": p["preprocessing"],
        "output_format": output_format,
        "class_names": p["class_names"],
        "thresholds": thresholds or p["thresholds"],
        "critical_classes": critical_classes,
        "platforms": platforms,
    }
    try:
        return ReleaseManifest.model_validate(fields, strict=False)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(x) for x in e["loc"]) or "(top)"
        raise ManifestError(f"{MANIFEST_NAME}: {where}: {e['msg']}") from None
