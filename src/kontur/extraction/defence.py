"""The extraction defence on the query path: blocks, throttles, the quota and PRADA (pure core).

For each query of a principal the API shell calls, in this order:

1. :meth:`ExtractionDefence.admit` before the image is even decoded: a blocked principal is
   refused (``BLOCKED``, 403) until its block ends or an admin lifts it; a throttled one gets
   one query per ``throttle_interval_s`` (``THROTTLED``, 429 with ``Retry-After``);
2. :meth:`ExtractionDefence.assess` with the query's feature: the daily quota
   (``OVER_QUOTA``, 429 until the day turns), then PRADA
   (:class:`~kontur.extraction.prada.Prada`). An alarm applies the policy at once (block or
   throttle) and refuses the alarming query itself (``ALARM``: the shell archives it as an
   ``audit`` record, action ``detect:extraction_alarm``). Otherwise ``ANSWER``.

A decision is a frozen :class:`Admission`. Blocks are facts the shell persists
(:meth:`blocks`, and ``blocks=`` when built) so a restart of the API does not lift them;
PRADA's streams and the quota counts live in memory (ADR 0031 says what a restart loses).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from kontur.clock import Clock
from kontur.extraction.images import ImageLimits
from kontur.extraction.prada import Prada, PradaConfig, PradaResult
from kontur.extraction.quota import DailyQuota

__all__ = ["Admission", "Block", "ExtractionDefence", "ExtractionSettings", "OnAlarm", "Verdict"]


class OnAlarm(StrEnum):
    """What an alarm does to the principal."""

    BLOCK = "block"
    """403 from then on, until ``block_s`` passed or (None) an admin lifts it."""
    THROTTLE = "throttle"
    """One query per ``throttle_interval_s`` from then on, until an admin lifts it."""


class Verdict(StrEnum):
    """The defence's answer to one query."""

    ANSWER = "answer"
    BLOCKED = "blocked"
    THROTTLED = "throttled"
    OVER_QUOTA = "over_quota"
    ALARM = "alarm"


