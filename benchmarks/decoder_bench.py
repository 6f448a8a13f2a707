"""Decoder isolation cost: ingest's sandboxed decoder against decoding in process.

Run from the repository root (after the README's install)::

    python benchmarks/decoder_bench.py [--repeats 5] [--clips pets,cars,tud]
                                       [--perimeter N] [--json OUT]

For each clip, in ONE run, alternating the two sides per repeat (against drift):

- **in process**: :func:`kontur.ingest.source.read_gops` decoding with the demuxer's own
  FFmpeg decoder (``ingest.decoder.unsafe_in_process``, kontur before ADR 0038);
- **sandboxed**: the same with ingest's :class:`~kontur.decoder.client.SandboxedDecoder` (a
  child in the worker's sandbox, frames through a memfd; its start-up is outside the timing,
  as it happens once per camera).

Each decoded frame is consumed as ingest consumes it: copied into a 16-slot ring-like
buffer (the one copy ingest makes into the frame ring). Reported per side: frames per second
of wall time (median of the repeats) and CPU milliseconds per frame (this process plus,
for the sandboxed side, the child's, from ``/proc``). Goal (issue 15 §1): the sandboxed
decoder costs <= 3 % of throughput. Extra copies: the child converts each frame to BGR and
copies it into a buffer slot (one copy the in-process decoder does not make); ingest then
copies it into the ring, as before.

``--perimeter N`` adds the whole perimeter: ``kontur demo`` on PETS09 with YOLOX-Nano
(``--no-sign``), N runs per side alternating, the side in process set by
``ingest.decoder.unsafe_in_process``; CPU milliseconds per frame of every process of the run
(the children's rusage: supervisor, blocks, the decoder children), start-up included.
"""

from __future__ import annotations

import argparse
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

import numpy as np

from kontur.decoder.client import DecoderSettings, SandboxedDecoder
from kontur.ingest.source import DecodedFrame, probe, read_gops

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CLIPS = {
    "pets": SHARED / "video" / "pets09_s2l1_480x360.avi",
    "cars": SHARED / "video" / "car_traffic_640x360.mp4",
    "tud": SHARED / "mot15" / "TUD-Campus" / "TUD-Campus.mp4",
}
_TICK = os.sysconf("SC_CLK_TCK")


