"""Run a tamper monitor over a video, optionally with an injected attack, and score it.

The shell behind ``kontur eval tamper`` and ``benchmarks/tamper_bench.py``: it decodes with
PyAV (frame times from the pts), feeds :class:`~kontur.tamper.TamperMonitor`, and with an
:class:`~kontur.tamper.inject.Injector` says whether the injected kind started an event
within ``window_s`` of the onset, and how late.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kontur.tamper.config import TamperConfig
from kontur.tamper.errors import TamperInputError
from kontur.tamper.inject import Injection, Injector
from kontur.tamper.model import TamperEvent, Transition
from kontur.tamper.monitor import TamperMonitor

__all__ = ["DETECTION_WINDOW_S", "TamperRun", "decode", "run_frames", "run_video"]

#: An injected attack counts as detected when its kind starts an event this soon after onset.
DETECTION_WINDOW_S = 2.0

Frame = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class TamperRun:
    """What a monitor found in one pass over a clip."""

    frames: int
    seconds: float
    events: tuple[TamperEvent, ...]
    injected: Injection | None = None
    detected: bool | None = None
    delay_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        """``{frames, seconds, events[, injected, detected, delay_s]}``."""
        doc: dict[str, Any] = {
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "events": [
                {k: v for k, v in e.to_json().items() if k != "camera_id"} for e in self.events
            ],
        }
        if self.injected is not None:
            doc["injected"] = {"kind": self.injected.kind.value, "at_s": self.injected.at_s,
                               "seed": self.injected.seed}  # fmt: skip
            doc["detected"] = self.detected
            doc["delay_s"] = None if self.delay_s is None else round(self.delay_s, 3)
        return doc


def decode(path: Path) -> tuple[float, Iterator[tuple[Frame, float]]]:
    """Open ``path`` with PyAV: the frame rate and a generator of (BGR frame, time in s).

    Times are the pts from the first frame on, as long as they increase; from the first
    frame without pts or with a pts that does not increase (an AVI with B-frames hands them
    out of order; an AVI is timed so from the start) the stream is timed by its frame rate.
    """
    import av

    if not path.is_file():
        raise TamperInputError(f"--video {path}: expected a video file, found nothing")
    try:
        container = av.open(str(path))
        stream = container.streams.video[0]
    except (av.error.FFmpegError, IndexError) as exc:
        why = "no video stream" if isinstance(exc, IndexError) else str(exc)
        raise TamperInputError(f"--video {path}: expected a video, got {why}") from None
    fps = float(stream.average_rate or stream.guessed_rate or 25.0)

    def frames() -> Iterator[tuple[Frame, float]]:
        t0: float | None = None
        # AVI keeps no presentation times: with B-frames its "pts" come out of order.
        last, by_rate = -1.0 / fps, "avi" in str(container.format.name).split(",")
        try:
            with container:
                for frame in container.decode(video=0):
                    t = None if frame.time is None else float(frame.time)
                    if t0 is None and t is not None:
                        t0 = t
                    ts = last + 1.0 / fps
                    if not by_rate and t is not None and t0 is not None:
                        if t - t0 > last + 0.25 / fps:
                            ts = t - t0
                        else:
                            by_rate = True
                    last = ts
                    yield np.asarray(frame.to_ndarray(format="bgr24"), np.uint8), ts
        except av.error.FFmpegError as exc:
            raise TamperInputError(
                f"--video {path}: expected a decodable video, got {exc}"
            ) from None

    return fps, frames()


def run_frames(
    frames: Iterable[tuple[Frame, float]],
    *,
    config: TamperConfig | None = None,
    injector: Injector | None = None,
    camera_id: str = "eval",
    window_s: float = DETECTION_WINDOW_S,
    on_frame: Callable[[int], None] | None = None,
) -> TamperRun:
    """Feed ``frames`` to a fresh monitor (tampered by ``injector`` from its onset on)."""
    monitor = TamperMonitor(camera_id, config)
    events: dict[tuple[str, float], TamperEvent] = {}
    detected_at: float | None = None
    n, last_t = 0, 0.0
    for frame, t in frames:
        shown = injector.apply(frame, t) if injector is not None else frame
        for change in monitor.observe(shown, t):
            e = change.event
            events[(e.kind.value, e.start_s)] = e
            if (
                injector is not None
                and detected_at is None
                and change.transition is Transition.START
                and e.kind is injector.kind
                and injector.at_s <= change.at_s <= injector.at_s + window_s
            ):
                detected_at = change.at_s
        n, last_t = n + 1, t
        if on_frame is not None:
            on_frame(n)
    ordered = tuple(sorted(events.values(), key=lambda e: (e.start_s, e.kind.value)))
    if injector is None:
        return TamperRun(n, last_t, ordered)
    delay = None if detected_at is None else detected_at - injector.at_s
    return TamperRun(n, last_t, ordered, injector.injection, detected_at is not None, delay)


def run_video(
    path: Path,
    *,
    inject: str | None = None,
    at_s: float | None = None,
    seed: int = 0,
    config: TamperConfig | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> TamperRun:
    """Decode ``path`` and run a monitor over it, with ``inject`` applied from ``at_s``."""
    if (inject is None) != (at_s is None):
        raise TamperInputError("--inject and --at: expected both or neither, got only one")
    injector = None if inject is None or at_s is None else Injector(inject, at_s, seed)
    _fps, frames = decode(path)
    return run_frames(frames, config=config, injector=injector, on_frame=on_frame)
