"""``--inject-fault tamper-…``: a tampered camera is alarmed, archived, degrades, and the gate
allows no automatic critical action on it (issue 13 §1, ADR 0030).

Each run is the whole perimeter (``kontur demo``) on the first 10 s of real footage (PETS09,
re-encoded with GOPs of 2 s, signed on the fly so that ALLOW is possible) with the YOLOX-Nano
detector. From 3.0 s of stream time ingest tampers the decoded frames of cam1 (the worker and
the verifier see a covered or frozen camera; the recording stays the camera's own), and the
camera's tamper monitor must catch it. A clean run is the control: no tamper event, ALLOWs.
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
ONSET = round(TAMPER_FAULT_START_S * FPS)  # the first tampered frame


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PETS09's first 10 s as H.264 in MP4 (GOPs of 2 s), cut from the real footage."""
    return pets09_h264(tmp_path_factory.mktemp("clip") / "pets09_10s.mp4", FRAMES, FPS)


def _demo(tmp_path: Path, clip: Path, *fault: str) -> tuple[dict[str, Any], Path]:
    out, data = tmp_path / "s.json", tmp_path / "d"
    r = run_kontur(
        "demo", "--source", str(clip), "--model", str(shared("models", "yolox_nano.onnx")),
        "--data-dir", str(data), *fault, "--json", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text()), data


@pytest.mark.parametrize(("fault", "kind"), [("tamper-covered", "covered"),
                                             ("tamper-frozen", "frozen")])  # fmt: skip
def test_a_tampered_camera_is_alarmed_degrades_and_never_allowed(
    tmp_path: Path, clip: Path, fault: str, kind: str
) -> None:
    summary, data = _demo(tmp_path, clip, "--inject-fault", fault)
    cam = summary["cameras"][0]
    assert summary["fault"] == fault and cam["frames"] == FRAMES
    assert cam["gops"] == {"AUTHENTIC": 5}  # the recording is the camera's own, signed
    # the summary lists the event, caught within 2 s of the onset
    (event,) = [e for e in cam["tamper"] if e["kind"] == kind]
    assert TAMPER_FAULT_START_S <= event["start_s"] < TAMPER_FAULT_START_S + 2.0, event
    assert event["score"] >= 1.0 and event["reason"]
    # archived as a tamper record, then a degradation naming the trigger
    (start,) = [t for t in records(data, "tamper") if t["kind"] == kind]
    assert (start["camera_id"], start["transition"]) == ("cam1", "start")
    assert start["at_s"] - TAMPER_FAULT_START_S <= 2.0
    states = records(data, "state")
    assert any((s["to"], s["trigger"]) == ("DEGRADED", "camera_tamper") for s in states), states
    trans = summary["degradation"]["transitions"]
    assert ("NORMAL", "DEGRADED", "camera_tamper") in [(t["from"], t["to"], t["trigger"])
                                                      for t in trans]  # fmt: skip
    # the gate: critical actions were asked for, and none was ALLOWed after the onset
    decisions = records(data, "decision")
    critical = [d for d in decisions if d["critical"]]
    assert critical, "expected critical requests (else the checks below prove nothing)"
    late = [d for d in critical if d["frame_index"] >= ONSET and d["outcome"] == "ALLOW"]
    assert not late, late
    refused = [d for d in critical if any(f"camera tamper: {kind} since" in r
                                          for r in d["reasons"])]  # fmt: skip
    assert refused and all(d["outcome"] == "OPERATOR" for d in refused), critical
    assert run_kontur("archive", "verify", str(data)).returncode == 0


def test_a_clean_camera_has_no_tamper_event_and_is_allowed(tmp_path: Path, clip: Path) -> None:
    summary, data = _demo(tmp_path, clip)
    cam = summary["cameras"][0]
    assert cam["tamper"] == [] and records(data, "tamper") == []
    assert summary["degradation"]["transitions"] == []
    assert cam["decisions"]["ALLOW"] > 0  # the tamper check does not refuse a clean camera
    assert run_kontur("archive", "verify", str(data)).returncode == 0
