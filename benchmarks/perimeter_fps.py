"""Throughput of the whole kontur perimeter against the bare loop a user would write.

Run from the repository root (after the README's install)::

    python benchmarks/perimeter_fps.py [--video V] [--model M] [--repeats N] [--json OUT]

Measured in the same run, interleaved per repeat (baseline 1 thread, baseline 2 threads,
perimeter), each in its own process:

- **baseline**: PyAV decode (bgr24) → ``YoloxOnnxDetector`` (kontur's default thresholds) →
  ``CameraTracker`` (ByteTrack) over the whole clip, with ``intra_op_threads`` 1 and 2.
  ``loop fps`` = frames / wall seconds of the loop (model already loaded);
  ``process wall`` = the whole child process, interpreter start and model load included.
  Peak memory is the child's own ``ru_maxrss``.
- **perimeter**: ``kontur demo --source V --model M --data-dir TMP --json TMP/summary.json``
  with a fresh ``XDG_CACHE_HOME`` (so the placement bench runs every time, as on a first
  start). ``summary fps`` = the summary's ``fps`` (frames / elapsed of the supervised run:
  process tree start → last process stopped); ``end-to-end fps`` = frames / wall time of the
  whole command (interpreter start, config, probe, model load, placement bench, run, summary).
  Per-process peak memory is the summary's ``peak_rss_mb`` (VmHWM).

The overhead ratio is perimeter fps / baseline fps at the worker's thread count
(``load_config().worker.intra_op_threads``) and, for reference, against 2 threads. Medians
over ``--repeats``.

While the perimeter runs, the script also polls ``/proc/<pid>/maps`` of the verifier and gate
processes and warns if onnxruntime or OpenCV is ever mapped there (the test suite checks this
authoritatively; here it is a warning, never a failure).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
DEFAULT_VIDEO = SHARED / "video" / "pets09_s2l1_480x360.avi"
DEFAULT_MODEL = SHARED / "models" / "yolox_nano.onnx"

#: Processes that must never load an inference runtime or OpenCV (DESIGN.md: verifier, gate).
CLEAN_MODULES = {"verifier": "kontur.verifier.process", "gate": "kontur.gate.process"}
FORBIDDEN_LIBS = ("onnxruntime", "cv2", "libopencv")


# --------------------------------------------------------------------------- baseline child


def baseline_child(video: str, model: str, threads: int) -> dict[str, Any]:
    """The bare loop; runs in its own process and returns its figures (printed as JSON)."""
    import av

    from kontur.config import load_config
    from kontur.worker.detectors import YoloxOnnxDetector
    from kontur.worker.tracking import CameraTracker

    w = load_config().worker
    det = YoloxOnnxDetector(
        Path(model).read_bytes(),
        score_threshold=w.score_threshold,
        nms_threshold=w.nms_threshold,
        intra_op_threads=threads,
    )
    frames = 0
    t_dec = t_inf = t_trk = 0.0
    pc = time.perf_counter
    t0 = pc()
    with av.open(video) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        tracker = CameraTracker(float(rate) if rate else 25.0, det.class_names)
        it = container.decode(stream)
        while True:
            a = pc()
            fr = next(it, None)
            if fr is None:
                break
            img = fr.to_ndarray(format="bgr24")
            b = pc()
            dets = det.infer(img)
            c = pc()
            tracker.update(dets)
            d = pc()
            t_dec += b - a
            t_inf += c - b
            t_trk += d - c
            frames += 1
    loop_s = pc() - t0
    ms = 1000.0 / max(frames, 1)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "threads": threads,
        "frames": frames,
        "loop_s": round(loop_s, 4),
        "fps": round(frames / loop_s, 2) if loop_s > 0 else 0.0,
        "decode_ms": round(t_dec * ms, 3),
        "infer_ms": round(t_inf * ms, 3),
        "track_ms": round(t_trk * ms, 3),
        # whole process (model load included), all threads
        "cpu_ms_per_frame": round((ru.ru_utime + ru.ru_stime) * ms, 2),
        # Linux: kilobytes
        "peak_rss_mb": round(ru.ru_maxrss / 1024, 1),
    }


def child_env(src: Path | None, **extra: str) -> dict[str, str]:
    """The environment for measured children: ``--src`` (a kontur source tree) goes first
    on ``PYTHONPATH`` so that baseline and perimeter import the same, frozen code."""
    env = dict(os.environ, **extra)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(src)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
    return env


def run_baseline(video: Path, model: Path, threads: int, src: Path | None) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--_baseline-child",
        str(threads),
        "--video",
        str(video),
        "--model",
        str(model),
    ]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=child_env(src))
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"baseline ({threads} thread(s)) failed:\n{proc.stderr[-2000:]}")
    res: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_wall_s"] = round(wall, 3)
    res["loadavg_1m_after"] = _load1()
    res["e2e_fps"] = round(res["frames"] / wall, 2)
    return res


# --------------------------------------------------------------------------- perimeter


def _children_by_module() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {k: [] for k in CLEAN_MODULES}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                cmd = fh.read().split(b"\0")
        except OSError:
            continue
        for name, mod in CLEAN_MODULES.items():
            if mod.encode() in cmd:
                found[name].append(int(entry.name))
    return found


def _forbidden_maps(pid: int) -> set[str]:
    try:
        with open(f"/proc/{pid}/maps") as fh:
            text = fh.read()
    except OSError:
        return set()
    return {lib for lib in FORBIDDEN_LIBS if lib in text}


def run_perimeter(video: Path, model: Path, src: Path | None) -> dict[str, Any]:
    kontur = Path(sys.executable).with_name("kontur")
    tmp = Path(tempfile.mkdtemp(prefix="kontur-bench-"))
    try:
        out = tmp / "summary.json"
        env = child_env(src, XDG_CACHE_HOME=str(tmp / "cache"))
        cmd = [
            str(kontur),
            "demo",
            "--source",
            str(video),
            "--model",
            str(model),
            "--data-dir",
            str(tmp / "data"),
            "--json",
            str(out),
        ]
        seen: dict[str, set[int]] = {k: set() for k in CLEAN_MODULES}
        dirty: dict[str, set[str]] = {k: set() for k in CLEAN_MODULES}
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        while proc.poll() is None:
            for name, pids in _children_by_module().items():
                for pid in pids:
                    seen[name].add(pid)
                    dirty[name] |= _forbidden_maps(pid)
            time.sleep(0.5)
        wall = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"kontur demo failed (exit {proc.returncode}):\n{err[-2000:]}")
        summary = json.loads(out.read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    frames = sum(int(c["frames"]) for c in summary["cameras"])
    return {
        "frames": frames,
        "elapsed_s": summary["elapsed_s"],
        "fps": summary["fps"],
        "command_wall_s": round(wall, 3),
        "e2e_fps": round(frames / wall, 2),
        # the whole process tree of the command (reaped descendants), startup included
        "cpu_ms_per_frame": round(cpu_s * 1000.0 / max(frames, 1), 2),
        "loadavg_1m_after": _load1(),
        "processes": {p["name"]: p["peak_rss_mb"] for p in summary["processes"]},
        "restarts": sum(int(p.get("restarts", 0)) for p in summary["processes"]),
        "platform": summary["placement"][0]["platform"] if summary.get("placement") else None,
        "detector": summary.get("detector", {}).get("name"),
        "clean_check": {
            name: {"observed": bool(seen[name]), "forbidden": sorted(dirty[name])}
            for name in CLEAN_MODULES
        },
    }


# --------------------------------------------------------------------------- machine info


def machine_info() -> dict[str, Any]:
    import av
    import onnxruntime

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        load = []
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "av": av.__version__,
        "platform": platform.platform(),
        "loadavg_start": load,
    }


def _git_info() -> dict[str, Any]:
    def git(*a: str) -> str:
        r = subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""

    return {"head": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "src"))}


def _load1() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 2) if xs else 0.0


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", dest="json_out", type=Path, default=None)
    ap.add_argument(
        "--src",
        type=Path,
        default=None,
        help="kontur source dir to measure instead of the installed one (put first on "
        "PYTHONPATH of every measured process), e.g. a `git archive HEAD src` snapshot",
    )
    ap.add_argument("--_baseline-child", dest="child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    for what, p in (("video", args.video), ("model", args.model)):
        if not p.is_file():
            print(f"perimeter_fps: {what} not found at {p} (pass --{what})", file=sys.stderr)
            return 2

    if args.child is not None:
        print(json.dumps(baseline_child(str(args.video), str(args.model), args.child)))
        return 0

    if args.repeats < 1:
        print("perimeter_fps: --repeats must be at least 1", file=sys.stderr)
        return 2

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from kontur.config import load_config

    worker_threads = load_config().worker.intra_op_threads
    info_git = _git_info()
    console = Console(stderr=True)
    info = machine_info()
    console.print(
        f"[bold]kontur perimeter throughput[/] — {args.video.name}, {args.model.name}; "
        f"{info['nproc']} cores ({info['cpu_model']}), worker intra_op_threads={worker_threads}"
    )

    thread_set = sorted({1, 2, worker_threads})
    base: dict[int, list[dict[str, Any]]] = {t: [] for t in thread_set}
    peri: list[dict[str, Any]] = []
    steps = args.repeats * (len(thread_set) + 1)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("starting", total=steps)
        for r in range(1, args.repeats + 1):
            for t in thread_set:
                progress.update(task, description=f"repeat {r}: baseline {t} thread(s)")
                res = run_baseline(args.video, args.model, t, args.src)
                base[t].append(res)
                progress.console.print(
                    f"  repeat {r} baseline {t}T: {res['fps']:.1f} fps loop, "
                    f"{res['e2e_fps']:.1f} fps end-to-end, {res['cpu_ms_per_frame']:.1f} CPU "
                    f"ms/frame, peak {res['peak_rss_mb']:.0f} MB, load {res['loadavg_1m_after']}"
                )
                progress.advance(task)
            progress.update(task, description=f"repeat {r}: perimeter (kontur demo)")
            res = run_perimeter(args.video, args.model, args.src)
            peri.append(res)
            progress.console.print(
                f"  repeat {r} perimeter: {res['fps']:.1f} fps summary, "
                f"{res['e2e_fps']:.1f} fps end-to-end ({res['command_wall_s']:.1f} s), "
                f"{res['cpu_ms_per_frame']:.1f} CPU ms/frame, load {res['loadavg_1m_after']}"
            )
            progress.advance(task)

    # clean-process check: a warning, never a failure
    warnings: list[str] = []
    for name in CLEAN_MODULES:
        forbidden = sorted({lib for p in peri for lib in p["clean_check"][name]["forbidden"]})
        if forbidden:
            warnings.append(f"{name} process mapped {', '.join(forbidden)} (must load neither)")
        if not any(p["clean_check"][name]["observed"] for p in peri):
            warnings.append(f"{name} process was never observed while running; maps not checked")
    for w in warnings:
        console.print(f"[yellow]warning:[/] {w}")

    b = {
        t: {
            "fps": _median([x["fps"] for x in runs]),
            "e2e_fps": _median([x["e2e_fps"] for x in runs]),
            "process_wall_s": _median([x["process_wall_s"] for x in runs]),
            "peak_rss_mb": _median([x["peak_rss_mb"] for x in runs]),
            "cpu_ms_per_frame": _median([x["cpu_ms_per_frame"] for x in runs]),
            "decode_ms": _median([x["decode_ms"] for x in runs]),
            "infer_ms": _median([x["infer_ms"] for x in runs]),
            "track_ms": _median([x["track_ms"] for x in runs]),
            "frames": runs[0]["frames"],
            "runs": runs,
        }
        for t, runs in base.items()
    }
    names = list(peri[0]["processes"])
    p = {
        "fps": _median([x["fps"] for x in peri]),
        "e2e_fps": _median([x["e2e_fps"] for x in peri]),
        "elapsed_s": _median([x["elapsed_s"] for x in peri]),
        "command_wall_s": _median([x["command_wall_s"] for x in peri]),
        "cpu_ms_per_frame": _median([x["cpu_ms_per_frame"] for x in peri]),
        "frames": peri[0]["frames"],
        "peak_rss_mb": {n: _median([x["processes"].get(n, 0.0) for x in peri]) for n in names},
        "runs": peri,
    }
    p["peak_rss_mb_total"] = round(sum(p["peak_rss_mb"].values()), 1)

    def ratio(num: float, den: float) -> float:
        return round(num / den, 3) if den else 0.0

    ratios = {
        "summary_vs_worker_threads": ratio(p["fps"], b[worker_threads]["fps"]),
        "summary_vs_2_threads": ratio(p["fps"], b[2]["fps"]),
        "e2e_vs_worker_threads_e2e": ratio(p["e2e_fps"], b[worker_threads]["e2e_fps"]),
        "e2e_vs_2_threads_e2e": ratio(p["e2e_fps"], b[2]["e2e_fps"]),
        "cpu_per_frame_vs_worker_threads": ratio(
            p["cpu_ms_per_frame"], b[worker_threads]["cpu_ms_per_frame"]
        ),
    }

    table = Table(title=f"median of {args.repeats} interleaved repeat(s)")
    table.add_column("measurement")
    table.add_column("fps", justify="right")
    table.add_column("end-to-end fps", justify="right")
    table.add_column("CPU ms/frame", justify="right")
    table.add_column("peak RSS MB", justify="right")
    for t in thread_set:
        table.add_row(
            f"baseline, {t} ORT thread(s)" + (" (= worker)" if t == worker_threads else ""),
            f"{b[t]['fps']:.1f}",
            f"{b[t]['e2e_fps']:.1f}",
            f"{b[t]['cpu_ms_per_frame']:.1f}",
            f"{b[t]['peak_rss_mb']:.0f}",
        )
    table.add_row(
        f"perimeter (kontur demo, {worker_threads} thread(s))",
        f"{p['fps']:.1f}",
        f"{p['e2e_fps']:.1f}",
        f"{p['cpu_ms_per_frame']:.1f}",
        f"{p['peak_rss_mb_total']:.0f} (sum)",
    )
    for n, mb in p["peak_rss_mb"].items():
        table.add_row(f"  └ {n}", "", "", "", f"{mb:.0f}")
    table.add_row(
        f"ratio vs {worker_threads}-thread baseline",
        f"{ratios['summary_vs_worker_threads']:.1%}",
        f"{ratios['e2e_vs_worker_threads_e2e']:.1%}",
        "",
        "",
    )
    table.add_row(
        "ratio vs 2-thread baseline",
        f"{ratios['summary_vs_2_threads']:.1%}",
        f"{ratios['e2e_vs_2_threads_e2e']:.1%}",
        "",
        "",
    )
    Console().print(table)
    console.print(
        "fps: baseline = frames / loop wall (model loaded); perimeter = summary fps "
        "(frames / elapsed of the supervised run). end-to-end fps = frames / wall of the whole "
        "process or command, startup (and, for kontur, the placement bench) included. "
        "CPU ms/frame = user+sys CPU of the whole process (tree), startup included."
    )

    with contextlib.suppress(OSError):
        info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    if args.json_out is not None:
        doc = {
            "machine": info,
            "video": str(args.video),
            "model": str(args.model),
            "repeats": args.repeats,
            "worker_intra_op_threads": worker_threads,
            "git": info_git,
            "src": str(args.src) if args.src else "installed (editable)",
            "baseline": {str(t): v for t, v in b.items()},
            "perimeter": p,
            "ratios": ratios,
            "warnings": warnings,
        }
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n")
        console.print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
