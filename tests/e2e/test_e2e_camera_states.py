"""Per-camera degradation states end to end (ADR 0040): with two cameras, a covered cam1
degrades cam1 only, and the gate still ALLOWs critical automatic actions on cam2.

One run of the whole perimeter (``kontur demo --inject-fault tamper-covered``, which tampers
the first camera's decoded frames from 3.0 s of stream time) on two cameras that both watch
the first 10 s of real footage (PETS09, GOPs of 2 s; cam1's mirrored, so that each camera
has its own bitstream; each signed on the fly by its own demo camera so that ALLOW is
possible), paced at the clip's frame rate so that both cameras run side by side, with the
YOLOX-Nano detector.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import run_kontur, shared
from tests.e2e.pets_clip import pets09_h264, records

from kontur.runtime.tamper_faults import TAMPER_FAULT_START_S

pytestmark = pytest.mark.e2e

FPS = 10
FRAMES = 100
ONSET = round(TAMPER_FAULT_START_S * FPS)  # the first tampered frame of cam1


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The two-camera demo with cam1 covered: its summary and data directory."""
    tmp = tmp_path_factory.mktemp("camstates")
    clip = pets09_h264(tmp / "pets09_10s.mp4", FRAMES, FPS)
    # cam1 mirrored: its own bitstream (the same GOPs on two cameras are REPLAYED on the second)
    mirrored = pets09_h264(tmp / "mirrored.mp4", FRAMES, FPS, mirror=True)
    cfg = tmp / "two.yaml"
    cfg.write_text(
        f"cameras:\n  - id: cam1\n    source: {mirrored}\n  - id: cam2\n    source: {clip}\n"
    )
    out, data = tmp / "s.json", tmp / "d"
    r = run_kontur(
        "demo", "--config", str(cfg), "--model", str(shared("models", "yolox_nano.onnx")),
        "--data-dir", str(data), "--inject-fault", "tamper-covered", "--json", str(out),
        "--realtime", timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text()), data


def _critical(data: Path, cam: str) -> list[dict[str, Any]]:
    return [d for d in records(data, "decision") if d["critical"] and d["camera_id"] == cam]


def test_the_covered_camera_degrades_alone(run: tuple[dict[str, Any], Path]) -> None:
    summary, data = run
    assert [c["frames"] for c in summary["cameras"]] == [FRAMES, FRAMES]
    states = records(data, "state")
    assert ("cam1", "NORMAL", "DEGRADED", "camera_tamper") in [
        (s.get("camera"), s["from"], s["to"], s["trigger"]) for s in states
    ], states
    assert not [s for s in states if s.get("camera") == "cam2"], states  # cam2 never moved
    assert not [s for s in states if s["trigger"] == "camera_tamper" and "camera" not in s]
    # the operator's view (the summary's top-level state): the most severe of all
    assert summary["degradation"]["state"] == "DEGRADED"
    assert run_kontur("archive", "verify", str(data)).returncode == 0


def test_the_healthy_camera_keeps_its_automatic_decisions(
    run: tuple[dict[str, Any], Path],
) -> None:
    _, data = run
    (degraded,) = [s for s in records(data, "state") if s.get("camera") == "cam1"][:1]
    on_cam1, on_cam2 = _critical(data, "cam1"), _critical(data, "cam2")
    assert on_cam1 and on_cam2, "expected critical requests on both cameras"
    assert not [d for d in on_cam1 if d["frame_index"] >= ONSET and d["outcome"] == "ALLOW"]
    allowed = [d for d in on_cam2 if d["outcome"] == "ALLOW" and d["at"] >= degraded["at"]]
    assert allowed, on_cam2  # decided while cam1 was DEGRADED, and still ALLOWed
    assert all("camera_tamper" not in " ".join(d["reasons"]) for d in on_cam2)


def test_the_summary_shows_each_cameras_state(run: tuple[dict[str, Any], Path]) -> None:
    summary, _ = run
    assert [(c["id"], c["state"]) for c in summary["cameras"]] == [
        ("cam1", "DEGRADED"),
        ("cam2", "NORMAL"),
    ]
    assert summary["degradation"]["site_state"] == "NORMAL"
    cams = [t.get("camera") for t in summary["degradation"]["transitions"]]
    assert "cam1" in cams and "cam2" not in cams
