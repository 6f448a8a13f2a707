"""Signed time over container time: the frame times decisions use, checked against the
capture times a GOP's signature carries (ADR 0018). Pure: no clock, no I/O.

Container timestamps are unsigned, yet the gate's dwell timer and the verifier's speed checks
run on the frame times ingest reads from them. ONVIF Media Signing signs, in the General TLV
of the SEI of GOP ``k``, the capture time of GOP ``k``'s first frame and of GOP ``k+1``'s
first frame (``oms_signer.c``; see
:attr:`~kontur.ingest.oms.validator.SignedGopResult.signed_times`).

What is compared. Only differences. The container's timeline is local to the stream (a file
starts anywhere, an RTSP session at an arbitrary RTP origin, ingest shifts it over a
reconnect) and a camera's clock may start at any epoch (the reference signer app writes
times ten times too small, README quirk 3), so absolute times are never comparable. Signed
differences are taken from the raw FILETIME ticks, never from corrected capture times.

Checks, for each GOP whose signature verified
(:meth:`~kontur.ingest.trust.GopTrust.signed_times`):

1. step: the time from the reference GOP's first frame to this GOP's, container against
   signed, within ``tolerance_s``. The reference is the last GOP checked, so a time shift
   hidden behind GOPs that failed (a dropped GOP, restamped) is still found;
2. drift: the container's offset from the signed timeline since the anchor (the first GOP
   checked, or the last step that failed) within ``tolerance_s + max_drift * elapsed``: a
   rescale small enough to pass every step is caught as it accumulates;
3. span: the GOP's last frame at most ``tolerance_s`` after the signed start of the next GOP
   (every frame of a GOP precedes the next GOP's first). Only an upper bound: a camera with a
   variable frame rate may hold its last frame long. The final SEI states no next start.

A failed step re-anchors (a camera clock step shows as one RETIMED GOP, not a stream of
them); a failed drift does not (a rescaled container stays flagged). Within a GOP only its
first frame and the upper bound are signed: a retiming inside those bounds is not visible.
Not checked, said in the reasons, never flagged: GOPs without a verified signature (unsigned,
pending, failed), GOPs without frame times, the demo camera's own signatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kontur.ingest.checks import Finding
from kontur.ingest.verdict import Verdict

__all__ = [
    "TICKS_PER_S",
    "FrameSpan",
    "SignedTimeCheck",
    "SignedTimes",
    "TimeCheck",
    "TimeCheckPolicy",
    "TimeStatus",
]

#: FILETIME ticks (100 ns) per second.
TICKS_PER_S = 10_000_000


@dataclass(frozen=True)
class TimeCheckPolicy:
    """How far container times may stray from the signed ones (config ``ingest.time_check``)."""

    tolerance_s: float = 0.1
    """Per step, span, and on top of the drift allowance."""
    max_drift: float = 0.001
    """Seconds of drift allowed per signed second since the anchor (3.6 s an hour)."""

    def __post_init__(self) -> None:
        if not 0 < self.tolerance_s <= 10:
            raise ValueError(f"expected a tolerance in (0, 10] s, got {self.tolerance_s}")
        if not 0 <= self.max_drift <= 0.1:
            raise ValueError(f"expected a max drift in [0, 0.1], got {self.max_drift}")


@dataclass(frozen=True)
class SignedTimes:
    """What a verified signature says about a GOP's time, in raw FILETIME ticks."""

    start: int
    """Capture time of the GOP's first frame."""
    next_start: int | None = None
    """Capture time of the next GOP's first frame, where the SEI states it."""


@dataclass(frozen=True)
class FrameSpan:
    """The earliest and latest time ingest gave a GOP's frames (seconds of the stream)."""

    first_s: float
    last_s: float


class TimeStatus(StrEnum):
    """Outcome of the time check of one GOP."""

    OK = "ok"
    RETIMED = "retimed"
    UNCHECKED = "unchecked"


