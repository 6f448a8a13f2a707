"""``api.extraction`` in the site file (ADR 0031): the query path's quota, PRADA and policy.

Laid over the defaults like every section (ADR 0019); what it does not name keeps today's
defaults; each mistake is one line naming the key's path, what was expected and what was
found. The supervisor hands the section to the API block as it is (``attach_api``), where
the same rules build the :class:`ExtractionSettings` the defence runs on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from kontur.config import load_config
from kontur.errors import ConfigError
from kontur.extraction import ExtractionSettings, OnAlarm, PradaConfig
from kontur.runtime.apiblock import QueryModel, attach_api, listen
from kontur.runtime.wiring import Wiring
from kontur.wire.channel import Outbox


def _site(tmp_path: Path, extraction: Any) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({"site": "s", "api": {"extraction": extraction}}))
    return path


def test_defaults_are_the_defences_own() -> None:
    config = load_config(None)
    assert config.api.extraction == {}
    assert ExtractionSettings.from_mapping(config.api.extraction) == ExtractionSettings()


def test_a_site_sets_the_quota_the_policy_and_prada(tmp_path: Path) -> None:
    config = load_config(
        _site(
            tmp_path,
            {
                "daily_quota": 500,
                "on_alarm": "throttle",
                "throttle_interval_s": 60,
                "prada": {"delta": 0.7, "revisit_alarm": 24},
                "image": {"max_side": 2048},
            },
        )
    )
    settings = ExtractionSettings.from_mapping(config.api.extraction)
    assert (settings.daily_quota, settings.on_alarm) == (500, OnAlarm.THROTTLE)
    assert settings.throttle_interval_s == 60.0 and settings.block_s is None
    assert settings.prada == PradaConfig(delta=0.7, revisit_alarm=24)
    assert (settings.image.max_side, settings.image.max_bytes) == (2048, 8 << 20)


@pytest.mark.parametrize(
    ("extraction", "message"),
    [
        ({"daily_qouta": 5}, "key api.extraction.daily_qouta: expected a known key"),
        ({"daily_quota": 0}, "key api.extraction.daily_quota: expected >= 1, got 0"),
        ({"daily_quota": "lots"}, "key api.extraction.daily_quota: expected a number, got 'lots'"),
        ({"daily_quota": 2.5}, "key api.extraction.daily_quota: expected a whole number, got 2.5"),
        (
            {"on_alarm": "ban"},
            "key api.extraction.on_alarm: expected one of block, throttle, got 'ban'",
        ),
        (
            {"block_s": -5},
            "key api.extraction.block_s: expected a positive number, got -5.0",
        ),
        (
            {"prada": {"delta": 1.5}},
            "key api.extraction.prada.delta: expected 0 < delta < 1, got 1.5",
        ),
        (
            {"prada": {"revisit_window": 0}},
            "key api.extraction.prada.revisit_window: expected a positive count, got 0",
        ),
        ({"prada": {"gamma": 1}}, "key api.extraction.prada.gamma: expected a known key"),
        ({"prada": [1, 2]}, "key api.extraction.prada: expected a mapping, got [1, 2]"),
        (
            {"image": {"max_bytes": 1 << 30}},
            "key api.extraction.image.max_bytes: expected at most 8388608 (the route's body "
            "bound), got 1073741824",
        ),
        (5, "key api.extraction: Input should be a valid dictionary"),
    ],
)
def test_a_mistake_is_one_line_naming_the_key(
    tmp_path: Path, extraction: Any, message: str
) -> None:
    path = _site(tmp_path, extraction)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert text.startswith(f"config {path}: {message}"), text
    assert "\n" not in text


def test_the_supervisor_hands_the_api_its_settings_and_the_sites_model(tmp_path: Path) -> None:
    """``attach_api``: the API's spec carries ``api.extraction`` and the query worker's entry
    (the site's detector, the worker's sandbox policy); the bundle goes on its stdin."""
    config = load_config(_site(tmp_path, {"daily_quota": 7}))
    config = config.model_copy(update={"api": config.api.model_copy(update={"port": 0})})
    data_dir, scratch = tmp_path / "data", tmp_path / "scratch"
    null = os.open(os.devnull, os.O_WRONLY)
    wiring = Wiring([], {}, Outbox(null), {}, {}, [null])
    listener = listen(config.api, data_dir)
    entries = {"detector": "release", "model_id": "m@1", "bundle": [{"name": "release.json"}]}
    try:
        block = attach_api(wiring, listener, config, data_dir, QueryModel(entries, b"B", scratch))
    finally:
        listener.close()
        wiring.close()
    assert block.spec["extraction"] == {"daily_quota": 7}
    assert block.stdin_data == b"B"
    entry = block.spec["query_worker"]
    assert (entry["detector"], entry["model_id"], entry["platform"]) == ("release", "m@1", "cpu")
    assert entry["bundle"] == entries["bundle"]
    assert entry["sandbox"]["scratch_dir"] == str(scratch / "query-worker")
    assert entry["sandbox"]["deny"] == [str(data_dir)]
    assert entry["sandbox"]["required"] == "all"


def test_a_number_too_large_for_a_float_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("api: {extraction: {throttle_interval_s: " + "9" * 400 + "}}\n")
    with pytest.raises(ConfigError, match=r"key api\.extraction: expected finite numbers"):
        load_config(path)
