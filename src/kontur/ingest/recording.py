"""Check a recorded (or received) file GOP by GOP with the ingest's own trust shell.

:func:`check_recording` demuxes ``source`` without decoding (:func:`probe` and
:func:`read_gops` with ``decode=False``), feeds every GOP to a
:class:`~kontur.ingest.trust.CameraTrust` and returns one :class:`CheckedGop` per GOP, in
order: what ``kontur verify`` prints and what the attack suite asserts. The freshness guard
passed in decides how strict the time and replay checks are (live bounds, or a recording's
scratch state).

Each GOP's frame times, as ingest would stamp them (the packets' presentation times, or
synthesised at the frame rate where the container has none), are then checked in GOP order
against its signed capture times (:mod:`kontur.ingest.signedtime`, ADR 0018): a retimed
container is RETIMED.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from cryptography import x509

from kontur.ingest.checks import merge_findings
from kontur.ingest.inventory import FreshnessGuard
from kontur.ingest.signedtime import FrameSpan, SignedTimeCheck, TimeCheck, TimeCheckPolicy
from kontur.ingest.source import RawGop, probe, read_gops
from kontur.ingest.trust import CameraTrust, GopTrust
from kontur.ingest.verdict import GopVerdict

__all__ = ["CheckedGop", "check_recording"]


@dataclass(frozen=True)
class CheckedGop:
    """The verdict of one GOP and the trust facts behind it."""

    verdict: GopVerdict
    trust: GopTrust
    time: TimeCheck | None = None
    """Its frame times against its signed capture times (ADR 0018)."""

    def row(self) -> dict[str, Any]:
        """The ``kontur verify --json`` form: index, verdict, reason, counter, start, end,
        time (``{status: ok | retimed | unchecked, reasons}``)."""
        r = self.trust.oms
        return {
            "index": self.verdict.gop_index,
            "verdict": self.verdict.verdict.value,
            "reason": "; ".join(self.verdict.reasons),
            "counter": r.gop_counter if r else None,
            "start": r.capture_start.isoformat() if r and r.capture_start else None,
            "end": r.capture_end.isoformat() if r and r.capture_end else None,
            "time": self.time.record() if self.time else None,
        }


class _FrameTimes:
    """The times ingest gives a GOP's pictures, read from its packets without decoding: the
    presentation time, or, where the container has none, the picture's count over the frame
    rate (as :mod:`kontur.ingest.source` stamps them)."""

    def __init__(self) -> None:
        self.pictures = 0

    def span(self, gop: RawGop, pictures: list[bool]) -> FrameSpan | None:
        """The earliest and latest picture time of ``gop``, None without a picture."""
        tb_text = str(gop.header.get("time_base") or "")
        tb = Fraction(tb_text) if "/" in tb_text else None
        synthesise = gop.header.get("pts") == "synthesised" or tb is None
        fps = gop.info.fps or 25.0
        times: list[float] = []
        for packet, picture in zip(gop.packets, pictures, strict=True):
            if not picture:
                continue
            if synthesise or packet.pts is None or tb is None:
                times.append(self.pictures / fps)
            else:
                times.append(float(packet.pts * tb))
            self.pictures += 1
        return FrameSpan(min(times), max(times)) if times else None


def check_recording(
    source: str | Path,
    camera_id: str,
    *,
    guard: FreshnessGuard | None,
    anchors: Sequence[x509.Certificate] = (),
    time_policy: TimeCheckPolicy | None = None,
) -> list[CheckedGop]:
    """Every GOP of ``source`` checked (signature, then freshness when ``guard`` is given,
    then its frame times against its signed times under ``time_policy``)."""
    pr = probe(str(source), decode=False)
    trust: CameraTrust | None = None
    decided: list[GopTrust] = []
    spans: dict[int, FrameSpan | None] = {}
    clock = _FrameTimes()
    for index, gop in enumerate(read_gops(str(source), pr, decode=False)):
        if trust is None:
            trust = CameraTrust(camera_id, gop.info.codec, gop.header, guard=guard, anchors=anchors)
        decided += trust.push(index, gop.packets, gop.info)
        spans[index] = clock.span(gop, trust.pictures(gop.packets))
    if trust is not None:
        decided += trust.finish()
    times = SignedTimeCheck(time_policy)
    out = []
    for t in sorted(decided, key=lambda t: t.gop_index):
        timed = times.check(t.gop_index, t.signed_times(), spans.get(t.gop_index))
        verdict = merge_findings(camera_id, t.gop_index, [*t.findings, *timed.findings()])
        out.append(CheckedGop(verdict, t, timed))
    return out
