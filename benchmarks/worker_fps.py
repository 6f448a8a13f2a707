"""Analytics throughput: in-process, through the sandboxed worker, and cameras per machine.

Run from the repository root (after the README's install)::

    python benchmarks/worker_fps.py [--video V] [--model M] [--frames N] [--repeats R] [--json OUT]

Everything below is measured in ONE run, on the same decoded frames (PETS09 and YOLOX-Nano
by default), with the model wrapped in a throwaway signed release exactly as ``kontur demo
--model`` does, interleaved per repeat; medians over ``--repeats``:

- **in-process, 1 thread**: ``build_detector`` (release runner, 1 intra-op thread) +
  ``CameraTracker`` over frames already in memory. *fps per core*.
- **in-process, motion-gated**: the same with ``MotionGate`` in front of the detector.
- **sandboxed worker**: the real worker process (``python -m kontur.worker.process``, started
  by the runtime's ``Supervisor`` with the full sandbox: netns, Landlock, seccomp, rlimits,
  unprivileged uid) reading the same frames from a shared-memory ring; fps = frames / (first
  frame published → last ``TrackFrame`` received). The overhead ratio is against the
  in-process figure (goal: ≥ 0.95, i.e. ≤ 5 % overhead).
- **unsandboxed worker**: the same process with every sandbox mechanism skipped
  (``unsafe_skip``), to separate the cost of the sandbox from the cost of the process.
- **cameras per machine**: two concurrent processes (one per core), each decoding the clip
  with PyAV and running detect + track, full-frame and motion-gated; cameras sustained at
  10 fps = ⌊Σ fps / 10⌋. Ingest's recording and the verifier are not included (see
  ``perimeter_fps.py`` for the whole perimeter).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import multiprocessing as mp
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
DEFAULT_VIDEO = SHARED / "video" / "pets09_s2l1_480x360.avi"
DEFAULT_MODEL = SHARED / "models" / "yolox_nano.onnx"
CAMERA_FPS = 10.0


def decode(video: Path, limit: int | None) -> tuple[list[np.ndarray], float]:
    import av

    frames: list[np.ndarray] = []
    with av.open(str(video)) as c:
        s = c.streams.video[0]
        rate = float(s.average_rate or s.guessed_rate or 25)
        for fr in c.decode(s):
            frames.append(fr.to_ndarray(format="bgr24"))
            if limit is not None and len(frames) >= limit:
                break
    return frames, rate


def prepare(model: Path, tmp: Path) -> Any:
    from kontur.clock import SystemClock
    from kontur.runtime.models import prepare_release

    return prepare_release(data_dir=tmp, clock=SystemClock(), model=model)


def make_detector(prepared: Any, motion: bool) -> Any:
    from kontur.config import load_config
    from kontur.worker.motion import MotionGate
    from kontur.worker.runners import build_detector

    det = build_detector(
        prepared.release.manifest.manifest,
        prepared.release.files,
        model_id=prepared.model_id,
        platform="cpu",
        intra_op_threads=1,
    )
    return MotionGate(det, load_config().worker.motion) if motion else det


def in_process(prepared: Any, frames: list[np.ndarray], fps: float, motion: bool) -> float:
    from kontur.worker.tracking import CameraTracker

    det = make_detector(prepared, motion)
    tracker = CameraTracker(fps, det.class_names)
    det.infer(frames[0])  # warm-up, as the worker's first frame would be
    t0 = time.perf_counter()
    for f in frames:
        tracker.update(det.infer(f))
    return len(frames) / (time.perf_counter() - t0)


def worker_run(
    prepared: Any, frames: list[np.ndarray], fps: float, run_dir: Path, skip: list[str]
) -> dict[str, Any]:
    """Feed ``frames`` to a real worker process through a ring; returns fps and isolation."""
    from kontur.config import load_config
    from kontur.runtime.supervisor import Block, Supervisor
    from kontur.wire import FrameReady, TrackFrame, WorkerReady
    from kontur.wire.channel import Inbox, wait_readable
    from kontur.wire.framering import FrameRing

    h, w = frames[0].shape[:2]
    ring = FrameRing(f"kontur-bench-{secrets.token_hex(4)}", 16, h, w, 1)
    wake_r, wake_w = os.pipe()
    v_r, v_w = os.pipe()
    s_r, s_w = os.pipe()
    for fd in (wake_r, v_w, s_w):
        os.set_inheritable(fd, True)
    spec_part, blob = prepared.worker_spec()
    cam = {"camera_id": "bench", "ring": ring.name, "fps": fps, "width": w, "height": h}
    spec = dict(
        spec_part,
        platform="cpu",
        config_id="bench",
        cameras=[cam],
        reader_index=0,
        wake_fd=wake_r,
        verifier_fd=v_w,
        supervisor_fd=s_w,
        worker=load_config().worker.model_dump(),
        sandbox={"unsafe_skip": skip} if skip else {},
    )
    sup = Supervisor(run_dir)
    block = Block("worker", "kontur.worker.process", spec, (wake_r, v_w, s_w), stdin_data=blob)
    sup.start([block])
    for fd in (wake_r, v_w, s_w):
        os.close(fd)
    to_sup, to_ver = Inbox(s_r, "worker"), Inbox(v_r, "worker")
    ready: WorkerReady | None = None
    try:
        deadline = time.monotonic() + 120
        while ready is None and time.monotonic() < deadline:
            for m in (m for ib in wait_readable([to_sup], 0.1) for m in ib.drain()):
                ready = m if isinstance(m, WorkerReady) else ready
            if sup.exited():
                raise RuntimeError(f"worker exited; see {run_dir}/logs")
        while ring.reader_heartbeat(0) <= 0:
            time.sleep(0.01)
        got = 0
        t0 = time.perf_counter()
        for i, f in enumerate(frames):
            meta = (
                FrameReady(
                    camera_id="bench",
                    seq=i,
                    frame_index=i,
                    pts_s=i / fps,
                    gop_index=0,
                    slot=i % 16,
                    width=w,
                    height=h,
                )
                .model_dump_json()
                .encode()
            )
            ring.write(f, meta, max_wait_s=30.0)
            os.write(wake_w, b"x")
            for ib in wait_readable([to_ver], 0):
                got += sum(isinstance(m, TrackFrame) for m in ib.drain())
        while got < len(frames) and time.perf_counter() - t0 < 300:
            for ib in wait_readable([to_ver], 0.5):
                got += sum(isinstance(m, TrackFrame) for m in ib.drain())
        elapsed = time.perf_counter() - t0
    finally:
        sup.stop_all(grace_s=5.0)
        ring.close()
        for fd in (wake_w, v_r, s_r):
            os.close(fd)
    iso = getattr(ready, "isolation", None)
    return {"fps": got / elapsed, "frames": got, "isolation": iso}


def _camera_child(video: str, model: str, motion: bool, q: Any) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    from kontur.worker.tracking import CameraTracker

    with tempfile.TemporaryDirectory() as tmp:
        prepared = prepare(Path(model), Path(tmp))
        det = make_detector(prepared, motion)
        import av

        n = 0
        t0 = time.perf_counter()
        with av.open(video) as c:
            s = c.streams.video[0]
            tracker = CameraTracker(float(s.average_rate or 25), det.class_names)
            for fr in c.decode(s):
                tracker.update(det.infer(fr.to_ndarray(format="bgr24")))
                n += 1
        q.put(n / (time.perf_counter() - t0))


def cameras(video: Path, model: Path, motion: bool, procs: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    ps = [
        ctx.Process(target=_camera_child, args=(str(video), str(model), motion, q))
        for _ in range(procs)
    ]
    for p in ps:
        p.start()
    rates = [q.get(timeout=900) for _ in ps]
    for p in ps:
        p.join()
    total = sum(rates)
    return {"fps_total": total, "cameras_at_10fps": math.floor(total / CAMERA_FPS)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    for p in (args.video, args.model):
        if not p.exists():
            print(f"worker_fps: error: expected {p}, found nothing", file=sys.stderr)
            return 2
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    frames, fps = decode(args.video, args.frames)
    res: dict[str, list[float]] = {
        k: [] for k in ("inproc", "inproc_motion", "worker", "worker_unsafe")
    }
    iso: Any = None
    with (
        tempfile.TemporaryDirectory(prefix="kontur-bench-") as tmp,
        Progress(console=console) as prog,
    ):
        prepared = prepare(args.model, Path(tmp))
        task = prog.add_task("worker throughput", total=args.repeats * 4 + 2)
        for r in range(args.repeats):
            res["inproc"].append(in_process(prepared, frames, fps, False))
            prog.advance(task)
            res["inproc_motion"].append(in_process(prepared, frames, fps, True))
            prog.advance(task)
            wr = worker_run(prepared, frames, fps, Path(tmp) / f"run{r}", [])
            res["worker"].append(wr["fps"])
            iso = wr["isolation"]
            prog.advance(task)
            skip = ["limits", "netns", "landlock", "seccomp", "user"]
            res["worker_unsafe"].append(
                worker_run(prepared, frames, fps, Path(tmp) / f"u{r}", skip)["fps"]
            )
            prog.advance(task)
        procs = os.cpu_count() or 1
        cam_full = cameras(args.video, args.model, False, procs)
        prog.advance(task)
        cam_motion = cameras(args.video, args.model, True, procs)
        prog.advance(task)
    med = {k: statistics.median(v) for k, v in res.items()}
    out = {
        "date": _dt.date.today().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
        "video": str(args.video),
        "model": str(args.model),
        "frames": len(frames),
        "repeats": args.repeats,
        "fps_median": {k: round(v, 2) for k, v in med.items()},
        "fps_runs": {k: [round(x, 2) for x in v] for k, v in res.items()},
        "ratio_worker_vs_inproc": round(med["worker"] / med["inproc"], 3),
        "ratio_sandbox_vs_unsandboxed_worker": round(med["worker"] / med["worker_unsafe"], 3),
        "ratio_motion_vs_full_inproc": round(med["inproc_motion"] / med["inproc"], 3),
        "cameras_full_frame": cam_full,
        "cameras_motion_gated": cam_motion,
        "isolation": iso,
    }
    console.print_json(json.dumps(out))
    r_worker = out["ratio_worker_vs_inproc"]
    r_sandbox = out["ratio_sandbox_vs_unsandboxed_worker"]
    console.print(
        f"[bold]in-process[/] {med['inproc']:.1f} fps/core · sandboxed worker "
        f"{med['worker']:.1f} fps (×{r_worker:.3f}; sandbox alone ×{r_sandbox:.3f}) · "
        f"cameras @10 fps: {cam_full['cameras_at_10fps']} full-frame, "
        f"{cam_motion['cameras_at_10fps']} motion-gated"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
