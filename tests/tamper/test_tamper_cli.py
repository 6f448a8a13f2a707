"""``kontur eval tamper``: pure JSON on ``--json -``, injected detection, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import run_kontur


def test_clean_clip_as_json(pets_path: Path) -> None:
    r = run_kontur("eval", "tamper", "--video", str(pets_path), "--json", "-")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # stdout holds nothing but the JSON
    assert doc["frames"] == 795 and 79 <= doc["seconds"] <= 80
    assert doc["events"] == []
    assert "injected" not in doc
    assert "795 frames" in r.stderr


def test_injected_glare_is_detected(pets_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    r = run_kontur("eval", "tamper", "--video", str(pets_path), "--inject", "glare",
                   "--at", "20", "--seed", "3", "--json", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["injected"] == {"kind": "glare", "at_s": 20.0, "seed": 3}
    assert doc["detected"] is True and 0 < doc["delay_s"] <= 2.0
    kinds = {e["kind"] for e in doc["events"]}
    assert "glare" in kinds
    event = next(e for e in doc["events"] if e["kind"] == "glare")
    assert set(event) == {"kind", "start_s", "end_s", "score", "reason"}
    assert "detected after" in r.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--video", "/nonexistent/c.mp4"], "--video /nonexistent/c.mp4: expected a video file"),
        (["--inject", "smoke", "--at", "1"], "--inject: expected a tamper kind among"),
        (["--inject", "glare", "--at", "-1"], "--at: expected a time >= 0 seconds, got -1.0"),
        (["--inject", "glare"], "--inject and --at: expected both or neither"),
        (["--inject", "glare", "--at", "500"], "--at: expected a time within the clip's"),
    ],
    ids=["missing_file", "unknown_kind", "negative_time", "kind_without_time", "past_the_end"],
)
def test_bad_input_is_one_line(args: list[str], fragment: str, pets_path: Path) -> None:
    if "--video" not in args:
        args = ["--video", str(pets_path), *args]
    r = run_kontur("eval", "tamper", *args, "--json", "-")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kontur: error: "), r.stderr
    assert fragment in lines[0]
    # --json -: stdout stays one JSON document, the error's
    assert json.loads(r.stdout) == {"error": lines[0][len("kontur: error: ") :], "exit_code": 2}
    assert "Traceback" not in r.stderr
