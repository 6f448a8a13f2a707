"""Which records and GOPs an export of one camera's time span takes (pure; no I/O).

Rules, applied in this order by :func:`plan_export`:

1. **Runs.** Camera C's ``segment`` records are split into runs: a run ends where the GOP
   index stops increasing (a second ``kontur demo`` on the same data dir numbers its GOPs
   from 0 again). A ``verdict`` belongs to the run of the latest segment of its GOP; any
   other record of C to the run current when it was appended.
2. **Span.** A GOP of C is in the span when its segment's interval (the previous segment
   record's ``at``, its own ``at``] meets [from, to] (the rule of retention and legal holds,
   ``kontur.archive.retention``, except that the first segment reaches back to C's first
   record, not without bound), or when a ``verdict``, ``detections`` or ``decision``
   record of C appended within [from, to] names it. All of them must lie in one run.
3. **Clip.** The clip is every GOP from the first to the last span GOP, each with its
   segment records (a GOP's signed end of stream is a second segment) and its verdict (a
   span GOP without one is refused: the verifier demands it); then
   a *lead-out* GOP, the next one, when the archive has it: it carries the SEI that signs
   the last span GOP (ONVIF Media Signing puts GOP k's SEI in GOP k+1).
4. **Range.** The records exported are *every* record from ``first`` to ``last``: the
   smallest range holding all of the above that starts at index 0 or at a record older
   than ``from`` and ends at the checkpoint's last record or at a record younger than
   ``to``. A removed record then shows as a gap, and a cut range as an edge inside the span.
5. **Closure.** A decision of C inside the range naming a GOP outside the clip adds that
   GOP (back to 3), so every decision in the bundle has its video and verdict there.
6. **Anchors.** The ``camera`` records before the range that root C's certificates: the site
   CA's ``init_ca``/``import_ca`` and C's ``enrol``/``revoke`` records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kontur.archive import Record
from kontur.evidence.errors import ExportError
from kontur.evidence.manifest import GopRole, SegmentEntry

__all__ = ["ExportPlan", "PlannedGop", "camera_of", "gops_of", "plan_export"]

_MAX_CLOSURE_ROUNDS = 64
_CA_ACTIONS = frozenset({"init_ca", "import_ca"})


def camera_of(record: Record) -> str | None:
    """The camera a record is about, if it names one."""
    p = record.payload
    cam = p.get("verdict", {}).get("camera_id") if record.kind == "verdict" else p.get("camera_id")
    return cam if isinstance(cam, str) else None


def gops_of(record: Record) -> tuple[int, ...]:
    """The GOP indexes a record names (a segment, verdict, detections or decision)."""
    p = record.payload
    if record.kind == "verdict":
        raw: Any = [p.get("verdict", {}).get("gop_index")]
    elif record.kind == "decision":
        raw = p.get("gops") if isinstance(p.get("gops"), list) else []
    elif record.kind in ("segment", "detections"):
        raw = [p.get("gop_index")]
    else:
        raw = []
    return tuple(g for g in raw if isinstance(g, int) and not isinstance(g, bool) and g >= 0)


@dataclass(frozen=True, slots=True)
class PlannedGop:
    """One GOP of the clip: its role, segment records (in order) and verdict record."""

    gop_index: int
    role: GopRole
    segments: tuple[SegmentEntry, ...]
    verdict: int | None


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """The records ``first..last`` (inclusive), the anchors before them, the clip's GOPs."""

    camera: str
    start: float
    end: float
    first: int
    last: int
    anchors: tuple[int, ...]
    gops: tuple[PlannedGop, ...]


@dataclass
class _Runs:
    """Camera C's records keyed by (run, GOP): see rule 1."""

    segments: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    verdicts: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    run_of: dict[int, int] = field(default_factory=dict)  # record index -> run
    interval: dict[int, tuple[float, float]] = field(default_factory=dict)  # segment -> lo, hi
    sha: dict[int, str] = field(default_factory=dict)  # segment index -> sha256

    @classmethod
    def scan(cls, records: Sequence[Record], camera: str) -> _Runs:
        """Scan every record once, in index order."""
        runs, run, prev_gop, prev_at = cls(), 0, -1, None
        latest: dict[int, int] = {}  # GOP -> the run of its latest segment
        for r in records:
            if camera_of(r) != camera:
                continue
            gops = gops_of(r)
            prev_at = r.at if prev_at is None else prev_at  # the camera's first record
            if r.kind == "segment" and gops:
                if r.payload.get("end_of_stream") is not True:
                    run += 1 if gops[0] <= prev_gop else 0
                    prev_gop = gops[0]
                latest[gops[0]] = run
                runs.segments.setdefault((run, gops[0]), []).append(r.index)
                runs.interval[r.index] = (min(prev_at, r.at), max(prev_at, r.at))
                runs.sha[r.index] = str(r.payload.get("sha256"))
                prev_at = r.at
            elif r.kind == "verdict" and gops:
                runs.verdicts.setdefault((latest.get(gops[0], run), gops[0]), []).append(r.index)
            own = latest.get(gops[0], run) if r.kind == "verdict" and gops else run
            runs.run_of[r.index] = own
        return runs


def _span_hits(
    records: Sequence[Record], runs: _Runs, camera: str, start: float, end: float
) -> dict[int, set[int]]:
    """Rule 2: run -> the GOPs of the span in it."""
    hits: dict[int, set[int]] = {}
    for r in records:
        if r.index not in runs.run_of or not gops_of(r):
            continue
        if r.kind == "segment":
            lo, hi = runs.interval[r.index]
            inside = lo <= end and hi >= start
        else:
            inside = r.kind in ("verdict", "detections", "decision") and start <= r.at <= end
        if inside:
            hits.setdefault(runs.run_of[r.index], set()).update(gops_of(r))
    return hits


