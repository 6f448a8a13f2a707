"""An incident's facts read from the archive (read-only): ``kontur text report``'s input.

Order of steps (:func:`incident_from_archive`): open the archive read-only; read the
``decision`` record at the index; the ``verdict`` records of its GOPs and the ``operator``
records that answer it (searched within :data:`NEAR` records after it); when asked, the
segment of the GOP that holds the decision's frame, whose picture
:func:`kontur.evidence.frames.decode_frame` decodes (the segment store checks its hash).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kontur.archive import Archive, ArchiveError, Record, SegmentStore
from kontur.evidence.errors import ExportError
from kontur.evidence.frames import decode_frame
from kontur.textguard.errors import ReportError
from kontur.textguard.report import IncidentFacts, OperatorFact, VerdictFact

__all__ = ["NEAR", "ArchivedIncident", "incident_from_archive"]

#: How many records around a decision are searched for its verdicts and operator answers.
NEAR = 4096


@dataclass(frozen=True)
class ArchivedIncident:
    """The facts of one decision and, when asked, the picture of its frame."""

    facts: IncidentFacts
    camera: str
    frame_index: int
    image: npt.NDArray[np.uint8] | None


def _iso(at: object) -> str:
    if not isinstance(at, int | float) or isinstance(at, bool):
        return ""
    return dt.datetime.fromtimestamp(float(at), dt.UTC).isoformat(timespec="seconds")


def _verdict(rec: Record, camera: str, gops: set[int]) -> VerdictFact | None:
    p = rec.payload
    body = p["verdict"] if isinstance(p.get("verdict"), dict) else p
    if body.get("camera_id") != camera or body.get("gop_index") not in gops:
        return None
    reasons = tuple(str(r) for r in body.get("reasons", ()) or ())
    return VerdictFact(int(body["gop_index"]), str(body.get("verdict")), reasons)


def _operator(rec: Record) -> OperatorFact:
    p = rec.payload
    who = p.get("operator") or ", ".join(str(o) for o in p.get("operators") or ()) or "—"
    return OperatorFact(
        str(p.get("outcome")), str(who), str(p.get("reason") or ""), _iso(p.get("at"))
    )


def _around(arc: Archive, index: int) -> list[Record]:
    start = max(0, index - NEAR)
    out = []
    for rec in arc.iter_records(start, kind=("verdict", "operator")):
        if rec.index > index + NEAR:
            break
        out.append(rec)
    return out


def _frame_segment(records: list[Record], camera: str, frame: int) -> tuple[str, int] | None:
    for rec in records:
        p = rec.payload
        body = p["verdict"] if isinstance(p.get("verdict"), dict) else p
        first, last = p.get("first_frame"), p.get("last_frame")
        if rec.kind != "verdict" or body.get("camera_id") != camera:
            continue
        if isinstance(first, int) and isinstance(last, int) and first <= frame <= last:
            return str(p.get("segment_sha256")), frame - first
    return None


def _facts(index: int, d: dict[str, Any], records: list[Record]) -> IncidentFacts:
    camera, gops = str(d.get("camera_id")), {int(g) for g in d.get("gops", ()) or ()}
    verdicts = [v for r in records if r.kind == "verdict" and (v := _verdict(r, camera, gops))]
    answers = [
        _operator(r) for r in records
        if r.kind == "operator" and r.payload.get("decision_index") == index
    ]  # fmt: skip
    return IncidentFacts(
        title=f"decision {index}",
        camera=camera,
        rule=str(d.get("rule")),
        action=str(d.get("action")),
        outcome=str(d.get("outcome")),
        executed=str(d.get("executed") or "nothing"),
        at=_iso(d.get("at")),
        reasons=tuple(str(r) for r in d.get("reasons", ()) or ()),
        verdicts=tuple(sorted(verdicts, key=lambda v: v.gop)),
        operator=tuple(answers),
    )


def incident_from_archive(data_dir: Path, index: int, *, with_frame: bool) -> ArchivedIncident:
    """The decision at ``index`` (steps in the module doc); ReportError (one line) otherwise."""
    try:
        with Archive.open_readonly(data_dir) as arc:
            rec = next(arc.iter_records(index), None) if 0 <= index < arc.records else None
            if rec is None or rec.kind != "decision" or rec.index != index:
                raise ReportError(
                    f"decision: expected a decision record at index {index}, got "
                    f"{rec.kind if rec is not None else 'none'}"
                )
            d = rec.payload
            records = _around(arc, index)
        camera, frame = str(d.get("camera_id")), int(d.get("frame_index", 0))
        image = None
        if with_frame:
            where = _frame_segment(records, camera, frame)
            if where is None:
                raise ReportError(f"frame: expected the GOP of {camera} frame {frame}, got none")
            image = decode_frame(SegmentStore(data_dir).read(where[0]), where[1])
    except (ArchiveError, ExportError) as exc:
        raise ReportError(f"archive {data_dir}: {exc}") from None
    return ArchivedIncident(_facts(index, d, records), camera, frame, image)
