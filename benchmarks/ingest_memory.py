"""Ingest memory: peak RSS of the real ingest process against a bare PyAV decode loop.

Run from the repository root (after the README's install)::

    .venv/bin/python benchmarks/ingest_memory.py [--seconds 64] [--fps 10] [--json OUT]

Two 1280x720 H.264 clips are made by the script with PyAV/libx264 (``preset ultrafast``, no
B-frames, a camera-like 2 Mb/s, a textured scene that pans) and cached under
``~/.cache/kontur/bench/``: one whose whole length is a single GOP (keyint larger than the
clip) and one with ordinary one-second GOPs. Everything below is measured in ONE run, each
figure in its own fresh process, whose peak RSS (``VmHWM`` of ``/proc/self/status``) a tiny
wrapper reads as it exits (``ru_maxrss`` would not do: on Linux it also counts the RSS of
the forked parent before ``exec``):

- **python + imports**: the interpreter after ``import kontur.ingest.process`` (the fixed cost);
- **baseline decode**: a bare PyAV loop over the clip, threaded as ingest decodes
  (``thread_type AUTO``), converting every frame to a BGR array and keeping none;
- **ingest default**: ``python -m kontur.ingest.process SPEC`` started as the supervisor
  starts it, with a 16-slot ring in ``/dev/shm`` (two readers that never attach, so the
  writer never waits) and its pipes drained by this script;
- **ingest strict**: the same with ``critical`` on and the simulated demo camera signing the
  clip (verify before decode: each GOP is decoded after its signature verified).

When ``../shared/data`` is present, the same figures for the real PETS09 clip (480x360, four
GOPs of up to 250 frames) are added as a third row.

Ingest's RSS includes the ring's shared-memory pages it writes (16 slots of one 720p frame,
44 MB); the ``ring`` column says how much. Goal: ingest <= 150 MB peak at 720p, whatever the
GOP length (the one-GOP row may not exceed the ordinary-GOP row by more than the compressed
packets of the open GOP, which ingest must hold to store the segment).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kontur" / "bench"
WIDTH, HEIGHT, SLOTS, READERS = 1280, 720, 16, 2
BITRATE = 2_000_000
GOAL_MB = 150.0
PETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "pets09_s2l1_480x360.avi"
MB = 1024 * 1024

_DECODE = """
import sys, av
with av.open(sys.argv[1]) as c:
    s = c.streams.video[0]
    s.thread_type = "AUTO"
    for f in c.decode(s):
        f.to_ndarray(format="bgr24")
"""

#: Runs a module (``-m``) or code (``-c``) as ``__main__``, then writes its VmHWM (KiB) to OUT.
_WRAP = """
import runpy, sys
out, kind, target, *rest = sys.argv[1:]
sys.argv = [target, *rest]
try:
    if kind == "-m":
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        exec(compile(target, "<bench>", "exec"), {"__name__": "__main__"})
finally:
    with open("/proc/self/status") as f:
        kb = next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:"))
    with open(out, "w") as f:
        f.write(str(kb))
