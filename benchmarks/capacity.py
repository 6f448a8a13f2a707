"""Camera capacity: N paced 10-fps cameras through the whole perimeter against N bare loops.

Run from the repository root (after the README's install)::

    python benchmarks/capacity.py [--cameras 1,4,8,12,14] [--seconds 30] [--video V]
                                  [--model M] [--no-latency-probe] [--json OUT] [--src DIR]

For each N, measured in the same run (the order of the two sides alternates from one N to
the next, against drift):

- **perimeter**: one ``kontur demo --config site.yaml --model M --realtime`` with N cameras
  in the config (``cam01`` … ``camNN``, every one the same clip), so ingest paces each camera
  at the clip's frame rate and skips, for analysis only, the frames the worker could not
  take in time (``frames_skipped``). The config is the embedded defaults with the cameras
  replaced and, unless ``--no-latency-probe``, one policy added (below).
- **bare loops**: N processes, one per camera, each the bare loop of ``perimeter_fps.py``
  (PyAV decode → YOLOX-Nano on ONNX Runtime, 1 thread → ``trackers.ByteTrackTracker``) with
  decoding paced at the clip's frame rate: frame ``i`` is decoded no earlier than
  ``start + i / fps``. A frame the loop reaches when frame ``i + 16`` is already due is
  skipped (decoded, not analysed): the rule of the perimeter's 16-slot frame ring, under
  which the worker misses a frame only once ingest overwrote it. All N load their model
  first, then start together.

The clip is the first ``--seconds`` × fps frames of ``--video`` (PETS09-S2L1 480x360, 10 fps,
795 frames, GOPs of 250 frames), remuxed without re-encoding into a temporary file, so both
sides run until their source ends: every frame counted was due during the paced run.
``kontur demo --seconds`` is only a safety bound here (``--seconds`` + 30 + N); cutting the
perimeter with it would count the unpaced rest of the open GOP as ingested frames and, with
the simulated camera, fail that GOP's signature.

Per camera:

- **fraction analysed** — perimeter: the verifier's ``agree + disagree`` (one finding per
  analysed frame) / ``frames`` (ingested); ``frames_skipped`` is shown next to it. Bare loop:
  frames analysed / frames due.
- **latency** — bare loop: per analysed frame, result (detector + tracker done) − the frame's
  due time. Perimeter: frame → gate decision, from the archive: a decision's ``at`` (the
  gate's wall clock) − the due time of its ``frame_index``; the due time of frame 0 is the
  signed capture time of the camera's first GOP (the simulated camera stamps each packet as
  ingest reads it; the first frame is published right after, before any pacing). Critical
  actions (the default ``alarm``) are held by the gate until their GOP's signature verdict,
  which comes one GOP later (up to 25 s on PETS09), so their latency measures the GOP length,
  not the analysis. The *latency probe* adds a non-critical twin of the default policy
  (person dwells >= 2 s → ``notify``), decided as soon as the verifier's evidence reaches the
  gate: its latency is frame → ingest → worker → verifier → gate → archived decision. It
  fires once per track (a few to a few tens of samples per camera) and costs one decision
  record each. ``--realtime`` paces frames as they leave the decoder; a live camera would
  add any read-ahead of the decoder (``decoder_readahead_s`` in the JSON: how long before
  its frame's due time ingest read, and the simulated camera signed, the last packet of
  the first GOP; about 0 when the decoder holds no frame back; negative when ingest read it
  late, e.g. because its first frame was published later than its first packet was read,
  in which case the perimeter latencies here are overstated by up to that much).
- **memory** — the sum of the peak RSS (``VmHWM``) of every process: the summary's
  ``processes[].peak_rss_mb`` summed, against the bare loops' summed ``VmHWM``.

A side *keeps up* at N when every camera analyses >= 95 % of its frames and its latency p95
is < 1 s (perimeter: of the probe decisions; "not measured" when it has none). Goal of the
issue "the untrusted worker must not move the gate": the perimeter keeps up at 14 cameras
with summed memory under the bare loops' total.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as _dt
import importlib.resources
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

import perimeter_fps as pf

DEFAULT_CAMERAS = (1, 4, 8, 12, 14)
#: Slots of the perimeter's frame ring (``kontur.runtime.wiring.RING_SLOTS``): how far the
#: bare loop may lag before it skips a frame, as the worker does.
RING_SLOTS = 16
KEEP_UP_FRACTION = 0.95
KEEP_UP_LATENCY_S = 1.0
GOAL_CAMERAS = 14
PROBE_RULE = "latency-probe"


# --------------------------------------------------------------------------- bare loop child


def bare_child(video: str, model: str, slots: int) -> dict[str, Any]:
    """One paced bare loop; waits for a start time (wall clock) on stdin after loading."""
    import resource

    import av
    from trackers import ByteTrackTracker

    from kontur.config import load_config
    from kontur.worker.detectors import YoloxOnnxDetector

    w = load_config().worker
    det = YoloxOnnxDetector(
        Path(model).read_bytes(),
        score_threshold=w.score_threshold,
        nms_threshold=w.nms_threshold,
        intra_op_threads=w.intra_op_threads,
    )
    container = av.open(video)
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 25.0
    tracker = ByteTrackTracker(frame_rate=fps)
    it = container.decode(stream)
    print("ready", flush=True)
    start_wall = float(sys.stdin.readline())
    pc = time.monotonic
    t0 = pc() + (start_wall - time.time())
    due_n = analysed = skipped = 0
    lat: list[float] = []
    while True:
        due = t0 + due_n / fps
        delay = due - pc()
        if delay > 0:
            time.sleep(delay)
        fr = next(it, None)
        if fr is None:
            break
        i = due_n
        due_n += 1
        newest = math.floor((pc() - t0) * fps)
        if newest - i >= slots:
            skipped += 1  # overwritten in a ring of `slots` frames before we got to it
            continue
        tracker.update(det.infer(fr.to_ndarray(format="bgr24")))
        lat.append(pc() - due)
        analysed += 1
    wall = pc() - t0
    container.close()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "fps": fps,
        "frames_due": due_n,
        "analysed": analysed,
        "skipped": skipped,
        "on_time": sum(1 for x in lat if x < KEEP_UP_LATENCY_S),
        "latency_s": _dist(lat),
        "wall_s": round(wall, 3),
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
        "peak_rss_mb": round(pf.vmhwm_kb() / 1024, 1),
    }


def run_bare(n: int, clip: Path, model: Path, src: Path | None) -> dict[str, Any]:
    """N paced bare loops, started together once all loaded their model."""
    tmp = Path(tempfile.mkdtemp(prefix="kontur-capacity-bare-"))
    procs: list[tuple[subprocess.Popen[str], Any]] = []
    try:
        for i in range(n):
            err = (tmp / f"bare{i + 1:02d}.err").open("w")
            cmd = [sys.executable, str(Path(__file__).resolve()), "--_bare-child"]
            cmd += ["--video", str(clip), "--model", str(model)]
            proc = subprocess.Popen(
                cmd,
                cwd=pf.REPO,
                env=pf.child_env(src),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
            procs.append((proc, err))
        for proc, _ in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"bare loop exited before it was ready (exit {proc.wait()})")
        start = time.time() + 0.5
        ru0 = _children_cpu()
        for proc, _ in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{start!r}\n")
            proc.stdin.close()
        cams: list[dict[str, Any]] = []
        for i, (proc, err) in enumerate(procs):
            assert proc.stdout is not None
            out = proc.stdout.read()
            rc = proc.wait()
            err.close()
            if rc != 0:
                tail = (tmp / f"bare{i + 1:02d}.err").read_text()[-2000:]
                raise RuntimeError(f"bare loop {i + 1} failed (exit {rc}):\n{tail}")
            res: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
            res["id"] = f"cam{i + 1:02d}"
            res["fraction"] = _frac(res["analysed"], res["frames_due"])
            cams.append(res)
        wall = time.time() - start
        cpu = _children_cpu() - ru0
    finally:
        for proc, err in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            err.close()
        shutil.rmtree(tmp, ignore_errors=True)
    lat = [c["latency_s"] for c in cams if c["latency_s"]]
    return {
        "cameras": cams,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mb_sum": round(sum(c["peak_rss_mb"] for c in cams), 1),
        # pooled from the cameras' own figures: median of their p50, worst p95, worst max
        "latency_s": {
            "n": sum(x["n"] for x in lat),
            "p50": _median([x["p50"] for x in lat]),
            "p95": max(x["p95"] for x in lat),
            "max": max(x["max"] for x in lat),
        }
        if lat
        else None,
        "loadavg_1m_after": pf._load1(),
    }


# --------------------------------------------------------------------------- perimeter


def site_config(n: int, clip: Path, probe: bool) -> dict[str, Any]:
    """The embedded defaults with N cameras on ``clip`` and, if asked, the latency probe."""
    text = importlib.resources.files("kontur.defaults").joinpath("kontur.yaml").read_text()
    cfg: dict[str, Any] = yaml.safe_load(text)
    template = cfg["cameras"][0]
    cfg["cameras"] = [
        dict(copy.deepcopy(template), id=f"cam{i + 1:02d}", source=str(clip)) for i in range(n)
    ]
    if probe:
        dwell = [p for p in cfg["policies"] if p.get("when", {}).get("type") == "dwell"]
        if not dwell:
            raise RuntimeError("the embedded defaults have no dwell policy to copy for the probe")
        cfg["policies"].append(dict(copy.deepcopy(dwell[0]), rule=PROBE_RULE, action="notify"))
        if cfg["actions"].get("notify", {}).get("critical", True):
            raise RuntimeError("the latency probe needs the non-critical action 'notify'")
    return cfg


def _with_children(p: dict[str, Any]) -> float:
    """A block's peak RSS plus its descendants' (ingest's sandboxed decoder, ADR 0038)."""
    return float(p["peak_rss_mb"]) + float(p.get("children_peak_rss_mb") or 0.0)


def run_perimeter(
    n: int,
    clip: Path,
    clip_frames: int,
    fps: float,
    model: Path,
    seconds: float,
    cache: Path,
    src: Path | None,
    probe: bool,
) -> dict[str, Any]:
    """One ``kontur demo --realtime`` with N cameras; its summary, archive and timings."""
    kontur = Path(sys.executable).with_name("kontur")
    tmp = Path(tempfile.mkdtemp(prefix="kontur-capacity-"))
    try:
        site = tmp / "site.yaml"
        site.write_text(yaml.safe_dump(site_config(n, clip, probe), sort_keys=False))
        out = tmp / "summary.json"
        data = tmp / "data"
        bound = seconds + 30 + n
        cmd = [str(kontur), "demo", "--config", str(site), "--model", str(model)]
        cmd += ["--realtime", "--seconds", f"{bound:g}", "--data-dir", str(data)]
        cmd += ["--json", str(out)]
        ru0 = _children_cpu()
        t0 = time.monotonic()
        proc = subprocess.run(
            cmd,
            cwd=pf.REPO,
            env=pf.child_env(src, XDG_CACHE_HOME=str(cache)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wall = time.monotonic() - t0
        cpu = _children_cpu() - ru0
        if not out.is_file():
            raise RuntimeError(
                f"kontur demo failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
            )
        summary = json.loads(out.read_text())
        timing = _archive_timing(data, fps)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cams: list[dict[str, Any]] = []
    for c in summary["cameras"]:
        analysed = int(c["verifier"]["agree"]) + int(c["verifier"]["disagree"])
        t = timing.get(c["id"], {})
        probe_lat = t.get("probe", [])
        cams.append(
            {
                "id": c["id"],
                "frames": c["frames"],
                "frames_expected": clip_frames,
                "cut_by_bound": c["frames"] < clip_frames,
                "frames_skipped": c.get("frames_skipped"),
                "analysed": analysed,
                "fraction": _frac(analysed, c["frames"]),
                "gops": c["gops"],
                "decisions": c["decisions"],
                "error": c.get("error"),
                "latency_s": _dist(probe_lat),
                "alarm_latency_s": _dist(t.get("critical", [])),
                "decoder_readahead_s": t.get("readahead_s"),
            }
        )
    procs = summary["processes"]
    all_probe = [x for c in timing.values() for x in c.get("probe", [])]
    all_alarm = [x for c in timing.values() for x in c.get("critical", [])]
    return {
        "cameras": cams,
        "exit": proc.returncode,
        "bound_s": bound,
        "command_wall_s": round(wall, 2),
        "elapsed_s": summary["elapsed_s"],
        "cpu_s": round(cpu, 2),
        "peak_rss_mb_sum": round(sum(_with_children(p) for p in procs), 1),
        "processes": [
            {
                k: p.get(k)
                for k in ("name", "restarts", "peak_rss_mb", "children_peak_rss_mb", "platform")
            }
            for p in procs
        ],
        "processes_unsampled": [p["name"] for p in procs if not p["peak_rss_mb"]],
        "degradation": {
            "state": summary["degradation"]["state"],
            "triggers": [t["trigger"] for t in summary["degradation"]["transitions"]],
        },
        "latency_s": _dist(all_probe),
        "alarm_latency_s": _dist(all_alarm),
        "violations": len(summary.get("violations") or []),
        "loadavg_1m_after": pf._load1(),
    }


def _archive_timing(data: Path, fps: float) -> dict[str, dict[str, Any]]:
    """Per camera, from the run's archive: decision latencies (probe and critical), seconds
    after the due time of the decided frame, and the decoder's read-ahead on GOP 0."""
    from kontur.archive import Archive

    t0: dict[str, float] = {}
    readahead: dict[str, float] = {}
    decisions: list[dict[str, Any]] = []
    archive = Archive.open_readonly(data)
    try:
        for rec in archive.iter_records():
            p = rec.payload
            if rec.kind == "decision":
                decisions.append(p)
            elif rec.kind == "verdict" and p["verdict"]["gop_index"] == 0:
                sig = p.get("signature") or {}
                start, end = _iso(sig.get("capture_start")), _iso(sig.get("capture_end"))
                if start is None or start < 1e9:  # absent, or the 1601 placeholder
                    continue
                cam = p["verdict"]["camera_id"]
                t0[cam] = start - float(p["start_pts_s"])
                if end is not None and not sig.get("end_of_stream"):
                    # last packet of GOP 0 read this long before its frame was due
                    readahead[cam] = round(t0[cam] + float(p["end_pts_s"]) - end, 3)
    finally:
        archive.close()
    out: dict[str, dict[str, Any]] = {
        cam: {"probe": [], "critical": [], "readahead_s": readahead.get(cam)} for cam in t0
    }
    for d in decisions:
        cam = d["camera_id"]
        if cam not in t0:
            continue
        latency = float(d["at"]) - (t0[cam] + int(d["frame_index"]) / fps)
        if d["rule"] == PROBE_RULE:
            out[cam]["probe"].append(latency)
        elif d["critical"]:
            out[cam]["critical"].append(latency)
    return out


# --------------------------------------------------------------------------- helpers


def _iso(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return _dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _children_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _frac(num: int, den: int) -> float:
    return round(num / den, 4) if den else 0.0


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 3) if xs else None


def _dist(xs: list[float]) -> dict[str, Any] | None:
    """n, p50, p95 (nearest rank) and max of a list of seconds; None when empty."""
    if not xs:
        return None
    s = sorted(xs)
    p95 = s[min(len(s) - 1, max(0, math.ceil(0.95 * len(s)) - 1))]
    return {
        "n": len(s),
        "p50": round(statistics.median(s), 3),
        "p95": round(p95, 3),
        "max": round(s[-1], 3),
    }


def keeps_up(side: dict[str, Any]) -> dict[str, Any]:
    """Whether every camera analysed >= 95 % with latency p95 < 1 s, and why not."""
    low = [c["id"] for c in side["cameras"] if c["fraction"] < KEEP_UP_FRACTION]
    measured = [c for c in side["cameras"] if c["latency_s"]]
    slow = [c["id"] for c in measured if c["latency_s"]["p95"] >= KEEP_UP_LATENCY_S]
    unmeasured = [c["id"] for c in side["cameras"] if not c["latency_s"]]
    return {
        "met": not low and not slow and not unmeasured,
        "fraction_ok": not low,
        "latency": "not measured" if not measured else ("ok" if not slow else "too slow"),
        "below_fraction": low,
        "latency_p95_over_1s": slow,
        "latency_not_measured": unmeasured,
        "cameras_at_95": sum(1 for c in side["cameras"] if c["fraction"] >= KEEP_UP_FRACTION),
    }


# --------------------------------------------------------------------------- main


def _parse_cameras(text: str) -> list[int]:
    try:
        ns = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 1,4,8, got {text!r}") from None
    if not ns or min(ns) < 1:
        raise argparse.ArgumentTypeError(f"expected camera counts >= 1, got {text!r}")
    return ns


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=_parse_cameras, default=list(DEFAULT_CAMERAS))
    ap.add_argument("--seconds", type=float, default=30.0, help="paced seconds per run")
    ap.add_argument("--video", type=Path, default=pf.DEFAULT_VIDEO)
    ap.add_argument("--model", type=Path, default=pf.DEFAULT_MODEL)
    ap.add_argument(
        "--no-latency-probe",
        dest="probe",
        action="store_false",
        help="do not add the non-critical twin policy that measures frame-to-decision latency",
    )
    ap.add_argument("--json", dest="json_out", type=Path, default=None)
    ap.add_argument("--src", type=Path, default=None, help="as in perimeter_fps.py")
    ap.add_argument("--_bare-child", dest="child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    for what, p in (("video", args.video), ("model", args.model)):
        if not p.is_file():
            print(f"capacity: {what} not found at {p} (pass --{what})", file=sys.stderr)
            return 2
    if args.child:
        print(json.dumps(bare_child(str(args.video), str(args.model), RING_SLOTS)))
        return 0
    if args.seconds <= 0:
        print("capacity: --seconds must be positive", file=sys.stderr)
        return 2

    import av

    with av.open(str(args.video)) as c:
        s = c.streams.video[0]
        rate = s.average_rate or s.guessed_rate
        fps = float(rate) if rate else 25.0
    work = Path(tempfile.mkdtemp(prefix="kontur-capacity-run-"))
    try:
        clip, frames = pf.clip_prefix(args.video, max(1, round(args.seconds * fps)), work)
        return _measure(args, clip, frames, fps, work / "cache")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(args: argparse.Namespace, clip: Path, frames: int, fps: float, cache: Path) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    info = pf.machine_info()
    info_git = pf._git_info()
    console.print(
        f"[bold]kontur camera capacity[/] — {frames} frames of {args.video.name} at "
        f"{fps:g} fps ({frames / fps:g} s paced) per camera, {args.model.name}; "
        f"N = {', '.join(map(str, args.cameras))}; {info['nproc']} cores ({info['cpu_model']}), "
        f"load {' '.join(info['loadavg_start'])}"
    )
    if frames < round(args.seconds * fps):
        console.print(f"[yellow]note:[/] the clip has only {frames} frames: runs are shorter")
    results: list[dict[str, Any]] = []
    for k, n in enumerate(args.cameras):
        order = ("perimeter", "bare") if k % 2 == 0 else ("bare", "perimeter")
        row: dict[str, Any] = {"n": n, "order": list(order)}
        for side in order:
            console.print(f"  N={n}: {side} …")
            if side == "perimeter":
                res = run_perimeter(
                    n, clip, frames, fps, args.model, frames / fps, cache, args.src, args.probe
                )
            else:
                res = run_bare(n, clip, args.model, args.src)
            res["keeps_up"] = keeps_up(res)
            row[side] = res
            console.print(f"    {_line(side, res)}")
        row["perimeter_memory_below_bare"] = (
            row["perimeter"]["peak_rss_mb_sum"] < row["bare"]["peak_rss_mb_sum"]
        )
        results.append(row)
        time.sleep(1.0)

    goal = _goal(results)
    _print(results, goal, args)
    with contextlib.suppress(OSError):
        info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    if args.json_out is not None:
        doc = {
            "machine": info,
            "git": info_git,
            "src": str(args.src) if args.src else "installed (editable)",
            "video": str(args.video),
            "model": str(args.model),
            "frames_per_camera": frames,
            "fps": fps,
            "seconds": frames / fps,
            "latency_probe": args.probe,
            "ring_slots": RING_SLOTS,
            "results": results,
            "goal": goal,
        }
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n")
        console.print(f"wrote {args.json_out}")
    return 0


def _line(side: str, res: dict[str, Any]) -> str:
    fr = [c["fraction"] for c in res["cameras"]]
    lat = res["latency_s"]
    lat_s = f"latency p50 {lat['p50']:.2f} s, p95 {lat['p95']:.2f} s" if lat else "no latency"
    return (
        f"{side}: analysed min {min(fr):.1%} / median {statistics.median(fr):.1%}, {lat_s}, "
        f"peak RSS sum {res['peak_rss_mb_sum']:.0f} MB, CPU {res['cpu_s']:.0f} s, "
        f"keeps up: {'yes' if res['keeps_up']['met'] else 'no'}, load {res['loadavg_1m_after']}"
    )


def _goal(results: list[dict[str, Any]]) -> dict[str, Any]:
    def most(side: str) -> int | None:
        ok = [r["n"] for r in results if r[side]["keeps_up"]["met"]]
        return max(ok) if ok else None

    at = [r for r in results if r["n"] >= GOAL_CAMERAS]
    best = max(at, key=lambda r: r["n"]) if at else None
    met: bool | None = None
    if best is not None:
        met = bool(best["perimeter"]["keeps_up"]["met"] and best["perimeter_memory_below_bare"])
    return {
        "goal": f">= {GOAL_CAMERAS} cameras each analysing >= {KEEP_UP_FRACTION:.0%} of its "
        f"frames with latency < {KEEP_UP_LATENCY_S:g} s, summed memory under the bare loops'",
        "met": met,
        "why_unknown": None if best is not None else f"N >= {GOAL_CAMERAS} was not measured",
        "perimeter_keeps_up_max_n": most("perimeter"),
        "bare_keeps_up_max_n": most("bare"),
    }


def _fmt_lat(d: dict[str, Any] | None) -> str:
    return f"{d['p50']:.2f} / {d['p95']:.2f} / {d['max']:.2f}" if d else "not measured"


def _print(results: list[dict[str, Any]], goal: dict[str, Any], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console(width=max(Console().width, 150))
    t = Table(title="capacity: N paced cameras, whole perimeter vs N bare loops (same run)")
    for col, just in (
        ("N", "right"),
        ("side", "left"),
        ("keeps up", "left"),
        ("cams ≥ 95 %", "right"),
        ("analysed min / median", "right"),
        ("skipped", "right"),
        ("latency s p50 / p95* / max", "right"),
        ("alarm latency s p50 / max", "right"),
        ("peak RSS sum MB", "right"),
        ("CPU s", "right"),
    ):
        t.add_column(col, justify=just)
    for r in results:
        for side in ("perimeter", "bare"):
            res = r[side]
            fr = [c["fraction"] for c in res["cameras"]]
            ku = res["keeps_up"]
            lat = _fmt_lat(res["latency_s"])
            if side == "perimeter":
                skipped = sum(int(c["frames_skipped"] or 0) for c in res["cameras"])
                al = res["alarm_latency_s"]
                alarm = f"{al['p50']:.1f} / {al['max']:.1f}" if al else "—"
            else:
                skipped = sum(c["skipped"] for c in res["cameras"])
                alarm = "—"
            why = (
                "" if ku["met"] else f" ({'fraction' if not ku['fraction_ok'] else ku['latency']})"
            )
            mem = f"{res['peak_rss_mb_sum']:.0f}"
            if side == "perimeter":
                mem += " ✓" if r["perimeter_memory_below_bare"] else " ✗"
            t.add_row(
                str(r["n"]) if side == "perimeter" else "",
                side,
                ("[green]yes[/]" if ku["met"] else "[red]no[/]") + why,
                f"{ku['cameras_at_95']}/{r['n']}",
                f"{min(fr):.1%} / {statistics.median(fr):.1%}",
                str(skipped),
                lat,
                alarm,
                mem,
                f"{res['cpu_s']:.0f}",
            )
        t.add_section()
    out.print(t)

    pc = Table(
        title="per camera: fraction of frames analysed (perimeter: analysed/ingested, "
        "skipped; bare: analysed/due) and latency p95 s"
    )
    pc.add_column("N", justify="right")
    pc.add_column("camera")
    pc.add_column("perimeter analysed", justify="right")
    pc.add_column("skipped", justify="right")
    pc.add_column("decision latency p95 (n)", justify="right")
    pc.add_column("bare analysed", justify="right")
    pc.add_column("bare latency p95", justify="right")
    for r in results:
        bare = {c["id"]: c for c in r["bare"]["cameras"]}
        for c in r["perimeter"]["cameras"]:
            b = bare.get(c["id"])
            lat = c["latency_s"]
            pc.add_row(
                str(r["n"]),
                c["id"] + (" (cut)" if c["cut_by_bound"] else ""),
                f"{c['fraction']:.1%} ({c['analysed']}/{c['frames']})",
                str(c["frames_skipped"]),
                f"{lat['p95']:.2f} ({lat['n']})" if lat else "not measured",
                f"{b['fraction']:.1%} ({b['analysed']}/{b['frames_due']})" if b else "—",
                f"{b['latency_s']['p95']:.2f}" if b and b["latency_s"] else "—",
            )
        pc.add_section()
    out.print(pc)

    met = {True: "[green]met[/]", False: "[red]not met[/]", None: "[yellow]unknown[/]"}
    out.print(
        f"goal: {goal['goal']}: {met[goal['met']]}"
        + (f" ({goal['why_unknown']})" if goal["why_unknown"] else "")
        + f". Largest N measured that keeps up: perimeter {goal['perimeter_keeps_up_max_n']},"
        f" bare loops {goal['bare_keeps_up_max_n']}."
    )
    out.print(
        "latency: perimeter = frame due → gate decision of the non-critical probe policy"
        + ("" if args.probe else " (disabled: --no-latency-probe)")
        + "; alarm = the critical default policy, held until its GOP's signature verdict; "
        "bare = frame due → detector + tracker done. *p95 of the worst camera (bare: "
        "median of the cameras' p50). Memory: summed VmHWM of every process "
        "(✓: perimeter below the bare loops' total)."
    )
    for r in results:
        p = r["perimeter"]
        notes = []
        if p["exit"] != 0:
            notes.append(f"kontur demo exited {p['exit']}")
        if p["degradation"]["triggers"]:
            notes.append(f"degradation: {', '.join(p['degradation']['triggers'])}")
        if p["processes_unsampled"]:
            notes.append(f"no peak RSS for {', '.join(p['processes_unsampled'])}")
        if any(c["cut_by_bound"] for c in p["cameras"]):
            notes.append("cameras cut by the --seconds bound: their fraction is not comparable")
        bad = {v for c in p["cameras"] for v in c["gops"] if v != "AUTHENTIC"}
        if bad:
            notes.append(f"GOP verdicts other than AUTHENTIC: {', '.join(sorted(bad))}")
        if p["violations"]:
            notes.append(f"{p['violations']} edge violation(s)")
        if notes:
            out.print(f"[yellow]N={r['n']}:[/] " + "; ".join(notes))


if __name__ == "__main__":
    sys.exit(main())
