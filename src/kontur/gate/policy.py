"""Requirement policies: small objects that judge one :class:`ActionRequest` each.

Every requirement answers with a :class:`Check`: an :class:`~kontur.wire.Outcome` and the reasons
behind it. ``ALLOW`` means "this requirement is satisfied". Requirements combine with
:class:`AllOf` (the most restrictive answer wins) and :class:`AnyOf` (the least restrictive
wins); severity is ``ALLOW < RESTRICT < OPERATOR < DENY``. Neither accepts an empty member list:
an empty list must never mean "allowed" (STYLE.md, "Policies that cannot be empty").

The default for critical actions is :data:`DEFAULT_CRITICAL`:
``AllOf(AllGopsAuthentic(), VerifierAgrees(), SystemNotDegraded())``. Non-critical actions are
judged by :data:`DEFAULT_NON_CRITICAL` (:class:`SystemNotSafe`). ADR 0007 has the full table.

Whatever requirement a gate is given, it also judges every critical action by
:class:`CameraNotTampered` (ADR 0030): a camera tamper or low-quality event open on the
camera, or one that touched the request's frames, refuses the action (OPERATOR, or DENY with
``tamper.on_critical: deny``).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from kontur.gate.errors import EmptyPolicyError
from kontur.gate.request import ActionRequest, SystemState, TamperSpan
from kontur.wire import Finding, Outcome
from kontur.wire.verdict import GopVerdict, Verdict

__all__ = [
    "DEFAULT_CRITICAL",
    "DEFAULT_NON_CRITICAL",
    "OUTCOME_SEVERITY",
    "AllGopsAuthentic",
    "AllOf",
    "AnyOf",
    "CameraNotTampered",
    "Check",
    "Requirement",
    "SystemNotDegraded",
    "SystemNotSafe",
    "UnsafeAllowAll",
    "VerifierAgrees",
    "least_restrictive",
    "most_restrictive",
]

_log = logging.getLogger(__name__)

#: Least restrictive first.
OUTCOME_SEVERITY: tuple[Outcome, ...] = (
    Outcome.ALLOW,
    Outcome.RESTRICT,
    Outcome.OPERATOR,
    Outcome.DENY,
)


def most_restrictive(outcomes: Iterable[Outcome]) -> Outcome:
    """The most restrictive of ``outcomes``; refuses an empty iterable."""
    found = list(outcomes)
    if not found:
        raise ValueError("expected at least one outcome, got none")
    return max(found, key=OUTCOME_SEVERITY.index)


def least_restrictive(outcomes: Iterable[Outcome]) -> Outcome:
    """The least restrictive of ``outcomes``; refuses an empty iterable."""
    found = list(outcomes)
    if not found:
        raise ValueError("expected at least one outcome, got none")
    return min(found, key=OUTCOME_SEVERITY.index)


@dataclass(frozen=True)
class Check:
    """One requirement's answer: the outcome and at least one reason an operator can read."""

    outcome: Outcome
    reasons: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.reasons:
            raise ValueError(f"expected at least one reason for {self.outcome.value}, got none")


@runtime_checkable
class Requirement(Protocol):
    """A policy that judges one request. ALLOW means the requirement is satisfied."""

    def evaluate(self, request: ActionRequest) -> Check:
        """Judge ``request`` and say why."""
        ...


# --- GOP authenticity -------------------------------------------------------------------------

_DENY_VERDICTS: Final = {
    Verdict.NOT_AUTHENTIC: "content fails verification",
    Verdict.REPLAYED: "replayed (seen before)",
    Verdict.DOWNGRADE: "unsigned after signed data (downgrade)",
    Verdict.KEY_CHANGED: "signing key differs from the enrolled one",
    Verdict.REVOKED: "camera certificate revoked",
}
_OPERATOR_VERDICTS: Final = {
    Verdict.UNSIGNED: "untrusted source (no signature)",
    Verdict.MISSING: "frames were lost",
    Verdict.STALE: "capture time outside the freshness window",
    Verdict.PROFILE_CHANGED: "stream profile differs from the enrolled one",
    Verdict.RETIMED: "container times disagree with the signed capture times",
    Verdict.PENDING: "GOP not closed, signature not verified",
}


