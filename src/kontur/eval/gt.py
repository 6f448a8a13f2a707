"""MOTChallenge ground truth: ``frame,id,x,y,w,h,conf,...`` parsed into numpy columns.

Which rows count follows the MOTChallenge devkit and TrackEval:

- ``mot15`` (2D MOT 2015): columns 8-10 are world coordinates; a row is kept when its
  ``conf`` flag (column 7) is not 0. PETS09-S2L1 has 174 rows flagged 0; TUD-Campus none.
- ``mot16`` (MOT16/17/20): column 8 is the class; a row is kept when ``conf != 0`` and the
  class is 1 (pedestrian). TrackEval also drops tracker boxes matched to distractor classes;
  that step is not implemented here.

Frames are 1-based in the file: gt frame ``f`` is the ``f-1``-th decoded video frame. The
sequence length comes from ``seqinfo.ini`` (``seqLength``) beside the ``gt/`` folder when it
is there, otherwise from the last frame in the file.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from kontur.eval.errors import EvalInputError, GroundTruthError

__all__ = ["GroundTruth", "GtFormat", "load_gt", "parse_gt", "read_seq_length"]

GtFormat = Literal["mot15", "mot16"]
_PEDESTRIAN = 1


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """The kept gt boxes of one sequence, sorted by frame; boxes already scaled (x, y, w, h)."""

    num_frames: int
    frame: np.ndarray
    ids: np.ndarray
    xywh: np.ndarray
    source: str

    def __post_init__(self) -> None:
        n = len(self.frame)
        if self.ids.shape != (n,) or self.xywh.shape != (n, 4):
            raise ValueError(
                f"expected columns of length {n}, got ids {self.ids.shape}, xywh {self.xywh.shape}"
            )
        if n and (np.diff(self.frame) < 0).any():
            raise ValueError("expected rows sorted by frame")
        if self.num_frames < 1:
            raise ValueError(f"expected at least one frame, got {self.num_frames}")

    def at(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``(ids, xywh)`` of the 0-based decoded frame ``index`` (gt frame ``index + 1``)."""
        lo, hi = np.searchsorted(self.frame, [index + 1, index + 2])
        return self.ids[lo:hi], self.xywh[lo:hi]

    def head(self, frames: int) -> GroundTruth:
        """The first ``frames`` frames only (for quick runs)."""
        if not 1 <= frames <= self.num_frames:
            raise ValueError(f"expected 1..{self.num_frames} frames, got {frames}")
        m = self.frame <= frames
        return GroundTruth(frames, self.frame[m], self.ids[m], self.xywh[m], self.source)

    @property
    def num_ids(self) -> int:
        """Distinct identities kept."""
        return len(np.unique(self.ids))


def _parse_line(line: str, where: str) -> tuple[int, int, list[float], float, float]:
    fields = line.split(",")
    try:
        nums = [float(f) for f in fields]
    except ValueError:
        nums = []
    if len(nums) < 7:
        raise GroundTruthError(
            f"{where}: expected at least 7 comma-separated numbers "
            f"(frame,id,x,y,w,h,conf,...), got {line[:80]!r}"
        )
    frame, ident = nums[0], nums[1]
    if frame != int(frame) or frame < 1:
        raise GroundTruthError(f"{where}: expected a 1-based integer frame, got {fields[0]!r}")
    if ident != int(ident):
        raise GroundTruthError(f"{where}: expected an integer id, got {fields[1]!r}")
    if nums[4] <= 0 or nums[5] <= 0:
        raise GroundTruthError(
            f"{where}: expected a positive width and height, got {nums[4]:g}x{nums[5]:g}"
        )
    cls = nums[7] if len(nums) > 7 else float(_PEDESTRIAN)
    return int(frame), int(ident), nums[2:6], nums[6], cls


def parse_gt(
    text: str,
    *,
    scale: float = 1.0,
    num_frames: int | None = None,
    source: str = "gt.txt",
    fmt: GtFormat = "mot15",
) -> GroundTruth:
    """Parse gt text; boxes are multiplied by ``scale`` (gt coordinates → video pixels)."""
    if not scale > 0:
        raise GroundTruthError(f"{source}: expected a positive --scale, got {scale}")
    rows: list[tuple[int, int, list[float]]] = []
    seen: set[tuple[int, int]] = set()
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source} line {no}"
        frame, ident, box, conf, cls = _parse_line(line.strip(), where)
        if num_frames is not None and frame > num_frames:
            raise GroundTruthError(
                f"{where}: expected a frame in 1..{num_frames} (seqLength), got {frame}"
            )
        if conf == 0 or (fmt == "mot16" and cls != _PEDESTRIAN):
            continue
        if (frame, ident) in seen:
            raise GroundTruthError(f"{where}: expected id {ident} once in frame {frame}, got twice")
        seen.add((frame, ident))
        rows.append((frame, ident, box))
    if not rows:
        raise GroundTruthError(f"{source}: expected at least one kept gt box, got none")
    rows.sort(key=lambda r: (r[0], r[1]))
    frame_col = np.asarray([r[0] for r in rows], dtype=np.int64)
    return GroundTruth(
        num_frames=num_frames if num_frames is not None else int(frame_col[-1]),
        frame=frame_col,
        ids=np.asarray([r[1] for r in rows], dtype=np.int64),
        xywh=np.asarray([r[2] for r in rows], dtype=np.float64) * scale,
        source=source,
    )


def read_seq_length(seqinfo: Path) -> int:
    """``seqLength`` from a MOTChallenge ``seqinfo.ini``."""
    parser = configparser.ConfigParser()
    try:
        parser.read_string(seqinfo.read_text())
        value = parser.get("Sequence", "seqLength")
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise GroundTruthError(
            f"{seqinfo}: expected a [Sequence] section with seqLength, got {type(exc).__name__}"
        ) from None
    if not value.isdigit() or int(value) < 1:
        raise GroundTruthError(f"{seqinfo}: expected a positive integer seqLength, got {value!r}")
    return int(value)


def load_gt(path: Path, *, scale: float = 1.0, fmt: GtFormat = "mot15") -> GroundTruth:
    """Read ``gt.txt`` (and ``../seqinfo.ini`` when present) into a :class:`GroundTruth`."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise EvalInputError(
            f"--gt {path}: expected a MOTChallenge gt.txt, found nothing"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalInputError(f"--gt {path}: expected a readable text file, got {exc}") from None
    seqinfo = path.resolve().parent.parent / "seqinfo.ini"
    length = read_seq_length(seqinfo) if seqinfo.is_file() else None
    return parse_gt(text, scale=scale, num_frames=length, source=str(path), fmt=fmt)
