"""Explaining a placement (DESIGN.md §1 block 2: "Every choice can be explained: the terms, the
measurements, and why the other platforms lost"; paper, "Модель адаптивного доверенного
контура видеоаналитики").

:func:`render_explain` builds rich renderables: a table of the per-threat terms of R_j(p) on each
platform (one wide table, or one table per platform on a narrow console), a table of the
measured L/V/A against the SLA limits, and the reason line.
:func:`explain_json` gives the same content as a JSON-ready mapping for the archive and the API.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from kontur.placement._platforms import PLATFORMS
from kontur.placement.risk import Placement

__all__ = [
    "explain_json",
    "platform_risk_table",
    "print_explain",
    "render_explain",
    "risk_table",
    "sla_table",
]


def _f(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


def risk_table(placement: Placement) -> Table:
    """Per-threat terms (w, a; e, m, contribution per platform) and R per platform."""
    table = Table(
        title=f"Residual risk R_j(p) for task {placement.task!r} ({placement.task_class})",
        caption="R = Σ w·a·e·(1−m); * e from the measured latency headroom; ✓ chosen",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    table.add_column("threat", overflow="fold")
    table.add_column("w", justify="right", no_wrap=True)
    table.add_column("a", justify="right", no_wrap=True)
    for p in PLATFORMS:
        mark = "✓" if p == placement.platform else ""
        style = "bold" if mark else None
        for col in ("e", "m", "R_i"):
            table.add_column(f"{p}{mark}\n{col}", justify="right", no_wrap=True, style=style)
    cpu_terms = placement.breakdown["cpu"].terms
    for i, term in enumerate(cpu_terms):
        cells = [term.threat_id, _f(term.w, 2), _f(term.a, 2)]
        for p in PLATFORMS:
            t = placement.breakdown[p].terms[i]
            star = "*" if t.exposure_basis.startswith("headroom") else ""
            cells += [_f(t.e, 2) + star, _f(t.m, 2), _f(t.contribution)]
        table.add_row(*cells)
    totals = ["R", "", ""]
    for p in PLATFORMS:
        totals += ["", "", _f(placement.breakdown[p].total)]
    table.add_section()
    table.add_row(*totals, style="bold")
    return table


def platform_risk_table(placement: Placement, platform: str) -> Table:
    """The terms of R_j(p) for one platform: w, a, e, m and the contribution per threat."""
    b = placement.breakdown[platform]
    mark = " ✓ chosen" if platform == placement.platform else ""
    table = Table(
        title=f"R_j({platform}) = {b.total:.3f} for task {placement.task!r}{mark}",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    table.add_column("threat", no_wrap=True)
    for col in ("w", "a", "e", "m", "R_i"):
        table.add_column(col, justify="right", no_wrap=True)
    for t in b.terms:
        star = "*" if t.exposure_basis.startswith("headroom") else ""
        row = [_f(t.w, 2), _f(t.a, 2), _f(t.e, 2) + star, _f(t.m, 2), _f(t.contribution)]
        table.add_row(t.threat_id, *row)
    return table


class _RiskTerms:
    """The wide risk table when it fits the console, else one table per platform."""

    def __init__(self, placement: Placement) -> None:
        self.placement = placement

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        wide = risk_table(self.placement)
        natural = console.measure(wide, options=options.update(max_width=10_000)).maximum
        if natural <= options.max_width:
            yield wide
            return
        for p in PLATFORMS:
            yield platform_risk_table(self.placement, p)
        yield Text("* e from the measured latency headroom", style="dim")


def sla_table(placement: Placement) -> Table:
    """Measured latency, throughput and accuracy per platform against the SLA, and the verdict."""
    sla = placement.sla
    table = Table(title="Measured SLA on this machine", box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("platform", no_wrap=True)
    table.add_column(f"L ms\n≤ {sla.latency_ms_max:g}", justify="right", no_wrap=True)
    table.add_column(f"V fps\n≥ {sla.throughput_fps_min:g}", justify="right", no_wrap=True)
    table.add_column(f"A\n≥ {sla.accuracy_min:g}", justify="right", no_wrap=True)
    table.add_column("accuracy basis")
    table.add_column("R", justify="right", no_wrap=True)
    table.add_column("admissible")
    for p in PLATFORMS:
        m = placement.measurements[p]
        adm = placement.admissibility[p]
        verdict = "yes" if adm.admissible else "no: " + "; ".join(adm.reasons)
        name = f"{p} ✓" if p == placement.platform else p
        if m is None:
            row = [name, "—", "—", "—", "—"]
        else:
            acc = "—" if m.accuracy is None else _f(m.accuracy)
            row = [name, f"{m.latency_ms:.1f}", f"{m.throughput_fps:.1f}", acc, m.accuracy_basis]
        table.add_row(*row, _f(placement.breakdown[p].total), verdict)
    return table


def render_explain(placement: Placement) -> Group:
    """The risk table, the SLA table and the reason line, as one rich renderable."""
    style = "bold green" if placement.admissible_any else "bold red"
    head = "DEGRADED " if placement.degraded else ""
    reason = Text(f"{head}placement → {placement.platform}: {placement.reason}", style=style)
    return Group(_RiskTerms(placement), sla_table(placement), reason)


def print_explain(placement: Placement, console: Console) -> None:
    """Print :func:`render_explain`'s output to ``console``."""
    console.print(render_explain(placement))


def explain_json(placement: Placement) -> dict[str, Any]:
    """Everything behind the placement as a JSON-serialisable mapping."""
    platforms: dict[str, Any] = {}
    for p in PLATFORMS:
        m = placement.measurements[p]
        adm = placement.admissibility[p]
        platforms[p] = {
            "risk": placement.breakdown[p].total,
            "admissible": adm.admissible,
            "reasons": list(adm.reasons),
            "measurement": None if m is None else m.to_json(),
            "terms": placement.breakdown[p].to_json()["terms"],
        }
    return {
        **placement.to_summary(),
        "task_class": placement.task_class,
        "admissible_any": placement.admissible_any,
        "tie_margin": placement.tie_margin,
        "sla": placement.sla.model_dump(),
        "platforms": platforms,
    }
