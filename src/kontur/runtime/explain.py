"""``kontur placement explain``: the dispatcher's decision, without starting the perimeter."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kontur.config import Config
from kontur.ingest.source import default_source, probe
from kontur.placement import choose, load_catalogue
from kontur.placement.available import available_platforms
from kontur.placement.measure import MeasurementCache
from kontur.placement.risk import Placement
from kontur.runtime.bench_setup import bench_frames, cache_path, measure_platforms
from kontur.runtime.perimeter import _load_model

__all__ = ["explain_placement"]


def explain_placement(config: Config, source: str | None, model: Path | None) -> Placement:
    """Bench (or reuse the cached bench) and place one detect-track task."""
    from kontur.worker.detectors import HogPersonDetector, YoloxOnnxDetector
    from kontur.worker.process import PROVIDERS

    src = source or config.cameras[0].source or default_source()
    probe(src)
    data = _load_model(model) if model else None
    w = config.worker

    def make(platform: str):  # type: ignore[no-untyped-def]
        if data is None:
            return HogPersonDetector(score_threshold=w.score_threshold).infer
        return YoloxOnnxDetector(
            data,
            intra_op_threads=w.intra_op_threads,
            score_threshold=w.score_threshold,
            providers=PROVIDERS[platform],
        ).infer

    key = "sha256:" + hashlib.sha256(data).hexdigest() if data else "builtin:opencv-hog"
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
