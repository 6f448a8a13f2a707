"""Detectors for signed releases: the manifest says how, the verified bytes say what.

:func:`build_detector` turns a verified release (its :class:`ReleaseManifest` and the
in-memory bytes of its files) into a :class:`~kontur.worker.detectors.Detector`. Steps, in
this order:

1. the platform the dispatcher chose must be one the release allows
   (:class:`PlatformNotAllowed`);
2. every file the manifest names must be among the verified bytes (:class:`ModelUnreadable`);
3. the runtime backend is built from those bytes: ONNX Runtime for ``onnx``, OpenVINO for
   ``openvino`` (:mod:`.onnx`, :mod:`.openvino`); a missing backend for the platform is a
   :class:`PlatformUnavailable`;
4. the model's input must be ``[1, 3, H, W]`` of the release's preprocessing, and its static
   output shape must be the one ``output_format`` implies (:class:`ModelFormatError`).

Per frame, :class:`ReleaseDetector` runs :func:`.preprocess.prepare`, the backend, the
format's decoder (:mod:`.decoders`) and maps the boxes back to the frame. On an accelerator,
a backend that raises is an :class:`~kontur.worker.errors.AcceleratorFault` (issue 13 §3:
a failing GPU/NPU EP is a degradation trigger); on the CPU its error stays what it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np
import supervision as sv

from kontur.worker.errors import AcceleratorFault, ModelUnreadable
from kontur.worker.runners.decoders import DECODERS, check_shape, expected_output_shape
from kontur.worker.runners.errors import PlatformNotAllowed, PlatformUnavailable
from kontur.worker.runners.onnx import OnnxRunner
from kontur.worker.runners.openvino import OpenVinoRunner
from kontur.worker.runners.preprocess import prepare
from kontur.worker.runners.simulated import FailingRunner

if TYPE_CHECKING:
    from kontur.release.manifest import ReleaseManifest
    from kontur.worker.detectors import Detector

__all__ = [
    "FailingRunner",
    "OnnxRunner",
    "OpenVinoRunner",
    "PlatformNotAllowed",
    "PlatformUnavailable",
    "ReleaseDetector",
    "Runner",
    "build_detector",
    "simulated_accelerator",
]


class Runner(Protocol):
    """A backend: one NCHW float32 tensor in, the model's first output out."""

    engine: str
    output_shape: tuple[int | None, ...]

    def __call__(self, blob: np.ndarray) -> np.ndarray: ...


class ReleaseDetector:
    """A release's model behind the detector interface ``infer(frame) -> Detections``."""

    def __init__(
        self, manifest: ReleaseManifest, runner: Runner, *, model_id: str, platform: str = "cpu"
    ) -> None:
        self.name = f"{manifest.name}-v{manifest.version}-{runner.engine}"
        self.model_id = model_id
        self.platform = platform
        self.manifest = manifest
        self.class_names: tuple[str, ...] = manifest.class_names
        self.output_format = manifest.output_format
        self.score_threshold = manifest.thresholds.score
        self.nms_threshold = manifest.thresholds.nms_iou
        self.runner = runner
        self._pre = manifest.preprocessing
        self._input_hw = (self._pre.input_height, self._pre.input_width)
        self._decode = DECODERS[manifest.output_format]
        expected = expected_output_shape(
            manifest.output_format, self._input_hw, len(self.class_names)
        )
        check_shape(runner.output_shape, expected, f"{self.name} ({manifest.output_format})")

    def infer(self, frame: np.ndarray) -> sv.Detections:
        """Detect objects in one BGR uint8 frame; boxes in frame pixels."""
        blob, transform = prepare(frame, self._pre)
        raw = self._run(blob)
        dets = self._decode(
            raw,
            self._input_hw,
            self.score_threshold,
            self.nms_threshold,
            num_classes=len(self.class_names),
        )
        return transform.to_frame(dets)

    def _run(self, blob: np.ndarray) -> np.ndarray:
        if self.platform == "cpu":
            return self.runner(blob)
        try:
            return self.runner(blob)
        except Exception as exc:  # an EP's error types are its own: any failure counts
            first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise AcceleratorFault(
                f"{self.name} on {self.platform}: expected an output, got {first}"
            ) from exc


def simulated_accelerator(
    detector: ReleaseDetector, platform: str, reset_after_calls: int | None
) -> ReleaseDetector:
    """``detector``'s CPU runner behind a simulated ``platform`` whose EP fails from its
    ``reset_after_calls``-th call on (:mod:`.simulated`; ``--inject-fault`` only)."""
    runner = FailingRunner(detector.runner, reset_after_calls)
    return ReleaseDetector(detector.manifest, runner, model_id=detector.model_id, platform=platform)


def _file(manifest: ReleaseManifest, files: dict[str, bytes], name: str) -> bytes:
    if name not in files:
        raise ModelUnreadable(
            f"release {manifest.name} v{manifest.version}: expected file {name!r} among the "
            f"verified files, got {sorted(files)}"
        )
    return files[name]


def build_detector(
    manifest: ReleaseManifest,
    files: dict[str, bytes],
    *,
    model_id: str,
    platform: str = "cpu",
    intra_op_threads: int = 1,
) -> Detector:
    """The detector a verified release describes, built from its in-memory ``files``.

    ``files`` maps the release's file names (``manifest.files``) to their verified bytes;
    ``model_id`` is what detections are archived under (the release's digest).
    """
    label = f"release {manifest.name} v{manifest.version}"
    if platform not in manifest.platforms:
        raise PlatformNotAllowed(
            f"{label}: expected a platform the release allows {list(manifest.platforms)}, "
            f"got {platform!r}"
        )
    pre = manifest.preprocessing
    input_hw = (pre.input_height, pre.input_width)
    model = _file(manifest, files, manifest.files.model)
    runner: Runner
    if manifest.files.runtime == "onnx":
        runner = OnnxRunner(
            model,
            input_hw=input_hw,
            platform=platform,
            intra_op_threads=intra_op_threads,
            label=label,
        )
    else:
        assert manifest.files.weights is not None  # ReleaseFiles checks this
        runner = OpenVinoRunner(
            model,
            _file(manifest, files, manifest.files.weights),
            input_hw=input_hw,
            platform=platform,
            intra_op_threads=intra_op_threads,
            label=label,
        )
    return ReleaseDetector(manifest, runner, model_id=model_id, platform=platform)
