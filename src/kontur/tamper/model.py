"""Typed results of the tamper monitor: kinds, events, start/end changes and the quality flag.

All are frozen dataclasses with ``to_json()``; :class:`TamperEvent` and :class:`TamperChange`
also parse back with ``from_json()``, which checks every field, so a later wire message can
carry them as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kontur.tamper.errors import TamperInputError

__all__ = ["Quality", "TamperChange", "TamperEvent", "TamperKind", "Transition"]


class TamperKind(StrEnum):
    """What was done to the camera (the paper's Table 1, first row)."""

    COVERED = "covered"
    """Covering or occlusion of part or all of the view (a hand, cloth, tape, paint)."""
    DEFOCUS = "defocus"
    """The picture lost its sharpness while keeping its layout (focus ring, smear, fog)."""
    GLARE = "glare"
    """Saturation or over-exposure (a flashlight, a laser, the sun)."""
    LOW_LIGHT = "low_light"
    """The picture became much darker or flatter than the camera's own recent past."""
    SHIFTED = "shifted"
    """The camera was shifted or redirected away from its enrolled reference view."""
    FROZEN = "frozen"
    """The picture stopped changing on a camera whose picture normally changes."""
    SCREEN = "screen"
    """A screen or photo held in front of the lens (moiré, flicker, raised black level)."""

    @classmethod
    def parse(cls, name: str | TamperKind) -> TamperKind:
        """The kind called ``name``; raises :class:`TamperInputError` for any other."""
        try:
            return cls(name)
        except ValueError:
            known = ", ".join(k.value for k in cls)
            raise TamperInputError(f"expected a tamper kind among {known}, got {name!r}") from None


class Transition(StrEnum):
    """Whether a :class:`TamperChange` opens or closes an event."""

    START = "start"
    END = "end"


def _num(doc: dict[str, Any], key: str) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TamperInputError(f"{key}: expected a finite number, got {value!r}")
    return float(value)


def _str(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise TamperInputError(f"{key}: expected a non-empty string, got {value!r}")
    return value


def _exact_keys(doc: object, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise TamperInputError(f"{what}: expected a JSON object, got {type(doc).__name__}")
    if set(doc) != keys:
        raise TamperInputError(f"{what}: expected keys {sorted(keys)}, got {sorted(doc)}")
    return doc


@dataclass(frozen=True, slots=True)
class TamperEvent:
    """One tamper event of one camera: open while ``end_s`` is None.

    ``score`` is the strongest evidence seen so far in units of the onset threshold (1.0 is
    exactly at it; 2.0 twice as far past it). ``reason`` is one line for the operator.
    """

    camera_id: str
    kind: TamperKind
    score: float
    start_s: float
    end_s: float | None
    reason: str

    @property
    def open(self) -> bool:
        """True while the event has not cleared."""
        return self.end_s is None

    def to_json(self) -> dict[str, Any]:
        """``{camera_id, kind, score, start_s, end_s, reason}`` (floats rounded to 1 ms)."""
        return {
            "camera_id": self.camera_id,
            "kind": self.kind.value,
            "score": round(self.score, 3),
            "start_s": round(self.start_s, 3),
            "end_s": None if self.end_s is None else round(self.end_s, 3),
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, doc: object) -> TamperEvent:
        """Parse :meth:`to_json`'s output, checking every field."""
        keys = {"camera_id", "kind", "score", "start_s", "end_s", "reason"}
        d = _exact_keys(doc, keys, "tamper event")
        end = None if d["end_s"] is None else _num(d, "end_s")
        start = _num(d, "start_s")
        if end is not None and end < start:
            raise TamperInputError(f"end_s: expected >= start_s {start}, got {end}")
        reason = _str(d, "reason")
        if "\n" in reason:
            raise TamperInputError("reason: expected one line, got several")
        score = _num(d, "score")
        if score < 0:
            raise TamperInputError(f"score: expected >= 0, got {score}")
        return cls(_str(d, "camera_id"), TamperKind.parse(_str(d, "kind")), score, start, end,
                   reason)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TamperChange:
    """An event started or ended; ``at_s`` is when the monitor decided it.

    For a start, ``at_s - event.start_s`` is the confirmation delay (the minimum duration);
    for an end, ``event.end_s`` is when the picture recovered and ``at_s`` when the hysteresis
    let the event go.
    """

    transition: Transition
    at_s: float
    event: TamperEvent

    def to_json(self) -> dict[str, Any]:
        """``{transition, at_s, event}``."""
        return {"transition": self.transition.value, "at_s": round(self.at_s, 3),
                "event": self.event.to_json()}  # fmt: skip

    @classmethod
    def from_json(cls, doc: object) -> TamperChange:
        """Parse :meth:`to_json`'s output, checking every field."""
        d = _exact_keys(doc, {"transition", "at_s", "event"}, "tamper change")
        try:
            transition = Transition(d["transition"])
        except ValueError:
            raise TamperInputError(
                f"transition: expected start or end, got {d['transition']!r}"
            ) from None
        event = TamperEvent.from_json(d["event"])
        if (transition is Transition.END) == event.open:
            what = "a time for an end" if event.open else "null for a start"
            raise TamperInputError(f"event.end_s: expected {what}, got {event.end_s}")
        return cls(transition, _num(d, "at_s"), event)


@dataclass(frozen=True, slots=True)
class Quality:
    """Whether the picture is good enough to decide on: "refuse to decide at low quality".

    ``ok`` is False while a tamper event is open or the picture is below an absolute floor
    (too dark, too flat, too saturated, still warming up); ``reasons`` says why, one line each.
    """

    ok: bool
    reasons: tuple[str, ...]

    @property
    def refuse(self) -> bool:
        """True when automatic decisions on this camera should be refused."""
        return not self.ok

    def to_json(self) -> dict[str, Any]:
        """``{ok, reasons}``."""
        return {"ok": self.ok, "reasons": list(self.reasons)}
