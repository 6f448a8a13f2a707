"""Start-up measurement for the placement dispatcher: where its cache lives.

The bench itself (:mod:`kontur.worker.bench`) runs inside the worker's sandbox for a run
(:mod:`kontur.worker.prepare`), so the supervisor never decodes a source or loads an
inference runtime; ``kontur placement explain`` runs it in its own process.
"""

from __future__ import annotations

import os
from pathlib import Path

from kontur.worker.bench import bench_frames, box_f1, measure_platforms

__all__ = ["bench_frames", "box_f1", "cache_path", "measure_platforms"]


def cache_path() -> Path:
    """``$XDG_CACHE_HOME/kontur/placement.json`` (or ``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kontur" / "placement.json"
