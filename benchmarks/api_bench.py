"""The API under a running site (issue 11 "Benchmark"): its latency and throughput, and what
polling it costs the perimeter.

Run from the repository root (after the README's install)::

    python benchmarks/api_bench.py [--cameras N] [--seconds S] [--load-seconds L]
                                   [--model M] [--paced] [--json PATH|-]

One ``kontur run`` (the site service, API on 127.0.0.1, port picked by the kernel) with N
cameras (default 4), file sources from ``../shared/data/video`` with ``loop: true``,
unpaced (the perimeter runs as fast as the CPU lets it, so its fps is what API load could
take away). Viewer users are made with ``kontur user add --password-stdin`` and sign in over
httpx. In that one run, after the first frames:

1. **fps, polled vs not**: four phases of S/2 seconds in the order quiet, polled, polled,
   quiet (ABBA, so a linear drift of the machine's load cancels). *Polled*: one client asks
   ``GET /status`` and ``GET /events?limit=50`` in turn, 10 calls a second on a fixed
   schedule. In every phase the script reads ``DATA/run/state.json`` (the run state the
   supervisor publishes twice a second) every 0.5 s; fps = the least-squares slope of the
   cameras' summed ``frames`` over time within a phase (frames count in whole GOPs, so a fit
   over many samples is steadier than end minus start). Ratio = polled fps / quiet fps, goal
   >= 0.98.
2. **API latency and throughput**: 2 concurrent clients, closed loop (each sends its next
   call when the last answered), L seconds on ``GET /status`` then L on ``GET /events``.
   The API limits each principal to 20 calls a second (``ApiSettings.rate_per_s``), so each
   client spreads its calls over 3 users of its own, to measure the server and not the
   limiter; 429s are counted and left out of the latencies. p50/p99 are per call, client
   side (httpx, keep-alive), rps = answered 200s / phase seconds.

``--paced`` runs the cameras at their own frame rate (``kontur run --realtime``), as a site
does, and counts the frames *analysed* end to end (the verifier's findings, one per frame
the worker analysed; a frame the worker skipped because it lagged has none): then the ratio
says whether polling the API costs the site analysed frames, not whether it takes CPU from a
perimeter that already uses all of it.

Reported too: the perimeter's fps during the load phases, and the run state's own
frame-to-decision latencies at the end (``cameras[].latency_s``, see
``kontur.runtime.publish``). Skips with a message when ``../shared/data`` is absent.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
VIDEOS = ("pets09_s2l1_480x360.avi", "car_traffic_640x360.mp4")
DEFAULT_MODEL = SHARED / "models" / "yolox_nano.onnx"
KONTUR = Path(sys.executable).with_name("kontur")
POLL_HZ = 10.0
USERS_PER_CLIENT = 3
CLIENTS = 2


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def _slope(samples: list[tuple[float, int]]) -> float | None:
    """Least-squares frames per second over (time, frames) samples."""
    if len(samples) < 3:
        return None
    ts = [t for t, _ in samples]
    fs = [float(f) for _, f in samples]
    mt, mf = statistics.fmean(ts), statistics.fmean(fs)
    den = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (f - mf) for t, f in zip(ts, fs, strict=True)) / den if den else None


@dataclass
class Site:
    tmp: Path
    data: Path
    proc: subprocess.Popen[bytes]
    err_path: Path
    summary_path: Path
    url: str = ""
    passwords: dict[str, str] = field(default_factory=dict)

    def state(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self.data / "run" / "state.json").read_text()))
        except (OSError, ValueError):
            return None

    def frames(self) -> int | None:
        st = self.state()
        return None if st is None else sum(int(c["frames"]) for c in st["cameras"])

    def analysed(self) -> int | None:
        """Frames analysed end to end: the verifier's findings, one per frame the worker
        analysed (counted per frame, where ``frames`` moves a whole GOP at a time)."""
        st = self.state()
        if st is None:
            return None
        return sum(int(c["verifier_agree"]) + int(c["verifier_disagree"]) for c in st["cameras"])

    def login(self, name: str) -> httpx.Client:
        c = httpx.Client(base_url=self.url, timeout=30.0)
        r = c.post("/auth/login", json={"name": name, "password": self.passwords[name]})
        r.raise_for_status()
        return c


def _config(path: Path, cameras: int) -> Path:
    dwell = {"type": "dwell", "zone": "whole-frame", "classes": ["person"], "min_seconds": 2.0}
    cfg = {
        "site": "api-bench",
        "cameras": [
            {"id": f"cam{i + 1}", "source": str(SHARED / "video" / VIDEOS[i % 2]), "loop": True}
            for i in range(cameras)
        ],
        "actions": {"alarm": {"critical": False}},
        "policies": [{"rule": "person-dwell", "when": dwell, "action": "alarm"}],
        "api": {"enabled": True, "bind": "127.0.0.1", "port": 0},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def start_site(
    tmp: Path, cameras: int, model: Path, users: list[str], *, paced: bool = False
) -> Site:
    data = tmp / "d"
    passwords = {u: f"{u}-bench-correct-horse" for u in users}
    for name, password in passwords.items():
        r = subprocess.run(
            [str(KONTUR), "user", "add", name, "--role", "viewer", "--password-stdin",
             "--data-dir", str(data)],
            input=password + "\n", capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if r.returncode:
            raise SystemExit(f"kontur user add {name}: {r.stderr.strip()}")
    err_path, summary = tmp / "stderr.log", tmp / "summary.json"
    with open(err_path, "w") as err, open(tmp / "stdout.log", "w") as out:
        proc = subprocess.Popen(
            [str(KONTUR), "run", "--config", str(_config(tmp / "site.yaml", cameras)),
             "--data-dir", str(data), "--model", str(model), "--json", str(summary),
             *(["--realtime"] if paced else [])],
            stdout=out, stderr=err,
        )  # fmt: skip
    site = Site(tmp, data, proc, err_path, summary, passwords=passwords)
    end = time.monotonic() + 300
    while time.monotonic() < end:
        m = re.search(r'"event": "api_listening", "url": "([^"]+)"', err_path.read_text())
        if m:
            site.url = m.group(1)
            return site
        if proc.poll() is not None:
            raise SystemExit(f"kontur run exited {proc.returncode}: {err_path.read_text()[-2000:]}")
        time.sleep(0.5)
    raise SystemExit("kontur run: no api_listening line within 300 s")


def stop_site(site: Site) -> dict[str, Any] | None:
    if site.proc.poll() is None:
        site.proc.send_signal(signal.SIGTERM)
        try:
            site.proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            site.proc.kill()
            site.proc.wait()
    try:
        return dict(json.loads(site.summary_path.read_text()))
    except (OSError, ValueError):
        return None


def _sample_phase(
    site: Site, seconds: float, poll: httpx.Client | None, count: Callable[[], int | None]
) -> dict[str, Any]:
    """Sample ``count`` in the run state every 0.5 s for ``seconds``; with ``poll``, call the
    API at POLL_HZ in between (status and events in turn)."""
    samples: list[tuple[float, int]] = []
    calls = errors = 0
    t0 = time.monotonic()
    next_sample = next_call = t0
    while (now := time.monotonic()) < t0 + seconds:
        if now >= next_sample:
            f = count()
            if f is not None:
                samples.append((now, f))
            next_sample += 0.5
        if poll is not None and now >= next_call:
            path = "/status" if calls % 2 == 0 else "/events?limit=50"
            try:
                if poll.get(path).status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            calls += 1
            next_call += 1.0 / POLL_HZ
        wake = min(next_sample, next_call if poll is not None else next_sample)
        time.sleep(max(0.0, wake - time.monotonic()))
    return {
        "seconds": time.monotonic() - t0,
        "fps": _slope(samples),
        "samples": len(samples),
        "calls": calls,
        "errors": errors,
    }


def _load(
    site: Site, path: str, seconds: float, clients: list[list[httpx.Client]]
) -> dict[str, Any]:
    """CLIENTS threads, closed loop on ``path``, each round-robin over its users' sessions."""
    lat: list[float] = []
    codes: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    frames0 = (time.monotonic(), site.frames())

    def worker(sessions: list[httpx.Client]) -> None:
        mine: list[float] = []
        got: dict[int, int] = {}
        i = 0
        while time.monotonic() < stop_at:
            c = sessions[i % len(sessions)]
            i += 1
            t = time.perf_counter()
            try:
                code = c.get(path).status_code
            except httpx.HTTPError:
                code = 0
            dt = time.perf_counter() - t
            got[code] = got.get(code, 0) + 1
            if code == 200:
                mine.append(dt)
        with lock:
            lat.extend(mine)
            for k, v in got.items():
                codes[k] = codes.get(k, 0) + v

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(s,)) for s in clients]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.monotonic() - t0
    frames1 = (time.monotonic(), site.frames())
    fps = None
    if frames0[1] is not None and frames1[1] is not None:
        fps = (frames1[1] - frames0[1]) / (frames1[0] - frames0[0])
    p50, p99 = _pct(lat, 0.50), _pct(lat, 0.99)
    return {
        "path": path,
        "seconds": wall,
        "ok": len(lat),
        "codes": {str(k): v for k, v in sorted(codes.items())},
        "rps": len(lat) / wall if wall else None,
        "p50_ms": p50 * 1000 if p50 is not None else None,
        "p99_ms": p99 * 1000 if p99 is not None else None,
        "perimeter_fps_during": fps,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0, help="quiet and polled, each")
    ap.add_argument("--load-seconds", type=float, default=20.0, help="per route")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument(
        "--paced",
        action="store_true",
        help="cameras at their frame rate (kontur run --realtime); fps = frames analysed",
    )
    ap.add_argument("--json", dest="json_out", default=None, help="PATH, or - for stdout")
    args = ap.parse_args(argv)
    console = Console(stderr=args.json_out == "-", width=80)
    if not SHARED.is_dir() or not args.model.exists():
        console.print(f"[yellow]skipped:[/] needs {SHARED} (videos and {args.model.name})")
        return 0
    users = [f"bench{i}" for i in range(CLIENTS * USERS_PER_CLIENT)]
    tmp = Path(tempfile.mkdtemp(prefix="kontur-api-bench-"))
    result: dict[str, Any] = {
        "benchmark": "api_bench",
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
        },
        "params": {
            "cameras": args.cameras,
            "seconds": args.seconds,
            "load_seconds": args.load_seconds,
            "poll_hz": POLL_HZ,
            "clients": CLIENTS,
            "users_per_client": USERS_PER_CLIENT,
            "videos": [VIDEOS[i % 2] for i in range(args.cameras)],
            "model": args.model.name,
            "paced": args.paced,
            "fps_counts": "frames analysed" if args.paced else "frames ingested",
        },
    }
    site: Site | None = None
    try:
        with console.status("kontur user add, kontur run (model load, placement)…"):
            site = start_site(tmp, args.cameras, args.model, users, paced=args.paced)
            end = time.monotonic() + 300
            while (site.frames() or 0) == 0 and time.monotonic() < end:
                time.sleep(0.5)
            time.sleep(5.0)  # past the first GOPs
        console.print(f"site up at {site.url}, {site.frames()} frames so far")
        half = args.seconds / 2
        order = ["quiet", "polled", "polled", "quiet"]
        phases: list[dict[str, Any]] = []
        poller = site.login(users[0])
        cols = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
        with Progress(*cols, console=console) as progress:
            task = progress.add_task("fps phases", total=len(order))
            for kind in order:
                progress.update(task, description=f"fps: {kind} ({half:.0f} s)")
                count = site.analysed if args.paced else site.frames
                ph = _sample_phase(site, half, poller if kind == "polled" else None, count)
                phases.append({"kind": kind, **ph})
                progress.advance(task)
            sessions = [
                [site.login(u) for u in users[k * USERS_PER_CLIENT : (k + 1) * USERS_PER_CLIENT]]
                for k in range(CLIENTS)
            ]
            task2 = progress.add_task("api load", total=2)
            loads = []
            for path in ("/status", "/events?limit=50"):
                progress.update(task2, description=f"load: GET {path} ({args.load_seconds:.0f} s)")
                loads.append(_load(site, path, args.load_seconds, sessions))
                progress.advance(task2)
        final = site.state() or {}
        for c in [poller, *[s for ss in sessions for s in ss]]:
            c.close()

        def fps_of(kind: str) -> float | None:
            xs = [p["fps"] for p in phases if p["kind"] == kind and p["fps"] is not None]
            return statistics.fmean(xs) if xs else None

        quiet, polled = fps_of("quiet"), fps_of("polled")
        ratio = polled / quiet if quiet and polled is not None else None
        lat = [x for c in final.get("cameras", []) for x in c.get("latency_s", [])]
        result.update(
            {
                "phases": phases,
                "fps_quiet": quiet,
                "fps_polled": polled,
                "fps_ratio": ratio,
                "fps_ratio_goal": 0.98,
                "fps_ratio_met": ratio is not None and ratio >= 0.98,
                "api": loads,
                "decision_latency_s": {
                    "n": len(lat),
                    "p50": _pct(lat, 0.5),
                    "p99": _pct(lat, 0.99),
                },
            }
        )
    finally:
        if site is not None:
            with console.status("stopping kontur run (SIGTERM)…"):
                summary = stop_site(site)
            result["run"] = {
                "returncode": site.proc.returncode,
                "summary_fps": (summary or {}).get("fps"),
                "cameras": [
                    {k: c.get(k) for k in ("id", "frames", "frames_skipped", "decisions")}
                    for c in (summary or {}).get("cameras", [])
                ],
            }
        result["machine"]["loadavg_end"] = os.getloadavg()
        shutil.rmtree(tmp, ignore_errors=True)
    _report(console, result)
    if args.json_out == "-":
        print(json.dumps(result, indent=2))
    elif args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"results: {args.json_out}")
    return 0