def _clip(runs: _Runs, run: int, gops: set[int], camera: str) -> list[PlannedGop]:
    """Rule 3: the contiguous GOPs with their segments and verdict, then the lead-out."""
    out = []
    for g in range(min(gops), max(gops) + 2):
        seg_idx = runs.segments.get((run, g))
        if seg_idx is None:
            if g > max(gops):
                break  # no lead-out: the stream ended (or the archive ends) there
            raise ExportError(
                f"GOP {g} of camera {camera}: expected its segment record, got none "
                "(the clip's GOPs must be contiguous)"
            )
        verdicts = runs.verdicts.get((run, g), [])
        if len(verdicts) > 1:
            raise ExportError(
                f"GOP {g} of camera {camera}: expected one verdict record, got "
                f"{len(verdicts)} (records {', '.join(map(str, verdicts))})"
            )
        role = GopRole.SPAN if g <= max(gops) else GopRole.LEAD_OUT
        if role is GopRole.SPAN and not verdicts:
            raise ExportError(
                f"GOP {g} of camera {camera}: expected its verdict record, got none (ingest "
                "stopped before deciding it); narrow --from/--to to leave it out"
            )
        entries = tuple(SegmentEntry(runs.sha[i], i) for i in sorted(seg_idx))
        out.append(PlannedGop(g, role, entries, verdicts[0] if verdicts else None))
    return out


def _needed(clip: list[PlannedGop], hits: set[int]) -> set[int]:
    """Indexes the range must hold: the span's own records, the clip's segments and the
    span GOPs' verdicts (a lead-out's verdict comes later and is not needed)."""
    out = set(hits)
    for g in clip:
        out.update(s.record for s in g.segments)
        if g.verdict is not None and g.role is GopRole.SPAN:
            out.add(g.verdict)
    return out


def _bounds(
    records: Sequence[Record], needed: set[int], start: float, end: float, covered: int
) -> tuple[int, int]:
    """Rule 4: widen [min, max] of ``needed`` to a record older than ``start`` and one
    younger than ``end`` (or to the ends of the checkpointed tree)."""
    first, last = min(needed), max(needed)
    if last >= covered:
        raise ExportError(
            f"expected a signed checkpoint covering record {last}, got the newest covering "
            f"{covered} record(s): stop the perimeter (closing the archive signs one) or wait "
            "for its next checkpoint, then export again"
        )
    while first > 0 and records[first].at >= start:
        first -= 1
    while last < covered - 1 and records[last].at <= end:
        last += 1
    return first, last


def _span_index(
    records: Sequence[Record], runs: _Runs, camera: str, start: float, end: float
) -> tuple[int, set[int], set[int]]:
    """The run, its span GOPs and the span's own record indexes; ExportError if none."""
    hits = _span_hits(records, runs, camera, start, end)
    if not hits:
        raise ExportError(
            f"expected records of camera {camera} between {_iso(start)} and {_iso(end)}, got none"
        )
    if len(hits) > 1:
        raise ExportError(
            f"expected the span to cover one run of camera {camera}, got {len(hits)} (its GOP "
            "numbering restarts inside it: a new run on the same data dir); narrow --from/--to"
        )
    ((run, gops),) = hits.items()
    own = {
        i
        for i, r in runs.run_of.items()
        if r == run and start <= records[i].at <= end and records[i].kind != "segment"
    }
    return run, gops, own


def _iso(at: float) -> str:
    try:
        return dt.datetime.fromtimestamp(at, dt.UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return repr(at)


def plan_export(
    records: Sequence[Record], camera: str, start: float, end: float, covered: int
) -> ExportPlan:
    """Plan the export of ``camera`` over [start, end] (see the module docstring).

    ``records`` are all of the archive's records (``records[i].index == i``); ``covered``
    is the size of the signed checkpoint the proofs will use. Raises ExportError.
    """
    runs = _Runs.scan(records, camera)
    run, gops, own = _span_index(records, runs, camera, start, end)
    for _ in range(_MAX_CLOSURE_ROUNDS):
        clip = _clip(runs, run, gops, camera)
        first, last = _bounds(records, _needed(clip, own), start, end, covered)
        named = {
            g for r in records[first : last + 1] if _decision_of(r, camera) for g in gops_of(r)
        }
        if named <= {g.gop_index for g in clip if g.role is GopRole.SPAN}:
            break
        gops |= named
    else:
        raise ExportError(
            f"expected the decisions of camera {camera} to settle on a closed set of GOPs, "
            f"got more after {_MAX_CLOSURE_ROUNDS} rounds; narrow --from/--to"
        )
    _one_run(runs, run, first, last, camera)
    anchors = tuple(r.index for r in records[:first] if _anchor(r, camera))
    return ExportPlan(camera, start, end, first, last, anchors, tuple(clip))


def _decision_of(record: Record, camera: str) -> bool:
    return record.kind == "decision" and camera_of(record) == camera


def _one_run(runs: _Runs, run: int, first: int, last: int, camera: str) -> None:
    """The range must not hold segment records of another run of the camera."""
    for (other, g), idx in runs.segments.items():
        inside = [i for i in idx if first <= i <= last]
        if other != run and inside:
            raise ExportError(
                f"expected records of one run of camera {camera} in records {first}..{last}, "
                f"got GOP {g} of another run at record {inside[0]}; narrow --from/--to"
            )


def _anchor(record: Record, camera: str) -> bool:
    if record.kind != "camera":
        return False
    return record.payload.get("action") in _CA_ACTIONS or camera_of(record) == camera