def _judge_gop(request: ActionRequest, gop: int, v: GopVerdict | None) -> Check | None:
    """The check one GOP contributes, or None when it is AUTHENTIC."""
    cam = request.camera_id
    if v is None:
        return Check(
            Outcome.OPERATOR, (f"gop {gop} verdict never arrived ({cam}): treated as PENDING",)
        )
    if v.camera_id != cam:
        return Check(Outcome.DENY, (f"gop {gop} verdict is for camera {v.camera_id}, not {cam}",))
    if v.verdict is Verdict.AUTHENTIC:
        return None
    said = "; ".join(v.reasons)
    if v.verdict is Verdict.UNSIGNED and request.signing_required:
        why = f"{_OPERATOR_VERDICTS[Verdict.UNSIGNED]} and the camera requires signing"
        return Check(Outcome.DENY, (f"gop {gop} of {cam} is UNSIGNED: {why} [ingest: {said}]",))
    if v.verdict in _OPERATOR_VERDICTS:
        why = _OPERATOR_VERDICTS[v.verdict]
        return Check(
            Outcome.OPERATOR, (f"gop {gop} of {cam} is {v.verdict.value}: {why} [ingest: {said}]",)
        )
    # Every other verdict, including one added to the enum later, refuses the action.
    why = _DENY_VERDICTS.get(v.verdict, "not a verdict the gate trusts")
    return Check(
        Outcome.DENY, (f"gop {gop} of {cam} is {v.verdict.value}: {why} [ingest: {said}]",)
    )


@dataclass(frozen=True)
class AllGopsAuthentic:
    """Every GOP of the request has a verdict, and every verdict is AUTHENTIC.

    NOT_AUTHENTIC, REPLAYED, DOWNGRADE, KEY_CHANGED and REVOKED deny; UNSIGNED, MISSING, STALE,
    PROFILE_CHANGED, RETIMED and PENDING need an operator, except UNSIGNED on a camera with
    ``signing_required``, which denies. A GOP with no verdict counts as PENDING (the gate never
    asks before the verdicts are in, except at :meth:`~kontur.gate.Gate.flush`). A request that
    names no GOP at all needs an operator: nothing checked is not a pass.
    """

    def evaluate(self, request: ActionRequest) -> Check:
        """Judge the verdicts of ``request.gops``."""
        if not request.gops:
            return Check(
                Outcome.OPERATOR, (f"request on {request.camera_id} names no GOP to authenticate",)
            )
        checks = [
            c
            for g in request.gops
            if (c := _judge_gop(request, g, request.verdicts.get(g))) is not None
        ]
        if not checks:
            shown = ", ".join(str(g) for g in request.gops)
            return Check(Outcome.ALLOW, (f"gops {shown} of {request.camera_id} AUTHENTIC",))
        return Check(
            most_restrictive(c.outcome for c in checks),
            tuple(r for c in checks for r in c.reasons),
        )


# --- Verifier agreement -----------------------------------------------------------------------

#: The verifier also sums up its per-track reasons in ``reasons``, as one line
#: (:meth:`kontur.verifier.Verifier.check`): "2 of 3 tracked object(s) disagree: track 5
#: (speed); track 9 (class, size)". That line repeats ``track_reasons``; it says nothing about
#: the scene. Only a line of exactly this form, naming exactly the tracks that have reasons,
#: is read as that summary; anything else in ``reasons`` is a scene reason (fail closed).
_SUMMARY: Final = re.compile(r"(\d+) of (\d+) tracked object\(s\) disagree: (.+)")
_SUMMARY_ITEM: Final = re.compile(r"track (-?\d+) \([^();]*\)")


