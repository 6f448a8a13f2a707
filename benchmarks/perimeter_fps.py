"""Throughput of the whole kontur perimeter against the bare loop a user would write.

Run from the repository root (after the README's install)::

    python benchmarks/perimeter_fps.py [--video V] [--model M] [--repeats N] [--frames F]
                                       [--steady-frames F] [--quick] [--json OUT]

Measured in the same run, interleaved per repeat (baseline 1 thread, baseline 2 threads,
perimeter), each in its own process:

- **baseline** (the bare loop a user would write): PyAV decode (bgr24) →
  ``YoloxOnnxDetector`` (YOLOX-Nano on ONNX Runtime, kontur's default thresholds) →
  ``trackers.ByteTrackTracker`` called directly (no kontur wrapper, no typed objects) over
  the whole clip, with ``intra_op_threads`` 1 and 2. ``loop fps`` = frames / wall seconds of
  the loop (model already loaded); ``process wall`` = the whole child process, interpreter
  start and model load included. Peak memory is the child's own ``VmHWM`` (what the
  perimeter's summary reports per process; ``ru_maxrss`` would also count the forked
  parent's RSS before ``exec``).
- **perimeter**: ``kontur demo --source V --model M --data-dir TMP --json TMP/summary.json``
  with a fresh ``XDG_CACHE_HOME`` (so the placement bench runs every time, as on a first
  start). ``summary fps`` = the summary's ``fps`` (frames / elapsed of the supervised run:
  process tree start → last process stopped); ``end-to-end fps`` = frames / wall time of the
  whole command (interpreter start, config, probe, model load, placement bench, run, summary).
  Per-process peak memory is the summary's ``peak_rss_mb`` (VmHWM).

The overhead ratio is perimeter fps / baseline fps at the worker's thread count
(``load_config().worker.intra_op_threads``) and, for reference, against 2 threads. Medians
over ``--repeats``. Goals (issue "the untrusted worker must not move the gate"), each
against the baseline at the worker's thread count, reported met / not met:

- fps ratio (summary fps / loop fps) >= 97 %;
- CPU ms per frame ratio (whole process tree / whole baseline process) <= 1.15x;
- peak RSS ratio: the perimeter's summed ``processes[].peak_rss_mb`` (every process of the
  tree: supervisor, gate, verifier, worker, ingest) / the bare loop's peak <= 1.5x.

``--frames F`` measures both sides on the clip's first F frames (remuxed, not re-encoded,
into a temporary file, so the perimeter ends with its source instead of being cut by
``--seconds``); ``--quick`` is ``--repeats 1 --frames 300``, for checking the script, not
for figures (startup weighs more on a short clip). ``--steady-frames F`` runs both sides
again on the first F frames and reports the marginal CPU per frame of the frames after F
(start-up out of both sides).

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
    from trackers import ByteTrackTracker

    from kontur.config import load_config
    from kontur.worker.detectors import YoloxOnnxDetector

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
        tracker = ByteTrackTracker(frame_rate=float(rate) if rate else 25.0)
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
        # VmHWM, as the perimeter's summary reports each of its processes
        "peak_rss_mb": round(vmhwm_kb() / 1024, 1),
        # Linux: kilobytes; may include the forked parent's RSS before exec
        "ru_maxrss_mb": round(ru.ru_maxrss / 1024, 1),
    }


def vmhwm_kb(pid: int | str = "self") -> int:
    """Peak resident set size (``VmHWM``) of a process in kB; 0 when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def clip_prefix(video: Path, frames: int, out_dir: Path) -> tuple[Path, int]:
    """The first ``frames`` video packets of ``video`` remuxed (not re-encoded) into
    ``out_dir``; returns the new file and how many frames it holds (fewer if the clip is
    shorter). The container format and the stream's parameters are kept."""
    import av

    out_dir.mkdir(parents=True, exist_ok=True)
    with av.open(str(video)) as inp:
        fmt = inp.format.name.split(",")[0]
        dst = out_dir / f"{video.stem}-first{frames}{video.suffix}"
        n = 0
        with av.open(str(dst), "w", format=fmt) as out:
            ist = inp.streams.video[0]
            ost = out.add_stream_from_template(ist)
            for pkt in inp.demux(ist):
                if pkt.dts is None or pkt.size == 0:
                    continue
                if n >= frames:
                    break
                pkt.stream = ost
                out.mux(pkt)
                n += 1
    return dst, n


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