def _child_cpu_s(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


class _Ring:
    """16 slots, as ingest's frame ring: each frame is copied into the next one."""

    def __init__(self, h: int, w: int) -> None:
        self.slots = np.zeros((16, h, w, 3), np.uint8)
        self.n = 0

    def put(self, frame: DecodedFrame) -> None:
        if frame.image is not None and frame.image.shape == self.slots.shape[1:]:
            self.slots[self.n % 16] = frame.image
        self.n += 1


def _pass(src: str, decoder: SandboxedDecoder | None) -> dict[str, float]:
    pr = probe(src)
    ring = _Ring(pr.info.height, pr.info.width)
    cpu0, child0 = time.process_time(), _child_cpu_s(decoder.pid if decoder else None)
    t0 = time.perf_counter()
    for _ in read_gops(src, pr, on_frame=ring.put, decoder=decoder):
        pass
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    cpu += _child_cpu_s(decoder.pid if decoder else None) - child0
    return {"frames": ring.n, "fps": ring.n / wall, "cpu_ms": 1000 * cpu / max(ring.n, 1)}


def _decoder(scratch: Path) -> SandboxedDecoder:
    settings = DecoderSettings(sandbox={"scratch_dir": str(scratch)}, slot_bytes=3 * 1920 * 1080)
    return SandboxedDecoder(settings, lambda *_: None)


def _clip(name: str, src: Path, repeats: int, scratch: Path) -> dict[str, Any]:
    dec = _decoder(scratch / name)
    try:
        _pass(str(src), dec)  # start the child and warm both paths
        _pass(str(src), None)
        runs: dict[str, list[dict[str, float]]] = {"in_process": [], "sandboxed": []}
        for i in range(repeats):
            order = ("in_process", "sandboxed") if i % 2 == 0 else ("sandboxed", "in_process")
            for side in order:
                runs[side].append(_pass(str(src), dec if side == "sandboxed" else None))
        if dec.losses:
            raise SystemExit(f"{name}: the sandboxed decoder was lost {dec.losses} time(s)")
    finally:
        dec.close()
    out: dict[str, Any] = {"clip": str(src), "runs": runs}
    for side, rs in runs.items():
        out[side] = {
            "fps": statistics.median(r["fps"] for r in rs),
            "cpu_ms": statistics.median(r["cpu_ms"] for r in rs),
            "frames": rs[0]["frames"],
        }
    out["fps_ratio"] = out["sandboxed"]["fps"] / out["in_process"]["fps"]
    out["cpu_ratio"] = out["sandboxed"]["cpu_ms"] / out["in_process"]["cpu_ms"]
    return out


def _demo(data: Path, in_process: bool) -> dict[str, float]:
    """One ``kontur demo`` run; its CPU per frame over every process it started."""
    args = [str(Path(sys.executable).with_name("kontur")), "demo", "--source", str(CLIPS["pets"]),
            "--model", str(SHARED / "models" / "yolox_nano.onnx"), "--no-sign",
            "--data-dir", str(data), "--json", str(data / "summary.json")]  # fmt: skip
    if in_process:
        cfg = data.parent / "in-process.yaml"
        cfg.write_text("ingest:\n  decoder:\n    unsafe_in_process: true\n")
        args += ["--config", str(cfg)]
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(args, capture_output=True, check=True)
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    frames = json.loads((data / "summary.json").read_text())["cameras"][0]["frames"]
    shutil.rmtree(data, ignore_errors=True)
    return {"frames": frames, "wall_s": wall, "cpu_ms": 1000 * cpu / frames}


def _perimeter(n: int, tmp: Path) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {"in_process": [], "sandboxed": []}
    for i in range(n):
        order = ("sandboxed", "in_process") if i % 2 == 0 else ("in_process", "sandboxed")
        for side in order:
            runs[side].append(_demo(tmp / f"demo-{side}-{i}", side == "in_process"))
    out: dict[str, Any] = {"runs": runs}
    for side, rs in runs.items():
        out[side] = {"cpu_ms": statistics.median(r["cpu_ms"] for r in rs)}
    out["cpu_ratio"] = out["sandboxed"]["cpu_ms"] / out["in_process"]["cpu_ms"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--clips", default="pets,cars,tud")
    ap.add_argument("--perimeter", type=int, default=0, help="kontur demo runs per side")
    ap.add_argument("--json", dest="json_out", type=Path)
    args = ap.parse_args()
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "load_start": os.getloadavg(),
        },
        "clips": {},
    }
    with tempfile.TemporaryDirectory(prefix="kontur-decbench-") as tmp:
        os.chmod(tmp, 0o711)
        for name in args.clips.split(","):
            r = _clip(name, CLIPS[name], args.repeats, Path(tmp))
            results["clips"][name] = r
            print(f"{name:5s} in process {r['in_process']['fps']:7.1f} fps "
                  f"{r['in_process']['cpu_ms']:5.2f} ms CPU | sandboxed "
                  f"{r['sandboxed']['fps']:7.1f} fps {r['sandboxed']['cpu_ms']:5.2f} ms CPU | "
                  f"fps ratio {r['fps_ratio']:.3f}, CPU ratio {r['cpu_ratio']:.3f}")  # fmt: skip
        if args.perimeter:
            p = results["perimeter"] = _perimeter(args.perimeter, Path(tmp))
            inp, sbx = p["in_process"]["cpu_ms"], p["sandboxed"]["cpu_ms"]
            print(f"perimeter CPU per frame: in process {inp:.2f} ms, sandboxed {sbx:.2f} ms, "
                  f"ratio {p['cpu_ratio']:.3f}")  # fmt: skip
    results["machine"]["load_end"] = os.getloadavg()
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
