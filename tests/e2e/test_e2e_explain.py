"""``kontur placement explain`` on real footage: the decision a run would make, measured in the
worker's sandbox. The command line's own process never opens the clip (``av.open``) nor loads
an inference runtime, and leaves nothing behind in its temporary directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import run_kontur_spied, shared
from tests.e2e.conftest import Clip

from kontur.config import load_config

pytestmark = pytest.mark.e2e


def _explain(tmp: Path, *args: str) -> tuple[int, str, str, dict[str, Any]]:
    """Run it with its own empty TMPDIR, which must be empty again afterwards."""
    tmpdir = tmp / "tmpdir"
    tmpdir.mkdir()
    r, spied = run_kontur_spied("placement", "explain", *args, env={"TMPDIR": str(tmpdir)})
    assert list(tmpdir.iterdir()) == []  # the throwaway plan and its scratch are gone
    return r.returncode, r.stdout, r.stderr, spied


def test_explain_benches_in_the_sandbox_and_places_the_task(
    pets09_cut: Clip, tmp_path: Path
) -> None:
    model = shared("models", "yolox_nano.onnx")
    # the site's checkpoint key and witness file: the throwaway plan touches neither
    key, witness = tmp_path / "site" / "checkpoint.key", tmp_path / "site" / "witness.log"
    config = tmp_path / "kontur.yaml"
    config.write_text(f"archive:\n  key: {key}\n  witness: {witness}\n")
    rc, out, err, spied = _explain(
        tmp_path, "--source", str(pets09_cut.path), "--model", str(model),
        "--config", str(config), "--json", "-",
    )  # fmt: skip
    assert rc == 0, err
    assert not key.parent.exists()
    # the clip was opened, and the model loaded and benched on it, in the sandbox only
    assert spied == {"opened": [], "loaded": []}
    doc = json.loads(out)  # stdout is pure JSON
    assert doc["admissible_any"] is True and doc["platform"] in doc["platforms"]
    cpu = doc["platforms"]["cpu"]["measurement"]  # the reference, always benched
    assert cpu["platform"] == "cpu" and cpu["frames"] == load_config(None).placement.bench_frames
    assert cpu["latency_ms"] > 0 and cpu["throughput_fps"] > 0
    assert f"placement → {doc['platform']}" in " ".join(err.split())  # the tables, on stderr


def test_explain_plans_the_first_camera_only(tmp_path: Path) -> None:
    """A site's first camera without a source is benched on the demo clip; the others (here
    an RTSP camera nobody answers for) are not probed."""
    config = tmp_path / "site.yaml"
    config.write_text(
        "cameras:\n  - id: cam1\n  - id: cam2\n    source: rtsp://127.0.0.1:9/nobody\n"
    )
    rc, out, err, spied = _explain(tmp_path, "--config", str(config), "--json", "-")
    assert rc == 0, err
    assert spied["opened"] == []
    assert json.loads(out)["task"] == "detect-track:cam1"


def test_explain_on_a_corrupt_clip_is_one_line_and_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 40)
    rc, out, err, spied = _explain(tmp_path, "--source", str(junk))
    lines = err.strip().splitlines()
    assert rc == 2 and out == "" and spied == {"opened": [], "loaded": []}
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith(f"kontur: error: source {junk}: expected a video container")
