"""Label-preserving variants of the public clips: what other cameras on the same scenes send.

    python benchmarks/footage_variants.py --out DIR [--json PATH|-]

Writes, for the public clips of ``../shared/data`` (ADR 0054), each variant as an H.264 file
in ``DIR`` (CRF 18 unless the variant is about the encoder):

- ``mirror``: the picture mirrored left to right;
- ``zoom`` and ``cropbl``: a 2/3 crop (centre, bottom-left) scaled back up, a tighter framing;
- ``small``: 3/4 of the size;
- ``half`` and ``third``: every 2nd or 3rd frame, at that frame rate;
- ``crf36``: x264 at CRF 36 (a camera on a thin link);
- ``dark``: gain 0.6 and gamma 1.25 (evening light);
- ``noise``: Gaussian sensor noise of 6 grey levels a channel (seeded).

It prints (and ``--json`` writes) the ``--clip NAME=VIDEO`` arguments that run them through
``benchmarks/verifier_bench.py``, whose ``own_clips`` totals then hold them apart from the
public clips' goals. Nothing here is tampering: no blur, no covering, no camera movement.
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CLIPS = {
    "p": SHARED / "video" / "pets09_s2l1_480x360.avi",
    "t": SHARED / "mot15" / "TUD-Campus" / "TUD-Campus.mp4",
    "c": SHARED / "video" / "car_traffic_640x360.mp4",
}
#: The variants measured per clip (PETS09 gets every kind; the others the framing and rate).
PLAN = {
    "p": ("mirror", "zoom", "cropbl", "small", "half", "crf36", "dark", "noise"),
    "t": ("mirror", "zoom", "half"),
    "c": ("mirror", "zoom", "half", "third"),
}


def _read(path: Path) -> tuple[list[np.ndarray], float]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    fps, frames = float(capture.get(cv2.CAP_PROP_FPS)), []
    while (got := capture.read())[0]:
        frames.append(got[1])
    capture.release()
    return frames, fps


def _write(path: Path, frames: list[np.ndarray], fps: float, crf: int) -> None:
    import av

    h, w = frames[0].shape[0] // 2 * 2, frames[0].shape[1] // 2 * 2
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "g": str(round(2 * fps))}
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]), "bgr24")
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def variant(frames: list[np.ndarray], fps: float, kind: str) -> tuple[list[np.ndarray], float]:
    """``frames`` as the ``kind`` camera would send them, and its frame rate (the crops and
    the tone curve are the tamper bench's clean-hours variants')."""
    import cv2

    from tamper_bench import _crop, _lut

    if kind in ("half", "third"):
        step = 2 if kind == "half" else 3
        return frames[::step], fps / step
    if kind == "mirror":
        return [cv2.flip(f, 1) for f in frames], fps
    if kind in ("zoom", "cropbl"):
        x, y = (0.5, 0.5) if kind == "zoom" else (0.0, 1.0)
        return [_crop(f, (x, y)) for f in frames], fps
    if kind == "small":
        return [
            cv2.resize(f, (f.shape[1] * 3 // 4, f.shape[0] * 3 // 4), interpolation=cv2.INTER_AREA)
            for f in frames
        ], fps
    if kind == "dark":
        return [cv2.LUT(f, _lut(lambda v: 0.6 * v**1.25)) for f in frames], fps
    if kind == "noise":
        rng = np.random.default_rng(7)
        noisy = (
            f.astype(np.int16) + rng.normal(0, 6, f.shape).round().astype(np.int16) for f in frames
        )
        return [np.clip(n, 0, 255).astype(np.uint8) for n in noisy], fps
    if kind == "crf36":
        return frames, fps
    raise ValueError(
        f"expected a variant among {sorted({k for v in PLAN.values() for k in v})}, got {kind!r}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="DIR for the variant videos")
    ap.add_argument("--json", dest="json_out", default=None, help="PATH, or - for stdout")
    args = ap.parse_args(argv)
    missing = [str(p) for p in CLIPS.values() if not p.is_file()]
    if missing:
        print(
            f"footage_variants: expected the shared test data, missing {missing}", file=sys.stderr
        )
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = _write_all(out)
    clip_args = [f"--clip {name}={path}" for name, path in written.items()]
    result: dict[str, Any] = {"out": str(out), "videos": written, "verifier_bench_args": clip_args}
    if args.json_out == "-":
        print(json.dumps(result, indent=2))
    else:
        print(" ".join(clip_args), file=sys.stderr)
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _write_all(out: Path) -> dict[str, str]:
    from rich.progress import Progress

    written: dict[str, str] = {}
    with Progress(transient=True) as progress:
        task = progress.add_task("variants", total=sum(len(v) for v in PLAN.values()))
        for clip, kinds in PLAN.items():
            frames, fps = _read(CLIPS[clip])
            for kind in kinds:
                progress.update(task, description=f"{clip}-{kind}")
                shown, rate = variant(frames, fps, kind)
                path = out / f"{clip}-{kind}.mp4"
                _write(path, shown, rate, 36 if kind == "crf36" else 18)
                written[f"{clip}-{kind}"] = str(path)
                progress.advance(task)
    return written


if __name__ == "__main__":
    raise SystemExit(main())
