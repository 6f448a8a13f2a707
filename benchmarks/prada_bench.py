"""PRADA on the query path (issue 14 §2, ADR 0031): benign streams stay quiet, attacks alarm.

Run from the repository root (after the README's install)::

    python benchmarks/prada_bench.py [--data DIR] [--shuffles N] [--budget Q] [--seed S]
                                     [--json PATH|-]

In one run, the PRADA core (:class:`kontur.extraction.prada.Prada`, default
:class:`~kontur.extraction.prada.PradaConfig`) is fed each stream's features directly
(:func:`kontur.extraction.images.query_features`; no HTTP, no model), one principal per
stream:

- **benign** (goal: no alarm): every frame of every public clip (``DATA/video/*`` and the
  MOT15 clips ``DATA/mot15/*/*.mp4``), in order and in ``--shuffles`` shuffled orders; and
  what an integrator's cameras send besides, per clip: a frozen feed (one picture 300 times),
  a static scene (one frame under fresh sensor noise of 1, 3 and 6 grey levels, JPEG-encoded,
  300 times), a stuttering feed (each frame twice), a feed that freezes for 150 queries and
  resumes, every 5th frame (a slow camera), a stuck double buffer (two frames in turn); and
  across clips: the shortest clip looping 4 times, the clips queried in turn (round robin),
  4 frozen feeds in turn, 3 static scenes in turn.
- **attack** (``--budget`` queries each, default 300; goal: an alarm by query 200):

  - ``jacobian``: Papernot et al. 2017's augmentation, black-box: a seed set of frames, then
    rounds that add ``x + lambda * sign(r)`` for every ``x`` so far (``r`` random: no
    gradient), for seed sets of 10 and 30 and lambda 0.01, 0.05, 0.1 (in 0..1 pixel units);
  - ``noise``: uniform random pictures (full resolution; 32x32 and 8x8 cells upscaled);
  - ``tramer``: Tramèr et al. 2016's line search: two frames, then a binary search of depth
    8 along the line between them; ``line``: 8 evenly spaced points on such lines;
  - ``art-fee``: the queries of ART's ``FunctionallyEquivalentExtraction`` (Jagielski et al.
    2020) against the two-layer ReLU network it is built for (a random one on 32x32 inputs),
    each query drawn as a picture; recorded through a ``BlackBoxClassifierNeuralNetwork``
    until twice the budget, in 8 runs with their own random lines, with a first step
    ``delta_0`` of 1 and with ART's default (0.05: below a grey level, so the search asks
    pictures it already asked);
  - ``art-knockoff``: the queries of ART's ``KnockoffNets`` (random strategy) drawing from a
    pool of another clip's frames. Reported, but natural pictures are PRADA's blind spot by
    design (Juuti et al. §7): the daily quota bounds this one.

Reported per stream: its length, the query number of the alarm (or none), the test that
fired and its figure, the lowest W seen, the queries on lines and the most out-of-order
revisits in a window (before the alarm). Skips with a message when ``DATA`` is absent.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kontur.extraction.images import query_features
from kontur.extraction.prada import Prada, PradaConfig

REPO = Path(__file__).resolve().parents[1]
GOAL_QUERIES = 200
FRAME_SHAPE = (360, 480, 3)


@dataclass
class Row:
    """One stream's outcome."""

    stream: str
    kind: str
    queries: int
    alarm_query: int | None
    test: str | None
    figure: str | None
    min_w: float | None
    goal: str
    met: bool | None
    baseline_alarm_query: int | None = None
    """Attacks: the alarm of PRADA's W alone (same delta and sample; no other test)."""
    max_lines: int = 0
    """Queries on lines, at the end (or the alarm)."""
    max_revisits: int = 0
    """The most out-of-order revisits in one window."""
    spread: float | None = None
    """The log distances' spread at the end (or the alarm)."""
    novelty: float | None = None
    """The median novelty at the end (or the alarm)."""


def clips(data: Path) -> dict[str, list[np.ndarray]]:
    """Every frame of every public clip, decoded."""
    paths = sorted((data / "video").glob("*.avi")) + sorted((data / "video").glob("*.mp4"))
    paths += sorted((data / "mot15").glob("*/*.mp4"))
    out: dict[str, list[np.ndarray]] = {}
    for path in paths:
        cap = cv2.VideoCapture(str(path))
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
        cap.release()
        if frames:
            out[path.stem] = frames
    return out


#: The baseline: PRADA's Shapiro-Wilk test alone (the other tests never fire).
W_ONLY = PradaConfig(spread_floor=0.0, line_alarm=1 << 30, revisit_alarm=1 << 30)
#: Seconds per ``observe`` call, over every stream of the run.
TIMES: list[float] = []


