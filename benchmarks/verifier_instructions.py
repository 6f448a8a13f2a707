"""The verifier's instructions per analysed frame, counted by valgrind: an A/B load cannot move.

Run from the repository root, after ``verifier_bench.py --cache DIR`` kept the clip's tracks::

    python benchmarks/verifier_instructions.py --cache DIR [--clip pets09] [--model yolox]
                                               [--frames 100] [--json PATH|-]

CPU time on a shared 2-core VM varies by ±15% between identical runs, more than most changes
to the verifier. Instruction counts do not. The verifier (``observe_frame`` and ``check``, as
the bench calls them) runs under ``valgrind --tool=callgrind`` over the clip's first 5 +
``--frames`` frames, then over its first 5; the difference over ``--frames`` is the figure.
Numpy's lazy imports (``numpy.ma``, ``heapq``) are done before either count begins, so that
one-time work does not land in the frames counted. Needs ``valgrind`` (Debian package).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WARM = 5


def _inner(cache: str, clip_name: str, model: str, frames: int) -> None:
    """Run the verifier over the clip's first WARM + ``frames`` frames (under valgrind)."""
    import heapq  # noqa: F401  (one-time lazy imports, out of the counts)

    import numpy.ma  # noqa: F401

    sys.path.insert(0, str(HERE))
    import verifier_bench as vb
    from kontur.config import VerifierConfig, load_config
    from kontur.verifier import Verifier, Watch

    sys.modules["__main__"].Clip = vb.Clip  # type: ignore[attr-defined]  # pickled from there
    path = (vb._clip_path(clip_name) if clip_name in vb.CLIPS else None) or Path(clip_name)
    clip = vb._cached_clip(clip_name, path, sorted(vb.MODELS), None, cache, retime=False)
    cfg = load_config(None)
    verifier = Verifier(VerifierConfig(), Watch.from_policies(cfg.zones, cfg.policies))
    for i, tf in enumerate(clip.tracks[model][: WARM + frames]):
        verifier.observe_frame(vb.CAMERA, i, tf.pts_s, clip.thumbs[i], picture=clip.pictures[i])
        verifier.check(tf)


def _count(args: argparse.Namespace, frames: int) -> int:
    cmd = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, __file__, "--inner", "--cache", args.cache, "--clip", args.clip,
        "--model", args.model, "--frames", str(frames),
    ]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or found is None:
        tail = run.stderr.strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"verifier_instructions: expected a callgrind count, got {tail[0]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", required=True, help="DIR the verifier bench kept its clips in")
    ap.add_argument(
        "--clip", default="pets09", help="a public clip, or the NAME of a bench --clip NAME=VIDEO"
    )
    ap.add_argument("--model", default="yolox", choices=("yolox", "yolov8"))
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--json", dest="json_out", default=None, help="PATH, or - for stdout")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.inner:
        _inner(args.cache, args.clip, args.model, args.frames)
        return 0
    if shutil.which("valgrind") is None or args.frames < 1:
        print("verifier_instructions: expected valgrind on PATH and --frames >= 1", file=sys.stderr)
        return 2
    per_frame = (_count(args, args.frames) - _count(args, 0)) / args.frames
    out = {"clip": args.clip, "model": args.model, "frames": args.frames,
           "instructions_per_frame": round(per_frame)}  # fmt: skip
    if args.json_out == "-":
        print(json.dumps(out))
    else:
        print(f"{args.clip} / {args.model}: {per_frame / 1e6:.3f} M instructions per frame "
              f"({args.frames} frames after {WARM})", file=sys.stderr)  # fmt: skip
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
