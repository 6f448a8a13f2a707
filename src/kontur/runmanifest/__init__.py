"""The run manifest: every component version a start of kontur ran with (issue 15 §3, ADR 0035).

"The composition of components and their versions are recorded so an investigation can be
reproduced." At every start (``kontur demo``, ``kontur run``) the supervisor collects a
:class:`RunManifest` (:mod:`~kontur.runmanifest.collector`: kontur, Python, FFmpeg as PyAV
reports it, ONNX Runtime and its execution providers, OpenVINO, OpenCV, numpy,
model-signing, the kernel, CPU and microcode, accelerator drivers, the worker's measured
sandbox, the release and config digests) and archives it with its changes since the
previous start (:mod:`~kontur.runmanifest.stored`). Every decision record names the
manifest's SHA-256. ``kontur archive manifest DATA_DIR`` prints it
(:mod:`~kontur.runmanifest.cli`).

Public surface: :class:`RunManifest` and its parts, :class:`Change`, :func:`changes`,
:func:`collect`, :class:`Readers`, :func:`record_run`, :func:`stored_manifests`,
:class:`StoredManifest`, :func:`unapproved`, and the errors :class:`ManifestError`,
:class:`ManifestInvalid`, :class:`ManifestNotFound`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kontur._private import lazy_exports

if TYPE_CHECKING:  # the names' types for mypy; at run time each is imported on first use
    from kontur.runmanifest.collector import Readers, collect, sandbox_from_report
    from kontur.runmanifest.errors import ManifestError, ManifestInvalid, ManifestNotFound
    from kontur.runmanifest.model import (
        Change,
        Ffmpeg,
        Host,
        Inference,
        Release,
        RunManifest,
        Sandbox,
        changes,
    )
    from kontur.runmanifest.stored import (
        CHANGE_KIND,
        MANIFEST_KIND,
        RunRecorded,
        StoredManifest,
        record_run,
        stored_manifests,
        unapproved,
    )

# Lazy (PEP 562): ``kontur.cli`` imports ``kontur.runmanifest.cli`` to register ``archive
# manifest``, and the collector brings the placement dispatcher and numpy (ADR 0063).
_HOME = {
    **dict.fromkeys(("Readers", "collect", "sandbox_from_report"), "collector"),
    **dict.fromkeys(("ManifestError", "ManifestInvalid", "ManifestNotFound"), "errors"),
    **dict.fromkeys(
        ("Change", "Ffmpeg", "Host", "Inference", "Release", "RunManifest", "Sandbox", "changes"),
        "model",
    ),
    **dict.fromkeys(
        ("CHANGE_KIND", "MANIFEST_KIND", "RunRecorded", "StoredManifest", "record_run",
         "stored_manifests", "unapproved"),
        "stored",
    ),
}  # fmt: skip

__all__ = [
    "CHANGE_KIND",
    "MANIFEST_KIND",
    "Change",
    "Ffmpeg",
    "Host",
    "Inference",
    "ManifestError",
    "ManifestInvalid",
    "ManifestNotFound",
    "Readers",
    "Release",
    "RunManifest",
    "RunRecorded",
    "Sandbox",
    "StoredManifest",
    "changes",
    "collect",
    "record_run",
    "sandbox_from_report",
    "stored_manifests",
    "unapproved",
]

__getattr__ = lazy_exports(__name__, _HOME)
