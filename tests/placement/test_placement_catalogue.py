"""The threat catalogue: the built-in one from the paper's Tables 1 and 3, and malformed ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from kontur.config import SlaConfig, load_config
from kontur.placement import (
    CONTOURS,
    PLATFORMS,
    CatalogueError,
    Measurement,
    choose,
    load_catalogue,
    parse_catalogue,
)

VECTORS = Path(__file__).parent / "vectors"

#: Threats whose exposure the paper puts higher on GPU/NPU (Table 1 compute node, Table 3).
ACCELERATOR_THREATS = {
    "node-accelerator-driver",
    "node-cross-context-leak",
    "node-dma-memory",
    "node-closed-driver-update",
    "availability-driver-crash",
}
PLATFORM_INDEPENDENT_CONTOURS = {
    "scene/sensor",
    "camera/firmware",
    "network",
    "model/data",
    "archive/management",
}


def test_builtin_loads_and_cites_tables_1_and_3() -> None:
    cat = load_catalogue()
    assert 12 <= len(cat.threats) <= 16
    for t in cat.threats:
        assert t.source.startswith(("Table 1: ", "Table 3: ")), t.id
        assert t.title and t.rationale
    assert {t.contour for t in cat.threats} == set(CONTOURS)


def test_builtin_exposures_follow_the_paper() -> None:
    cat = load_catalogue()
    by_id = {t.id: t for t in cat.threats}
    assert set(by_id) >= ACCELERATOR_THREATS
    for tid in ACCELERATOR_THREATS:
        e = by_id[tid].e
        assert e.gpu > e.cpu and e.npu > e.cpu, tid
    for t in cat.threats:
        if t.contour in PLATFORM_INDEPENDENT_CONTOURS:
            assert t.e.cpu == t.e.gpu == t.e.npu, t.id
            assert t.m.cpu == t.m.gpu == t.m.npu, t.id
    headroom = [t for t in cat.threats if t.exposure_from == "sla_headroom"]
    assert [t.id for t in headroom] == ["availability-overload"]


def test_builtin_matches_the_config_default_path() -> None:
    assert load_config().placement.catalogue is None  # null = this built-in catalogue


@pytest.mark.parametrize("task_class", load_catalogue().task_classes)
def test_builtin_equal_measurements_cpu_wins(task_class: str) -> None:
    cat = load_catalogue()
    sla = SlaConfig(latency_ms_max=250.0, throughput_fps_min=5.0, accuracy_min=0.8)
    same = {
        p: Measurement(p, 80.0, 20.0, 0.9, "ground-truth F1", 12, 1_700_000_000.0)
        for p in PLATFORMS
    }
    placement = choose("cam1/detect", task_class, same, cat, sla, 0.0)
    assert placement.platform == "cpu"
    assert placement.risk["gpu"] > placement.risk["cpu"]
    assert placement.risk["npu"] > placement.risk["cpu"]
    assert placement.reason.startswith("cpu chosen: admissible and lowest residual risk")


def test_builtin_slow_but_admissible_cpu_still_wins() -> None:
    cat = load_catalogue()
    sla = SlaConfig(latency_ms_max=250.0, throughput_fps_min=5.0, accuracy_min=0.8)
    cands = {
        "cpu": Measurement("cpu", 240.0, 6.0, 0.9, "ground-truth F1", 12, 0.0),
        "gpu": Measurement("gpu", 5.0, 200.0, 0.9, "ground-truth F1", 12, 0.0),
    }
    placement = choose("cam1/detect", "detect-track", cands, cat, sla, 0.10)
    assert placement.platform == "cpu"  # CPU-first whenever the SLA is met (paper, Table 3)


@pytest.mark.parametrize(
    ("vector", "fragments"),
    [
        (
            "weight_out_of_range.yaml",
            ["threat 't-scene'", "key w", "less than or equal to 1", "1.5"],
        ),
        ("platform_missing.yaml", ["threat 't-driver'", "key e.npu", "Field required"]),
        ("unknown_key.yaml", ["threat 't-overload'", "key mitigation", "Extra inputs"]),
        ("number_as_text.yaml", ["threat 't-driver'", "key m.gpu", "valid number"]),
        (
            "negative_exposure.yaml",
            ["threat 't-overload'", "key e.cpu", "greater than or equal to 0"],
        ),
        ("duplicate_id.yaml", ["threat 't-driver'", "key id", "expected unique ids"]),
        ("unknown_task_class.yaml", ["threat 't-scene'", "key a_by_task.face-recognitoin"]),
        ("empty_threats.yaml", ["key threats", "at least 1 item"]),
    ],
)
def test_malformed_catalogue_refused(vector: str, fragments: list[str]) -> None:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(VECTORS / vector)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"catalogue {VECTORS / vector}: ")
    for fragment in fragments:
        assert fragment in message


def test_missing_file_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="expected a readable YAML file, found nothing"):
        load_catalogue(tmp_path / "absent.yaml")


def test_yaml_syntax_error_refused() -> None:
    with pytest.raises(CatalogueError, match="expected valid YAML, found a syntax error at line 3"):
        parse_catalogue("version: 1\nthreats: [unclosed\n", "broken")


def test_top_level_not_a_mapping_refused() -> None:
    with pytest.raises(CatalogueError, match="expected a mapping at top level, got list"):
        parse_catalogue("- 1\n- 2\n")


def test_threat_not_a_mapping_refused() -> None:
    with pytest.raises(CatalogueError, match="threat #0: expected a mapping, got str"):
        parse_catalogue("version: 1\ntask_classes: [x]\nthreats: [oops]\n")


def test_unknown_top_level_key_refused() -> None:
    text = (VECTORS / "tiny.yaml").read_text() + "weights_override: 0\n"
    with pytest.raises(CatalogueError, match="key weights_override: Extra inputs"):
        parse_catalogue(text)


def test_catalogue_is_frozen() -> None:
    cat = load_catalogue()
    with pytest.raises(ValueError, match="frozen"):
        cat.threats[0].w = 0.0
