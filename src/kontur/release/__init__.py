"""Signed model releases: the model, its preprocessing, thresholds and config as one unit."""

from kontur.release.manifest import (
    MANIFEST_NAME,
    ManifestError,
    Preprocessing,
    ReleaseFiles,
    ReleaseManifest,
    SignedManifest,
    Thresholds,
    preset,
)

__all__ = [
    "MANIFEST_NAME",
    "ManifestError",
    "Preprocessing",
    "ReleaseFiles",
    "ReleaseManifest",
    "SignedManifest",
    "Thresholds",
    "preset",
]
