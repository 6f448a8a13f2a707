"""Measuring analytics quality against ground truth (``kontur eval``).

- :func:`evaluate` / :func:`evaluate_variants`: the pure core; decoded frames, a parsed
  :class:`GroundTruth`, a detector and a tracker factory in, :class:`MotResult` out.
- :func:`run_mot`: the I/O shell; reads a MOTChallenge ``gt.txt`` and decodes the video.
- :data:`kontur.eval.cli.eval_app`: the ``kontur eval mot`` command.

Errors are :class:`EvalError` and its leaves (:mod:`kontur.eval.errors`).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from kontur.eval.errors import (
    EvalError,
    EvalInputError,
    FrameCountError,
    GroundTruthError,
    VideoDecodeError,
)

if TYPE_CHECKING:
    from kontur.eval._metrics import HotaFigures
    from kontur.eval.gt import GroundTruth, load_gt, parse_gt
    from kontur.eval.mot import (
        FULL_FRAME,
        MOTION_GATED,
        MotResult,
        Tracker,
        TrackerFactory,
        evaluate,
        evaluate_variants,
        open_video,
        run_mot,
    )

# Imported on first use, so that ``kontur --help`` does not pay for numpy and supervision.
_LAZY = {
    "HotaFigures": "kontur.eval._metrics",
    **dict.fromkeys(("GroundTruth", "load_gt", "parse_gt"), "kontur.eval.gt"),
    **dict.fromkeys(
        (
            "FULL_FRAME",
            "MOTION_GATED",
            "MotResult",
            "Tracker",
            "TrackerFactory",
            "evaluate",
            "evaluate_variants",
            "open_video",
            "run_mot",
        ),
        "kontur.eval.mot",
    ),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FULL_FRAME",
    "MOTION_GATED",
    "EvalError",
    "EvalInputError",
    "FrameCountError",
    "GroundTruth",
    "GroundTruthError",
    "HotaFigures",
    "MotResult",
    "Tracker",
    "TrackerFactory",
    "VideoDecodeError",
    "evaluate",
    "evaluate_variants",
    "load_gt",
    "open_video",
    "parse_gt",
    "run_mot",
]
