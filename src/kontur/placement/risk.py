"""The placement decision: residual risk, admissibility and the choice (paper, "Модель
адаптивного доверенного контура видеоаналитики"; DESIGN.md §1 block 2).

Pure core: no clock, no disk, no runtime. Steps of :func:`choose`, in order:

1. refuse an empty candidate list, an unknown platform or task class, a bad tie margin;
2. per platform, ``R_j(p) = Σ_i w_i · a_ij · e_ip · (1 − m_ip)`` with every term kept
   (:func:`residual_risk`); a threat with ``exposure_from: sla_headroom`` takes
   ``e_ip = clamp(L_p / Lmax, 0, 1)`` from the measured latency ("для тяжелой модели CPU может
   иметь больший риск недоступности");
3. per platform, admissibility from the measured figures: ``L ≤ Lmax``, ``V ≥ Vmin``,
   ``A ≥ Amin``; a platform without a measurement is "not present on this machine";
4. among admissible platforms the lowest R wins, but the CPU wins whenever it is admissible and
   ``R_cpu ≤ R_best · (1 + tie_margin)`` (compared as exact decimals) or ``|R_cpu − R_best| ≤ 1e-9``
   ("при близких значениях выбирается CPU");
5. when nothing is admissible the CPU is chosen anyway, flagged ``admissible_any=False``: the
   fail-safe is CPU-first, and the caller runs degraded.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from kontur.config import SlaConfig
from kontur.placement._platforms import PLATFORMS, Platform, check_platform
from kontur.placement.catalogue import Catalogue, Threat
from kontur.placement.errors import MeasurementError, NoCandidates, TieMarginError
from kontur.placement.measure import Measurement

__all__ = [
    "ABSOLUTE_TIE",
    "NOT_PRESENT",
    "Admissibility",
    "Candidates",
    "Placement",
    "RiskBreakdown",
    "ThreatTerm",
    "admissibility",
    "choose",
    "residual_risk",
    "within_tie",
]

#: Measurements per platform; ``None`` (or a missing key) means "not present on this machine".
Candidates = Mapping[str, Measurement | None] | Mapping[Platform, Measurement | None]

#: Two risks this close are a tie whatever the relative margin (float noise, margin 0).
ABSOLUTE_TIE = 1e-9

#: The reason given for a platform with no measurement.
NOT_PRESENT = "not present on this machine"


@dataclass(frozen=True)
class ThreatTerm:
    """One threat's term of R_j(p): ``contribution = w · a · e · (1 − m)``."""

    threat_id: str
    w: float
    a: float
    e: float
    m: float
    contribution: float
    exposure_basis: str
    """``"catalogue"``, or how ``e`` was derived from the measured latency."""


