"""Black-box adversarial patch (issue 14 §1, Thys et al. 2019): person recall lost to it.

Run from the repository root (after the README's install)::

    python benchmarks/patch_bench.py [--data DIR] [--runs pets09:yolox,tud:yolox,...]
                                     [--queries N] [--queries-yolov8 N] [--search-frames N]
                                     [--test-frames N] [--rel-size F] [--patch-px N]
                                     [--seed S] [--save-patch DIR] [--json PATH|-]

For each run (clip x model), the model is built as ``kontur eval --unsafe-onnx`` builds it
(the release preset, ONNX Runtime, CPU, one intra-op thread) with its score threshold
lowered to 0.01, and :func:`kontur.robustness.patch.attack_patch` optimises a patch with
the query budget on ``--search-frames`` frames from the first half of the clip, then
measures person recall at the preset's own threshold on ``--test-frames`` frames from the
second half (clean, control patch, optimised patch). Frames are those with at least one gt
person, evenly spaced (:func:`kontur.robustness.frames.load_audit_frames`).

Clips: PETS09-S2L1 (480x360, gt scale 0.625) and TUD-Campus (640x480, gt scale 1.0).
Models: YOLOX-Nano (``--queries``, default 2000) and YOLOv8n int8 (about 8x slower per
call: ``--queries-yolov8``, default 400). Prints a table; ``--json`` writes every figure;
``--save-patch DIR`` writes each patch (scaled up x32, nearest) and a test frame wearing it.
Skips with a message when ``DATA`` is absent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kontur.release import ReleaseFiles, preset
from kontur.robustness.frames import AuditFrame, load_audit_frames
from kontur.robustness.patch import PatchResult, apply_patch, attack_patch, placements
from kontur.worker.runners import build_detector

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from _machine import machine  # noqa: E402 - the benchmarks' shared helper, beside this file

LOW_THRESHOLD = 0.01


@dataclass(frozen=True)
class Clip:
    """A clip with MOTChallenge gt, relative to the data folder."""

    video: str
    gt: str
    scale: float


@dataclass(frozen=True)
class Model:
    """An ONNX model and its release preset."""

    path: str
    output_format: str


CLIPS = {
    "pets09": Clip("video/pets09_s2l1_480x360.avi", "mot15/PETS09-S2L1/gt/gt.txt", 0.625),
    "tud": Clip("mot15/TUD-Campus/TUD-Campus.mp4", "mot15/TUD-Campus/gt/gt.txt", 1.0),
}
MODELS = {
    "yolox": Model("models/yolox_nano.onnx", "yolox"),
    "yolov8": Model("models/yolov8n_int8.onnx", "yolov8"),
}
DEFAULT_RUNS = "pets09:yolox,tud:yolox,pets09:yolov8,tud:yolov8"


def detector(data: Path, model: Model) -> tuple[Any, float]:
    """The model behind the release runner, threshold lowered; and the preset's threshold."""
    blob = (data / model.path).read_bytes()
    manifest = preset(
        model.output_format,
        name=model.output_format,
        version=1,
        files=ReleaseFiles(runtime="onnx", model="model.onnx"),
    )
    det = build_detector(
        manifest,
        {"model.onnx": blob},
        model_id="sha256:" + hashlib.sha256(blob).hexdigest(),
        platform="cpu",
        intra_op_threads=1,
    )
    own = float(det.score_threshold)  # type: ignore[attr-defined]
    det.score_threshold = LOW_THRESHOLD  # type: ignore[attr-defined]
    return det, own


def split(
    frames: tuple[AuditFrame, ...], search: int, test: int
) -> tuple[list[AuditFrame], list[AuditFrame]]:
    """``search`` frames evenly spread over the first half, ``test`` over the second."""
    half = len(frames) // 2

    def spread(part: tuple[AuditFrame, ...], n: int) -> list[AuditFrame]:
        at = np.linspace(0, len(part) - 1, min(n, len(part))).round().astype(int)
        return [part[i] for i in dict.fromkeys(at.tolist())]

    return spread(frames[:half], search), spread(frames[half:], test)


