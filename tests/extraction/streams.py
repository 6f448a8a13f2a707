"""Query streams for the extraction tests: real frames, and the attacks' generators.

Frames come from the real clips in ``../shared/data`` (skipping with the reason when absent);
the attacks are the benchmark's (``benchmarks/prada_bench.py``), small enough to read here:
Papernot-style augmentation with random signed steps, Tramèr-style points on lines between
two frames, uniform noise, a search below a grey level, and the queries of ART's
FunctionallyEquivalentExtraction (skipping when ART is absent); and a benign static scene.
"""

from __future__ import annotations

import base64
import contextlib
import struct
import zlib
from collections.abc import Iterator
from functools import cache

import cv2
import numpy as np
from tests.conftest import shared


@cache
def _frames(rel: str) -> tuple[np.ndarray, ...]:
    cap = cv2.VideoCapture(str(shared(*rel.split("/"))))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    assert out, f"expected frames in {rel}, got none"
    return tuple(out)


def clip(name: str) -> tuple[np.ndarray, ...]:
    """Every frame of a public clip (``pets``, ``car`` or ``tud``), decoded once per session."""
    return _frames(
        {
            "pets": "video/pets09_s2l1_480x360.avi",
            "car": "video/car_traffic_640x360.mp4",
            "tud": "mot15/TUD-Campus/TUD-Campus.mp4",
        }[name]
    )


def jacobian(
    seeds: list[np.ndarray], lam: float, budget: int, seed: int = 0
) -> Iterator[np.ndarray]:
    """Papernot et al.'s augmentation, black-box: the seeds, then rounds of ``x + lam*sign(r)``."""
    rng = np.random.default_rng(seed)
    done, sent = list(seeds), len(seeds)
    yield from seeds
    while True:
        fresh = []
        for x in list(done):
            step = lam * 255.0 * np.sign(rng.standard_normal(x.shape))
            fresh.append(np.clip(x.astype(np.float32) + step, 0, 255).astype(np.uint8))
            yield fresh[-1]
            sent += 1
            if sent >= budget:
                return
        done += fresh


def line(a: np.ndarray, b: np.ndarray, points: int) -> list[np.ndarray]:
    """``points`` evenly spaced pictures on the line from ``a`` to ``b``."""
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    return [(fa * (1 - t) + fb * t).astype(np.uint8) for t in np.linspace(0.0, 1.0, points)]


def noise(
    budget: int, shape: tuple[int, int, int] = (360, 480, 3), seed: int = 0
) -> list[np.ndarray]:
    """Uniform random pictures."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(budget)]


def static_scene(picture: np.ndarray, sigma: float, n: int, seed: int = 0) -> Iterator[np.ndarray]:
    """A camera on a scene where nothing moves: ``picture`` under fresh Gaussian sensor noise
    (``sigma`` grey levels) each time, JPEG-encoded as an integrator would send it."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        noisy = picture.astype(np.float32) + rng.normal(0.0, sigma, picture.shape)
        ok, data = cv2.imencode(".jpg", np.clip(noisy, 0, 255).round().astype(np.uint8))
        assert ok
        yield cv2.imdecode(data, cv2.IMREAD_COLOR)


def wandering_search(
    a: np.ndarray, b: np.ndarray, budget: int, points: int = 12, seed: int = 0
) -> Iterator[np.ndarray]:
    """A search on the line from ``a`` to ``b`` whose steps have fallen below a grey level: it
    keeps going back to ``points`` positions, in the order its search takes them (random),
    asking each with central differences ``x(t - h), x(t + h)`` that are the same 8-bit
    picture as ``x(t)``."""
    rng = np.random.default_rng(seed)
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    ts = np.linspace(0.1, 0.9, points)
    for _ in range(budget // 2):
        t = ts[rng.integers(points)]
        for s in (t - 1e-5, t + 1e-5):
            yield np.clip(fa * (1 - s) + fb * s, 0, 255).round().astype(np.uint8)


class _Enough(Exception):
    pass


def art_fee(budget: int, seed: int) -> list[np.ndarray]:
    """The first ``budget`` queries of ART's FunctionallyEquivalentExtraction against a random
    two-layer ReLU network on 32x32 inputs, each drawn as a picture: run ``seed + 1`` of
    ``benchmarks/prada_bench.py`` (same draws, first step 1). Skips when ART is absent."""
    import pytest

    extraction = pytest.importorskip("art.attacks.extraction")
    classifiers = pytest.importorskip("art.estimators.classification")
    rng = np.random.default_rng(seed)
    w0, b0 = rng.standard_normal((1024, 2)), rng.standard_normal(2)
    w1, b1 = rng.standard_normal((2, 4)), rng.standard_normal(4)
    seen: list[np.ndarray] = []

    def victim(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        for row in x:
            cells = np.clip(128.0 + 127.0 / 7.5 * np.nan_to_num(row.reshape(32, 32)), 0, 255)
            grey = cv2.cvtColor(cells.astype(np.uint8), cv2.COLOR_GRAY2BGR)
            seen.append(cv2.resize(grey, (480, 360), interpolation=cv2.INTER_NEAREST))
        if len(seen) >= budget:
            raise _Enough
        return np.asarray(np.maximum(x @ w0 + b0, 0.0) @ w1 + b1)

    victim_model = classifiers.BlackBoxClassifierNeuralNetwork(
        victim, input_shape=(1024,), nb_classes=4
    )
    np.random.seed(int(rng.integers(1 << 31)))  # ART draws its lines with the global generator
    with contextlib.suppress(_Enough), np.errstate(all="ignore"):
        extraction.FunctionallyEquivalentExtraction(victim_model, num_neurons=2).extract(
            np.zeros((1, 1024), np.float32), delta_0=1.0
        )
    return seen[:budget]


def b64(picture: np.ndarray, ext: str = ".jpg") -> str:
    """A picture as the base64 JPEG (or PNG) ``POST /v1/detect`` takes."""
    ok, data = cv2.imencode(ext, picture)
    assert ok
    return base64.b64encode(data.tobytes()).decode()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (its data does not matter: never read)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
