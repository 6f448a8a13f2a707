"""What a perimeter costs to start and stop: ``kontur demo`` on a one-second clip, whose run is
almost all start-up (the sandboxed shape probe and bench, the blocks' imports) and shutdown;
and what any command line costs to start (``kontur version``: the imports and the mounting of
every sub-command, paid by each ``kontur`` call).

Run from the repository root (after the README's install)::

    python benchmarks/perimeter_start_bench.py [--baseline REV] [--runs 3] [--json PATH|-]

The clip is the first 10 frames of PETS09-S2L1 from ``../shared/data`` (or ``--source``), cut
to H.264 at 10 fps; the model is YOLOX-Nano as a bare ONNX file, so the run signs a
throwaway release and probes its output shape first, as a new user's first demo does.
Each run's wall time and the CPU (user + system) of the whole process tree are recorded,
with :data:`CLI_RUNS` ``kontur version`` calls after each demo (medians: ``cli``).
Both trees are compiled to bytecode first, as the suite does (``PYTHONDONTWRITEBYTECODE``
would otherwise make every process compile kontur again).
With ``--baseline REV``, the same runs alternate with the tree at ``REV`` (a ``git worktree``
put first on ``PYTHONPATH``, which every block inherits), and the ratio of the medians is
reported: current ÷ baseline.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import typer
from rich.console import Console
from rich.table import Table

from _machine import machine  # the benchmarks' shared helper, beside this file
from kontur._cli import write_json

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
KONTUR = Path(sys.executable).with_name("kontur")
FRAMES, FPS = 10, 10
#: ``kontur version`` runs per demo run: a command line's own start (imports and mounting).
CLI_RUNS = 3


def cut(source: Path, out: Path) -> Path:
    """The first :data:`FRAMES` pictures of ``source`` as H.264 in MP4."""
    with av.open(str(source)) as inp, av.open(str(out), "w") as dst:
        stream = inp.streams.video[0]
        enc = dst.add_stream("libx264", rate=FPS)
        enc.width, enc.height, enc.pix_fmt = stream.width, stream.height, "yuv420p"
        enc.options = {"g": str(2 * FPS), "bf": "0", "crf": "20"}
        for i, frame in enumerate(inp.decode(stream)):
            if i >= FRAMES:
                break
            again = av.VideoFrame.from_ndarray(frame.to_ndarray(format="bgr24"), "bgr24")
            again.pts, again.time_base = i, Fraction(1, FPS)
            for packet in enc.encode(again):
                dst.mux(packet)
        for packet in enc.encode(None):
            dst.mux(packet)
    return out


@contextlib.contextmanager
def worktree(rev: str, where: Path) -> Iterator[Path]:
    """The repository at ``rev``, checked out beside the scratch files, removed afterwards."""
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(where), rev], check=True
    )
    try:
        yield where / "src"
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(where)], check=False
        )


def _timed(args: list[str], src: Path | None) -> dict[str, float]:
    """``kontur ARGS`` (from ``src`` when given): its wall time and its tree's CPU."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    r = subprocess.run([str(KONTUR), *args], capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        tail = " ".join(r.stderr.split())[-300:]
        raise SystemExit(f"kontur {args[0]}: expected exit 0, got {r.returncode}: {tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


def demo(clip: Path, model: Path, scratch: Path, src: Path | None) -> dict[str, float]:
    """One ``kontur demo`` on ``clip``."""
    data = scratch / f"d-{time.monotonic_ns()}"
    return _timed(
        ["demo", "--source", str(clip), "--model", str(model), "--data-dir", str(data),
         "--json", str(scratch / "summary.json")],
        src,
    )  # fmt: skip


def _summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "runs": runs,
        "wall_s_median": round(statistics.median(r["wall_s"] for r in runs), 2),
        "cpu_s_median": round(statistics.median(r["cpu_s"] for r in runs), 2),
    }


def bench(source: Path, model: Path, runs: int, baseline: str | None) -> dict[str, Any]:
    """Alternating runs of the current tree and, when given, the baseline revision."""
    with tempfile.TemporaryDirectory(prefix="kontur-start-") as tmp:
        scratch = Path(tmp)
        clip = cut(source, scratch / "clip.mp4")
        with contextlib.ExitStack() as stack:
            old = (
                None
                if baseline is None
                else stack.enter_context(worktree(baseline, scratch / "wt"))
            )
            for src in filter(None, (REPO / "src", old)):
                compileall.compile_dir(src / "kontur", quiet=2)
            trees = {"current": None} if old is None else {"baseline": old, "current": None}
            found: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
            cli: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
            for _ in range(runs):
                for key, src in trees.items():
                    found[key].append(demo(clip, model, scratch, src))
                    cli[key] += [_timed(["version"], src) for _ in range(CLI_RUNS)]
    out: dict[str, Any] = {k: {**_summary(v), "cli": _summary(cli[k])} for k, v in found.items()}
    if baseline is not None:
        out["baseline"]["rev"] = baseline
        for key in ("wall_s_median", "cpu_s_median"):
            out[f"ratio_{key}"] = round(out["current"][key] / out["baseline"][key], 3)
            out[f"ratio_cli_{key}"] = round(
                out["current"]["cli"][key] / out["baseline"]["cli"][key], 3
            )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default=str(SHARED / "video" / "pets09_s2l1_480x360.avi"))
    ap.add_argument("--model", default=str(SHARED / "models" / "yolox_nano.onnx"))
    ap.add_argument("--runs", type=int, default=3, help="runs of each tree (alternating)")
    ap.add_argument("--baseline", default=None, help="a git revision to compare with")
    ap.add_argument("--json", dest="json_out", default=None, help="PATH, or - for stdout")
    args = ap.parse_args(argv)
    missing = [p for p in (args.source, args.model) if not Path(p).is_file()]
    if missing or args.runs < 1:
        print(f"perimeter_start_bench: expected files and --runs >= 1, got {missing or args.runs}",
              file=sys.stderr)  # fmt: skip
        return 2
    result = {
        "command": "python benchmarks/perimeter_start_bench.py " + " ".join(argv or sys.argv[1:]),
        "machine": machine(),
        "frames": FRAMES,
        **bench(Path(args.source), Path(args.model), args.runs, args.baseline),
    }
    if args.json_out:
        try:
            write_json(Path(args.json_out), result)
        except typer.Exit as exc:  # (its one-line error is printed)
            return int(exc.exit_code)
        if args.json_out == "-":
            return 0
    _print(result)
    return 0


def _print(result: dict[str, Any]) -> None:
    table = Table(title=f"kontur demo on {FRAMES} frames: start and stop")
    for col in ("tree", "demo wall s", "demo CPU s", "version wall s"):
        table.add_column(col)
    for key in ("baseline", "current"):
        if key in result:
            r = result[key]
            name = f"{key} {r.get('rev', '')}".strip()
            table.add_row(
                name, f"{r['wall_s_median']:.2f}", f"{r['cpu_s_median']:.2f}",
                f"{r['cli']['wall_s_median']:.2f}",
            )  # fmt: skip
    Console(width=80).print(table)
    if "ratio_wall_s_median" in result:
        print(f"current / baseline: demo wall {result['ratio_wall_s_median']}, "
              f"CPU {result['ratio_cpu_s_median']}; kontur version wall "
              f"{result['ratio_cli_wall_s_median']}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
