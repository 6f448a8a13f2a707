"""``--inject-fault`` for issue 13 §3's triggers: an unapproved runtime or driver, an
accelerator reset, results that drift. Each run is the whole perimeter (``kontur demo``) on
real footage with YOLOX-Nano (a 30 s cut of PETS09 where the whole clip is not needed);
recording never stops, no ALLOW outside NORMAL.

- ``runtime-unapproved``: the runtime's package is upgraded under the running site (as the
  supervisor's own probe sees it) → ``driver_unapproved`` → SAFE;
- ``driver-unapproved``: the task runs on a simulated accelerator whose driver is reloaded at
  another version → SAFE, and the worker moves to the CPU;
- ``accelerator-reset``: the simulated accelerator's EP fails → the worker exits, the
  supervisor raises ``accelerator_reset`` and restarts it on the CPU, then recovers;
- an allow-list that does not approve this machine's runtime: SAFE from the start;
- ``drift-classes`` (PETS09 at 5 fps, there and back): new people are reported as dogs once
  the drift baseline is learnt (a short baseline, set in the config) → the verifier
  disagrees with ``drift:`` → ``anomalous_results``.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import run_kontur, shared
from tests.e2e.conftest import Clip
from tests.e2e.pets_clip import pets09_h264, records

from kontur.runtime.trigger_faults import SIM_DRIVER

pytestmark = pytest.mark.e2e


def _demo(tmp_path: Path, source: Path, *args: str) -> tuple[dict[str, Any], Path]:
    model = shared("models", "yolox_nano.onnx")
    out, data = tmp_path / "s.json", tmp_path / "d"
    r = run_kontur(
        "demo", "--source", str(source), "--model", str(model), "--data-dir", str(data),
        "--json", str(out), *args, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text()), data


def _pets() -> Path:
    return shared("video", "pets09_s2l1_480x360.avi")


def _worker(summary: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in summary["processes"] if p["name"] == "worker")


def _events(data: Path, name: str) -> list[dict[str, Any]]:
    return [e for e in records(data, "event") if e.get("event") == name]


def _no_allow_outside_normal(data: Path) -> list[dict[str, Any]]:
    decisions = records(data, "decision")
    allowed = [d for d in decisions if d["outcome"] == "ALLOW"]
    assert all("system NORMAL" in d["reasons"] for d in allowed), allowed
    return allowed


def test_a_runtime_upgraded_under_the_site_takes_it_to_safe(
    tmp_path: Path, pets09_cut: Clip
) -> None:
    summary, data = _demo(tmp_path, pets09_cut.path, "--inject-fault", "runtime-unapproved")
    first = summary["degradation"]["transitions"][0]
    assert (first["from"], first["to"], first["trigger"]) == ("NORMAL", "SAFE", "driver_unapproved")
    assert "as found at start (not listed in placement.allowlist.runtimes)" in first["detail"]
    assert first["detail"].endswith(".post1-unapproved")
    assert summary["degradation"]["state"] == "SAFE"  # no lapse: only an approval clears it
    cam = summary["cameras"][0]
    assert cam["frames"] == pets09_cut.frames and sum(cam["gops"].values()) == pets09_cut.gops
    [checked] = _events(data, "stack_checked")
    cpu = next(v for v in checked["verdicts"] if v["platform"] == "cpu")
    assert cpu["approved"] and cpu["components"]  # the facts the supervisor read itself
    _no_allow_outside_normal(data)
    assert run_kontur("archive", "verify", str(data)).returncode == 0


def test_a_driver_reloaded_at_another_version_moves_the_task_to_the_cpu(
    tmp_path: Path, pets09_cut: Clip
) -> None:
    summary, data = _demo(tmp_path, pets09_cut.path, "--inject-fault", "driver-unapproved")
    [simulated] = _events(data, "simulated_accelerator")
    assert simulated["platform"] == "gpu" and simulated["driver"] == {SIM_DRIVER: "1.0"}
    first = summary["degradation"]["transitions"][0]
    assert (first["from"], first["to"], first["trigger"]) == ("NORMAL", "SAFE", "driver_unapproved")
    assert first["detail"] == f"driver {SIM_DRIVER} of gpu: expected a version in ['1.0'], got 1.1"
    worker = _worker(summary)
    assert worker["platform"] == "cpu" and worker["restarts"] == 1
    [moved] = _events(data, "worker_restarted")
    assert moved["platform"] == "cpu" and moved["why"] == "moved to the CPU (degradation)"
    # the GPU's driver is still not approved: SAFE holds after the move
    assert summary["degradation"]["state"] == "SAFE"
    assert summary["cameras"][0]["frames"] == pets09_cut.frames
    _no_allow_outside_normal(data)


def test_an_accelerator_reset_moves_the_worker_to_the_cpu_and_recovers(
    tmp_path: Path, pets09_cut: Clip
) -> None:
    summary, data = _demo(tmp_path, pets09_cut.path, "--inject-fault", "accelerator-reset")
    first = summary["degradation"]["transitions"][0]
    assert (first["from"], first["to"], first["trigger"]) == (
        "NORMAL",
        "DEGRADED",
        "accelerator_reset",
    )
    assert first["detail"] == "worker on gpu: its execution provider failed (exit 75)"
    assert summary["degradation"]["state"] == "NORMAL"  # a reset lapses; the worker stays put
    worker = _worker(summary)
    assert worker["platform"] == "cpu" and worker["restarts"] == 1
    [reset] = _events(data, "accelerator_reset")
    assert reset["platform"] == "gpu"
    cam = summary["cameras"][0]
    assert cam["frames"] == pets09_cut.frames and sum(cam["gops"].values()) == pets09_cut.gops
    # the restarted worker analysed the rest of the clip on the CPU, to its last GOP (the
    # first one may have sent a GOP's batch from the accelerator before its EP failed; none
    # came after)
    batches = records(data, "detections")
    platforms = [b["platform"] for b in batches]
    assert "cpu" in platforms and set(platforms[platforms.index("cpu") :]) == {"cpu"}
    last = max(batches, key=lambda b: b["gop_index"])
    assert last["gop_index"] == pets09_cut.gops - 1 and last["frames"] > 0
    _no_allow_outside_normal(data)
    assert run_kontur("archive", "verify", str(data)).returncode == 0


def test_a_runtime_the_site_does_not_approve_is_safe_from_the_start(tmp_path: Path) -> None:
    clip = pets09_h264(tmp_path / "pets_7s.mp4", 70, 10)
    config = tmp_path / "kontur.yaml"
    config.write_text("placement:\n  allowlist:\n    runtimes:\n      onnxruntime: ['0.1.*']\n")
    summary, data = _demo(tmp_path, clip, "--config", str(config))
    first = summary["degradation"]["transitions"][0]
    assert (first["from"], first["to"], first["trigger"]) == ("NORMAL", "SAFE", "driver_unapproved")
    assert "runtime onnxruntime: expected a version in ['0.1.*']" in first["detail"]
    cpu = next(v for v in summary["stack"]["verdicts"] if v["platform"] == "cpu")
    assert not cpu["approved"]
    assert summary["cameras"][0]["frames"] == 70  # recording goes on, analysis on the CPU
    assert _no_allow_outside_normal(data) == []


#: Frame rate of the drift clip: every other frame of PETS09 (10 fps), half the inference.
DRIFT_FPS = 5


def _palindrome(out: Path) -> int:
    """PETS09 at 5 fps played forwards then backwards (159 s, no cut at the turn) as H.264;
    returns its frames."""
    av = pytest.importorskip("av")
    with av.open(str(_pets())) as inp:
        frames = [f.to_ndarray(format="bgr24") for f in inp.decode(video=0)][::2]
    with av.open(str(out), "w") as mp4:
        stream = mp4.add_stream("libx264", rate=DRIFT_FPS)
        stream.width, stream.height, stream.pix_fmt = 480, 360, "yuv420p"
        stream.options = {"g": str(2 * DRIFT_FPS), "bf": "0", "crf": "20"}
        both = frames + frames[::-1]
        for i, bgr in enumerate(both):
            frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, DRIFT_FPS)
            for packet in stream.encode(frame):
                mp4.mux(packet)
        for packet in stream.encode(None):
            mp4.mux(packet)
    return len(both)


DRIFT_CONFIG = """\
verifier:
  drift:            # a one-minute baseline: this clip is 159 s long
    step_s: 5
    window_s: 20
    guard_s: 5
    baseline_s: 60
    false_alarms_per_day: 1
