"""Explaining a placement: rich tables and the JSON form."""

from __future__ import annotations

import json
import math

from rich.console import Console

from kontur.config import SlaConfig
from kontur.placement import (
    PLATFORMS,
    Measurement,
    Placement,
    choose,
    explain_json,
    load_catalogue,
    print_explain,
    render_explain,
)

SLA = SlaConfig(latency_ms_max=250.0, throughput_fps_min=5.0, accuracy_min=0.8)


def placement(cpu_latency: float = 120.0) -> Placement:
    cands = {
        "cpu": Measurement("cpu", cpu_latency, 8.0, 0.9, "ground-truth F1", 12, 0.0),
        "gpu": Measurement("gpu", 9.0, 110.0, 0.88, "agreement with cpu reference", 12, 0.0),
        "npu": None,
    }
    return choose("cam1/detect", "detect-track", cands, load_catalogue(), SLA, 0.10)


def rendered(p: Placement) -> str:
    console = Console(record=True, width=220, color_system=None)
    console.print(render_explain(p))
    return console.export_text()


def test_render_explain_names_every_threat_and_platform() -> None:
    p = placement()
    text = rendered(p)
    for threat in load_catalogue().threats:
        assert threat.id in text
    for platform in PLATFORMS:
        assert platform in text
    assert "L ms" in text and "≤ 250" in text
    assert "not present on this machine" in text
    assert "placement → cpu: cpu chosen: admissible and lowest residual risk" in text
    assert f"{p.breakdown['gpu'].total:.3f}" in text


def test_render_explain_flags_degraded() -> None:
    assert placement(cpu_latency=400.0).platform == "gpu"
    slow = choose(
        "cam1/detect",
        "detect-track",
        {"cpu": Measurement("cpu", 400.0, 2.0, 0.9, "ground-truth F1", 12, 0.0)},
        load_catalogue(),
        SLA,
    )
    text = rendered(slow)
    assert "DEGRADED placement → cpu" in text
    assert "latency 400.0 ms > Lmax 250.0 ms" in text


def test_print_explain_to_given_console() -> None:
    console = Console(record=True, width=220, color_system=None)
    print_explain(placement(), console)
    assert "node-accelerator-driver" in console.export_text()


def test_explain_json_is_complete_and_serialisable() -> None:
    p = placement()
    doc = json.loads(json.dumps(explain_json(p)))
    assert doc["platform"] == "cpu"
    assert doc["admissible_any"] is True
    assert doc["sla"] == {"latency_ms_max": 250.0, "throughput_fps_min": 5.0, "accuracy_min": 0.8}
    assert set(doc["platforms"]) == set(PLATFORMS)
    assert doc["platforms"]["npu"]["measurement"] is None
    assert doc["platforms"]["npu"]["reasons"] == ["not present on this machine"]
    gpu_terms = doc["platforms"]["gpu"]["terms"]
    assert len(gpu_terms) == len(load_catalogue().threats)
    assert math.fsum(t["contribution"] for t in gpu_terms) == doc["platforms"]["gpu"]["risk"]
    assert set(gpu_terms[0]) == {"threat_id", "w", "a", "e", "m", "contribution", "exposure_basis"}


def test_narrow_console_gets_one_table_per_platform() -> None:
    p = placement()
    console = Console(record=True, width=80, color_system=None)
    print_explain(p, console)
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    for platform in PLATFORMS:
        assert f"R_j({platform}) = {p.breakdown[platform].total:.3f}" in text
    for threat in load_catalogue().threats:
        assert threat.id in text  # never truncated to "node-acc…"
