"""``--inject-fault worker-…``: a compromised worker lies, the verifier disagrees, no ALLOW.

Each run is the whole perimeter (``kontur demo``) on the first 7 s of real footage (PETS09,
re-encoded with its people walking, signed on the fly so that ALLOW is possible) with the
YOLOX-Nano detector. From 3.0 s of stream time (frame 30) the worker rewrites its own results
(:mod:`kontur.worker.faults`): the verifier, looking at the frames itself, must disagree for
the right reason, and no ALLOW may rest on what the lie touched (issue 13 §2, ADR 0025).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import run_kontur, shared
from tests.e2e.pets_clip import pets09_h264, records

from kontur.runtime.faults import WORKER_FAULT_START_S
from kontur.worker.faults import CHURN_TRACK_BASE, PHANTOM_TRACK_ID

pytestmark = pytest.mark.e2e

FPS = 10
FRAMES = 70
ONSET = round(WORKER_FAULT_START_S * FPS)  # the first frame the worker lies about


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PETS09's first 7 s as H.264 in MP4 (GOPs of 2 s), cut from the real footage."""
    return pets09_h264(tmp_path_factory.mktemp("clip") / "pets09_7s.mp4", FRAMES, FPS)


def _demo(tmp_path: Path, clip: Path, fault: str) -> tuple[dict[str, Any], Path]:
    model = shared("models", "yolox_nano.onnx")
    out, data = tmp_path / "s.json", tmp_path / "d"
    r = run_kontur(
        "demo",
        "--source",
        str(clip),
        "--model",
        str(model),
        "--data-dir",
        str(data),
        "--inject-fault",
        fault,
        "--json",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text()), data


#: fault -> a fragment of the reason the verifier must give on a frame the fault touched
EXPECTED = {
    "worker-phantom": "(a phantom?)",
    "worker-suppress": "possible evasion",
    "worker-teleport": "trajectory discontinuity",
    "worker-class-flip": "into a watched class",
    "worker-replay": "track ",
    "worker-freeze": "(a frozen box?)",
    "worker-churn": "was renamed",
}


@pytest.mark.parametrize("fault", list(EXPECTED))
def test_a_lying_worker_is_contradicted_and_never_allowed(
    tmp_path: Path, clip: Path, fault: str
) -> None:
    summary, data = _demo(tmp_path, clip, fault)
    cam = summary["cameras"][0]
    assert summary["fault"] == fault
    assert cam["frames"] == FRAMES
    # the verifier disagrees after the onset, within a second, for the fault's own reason
    disagreed = [
        e
        for e in records(data, "event")
        if e.get("event") == "verifier_disagree" and e["frame_index"] >= ONSET
    ]
    said = [
        (e["frame_index"], r)
        for e in disagreed
        for r in (*e["reasons"], *(x for rs in e["track_reasons"].values() for x in rs))
    ]
    first = min((i for i, r in said if EXPECTED[fault] in r), default=None)
    assert first is not None, said[:5]
    assert first < ONSET + FPS, f"first caught at frame {first}"
    assert cam["verifier"]["disagree"] >= len(disagreed) > 0
    # no ALLOW rests on what the lie touched
    decisions = records(data, "decision")
    allowed = [d for d in decisions if d["outcome"] == "ALLOW"]
    if fault == "worker-phantom":
        assert all(d["track_id"] != PHANTOM_TRACK_ID for d in allowed), allowed
        phantom = [d for d in decisions if d["track_id"] == PHANTOM_TRACK_ID]
        assert phantom and all(d["outcome"] == "OPERATOR" for d in phantom), phantom
    elif fault == "worker-class-flip":
        flipped = {int(t) for e in disagreed for t, rs in e["track_reasons"].items()
                   if any("class" in r for r in rs)}  # fmt: skip
        assert flipped
        late = [d for d in allowed if d["frame_index"] >= ONSET and d["track_id"] in flipped]
        assert not late, late
    else:  # every track is touched from the onset on (or removed, for suppress)
        assert not [d for d in allowed if d["frame_index"] >= ONSET], allowed
    if fault == "worker-churn":  # the dwell followed the people through the new ids (ADR 0042)
        late = [d for d in decisions if d["frame_index"] >= ONSET]
        assert late and all(d["outcome"] == "OPERATOR" for d in late), late
        assert all(d["track_id"] >= CHURN_TRACK_BASE for d in late), late
    assert all("system NORMAL" in d["reasons"] for d in allowed)
    assert run_kontur("archive", "verify", str(data)).returncode == 0
