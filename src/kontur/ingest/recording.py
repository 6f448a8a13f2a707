"""Check a recorded (or received) file GOP by GOP with the ingest's own trust shell.

:func:`check_recording` demuxes ``source`` without decoding (:func:`read_gops` with
``decode=False``), feeds every GOP to a :class:`~kontur.ingest.trust.CameraTrust` and
returns one :class:`CheckedGop` per GOP, in order: what ``kontur verify`` prints and what
the attack suite asserts. The freshness guard passed in decides how strict the time and
replay checks are (live bounds, or a recording's scratch state).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from kontur.ingest.checks import merge_findings
from kontur.ingest.inventory import FreshnessGuard
from kontur.ingest.source import probe, read_gops
from kontur.ingest.trust import CameraTrust, GopTrust
from kontur.ingest.verdict import GopVerdict

__all__ = ["CheckedGop", "check_recording"]


@dataclass(frozen=True)
class CheckedGop:
    """The verdict of one GOP and the trust facts behind it."""

    verdict: GopVerdict
    trust: GopTrust

    def row(self) -> dict[str, Any]:
        """The ``kontur verify --json`` form: index, verdict, reason, counter, start, end."""
        r = self.trust.oms
        return {
            "index": self.verdict.gop_index,
            "verdict": self.verdict.verdict.value,
            "reason": "; ".join(self.verdict.reasons),
            "counter": r.gop_counter if r else None,
            "start": r.capture_start.isoformat() if r and r.capture_start else None,
            "end": r.capture_end.isoformat() if r and r.capture_end else None,
        }


def check_recording(
    source: str | Path,
    camera_id: str,
    *,
    guard: FreshnessGuard | None,
    anchors: Sequence[x509.Certificate] = (),
) -> list[CheckedGop]:
    """Every GOP of ``source`` checked (signature, then freshness when ``guard`` is given)."""
    pr = probe(str(source))
    trust: CameraTrust | None = None
    decided: list[GopTrust] = []
    for index, gop in enumerate(read_gops(str(source), pr, decode=False)):
        if trust is None:
            trust = CameraTrust(camera_id, gop.info.codec, gop.header, guard=guard, anchors=anchors)
        decided += trust.push(index, gop.packets, gop.info)
    if trust is not None:
        decided += trust.finish()
    return [
        CheckedGop(merge_findings(camera_id, t.gop_index, list(t.findings)), t)
        for t in sorted(decided, key=lambda t: t.gop_index)
    ]