def _is_track_summary(reason: str, named: Mapping[int, tuple[str, ...]]) -> bool:
    """True when ``reason`` is the verifier's summary line of exactly the tracks in ``named``."""
    m = _SUMMARY.fullmatch(reason)
    if m is None:
        return False
    items = [_SUMMARY_ITEM.fullmatch(i) for i in m.group(3).split("; ")]
    ids = [int(i.group(1)) for i in items if i is not None]
    if len(ids) != len(items) or len(set(ids)) != len(ids):
        return False
    return set(ids) == set(named) and int(m.group(1)) == len(ids) <= int(m.group(2))


def _against(f: Finding, track: int | None, earlier: frozenset[int] = frozenset()) -> list[str]:
    """What finding ``f`` holds against a request on ``track`` (None: on no single track),
    whose object the worker called ``earlier`` before.

    Scene reasons count whatever ``agree`` says; reasons of another track do not count,
    except for a request on no single track; a disagreement that names no reason counts.
    """
    named = {t: rs for t, rs in f.track_reasons.items() if rs}
    scene = [r for r in f.reasons if not _is_track_summary(r, named)]
    against = [f"verifier disagreed on the scene: {r}" for r in scene]
    for t, rs in sorted(f.track_reasons.items()):
        if track is None or t == track or t in earlier:
            said = rs or ("named the track without a reason",)
            against += [f"verifier disagreed on track {t}: {r}" for r in said]
    if not f.agree and not scene and not named:
        against.append("verifier disagreed on the scene: disagreed without a reason")
    return against


def _renamed(request: ActionRequest) -> str | None:
    """Why a dwell that spanned several of the worker's ids is not ALLOWed, or None."""
    ids = request.earlier_track_ids
    if not ids:
        return None
    n = len(ids)
    return (
        f"the dwell followed the object across {n} earlier track id{'s' * (n != 1)} "
        f"({_ids(ids)}): expected one id for the whole dwell, since the verifier's track checks "
        "judge each id on its own history (ADR 0042; the current id's own dwell can still be "
        "allowed)"
    )


def _jumped(request: ActionRequest, track: int | None) -> str | None:
    """Why a dwell whose track's box jumped within its window (``Finding.jumped``, after the
    window's first frame) is not ALLOWed, or None."""
    if track is None:
        return None
    frames = [f.frame_index for f in _mine(request)[1:] if track in f.jumped]
    if not frames:
        return None
    return (
        f"the verifier saw track {track}'s box jump ({_span(frames)}): it landed off where its "
        "own motion was taking it, or went back against it, beyond what a person's "
        "acceleration allows, or came back off its path after a gap in the reports; expected "
        "one object for the whole dwell, and a box handed to another object makes one dwell "
        "of two (ADR 0053)"
    )


_UNCARRIED = (
    "the verifier's pixels did not carry track {track} on frame {frame}, when the dwell fired: "
    "it never saw the box move, alone, with foreground of its own (its background model was "
    "still learning, the camera moved, the box stood still or overlapped another), or the box "
    "has lost that foreground since, under it or at its feet; expected the verifier to have "
    "looked, since an agreement where no check could look is the detector's word alone "
    "(ADR 0043)"
)


def _mine(request: ActionRequest) -> list[Finding]:
    """The window's findings for the request's own camera, in frame order."""
    return sorted(
        (f for f in request.findings if f.camera_id == request.camera_id),
        key=lambda f: f.frame_index,
    )


def _uncarried(request: ActionRequest, track: int) -> str | None:
    """Why the verifier's pixels did not carry ``track`` on the window's last frame, when the
    dwell fired, or None."""
    mine = _mine(request)
    if not mine:
        return None  # no finding at all: said already
    last = mine[-1]
    if track in last.vouched:
        return None
    return _UNCARRIED.format(track=track, frame=last.frame_index)


