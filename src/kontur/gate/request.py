"""What a requirement judges: one requested action, with the evidence the gate attached.

A trigger rule (:mod:`kontur.gate.rules`) builds an :class:`ActionRequest` from the tracks
alone: which rule fired, which action, for which track, on which frames and GOPs, with the
verifier's findings for those frames. The :class:`~kontur.gate.Gate` then attaches what only
it knows (the GOP verdicts, the system state, the camera's signing policy) with
:meth:`ActionRequest.with_context` before any requirement sees it.

The context fields default to what is *least* trusted: no verdicts, state SAFE, signing
required, no camera tamper state. A request judged without a gate's context is therefore
never allowed by accident.

:class:`SystemState` is the shared enum of :mod:`kontur.wire.verdict` (the degradation
machine owns the state), named here too; the gate keeps no copy of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from kontur.wire import Finding
from kontur.wire.verdict import GopVerdict, SystemState

__all__ = ["UNKNOWN_STATUS", "ActionRequest", "SystemState", "SystemStatus", "TamperSpan"]


@dataclass(frozen=True)
class SystemStatus:
    """A system state and the trigger that put the perimeter there."""

    state: SystemState
    trigger: str

    def worse(self, other: SystemStatus) -> SystemStatus:
        """The more severe of ``self`` and ``other`` (``self`` on a tie)."""
        return other if other.state.level > self.state.level else self


#: The status a request carries before a gate attaches the real one: fail safe.
UNKNOWN_STATUS = SystemStatus(SystemState.SAFE, "no system state attached to the request")


@dataclass(frozen=True)
class TamperSpan:
    """A camera tamper or low-quality event as ingest reported it (``TamperAlarm``, ADR 0030).

    ``first_frame``..``last_frame`` are the frames it may have touched (ingest's numbers);
    ``end_s`` and ``last_frame`` are None while it is open.
    """

    kind: str
    start_s: float
    end_s: float | None
    score: float
    reason: str
    first_frame: int
    last_frame: int | None = None

    @property
    def open(self) -> bool:
        """True until ingest said the event ended."""
        return self.end_s is None

    def touches(self, first: int, last: int) -> bool:
        """True when the event may have touched a frame of ``first``..``last``."""
        return self.first_frame <= last and (self.last_frame is None or self.last_frame >= first)


def _frozen_map(verdicts: Mapping[int, GopVerdict]) -> Mapping[int, GopVerdict]:
    return MappingProxyType(dict(verdicts))


@dataclass(frozen=True, eq=False)
class ActionRequest:
    """One action a rule asks for, and everything a requirement needs to judge it.

    ``frames`` and ``gops`` are the frame and GOP indices of the window that made the rule fire
    (for a dwell: from entering the zone to reaching ``min_seconds``); ``findings`` are the
    verifier's findings for those frames.
    """

    rule: str
    action: str
    camera_id: str
    track_id: int | None
    frame_index: int
    frames: tuple[int, ...]
    gops: tuple[int, ...]
    findings: tuple[Finding, ...]
    box: tuple[float, float, float, float] | None = None
    """The track's box (x1, y1, x2, y2, pixels) on ``frame_index``: the worker's claim, kept
    only to show the operator what fired (a snapshot, a crop); no requirement reads it."""
    earlier_track_ids: tuple[int, ...] = ()
    """Ids the worker gave the same object earlier in the window (the dwell follows the
    object across an id change, ADR 0042): such a request is never ALLOWed automatically,
    and the verifier's reasons on those ids count too."""
    verdicts: Mapping[int, GopVerdict] = field(default_factory=lambda: _frozen_map({}))
    """GOP index → verdict, for the GOPs in ``gops`` whose verdict has arrived."""
    status: SystemStatus = UNKNOWN_STATUS
    """The worst system state seen between the trigger and the decision."""
    signing_required: bool = True
    """The camera's ``signing_required`` (UNSIGNED → DENY when true)."""
    tamper: tuple[TamperSpan, ...] | None = None
    """The camera's tamper events the gate knows of (open, and recently ended); None: no
    tamper state attached, which :class:`~kontur.gate.policy.CameraNotTampered` refuses."""

    @property
    def unknown_gops(self) -> tuple[int, ...]:
        """The GOPs of the window whose verdict has not arrived yet."""
        return tuple(g for g in self.gops if g not in self.verdicts)

    def with_context(
        self,
        *,
        verdicts: Mapping[int, GopVerdict] | Iterable[GopVerdict],
        status: SystemStatus,
        signing_required: bool,
        tamper: Iterable[TamperSpan] | None = None,
    ) -> ActionRequest:
        """A copy carrying the gate's context: verdicts (only those of ``gops`` are kept) and,
        when given, the camera's tamper events."""
        if isinstance(verdicts, Mapping):
            found = dict(verdicts)
        else:
            found = {v.gop_index: v for v in verdicts}
        kept = {g: found[g] for g in self.gops if g in found}
        return replace(
            self,
            verdicts=_frozen_map(kept),
            status=status,
            signing_required=signing_required,
            tamper=self.tamper if tamper is None else tuple(tamper),
        )
