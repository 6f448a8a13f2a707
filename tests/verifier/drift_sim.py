"""A scene simulator for the drift tests: objects arriving as a Poisson process, each staying a
while, seen at 10 fps; and the same for real footage, from MOTChallenge ground truth.

The world around the drift test, never the test itself: :class:`Scene` says which objects a
camera shows on each frame (track id, class); a ``change`` callable rewrites a frame's objects
from some time on, as a drifting worker would.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Objects = list[tuple[int, str]]
Change = Callable[[float, Objects], Objects]


@dataclass
class Scene:
    """``rate`` arrivals a second, each staying 2 to ``max_stay_s`` s, classes by ``mix``."""

    rate: float = 0.4
    mix: tuple[tuple[str, float], ...] = (("person", 0.7), ("car", 0.3))
    max_stay_s: float = 20.0
    fps: float = 10.0
    seed: int = 0

    def frames(
        self, seconds: float, change: Change | None = None
    ) -> Iterator[tuple[float, Objects]]:
        """``(pts, objects)`` for every frame of ``seconds`` of stream."""
        rng = random.Random(self.seed)
        alive: list[tuple[int, str, float]] = []
        next_id, t_next = 1, rng.expovariate(self.rate)
        names, weights = zip(*self.mix, strict=True)
        for i in range(int(seconds * self.fps)):
            pts = i / self.fps
            while t_next <= pts:
                cls = rng.choices(names, weights)[0]
                alive.append((next_id, cls, t_next + rng.uniform(2.0, self.max_stay_s)))
                next_id += 1
                t_next += rng.expovariate(self.rate)
            alive = [a for a in alive if a[2] > pts]
            objects = [(tid, cls) for tid, cls, _ in alive]
            yield pts, objects if change is None else change(pts, objects)


def gt_frames(path: Path, fps: float, loops: int) -> Iterator[tuple[float, Objects]]:
    """MOTChallenge ground truth (every id a person), played ``loops`` times with fresh ids."""
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    per_frame: dict[int, list[int]] = {}
    for f, tid in rows[:, :2]:
        per_frame.setdefault(int(f) - 1, []).append(int(tid))
    n = max(per_frame) + 1
    for loop in range(loops):
        for i in range(n):
            ids = per_frame.get(i, [])
            yield (loop * n + i) / fps, [(loop * 100_000 + tid, "person") for tid in ids]


def drop_new(onset_s: float, share: float, seed: int = 1) -> Change:
    """From ``onset_s``, a fixed ``share`` of the objects first seen after it never shows."""
    seen: set[int] = set()

    def change(pts: float, objects: Objects) -> Objects:
        if pts < onset_s:
            seen.update(tid for tid, _ in objects)
            return objects
        return [
            (tid, c)
            for tid, c in objects
            if tid in seen or random.Random(seed * 1_000_003 + tid).random() >= share
        ]

    return change


def relabel_new(onset_s: float, src: str, dst: str) -> Change:
    """From ``onset_s``, objects of class ``src`` first seen after it are called ``dst``."""
    seen: set[int] = set()

    def change(pts: float, objects: Objects) -> Objects:
        if pts < onset_s:
            seen.update(tid for tid, _ in objects)
            return objects
        return [(tid, dst if c == src and tid not in seen else c) for tid, c in objects]

    return change


def ramp_drop(onset_s: float, over_s: float, seed: int = 2) -> Change:
    """From ``onset_s``, new objects go missing with a chance growing from 0 to 1 over
    ``over_s``: a slow poisoning."""
    verdict: dict[int, bool] = {}

    def change(pts: float, objects: Objects) -> Objects:
        share = min(1.0, max(0.0, (pts - onset_s) / over_s))
        out = []
        for tid, c in objects:
            if tid not in verdict:
                verdict[tid] = random.Random(seed * 1_000_003 + tid).random() < share
            if not verdict[tid]:
                out.append((tid, c))
        return out

    return change