#: A dwell whose track the verifier measured (``Finding.measured``) but did not carry
#: (``Finding.vouched``) for more than this share of the time it measured it goes to an
#: operator (ADR 0044): what stood there most of the time was not seen to be an object of its
#: own, whatever carried the box at the end. The largest share of an honest dwell the gate
#: ALLOWed in the bench was 0.24 (a walker not yet vouched for over its first 0.5 s in the
#: zone); a third leaves a margin over that, and makes a phantom ride real foreground it hides
#: for two thirds of its dwell.
UNCARRIED_SHARE = 1 / 3


#: ...and one it measured for less than this share of its window, too: the verifier was
#: learning its background (the first ~2 s of a stream, or after a global change), the camera
#: moved, or the box was covered, so what the detector said for most of the dwell is its word
#: alone; a phantom that appears while the model learns would otherwise be judged on the end
#: of its dwell only.
MEASURED_SHARE = 0.5


def _carried_share(request: ActionRequest, track: int) -> str | None:
    """Why the verifier measured ``track`` for too little of the window, or did not carry it
    for too much of what it measured; or None. Each finding stands for the frames up to the
    window's next (a worker that reports a track on one frame in eight does not shrink what
    was seen on the other seven)."""
    mine = _mine(request)
    spans = [b.frame_index - a.frame_index for a, b in itertools.pairwise(mine)]
    looked = uncarried = total = 0
    for f, span in zip(mine, [*spans, 1], strict=True):
        total += span
        if track in f.measured:
            looked += span
            uncarried += span if track not in f.vouched else 0
    if looked < MEASURED_SHARE * total:
        return (
            f"the verifier measured track {track} over only {looked} of the window's {total} "
            f"frames: expected it to have looked for at least {MEASURED_SHARE:.0%} of the "
            "dwell (its background model was learning, the camera moved, or another box "
            "covered this one) (ADR 0044)"
        )
    if uncarried <= UNCARRIED_SHARE * looked:
        return None
    return (
        f"the verifier measured track {track} over {looked} frames of the window and its "
        f"pixels did not carry it over {uncarried} of them: expected them to carry it for at "
        f"least {1 - UNCARRIED_SHARE:.0%} of the time they looked, since what stood there the "
        "rest of the time was bare ground or foreground it never saw move as its own (ADR 0044)"
    )


def _ids(ids: tuple[int, ...]) -> str:
    return ", ".join(map(str, ids[:8])) + (f", … ({len(ids)} in all)" if len(ids) > 8 else "")


def _where(frames: list[int]) -> str:
    first, last = min(frames), max(frames)
    return f"frame {first}" if first == last else f"frames {first}-{last}"


def _span(frames: list[int]) -> str:
    return f"{_where(frames)}, {len(frames)} finding{'s' if len(frames) != 1 else ''}"


