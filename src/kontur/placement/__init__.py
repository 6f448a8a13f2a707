"""The placement dispatcher (paper, "Модель адаптивного доверенного контура видеоаналитики";
DESIGN.md §1 block 2).

For a task *j* and a platform *p* ∈ {cpu, gpu, npu} the residual risk is
``R_j(p) = Σ_i w_i · a_ij · e_ip · (1 − m_ip)`` over the threat catalogue built from the paper's
Tables 1 and 3. A platform is admissible when its *measured* ``L ≤ Lmax``, ``V ≥ Vmin`` and
``A ≥ Amin``; the admissible platform with the lowest R wins, the CPU wins within the tie margin,
and the CPU is the degraded fail-safe when nothing is admissible.

Typical use (the caller builds the detector per platform; this package never imports a GPU
runtime at import time)::

    catalogue = load_catalogue()                       # or load_catalogue(Path(cfg.catalogue))
    here = available_platforms()                       # {"cpu": "CPUExecutionProvider", ...}
    measured = {p: bench(p, detectors[p], frames, accuracy_fn) for p in here}
    placement = choose("cam1/detect", "detect-track", measured, catalogue, cfg.sla, cfg.tie_margin)
    print_explain(placement, Console())
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kontur._private import lazy_exports

if TYPE_CHECKING:  # the names' types for mypy; at run time each is imported on first use
    from kontur.placement._platforms import PLATFORMS, Platform
    from kontur.placement.available import available_platforms
    from kontur.placement.catalogue import (
        CONTOURS,
        Catalogue,
        PlatformValues,
        Threat,
        load_catalogue,
        parse_catalogue,
    )
    from kontur.placement.errors import (
        BenchError,
        CatalogueError,
        MeasurementError,
        NoCandidates,
        PlacementError,
        TieMarginError,
        UnknownPlatform,
        UnknownTaskClass,
    )
    from kontur.placement.explain import explain_json, print_explain, render_explain
    from kontur.placement.measure import (
        AccuracyFn,
        Measurement,
        bench,
        reference_agreement,
    )
    from kontur.placement.risk import (
        NOT_PRESENT,
        Admissibility,
        Placement,
        RiskBreakdown,
        ThreatTerm,
        admissibility,
        choose,
        residual_risk,
        within_tie,
    )

# Lazy (PEP 562): the command line and the run manifest import ``kontur.placement.allowlist``
# and ``.probe`` (plain Python), and must not pay for the dispatcher and numpy (ADR 0063).
_HOME = {
    **dict.fromkeys(("PLATFORMS", "Platform"), "_platforms"),
    **dict.fromkeys(("available_platforms",), "available"),
    **dict.fromkeys(
        ("CONTOURS", "Catalogue", "PlatformValues", "Threat", "load_catalogue", "parse_catalogue"),
        "catalogue",
    ),
    **dict.fromkeys(
        (
            "BenchError",
            "CatalogueError",
            "MeasurementError",
            "NoCandidates",
            "PlacementError",
            "TieMarginError",
            "UnknownPlatform",
            "UnknownTaskClass",
        ),
        "errors",
    ),
    **dict.fromkeys(("explain_json", "print_explain", "render_explain"), "explain"),
    **dict.fromkeys(("AccuracyFn", "Measurement", "bench", "reference_agreement"), "measure"),
    **dict.fromkeys(
        (
            "NOT_PRESENT",
            "Admissibility",
            "Placement",
            "RiskBreakdown",
            "ThreatTerm",
            "admissibility",
            "choose",
            "residual_risk",
            "within_tie",
        ),
        "risk",
    ),
}

__all__ = [
    "CONTOURS",
    "NOT_PRESENT",
    "PLATFORMS",
    "AccuracyFn",
    "Admissibility",
    "BenchError",
    "Catalogue",
    "CatalogueError",
    "Measurement",
    "MeasurementError",
    "NoCandidates",
    "Placement",
    "PlacementError",
    "Platform",
    "PlatformValues",
    "RiskBreakdown",
    "Threat",
    "ThreatTerm",
    "TieMarginError",
    "UnknownPlatform",
    "UnknownTaskClass",
    "admissibility",
    "available_platforms",
    "bench",
    "choose",
    "explain_json",
    "load_catalogue",
    "parse_catalogue",
    "print_explain",
    "reference_agreement",
    "render_explain",
    "residual_risk",
    "within_tie",
]

__getattr__ = lazy_exports(__name__, _HOME)
