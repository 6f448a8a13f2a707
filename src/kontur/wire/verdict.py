"""Per-GOP verdicts of the trusted ingest (DESIGN.md §3, "Verdicts, per GOP"), and the system
state, as shared enums of the lowest layer: ingest owns the verdicts, the degradation machine
the state, and every other block only reads them (so no package imports upward).

Every GOP that ingest closes gets exactly one :class:`Verdict` and the reasons behind it.
Only :attr:`Verdict.AUTHENTIC` is trusted downstream; every other verdict (UNSIGNED
included) makes the GOP untrusted for critical decisions.

When several findings apply to one GOP, the most severe one is the verdict and all of them
stay in ``reasons`` (see :data:`SEVERITY`).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = [
    "DENY_VERDICTS",
    "FAILING_VERDICTS",
    "SEVERITY",
    "GopVerdict",
    "SystemState",
    "Verdict",
    "most_severe",
]


class Verdict(StrEnum):
    """What ingest concluded about one GOP."""

    AUTHENTIC = "AUTHENTIC"
    """Signature, chain, sequence, time and profile all verified."""
    MISSING = "MISSING"
    """Frames were lost; what arrived verifies. A dropped P-frame is an alarm, never a pass."""
    NOT_AUTHENTIC = "NOT_AUTHENTIC"
    """Content fails verification (altered bytes, forged signature, broken chain)."""
    UNSIGNED = "UNSIGNED"
    """No signature where one is expected (or a source that cannot sign)."""
    DOWNGRADE = "DOWNGRADE"
    """Unsigned data after signed data from the same camera."""
    REPLAYED = "REPLAYED"
    """This GOP (or its counter) was seen before."""
    STALE = "STALE"
    """Capture time outside the freshness window of the receiver's trusted clock."""
    KEY_CHANGED = "KEY_CHANGED"
    """The signing key differs from the one the camera is enrolled with."""
    REVOKED = "REVOKED"
    """The camera's certificate was revoked."""
    PENDING = "PENDING"
    """The GOP has not closed yet (its signature has not arrived)."""
    PROFILE_CHANGED = "PROFILE_CHANGED"
    """Codec, resolution or frame rate differs from the enrolled profile."""
    RETIMED = "RETIMED"
    """The frame times ingest read from the container disagree with the GOP's signed capture
    times (the container was retimed; ADR 0018)."""

    @property
    def trusted(self) -> bool:
        """Only AUTHENTIC may feed a critical decision."""
        return self is Verdict.AUTHENTIC


#: Most severe first. A GOP with several findings carries the first that applies.
#:
#: The five DENY verdicts come first, ordered so that the headline names the *cause* an
#: operator acts on (ADR 0012): a revoked camera or a foreign key explains why the chain breaks,
#: a replayed or downgraded GOP explains why its content no longer verifies. Every finding stays
#: in the reasons either way, and the gate denies all five alike.
SEVERITY: tuple[Verdict, ...] = (
    Verdict.REVOKED,
    Verdict.KEY_CHANGED,
    Verdict.REPLAYED,
    Verdict.DOWNGRADE,
    Verdict.NOT_AUTHENTIC,
    Verdict.PROFILE_CHANGED,
    Verdict.RETIMED,
    Verdict.STALE,
    Verdict.UNSIGNED,
    Verdict.MISSING,
    Verdict.PENDING,
    Verdict.AUTHENTIC,
)


def most_severe(verdicts: list[Verdict] | tuple[Verdict, ...]) -> Verdict:
    """The most severe of ``verdicts``; refuses an empty list (nothing checked is not a pass)."""
    if not verdicts:
        raise ValueError("expected at least one verdict, got none")
    return min(verdicts, key=SEVERITY.index)


class GopVerdict(BaseModel):
    """The recorded result for one GOP: the verdict and the reasons an operator reads."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    camera_id: str
    gop_index: int
    verdict: Verdict
    reasons: tuple[str, ...]

    @field_validator("reasons")
    @classmethod
    def _reasons_present(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("expected at least one reason, got none")
        return v


#: Verdicts that say the video itself is not what the camera sent (or not from that camera):
#: the gate denies a critical action on any of them (ADR 0007).
DENY_VERDICTS: frozenset[Verdict] = frozenset(
    {
        Verdict.NOT_AUTHENTIC,
        Verdict.REPLAYED,
        Verdict.DOWNGRADE,
        Verdict.KEY_CHANGED,
        Verdict.REVOKED,
    }
)

#: Verdicts that are an *event* for the sinks and count towards a camera's sustained failure
#: (UNSIGNED, PENDING and PROFILE_CHANGED are states of a source, not attacks on it; a
#: RETIMED container is an attack on the time axis that decisions run on, ADR 0018).
FAILING_VERDICTS: frozenset[Verdict] = DENY_VERDICTS | {
    Verdict.MISSING,
    Verdict.STALE,
    Verdict.RETIMED,
}


class SystemState(StrEnum):
    """The perimeter's operating state (DESIGN.md §1, safe degradation), least severe first.

    The degradation machine owns it; the gate reads it from ``StateChanged``.
    """

    NORMAL = "NORMAL"
    """Everything verified: all cameras analysed, critical actions may run automatically."""
    DEGRADED = "DEGRADED"
    """Priority tasks on the CPU, the rest analysed at a lower rate, critical actions held."""
    SAFE = "SAFE"
    """Priority tasks on the CPU only, analysis of the rest off, critical actions held."""

    @property
    def level(self) -> int:
        """0 for NORMAL, 1 for DEGRADED, 2 for SAFE: a higher level is more severe."""
        return _STATE_ORDER.index(self)


_STATE_ORDER: tuple[SystemState, ...] = (SystemState.NORMAL, SystemState.DEGRADED, SystemState.SAFE)
