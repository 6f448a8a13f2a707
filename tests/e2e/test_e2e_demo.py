"""End to end: ``kontur demo`` on real footage with a real model, then archive tampering."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tests.conftest import run_kontur, shared

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pets_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    video = shared("video", "pets09_s2l1_480x360.avi")
    model = shared("models", "yolox_nano.onnx")
    tmp = tmp_path_factory.mktemp("pets")
    data_dir, out = tmp / "data", tmp / "summary.json"
    r = run_kontur(
        "demo",
        "--source",
        str(video),
        "--model",
        str(model),
        "--data-dir",
        str(data_dir),
        "--no-sign",
        "--json",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    return data_dir, json.loads(out.read_text())


def test_all_blocks_work_on_real_footage(pets_run: tuple[Path, dict]) -> None:
    _, s = pets_run
    cam = s["cameras"][0]
    assert cam["frames"] == 795
    assert sum(cam["gops"].values()) == 4
    # unsigned footage (--no-sign: the demo camera does not sign it) is never trusted
    assert set(cam["gops"]) == {"UNSIGNED"}
    assert cam["detections"] > 3000  # YOLOX-Nano finds ~8 people a frame on PETS09
    assert 10 <= cam["tracks"] <= 80  # 19 identities in the ground truth
    assert cam["verifier"]["agree"] + cam["verifier"]["disagree"] >= 700
    assert cam["verifier"]["agree"] > cam["verifier"]["disagree"]
    d = cam["decisions"]
    assert d["OPERATOR"] > 0, "people dwell in the zone: critical actions must be requested"
    assert d["ALLOW"] == 0, "UNSIGNED GOPs must never ALLOW a critical action"
    assert s["detector"]["name"] == "yolox-onnx" and not s["detector"]["fallback"]


def test_one_process_per_block(pets_run: tuple[Path, dict]) -> None:
    _, s = pets_run
    names = [p["name"] for p in s["processes"]]
    assert names == ["supervisor", "gate", "verifier", "worker", "ingest:cam1"]
    pids = [p["pid"] for p in s["processes"]]
    assert len(set(pids)) == len(pids)
    assert all(p["peak_rss_mb"] > 0 for p in s["processes"])


def test_summary_contract(pets_run: tuple[Path, dict]) -> None:
    _, s = pets_run
    assert {"cameras", "placement", "degradation", "archive", "processes"} <= set(s)
    cam = s["cameras"][0]
    assert {
        "id",
        "source",
        "frames",
        "gops",
        "detections",
        "tracks",
        "verifier",
        "decisions",
    } <= set(cam)
    pl = s["placement"][0]
    assert set(pl) == {"task", "platform", "risk", "admissible", "reason"}
    assert set(pl["risk"]) == {"cpu", "gpu", "npu"} and pl["platform"] == "cpu"
    assert pl["admissible"]["cpu"] is True
    assert s["degradation"]["state"] == "NORMAL" and s["degradation"]["transitions"] == []
    assert s["archive"]["records"] > 0 and len(s["archive"]["head"]) == 64


def test_archive_verifies_then_catches_a_flipped_segment_byte(
    pets_run: tuple[Path, dict], tmp_path: Path
) -> None:
    data_dir, s = pets_run
    r = run_kontur("archive", "verify", str(data_dir), "--json", "-")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] is True and report["first_bad"] is None
    assert report["records"] == s["archive"]["records"]
    # flip one byte of one archived segment
    seg = sorted((data_dir / "segments").rglob("*"))
    seg = [p for p in seg if p.is_file() and len(p.name) == 64][1]
    os.chmod(seg, 0o644)
    raw = bytearray(seg.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    seg.write_bytes(bytes(raw))
    r = run_kontur("archive", "verify", str(data_dir), "--json", "-")
    assert r.returncode == 1
    bad = json.loads(r.stdout)
    assert bad["ok"] is False
    assert seg.name[:8] in bad["first_bad"]["reason"]
    assert "expected sha256" in bad["first_bad"]["reason"]


def test_embedded_defaults(tmp_path: Path) -> None:
    """The second end-to-end run: nothing but the package and its dependencies."""
    out = tmp_path / "s.json"
    r = run_kontur("demo", "--data-dir", str(tmp_path / "d"), "--json", str(out))
    assert r.returncode == 0, r.stderr
    s = json.loads(out.read_text())
    cam = s["cameras"][0]
    assert cam["source"].endswith("bikes.mp4") and cam["frames"] == 250
    assert s["detector"]["fallback"] is True and "FALLBACK" in r.stdout
    assert cam["detections"] > 0 and cam["tracks"] > 0
    assert sum(cam["decisions"].values()) >= 1 and cam["decisions"]["ALLOW"] == 0
    assert run_kontur("archive", "verify", str(tmp_path / "d")).returncode == 0
