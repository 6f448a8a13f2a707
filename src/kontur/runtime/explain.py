"""``kontur placement explain``: the dispatcher's decision, without starting the perimeter."""

from __future__ import annotations

import tempfile
from pathlib import Path

from kontur.clock import SystemClock
from kontur.config import Config
from kontur.ingest.source import default_source, probe
from kontur.placement import choose, load_catalogue
from kontur.placement.available import available_platforms
from kontur.placement.measure import MeasurementCache
from kontur.placement.risk import Placement
from kontur.runtime.bench_setup import bench_frames, cache_path, measure_platforms
from kontur.runtime.models import format_from_output_shape, prepare_release
from kontur.worker.errors import ModelFormatError

__all__ = ["explain_placement"]


def _guess_in_process(model: Path) -> str:
    """The format of a bare ONNX model (this command benches in its own process anyway)."""
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for a bad model
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFormatError(f"model {model}: expected an ONNX model, got {first}") from None
    return format_from_output_shape(model, tuple(sess.get_outputs()[0].shape))


def explain_placement(config: Config, source: str | None, model: Path | None) -> Placement:
    """Bench (or reuse the cached bench) and place one detect-track task."""
    from kontur.worker.detectors import HogPersonDetector
    from kontur.worker.runners import build_detector

    src = source or config.cameras[0].source or default_source()
    probe(src)
    w = config.worker
    key = "builtin:opencv-hog"
    prepared = None
    if model is not None:
        with tempfile.TemporaryDirectory(prefix="kontur-explain-") as tmp:
            prepared = prepare_release(
                data_dir=Path(tmp), clock=SystemClock(), model=model, guess=_guess_in_process
            )
        key = prepared.release.digest

    def make(platform: str):  # type: ignore[no-untyped-def]
        if prepared is None:
            return HogPersonDetector(score_threshold=w.score_threshold).infer
        return build_detector(
            prepared.release.manifest.manifest,
            prepared.release.files,
            model_id=prepared.model_id,
            platform=platform,
            intra_op_threads=w.intra_op_threads,
        ).infer

    frames = bench_frames(src, config.placement.bench_frames)
    measured = measure_platforms(
        available_platforms(), make, frames, key, MeasurementCache(cache_path())
    )
    pc = config.placement
    catalogue = load_catalogue(Path(pc.catalogue) if pc.catalogue else None)
    return choose(
        f"detect-track:{config.cameras[0].id}",
        "detect-track",
        measured,
        catalogue,
        pc.sla,
        pc.tie_margin,
    )
