"""Query streams for the extraction tests: real frames, and the attacks' generators.

Frames come from the real clips in ``../shared/data`` (skipping with the reason when absent);
the attacks are the benchmark's (``benchmarks/prada_bench.py``), small enough to read here:
Papernot-style augmentation with random signed steps, Tramèr-style points on lines between
two frames, and uniform noise.
"""

from __future__ import annotations

import base64
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