@dataclass(frozen=True)
class VerifierAgrees:
    """Every verifier finding of the window agreed on the request's track and on the scene.

    A request on one track also needs the verifier to have *looked*: its own pixels must
    carry the track (``Finding.vouched``) on the frame the dwell fired on, and for all but
    :data:`UNCARRIED_SHARE` of the time it measured it (``Finding.measured``, ADR 0044),
    which must be at least :data:`MEASURED_SHARE` of the window.
    Findings that agree only because every pixel check abstained (the background still being
    learnt, a moving camera, a box that never moved), or a box that has lost the foreground
    it was seen to move with, leave the request to an operator (ADR 0043); that reason is
    given only when nothing else holds the request back.

    A finding counts against the request when it gives reasons for the request's track (in
    ``track_reasons``, or for an id the worker gave the same object earlier in the window:
    ``earlier_track_ids``; such a request, whose dwell spanned several ids, is never ALLOWed:
    ADR 0042; nor is one whose track's box jumped after the window's first frame,
    ``Finding.jumped``, ADR 0053), when it gives a scene reason (a frozen or looped
    picture, a frame the verifier never observed: any reason in ``reasons`` that is not its
    summary of ``track_reasons``), whatever its ``agree`` says, or when it disagrees naming
    no reason at all. Reasons that concern only *other* tracks do not count: one track's
    disagreement never blocks the requests of another. A request on no single track
    (``track_id`` None) counts every track's reasons. A finding for another camera, a frame
    of the window with no finding, or a window with no findings, needs an operator.
    Identical reasons over many frames are reported once, with the frames they span.
    """

    def evaluate(self, request: ActionRequest) -> Check:
        """Judge ``request.findings`` for ``request.track_id``."""
        if not request.findings:
            return Check(Outcome.OPERATOR, ("no verifier finding for the dwell window",))
        against: dict[str, list[int]] = {}
        cam, track = request.camera_id, request.track_id
        earlier = frozenset(request.earlier_track_ids)
        for f in request.findings:
            if f.camera_id != cam:
                what = [f"verifier finding is for camera {f.camera_id}, not {cam}"]
            else:
                what = _against(f, track, earlier)
            for w in what:
                against.setdefault(w, []).append(f.frame_index)
        seen = {f.frame_index for f in request.findings if f.camera_id == cam}
        unseen = [i for i in request.frames if i not in seen]
        reasons = [f"{what} ({_span(fr)})" for what, fr in against.items()]
        for held_back in (_renamed(request), _jumped(request, track)):
            if held_back is not None:
                reasons.append(held_back)
        if unseen:
            n = len(unseen)
            reasons.append(f"no verifier finding for {_where(unseen)} ({n} frame{'s' * (n != 1)})")
        if not reasons and track is not None:  # the one reason left, if any: say it
            unseen_by_it = _uncarried(request, track) or _carried_share(request, track)
            if unseen_by_it is not None:
                reasons.append(unseen_by_it)
        if reasons:
            return Check(Outcome.OPERATOR, tuple(reasons))
        on = f"track {track} and the scene" if track is not None else "the scene"
        return Check(Outcome.ALLOW, (f"verifier agreed on {on} in {len(seen)} frames",))


# --- System state -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemNotDegraded:
    """NORMAL allows; DEGRADED restricts; SAFE denies."""

    def evaluate(self, request: ActionRequest) -> Check:
        """Judge ``request.status``."""
        st = request.status
        if st.state is SystemState.NORMAL:
            return Check(Outcome.ALLOW, ("system NORMAL",))
        if st.state is SystemState.DEGRADED:
            return Check(Outcome.RESTRICT, (f"system DEGRADED (trigger {st.trigger})",))
        return Check(Outcome.DENY, (f"system {st.state.value} (trigger {st.trigger})",))


@dataclass(frozen=True)
class SystemNotSafe:
    """The rule for non-critical actions: allowed unless the system is SAFE."""

    def evaluate(self, request: ActionRequest) -> Check:
        """Judge ``request.status``."""
        st = request.status
        if st.state is SystemState.SAFE:
            return Check(Outcome.DENY, (f"system SAFE (trigger {st.trigger})",))
        return Check(Outcome.ALLOW, (f"system {st.state.value}: non-critical action allowed",))


# --- Camera tamper (ADR 0030) ---------------------------------------------------------------


def _tamper_line(span: TamperSpan) -> str:
    said = f" [ingest: {span.reason}]"
    if span.kind == "low_quality":
        if span.open:
            return f"low image quality since {span.start_s:.1f} s: refuse to decide{said}"
        return (
            f"low image quality from {span.start_s:.1f} s to {span.end_s:.1f} s on the "
            f"request's frames: refuse to decide{said}"
        )
    if span.open:
        since = f"since {span.start_s:.1f} s (score {span.score:.2f})"
        return f"camera tamper: {span.kind} {since}{said}"
    return (
        f"camera tamper: {span.kind} from {span.start_s:.1f} s to {span.end_s:.1f} s on the "
        f"request's frames (score {span.score:.2f}){said}"
    )