@dataclass(frozen=True)
class RiskBreakdown:
    """R_j(p) for one task class and platform, with every term that makes it up."""

    platform: Platform
    task_class: str
    terms: tuple[ThreatTerm, ...]
    total: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping: platform, task class, total and the terms."""
        return {
            "platform": self.platform,
            "task_class": self.task_class,
            "total": self.total,
            "terms": [asdict(t) for t in self.terms],
        }


@dataclass(frozen=True)
class Admissibility:
    """Whether a platform meets the SLA; ``reasons`` lists each limit it misses (empty if none)."""

    admissible: bool
    reasons: tuple[str, ...]


def _num(value: float, limit: float, digits: int) -> tuple[str, str]:
    """Format a value and its limit so that a real difference never prints as equal."""
    a, b = f"{value:.{digits}f}", f"{limit:.{digits}f}"
    return (repr(value), repr(limit)) if a == b and value != limit else (a, b)


def admissibility(measurement: Measurement | None, sla: SlaConfig) -> Admissibility:
    """Check the measured L, V, A against ``sla``; no measurement means not present."""
    if measurement is None:
        return Admissibility(admissible=False, reasons=(NOT_PRESENT,))
    reasons: list[str] = []
    if measurement.latency_ms > sla.latency_ms_max:
        v, lim = _num(measurement.latency_ms, sla.latency_ms_max, 1)
        reasons.append(f"latency {v} ms > Lmax {lim} ms")
    if measurement.throughput_fps < sla.throughput_fps_min:
        v, lim = _num(measurement.throughput_fps, sla.throughput_fps_min, 1)
        reasons.append(f"throughput {v} fps < Vmin {lim} fps")
    acc = measurement.accuracy
    if acc is None and sla.accuracy_min > 0:
        reasons.append(f"accuracy not measured, Amin {sla.accuracy_min:.2f}")
    elif acc is not None and acc < sla.accuracy_min:
        v, lim = _num(acc, sla.accuracy_min, 2)
        reasons.append(f"accuracy {v} < Amin {lim} ({measurement.accuracy_basis})")
    return Admissibility(admissible=not reasons, reasons=tuple(reasons))


def _exposure(
    threat: Threat, platform: Platform, measurement: Measurement | None, sla: SlaConfig
) -> tuple[float, str]:
    if threat.exposure_from == "catalogue":
        return threat.e.of(platform), "catalogue"
    if measurement is None:
        return threat.e.of(platform), "catalogue prior (no measurement)"
    e = min(1.0, max(0.0, measurement.latency_ms / sla.latency_ms_max))
    return e, f"headroom: {measurement.latency_ms:.1f} ms / Lmax {sla.latency_ms_max:.1f} ms"


def residual_risk(
    catalogue: Catalogue,
    task_class: str,
    platform: str,
    measurement: Measurement | None,
    sla: SlaConfig,
) -> RiskBreakdown:
    """``R_j(p) = Σ_i w_i · a_ij · e_ip · (1 − m_ip)`` with every term kept for explanation."""
    p = check_platform(platform)
    catalogue.check_task_class(task_class)
    if measurement is not None and measurement.platform != p:
        raise MeasurementError(
            f"expected a measurement for {p}, got one for {measurement.platform}"
        )
    terms: list[ThreatTerm] = []
    for threat in catalogue.threats:
        a = threat.applicability(task_class)
        e, basis = _exposure(threat, p, measurement, sla)
        m = threat.m.of(p)
        contribution = threat.w * a * e * (1.0 - m)
        terms.append(ThreatTerm(threat.id, threat.w, a, e, m, contribution, basis))
    total = math.fsum(t.contribution for t in terms)
    return RiskBreakdown(platform=p, task_class=task_class, terms=tuple(terms), total=total)


@dataclass(frozen=True)
class Placement:
    """The dispatcher's decision for one task, with everything needed to explain it."""

    task: str
    task_class: str
    platform: Platform
    risk: dict[str, float]
    """R per platform, rounded to 4 decimals (full precision in :attr:`breakdown`)."""
    admissible: dict[str, bool]
    reason: str
    breakdown: dict[str, RiskBreakdown]
    measurements: dict[str, Measurement | None]
    admissibility: dict[str, Admissibility]
    admissible_any: bool
    """False when no platform met the SLA and the CPU was chosen as a degraded fail-safe."""
    sla: SlaConfig
    tie_margin: float

    @property
    def degraded(self) -> bool:
        """True when the placement is the CPU fallback with nothing admissible."""
        return not self.admissible_any

    def to_summary(self) -> dict[str, Any]:
        """Exactly ``{"task", "platform", "risk", "admissible", "reason"}``, JSON-ready."""
        return {
            "task": self.task,
            "platform": self.platform,
            "risk": dict(self.risk),
            "admissible": dict(self.admissible),
            "reason": self.reason,
        }


def _check_inputs(candidates: Candidates, tie_margin: float) -> dict[Platform, Measurement | None]:
    if not candidates:
        raise NoCandidates(
            f"expected at least one candidate platform among {list(PLATFORMS)}, got none"
        )
    if isinstance(tie_margin, bool) or not isinstance(tie_margin, int | float):
        raise TieMarginError(f"expected a tie margin in [0, 1], got {tie_margin!r}")
    if not (math.isfinite(tie_margin) and 0 <= tie_margin <= 1):
        raise TieMarginError(f"expected a tie margin in [0, 1], got {tie_margin!r}")
    full: dict[Platform, Measurement | None] = dict.fromkeys(PLATFORMS)
    for name, m in candidates.items():
        p = check_platform(name)
        if m is not None and m.platform != p:
            raise MeasurementError(
                f"candidate {p}: expected a measurement for {p}, got one for {m.platform}"
            )
        full[p] = m
    return full


