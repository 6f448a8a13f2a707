"""Retention and legal hold: remove old segment bytes, each behind a tombstone leaf.

History is never rewritten. Removing a segment's bytes appends one ``tombstone`` record per
``segment`` record that names them (``{segment_index, sha256, reason, retention_days}``), and
:func:`kontur.archive.verify_archive` then counts the missing file as *removed by retention*;
a file gone without a tombstone stays *missing*. A legal hold is a ``hold`` record
(``{camera, from, to, reason, by}``) until a ``hold_release`` record (``{hold, reason, by}``)
names it; a segment an active hold covers is never removed.

**Time of a segment.** A segment is the video of one camera between the previous segment
record of that camera and its own record: the interval ``(previous at, at]`` on the record's
``at``, the archive's own wall time (the first segment of a camera reaches back without
bound). The payload has no capture time (``SegmentStored`` carries none), and a capture time
would be the camera's claim: a camera, or whoever holds its key, could then date footage into
the past to have it removed early. ``at`` is written by the archive, the fact's owner. The
interval, not the instant, decides hold coverage, so the GOP stored just after a hold's end
(which holds its last seconds) is held too; an interval stretched by a gap or a clock step only
ever holds more. Age is measured from ``at``: a segment expires once ``now - at`` exceeds its
camera's retention days.

**Shared bytes.** Segments are content-addressed, so several records may name one file. It is
removed only when every record naming it is expired or already tombstoned and no active hold
covers any of them; then each such record gets its own tombstone.

:func:`apply_retention` (the shell) takes these steps, in this order:

1. flush the open batch, so that every hold appended so far is seen;
2. plan (pure, :func:`plan_retention`): scan the ``segment``, ``tombstone``, ``hold`` and
   ``hold_release`` records (:class:`LogView`) and choose the files to remove;
3. check each chosen file against its sha256 and size: a file already missing or corrupt is
   *not* tombstoned (that would launder tampering into retention) and is reported instead;
4. append the tombstones, then flush: they are durable;
5. unlink the files (:meth:`SegmentStore.remove`).

A kill before step 4's flush removes no file (a full batch may have committed some of the
tombstones already: that is the next case). A kill after it leaves the files present with
their tombstones (``verify_archive`` is OK with that); the next run finds those records
tombstoned and finishes the unlink without a second tombstone. A record tombstoned but then
covered by a new hold keeps its file.

**One writer.** The archive has one writer (flock), so the CLI works on a stopped archive; the
site service will run :func:`apply_retention` periodically and offer holds through its API,
from the thread that appends segments (a segment appended between steps 3 and 5 by another
thread could name a file about to go). Scanning reads every record; the plan keeps a small
tuple per segment record.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from kontur._private import unsafe_char
from kontur.archive.errors import (
    ArchiveCorrupt,
    ArchiveInputError,
    ArchiveWriteError,
    SegmentCorrupt,
    SegmentMissing,
)
from kontur.archive.record import Record, segment_ref_of

if TYPE_CHECKING:
    from kontur.archive.archive import Archive

__all__ = [
    "Hold",
    "LogView",
    "PlannedRemoval",
    "Removal",
    "RetentionPlan",
    "RetentionPolicy",
    "RetentionReport",
    "apply_retention",
    "format_time",
    "parse_time",
    "place_hold",
    "plan_retention",
    "release_hold",
]

DAY_S = 86400.0
_UNIX = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_TIME_FORMS = "ISO 8601 with a time zone (e.g. 2026-12-05T03:00:00Z) or unix seconds"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days a camera's segment bytes are kept; ``None`` for a camera: kept for ever.

    ``per_camera`` overrides ``default_days`` for the cameras it names. Days must be finite
    and > 0 (zero days would remove evidence as soon as it is recorded).
    """

    default_days: float | None = None
    per_camera: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_days("default days", self.default_days)
        frozen = dict(self.per_camera)
        for camera, days in frozen.items():
            if not isinstance(camera, str) or not camera:
                raise ArchiveInputError(f"camera: expected a non-empty name, got {camera!r}")
            _check_days(f"days for camera {camera!r}", days)
        object.__setattr__(self, "per_camera", MappingProxyType(frozen))

    def days_for(self, camera: str | None) -> float | None:
        """The retention days of ``camera`` (a segment with no camera gets the default)."""
        if camera is not None and camera in self.per_camera:
            return self.per_camera[camera]
        return self.default_days

    def to_json(self) -> dict[str, Any]:
        """``{default_days, per_camera}``."""
        return {"default_days": self.default_days, "per_camera": dict(self.per_camera)}


