"""A camera knocked and back: how long the verifier's pixel checks are blind, and whether a
person hidden right after is caught (ADR 0056, ADR 0055's gap).

Run from the repository root (after the README's install)::

    python benchmarks/verifier_jolt_bench.py [--json PATH|-] [--clips pets09,cars]
                                             [--models yolox,yolov8] [--every 4.0]
                                             [--cache DIR] [--clip NAME=VIDEO ...]

It reads the clips, their honest tracks and the verifier's pictures as
``benchmarks/verifier_bench.py`` makes them (``--cache DIR``: the same directory, so each
detector runs once). The clips are those of a fixed camera: a knock is told by the picture
moving under a background.

Per clip and model, the verifier (default config) checks the honest output. At onsets every
``--every`` seconds (from 3 s, after the background is learnt) its state is copied twice and
the camera is **knocked**: for :data:`KNOCK_S` the verifier's picture (and thumbnail) is moved
:data:`KNOCK` of its width sideways and half as far down, under the tamper monitor's shift
threshold (about 3.5%), then it comes back. From the moment it is back, the worker hides
every person (``worker-suppress``, :mod:`kontur.worker.faults`).

- **blind**: seconds from the camera's return to the first frame the background model judges;
- **caught**: a finding within 1 s of the return disagrees for a reason the honest run did not
  have on that frame (as ``verifier_bench.py`` counts a catch). An onset with nobody to hide
  is not counted.

Both are measured with the verifier as it is (``resumed``: the background set aside comes back)
and, in the same run on the same copies, with that step turned off (``relearned``: the model
relearns for ``LEARN_S``, as before ADR 0056). The ratio is of their median blind times.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import typer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import verifier_bench as vb  # the bench's clips, cache and catch rule
from _machine import machine  # the benchmarks' shared helper, beside this file
from kontur._cli import write_json

#: How long the camera stays knocked (seconds).
KNOCK_S = 0.2
#: How far it is knocked: a share of the picture's width sideways, half as far down.
KNOCK = 0.025
#: The first onset (seconds): the background is learnt by then.
FIRST_S = 3.0
#: The fixed-camera clips measured by default.
DEFAULT_CLIPS = ("pets09", "cars")
MODES = ("resumed", "relearned")


def _knocked(clip: vb.Clip, i: int) -> tuple[Any, Any]:
    """Frame ``i``'s thumbnail and picture, moved as by the knock."""
    from kontur.verifier import ScenePicture

    p, thumb = clip.pictures[i], clip.thumbs[i]
    dx = round(KNOCK * p.pixels.shape[1])
    tx = round(KNOCK * thumb.shape[1])
    pixels = np.roll(np.roll(p.pixels, dx // 2, axis=0), dx, axis=1)
    thumb = np.roll(np.roll(thumb, tx // 2, axis=0), tx, axis=1)
    return thumb, ScenePicture(pixels, p.stride, p.frame_width, p.frame_height)


def _branch(
    clip: vb.Clip, model: str, verifier: Any, start: int, clean: list[Any], mode: str
) -> tuple[float | None, bool, bool, float]:
    """Knock the camera of ``verifier`` (a copy at frame ``start``), hide everyone from its
    return; returns (blind seconds or None, caught, counted, the return's pts)."""
    from kontur.worker.faults import FaultPlan, WorkerFault

    tracks = clip.tracks[model]
    fg = verifier._cameras[vb.CAMERA].foreground  # private, the bench's own copy
    if mode == "relearned":
        fg._resumed = lambda *_: None  # as before ADR 0056: no background comes back
    back = next((k for k in range(start, len(tracks)) if tracks[k].pts_s >= tracks[start].pts_s
                 + KNOCK_S - 1e-9), None)  # fmt: skip
    if back is None:
        return None, False, False, tracks[start].pts_s
    for k in range(start, back):
        thumb, picture = _knocked(clip, k)
        verifier.observe_frame(vb.CAMERA, k, tracks[k].pts_s, thumb, picture=picture)
        verifier.check(tracks[k])
    onset = tracks[back].pts_s
    fault = WorkerFault(FaultPlan("worker-suppress", onset, seed=back))
    branch = vb.Branch("worker-suppress", onset, verifier, fault)
    blind = None
    for k in range(back, len(tracks)):
        branch.step(clip, tracks[k], clean[k])
        masks = verifier._cameras[vb.CAMERA].masks.get(k)
        if blind is None and masks is not None and masks.judged:
            blind = tracks[k].pts_s - onset
        if branch.done and blind is not None:
            break
    return blind, branch.caught_at is not None, bool(branch.touched), onset


def run_model(clip: vb.Clip, model: str, every: float) -> dict[str, Any]:
    """The clean pass, and both modes branched off at each onset."""
    from kontur.config import VerifierConfig, load_config
    from kontur.verifier import Verifier, Watch

    cfg = load_config(None)
    verifier = Verifier(VerifierConfig(), Watch.from_policies(cfg.zones, cfg.policies))
    tracks = clip.tracks[model]
    end = tracks[-1].pts_s - KNOCK_S - vb.CATCH_WINDOW_S
    onsets = list(np.arange(FIRST_S, end, every))
    copies: dict[int, Any] = {}
    clean = []
    for i, tf in enumerate(tracks):
        if onsets and tf.pts_s >= onsets[0] - 1e-9:
            onsets.pop(0)
            copies[i] = copy.deepcopy(verifier)
        verifier.observe_frame(vb.CAMERA, i, tf.pts_s, clip.thumbs[i], picture=clip.pictures[i])
        clean.append(verifier.check(tf))
    out: dict[str, Any] = {"onsets": len(copies)}
    for mode in MODES:
        runs = [_branch(clip, model, copy.deepcopy(v), i, clean, mode) for i, v in copies.items()]
        blinds = [b for b, _, _, _ in runs if b is not None]
        counted = [c for _, c, n, _ in runs if n]
        out[mode] = {
            "blind_s": {
                "median": round(statistics.median(blinds), 3) if blinds else None,
                "max": round(max(blinds), 3) if blinds else None,
            },
            "suppress_injected": len(counted),
            "suppress_caught_within_1s": sum(counted),
            "rate": round(sum(counted) / len(counted), 4) if counted else None,
            "missed_returns_s": [round(t, 3) for _, c, n, t in runs if n and not c],
        }
    new, old = out["resumed"]["blind_s"]["median"], out["relearned"]["blind_s"]["median"]
    out["blind_ratio"] = round(new / old, 3) if new is not None and old else None
    return out


def _print(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="a camera knocked and back: blind time, hidden people caught")
    for col in ("clip", "model", "onsets", "blind s now", "before", "caught now", "before"):
        table.add_column(col)
    for name, models in results.items():
        for model, r in models.items():
            now, was = r["resumed"], r["relearned"]
            table.add_row(
                name, model, str(r["onsets"]),
                f"{now['blind_s']['median']} ({now['blind_s']['max']})",
                f"{was['blind_s']['median']} ({was['blind_s']['max']})",
                f"{now['suppress_caught_within_1s']}/{now['suppress_injected']}",
                f"{was['suppress_caught_within_1s']}/{was['suppress_injected']}",
            )  # fmt: skip
    Console(stderr=True).print(table)


def main(argv: list[str] | None = None) -> int:
    extra = {"knock": {"seconds": KNOCK_S, "share_of_width": KNOCK}}
    return bench_main(argv, "verifier_jolt_bench", __doc__, DEFAULT_CLIPS, run_model, extra, _print)


def bench_main(
    argv: list[str] | None,
    prog: str,
    doc: str | None,
    default_clips: tuple[str, ...],
    run: Callable[[vb.Clip, str, float], dict[str, Any]],
    extra: dict[str, Any],
    show: Callable[[dict[str, Any]], None],
) -> int:
    """The command line of this bench and of ``verifier_sway_bench.py``: ``run`` (clip,
    model, seconds between onsets) over each clip and model, ``show`` the results, and write
    them with ``extra`` to ``--json``."""
    ap = argparse.ArgumentParser(prog=prog, description=(doc or "").split("\n\n")[0])
    ap.add_argument("--json", dest="json_out", default=None, help="PATH, or - for stdout")
    ap.add_argument("--clips", default=",".join(default_clips))
    ap.add_argument("--clip", action="append", default=[], metavar="NAME=VIDEO")
    ap.add_argument("--models", default=",".join(vb.MODELS))
    ap.add_argument("--every", type=float, default=4.0, help="seconds between onsets")
    ap.add_argument("--cache", default=None, help="DIR, as verifier_bench.py's")
    args = ap.parse_args(argv)
    clips = [c.strip() for c in args.clips.split(",") if c.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    own = dict(c.split("=", 1) for c in args.clip if c.find("=") > 0)
    bad = [c for c in clips if c not in vb.CLIPS] + [m for m in models if m not in vb.MODELS]
    bad += [c for c in args.clip if c.find("=") <= 0]
    paths = {c: vb._clip_path(c) for c in clips if c in vb.CLIPS} | {
        n: Path(v) for n, v in own.items()
    }
    bad += [str(p or c) for c, p in paths.items() if p is None or not p.is_file()]
    if bad or args.every <= 0:
        print(
            f"{prog}: expected clips among {list(vb.CLIPS)} that exist, models among "
            f"{list(vb.MODELS)}, --clip NAME=VIDEO and --every > 0; got {bad or args.every}",
            file=sys.stderr,
        )
        return 2
    sys.modules["__main__"].Clip = vb.Clip  # type: ignore[attr-defined]  # the cache's pickles
    started, facts = time.time(), machine()  # (the load average before the run)
    results: dict[str, Any] = {}
    for name, path in paths.items():
        assert path is not None
        clip = vb._cached_clip(name, path, sorted(vb.MODELS), None, args.cache, retime=False)
        results[name] = {m: run(clip, m, args.every) for m in models}
    out = {
        "command": f"python benchmarks/{prog}.py " + " ".join(argv or sys.argv[1:]),
        "wall_s": round(time.time() - started, 1),
        "machine": facts,
        **extra,
        "clips": results,
    }
    show(results)
    if args.json_out:
        try:
            write_json(Path(args.json_out), out)
        except typer.Exit as exc:  # (its one-line error is printed)
            return int(exc.exit_code)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