@dataclass(frozen=True, slots=True)
class ExtractionSettings:
    """The query path's bounds and policy; every value is checked on creation."""

    daily_quota: int = 10_000
    """Queries per principal per UTC day."""
    on_alarm: OnAlarm = OnAlarm.BLOCK
    block_s: float | None = None
    """How long an alarm blocks; None: until an admin lifts it (the default)."""
    throttle_interval_s: float = 30.0
    """Under ``on_alarm: throttle``: one query per this many seconds."""
    prada: PradaConfig = field(default_factory=PradaConfig)
    image: ImageLimits = field(default_factory=ImageLimits)
    infer_timeout_s: float = 20.0
    """How long one inference may take in the query worker before it is killed (503)."""

    def __post_init__(self) -> None:
        if self.daily_quota < 1:
            raise ValueError(f"extraction.daily_quota: expected >= 1, got {self.daily_quota}")
        for name in ("throttle_interval_s", "infer_timeout_s", "block_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"extraction.{name}: expected a positive number, got {value!r}")
        OnAlarm(self.on_alarm)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> ExtractionSettings:
        """Settings from the config's ``api.extraction`` mapping (nested ``prada:`` and
        ``image:`` mappings); what it does not name keeps its default. Unknown keys, wrong
        types and values a check refuses are one-line ValueErrors naming the key's path
        (``extraction.prada.delta: expected 0 < delta < 1, got 1.5``)."""
        settings = _build(cls, {} if data is None else data, "extraction")
        assert isinstance(settings, ExtractionSettings)
        return settings


def _value(path: str, kind: str, value: Any, default: Any) -> Any:
    """One setting of a dataclass, checked against its annotation (``kind``)."""
    if value is None and "None" in kind:
        return None
    if is_dataclass(default):
        return _build(type(default), value, path)
    if isinstance(default, StrEnum):
        allowed = [str(m) for m in type(default)]
        if value not in allowed:
            raise ValueError(f"{path}: expected one of {', '.join(allowed)}, got {value!r}")
        return type(default)(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{path}: expected a number, got {value!r}")
    if kind.startswith("int"):
        if not isinstance(value, int):
            raise ValueError(f"{path}: expected a whole number, got {value!r}")
        return value
    if not math.isfinite(value):
        raise ValueError(f"{path}: expected a finite number, got {value!r}")
    return float(value)


def _build(cls: type, data: Any, path: str) -> object:
    """A settings dataclass from a mapping, every key checked (see ``from_mapping``)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping, got {data!r:.60}")
    known = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in known:
            raise ValueError(
                f"{path}.{key}: expected a known key (README, Configuration reference), "
                "got an unknown one"
            )
    defaults = cls()  # every settings dataclass here has a default for each field
    values = {
        key: _value(f"{path}.{key}", str(known[key].type), value, getattr(defaults, key))
        for key, value in data.items()
    }
    try:
        return cls(**values)
    except ValueError as exc:  # its message starts with the section's own name: "prada.delta"
        parent = path.rpartition(".")[0]
        raise ValueError(f"{parent}.{exc}" if parent else str(exc)) from None


@dataclass(frozen=True, slots=True)
class Block:
    """A principal refused or throttled since an alarm."""

    principal: str
    since: float
    """Wall time of the alarm."""
    until: float | None
    """Wall time it ends by itself; None: until an admin lifts it."""
    policy: OnAlarm
    reason: str

    def to_json(self) -> dict[str, object]:
        """The persisted form (:meth:`from_json` reads it back)."""
        return {
            "principal": self.principal, "since": self.since, "until": self.until,
            "policy": str(self.policy), "reason": self.reason,
        }  # fmt: skip

    @classmethod
    def from_json(cls, obj: object) -> Block:
        """A block from its persisted form; ValueError naming what is wrong."""
        if not isinstance(obj, dict) or set(obj) != {
            "principal",
            "since",
            "until",
            "policy",
            "reason",
        }:
            raise ValueError(
                f"block: expected principal, since, until, policy, reason, got {obj!r:.80}"
            )
        until = obj["until"]
        if not isinstance(obj["principal"], str) or not isinstance(obj["reason"], str):
            raise ValueError("block: expected a principal and a reason as strings")
        if not isinstance(obj["since"], int | float) or not (
            until is None or isinstance(until, int | float)
        ):
            raise ValueError("block: expected since and until as numbers (until may be null)")
        return cls(
            obj["principal"], float(obj["since"]), until, OnAlarm(obj["policy"]), obj["reason"]
        )


@dataclass(frozen=True, slots=True)
class Admission:
    """One decision of the defence."""

    verdict: Verdict
    reason: str
    """One line: what was expected and what was found (the answer's ``detail``)."""
    retry_after_s: float | None = None
    audit: bool = False
    """The shell records this decision (a day's first quota refusal, every block, the alarm)."""
    prada: PradaResult | None = None


class ExtractionDefence:
    """Blocks, throttles, the daily quota and PRADA per principal (see the module)."""

    def __init__(
        self, settings: ExtractionSettings, clock: Clock, blocks: tuple[Block, ...] = ()
    ) -> None:
        self.settings = settings
        self._clock = clock
        self.prada = Prada(settings.prada)
        self.quota = DailyQuota(settings.daily_quota, clock)
        self._blocks = {b.principal: b for b in blocks}
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def blocks(self) -> tuple[Block, ...]:
        """The blocks in force (the shell persists them after every change)."""
        with self._lock:
            return tuple(sorted(self._blocks.values(), key=lambda b: b.principal))

    def lift(self, principal: str) -> Block | None:
        """An admin lifts ``principal``'s block; its PRADA stream starts afresh. The lifted
        block, or None if there was none."""
        with self._lock:
            block = self._blocks.pop(principal, None)
            self._last.pop(principal, None)
        self.prada.forget(principal)
        return block

    def admit(self, principal: str) -> Admission:
        """Step 1 of the module."""
        now, mono = self._clock.wall(), self._clock.monotonic()
        with self._lock:
            block = self._blocks.get(principal)
            if block is not None and block.until is not None and now >= block.until:
                del self._blocks[principal]
                self.prada.forget(principal)
                block = None
            if block is None:
                return Admission(Verdict.ANSWER, "")
            if block.policy is OnAlarm.BLOCK:
                until = "an admin lifts it" if block.until is None else f"{block.until - now:.0f} s"
                why = (
                    "expected a principal without an extraction alarm, "
                    f"got one (blocked until {until})"
                )
                return Admission(Verdict.BLOCKED, why, audit=True)
            wait = self._last.get(principal, -1e18) + self.settings.throttle_interval_s - mono
            if wait > 0:
                why = (
                    f"expected at most one query per {self.settings.throttle_interval_s:g} s "
                    "after an extraction alarm, got more"
                )
                return Admission(Verdict.THROTTLED, why, retry_after_s=wait)
            self._last[principal] = mono
            return Admission(Verdict.ANSWER, "")

    def assess(self, principal: str, features: np.ndarray) -> Admission:
        """Step 2 of the module, for a query ``admit`` let through."""
        quota = self.quota.take(principal)
        if not quota.allowed:
            why = (
                f"expected at most {quota.limit} queries a day, "
                f"got more (the day turns in {quota.retry_after_s:.0f} s)"
            )
            return Admission(
                Verdict.OVER_QUOTA, why, quota.retry_after_s, audit=quota.first_refusal
            )
        result = self.prada.observe(principal, features)
        if result.alarm is None:
            return Admission(Verdict.ANSWER, "", prada=result)
        s = self.settings
        now = self._clock.wall()
        until = None if s.on_alarm is OnAlarm.THROTTLE or s.block_s is None else now + s.block_s
        block = Block(principal, now, until, s.on_alarm, result.reason(s.prada))
        with self._lock:
            self._blocks[principal] = block
            self._last[principal] = self._clock.monotonic()
        why = "expected a query stream unlike model extraction, got an extraction alarm"
        retry = s.throttle_interval_s if s.on_alarm is OnAlarm.THROTTLE else None
        return Admission(Verdict.ALARM, why, retry, audit=True, prada=result)