def _check_days(what: str, days: object) -> None:
    if days is None:
        return
    if isinstance(days, bool) or not isinstance(days, int | float):
        raise ArchiveInputError(f"{what}: expected a number of days, got {days!r}")
    if not math.isfinite(days) or not days > 0:
        raise ArchiveInputError(f"{what}: expected a finite number of days > 0, got {days!r}")


@dataclass(frozen=True, slots=True)
class Hold:
    """An active legal hold: record ``index`` holds ``camera``'s segments in [start, end]."""

    index: int
    camera: str
    start: float
    end: float
    reason: str
    by: str
    at: float

    @classmethod
    def from_record(cls, record: Record) -> Hold:
        """Parse a ``hold`` record; ArchiveCorrupt unless its payload is a valid hold."""
        p = record.payload
        try:
            camera, reason, by = _text(p, "camera"), _text(p, "reason"), _text(p, "by", empty=True)
            start, end = _when(p.get("from"), "from"), _when(p.get("to"), "to")
            _check_window(start, end)
        except ArchiveInputError as exc:
            raise ArchiveCorrupt(f"record {record.index}: hold: {exc}") from None
        return cls(record.index, camera, start, end, reason, by, record.at)

    def covers(self, camera: str | None, lo: float, hi: float) -> bool:
        """Whether a segment of ``camera`` spanning [lo, hi] overlaps this hold."""
        return camera == self.camera and lo <= self.end and hi >= self.start

    def to_json(self) -> dict[str, Any]:
        """``{index, camera, from, to, reason, by, at}`` (times in unix seconds)."""
        return {
            "index": self.index,
            "camera": self.camera,
            "from": self.start,
            "to": self.end,
            "reason": self.reason,
            "by": self.by,
            "at": self.at,
        }


#: The longest camera id, reason or name a hold or release takes.
MAX_TEXT = 1000


def _text(payload: Mapping[str, Any], key: str, *, empty: bool = False) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not (empty or value.strip()):
        what = "text" if empty else "non-empty text"
        raise ArchiveInputError(f"{key}: expected {what}, got {value!r}")
    return value


def _new_text(payload: Mapping[str, Any], key: str) -> None:
    """A new hold's or release's ``payload[key]``: non-empty text of at most
    :data:`MAX_TEXT` characters, without a control or format character (a newline, a
    terminal escape or a bidi override in a reason would be replayed on every screen that
    shows the hold: :func:`kontur._private.unsafe_char`)."""
    value = _text(payload, key)
    if unsafe_char(value) is not None or len(value) > MAX_TEXT:
        raise ArchiveInputError(
            f"{key}: expected one line of at most {MAX_TEXT} characters without control "
            f"characters, got {len(value)} characters: {value[:60]!r}"
        )


