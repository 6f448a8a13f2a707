"""A fixed camera that keeps swaying: how long a person hidden meanwhile passes unseen
(ADR 0058).

Run from the repository root (after the README's install)::

    python benchmarks/verifier_sway_bench.py [--json PATH|-] [--clips pets09,cars]
                                             [--models yolox,yolov8] [--every 4.0]
                                             [--cache DIR] [--clip NAME=VIDEO ...]

It reads the clips, their honest tracks and the verifier's pictures as
``benchmarks/verifier_bench.py`` makes them (``--cache DIR``: the same directory, so each
detector runs once). The clips are those of a fixed camera.

Per clip and model, the verifier (default config) checks the honest output. At onsets every
``--every`` seconds, from :data:`FIRST_S` (the camera has been judged long enough to count as
fixed), its state is copied twice, and the camera **sways** for :data:`SWAY_S`: the
verifier's picture (and thumbnail) moves sideways up to :data:`SWAY` of its width each way,
once a second. From the sway's start the worker hides every person (``worker-suppress``,
:mod:`kontur.worker.faults`).

- **unseen**: seconds of the sway during which the worker hid someone and the finding still
  agreed: a hidden person passed unseen;
- **blind after**: seconds from the sway's start to the first ``blind`` reason;
- **clear after**: seconds from the sway's end to the first frame without one.

Both are measured with the verifier as it is (``blind``) and, in the same run on the same
copies, with ADR 0058's check turned off (``silent``: as before it). The ratio is of their
total unseen seconds.
"""

from __future__ import annotations

import copy
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import verifier_bench as vb  # the bench's clips, cache and what a fault touched
from verifier_jolt_bench import bench_main  # the same command line

#: How long the camera sways (seconds)...
SWAY_S = 8.0
#: ...and how far: a share of the picture's width each way (2 pixels of a 160-pixel picture).
SWAY = 0.0125
#: The first onset (seconds): the camera has been judged for ADR 0058's 10 s by then.
FIRST_S = 12.0
#: After the sway, the branch runs this long more (seconds): the relearn and half the window.
AFTER_S = 6.0
DEFAULT_CLIPS = ("pets09", "cars")
MODES = ("blind", "silent")


def _swayed(clip: vb.Clip, i: int, t: float) -> tuple[Any, Any]:
    """Frame ``i``'s thumbnail and picture, ``t`` seconds into the sway."""
    from kontur.verifier import ScenePicture

    p, thumb = clip.pictures[i], clip.thumbs[i]
    wave = math.sin(2 * math.pi * t)
    pixels = np.roll(p.pixels, round(SWAY * p.pixels.shape[1] * wave), axis=1)
    thumb = np.roll(thumb, round(SWAY * thumb.shape[1] * wave), axis=1)
    return thumb, ScenePicture(pixels, p.stride, p.frame_width, p.frame_height)


def _branch(clip: vb.Clip, model: str, verifier: Any, start: int, mode: str) -> dict[str, Any]:
    """Sway the camera of ``verifier`` (a copy at frame ``start``) and hide everyone."""
    from kontur.worker.faults import FaultPlan, WorkerFault

    tracks = clip.tracks[model]
    if mode == "silent":  # as before ADR 0058 (private: the bench's own copy)
        verifier._cameras[vb.CAMERA].blindness.observe = lambda *_: None
    onset = tracks[start].pts_s
    fault = WorkerFault(FaultPlan("worker-suppress", onset, seed=start))
    w, h = clip.size
    unseen, blind_at, clear_at, last = 0.0, None, None, onset
    for k in range(start, len(tracks)):
        t = tracks[k].pts_s - onset
        if t > SWAY_S + AFTER_S:
            break
        thumb, picture = _swayed(clip, k, t) if t < SWAY_S else (clip.thumbs[k], clip.pictures[k])
        verifier.observe_frame(vb.CAMERA, k, tracks[k].pts_s, thumb, picture=picture)
        faulted = fault.apply(tracks[k], w, h)
        finding = verifier.check(faulted)
        blind = any(r.startswith("blind:") for r in finding.reasons)
        if t < SWAY_S and finding.agree and vb._affected(tracks[k], faulted):
            unseen += tracks[k].pts_s - last
        if blind and blind_at is None:
            blind_at = t
        if t >= SWAY_S and not blind and clear_at is None:
            clear_at = t - SWAY_S
        last = tracks[k].pts_s
    return {"unseen_s": unseen, "blind_after_s": blind_at, "clear_after_s": clear_at}


def run_model(clip: vb.Clip, model: str, every: float) -> dict[str, Any]:
    """The clean pass, and both modes branched off at each onset."""
    from kontur.config import VerifierConfig, load_config
    from kontur.verifier import Verifier, Watch

    cfg = load_config(None)
    verifier = Verifier(VerifierConfig(), Watch.from_policies(cfg.zones, cfg.policies))
    tracks = clip.tracks[model]
    onsets = list(np.arange(FIRST_S, tracks[-1].pts_s - SWAY_S - AFTER_S, every))
    copies: dict[int, Any] = {}
    for i, tf in enumerate(tracks):
        if onsets and tf.pts_s >= onsets[0] - 1e-9:
            onsets.pop(0)
            copies[i] = copy.deepcopy(verifier)
        verifier.observe_frame(vb.CAMERA, i, tf.pts_s, clip.thumbs[i], picture=clip.pictures[i])
        verifier.check(tf)
    out: dict[str, Any] = {"onsets": len(copies)}
    for mode in MODES:
        runs = [_branch(clip, model, copy.deepcopy(v), i, mode) for i, v in copies.items()]
        out[mode] = {
            "unseen_s": round(sum(r["unseen_s"] for r in runs), 2),
            "unseen_s_max": round(max((r["unseen_s"] for r in runs), default=0.0), 2),
            **{
                f"{key}_median": _median([r[key] for r in runs])
                for key in ("blind_after_s", "clear_after_s")
            },
            "never_blind": sum(r["blind_after_s"] is None for r in runs),
        }
    now, was = out["blind"]["unseen_s"], out["silent"]["unseen_s"]
    out["unseen_ratio"] = round(now / was, 3) if was else None
    return out


def _median(values: list[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return round(statistics.median(found), 2) if found else None


def _print(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="a fixed camera swaying: hidden people unseen, total/max (s)")
    for col in ("clip", "model", "sways", "unseen now", "before", "blind at", "clears"):
        table.add_column(col)
    for name, models in results.items():
        for model, r in models.items():
            now, was = r["blind"], r["silent"]
            table.add_row(
                name, model, str(r["onsets"]),
                f"{now['unseen_s']}/{now['unseen_s_max']}",
                f"{was['unseen_s']}/{was['unseen_s_max']}",
                str(now["blind_after_s_median"]), str(now["clear_after_s_median"]),
            )  # fmt: skip
    Console(stderr=True).print(table)


def main(argv: list[str] | None = None) -> int:
    extra = {"sway": {"seconds": SWAY_S, "share_of_width": SWAY, "period_s": 1.0}}
    return bench_main(argv, "verifier_sway_bench", __doc__, DEFAULT_CLIPS, run_model, extra, _print)


if __name__ == "__main__":
    raise SystemExit(main())
