"""R_j(p), admissibility and the choice (paper, "Модель адаптивного доверенного контура")."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest

from kontur.config import SlaConfig
from kontur.placement import (
    NOT_PRESENT,
    Catalogue,
    Measurement,
    MeasurementError,
    NoCandidates,
    TieMarginError,
    UnknownPlatform,
    UnknownTaskClass,
    admissibility,
    choose,
    parse_catalogue,
    residual_risk,
    within_tie,
)

MeasurementFactory = Callable[..., Measurement]


def one_threat(e_cpu: float, e_gpu: float, e_npu: float = 1.0) -> Catalogue:
    """A catalogue where R_p is exactly e_p (w = a = 1, m = 0)."""
    return parse_catalogue(
        f"""
version: 1
task_classes: [detect-track]
threats:
  - id: only
    title: only threat
    contour: compute node
    source: "Table 3: trusted base"
    w: 1.0
    a: 1.0
    e: {{cpu: {e_cpu}, gpu: {e_gpu}, npu: {e_npu}}}
    m: {{cpu: 0.0, gpu: 0.0, npu: 0.0}}
    rationale: test
"""
    )


# --- residual risk -----------------------------------------------------------------------------


def test_hand_computed_risk_cpu(
    tiny: Catalogue, sla: SlaConfig, measured: MeasurementFactory
) -> None:
    b = residual_risk(tiny, "detect-track", "cpu", measured("cpu", latency_ms=125.0), sla)
    # t-driver 0.5·1·0.25·0.5 + t-scene 0.75·0.5·0.5·0.5 + t-overload 0.5·1·(125/250)·0.5
    assert [t.contribution for t in b.terms] == [0.0625, 0.09375, 0.125]
    assert b.total == 0.28125
    assert b.platform == "cpu"


def test_hand_computed_risk_gpu_and_task_override(
    tiny: Catalogue, sla: SlaConfig, measured: MeasurementFactory
) -> None:
    gpu = measured("gpu", latency_ms=62.5)
    assert residual_risk(tiny, "detect-track", "gpu", gpu, sla).total == 0.28125 + 0.09375 + 0.0625
    face = residual_risk(tiny, "face-recognition", "gpu", gpu, sla)
    scene = next(t for t in face.terms if t.threat_id == "t-scene")
    assert (scene.w, scene.a, scene.e, scene.m, scene.contribution) == (0.75, 1.0, 0.5, 0.5, 0.1875)
    assert face.total == 0.28125 + 0.1875 + 0.0625


@pytest.mark.parametrize(
    ("latency_ms", "expected_e"),
    [(0.0, 0.0), (50.0, 0.2), (200.0, 0.8), (250.0, 1.0), (500.0, 1.0)],
)
def test_sla_headroom_exposure_from_measured_latency(
    tiny: Catalogue,
    sla: SlaConfig,
    measured: MeasurementFactory,
    latency_ms: float,
    expected_e: float,
) -> None:
    b = residual_risk(tiny, "detect-track", "cpu", measured("cpu", latency_ms=latency_ms), sla)
    term = next(t for t in b.terms if t.threat_id == "t-overload")
    assert term.e == pytest.approx(expected_e)
    assert term.exposure_basis.startswith("headroom")
    assert f"{latency_ms:.1f} ms / Lmax 250.0 ms" in term.exposure_basis


def test_sla_headroom_uses_catalogue_prior_without_measurement(
    tiny: Catalogue, sla: SlaConfig
) -> None:
    b = residual_risk(tiny, "detect-track", "gpu", None, sla)
    term = next(t for t in b.terms if t.threat_id == "t-overload")
    assert term.e == 0.25
    assert term.exposure_basis == "catalogue prior (no measurement)"


def test_slow_cpu_carries_more_availability_risk(
    tiny: Catalogue, sla: SlaConfig, measured: MeasurementFactory
) -> None:
    fast = residual_risk(tiny, "detect-track", "cpu", measured("cpu", latency_ms=25.0), sla)
    slow = residual_risk(tiny, "detect-track", "cpu", measured("cpu", latency_ms=225.0), sla)
    assert slow.total - fast.total == pytest.approx(0.5 * 1.0 * (0.9 - 0.1) * 0.5)


def test_unknown_task_class_refused(tiny: Catalogue, sla: SlaConfig) -> None:
    with pytest.raises(UnknownTaskClass, match="got 'detect-trak'"):
        residual_risk(tiny, "detect-trak", "cpu", None, sla)


def test_unknown_platform_refused(tiny: Catalogue, sla: SlaConfig) -> None:
    with pytest.raises(UnknownPlatform, match="got 'tpu'"):
        residual_risk(tiny, "detect-track", "tpu", None, sla)


def test_measurement_for_another_platform_refused(
    tiny: Catalogue, sla: SlaConfig, measured: MeasurementFactory
) -> None:
    with pytest.raises(MeasurementError, match="expected a measurement for gpu, got one for cpu"):
        residual_risk(tiny, "detect-track", "gpu", measured("cpu"), sla)


# --- admissibility -----------------------------------------------------------------------------


def test_admissible_when_every_limit_met(sla: SlaConfig, measured: MeasurementFactory) -> None:
    a = admissibility(measured("cpu", latency_ms=250.0, throughput_fps=5.0, accuracy=0.8), sla)
    assert a.admissible is True
    assert a.reasons == ()


def test_missing_platform_is_not_present(sla: SlaConfig) -> None:
    a = admissibility(None, sla)
    assert a.admissible is False
    assert a.reasons == (NOT_PRESENT,)
    assert "not present" in a.reasons[0]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"latency_ms": 312.0}, "latency 312.0 ms > Lmax 250.0 ms"),
        ({"throughput_fps": 3.2}, "throughput 3.2 fps < Vmin 5.0 fps"),
        ({"accuracy": 0.71}, "accuracy 0.71 < Amin 0.80 (ground-truth F1)"),
        ({"accuracy": None}, "accuracy not measured, Amin 0.80"),
        ({"latency_ms": 250.01}, "latency 250.01 ms > Lmax 250.0 ms"),
    ],
)
def test_inadmissible_reasons(
    sla: SlaConfig, measured: MeasurementFactory, kwargs: dict[str, float | None], fragment: str
) -> None:
    a = admissibility(measured("cpu", **kwargs), sla)
    assert a.admissible is False
    assert a.reasons == (fragment,)


def test_every_missed_limit_is_listed(sla: SlaConfig, measured: MeasurementFactory) -> None:
    a = admissibility(measured("gpu", latency_ms=400.0, throughput_fps=1.0, accuracy=0.5), sla)
    assert len(a.reasons) == 3


def test_unmeasured_accuracy_passes_only_when_no_accuracy_required(
    measured: MeasurementFactory,
) -> None:
    lax = SlaConfig(latency_ms_max=250.0, throughput_fps_min=5.0, accuracy_min=0.0)
    assert admissibility(measured("cpu", accuracy=None), lax).admissible is True


# --- the choice --------------------------------------------------------------------------------


def test_cpu_chosen_on_tie_within_margin(sla: SlaConfig, measured: MeasurementFactory) -> None:
    cat = one_threat(e_cpu=0.54, e_gpu=0.5)
    p = choose(
        "t", "detect-track", {"cpu": measured("cpu"), "gpu": measured("gpu")}, cat, sla, 0.10
    )
    assert p.platform == "cpu"
    assert p.admissible_any is True
    assert p.reason.startswith(
        "cpu chosen by tie margin 10%: R_cpu=0.540 within 10% of gpu R=0.500"
    )


def test_tie_margin_boundary_is_exact(sla: SlaConfig, measured: MeasurementFactory) -> None:
    # In binary floats 0.1 · 1.15 = 0.11499999999999999 < 0.115; as decimals it is exactly 0.115.
    assert not 0.115 <= 0.1 * (1 + 0.15)
    cat = one_threat(e_cpu=0.115, e_gpu=0.1)
    p = choose(
        "t", "detect-track", {"cpu": measured("cpu"), "gpu": measured("gpu")}, cat, sla, 0.15
    )
    assert p.platform == "cpu"
    assert "tie margin 15%" in p.reason


def test_absolute_tie_with_zero_margin(sla: SlaConfig, measured: MeasurementFactory) -> None:
    assert within_tie(0.5 + 5e-10, 0.5, 0.0)
    assert not within_tie(0.5 + 1e-6, 0.5, 0.0)
    cat = one_threat(e_cpu=0.5, e_gpu=0.5)
    p = choose("t", "detect-track", {"cpu": measured("cpu"), "gpu": measured("gpu")}, cat, sla, 0.0)
    assert p.platform == "cpu"


def test_gpu_chosen_when_lower_by_more_than_margin(
    sla: SlaConfig, measured: MeasurementFactory
) -> None:
    cat = one_threat(e_cpu=0.56, e_gpu=0.5)
    p = choose(
        "t", "detect-track", {"cpu": measured("cpu"), "gpu": measured("gpu")}, cat, sla, 0.10
    )
    assert p.platform == "gpu"
    assert p.reason.startswith("gpu chosen: admissible and lowest residual risk R=0.500")
    assert "cpu R=0.560, admissible but beyond the 10% tie margin" in p.reason


def test_gpu_chosen_when_cpu_over_lmax(sla: SlaConfig, measured: MeasurementFactory) -> None:
    cat = one_threat(e_cpu=0.1, e_gpu=0.9)  # the cpu is far safer, but too slow
    cands = {"cpu": measured("cpu", latency_ms=312.0), "gpu": measured("gpu", latency_ms=20.0)}
    p = choose("t", "detect-track", cands, cat, sla, 0.10)
    assert p.platform == "gpu"
    assert p.admissible == {"cpu": False, "gpu": True, "npu": False}
    assert "cpu R=0.100, latency 312.0 ms > Lmax 250.0 ms" in p.reason
    assert "npu R=1.000, not present on this machine" in p.reason


def test_nothing_admissible_falls_back_to_cpu(sla: SlaConfig, measured: MeasurementFactory) -> None:
    cat = one_threat(e_cpu=0.9, e_gpu=0.1)
    cands = {"cpu": measured("cpu", latency_ms=400.0), "gpu": measured("gpu", accuracy=0.5)}
    p = choose("t", "detect-track", cands, cat, sla, 0.10)
    assert p.platform == "cpu"
    assert p.admissible_any is False
    assert p.degraded is True
    assert p.reason.startswith("cpu chosen as degraded fail-safe: no platform is admissible")
    assert "latency 400.0 ms > Lmax 250.0 ms" in p.reason
    assert "gpu R=0.100, accuracy 0.50 < Amin 0.80" in p.reason


def test_missing_platforms_count_as_not_present(
    sla: SlaConfig, measured: MeasurementFactory
) -> None:
    cat = one_threat(e_cpu=0.9, e_gpu=0.1, e_npu=0.1)
    p = choose("t", "detect-track", {"cpu": measured("cpu"), "gpu": None}, cat, sla, 0.10)
    assert p.platform == "cpu"
    assert p.admissible == {"cpu": True, "gpu": False, "npu": False}
    assert p.measurements["npu"] is None
    assert p.admissibility["gpu"].reasons == ("not present on this machine",)
    assert p.reason == (
        "cpu chosen: admissible and lowest residual risk R=0.900 "
        "(gpu R=0.100, not present on this machine; npu R=0.100, not present on this machine)"
    )


def test_lowest_of_gpu_and_npu_wins(sla: SlaConfig, measured: MeasurementFactory) -> None:
    cat = one_threat(e_cpu=0.9, e_gpu=0.6, e_npu=0.4)
    cands = {
        "cpu": measured("cpu", latency_ms=300.0),
        "gpu": measured("gpu"),
        "npu": measured("npu"),
    }
    p = choose("t", "detect-track", cands, cat, sla, 0.10)
    assert p.platform == "npu"
    assert "gpu R=0.600, admissible" in p.reason


def test_risk_rounded_and_summary_exact(
    tiny: Catalogue, sla: SlaConfig, measured: MeasurementFactory
) -> None:
    p = choose("cam1/detect", "detect-track", {"cpu": measured("cpu", latency_ms=125.0)}, tiny, sla)
    assert p.risk["cpu"] == 0.2812  # 0.28125 rounded to 4 decimals (half to even)
    assert p.breakdown["cpu"].total == 0.28125
    summary = p.to_summary()
    assert set(summary) == {"task", "platform", "risk", "admissible", "reason"}
    assert summary["task"] == "cam1/detect"
    assert set(summary["risk"]) == {"cpu", "gpu", "npu"}
    json.dumps(summary)


def test_empty_candidates_refused(tiny: Catalogue, sla: SlaConfig) -> None:
    with pytest.raises(NoCandidates, match="expected at least one candidate platform"):
        choose("t", "detect-track", {}, tiny, sla, 0.1)


@pytest.mark.parametrize("margin", [-0.1, 1.5, math.nan, math.inf])
def test_bad_tie_margin_refused(
    tiny: Catalogue, sla: SlaConfig, measured: MeasurementFactory, margin: float
) -> None:
    with pytest.raises(TieMarginError, match=r"expected a tie margin in \[0, 1\]"):
        choose("t", "detect-track", {"cpu": measured("cpu")}, tiny, sla, margin)


def test_candidate_filed_under_wrong_platform_refused(
    tiny: Catalogue, sla: SlaConfig, measured: MeasurementFactory
) -> None:
    with pytest.raises(MeasurementError, match="candidate gpu: expected a measurement for gpu"):
        choose("t", "detect-track", {"gpu": measured("cpu")}, tiny, sla, 0.1)


def test_unknown_candidate_platform_refused(
    tiny: Catalogue, sla: SlaConfig, measured: MeasurementFactory
) -> None:
    with pytest.raises(UnknownPlatform, match="got 'tpu'"):
        choose("t", "detect-track", {"cpu": measured("cpu"), "tpu": None}, tiny, sla, 0.1)