def _when(value: object, key: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ArchiveInputError(f"{key}: expected a time in unix seconds, got {value!r}")
    return float(value)


def _check_window(start: float, end: float) -> None:
    if start > end:
        raise ArchiveInputError(
            f"window: expected from <= to, got {format_time(start)} after {format_time(end)}"
        )


def parse_time(text: str) -> float:
    """Unix seconds from ISO 8601 with a time zone or from unix seconds; ArchiveInputError.

    A time without a zone is refused: a legal hold must not depend on the host's time zone.
    """
    text = text.strip()
    if _UNIX.fullmatch(text):
        return float(text)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ArchiveInputError(f"expected {_TIME_FORMS}, got {text!r}") from None
    if when.tzinfo is None:
        raise ArchiveInputError(f"expected {_TIME_FORMS}, got {text!r} (no time zone)")
    return when.timestamp()


def format_time(at: float) -> str:
    """``at`` as ISO 8601 UTC (``2026-12-05T03:00:00Z``), or its repr when out of range."""
    try:
        return dt.datetime.fromtimestamp(at, dt.UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return repr(at)


@dataclass(frozen=True, slots=True)
class _Segment:
    """What retention needs of one segment record: ``(lo, hi]`` is its span on ``at``."""

    index: int
    sha256: str
    size: int
    camera: str | None
    lo: float
    hi: float


class LogView:
    """The records retention reads, scanned once in index order (pure; raises ArchiveCorrupt).

    ``segments`` by index, ``by_sha`` the segment indexes naming each file (oldest first),
    ``tombstoned`` segment index → its tombstone's index, ``holds`` the active holds by index,
    ``released`` hold index → its release's index, ``size`` the records scanned.
    """

    def __init__(self) -> None:
        self.segments: dict[int, _Segment] = {}
        self.by_sha: dict[str, list[int]] = {}
        self.tombstoned: dict[int, int] = {}
        self.holds: dict[int, Hold] = {}
        self.released: dict[int, int] = {}
        self.size = 0
        self._last_at: dict[str | None, float] = {}

    @classmethod
    def scan(cls, records: Iterable[Record]) -> LogView:
        """Scan ``records`` (all of a log, from index 0)."""
        view = cls()
        for record in records:
            if record.index != view.size:
                raise RuntimeError(f"expected record {view.size} next, got {record.index}")
            view._add(record)
            view.size += 1
        return view

    def _add(self, record: Record) -> None:
        try:
            if record.kind == "segment":
                self._segment(record)
            elif record.kind == "tombstone":
                self._tombstone(record)
            elif record.kind == "hold":
                self.holds[record.index] = Hold.from_record(record)
            elif record.kind == "hold_release":
                self._release(record)
        except ArchiveInputError as exc:
            raise ArchiveCorrupt(f"record {record.index}: {record.kind}: {exc}") from None

    def _segment(self, record: Record) -> None:
        ref = segment_ref_of(record.payload)
        camera = record.payload.get("camera_id")
        camera = camera if isinstance(camera, str) else None
        prev = self._last_at.get(camera, -math.inf)
        self._last_at[camera] = record.at
        lo, hi = min(prev, record.at), max(prev, record.at)  # a clock step only widens it
        seg = _Segment(record.index, ref.sha256, ref.size, camera, lo, hi)
        self.segments[record.index] = seg
        self.by_sha.setdefault(ref.sha256, []).append(record.index)

    def _tombstone(self, record: Record) -> None:
        at, sha = record.payload.get("segment_index"), record.payload.get("sha256")
        seg = self.segments.get(at) if isinstance(at, int) and not isinstance(at, bool) else None
        if seg is None or seg.sha256 != sha:
            raise ArchiveInputError(f"expected an earlier segment record, got {at!r}")
        self.tombstoned.setdefault(seg.index, record.index)

    def _release(self, record: Record) -> None:
        hold = record.payload.get("hold")
        _text(record.payload, "reason")
        if not isinstance(hold, int) or isinstance(hold, bool) or hold not in self.holds:
            raise ArchiveInputError(f"expected the index of an active hold, got {hold!r}")
        del self.holds[hold]
        self.released[hold] = record.index

    def held(self, seg: _Segment) -> bool:
        """Whether an active hold covers ``seg``."""
        return any(h.covers(seg.camera, seg.lo, seg.hi) for h in self.holds.values())

    def cameras(self) -> list[str]:
        """The cameras with at least one segment record, sorted."""
        return sorted(c for c in self._last_at if c is not None)

    def coverage(self, camera: str, start: float, end: float) -> tuple[int, int]:
        """Segment records of ``camera`` overlapping [start, end]: (not tombstoned, tombstoned)."""
        hits = [s for s in self.segments.values() if s.camera == camera and s.lo <= end]
        hits = [s for s in hits if s.hi >= start]
        gone = sum(1 for s in hits if s.index in self.tombstoned)
        return len(hits) - gone, gone


@dataclass(frozen=True, slots=True)
class PlannedRemoval:
    """One file to remove: every segment record naming it, and those still to tombstone."""

    sha256: str
    size: int
    segments: tuple[int, ...]
    to_tombstone: tuple[tuple[int, float], ...]
    """(segment index, the retention days that expired it) per record without a tombstone."""


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    """What retention would do to the log of ``size`` records at ``now`` (pure).

    ``removals`` need tombstones first; ``resumable`` files have every record tombstoned
    already (a run killed before its unlink, or long gone: the shell looks). ``kept_by_hold``
    counts expired, untombstoned segment records an active hold covers; ``kept_shared`` those
    whose file another, younger or held, record still names.
    """

    size: int
    now: float
    removals: tuple[PlannedRemoval, ...]
    resumable: tuple[PlannedRemoval, ...]
    kept_by_hold: int
    kept_shared: int
    holds: tuple[Hold, ...]


def plan_retention(view: LogView, policy: RetentionPolicy, now: float) -> RetentionPlan:
    """Choose the segment files to remove from ``view`` under ``policy`` at ``now`` (pure)."""
    if not math.isfinite(now):
        raise ArchiveInputError(f"now: expected a finite time, got {now!r}")
    removals: list[PlannedRemoval] = []
    resumable: list[PlannedRemoval] = []
    kept_by_hold = kept_shared = 0
    for sha, indexes in view.by_sha.items():
        segs = [view.segments[i] for i in indexes]
        todo = [s for s in segs if s.index not in view.tombstoned]
        expired = [(s, d) for s in todo if (d := _expired_days(s, policy, now)) is not None]
        held = [s for s in segs if view.held(s)]
        if not held and len(expired) == len(todo):
            planned = PlannedRemoval(
                sha, segs[0].size, tuple(indexes), tuple((s.index, d) for s, d in expired)
            )
            (removals if todo else resumable).append(planned)
            continue
        for s, _days in expired:
            if view.held(s):
                kept_by_hold += 1
            else:
                kept_shared += 1
    holds = tuple(view.holds.values())
    return RetentionPlan(
        view.size, now, tuple(removals), tuple(resumable), kept_by_hold, kept_shared, holds
    )


def _expired_days(seg: _Segment, policy: RetentionPolicy, now: float) -> float | None:
    """The retention days that expired ``seg`` at ``now``, or None while it is kept."""
    days = policy.days_for(seg.camera)
    if days is None or not now - seg.hi > days * DAY_S:
        return None
    return days


@dataclass(frozen=True, slots=True)
class Removal:
    """A segment file retention removed (or, in a dry run, would remove).

    ``tombstones`` are the records this run appended (empty in a dry run, and when a run
    killed before its unlink had already made them durable: ``resumed``).
    """

    sha256: str
    size: int
    segments: tuple[int, ...]
    tombstones: tuple[int, ...]
    resumed: bool

    def to_json(self) -> dict[str, Any]:
        """``{sha256, size, segments, tombstones, resumed}``."""
        return {
            "sha256": self.sha256,
            "size": self.size,
            "segments": list(self.segments),
            "tombstones": list(self.tombstones),
            "resumed": self.resumed,
        }


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What :func:`apply_retention` did (or would do, with ``dry_run``).

    ``missing`` and ``corrupt`` name expired files that were not as recorded: they were
    neither tombstoned nor removed, and ``kontur archive verify`` names them.
    """

    now: float
    policy: RetentionPolicy
    dry_run: bool
    removed: list[Removal]
    kept_by_hold: int
    kept_shared: int
    holds: int
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)

    @property
    def tombstones(self) -> int:
        """Tombstone records this run appended."""
        return sum(len(r.tombstones) for r in self.removed)

    @property
    def bytes_removed(self) -> int:
        """Bytes of the removed files."""
        return sum(r.size for r in self.removed)

    @property
    def ok(self) -> bool:
        """False when an expired file was missing or corrupt (the archive needs a look)."""
        return not self.missing and not self.corrupt

    def to_json(self) -> dict[str, Any]:
        """Everything above, times in unix seconds."""
        return {
            "ok": self.ok,
            "now": self.now,
            "policy": self.policy.to_json(),
            "dry_run": self.dry_run,
            "removed": [r.to_json() for r in self.removed],
            "files_removed": len(self.removed),
            "bytes_removed": self.bytes_removed,
            "tombstones": self.tombstones,
            "kept_by_hold": self.kept_by_hold,
            "kept_shared": self.kept_shared,
            "active_holds": self.holds,
            "missing": self.missing,
            "corrupt": self.corrupt,
        }


def apply_retention(
    archive: Archive, policy: RetentionPolicy, now: float, *, dry_run: bool = False
) -> RetentionReport:
    """Remove expired, unheld segment files at ``now``, each after its tombstones are durable.

    ``archive`` must be open for writing unless ``dry_run`` (then nothing is written or
    removed). Follows the steps in the module docstring; raises ArchiveCorrupt when a
    retention record in the log does not parse (nothing is removed then).
    """
    if archive.readonly and not dry_run:
        raise RuntimeError("expected an archive opened for writing, got a read-only one")
    if not archive.readonly:
        archive.flush()
    plan = plan_retention(LogView.scan(archive.iter_records()), policy, now)
    store = archive.segments
    good: list[PlannedRemoval] = []
    missing: list[str] = []
    corrupt: list[str] = []
    for planned in plan.removals:
        try:
            store.check(planned.sha256, planned.size)
        except SegmentMissing:
            missing.append(planned.sha256)
            continue
        except SegmentCorrupt:
            corrupt.append(planned.sha256)
            continue
        good.append(planned)
    resumed = [p for p in plan.resumable if os.path.lexists(store.path(p.sha256))]
    removed = [_removal(p, (), resumed=False) for p in good]
    removed += [_removal(p, (), resumed=True) for p in resumed]
    if not dry_run:
        removed = _tombstone_and_remove(archive, good, resumed)
    return RetentionReport(
        now,
        policy,
        dry_run,
        removed,
        plan.kept_by_hold,
        plan.kept_shared,
        len(plan.holds),
        missing,
        corrupt,
    )


def _tombstone_and_remove(
    archive: Archive, good: list[PlannedRemoval], resumed: list[PlannedRemoval]
) -> list[Removal]:
    removed = []
    for planned in good:
        made = tuple(
            archive.append(
                "tombstone",
                {
                    "segment_index": index,
                    "sha256": planned.sha256,
                    "reason": "retention",
                    "retention_days": days,
                },
            ).index
            for index, days in planned.to_tombstone
        )
        removed.append(_removal(planned, made, resumed=False))
    archive.flush()  # every tombstone is durable before any byte goes (ADR 0004)
    for planned in (*good, *resumed):
        try:
            archive.segments.remove(planned.sha256)
        except OSError as exc:
            raise ArchiveWriteError(
                f"segment {planned.sha256[:12]}…: expected to remove its file, got "
                f"{exc.strerror or exc}; its tombstone is durable, the next run finishes it"
            ) from None
    return removed + [_removal(p, (), resumed=True) for p in resumed]


def _removal(planned: PlannedRemoval, made: tuple[int, ...], *, resumed: bool) -> Removal:
    return Removal(planned.sha256, planned.size, planned.segments, made, resumed)


def place_hold(
    archive: Archive, camera: str, start: float, end: float, reason: str, by: str
) -> tuple[Hold, LogView]:
    """Append a durable ``hold`` record; returns the hold and the log as it was before it.

    Raises ArchiveInputError for an empty camera or reason, or a window with from > to.
    """
    start, end = _when(start, "from"), _when(end, "to")
    payload: dict[str, Any] = {"camera": camera, "from": start, "to": end}
    payload |= {"reason": reason, "by": by}
    for key in ("camera", "reason", "by"):
        _new_text(payload, key)
    _check_window(start, end)
    archive.flush()
    view = LogView.scan(archive.iter_records())
    record = archive.append("hold", payload)
    archive.flush()
    return Hold.from_record(record), view


def release_hold(archive: Archive, index: int, reason: str, by: str) -> tuple[Hold, Record]:
    """Append a durable ``hold_release`` of the active hold at record ``index``.

    Raises ArchiveInputError unless ``index`` is an active hold and ``reason`` is non-empty.
    """
    for key, value in (("reason", reason), ("by", by)):
        _new_text({key: value}, key)
    archive.flush()
    view = LogView.scan(archive.iter_records())
    hold = view.holds.get(index)
    if hold is None:
        if index in view.released:
            why = f"released by record {view.released[index]}"
        elif 0 <= index < view.size:
            why = "not a hold record"
        else:
            why = f"the archive holds records 0..{view.size - 1}"
        raise ArchiveInputError(f"hold: expected the index of an active hold, got {index} ({why})")
    record = archive.append("hold_release", {"hold": index, "reason": reason, "by": by})
    archive.flush()
    return hold, record