@dataclass(frozen=True)
class TimeCheck:
    """The time check of one GOP: its status and the reasons (expected, then found)."""

    gop_index: int
    status: TimeStatus
    reasons: tuple[str, ...]

    def findings(self) -> list[Finding]:
        """RETIMED findings; for an unchecked GOP a note that changes no verdict."""
        if self.status is TimeStatus.RETIMED:
            return [(Verdict.RETIMED, r) for r in self.reasons]
        if self.status is TimeStatus.UNCHECKED:
            return [(Verdict.AUTHENTIC, r) for r in self.reasons]
        return []

    def record(self) -> dict[str, object]:
        """The form kept in the archive and in ``kontur verify --json``."""
        return {"status": self.status.value, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class _Mark:
    index: int
    container_s: float
    signed: int


def _signed_s(a: _Mark, b: _Mark) -> float:
    return (b.signed - a.signed) / TICKS_PER_S


class SignedTimeCheck:
    """Checks one camera's GOPs, in any order, against their signed times (module docstring)."""

    def __init__(self, policy: TimeCheckPolicy | None = None) -> None:
        self.policy = policy or TimeCheckPolicy()
        self._ref: _Mark | None = None
        self._anchor: _Mark | None = None

    def resync(self) -> None:
        """A new container timeline (an RTSP reconnect): the next GOP checked anchors it."""
        self._ref = self._anchor = None

    def check(
        self, gop_index: int, signed: SignedTimes | str, frames: FrameSpan | None
    ) -> TimeCheck:
        """The check of GOP ``gop_index``; ``signed`` as a string says why there is none."""
        if isinstance(signed, str):
            return _unchecked(gop_index, signed)
        if frames is None:
            return _unchecked(gop_index, "no frame times (nothing decoded)")
        mark = _Mark(gop_index, frames.first_s, signed.start)
        ref, anchor = self._ref, self._anchor
        reasons: list[str] = []
        step = None if ref is None else self._step(ref, mark)
        if step is not None:
            reasons.append(step)
        elif anchor is not None and anchor is not ref:
            reasons += filter(None, [self._drift(anchor, mark)])
        reasons += filter(None, [self._span(mark, signed, frames)])
        if anchor is None or step is not None:
            self._anchor = mark
        self._ref = mark
        if reasons:
            return TimeCheck(gop_index, TimeStatus.RETIMED, tuple(reasons))
        why = (
            f"container times match the signed capture times within {self.policy.tolerance_s:g} s"
            if ref is not None
            else "first GOP checked: anchors the comparison"
        )
        return TimeCheck(gop_index, TimeStatus.OK, (why,))

    def _step(self, ref: _Mark, mark: _Mark) -> str | None:
        signed = _signed_s(ref, mark)
        got = mark.container_s - ref.container_s
        if abs(got - signed) <= self.policy.tolerance_s:
            return None
        return (
            f"expected GOP {mark.index} to start {signed:.3f} s after GOP {ref.index} (signed "
            f"capture times), got {got:.3f} s in the container ({got - signed:+.3f} s, "
            f"tolerance {self.policy.tolerance_s:g} s)"
        )

    def _drift(self, anchor: _Mark, mark: _Mark) -> str | None:
        signed = _signed_s(anchor, mark)
        off = (mark.container_s - anchor.container_s) - signed
        allowed = self.policy.tolerance_s + self.policy.max_drift * abs(signed)
        if abs(off) <= allowed:
            return None
        return (
            f"expected the container within {allowed:.3f} s of the signed timeline "
            f"{signed:.3f} s after GOP {anchor.index}, got {off:+.3f} s at GOP {mark.index} "
            "(rescaled)"
        )

    def _span(self, mark: _Mark, signed: SignedTimes, frames: FrameSpan) -> str | None:
        if signed.next_start is None:
            return None
        span = (signed.next_start - signed.start) / TICKS_PER_S
        got = frames.last_s - frames.first_s
        if got <= span + self.policy.tolerance_s:
            return None
        return (
            f"expected the frames of GOP {mark.index} within {span:.3f} s of its first (the "
            f"signed start of the next GOP), got one {got:.3f} s after it "
            f"(tolerance {self.policy.tolerance_s:g} s)"
        )


def _unchecked(gop_index: int, why: str) -> TimeCheck:
    return TimeCheck(
        gop_index,
        TimeStatus.UNCHECKED,
        (f"container times not checked against signed time: {why}",),
    )
