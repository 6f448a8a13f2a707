"""Errors of ``kontur eval``: one root, one leaf per check.

::

    KonturError
    └── EvalError                   (kontur.eval.errors) an evaluation that cannot run
        ├── EvalInputError          a file named on the command line is missing or unreadable
        ├── GroundTruthError        a MOTChallenge gt file that does not parse
        ├── FrameCountError         the video and the gt disagree on the number of frames
        └── VideoDecodeError        the video cannot be opened or decoded

Messages say what was expected and what was found; the top-level CLI prints them as one
``kontur: error: …`` line and exits non-zero.
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = [
    "EvalError",
    "EvalInputError",
    "FrameCountError",
    "GroundTruthError",
    "VideoDecodeError",
]


class EvalError(KonturError):
    """Root of the evaluation errors."""


class EvalInputError(EvalError):
    """A file named on the command line is missing or unreadable."""


class GroundTruthError(EvalError):
    """A gt line is malformed: says which line, what was expected and what was found."""


class FrameCountError(EvalError):
    """The video does not have as many frames as the gt sequence."""


class VideoDecodeError(EvalError):
    """The video cannot be opened or decoded."""