@dataclass(frozen=True)
class CameraNotTampered:
    """No tamper or low-quality event is open on the camera, and none touched its frames.

    An open event refuses whatever frames the request rests on (the picture cannot be
    trusted until it clears, with the monitor's hysteresis); an ended one refuses only the
    requests whose window (``frames``, else ``frame_index``) it overlaps. ``outcome`` is what
    a refusal answers: OPERATOR (default) or DENY. A request with no tamper state attached
    is refused too.
    """

    outcome: Outcome = Outcome.OPERATOR

    def __post_init__(self) -> None:
        if self.outcome not in (Outcome.OPERATOR, Outcome.DENY):
            raise ValueError(f"expected OPERATOR or DENY, got {self.outcome.value}")

    def evaluate(self, request: ActionRequest) -> Check:
        """Judge ``request.tamper`` against ``request.frames``."""
        cam = request.camera_id
        if request.tamper is None:
            return Check(self.outcome, (f"no camera tamper state attached for {cam}",))
        frames = request.frames or (request.frame_index,)
        first, last = min(frames), max(frames)
        hits = [s for s in request.tamper if s.open or s.touches(first, last)]
        if not hits:
            return Check(Outcome.ALLOW, (f"camera {cam}: no tamper alarm",))
        return Check(self.outcome, tuple(_tamper_line(s) for s in hits))


# --- Combinators ------------------------------------------------------------------------------


def _members(kind: str, reqs: tuple[Requirement, ...]) -> tuple[Requirement, ...]:
    if not reqs:
        raise EmptyPolicyError(
            f"expected at least one requirement in {kind}(), got none: an empty policy never allows"
        )
    for r in reqs:
        if not isinstance(r, Requirement):
            raise TypeError(f"expected a Requirement in {kind}(), got {type(r).__name__}")
    return reqs


class AllOf:
    """Every member must be satisfied: the most restrictive outcome wins, all reasons are kept."""

    def __init__(self, *reqs: Requirement) -> None:
        """Refuses an empty member list with :class:`EmptyPolicyError`."""
        self.members: tuple[Requirement, ...] = _members("AllOf", reqs)

    def evaluate(self, request: ActionRequest) -> Check:
        """Evaluate every member (no short cut, so that every reason is recorded)."""
        checks = [r.evaluate(request) for r in self.members]
        return Check(
            most_restrictive(c.outcome for c in checks),
            tuple(r for c in checks for r in c.reasons),
        )

    def __repr__(self) -> str:
        return f"AllOf({', '.join(map(repr, self.members))})"


class AnyOf:
    """One member suffices: the least restrictive outcome wins, all reasons are kept."""

    def __init__(self, *reqs: Requirement) -> None:
        """Refuses an empty member list with :class:`EmptyPolicyError`."""
        self.members: tuple[Requirement, ...] = _members("AnyOf", reqs)

    def evaluate(self, request: ActionRequest) -> Check:
        """Evaluate every member; the reasons of all of them are recorded."""
        checks = [r.evaluate(request) for r in self.members]
        return Check(
            least_restrictive(c.outcome for c in checks),
            tuple(r for c in checks for r in c.reasons),
        )

    def __repr__(self) -> str:
        return f"AnyOf({', '.join(map(repr, self.members))})"


class UnsafeAllowAll:
    """UNSAFE, for tests and development only: allows everything without any check.

    Logs a warning when built. Never a default anywhere in kontur.
    """

    def __init__(self) -> None:
        """Warns loudly: every request this requirement judges is allowed unchecked."""
        _log.warning("UnsafeAllowAll in use: the gate ALLOWS requests WITHOUT CHECKING them")

    def evaluate(self, request: ActionRequest) -> Check:
        """ALLOW, always."""
        return Check(Outcome.ALLOW, ("UNSAFE: UnsafeAllowAll allowed it without checks",))


#: The requirement for critical actions.
DEFAULT_CRITICAL: Final = AllOf(AllGopsAuthentic(), VerifierAgrees(), SystemNotDegraded())
#: The requirement for non-critical actions.
DEFAULT_NON_CRITICAL: Final = SystemNotSafe()