def save(out: Path, name: str, result: PatchResult, frame: AuditFrame, rel_size: float) -> None:
    """The patch (x32, nearest) and a test frame wearing it (x2), as PNGs."""
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    big = cv2.resize(result.patch, None, fx=32, fy=32, interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(out / f"patch-{name}.png"), big)
    worn = apply_patch(frame.image, result.patch, placements(frame.boxes, rel_size, None))
    cv2.imwrite(
        str(out / f"worn-{name}.png"),
        cv2.resize(worn, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST),
    )


def run(args: argparse.Namespace, clip_name: str, model_name: str) -> dict[str, Any]:
    """One clip x model: attack, measure, time."""
    clip, model = CLIPS[clip_name], MODELS[model_name]
    frames = load_audit_frames(
        args.data / clip.video,
        args.data / clip.gt,
        scale=clip.scale,
        count=4 * (args.search_frames + args.test_frames),
        min_persons=1,
    )
    search, test = split(frames, args.search_frames, args.test_frames)
    det, own = detector(args.data, model)
    queries = args.queries if model_name == "yolox" else args.queries_yolov8
    t0 = time.perf_counter()
    result = attack_patch(
        det,
        search,
        test,
        score_threshold=own,
        queries=queries,
        rng=np.random.default_rng(args.seed),
        patch_px=args.patch_px,
        rel_size=args.rel_size,
        batch=args.search_frames,
    )
    seconds = time.perf_counter() - t0
    if args.save_patch:
        save(args.save_patch, f"{clip_name}-{model_name}", result, test[0], args.rel_size)
    doc = {k: v for k, v in asdict(result).items() if not isinstance(v, np.ndarray)}
    doc["patch"] = result.patch.tolist()
    calls = result.queries + 3 * len(test)
    return {
        "clip": clip_name,
        "model": model_name,
        "score_threshold": own,
        "seconds": round(seconds, 1),
        "ms_per_call": round(1000 * seconds / calls, 1),
        "detector_calls": calls,
        **doc,
    }


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    head = (
        "| clip | model | search/test frames | test persons | queries | time | "
        "recall clean | control | patch | drop (control - patch) | objective |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r['clip']} | {r['model']} | {len(r['train_frames'])}/{len(r['test_frames'])} "
            f"| {r['persons']} | {r['queries']} | {r['seconds']:.0f} s "
            f"({r['ms_per_call']:.0f} ms/call) | {r['recall_clean']:.3f} "
            f"| {r['recall_control']:.3f} | {r['recall_patch']:.3f} | {100 * r['drop']:+.1f} pt "
            f"| {r['objective_start']:.1f} -> {r['objective_end']:.1f} |"
        )
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--runs", default=DEFAULT_RUNS, help="clip:model,... (default: %(default)s)")
    p.add_argument("--queries", type=int, default=2000, help="YOLOX-Nano budget")
    p.add_argument("--queries-yolov8", type=int, default=400, help="YOLOv8n int8 budget")
    p.add_argument("--search-frames", type=int, default=8)
    p.add_argument("--test-frames", type=int, default=40)
    p.add_argument("--rel-size", type=float, default=0.3)
    p.add_argument("--patch-px", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-patch", type=Path, default=None, metavar="DIR")
    p.add_argument("--json", default=None, metavar="PATH|-")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if not (args.data / "models").is_dir():
        print(f"skip: {args.data} has no models/ (the shared test data is absent)")
        return 0
    rows = []
    for item in args.runs.split(","):
        clip_name, model_name = item.split(":")
        rows.append(run(args, clip_name, model_name))
        print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(rows), file=sys.stderr if args.json == "-" else sys.stdout)
    doc = {
        "benchmark": "patch_bench",
        "command": "python benchmarks/patch_bench.py " + " ".join(argv or sys.argv[1:]),
        "settings": {k: str(v) for k, v in vars(args).items() if k != "json"},
        "machine": machine(),
        "runs": rows,
    }
    if args.json == "-":
        print(json.dumps(doc, indent=2))
    elif args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
