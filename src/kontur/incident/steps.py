"""The archive's side of the incident playbooks (ADR 0029): records, facts, the verify report.

Every request leaves ``incident`` records (:data:`INCIDENT_KIND`): one when it is accepted
(``outcome: accepted``), one when it ends (``done`` or ``failed``), each
``{request_id, kind, by, via, reason?, camera?, from?, to?, outcome, detail, …facts}``; a
request file that is not a valid request leaves one ``refused`` record. The functions here
only append, read and write files; the desk (:mod:`kontur.runtime.incidents`) decides when.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kontur._private import FILE_MODE, fsync_dir, private_dir
from kontur.archive import Archive, Record, VerifyReport, witness_line
from kontur.incident.spool import Refused
from kontur.wire.messages import IncidentRequest

__all__ = [
    "FINAL_OUTCOMES",
    "INCIDENT_KIND",
    "append_incident",
    "append_refused",
    "final_record",
    "last_gop",
    "one_line",
    "report_path",
    "revocation_index",
    "save_report",
    "span_decided",
    "verify_line",
]

#: The record kind of every step of a playbook.
INCIDENT_KIND = "incident"
#: The outcomes that end a request.
FINAL_OUTCOMES = frozenset({"done", "failed"})
#: How many of the newest records a look-up of "the last …" reads, at most.
_RECENT = 2000


def one_line(exc: BaseException | str) -> str:
    """An error (or text) as one short line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _base(request: IncidentRequest, via: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "request_id": request.request_id,
        "kind": request.kind,
        "by": request.by,
        "via": via,
        "requested_at": request.at,
    }
    named = (
        ("reason", request.reason),
        ("camera", request.camera),
        ("from", request.from_at),
        ("to", request.to_at),
    )
    payload |= {k: v for k, v in named if v is not None}
    if request.kind == "revoke_camera":
        payload["preserve_s"] = request.preserve_s
    return payload


def append_incident(
    archive: Archive,
    request: IncidentRequest,
    via: str,
    outcome: str,
    detail: str,
    facts: Mapping[str, Any] | None = None,
) -> Record:
    """Append one ``incident`` record and commit it (announce only after this returns)."""
    payload = {**(facts or {}), **_base(request, via), "outcome": outcome, "detail": detail}
    record = archive.append(INCIDENT_KIND, payload)
    archive.flush()
    return record


def append_refused(archive: Archive, refused: Refused) -> Record:
    """The ``refused`` record of a request file that was not a valid request."""
    payload = {
        "request_id": refused.request_id,
        "kind": None,
        "via": "cli",
        "entry": refused.name,
        "outcome": "refused",
        "detail": refused.reason,
        "removed": refused.removed,
    }
    record = archive.append(INCIDENT_KIND, payload)
    archive.flush()
    return record


def final_record(archive: Archive, request_id: str) -> Record | None:
    """The committed record that ended ``request_id`` (``done``/``failed``), or None."""
    for record in reversed(archive.tail(INCIDENT_KIND, _RECENT)):
        p = record.payload
        if p.get("request_id") == request_id and p.get("outcome") in FINAL_OUTCOMES:
            return record
    return None


def last_gop(archive: Archive, camera: str) -> dict[str, Any] | None:
    """The camera's last archived GOP verdict: ``{record, gop_index, verdict, segment_sha256}``
    (among the newest verdict records), or None."""
    for record in reversed(archive.tail("verdict", _RECENT)):
        verdict = record.payload.get("verdict")
        if isinstance(verdict, dict) and verdict.get("camera_id") == camera:
            return {
                "record": record.index,
                "gop_index": verdict.get("gop_index"),
                "verdict": verdict.get("verdict"),
                "segment_sha256": record.payload.get("segment_sha256"),
            }
    return None


def span_decided(archive: Archive, camera: str, to_at: float) -> bool:
    """Whether the GOPs an export of ``camera`` up to ``to_at`` takes have their verdicts:
    the first segment stored after ``to_at`` (its interval reaches into the span), else the
    camera's last segment, has a committed verdict (among the newest records)."""
    segments = [
        r for r in archive.tail("segment", _RECENT // 10) if r.payload.get("camera_id") == camera
    ]
    after = [r for r in segments if r.at > to_at]
    needed = after[0] if after else (segments[-1] if segments else None)
    if needed is None:
        return True
    gop = needed.payload.get("gop_index")
    verdicts = [r.payload.get("verdict") for r in archive.tail("verdict", _RECENT // 10)]
    return any(
        isinstance(v, dict) and (v.get("camera_id"), v.get("gop_index")) == (camera, gop)
        for v in verdicts
    )


def revocation_index(archive: Archive, camera: str) -> int | None:
    """The index of the newest ``camera`` record revoking ``camera`` (committed), or None."""
    for record in reversed(archive.tail("camera", _RECENT)):
        p = record.payload
        if p.get("action") == "revoke" and p.get("camera_id") == camera:
            return record.index
    return None


def verify_line(report: VerifyReport) -> str:
    """One line, as ``kontur archive verify`` prints it."""
    if not report.ok:
        bad = report.first_bad
        where = f"record {bad.index}: {bad.reason}" if bad is not None else "unknown"
        return one_line(f"archive BROKEN at {where}")
    cp = report.checkpoint
    signed = "no signed checkpoint" if cp is None else f"signed up to {cp['size']}"
    wit = report.witness
    witness = "no witness configured" if wit is None else witness_line(wit)
    return (
        f"archive OK: {report.records} records ({signed}), {report.segments} segments "
        f"({report.removed} removed by retention), root {report.head[:16]}…; {witness}"
    )


def report_path(data_dir: Path, request_id: str) -> Path:
    """``DATA_DIR/run/verify-<request_id>.json``."""
    return Path(data_dir) / "run" / f"verify-{request_id}.json"


def save_report(data_dir: Path, request_id: str, report: Mapping[str, Any]) -> Path:
    """Write the verify report (0600, temporary file then rename); its path."""
    path = report_path(data_dir, request_id)
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(report, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path