"""


def test_results_that_drift_degrade_the_camera(tmp_path: Path) -> None:
    config = tmp_path / "kontur.yaml"
    config.write_text(DRIFT_CONFIG)
    clip = tmp_path / "pets_there_and_back.mp4"
    frames = _palindrome(clip)
    summary, data = _demo(
        tmp_path, clip, "--config", str(config), "--inject-fault", "drift-classes"
    )
    onset = 60.0 + 20.0  # baseline_s + window_s: kontur.runtime.trigger_faults
    first = summary["degradation"]["transitions"][0]
    assert (first["from"], first["to"], first["trigger"]) == (
        "NORMAL",
        "DEGRADED",
        "anomalous_results",
    )
    assert first["detail"].startswith("cam1: drift: the last ")
    # people gone from the person group, and dogs in the other one: either side says it
    assert "class mix test" in first["detail"]
    assert ": person 0% of " in first["detail"] or ": other " in first["detail"]
    said = [
        e["frame_index"]
        for e in _events(data, "verifier_disagree")
        if any(r.startswith("drift:") for r in e["reasons"])
    ]
    assert said, "expected the verifier to say drift on the archived disagreements"
    # after the onset, within a minute
    assert onset * DRIFT_FPS <= min(said) <= (onset + 60.0) * DRIFT_FPS
    assert summary["cameras"][0]["frames"] == frames
    _no_allow_outside_normal(data)
