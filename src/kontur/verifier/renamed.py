"""An object the worker keeps renaming: its box stays, its track id changes, again and again.

A tracker exists to keep one id per object; the gate's dwell measures how long an object
stayed in a zone. A worker that gives an object a new id every frame or two would keep every
dwell from reaching its duration. The gate no longer lets that work (its dwell follows the
object across an id change, ADR 0042), but a worker that does it is broken or hostile, and
its tracks should not be trusted to trigger anything.

Per camera, on each checked frame, a *new* track (one not reported within
:data:`RENAMED_WINDOW_S`: an id that comes back is the tracker finding it again) is a
*renaming* of a track reported on the previous checked frame when that one is missing now, is
of the same class group, and their boxes overlap by IoU :data:`RENAME_IOU` or more (the same
object, in the same place, under a new name). Each track carries the times of the renamings
that led to it, up to :data:`RENAMED_WINDOW_S` back; a track renamed :data:`MAX_RENAMINGS`
times or more within that window gets a track reason. A real tracker renames an object now
and then (a switch in a crowd, a box that changed too much), not several times in a second.
A frame with more (new, missing) pairs than :data:`MAX_PAIRS` gives every new track a reason
instead: a flood of new ids must not hide a renamed object (fail closed). A cut starts afresh.

This check only makes a renaming worker visible. What keeps renaming from mattering is the
gate: its dwell follows the object, and holds back a dwell whose newest id the verifier has
not judged for long (ADR 0042). A worker that renames with an empty frame between, or moves
the box half its width at each renaming, escapes this check but not the gate.

Cost: one IoU per (new, missing) pair, at most :data:`MAX_PAIRS` per frame; memory: the
previous frame's tracks and the ids reported within the window (at most
:data:`MAX_REMEMBERED`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kontur.geometry import Box, box_iou
from kontur.wire import TrackedObject

__all__ = ["MAX_RENAMINGS", "RENAMED_WINDOW_S", "RENAME_IOU", "Renamings"]

#: A new track over a missing one's box with this IoU or more is the same object renamed.
RENAME_IOU = 0.5
#: Renamings are counted over this much stream time (seconds)...
RENAMED_WINDOW_S = 1.0
#: ... and this many of them within it give the newest name a reason.
MAX_RENAMINGS = 3
#: (new, missing) pairs compared per frame at most: bounds the work whatever the worker sends.
#: A frame with more gives every new track a reason instead (fail closed: the gate's dwell
#: compares at most its 64 longest dwells with a frame's first 1024 new ids).
MAX_PAIRS = 4096
#: Ids remembered as recently reported (bounds memory whatever the worker sends).
MAX_REMEMBERED = 4096


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
    _last_seen: dict[int, float] = field(default_factory=dict)
    """Ids reported within :data:`RENAMED_WINDOW_S`, and when last (at most
    :data:`MAX_REMEMBERED`): an id that comes back is no new name."""

    def reset(self) -> None:
        """Forget the previous frame (the picture was cut: nothing continues across it)."""
        self._previous.clear()
        self._last_seen.clear()

    def observe(self, objects: Iterable[TrackedObject], pts_s: float) -> dict[int, str]:
        """One checked frame's well-formed tracks; a reason per track renamed too often, or
        per new track when the frame holds too many new and missing ones to compare."""
        now = {o.track_id: o for o in objects}
        missing = {tid: s for tid, s in self._previous.items() if tid not in now}
        new = {t for t in now if t not in self._previous and t not in self._last_seen}
        flood = len(new) * len(missing) > MAX_PAIRS
        seen: dict[int, _Seen] = {}
        for tid, obj in now.items():
            group = self.group(obj.class_name)
            before = self._previous.get(tid)
            if before is not None:
                seen[tid] = _Seen(obj.xyxy, group, _recent(before.renamed, pts_s), before.names)
                continue
            old_id = None if flood or tid not in new else _same_place(obj.xyxy, group, missing)
            if old_id is None:
                seen[tid] = _Seen(obj.xyxy, group, (), ())
                continue
            old = missing.pop(old_id)  # one new name per missing track
            renamed = (*_recent(old.renamed, pts_s), pts_s)
            seen[tid] = _Seen(obj.xyxy, group, renamed, (*old.names, old_id)[-MAX_RENAMINGS:])
        self._previous = seen
        self._remember(now, pts_s)
        if flood:
            said = _flood(len(new), len(missing))
            return {tid: f"track {tid}: {said}" for tid in new}
        return {
            tid: _reason(tid, s, pts_s)
            for tid, s in seen.items()
            if len(s.renamed) >= MAX_RENAMINGS
        }

    def _remember(self, now: dict[int, TrackedObject], pts_s: float) -> None:
        for tid in now:
            self._last_seen.pop(tid, None)  # re-inserted: the dict stays oldest first
            self._last_seen[tid] = pts_s
        while self._last_seen:
            tid, at = next(iter(self._last_seen.items()))
            if pts_s - at <= RENAMED_WINDOW_S and len(self._last_seen) <= MAX_REMEMBERED:
                break
            del self._last_seen[tid]


def _same_place(box: Box, group: str, missing: dict[int, _Seen]) -> int | None:
    """The missing track of ``group`` whose box overlaps ``box`` most, by :data:`RENAME_IOU`
    or more; None if none."""
    best: tuple[float, int] | None = None
    for old_id, old in missing.items():
        overlap = box_iou(box, old.box) if old.group == group else 0.0
        if overlap >= RENAME_IOU and (best is None or overlap > best[0]):
            best = (overlap, old_id)
    return None if best is None else best[1]


def _flood(new: int, missing: int) -> str:
    return (
        f"{new} new track ids on a frame that lost {missing}: expected at most "
        f"{MAX_PAIRS} pairs to compare, so renamings went unchecked (a flood of new ids "
        "can hide a renamed object)"
    )


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