"""


# --------------------------------------------------------------------------- the clips


def _scene(i: int, base: np.ndarray) -> np.ndarray:
    """Frame ``i`` of a textured scene panning 4 px per frame, with a moving bright block."""
    img = np.roll(base, 4 * i, axis=1)
    x = (16 * i) % (WIDTH - 120)
    img[300:420, x : x + 120] = 250
    return img


def make_clip(seconds: int, fps: int, keyint: int) -> Path:
    """A 720p H.264 MP4 of ``seconds`` at ``fps`` with a keyframe every ``keyint`` frames."""
    import av

    frames = seconds * fps
    out = CACHE / f"ingest-memory-{WIDTH}x{HEIGHT}-{fps}fps-{frames}f-k{keyint}.mp4"
    if out.is_file():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    tile = rng.integers(40, 200, size=(HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
    base = np.ascontiguousarray(np.kron(tile, np.ones((8, 8, 1), np.uint8)))
    tmp = out.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as dst:
        s = dst.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        s.bit_rate = BITRATE
        kbps = BITRATE // 1000
        s.options = {
            "preset": "ultrafast",
            "x264-params": (
                f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0:"
                f"vbv-maxrate={kbps}:vbv-bufsize={kbps}"
            ),
        }
        for i in range(frames):
            vf = av.VideoFrame.from_ndarray(_scene(i, base), format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for pkt in s.encode(vf):
                dst.mux(pkt)
        for pkt in s.encode(None):
            dst.mux(pkt)
    os.replace(tmp, out)
    return out


def clip_facts(path: Path) -> tuple[int, int, int]:
    """``(frames, keyframes, bytes)`` of a clip, by demuxing it."""
    import av

    frames = keys = 0
    with av.open(str(path)) as c:
        for pkt in c.demux(c.streams.video[0]):
            if pkt.size:
                frames += 1
                keys += bool(pkt.is_keyframe)
    return frames, keys, path.stat().st_size


# --------------------------------------------------------------------------- measuring


def _wrapped(out: Path, kind: str, target: str, *args: str) -> list[str]:
    """The command that runs ``target`` (``-m`` module or ``-c`` code) and records its peak."""
    return [sys.executable, "-c", _WRAP, str(out), kind, target, *args]


def _peak_mb(out: Path) -> float:
    """The peak RSS (MiB) a wrapped child wrote to ``out``."""
    return int(out.read_text()) / 1024


def peak_of(work: Path, code: str, *args: str) -> float:
    """Peak RSS (MiB) of a fresh Python running ``code``; raises when it fails."""
    out = work / f"hwm-{secrets.token_hex(3)}"
    subprocess.run(_wrapped(out, "-c", code, *args), check=True, stdout=subprocess.DEVNULL)
    return _peak_mb(out)


def _pipe() -> tuple[int, int]:
    r, w = os.pipe()
    os.set_inheritable(w, True)
    return r, w


def _drain(fds: list[int]) -> list[bytes]:
    """Read ``fds`` until every one is at EOF; the lines that came on the first."""
    import select

    open_fds, buf = list(fds), b""
    while open_fds:
        ready, _, _ = select.select(open_fds, [], [], 1.0)
        for fd in ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                open_fds.remove(fd)
            elif fd == fds[0]:
                buf += chunk
    return [ln for ln in buf.split(b"\n") if ln]


def _spec(clip: Path, data: Path, ring: str, fds: dict[str, Any], strict: bool) -> dict[str, Any]:
    """The spec the supervisor would write for this camera (strict: the demo camera signs)."""
    from kontur.clock import SystemClock
    from kontur.ingest.democam import provision_demo_camera
    from kontur.ingest.source import probe

    spec: dict[str, Any] = {
        "camera_id": "cam",
        "source": str(clip),
        "profile": probe(str(clip)).profile().model_dump(),
        "ring": ring,
        "slots": SLOTS,
        "readers": READERS,
        "data_dir": str(data),
        "realtime": False,
        "critical": strict,
        "demo_camera": None,
        **fds,
    }
    if strict:
        files = provision_demo_camera(data, "cam", SystemClock())
        spec["demo_camera"] = {"key": str(files.key_path), "chain": str(files.chain_path)}
    return spec


def ingest_peak(clip: Path, work: Path, *, strict: bool) -> dict[str, Any]:
    """Run the real ingest process over ``clip``; its peak RSS and what it reported."""
    from kontur.ingest.source import probe
    from kontur.wire.framering import FrameRing
    from kontur.wire.messages import GopClosed, SourceEnded, decode

    info = probe(str(clip)).info
    ring = FrameRing(f"kontur-mem-{secrets.token_hex(4)}", SLOTS, info.height, info.width, READERS)
    sup_r, sup_w = _pipe()
    gate_r, gate_w = _pipe()
    ctl_r, ctl_w = os.pipe()
    os.set_inheritable(ctl_r, True)
    wakes = [_pipe() for _ in range(READERS)]
    fds = {"wake_fds": [w for _, w in wakes], "supervisor_fd": sup_w, "gate_fd": gate_w}
    data = work / f"data-{'strict' if strict else 'default'}"
    spec = _spec(clip, data, ring.name, dict(fds, control_fd=ctl_r), strict)
    spec_path = work / f"spec-{secrets.token_hex(3)}.json"
    spec_path.write_text(json.dumps(spec))
    child = (sup_w, gate_w, ctl_r, *(w for _, w in wakes))
    out = work / f"hwm-{secrets.token_hex(3)}"
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            _wrapped(out, "-m", "kontur.ingest.process", str(spec_path)),
            pass_fds=child,
            env=dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1"),
        )
        for fd in child:
            os.close(fd)
        lines = _drain([sup_r, gate_r, *(r for r, _ in wakes)])
        rc = proc.wait()
    finally:
        for fd in (sup_r, gate_r, ctl_w, *(r for r, _ in wakes)):
            os.close(fd)
        ring.close(unlink=True)
    msgs = [decode(ln) for ln in lines]
    ended = [m for m in msgs if isinstance(m, SourceEnded)]
    gops = [m for m in msgs if isinstance(m, GopClosed)]
    if rc or not ended or ended[0].error:
        raise RuntimeError(f"expected ingest to end cleanly, got exit {rc}, {ended}")
    return {
        "peak_mb": _peak_mb(out),
        "seconds": time.monotonic() - started,
        "frames": ended[0].frames,
        "gops": len(gops),
        "verdicts": sorted({g.verdict.verdict.value for g in gops}),
    }


def _frame_bytes(clip: Path) -> int:
    """The size of one BGR frame of ``clip`` (a ring slot's pixels)."""
    from kontur.ingest.source import probe

    info = probe(str(clip)).info
    return info.width * info.height * 3


@dataclass
class Row:
    """One clip's figures."""

    clip: str
    frames: int
    gops: int
    compressed_mb: float
    imports_mb: float
    baseline_mb: float
    default_mb: float
    strict_mb: float
    ring_mb: float

    def cells(self) -> list[str]:
        """The printed row."""
        b = self.baseline_mb
        return [
            self.clip,
            str(self.frames),
            str(self.gops),
            f"{self.compressed_mb:.1f}",
            f"{self.imports_mb:.0f}",
            f"{b:.0f}",
            f"{self.default_mb:.0f} ({self.default_mb / b:.2f}x)",
            f"{self.strict_mb:.0f} ({self.strict_mb / b:.2f}x)",
            f"{self.ring_mb:.0f}",
        ]


def measure(name: str, clip: Path, work: Path) -> Row:
    """Every figure of one clip, each in a fresh process."""
    frames, keys, size = clip_facts(clip)
    imports = peak_of(work, "import kontur.ingest.process")
    baseline = peak_of(work, _DECODE, str(clip))
    default = ingest_peak(clip, work, strict=False)
    strict = ingest_peak(clip, work, strict=True)
    for run in (default, strict):
        if run["frames"] != frames:
            raise RuntimeError(f"expected ingest to read {frames} frames, got {run['frames']}")
    print(f"  {name}: default {default}\n  {name}: strict {strict}", file=sys.stderr)
    return Row(
        name,
        frames,
        keys,
        size / MB,
        imports,
        baseline,
        default["peak_mb"],
        strict["peak_mb"],
        SLOTS * _frame_bytes(clip) / MB,
    )


def table(rows: list[Row]) -> str:
    """The rows as an aligned text table."""
    head = [
        "clip",
        "frames",
        "GOPs",
        "packets MB",
        "imports MB",
        "baseline MB",
        "ingest default MB",
        "ingest strict MB",
        "ring MB",
    ]
    cells = [head, *(r.cells() for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells)


def main() -> int:
    """Make (or reuse) the clips, measure, print the table; exit 1 when the goal is missed."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=int, default=64, help="clip length (default 64)")
    ap.add_argument("--fps", type=int, default=10, help="clip frame rate (default 10)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    frames = args.seconds * args.fps
    clips = {
        f"720p one GOP ({args.seconds} s)": make_clip(args.seconds, args.fps, frames + 1),
        f"720p 1 s GOPs ({args.seconds} s)": make_clip(args.seconds, args.fps, args.fps),
    }
    if PETS.is_file():  # real footage, when ../shared/data is there (250-frame GOPs)
        clips["PETS09 480x360 (shared)"] = PETS
    work = Path(tempfile.mkdtemp(prefix="kontur-bench-mem-"))
    try:
        rows = [measure(name, path, work) for name, path in clips.items()]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table(rows))
    worst = max(max(r.default_mb, r.strict_mb) for r in rows)
    one, many = rows[:2]
    growth = max(one.default_mb - many.default_mb, one.strict_mb - many.strict_mb)
    ok = worst <= GOAL_MB
    print(
        f"goal: ingest <= {GOAL_MB:.0f} MB peak at 720p: {'met' if ok else 'MISSED'} "
        f"(worst {worst:.0f} MB); one GOP vs 1 s GOPs: {growth:+.0f} MB "
        f"(the one-GOP clip's packets are {one.compressed_mb:.1f} MB)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
