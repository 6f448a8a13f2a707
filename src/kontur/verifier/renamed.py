"""An object the worker keeps renaming: its box stays, its track id changes, again and again.

A tracker exists to keep one id per object; the gate's dwell measures how long an object
stayed in a zone. A worker that gives an object a new id every frame or two would keep every
dwell from reaching its duration. The gate no longer lets that work (its dwell follows the
object across an id change, ADR 0042), but a worker that does it is broken or hostile, and
its tracks should not be trusted to trigger anything.

Per camera, on each checked frame, a track that was not reported on the previous checked
frame is a *renaming* of a track that was, when that one is missing now, is of the same class
group, and their boxes overlap by IoU :data:`RENAME_IOU` or more (the same object, in the
same place, under a new name); a track reported on neither frame starts with no renaming.
Each track carries the times of the renamings that led to it, up to
:data:`RENAMED_WINDOW_S` back; a track renamed :data:`MAX_RENAMINGS` times or more within
that window gets a track reason. A real tracker renames an object now and then (a switch in a
crowd, a box that changed too much), not several times in a second.

Cost: one IoU per (new track, missing track) pair of a class group, bounded by
:data:`MAX_PAIRS` per frame; memory: the previous frame's tracks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kontur.geometry import box_iou
from kontur.wire import TrackedObject

__all__ = ["MAX_RENAMINGS", "RENAMED_WINDOW_S", "RENAME_IOU", "Renamings"]

#: A new track over a missing one's box with this IoU or more is the same object renamed.
RENAME_IOU = 0.5
#: Renamings are counted over this much stream time (seconds)...
RENAMED_WINDOW_S = 1.0
#: ... and this many of them within it give the newest name a reason.
MAX_RENAMINGS = 3
#: (new, missing) pairs compared per frame at most: bounds the work whatever the worker sends.
MAX_PAIRS = 4096

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class _Seen:
    box: Box
    group: str
    renamed: tuple[float, ...]
    """Stream times of the renamings that led to this track, within the window."""
    names: tuple[int, ...]
    """The ids it had before, oldest first (at most :data:`MAX_RENAMINGS`)."""


@dataclass(slots=True)
class Renamings:
    """Per camera: which tracks are renamings of the previous frame's, and how often."""

    group: Callable[[str], str] = str
    """A class's group key (:meth:`~kontur.verifier.watch.ClassGroups.key`)."""
    _previous: dict[int, _Seen] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget the previous frame (the picture was cut: nothing continues across it)."""
        self._previous.clear()

    def observe(self, objects: Iterable[TrackedObject], pts_s: float) -> dict[int, str]:
        """One checked frame's well-formed tracks; a reason per track renamed too often."""
        now = {o.track_id: o for o in objects}
        missing = {tid: s for tid, s in self._previous.items() if tid not in now}
        budget = [MAX_PAIRS]
        seen: dict[int, _Seen] = {}
        for tid, obj in now.items():
            group = self.group(obj.class_name)
            before = self._previous.get(tid)
            if before is not None:
                seen[tid] = _Seen(obj.xyxy, group, _recent(before.renamed, pts_s), before.names)
                continue
            old_id = _same_place(obj.xyxy, group, missing, budget)
            if old_id is None:
                seen[tid] = _Seen(obj.xyxy, group, (), ())
                continue
            old = missing.pop(old_id)  # one new name per missing track
            renamed = (*_recent(old.renamed, pts_s), pts_s)
            seen[tid] = _Seen(obj.xyxy, group, renamed, (*old.names, old_id)[-MAX_RENAMINGS:])
        self._previous = seen
        return {
            tid: _reason(tid, s, pts_s)
            for tid, s in seen.items()
            if len(s.renamed) >= MAX_RENAMINGS
        }


def _same_place(box: Box, group: str, missing: dict[int, _Seen], budget: list[int]) -> int | None:
    """The missing track of ``group`` whose box overlaps ``box`` most, by :data:`RENAME_IOU`
    or more; None if none (or the frame's :data:`MAX_PAIRS` comparisons are spent)."""
    best: tuple[float, int] | None = None
    for old_id, old in missing.items():
        if budget[0] <= 0:
            break
        budget[0] -= 1
        overlap = box_iou(box, old.box) if old.group == group else 0.0
        if overlap >= RENAME_IOU and (best is None or overlap > best[0]):
            best = (overlap, old_id)
    return None if best is None else best[1]


def _recent(times: tuple[float, ...], pts_s: float) -> tuple[float, ...]:
    return tuple(t for t in times if pts_s - t <= RENAMED_WINDOW_S + 1e-6)


def _reason(tid: int, s: _Seen, pts_s: float) -> str:
    names = ", ".join(str(n) for n in s.names)
    span = pts_s - s.renamed[0]
    return (
        f"track {tid}: the same box was renamed {len(s.renamed)} times in {span:.1f} s "
        f"(earlier ids {names}); expected a tracker to keep one id per object for longer "
        f"than {RENAMED_WINDOW_S / MAX_RENAMINGS:.2f} s (a worker renaming objects keeps "
        "dwells from being measured)"
    )