def _f(x: float | None, fmt: str = ".1f") -> str:
    return "n/a" if x is None else format(x, fmt)


def _report(console: Console, r: dict[str, Any]) -> None:
    p = r["params"]
    console.rule("kontur API benchmark (issue 11)")
    console.print(
        f"{p['cameras']} cameras (looped, {'paced' if p.get('paced') else 'unpaced'}), "
        f"{p['model']}, "
        f"{r['machine']['cpus']} CPUs, load {r['machine']['loadavg_start'][0]:.1f} at start"
    )
    if "api" not in r:
        console.print("[red]no figures: the run did not get that far[/]")
        return
    console.print(f"{'route':<20}{'p50 ms':>9}{'p99 ms':>9}{'rps':>8}{'200s':>7}  other  fps")
    for a in r["api"]:
        other = {k: v for k, v in a["codes"].items() if k != "200"}
        console.print(
            f"{a['path']:<20}{_f(a['p50_ms']):>9}{_f(a['p99_ms']):>9}{_f(a['rps']):>8}"
            f"{a['ok']:>7}  {json.dumps(other) if other else '-':<6} "
            f"{_f(a['perimeter_fps_during'])}"
        )
    met = "met" if r["fps_ratio_met"] else "NOT met"
    console.print(
        f"fps quiet {_f(r['fps_quiet'])}, polled {p['poll_hz']:g}/s {_f(r['fps_polled'])}: "
        f"ratio {_f(r['fps_ratio'], '.3f')} (goal >= 0.98, {met})"
    )
    for ph in r["phases"]:
        console.print(
            f"  {ph['kind']:<7} {ph['seconds']:5.1f} s  fps {_f(ph['fps'], '.2f'):>7}  "
            f"{ph['samples']} samples  {ph['calls']} calls  {ph['errors']} errors"
        )
    d = r["decision_latency_s"]
    console.print(
        f"decision latency (run state, {d['n']} recent): "
        f"p50 {_f(d['p50'], '.2f')} s, p99 {_f(d['p99'], '.2f')} s"
    )
    run = r.get("run", {})
    console.print(
        f"kontur run exit {run.get('returncode')}, summary fps {_f(run.get('summary_fps'))}, "
        f"load {r['machine']['loadavg_end'][0]:.1f} at end"
    )


if __name__ == "__main__":
    sys.exit(main())
