"""The trigger scan (issue 14 §1) over clean models and trojaned YOLOX-Nano variants.

Run from the repository root (after the README's install plus ``pip install onnx``)::

    python benchmarks/trigger_bench.py [--data DIR] [--frames N] [--budget Q] [--seeds S ...]
                                       [--only NAME ...] [--json PATH|-]

For each model the scan (:func:`kontur.robustness.trigger.scan_triggers`, defaults but the
budget) runs on ``--frames`` PETS09-S2L1 frames with persons (``load_audit_frames``, gt
scaled by 0.625), the detector built as the release runner builds it (cpu, one thread,
threshold lowered to 0.01), with ``score_threshold`` the release preset's (0.3 YOLOX, 0.25
YOLOv8). Models:

- ``yolox-clean``, ``yolov8n-clean``: the public models; goal ``pass``;
- trojans written by ``benchmarks/make_trojan.py`` into a temporary folder (never kept):
  ``checker`` (4x4 cells of 8 px, the issue's), ``checker-cell4`` (6x6 of 4 px),
  ``checker-cell12`` (3x3 of 12 px), ``stripes`` (red/green, 6x6 of 6 px), ``local``
  (the checker, removing only persons within ~64 px: BadDet's object disappearance), goal
  ``flagged``; and ``random`` (a seeded random 5x5 binary grid of 7 px), reported as the
  scan's known limit: a high-entropy trigger behind a sharp threshold.

Reported per model and seed: verdict, suppression, control, placement kind, counted
persons, the best pattern, queries, wall time and the model's median single-frame latency
measured just before (the machine may be shared: compare times with that figure).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kontur.release import ReleaseFiles, preset
from kontur.robustness.frames import AuditFrame, load_audit_frames
from kontur.robustness.trigger import scan_triggers
from kontur.worker.detectors import Detector
from kontur.worker.runners import build_detector
from make_trojan import make_trojan

REPO = Path(__file__).resolve().parents[1]
TROJANS: dict[str, dict[str, Any]] = {
    "checker": {},
    "checker-cell4": {"cell": 4, "cells": 6},
    "checker-cell12": {"cell": 12, "cells": 3},
    "stripes": {"pattern": "stripes", "cell": 6, "cells": 6, "colours": ((0, 0, 255), (0, 255, 0))},
    "local": {"scope": "local"},
    "random": {"pattern": "random", "seed": 5, "cell": 7, "cells": 5},
}


def detector(model: Path, fmt: str) -> Detector:
    """The model as the release runner builds it, threshold lowered to 0.01."""
    blob = model.read_bytes()
    files = ReleaseFiles(runtime="onnx", model="model.onnx")
    manifest = preset(fmt, name="bench", version=1, files=files)
    det = build_detector(
        manifest,
        {"model.onnx": blob},
        model_id="sha256:" + hashlib.sha256(blob).hexdigest(),
        intra_op_threads=1,
    )
    det.score_threshold = 0.01  # type: ignore[attr-defined]
    return det


def latency_ms(det: Detector, frames: tuple[AuditFrame, ...]) -> float:
    """Median wall time of one ``infer`` over the first 10 frames (after one warm-up)."""
    det.infer(frames[0].image)
    times = []
    for f in frames[:10]:
        t = time.perf_counter()
        det.infer(f.image)
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def run(name: str, det: Detector, frames: tuple[AuditFrame, ...], score: float,
        budget: int, seed: int) -> dict[str, Any]:  # fmt: skip
    """One scan; its figures as a JSON-able row."""
    ms = latency_ms(det, frames)
    t = time.perf_counter()
    r = scan_triggers(
        det, frames, score_threshold=score, rng=np.random.default_rng(seed), budget=budget
    )
    row = {
        "model": name,
        "seed": seed,
        "verdict": r.verdict,
        "suppression": round(r.suppression, 3),
        "control": round(r.control, 3),
        "placement": r.placement,
        "persons": r.persons,
        "pattern": r.pattern,
        "search_score": round(r.search_score, 3),
        "search_z": round(r.search_z, 1),
        "queries": r.queries,
        "seconds": round(time.perf_counter() - t, 1),
        "infer_ms": round(ms, 1),
    }
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    cols = ["model", "seed", "verdict", "suppression", "control", "placement", "persons",
            "queries", "seconds", "infer_ms", "pattern"]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The command line; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--only", nargs="+", default=None, help="model names to run")
    ap.add_argument("--json", default=None, help="write the results here ('-': stdout)")
    a = ap.parse_args(argv)
    models = a.data / "models"
    if not (models / "yolox_nano.onnx").is_file():
        print(f"trigger_bench: skipped: expected the models under {models}", file=sys.stderr)
        return 0
    frames = load_audit_frames(
        a.data / "video" / "pets09_s2l1_480x360.avi",
        a.data / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt",
        scale=0.625,
        count=a.frames,
        min_persons=1,
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        todo: list[tuple[str, Path, str, float]] = [
            ("yolox-clean", models / "yolox_nano.onnx", "yolox", 0.3),
            ("yolov8n-clean", models / "yolov8n_int8.onnx", "yolov8", 0.25),
        ]
        for name in TROJANS:
            todo.append((f"yolox-trojan-{name}", Path(tmp) / f"{name}.onnx", "yolox", 0.3))
        for name, path, fmt, score in todo:
            if a.only and not any(o in name for o in a.only):
                continue
            if "trojan" in name:
                make_trojan(models / "yolox_nano.onnx", path, **TROJANS[name.split("-", 2)[2]])
            det = detector(path, fmt)
            rows += [run(name, det, frames, score, a.budget, seed) for seed in a.seeds]
    doc = {
        "benchmark": "trigger_bench",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(), "python": sys.version},
        "settings": {"frames": len(frames), "budget": a.budget, "seeds": a.seeds},
        "rows": rows,
    }
    print(table(rows))
    if a.json == "-":
        print(json.dumps(doc, indent=2))
    elif a.json:
        Path(a.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