def within_tie(r_cpu: float, r_best: float, tie_margin: float) -> bool:
    """``R_cpu ≤ R_best · (1 + margin)`` in exact decimal arithmetic, or ``|ΔR| ≤ 1e-9``.

    Each float is read as the shortest decimal that round-trips (``repr``), so a margin of 0.1
    is exactly one tenth and a risk exactly 10% above the best is a tie.
    """
    if abs(r_cpu - r_best) <= ABSOLUTE_TIE:
        return True
    exact = Fraction(repr(r_best)) * (1 + Fraction(repr(float(tie_margin))))
    return Fraction(repr(r_cpu)) <= exact


_CPU_ONLY: tuple[Platform, ...] = ("cpu",)


def _pct(margin: float) -> str:
    return f"{margin * 100:g}%"


def _others(
    skip: Collection[Platform],
    risk: Mapping[Platform, float],
    adm: Mapping[Platform, Admissibility],
    note: Mapping[Platform, str],
) -> str:
    """Why each platform not in ``skip`` lost: its R and its failed limits, or ``note``."""
    parts = []
    for p in PLATFORMS:
        if p in skip:
            continue
        why = note.get(p) or ("; ".join(adm[p].reasons) if not adm[p].admissible else "admissible")
        parts.append(f"{p} R={risk[p]:.3f}, {why}")
    return "; ".join(parts)


def _decide(
    risk: Mapping[Platform, float], adm: Mapping[Platform, Admissibility], margin: float
) -> tuple[Platform, str]:
    ok = [p for p in PLATFORMS if adm[p].admissible]
    if not ok:
        return "cpu", (
            "cpu chosen as degraded fail-safe: no platform is admissible "
            f"(cpu R={risk['cpu']:.3f}, {'; '.join(adm['cpu'].reasons)}; "
            f"{_others(_CPU_ONLY, risk, adm, {})})"
        )
    best = min(ok, key=lambda p: risk[p])  # min keeps the first of equals: PLATFORMS order
    lowest = f"admissible and lowest residual risk R={risk[best]:.3f}"
    if "cpu" in ok and best == "cpu":
        return "cpu", f"cpu chosen: {lowest} ({_others(_CPU_ONLY, risk, adm, {})})"
    if "cpu" in ok and within_tie(risk["cpu"], risk[best], margin):
        pct = _pct(margin)
        rest = _others(("cpu", best), risk, adm, {})
        return "cpu", (
            f"cpu chosen by tie margin {pct}: R_cpu={risk['cpu']:.3f} within {pct} of "
            f"{best} R={risk[best]:.3f}" + (f" ({rest})" if rest else "")
        )
    note: dict[Platform, str] = {}
    if "cpu" in ok:
        note["cpu"] = f"admissible but beyond the {_pct(margin)} tie margin"
    return best, f"{best} chosen: {lowest} ({_others((best,), risk, adm, note)})"


def choose(
    task: str,
    task_class: str,
    candidates: Candidates,
    catalogue: Catalogue,
    sla: SlaConfig,
    tie_margin: float = 0.10,
) -> Placement:
    """Place ``task`` on the admissible platform with the lowest R, the CPU on a tie or when
    nothing is admissible. Platforms missing from ``candidates`` count as not present."""
    full = _check_inputs(candidates, tie_margin)
    catalogue.check_task_class(task_class)
    breakdown = {p: residual_risk(catalogue, task_class, p, full[p], sla) for p in PLATFORMS}
    adm = {p: admissibility(full[p], sla) for p in PLATFORMS}
    risk = {p: breakdown[p].total for p in PLATFORMS}
    platform, reason = _decide(risk, adm, tie_margin)
    return Placement(
        task=task,
        task_class=task_class,
        platform=platform,
        risk={p: round(r, 4) for p, r in risk.items()},
        admissible={p: a.admissible for p, a in adm.items()},
        reason=reason,
        breakdown={str(p): b for p, b in breakdown.items()},
        measurements={str(p): m for p, m in full.items()},
        admissibility={str(p): a for p, a in adm.items()},
        admissible_any=any(a.admissible for a in adm.values()),
        sla=sla,
        tie_margin=float(tie_margin),
    )
