"""The sandboxed decoder in the real perimeter (ADR 0038): ``kontur demo --inject-fault
decoder-crash`` kills the first camera's decoder mid-GOP. Recording goes on, the loss is a
``block_failed`` trigger and a ``decoder`` record, the GOP's verdict names it, and the next
GOP decodes in a fresh, fully isolated decoder. ``unsafe_in_process`` decodes in ingest and
says so.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import run_kontur
from tests.e2e.pets_clip import pets09_h264, records

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        sys.platform != "linux" or os.geteuid() != 0,
        reason="the decoder sandbox is the worker's (Linux); these tests run as root, as CI does",
    ),
]

FRAMES = 80  # 8 s at 10 fps, GOPs of 2 s: the crash at 3 s falls inside GOP 1


def _demo(tmp_path: Path, *args: str) -> tuple[dict[str, Any], Path]:
    clip = pets09_h264(tmp_path / "pets.mp4", FRAMES)
    data = tmp_path / "data"
    run = run_kontur("demo", "--source", str(clip), "--data-dir", str(data),
                     "--json", str(tmp_path / "s.json"), *args, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    return json.loads((tmp_path / "s.json").read_text()), data


def test_a_crashed_decoder_is_replaced_and_recording_goes_on(tmp_path: Path) -> None:
    summary, data = _demo(tmp_path, "--inject-fault", "decoder-crash")
    cam = summary["cameras"][0]
    assert cam["frames"] == FRAMES  # every frame accounted for, decoded or not
    assert sum(cam["gops"].values()) == FRAMES // 20
    dec = cam["decoder"]
    assert (dec["isolation"], dec["starts"], dec["losses"]) == ("full", 2, 1), dec
    assert dec["last"].startswith("crashed")
    triggers = [(t["trigger"], t["detail"]) for t in summary["degradation"]["transitions"]]
    assert ("block_failed", "cam1: decoder crashed: it exited (exit -9)") in triggers
    verdicts = {v["verdict"]["gop_index"]: v["verdict"] for v in records(data, "verdict")}
    hit = verdicts[1]
    assert hit["verdict"] == "NOT_AUTHENTIC"
    assert any(r.startswith("sandboxed decoder crashed") for r in hit["reasons"]), hit
    assert any("do not decode" in r for r in hit["reasons"]), hit
    for later in (2, 3):
        assert verdicts[later]["verdict"] == "AUTHENTIC", verdicts[later]
    events = [e for e in records(data, "event") if e.get("event") == "decoder"]
    assert [e["kind"] for e in events] == ["started", "crashed", "started"]
    assert events[0]["isolation"] == "full" and events[1]["camera_id"] == "cam1"
    # the frames of the later GOPs were decoded and analysed
    assert cam["verifier"]["agree"] + cam["verifier"]["disagree"] >= FRAMES - 20
    verify = run_kontur("archive", "verify", str(data))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_unsafe_in_process_decodes_in_ingest_and_warns(tmp_path: Path) -> None:
    cfg = tmp_path / "site.yaml"
    cfg.write_text(yaml.safe_dump({"ingest": {"decoder": {"unsafe_in_process": True}}}))
    summary, _ = _demo(tmp_path, "--config", str(cfg))
    cam = summary["cameras"][0]
    assert cam["decoder"] is None and cam["frames"] == FRAMES
    assert any("ingest.decoder.unsafe_in_process" in n for n in summary["notes"])
