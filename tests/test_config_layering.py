"""Issue 9, 5d: a user config is laid over the embedded defaults, then validated.

Precedence: embedded defaults < config file < command-line options. Mappings merge key by
key; lists and scalars replace. Unknown keys and malformed YAML are one-line errors.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from kontur.config import load_config, merge_layers
from kontur.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kontur.yaml"
    path.write_text(text)
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    message = str(exc.value)
    assert "\n" not in message and message.startswith(f"config {path}: ")
    return message


def test_a_file_with_only_cameras_is_a_whole_config(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "cameras:\n"
        "  - id: gate-east\n"
        "    source: rtsp://10.0.0.7/live\n"
        "    critical: true\n"
        "  - id: yard\n",
    )
    cfg = load_config(path)
    defaults = load_config(None)
    assert [c.id for c in cfg.cameras] == ["gate-east", "yard"]  # the list replaces cam1
    assert cfg.cameras[0].critical and cfg.cameras[0].source == "rtsp://10.0.0.7/live"
    assert cfg.cameras[1].priority is True  # a field default, not the demo camera's
    # everything else is the embedded defaults
    assert cfg.model_dump(exclude={"cameras"}) == defaults.model_dump(exclude={"cameras"})
    assert set(cfg.actions) == {"alarm", "notify"} and cfg.policies[0].rule == "person-dwell"


def test_a_nested_override_changes_one_leaf_and_keeps_its_siblings(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "placement:\n  sla:\n    latency_ms_max: 100\n"
        "worker:\n  sandbox:\n    memory_mb: 2048\n"
        "actions:\n  notify:\n    critical: false\n  siren:\n    critical: false\n",
    )
    cfg, defaults = load_config(path), load_config(None)
    assert cfg.placement.sla.latency_ms_max == 100
    assert cfg.placement.sla.throughput_fps_min == defaults.placement.sla.throughput_fps_min
    assert cfg.placement.sla.accuracy_min == defaults.placement.sla.accuracy_min
    assert cfg.placement.bench_frames == defaults.placement.bench_frames
    assert cfg.worker.sandbox.memory_mb == 2048
    assert cfg.worker.sandbox.uid == defaults.worker.sandbox.uid
    assert cfg.worker.intra_op_threads == defaults.worker.intra_op_threads
    # a mapping of named entries merges too: a new action, the defaults' ones kept
    assert set(cfg.actions) == {"alarm", "notify", "siren"}
    assert cfg.actions["alarm"].restricted_alternative == "notify"
    assert [c.id for c in cfg.cameras] == ["cam1"]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("sinks:\n  webhok: {url: 'https://h/x'}\n", "sinks.webhok"),
        ("placement:\n  sla:\n    latency_max: 1\n", "placement.sla.latency_max"),
        ("cameras:\n  - id: c\n    sorce: /v.mp4\n", "cameras.0.sorce"),
        ("bogus_key: 1\n", "bogus_key"),
    ],
    ids=["sibling_typo", "deep_typo", "in_a_list", "top_level"],
)
def test_an_unknown_key_is_refused_with_its_path(tmp_path: Path, text: str, key: str) -> None:
    message = _error(_write(tmp_path, text))
    assert f"key {key}: expected a known key" in message and "got an unknown one" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("cameras:\n  - id: c\n    source: [unclosed\n", "expected valid YAML, found a syntax"),
        ("cameras: {id: c\n", "expected valid YAML, found a syntax error at line 2"),
        ("- just\n- a list\n", "expected a mapping at top level, got list"),
        ("", "expected a mapping at top level, got an empty document"),
        ("placement:\n  sla:\n    latency_ms_max: -1\n", "key placement.sla.latency_ms_max"),
        # not a number a check can compare with: NaN passed "> 0", inf made retention never
        (
            "archive:\n  retention_days: .nan\n",
            "key archive.retention_days: Input should be a finite number (found nan)",
        ),
        (
            "archive:\n  retention_days: .inf\n",
            "key archive.retention_days: Input should be a finite number (found inf)",
        ),
        (
            "archive:\n  retention_days_per_camera: {c: .nan}\n",
            "key archive.retention_days_per_camera.c: Input should be a finite",
        ),
        # a zone is normalised to the picture: NaN failed at run time, 1e308 overflowed
        (
            "zones:\n  - id: z\n    polygon: [[.nan, 0], [1, 0], [1, 1]]\n",
            "key zones.0.polygon.0.0: Input should be a finite",
        ),
        (
            "zones:\n  - id: z\n    polygon: [[0, 0], [1e308, 0], [1, 1]]\n",
            "key zones.0.polygon.1.0: Input should be less than or equal to 1",
        ),
        # PyYAML keeps the last of two equal keys: the first, which a reviewer read, was lost
        (
            "api:\n  enabled: false\napi:\n  enabled: true\n",
            "expected each key once, got key 'api' twice at line 3",
        ),
        (
            "archive:\n  witness: a\n  witness: b\n",
            "expected each key once, got key 'witness' twice at line 3",
        ),
    ],
    ids=[
        "yaml_syntax", "yaml_unclosed_flow", "not_a_mapping", "empty", "bad_value", "nan",
        "inf", "nan_per_camera", "nan_zone", "huge_zone", "duplicate_key", "duplicate_nested",
    ],
)  # fmt: skip
def test_a_malformed_file_is_a_one_line_error(tmp_path: Path, text: str, fragment: str) -> None:
    assert fragment in _error(_write(tmp_path, text))


def test_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    assert "expected a readable YAML file, found nothing" in _error(tmp_path / "nope.yaml")


def test_merge_rules_and_inputs_untouched() -> None:
    base = {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "f": None, "g": {"h": 1}}
    over = {"a": {"c": [3], "d": {"x": 2}}, "f": {"y": 1}, "g": None}
    before = copy.deepcopy((base, over))
    assert merge_layers(base, over) == {
        "a": {"b": 1, "c": [3], "d": {"e": 1, "x": 2}},  # lists replace, mappings merge
        "f": {"y": 1},  # a mapping over null replaces it
        "g": None,  # null over a mapping replaces it
    }
    assert (base, over) == before


def test_yaml_merge_keys_still_merge(tmp_path: Path) -> None:
    """``<<: *base`` shares settings between cameras; a key the mapping sets itself overrides
    the merged one (YAML's meaning), and is not a key given twice."""
    text = (
        "cameras:\n"
        "  - &cam {id: a, critical: true, motion_gating: true}\n"
        "  - {<<: *cam, id: b, critical: false}\n"
    )
    cfg = load_config(_write(tmp_path, text))
    got = [(c.id, c.critical, c.motion_gating) for c in cfg.cameras]
    assert got == [("a", True, True), ("b", False, True)]
