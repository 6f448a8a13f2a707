"""Check a recorded (or received) file GOP by GOP with the ingest's own trust shell.

:func:`check_recording` demuxes ``source`` without decoding (:func:`probe` and
:func:`read_gops` with ``decode=False``) and drives the live ingest's own pure core
(:class:`~kontur.ingest.core.IngestCore`: trust shell, signed time, merge of findings) with
every packet, the time of every picture and every GOP cut, without a profile check and
storing nothing. It returns one :class:`CheckedGop` per GOP the signature decided, in order:
what ``kontur verify`` prints and what the attack suite asserts. The freshness guard passed
in decides how strict the time and replay checks are (live bounds, or a recording's scratch
state).

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

from kontur.ingest.core import Closed, Event, IngestCore
from kontur.ingest.inventory import FreshnessGuard
from kontur.ingest.signedtime import TimeCheck, TimeCheckPolicy
from kontur.ingest.source import RawGop, probe, read_gops
from kontur.ingest.trust import GopTrust
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

    def times(self, gop: RawGop, pictures: list[bool]) -> list[float]:
        """The time of each picture of ``gop``, in packet order."""
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
        return times


def check_recording(
    source: str | Path,
    camera_id: str,
    *,
    guard: FreshnessGuard | None,
    anchors: Sequence[x509.Certificate] = (),
    time_policy: TimeCheckPolicy | None = None,
) -> list[CheckedGop]:
    """Every GOP of ``source`` checked (signature, then freshness when ``guard`` is given,
    then its frame times against its signed times under ``time_policy``).

    Per GOP, in order: its packets to the core, then its pictures' times (as frames that
    were not decoded), then its cut; at the end the core decides what is left.
    """
    pr = probe(str(source), decode=False)
    core = IngestCore(camera_id, anchors=anchors, time_policy=time_policy, report_all=True)
    clock = _FrameTimes()
    events: list[Event] = []
    for gop in read_gops(str(source), pr, decode=False):
        if not core.started:
            core.start(gop.header, gop.info, guard=guard)
        for packet in gop.packets:
            events += core.packet(packet, gop.info)
        for pts_s in clock.times(gop, core.pictures(gop.packets)):
            events += core.frame(pts_s, None)
        core.cut(gop, ())  # nothing is stored
        events += core.stored(None)
    events += core.finish()
    closed = sorted((e for e in events if isinstance(e, Closed)), key=lambda c: c.verdict.gop_index)
    return [CheckedGop(c.verdict, c.trust, c.time) for c in closed]
