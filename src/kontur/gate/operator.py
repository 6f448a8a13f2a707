"""The operator desk: OPERATOR decisions waiting for a person (issue 11 §6, ADR 0023).

A pure core: it reads no clock but the injected one and does no I/O. The supervisor's
recorder is its shell: it archives what each call returns, commits it, and only then hands
the sinks the action that runs (decide, record, act).

Order of steps:

1. :meth:`OperatorDesk.add`: a gate decision with outcome OPERATOR, once its ``decision``
   record is durable at archive index ``L``, becomes ``PendingRequest(id="op-L")`` with a
   deadline ``deadline_s`` from now and the action's ``two_person`` rule. Beyond
   ``max_pending`` waiting requests the oldest fails safe at once (returned as expired).
2. :meth:`OperatorDesk.apply`: one operator's verdict, one at a time (the desk is the
   serialisation point: the first verdict that resolves a request wins, every later one is
   :class:`Refused` naming who resolved it):

   - unknown id, already resolved, or past its deadline → :class:`Refused`;
   - ``confirm=False`` → :class:`Resolution` ``rejected`` (one "no" is enough, four eyes or
     not); what runs is the action's restricted alternative, or nothing;
   - ``confirm=True`` → ``confirmed`` (the action runs), unless the action is ``two_person``
     and this is the first confirmation: :class:`Awaiting`; the second must come from a
     different operator (the same one again is :class:`Refused`).

3. :meth:`OperatorDesk.expire`: every request past its deadline fails safe: ``expired``,
   the restricted alternative or nothing. :meth:`OperatorDesk.close` does the same for every
   request still waiting when the run stops (a desk does not outlive its run).

Every call that changes the desk bumps :attr:`OperatorDesk.version`, so the shell knows when
to publish the run state at once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from kontur.clock import Clock
from kontur.config import ActionConfig
from kontur.wire import Decision, Outcome
from kontur.wire.messages import OperatorVerdict
from kontur.wire.runstate import PendingRequest

__all__ = [
    "Awaiting",
    "DeskOutcome",
    "OperatorDesk",
    "Refused",
    "Resolution",
    "request_id",
]

#: Resolved requests remembered, so a late verdict hears who won (``RunState.resolved``).
RESOLVED_KEPT = 100


class DeskOutcome(StrEnum):
    """What one desk call did: the ``outcome`` of the ``operator`` archive record."""

    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    AWAITING_SECOND = "awaiting_second"
    REFUSED = "refused"
    EXPIRED = "expired"


def request_id(decision_index: int) -> str:
    """The id of the request for the decision recorded at archive index ``decision_index``."""
    return f"op-{decision_index}"


@dataclass(frozen=True)
class Resolution:
    """A request closed for good: what runs now (``executed``), who decided and why."""

    request: PendingRequest
    outcome: DeskOutcome
    """``confirmed``, ``rejected`` or ``expired``."""
    executed: str | None
    """The action (confirmed), its restricted alternative or None (rejected, expired)."""
    operators: tuple[str, ...]
    """Who confirmed (both, four eyes), or who rejected; empty when it expired."""
    reason: str
    at: float

    def how(self) -> str:
        """One line for ``RunState.resolved``: ``confirmed by ana``, ``expired``."""
        if not self.operators:
            return self.outcome.value
        return f"{self.outcome.value} by {' and '.join(self.operators)}"


@dataclass(frozen=True)
class Awaiting:
    """A four-eyes request confirmed once: it waits for a second, different operator."""

    request: PendingRequest
    operator: str

    outcome = DeskOutcome.AWAITING_SECOND


@dataclass(frozen=True)
class Refused:
    """A verdict that changed nothing, with the reason the operator reads."""

    request_id: str
    operator: str
    reason: str
    request: PendingRequest | None = None
    """The request it was about, when the desk knew it (still waiting)."""

    outcome = DeskOutcome.REFUSED


class OperatorDesk:
    """Pending OPERATOR requests and their resolution (see the module for the order)."""

    def __init__(
        self,
        actions: Mapping[str, ActionConfig],
        deadline_s: float,
        clock: Clock,
        *,
        max_pending: int = 1000,
    ) -> None:
        if deadline_s <= 0:
            raise ValueError(f"expected a positive deadline, got {deadline_s} s")
        if max_pending < 1:
            raise ValueError(f"expected room for at least one request, got {max_pending}")
        self._actions = dict(actions)
        self._deadline_s = deadline_s
        self._clock = clock
        self._max_pending = max_pending
        self._pending: OrderedDict[str, PendingRequest] = OrderedDict()
        self._resolved: OrderedDict[str, str] = OrderedDict()
        self.version = 0
        """Bumped by every change (a request added, confirmed, resolved)."""

    # ---- what the run state shows ---------------------------------------------------------
    @property
    def pending(self) -> tuple[PendingRequest, ...]:
        """The waiting requests, oldest first."""
        return tuple(self._pending.values())

    @property
    def resolved(self) -> dict[str, str]:
        """The last :data:`RESOLVED_KEPT` resolved requests: id → how."""
        return dict(self._resolved)

    # ---- 1. add ---------------------------------------------------------------------------
    def add(
        self,
        decision_index: int,
        decision: Decision,
        *,
        gop_verdicts: Mapping[str, str] | None = None,
        segments: tuple[str, ...] = (),
    ) -> tuple[PendingRequest, list[Resolution]]:
        """Queue the OPERATOR ``decision`` recorded at ``decision_index``.

        Returns the request and the requests that overflowed ``max_pending`` (expired now).
        Raises ValueError for another outcome or an index already queued (a caller's bug).
        """
        if decision.outcome is not Outcome.OPERATOR:
            raise ValueError(f"expected an OPERATOR decision, got {decision.outcome.value}")
        rid = request_id(decision_index)
        if rid in self._pending or rid in self._resolved:
            raise ValueError(f"expected a new decision index, got {decision_index} again")
        action = self._actions.get(decision.action)
        request = PendingRequest(
            id=rid,
            decision_index=decision_index,
            decision=decision,
            deadline=self._clock.wall() + self._deadline_s,
            two_person=action is not None and action.two_person,
            gop_verdicts=dict(gop_verdicts or {}),
            segments=segments,
        )
        self._pending[rid] = request
        self.version += 1
        overflow: list[Resolution] = []
        while len(self._pending) > self._max_pending:
            oldest = next(iter(self._pending.values()))
            why = f"more than {self._max_pending} requests waiting: the oldest fails safe"
            overflow.append(self._fail_safe(oldest, why))
        return request, overflow

    # ---- 2. apply -------------------------------------------------------------------------
    def apply(self, verdict: OperatorVerdict) -> Resolution | Awaiting | Refused:
        """One operator's answer; the first verdict that resolves a request wins."""
        rid, who = verdict.request_id, verdict.operator
        request = self._pending.get(rid)
        if request is None:
            how = self._resolved.get(rid)
            why = (
                f"expected a pending request, got {rid}: already {how}"
                if how is not None
                else f"expected a pending request, got unknown {rid}"
            )
            return Refused(rid, who, why)
        now = self._clock.wall()
        if now >= request.deadline:
            late = now - request.deadline
            why = f"expected an answer before the deadline, {rid} is {late:.1f} s past it"
            return Refused(rid, who, why, request)
        if not verdict.confirm:
            return self._close(request, DeskOutcome.REJECTED, (who,), verdict.reason)
        if not request.two_person:
            return self._close(request, DeskOutcome.CONFIRMED, (who,), verdict.reason)
        if who in request.confirmations:
            why = f"expected a second, different operator (four eyes), got {who} again"
            return Refused(rid, who, why, request)
        if not request.confirmations:
            waiting = request.model_copy(update={"confirmations": (who,)})
            self._pending[rid] = waiting
            self.version += 1
            return Awaiting(waiting, who)
        operators = (*request.confirmations, who)
        return self._close(request, DeskOutcome.CONFIRMED, operators, verdict.reason)

    # ---- 3. expire ------------------------------------------------------------------------
    def expire(self, now: float | None = None) -> list[Resolution]:
        """Fail safe on every request whose deadline is at or before ``now`` (default: the
        clock's wall time)."""
        at = self._clock.wall() if now is None else now
        due = [r for r in self._pending.values() if r.deadline <= at]
        why = f"no operator answered within {self._deadline_s:g} s"
        return [self._fail_safe(r, why) for r in due]

    def close(self, why: str) -> list[Resolution]:
        """Fail safe on every request still waiting (the run stops)."""
        return [self._fail_safe(r, why) for r in list(self._pending.values())]

    # ---- internals ------------------------------------------------------------------------
    def _fail_safe(self, request: PendingRequest, why: str) -> Resolution:
        return self._close(request, DeskOutcome.EXPIRED, (), why)

    def _executed(self, request: PendingRequest, outcome: DeskOutcome) -> str | None:
        if outcome is DeskOutcome.CONFIRMED:
            return request.decision.action
        action = self._actions.get(request.decision.action)
        return action.restricted_alternative if action is not None else None

    def _close(
        self,
        request: PendingRequest,
        outcome: DeskOutcome,
        operators: tuple[str, ...],
        reason: str,
    ) -> Resolution:
        del self._pending[request.id]
        done = Resolution(
            request=request,
            outcome=outcome,
            executed=self._executed(request, outcome),
            operators=operators,
            reason=reason,
            at=self._clock.wall(),
        )
        self._resolved[request.id] = done.how()
        while len(self._resolved) > RESOLVED_KEPT:
            self._resolved.popitem(last=False)
        self.version += 1
        return done
