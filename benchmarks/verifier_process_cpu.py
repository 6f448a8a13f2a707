"""The verifier process's CPU per analysed frame in a real ``kontur demo``, next to the other
blocks' in the same run.

Run from the repository root (after the README's install)::

    python benchmarks/verifier_process_cpu.py [--source VIDEO] [--model ONNX] [--json PATH|-]

``benchmarks/verifier_bench.py`` times the verifier's core and its shell alone, with nothing
else running between its frames. This runs the whole perimeter as a site does (ingest,
worker, verifier, gate and supervisor, each its own process) and samples every block's CPU
time (user + system, ``psutil``) every 0.1 s until it exits. It reports each block's CPU per
frame over the run, startup included, and over its steady middle (30% to 85% of the run),
which leaves out the imports and the drain at the end. Defaults: PETS09-S2L1 with YOLOX-Nano
from ``../shared/data``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import typer

from _machine import machine  # the benchmarks' shared helper, beside this file
from kontur._cli import write_json

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
BLOCKS = ("ingest", "worker", "verifier", "gate")
#: The steady middle of the run, as shares of the samples.
STEADY = (0.30, 0.85)


def _sample(demo: subprocess.Popen[bytes]) -> dict[str, list[tuple[float, float]]]:
    """Each block's (wall, CPU seconds) every 0.1 s until the demo exits."""
    found: dict[str, psutil.Process] = {}
    samples: dict[str, list[tuple[float, float]]] = {b: [] for b in BLOCKS}
    while demo.poll() is None:
        try:
            for child in psutil.Process(demo.pid).children(recursive=True):
                for block in BLOCKS:
                    if block not in found and f"kontur.{block}.process" in _cmd(child):
                        found[block] = child
        except psutil.Error:
            pass
        now = time.monotonic()
        for block, proc in found.items():
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue  # it has exited: its last sample stands
            samples[block].append((now, t.user + t.system))
        time.sleep(0.1)
    return samples


def _cmd(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def _per_frame(samples: list[tuple[float, float]], frames: int, fps: float) -> dict[str, Any]:
    if len(samples) < 10 or frames <= 0 or fps <= 0:
        return {"whole_run_ms": None, "steady_ms": None}
    a, b = (samples[int(len(samples) * s)] for s in STEADY)
    steady = (b[1] - a[1]) / (b[0] - a[0]) / fps if b[0] > a[0] else None
    return {
        "whole_run_ms": round(1000 * samples[-1][1] / frames, 2),
        "steady_ms": None if steady is None else round(1000 * steady, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default=str(SHARED / "video" / "pets09_s2l1_480x360.avi"))
    ap.add_argument("--model", default=str(SHARED / "models" / "yolox_nano.onnx"))
    ap.add_argument("--json", dest="json_out", default=None, help="PATH, or - for stdout")
    args = ap.parse_args(argv)
    missing = [p for p in (args.source, args.model) if not Path(p).is_file()]
    if missing:
        print(f"verifier_process_cpu: expected existing files, missing {missing}", file=sys.stderr)
        return 2
    kontur = Path(sys.executable).with_name("kontur")
    started = machine()  # (the load average before the run)
    with tempfile.TemporaryDirectory(prefix="kontur-vcpu-") as tmp:
        out = Path(tmp) / "demo.json"
        cmd = [str(kontur), "demo", "--source", args.source, "--model", args.model,
               "--data-dir", str(Path(tmp) / "data"), "--json", str(out)]  # fmt: skip
        demo = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples = _sample(demo)
        if demo.returncode != 0 or not out.is_file():
            print(f"verifier_process_cpu: kontur demo exited {demo.returncode}", file=sys.stderr)
            return 1
        summary = json.loads(out.read_text())
    frames = sum(int(c["frames"]) for c in summary["cameras"])
    fps = float(summary["fps"])
    result = {
        "command": "python benchmarks/verifier_process_cpu.py " + " ".join(argv or sys.argv[1:]),
        "machine": started,
        "frames": frames,
        "fps": fps,
        "cpu_per_frame": {b: _per_frame(s, frames, fps) for b, s in samples.items()},
    }
    steady = result["cpu_per_frame"]
    v, w = steady["verifier"]["steady_ms"], steady["worker"]["steady_ms"]
    result["verifier_over_worker"] = round(v / w, 3) if v and w else None
    for block, r in steady.items():
        print(
            f"{block:9s} {r['whole_run_ms']} ms/frame over the run, {r['steady_ms']} steady",
            file=sys.stderr,
        )
    if args.json_out:
        try:
            write_json(Path(args.json_out), result)
        except typer.Exit as exc:  # (its one-line error is printed)
            return int(exc.exit_code)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