def run_stream(config: PradaConfig, pictures: Iterable[np.ndarray]) -> dict[str, Any]:
    """Feed one stream to a fresh core; the first alarm and the lowest W."""
    prada = Prada(config)
    alarm: dict[str, Any] = {"query": None, "test": None, "figure": None}
    min_w, n, lines, revisits, spread, novelty = None, 0, 0, 0, None, None
    for picture in pictures:
        n += 1
        features = query_features(picture)
        start = time.perf_counter()
        result = prada.observe("principal", features)
        TIMES.append(time.perf_counter() - start)
        if result.w is not None:
            min_w = result.w if min_w is None else min(min_w, result.w)
        if alarm["query"] is None:
            lines, revisits = result.lines, max(revisits, result.revisits)
            spread, novelty = result.spread, result.novelty
        if result.alarm is not None and alarm["query"] is None:
            alarm = {
                "query": result.query,
                "test": str(result.alarm),
                "figure": result.reason(config),
            }
    tests = {"lines": lines, "revisits": revisits, "spread": spread, "novelty": novelty}
    return {"queries": n, "min_w": min_w, **tests, **alarm}


def _sample(frames: list[np.ndarray], n: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [frames[i] for i in rng.choice(len(frames), n, replace=False)]


def jacobian(
    seeds: list[np.ndarray], lam: float, budget: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Papernot-style augmentation rounds with random signed directions."""
    done = list(seeds)
    yield from seeds
    sent = len(seeds)
    while sent < budget:
        fresh = []
        for x in list(done):
            step = lam * 255.0 * np.sign(rng.standard_normal(x.shape))
            y = np.clip(x.astype(np.float32) + step, 0, 255).astype(np.uint8)
            fresh.append(y)
            yield y
            sent += 1
            if sent >= budget:
                return
        done += fresh


def noise(cells: int | None, budget: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Uniform random pictures, at full resolution or ``cells`` x ``cells`` upscaled."""
    h, w, _ = FRAME_SHAPE
    for _ in range(budget):
        if cells is None:
            yield rng.integers(0, 256, FRAME_SHAPE, dtype=np.uint8)
        else:
            small = rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8)
            yield cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def tramer(
    frames: list[np.ndarray], depth: int, budget: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Binary searches along the line between two frames (both ends queried first)."""
    sent = 0
    while True:
        a, b = (frames[i].astype(np.float32) for i in rng.choice(len(frames), 2, replace=False))
        lo, hi = 0.0, 1.0
        for x in (a, b, *([None] * depth)):
            if x is None:
                t = (lo + hi) / 2
                x = a * (1 - t) + b * t
                lo, hi = (t, hi) if rng.random() < 0.5 else (lo, t)
            yield x.astype(np.uint8)
            sent += 1
            if sent >= budget:
                return


def lines(
    frames: list[np.ndarray], points: int, budget: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """``points`` evenly spaced pictures on lines between two frames."""
    sent = 0
    while True:
        a, b = (frames[i].astype(np.float32) for i in rng.choice(len(frames), 2, replace=False))
        for t in np.linspace(0.0, 1.0, points):
            yield (a * (1 - t) + b * t).astype(np.uint8)
            sent += 1
            if sent >= budget:
                return


class _Enough(Exception):
    pass


#: FEE walks ``u + t v`` (u, v ~ N(0, 1)) for t in [-h^2, h^2]; with h = 2 hidden neurons this
#: scale keeps most of that range inside 0..255 grey levels (the picture a query becomes).
_FEE_HIDDEN = 2
_FEE_SCALE = 127.0 / ((1 + _FEE_HIDDEN**2) * 1.5)
#: FEE's first step along the line (its finite differences take a tenth of it). ART's default,
#: 0.05, moves most pixels by less than one grey level: half its queries would be the same
#: picture again. An attacker on an 8-bit picture API has to step above that.
_FEE_DELTA_0 = 1.0
#: FEE runs, each with its own lines (and twice the budget: some runs stall, see the ADR).
_FEE_RUNS = 8


def _as_picture(v: np.ndarray) -> np.ndarray:
    """An ART query on 32x32 inputs (about N(0, 1) per input) drawn as a picture."""
    cells = np.clip(128.0 + _FEE_SCALE * np.nan_to_num(v.reshape(32, 32)), 0, 255).astype(np.uint8)
    return cv2.resize(
        cv2.cvtColor(cells, cv2.COLOR_GRAY2BGR),
        (FRAME_SHAPE[1], FRAME_SHAPE[0]),
        interpolation=cv2.INTER_NEAREST,
    )


def art_fee(
    budget: int, rng: np.random.Generator, delta_0: float | None = _FEE_DELTA_0
) -> list[np.ndarray] | str:
    """The first ``budget`` queries of ART's FunctionallyEquivalentExtraction, or why none
    (``delta_0`` None: ART's own default first step)."""
    try:
        from art.attacks.extraction import FunctionallyEquivalentExtraction
        from art.estimators.classification import BlackBoxClassifierNeuralNetwork
    except ImportError as exc:
        return f"adversarial-robustness-toolbox is not installed ({exc})"
    hidden, classes = _FEE_HIDDEN, 4
    w0, b0 = rng.standard_normal((1024, hidden)), rng.standard_normal(hidden)
    w1, b1 = rng.standard_normal((hidden, classes)), rng.standard_normal(classes)
    seen: list[np.ndarray] = []

    def victim(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        seen.extend(_as_picture(row) for row in x)
        if len(seen) >= budget:
            raise _Enough
        return np.maximum(x @ w0 + b0, 0.0) @ w1 + b1

    classifier = BlackBoxClassifierNeuralNetwork(victim, input_shape=(1024,), nb_classes=classes)
    np.random.seed(int(rng.integers(1 << 31)))  # ART draws its lines with the global generator
    try:
        step = {} if delta_0 is None else {"delta_0": delta_0}
        FunctionallyEquivalentExtraction(classifier, num_neurons=hidden).extract(
            np.zeros((1, 1024), np.float32), **step
        )
    except _Enough:
        pass
    except Exception as exc:  # the attack gave up early: keep what it queried
        print(
            f"art-fee: the attack stopped after {len(seen)} queries ({type(exc).__name__})",
            file=sys.stderr,
        )
    return seen[:budget]


def art_knockoff(pool: list[np.ndarray], budget: int) -> list[np.ndarray] | str:
    """The queries ART's KnockoffNets (random strategy) sends, drawing from ``pool``."""
    try:
        from art.attacks.extraction import KnockoffNets
        from art.estimators.classification import BlackBoxClassifier, SklearnClassifier
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        return f"adversarial-robustness-toolbox or scikit-learn is not installed ({exc})"
    small = np.stack(
        [
            cv2.resize(cv2.cvtColor(p, cv2.COLOR_BGR2GRAY), (16, 16)).reshape(-1) / 255.0
            for p in pool
        ]
    )
    by_row = {row.tobytes(): p for row, p in zip(small.astype(np.float32), pool, strict=True)}
    seen: list[np.ndarray] = []

    def victim(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        seen.extend(by_row[row.tobytes()] for row in x)
        out = np.zeros((len(x), 2), np.float32)
        out[np.arange(len(x)), (x.mean(axis=1) > 0.5).astype(int)] = 1.0
        return out

    classifier = BlackBoxClassifier(victim, input_shape=(256,), nb_classes=2)
    thief = SklearnClassifier(LogisticRegression(max_iter=200))
    attack = KnockoffNets(
        classifier,
        batch_size_query=16,
        nb_stolen=min(budget, len(pool)),
        sampling_strategy="random",
    )
    # it queries first; fitting the scikit-learn thief with Keras-style arguments then fails
    with contextlib.suppress(TypeError):
        attack.extract(small.astype(np.float32), thieved_classifier=thief)
    return seen[:budget]


def machine() -> dict[str, Any]:
    """What ran it."""
    model = ""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in lscpu.splitlines()
                if ln.startswith("Model name")
            ),
            "",
        )
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version()}


def static_scene(
    picture: np.ndarray, sigma: float, n: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """A camera on a scene where nothing moves: ``picture`` under fresh Gaussian sensor noise
    (``sigma`` grey levels) each time, JPEG-encoded as an integrator would send it."""
    for _ in range(n):
        noisy = picture.astype(np.float32) + rng.normal(0.0, sigma, picture.shape)
        ok, data = cv2.imencode(".jpg", np.clip(noisy, 0, 255).round().astype(np.uint8))
        assert ok
        yield cv2.imdecode(data, cv2.IMREAD_COLOR)


def _in_turn(*feeds: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Several cameras queried in turn (round robin), until the shortest ends."""
    for pictures in zip(*feeds, strict=False):
        yield from pictures


Streams = Iterator[tuple[str, str, Callable[[], Iterator[np.ndarray] | list[np.ndarray] | str]]]


def _camera_patterns(name: str, clip: list[np.ndarray], rng: np.random.Generator) -> Streams:
    """One camera's benign patterns besides its clip in order: frozen, static, stuttering..."""
    mid = len(clip) // 2
    yield f"{name} frozen feed", "benign", lambda: [clip[mid]] * 300
    for sigma in (1.0, 3.0, 6.0):
        yield (
            f"{name} static scene, noise {sigma:g}",
            "benign",
            lambda sigma=sigma: static_scene(clip[0], sigma, 300, rng),
        )
    twice = (f for f in clip[:300] for _ in range(2))
    yield f"{name} stuttering (each frame twice)", "benign", lambda: twice
    frozen = [*clip[:mid], *[clip[mid]] * 150, *clip[mid:]]
    yield f"{name} freezes 150 queries, resumes", "benign", lambda: frozen
    yield f"{name} every 5th frame", "benign", lambda: clip[::5]
    yield (
        f"{name} stuck double buffer (two frames in turn)",
        "benign",
        lambda: (
            [
                clip[0],
                clip[mid],
            ]
            * 150
        ),
    )


def benign_streams(
    frames: dict[str, list[np.ndarray]], args: argparse.Namespace, rng: np.random.Generator
) -> Streams:
    """The benign streams of the module docstring: what an integrator's cameras send."""
    for name, clip in frames.items():
        yield f"{name} in order", "benign", lambda clip=clip: iter(clip)
        for s in range(args.shuffles):
            order = rng.permutation(len(clip))
            yield (
                f"{name} shuffled #{s + 1}",
                "benign",
                lambda clip=clip, order=order: (clip[i] for i in order),
            )
    for name, clip in frames.items():
        yield from _camera_patterns(name, clip, rng)
    names = sorted(frames, key=lambda n: len(frames[n]))
    feeds = [frames[n] for n in names]
    yield f"{names[0]} looping (4 passes)", "benign", lambda: feeds[0] * 4
    yield "every clip in turn, in order", "benign", lambda: _in_turn(*feeds)
    yield "the two longest clips in turn, in order", "benign", lambda: _in_turn(*feeds[-2:])
    stills = [*(f[0] for f in feeds), feeds[-1][-1]]
    yield "4 frozen feeds in turn", "benign", lambda: stills * 75
    scenes = [static_scene(f[0], s, 100, rng) for f, s in zip(feeds, (1, 3, 6), strict=False)]
    yield "3 static scenes in turn, noise 1, 3, 6", "benign", lambda: _in_turn(*scenes)


def attack_streams(
    frames: dict[str, list[np.ndarray]], args: argparse.Namespace, rng: np.random.Generator
) -> Streams:
    """The attack streams of the module docstring."""
    budget = args.budget
    for name, clip in frames.items():
        for seeds in (10, 30):
            for lam in (0.01, 0.05, 0.1):
                picked = _sample(clip, seeds, rng)
                yield (
                    f"jacobian {name} seeds {seeds} lambda {lam}",
                    "attack",
                    lambda picked=picked, lam=lam: jacobian(picked, lam, budget, rng),
                )
        yield f"tramer {name} depth 8", "attack", lambda clip=clip: tramer(clip, 8, budget, rng)
        yield f"line {name} 8 points", "attack", lambda clip=clip: lines(clip, 8, budget, rng)
    for cells in (None, 32, 8):
        label = "full resolution" if cells is None else f"{cells}x{cells} cells"
        yield f"noise {label}", "attack", lambda cells=cells: noise(cells, budget, rng)
    for delta_0, label in ((_FEE_DELTA_0, f"delta_0 {_FEE_DELTA_0:g}"), (None, "ART defaults")):
        for seed in range(_FEE_RUNS):  # its own random lines each run: their fates differ
            yield (
                f"art-fee (FunctionallyEquivalentExtraction) {label} run {seed + 1}",
                "attack",
                lambda seed=seed, d=delta_0: art_fee(2 * budget, np.random.default_rng(seed), d),
            )
    name = max(frames, key=lambda n: len(frames[n]))
    pool = frames[name]
    yield (f"art-knockoff (KnockoffNets, random) pool {name}", "natural",
           lambda: art_knockoff(pool, budget))  # fmt: skip


def streams(
    frames: dict[str, list[np.ndarray]], args: argparse.Namespace, rng: np.random.Generator
) -> Streams:
    """Every (name, kind, stream) of the module docstring."""
    yield from benign_streams(frames, args, rng)
    yield from attack_streams(frames, args, rng)


def evaluate(frames: dict[str, list[np.ndarray]], args: argparse.Namespace) -> list[Row]:
    """Every stream through a fresh core, with a progress bar."""
    from rich.progress import Progress

    config, rng, rows = PradaConfig(), np.random.default_rng(args.seed), []
    todo = list(streams(frames, args, rng))
    with Progress(transient=True) as bar:
        task = bar.add_task("PRADA streams", total=len(todo))
        for name, kind, make in todo:
            bar.update(task, description=name[:50])
            made = make()
            if isinstance(made, str):
                rows.append(
                    Row(name, kind, 0, None, None, f"skipped: {made}", None, "skipped", None)
                )
                bar.advance(task)
                continue
            made = list(made)
            out = run_stream(config, made)
            alarm = out["query"]
            base = run_stream(W_ONLY, made)["query"] if kind != "benign" else None
            if kind == "benign":
                goal, met = "no alarm", alarm is None
            elif kind == "attack":
                goal, met = (
                    f"alarm by query {GOAL_QUERIES}",
                    alarm is not None and alarm <= GOAL_QUERIES,
                )
            else:
                goal, met = "reported only (natural queries: the quota's job)", None
            rows.append(
                Row(
                    name,
                    kind,
                    out["queries"],
                    alarm,
                    out["test"],
                    out["figure"],
                    out["min_w"],
                    goal,
                    met,
                    base,
                    out["lines"],
                    out["revisits"],
                    out["spread"],
                    out["novelty"],
                )
            )
            bar.advance(task)
    return rows


def report(rows: list[Row], seconds: float, args: argparse.Namespace) -> dict[str, Any]:
    """The JSON document."""
    benign = [r for r in rows if r.kind == "benign"]
    attacks = [r for r in rows if r.kind == "attack" and r.goal != "skipped"]
    ws = [r.min_w for r in benign if r.min_w is not None]
    floor = PradaConfig().spread_floor
    return {
        "benchmark": "prada_bench",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": asdict(PradaConfig()),
        "seconds": round(seconds, 1),
        "summary": {
            "benign_streams": len(benign),
            "benign_false_alarms": sum(r.alarm_query is not None for r in benign),
            "benign_lowest_w": min(ws) if ws else None,
            "benign_most_lines": max((r.max_lines for r in benign), default=None),
            "benign_most_revisits": max((r.max_revisits for r in benign), default=None),
            "benign_flat_spread_highest_novelty": max(
                (r.novelty for r in benign if r.spread is not None and r.spread < floor),
                default=None,
            ),
            "attack_streams": len(attacks),
            "attacks_detected_by_200": sum(bool(r.met) for r in attacks),
            "attack_latest_alarm": max((r.alarm_query or 10**9) for r in attacks)
            if attacks
            else None,
            "goal_met": all(r.met for r in benign) and all(r.met for r in attacks),
            "baseline_w_only_detected_by_200": sum(
                r.baseline_alarm_query is not None and r.baseline_alarm_query <= GOAL_QUERIES
                for r in attacks
            ),
            "observe_ms_median": round(1e3 * float(np.median(TIMES)), 3) if TIMES else None,
            "observe_ms_p99": round(1e3 * float(np.quantile(TIMES, 0.99)), 3) if TIMES else None,
        },
        "streams": [asdict(r) for r in rows],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--shuffles", type=int, default=5, help="shuffled orders per clip")
    parser.add_argument("--budget", type=int, default=300, help="queries per attack stream")
    parser.add_argument("--seed", type=int, default=20260514)
    parser.add_argument("--json", default=None, help="write the results here ('-': stdout)")
    args = parser.parse_args()
    if not (args.data / "video").is_dir():
        print(f"prada_bench: skipped: needs {args.data / 'video'} (../shared/data is absent)")
        return 0
    start = time.monotonic()
    frames = clips(args.data)
    rows = evaluate(frames, args)
    doc = report(rows, time.monotonic() - start, args)
    for r in rows:
        at = "-" if r.alarm_query is None else str(r.alarm_query)
        mark = {True: "ok", False: "MISSED", None: "--"}[r.met]
        print(
            f"{mark:6} {r.kind:7} {r.stream[:58]:58} n={r.queries:4} alarm@{at:>4} {r.figure or ''}"
        )
    s = doc["summary"]
    print(
        f"benign: {s['benign_false_alarms']} false alarms in {s['benign_streams']} streams "
        f"(lowest W {s['benign_lowest_w']}); attacks: {s['attacks_detected_by_200']}/"
        f"{s['attack_streams']} by query {GOAL_QUERIES} (W alone: "
        f"{s['baseline_w_only_detected_by_200']}); observe {s['observe_ms_median']} ms median, "
        f"{s['observe_ms_p99']} ms p99; {doc['seconds']} s"
    )
    if args.json == "-":
        print(json.dumps(doc, indent=1))
    elif args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    return 0 if s["goal_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
