"""The decision gate's pure core: the only component that may trigger an action.

The :class:`Gate` is fed, in any interleaving, GOP verdicts (:meth:`Gate.on_gop`), the
verifier's evidence (:meth:`Gate.on_evidence`), the degradation state
(:meth:`Gate.on_state`) and ingest's camera tamper alarms (:meth:`Gate.on_tamper`). It reads
no clock but the injected one (only to stamp decisions), and does no I/O: every call returns
the decisions it made, and the process shell fires the sinks and forwards them to the archive.

How a request becomes a decision:

1. A trigger rule (:mod:`kontur.gate.rules`) fires an :class:`ActionRequest` from the evidence.
   Rules need each camera's frame size: call :meth:`Gate.set_frame_size` (from the stream
   header or the first ``FrameReady``) before feeding evidence, or configure the camera's
   ``profile``; otherwise :class:`FrameSizeUnknownError` is raised.
2. A non-critical action is decided at once by ``non_critical`` (default: allowed unless the
   system is SAFE); it does not wait for GOP verdicts.
3. A critical action whose GOPs all have verdicts is decided at once by ``requirement``
   (default :data:`~kontur.gate.policy.DEFAULT_CRITICAL`). Otherwise it is *held*; each verdict
   that arrives is attached, and the request is decided when the last one arrives. A held
   request is judged on the worst system state seen between its trigger and its decision.
   The state a request on camera C is judged on is C's *effective* state: the more severe of
   the site's state and C's own (ADR 0040), so a covered camera holds back automatic actions
   on itself only, and a site-wide trigger on every camera.
4. :meth:`Gate.flush` (shutdown) decides every held request; GOPs whose verdict never
   arrived count as PENDING, which needs an operator. When more than ``max_pending`` requests
   are held, the oldest is decided the same way.
5. Every critical action is also judged by :class:`~kontur.gate.policy.CameraNotTampered`
   (ADR 0030), whatever ``requirement`` says: a tamper or low-quality event open on the
   camera, or one that touched the request's frames, makes it OPERATOR (DENY with
   ``tamper.on_critical: deny``). Its reasons are added only when it refuses. Ingest sends a
   GOP's verdict to the gate only after its monitor could have confirmed an event on the
   GOP's frames, so a request is never decided before the alarm that concerns it.
6. The outcome becomes what is executed: ALLOW → the action; RESTRICT → the action's
   ``restricted_alternative`` (no alternative: OPERATOR instead); OPERATOR →
   :data:`OPERATOR_QUEUE`; DENY → nothing.

Memory is bounded: at most ``max_gops_per_camera`` verdicts are kept per camera (oldest
dropped; held requests keep their own copies), findings live only in open dwell windows, at
most ``max_pending`` requests are held, and at most :data:`MAX_TAMPER_SPANS` ended tamper
events are kept per camera.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass

from kontur.clock import Clock
from kontur.config import ActionConfig, CameraConfig, Config
from kontur.gate.errors import (
    EvidenceMismatchError,
    FrameSizeUnknownError,
    UnknownActionError,
    UnknownCameraError,
)
from kontur.gate.policy import (
    DEFAULT_CRITICAL,
    DEFAULT_NON_CRITICAL,
    CameraNotTampered,
    Check,
    Requirement,
    most_restrictive,
)
from kontur.gate.request import ActionRequest, SystemState, SystemStatus, TamperSpan
from kontur.gate.rules import DwellRule, rules_from_config
from kontur.wire import Decision, Evidence, GopClosed, Outcome, StateChanged
from kontur.wire.messages import TamperAlarm
from kontur.wire.verdict import GopVerdict, Verdict, most_severe

__all__ = [
    "DEFAULT_MAX_GOPS",
    "DEFAULT_MAX_PENDING",
    "INITIAL_STATUS",
    "MAX_TAMPER_SPANS",
    "OPERATOR_QUEUE",
    "Gate",
]

_log = logging.getLogger(__name__)

#: What ``Decision.executed`` names when a person must confirm the action.
OPERATOR_QUEUE = "operator-queue"
#: Verdicts kept per camera.
DEFAULT_MAX_GOPS = 1000
#: Requests held for verdicts, over all cameras.
DEFAULT_MAX_PENDING = 1024
#: Ended tamper events kept per camera (a held request is judged against those it overlaps).
MAX_TAMPER_SPANS = 256
#: The state a gate starts in until the supervisor reports one.
INITIAL_STATUS = SystemStatus(SystemState.NORMAL, "initial state")


@dataclass
class _Held:
    request: ActionRequest
    verdicts: dict[int, GopVerdict]
    status: SystemStatus


def _worse(a: GopVerdict | None, b: GopVerdict) -> GopVerdict:
    """Of two verdicts for one GOP keep the more severe: trust is never upgraded."""
    if a is None:
        return b
    return a if most_severe([a.verdict, b.verdict]) is a.verdict else b


def _parse_state(msg: StateChanged) -> SystemStatus:
    trigger = msg.trigger if msg.camera_id is None else f"{msg.trigger} on camera {msg.camera_id}"
    try:
        return SystemStatus(SystemState(msg.to_state.upper()), trigger)
    except ValueError:
        _log.warning("gate: unknown system state %r, treated as SAFE", msg.to_state)
        return SystemStatus(SystemState.SAFE, f"unknown state {msg.to_state!r}, {trigger}")


class Gate:
    """The decision gate. See the module docstring for the order of its steps."""

    def __init__(
        self,
        config: Config,
        clock: Clock,
        requirement: Requirement = DEFAULT_CRITICAL,
        *,
        non_critical: Requirement = DEFAULT_NON_CRITICAL,
        rules: Sequence[DwellRule] | None = None,
        max_gops_per_camera: int = DEFAULT_MAX_GOPS,
        max_pending: int = DEFAULT_MAX_PENDING,
        status: SystemStatus = INITIAL_STATUS,
    ) -> None:
        """Build the gate; ``rules`` default to :func:`~kontur.gate.rules.rules_from_config`."""
        if max_gops_per_camera < 1 or max_pending < 1:
            raise ValueError(
                f"expected positive bounds, got max_gops_per_camera={max_gops_per_camera}, "
                f"max_pending={max_pending}"
            )
        self._clock = clock
        self._requirement = requirement
        self._non_critical = non_critical
        self._cameras: dict[str, CameraConfig] = {c.id: c for c in config.cameras}
        self._actions: dict[str, ActionConfig] = dict(config.actions)
        self._rules = tuple(rules) if rules is not None else rules_from_config(config)
        for r in self._rules:
            if r.action not in self._actions:
                raise UnknownActionError(
                    f"rule {r.rule!r}: expected an action among {sorted(self._actions)}, "
                    f"got {r.action!r}"
                )
        self._sizes: dict[str, tuple[int, int]] = {
            c.id: (c.profile.width, c.profile.height) for c in config.cameras if c.profile
        }
        self._verdicts: dict[str, OrderedDict[int, GopVerdict]] = {}
        self._forgotten_below: dict[str, int] = {}
        """Per camera: verdicts of GOPs below this index were dropped (memory bound); one of
        them arriving again must not be taken as the GOP's only verdict (trust never goes up)."""
        self._held: list[_Held] = []
        self._max_gops = max_gops_per_camera
        self._max_pending = max_pending
        self._status = status
        self._camera_status: dict[str, SystemStatus] = {}
        """Per camera: its own state, when the supervisor reported one (ADR 0040)."""
        deny = config.tamper.on_critical == "deny"
        self._tamper_check = CameraNotTampered(Outcome.DENY if deny else Outcome.OPERATOR)
        self._tamper_open: dict[str, dict[str, TamperSpan]] = {}
        self._tamper_ended: dict[str, deque[TamperSpan]] = {}
        self._quality: dict[str, TamperAlarm] = {}
        """Per camera: the last alarm, whose ``quality_ok`` is the camera's quality now."""

    # --- state --------------------------------------------------------------------------------

    @property
    def status(self) -> SystemStatus:
        """The site's state (what every camera shares)."""
        return self._status

    def status_of(self, camera_id: str) -> SystemStatus:
        """The state a request on ``camera_id`` is decided under: the more severe of the
        site's and the camera's own (the site's on a tie)."""
        own = self._camera_status.get(camera_id)
        return self._status if own is None else self._status.worse(own)

    @property
    def pending(self) -> int:
        """How many requests are held for GOP verdicts."""
        return len(self._held)

    def known_gops(self, camera_id: str) -> int:
        """How many verdicts the gate keeps for ``camera_id`` (at most ``max_gops_per_camera``)."""
        return len(self._verdicts.get(camera_id, ()))

    def _camera(self, camera_id: str) -> CameraConfig:
        cam = self._cameras.get(camera_id)
        if cam is None:
            raise UnknownCameraError(
                f"expected a camera among {sorted(self._cameras)}, got {camera_id!r}"
            )
        return cam

    # --- inputs -------------------------------------------------------------------------------

    def set_frame_size(self, camera_id: str, width: int, height: int) -> None:
        """Tell the gate ``camera_id``'s frame size in pixels (TrackFrame does not carry it)."""
        self._camera(camera_id)
        if width <= 0 or height <= 0:
            raise ValueError(
                f"camera {camera_id}: expected a positive frame size, got {width}x{height}"
            )
        self._sizes[camera_id] = (int(width), int(height))

    def on_state(self, msg: StateChanged) -> list[Decision]:
        """The site's or one camera's state moved; held requests remember the worst
        effective state of their camera they saw. An unknown camera raises
        :class:`UnknownCameraError` (refused, the states stay as they were)."""
        status = _parse_state(msg)
        if msg.camera_id is None:
            self._status = status
        else:
            self._camera(msg.camera_id)
            self._camera_status[msg.camera_id] = status
        for h in self._held:
            if msg.camera_id in (None, h.request.camera_id):
                h.status = h.status.worse(self.status_of(h.request.camera_id))
        return []

    def on_tamper(self, msg: TamperAlarm) -> list[Decision]:
        """A camera tamper or low-quality event started or ended (ingest, ADR 0030)."""
        self._camera(msg.camera_id)
        opened = self._tamper_open.setdefault(msg.camera_id, {})
        span = TamperSpan(msg.kind, msg.start_s, msg.end_s, msg.score, msg.reason,
                          msg.first_frame, msg.last_frame)  # fmt: skip
        if msg.transition == "start":
            opened[msg.kind] = span
        else:
            opened.pop(msg.kind, None)
            ended = self._tamper_ended.setdefault(msg.camera_id, deque(maxlen=MAX_TAMPER_SPANS))
            ended.append(span)
        self._quality[msg.camera_id] = msg
        return []

    def _tamper_spans(self, camera_id: str) -> tuple[TamperSpan, ...]:
        """The camera's open and ended tamper events; a quality ingest last reported as not
        ok counts as an open ``low_quality`` event even without its own start."""
        opened = dict(self._tamper_open.get(camera_id, {}))
        last = self._quality.get(camera_id)
        if last is not None and not last.quality_ok and "low_quality" not in opened:
            why = f"ingest reported the picture below its quality floor ({last.reason})"
            opened["low_quality"] = TamperSpan("low_quality", last.at_s, None, 1.0, why,
                                               last.first_frame)  # fmt: skip
        return (*opened.values(), *self._tamper_ended.get(camera_id, ()))

    def on_gop(self, msg: GopClosed) -> list[Decision]:
        """A GOP's verdict arrived; returns the held requests it completes, decided."""
        v = msg.verdict
        self._camera(v.camera_id)
        known = self._verdicts.setdefault(v.camera_id, OrderedDict())
        if v.gop_index >= self._forgotten_below.get(v.camera_id, 0):
            v = _worse(known.get(v.gop_index), v)
            known[v.gop_index] = v
            known.move_to_end(v.gop_index)
        while len(known) > self._max_gops:
            dropped, _ = known.popitem(last=False)
            below = max(self._forgotten_below.get(v.camera_id, 0), dropped + 1)
            self._forgotten_below[v.camera_id] = below
        decided: list[Decision] = []
        still: list[_Held] = []
        for h in self._held:
            r = h.request
            if r.camera_id != v.camera_id or v.gop_index not in r.gops:
                still.append(h)
                continue
            h.verdicts[v.gop_index] = _worse(h.verdicts.get(v.gop_index), v)
            if all(g in h.verdicts for g in r.gops):
                decided.append(self._decide(h))
            else:
                still.append(h)
        self._held = still
        return decided

    def on_evidence(self, msg: Evidence) -> list[Decision]:
        """One frame's tracks and finding; returns the decisions on the requests it fired."""
        t = msg.frame
        about = {(x.camera_id, x.frame_index) for x in (msg.frame, msg.tracks, msg.finding)}
        if len(about) != 1:
            raise EvidenceMismatchError(
                f"expected ingest's stamp, the tracks and the finding about one frame "
                f"({t.camera_id} frame {t.frame_index}), got {sorted(about)}"
            )
        self._camera(t.camera_id)
        size = self._sizes.get(t.camera_id)
        if size is None:
            raise FrameSizeUnknownError(
                f"camera {t.camera_id}: expected a frame size (set_frame_size or profile), "
                "found none"
            )
        decided: list[Decision] = []
        for rule in self._rules:
            for req in rule.observe(msg, size):
                decided.extend(self._submit(req))
        return decided

    def flush(self) -> list[Decision]:
        """Decide every held request now; GOPs without a verdict count as PENDING."""
        held, self._held = self._held, []
        return [self._decide(h) for h in held]

    # --- deciding -----------------------------------------------------------------------------

    def _submit(self, req: ActionRequest) -> list[Decision]:
        known = self._verdicts.get(req.camera_id, OrderedDict())
        verdicts = {g: known[g] for g in req.gops if g in known}
        h = _Held(req, verdicts, self.status_of(req.camera_id))
        below = self._forgotten_below.get(req.camera_id, 0)
        for g in req.gops:
            if g < below and g not in h.verdicts:
                why = f"verdict of GOP {g} no longer held (only the last {self._max_gops} are)"
                h.verdicts[g] = GopVerdict(
                    camera_id=req.camera_id, gop_index=g, verdict=Verdict.PENDING, reasons=(why,)
                )
        if not self._actions[req.action].critical or all(g in h.verdicts for g in req.gops):
            return [self._decide(h)]
        self._held.append(h)
        if len(self._held) <= self._max_pending:
            return []
        oldest = self._held.pop(0)
        _log.warning("gate: more than %d requests held, deciding the oldest now", self._max_pending)
        return [self._decide(oldest)]

    def _decide(self, h: _Held) -> Decision:
        cam = self._camera(h.request.camera_id)
        req = h.request.with_context(
            verdicts=h.verdicts,
            status=h.status,
            signing_required=cam.signing_required,
            tamper=self._tamper_spans(cam.id),
        )
        action = self._actions[req.action]
        judge = self._requirement if action.critical else self._non_critical
        check = judge.evaluate(req)
        if action.critical:
            check = _and_not_tampered(check, self._tamper_check.evaluate(req))
        outcome, executed, extra = _execute(check.outcome, req.action, action)
        return Decision(
            camera_id=req.camera_id,
            rule=req.rule,
            action=req.action,
            critical=action.critical,
            track_id=req.track_id,
            frame_index=req.frame_index,
            box=req.box,
            outcome=outcome,
            reasons=check.reasons + extra,
            gops=req.gops,
            executed=executed,
            at=self._clock.wall(),
        )


def _and_not_tampered(check: Check, tamper: Check) -> Check:
    """``check`` and the tamper requirement (ADR 0030); its reasons only when it refuses."""
    if tamper.outcome is Outcome.ALLOW:
        return check
    return Check(most_restrictive((check.outcome, tamper.outcome)), check.reasons + tamper.reasons)


def _execute(
    outcome: Outcome, name: str, action: ActionConfig
) -> tuple[Outcome, str | None, tuple[str, ...]]:
    """What an outcome executes: (final outcome, executed, reasons added)."""
    if outcome is Outcome.ALLOW:
        return outcome, name, ()
    if outcome is Outcome.RESTRICT:
        alt = action.restricted_alternative
        if alt is not None:
            return outcome, alt, (f"restricted: executed {alt!r} instead of {name!r}",)
        why = f"action {name!r} has no restricted_alternative: sent to the operator queue"
        return Outcome.OPERATOR, OPERATOR_QUEUE, (why,)
    if outcome is Outcome.OPERATOR:
        return outcome, OPERATOR_QUEUE, ()
    return Outcome.DENY, None, ()