def _with_children(p: dict[str, Any]) -> float:
    """A block's peak RSS plus its descendants' (ingest's sandboxed decoder, ADR 0038)."""
    return round(float(p["peak_rss_mb"]) + float(p.get("children_peak_rss_mb") or 0.0), 1)


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
        # each block with its descendants (ingest's sandboxed decoder, ADR 0038)
        "processes": {p["name"]: _with_children(p) for p in summary["processes"]},
        # every process of the tree, summed over the summary's list (names may repeat)
        "peak_rss_mb_sum": round(sum(_with_children(p) for p in summary["processes"]), 1),
        "processes_unsampled": [p["name"] for p in summary["processes"] if not p["peak_rss_mb"]],
        "gops": _gop_totals(summary),
        "restarts": sum(int(p.get("restarts", 0)) for p in summary["processes"]),
        "platform": summary["placement"][0]["platform"] if summary.get("placement") else None,
        "detector": summary.get("detector", {}).get("name"),
        "clean_check": {
            name: {"observed": bool(seen[name]), "forbidden": sorted(dirty[name])}
            for name in CLEAN_MODULES
        },
    }


def _gop_totals(summary: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for cam in summary["cameras"]:
        for verdict, n in cam.get("gops", {}).items():
            out[verdict] = out.get(verdict, 0) + int(n)
    return out


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
    ap.add_argument("--repeats", type=int, default=None, help="default 3 (--quick: 1)")
    ap.add_argument(
        "--frames",
        type=int,
        default=None,
        help="measure on the clip's first F frames only (remuxed into a temp file)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="--repeats 1 --frames 300: checks the script runs; not for figures",
    )
    ap.add_argument(
        "--steady-frames",
        type=int,
        default=None,
        help="also run both sides on the clip's first F frames and give the steady-state "
        "CPU per frame: (CPU of the whole clip - CPU of F frames) / (frames - F), start-up out",
    )
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

    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.frames is None and args.quick:
        args.frames = 300
    if args.repeats < 1:
        print("perimeter_fps: --repeats must be at least 1", file=sys.stderr)
        return 2
    if args.frames is not None and args.frames < 1:
        print("perimeter_fps: --frames must be at least 1", file=sys.stderr)
        return 2
    clip_dir: Path | None = None
    full_video = args.video
    if args.frames is not None:
        clip_dir = Path(tempfile.mkdtemp(prefix="kontur-bench-clip-"))
        args.video, _ = clip_prefix(full_video, args.frames, clip_dir)
    try:
        return _measure(args, full_video)
    finally:
        if clip_dir is not None:
            shutil.rmtree(clip_dir, ignore_errors=True)


def _steady_state(
    args: argparse.Namespace, full_video: Path, base: dict[str, Any], peri: dict[str, Any]
) -> dict[str, Any]:
    """Marginal CPU per frame on each side: both run again on the first ``steady_frames``
    frames (``repeats`` times, medians), and the difference to the whole clip's CPU is
    divided by the difference in frames, so start-up (five interpreters, the release
    signing and the placement bench on the perimeter's side) drops out."""
    from rich.console import Console

    threads = load_worker_threads()
    with tempfile.TemporaryDirectory(prefix="kontur-bench-steady-") as tmp:
        clip, frames = clip_prefix(args.video, args.steady_frames, Path(tmp))
        short_b = [run_baseline(clip, args.model, threads, args.src) for _ in range(args.repeats)]
        short_p = [run_perimeter(clip, args.model, args.src) for _ in range(args.repeats)]

    def marginal(full: dict[str, Any], short: list[dict[str, Any]]) -> float:
        cpu_full = float(full["cpu_ms_per_frame"]) * int(full["frames"])
        cpu_short = _median([float(x["cpu_ms_per_frame"]) * int(x["frames"]) for x in short])
        return round((cpu_full - cpu_short) / max(int(full["frames"]) - frames, 1), 2)

    out = {
        "short_frames": frames,
        "baseline_ms_per_frame": marginal(base, short_b),
        "perimeter_ms_per_frame": marginal(peri, short_p),
    }
    out["ratio"] = round(out["perimeter_ms_per_frame"] / out["baseline_ms_per_frame"], 3)
    Console(stderr=True).print(
        f"steady state (frames {frames + 1}…{peri['frames']}): CPU ms/frame perimeter "
        f"{out['perimeter_ms_per_frame']:.1f} vs bare loop {out['baseline_ms_per_frame']:.1f}: "
        f"{out['ratio']:.2f}x (goal <= 1.15x)"
    )
    return out


def load_worker_threads() -> int:
    """The worker's ONNX Runtime threads in the embedded defaults (the baseline matches)."""
    from kontur.config import load_config

    return load_config().worker.intra_op_threads


#: Goals of the issue "the untrusted worker must not move the gate", against the bare loop at
#: the worker's thread count: (key in ``ratios``, "min" or "max", limit, label).
GOALS = (
    ("summary_vs_worker_threads", "min", 0.97, "fps ratio >= 97 %"),
    ("cpu_per_frame_vs_worker_threads", "max", 1.15, "CPU ms/frame ratio <= 1.15x"),
    ("peak_rss_sum_vs_worker_threads", "max", 1.5, "summed peak RSS ratio <= 1.5x"),
)


def _measure(args: argparse.Namespace, full_video: Path) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    worker_threads = load_worker_threads()
    info_git = _git_info()
    console = Console(stderr=True)
    info = machine_info()
    console.print(
        f"[bold]kontur perimeter throughput[/] — {args.video.name}"
        + (f" (first {args.frames} frames of {full_video.name})" if args.frames else "")
        + f", {args.model.name}; "
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
        # median over repeats of each run's sum over all its processes
        "peak_rss_mb_sum": _median([x["peak_rss_mb_sum"] for x in peri]),
        "runs": peri,
    }
    p["peak_rss_mb_total"] = round(sum(p["peak_rss_mb"].values()), 1)
    for x in peri:
        if x["processes_unsampled"]:
            warnings.append(
                f"summary reports no peak RSS for {', '.join(x['processes_unsampled'])}: "
                "the summed memory is too low"
            )
        bad = {v: n for v, n in x["gops"].items() if v != "AUTHENTIC"}
        if bad:
            warnings.append(f"perimeter GOP verdicts other than AUTHENTIC: {bad}")
    if any(x["frames"] != peri[0]["frames"] for x in peri) or any(
        r["frames"] != peri[0]["frames"] for runs in base.values() for r in runs
    ):
        warnings.append("baseline and perimeter runs did not all see the same number of frames")
    for w in warnings:
        console.print(f"[yellow]warning:[/] {w}")

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
        "peak_rss_sum_vs_worker_threads": ratio(
            p["peak_rss_mb_sum"], b[worker_threads]["peak_rss_mb"]
        ),
    }
    goals = {
        key: {
            "goal": label,
            "value": ratios[key],
            "met": ratios[key] >= limit if kind == "min" else ratios[key] <= limit,
        }
        for key, kind, limit, label in GOALS
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
        f"{p['peak_rss_mb_sum']:.0f} (sum)",
    )
    for n, mb in p["peak_rss_mb"].items():
        table.add_row(f"  └ {n}", "", "", "", f"{mb:.0f}")
    table.add_row(
        f"ratio vs {worker_threads}-thread baseline",
        f"{ratios['summary_vs_worker_threads']:.1%}",
        f"{ratios['e2e_vs_worker_threads_e2e']:.1%}",
        f"{ratios['cpu_per_frame_vs_worker_threads']:.2f}x",
        f"{ratios['peak_rss_sum_vs_worker_threads']:.2f}x",
    )
    table.add_row(
        "ratio vs 2-thread baseline",
        f"{ratios['summary_vs_2_threads']:.1%}",
        f"{ratios['e2e_vs_2_threads_e2e']:.1%}",
        "",
        "",
    )
    Console().print(table)
    gtable = Table(title=f"goals (vs the bare loop, {worker_threads} ORT thread(s))")
    gtable.add_column("goal")
    gtable.add_column("measured", justify="right")
    gtable.add_column("met")
    for key, kind, _limit, label in GOALS:
        g = goals[key]
        shown = f"{g['value']:.1%}" if kind == "min" else f"{g['value']:.2f}x"
        gtable.add_row(label, shown, "[green]yes[/]" if g["met"] else "[red]no[/]")
    Console().print(gtable)
    console.print(
        "fps: baseline = frames / loop wall (model loaded); perimeter = summary fps "
        "(frames / elapsed of the supervised run). end-to-end fps = frames / wall of the whole "
        "process or command, startup (and, for kontur, the placement bench) included. "
        "CPU ms/frame = user+sys CPU of the whole process (tree), startup included. "
        "peak RSS: VmHWM; the perimeter's is the sum over all its processes (shared pages, "
        "e.g. the frame ring, are counted once per process that maps them)."
    )

    steady = _steady_state(args, full_video, b[worker_threads], p) if args.steady_frames else None
    with contextlib.suppress(OSError):
        info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    if args.json_out is not None:
        doc = {
            "machine": info,
            "video": str(full_video),
            "frames_limit": args.frames,
            "model": str(args.model),
            "repeats": args.repeats,
            "worker_intra_op_threads": worker_threads,
            "baseline_loop": "PyAV decode -> YoloxOnnxDetector -> trackers.ByteTrackTracker",
            "git": info_git,
            "src": str(args.src) if args.src else "installed (editable)",
            "baseline": {str(t): v for t, v in b.items()},
            "perimeter": p,
            "ratios": ratios,
            "goals": goals,
            "steady_state": steady,
            "warnings": warnings,
        }
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n")
        console.print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
