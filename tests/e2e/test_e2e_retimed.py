"""End to end, signed time over container time (ADR 0018, issue 9 item 2).

Real footage (12 s of PETS09, people walking) signed with ``kontur sign`` by a camera enrolled
with ``kontur camera``, then remuxed with every container timestamp doubled: not one byte of
the bitstream or of a signature changes, but a 1 s dwell now reads as 2 s and every speed
halves. ``kontur verify`` names every GOP retimed, and the perimeter (``kontur demo`` with a
real detector) sends every critical decision on it to an operator: none is ALLOWed. The
untouched clip runs as the control: AUTHENTIC, container times checked, and ALLOWed.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import yaml
from tests.conftest import run_kontur, shared
from tests.ingest.attacks.streams import encode, read_clip

pytestmark = pytest.mark.e2e

GOPS = 12  # 120 pictures, a GOP of 10 at 10 fps


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(the site's data dir, the signed clip, the same clip with its container times x2)."""
    tmp = tmp_path_factory.mktemp("retimed")
    raw = encode(shared("video", "pets09_s2l1_480x360.avi"), tmp / "raw.mp4", frames=120, gop=10)
    data, keys = tmp / "d", tmp / "keys"
    assert run_kontur("camera", "init-ca", "--data-dir", str(data)).returncode == 0
    r = run_kontur(
        "camera", "enroll", "cam1", "--issue", "--out", str(keys), "--data-dir", str(data)
    )
    assert r.returncode == 0, r.stderr
    signed = tmp / "signed.mp4"
    r = run_kontur(
        "sign", str(raw), "--key", str(keys / "cam1.key"), "--cert", str(keys / "cam1.pem"),
        "--out", str(signed),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    clip = read_clip(signed)
    stretched = clip.with_times([2 * t for _, t in clip.times()]).write(tmp / "stretched.mp4")
    return data, signed, stretched


def _demo(site_dir: Path, video: Path, tmp: Path) -> tuple[dict, list[dict], list[dict]]:
    """``kontur demo`` on ``video`` with the site's inventory: (camera summary, decisions,
    verdict records)."""
    data = tmp / "d"
    data.mkdir(parents=True)
    for name in ("inventory.sqlite", "site-ca.pem", "site-ca.key"):
        (data / name).write_bytes((site_dir / name).read_bytes())
    cfg = yaml.safe_load(resources.files("kontur").joinpath("defaults/kontur.yaml").read_text())
    # signed minutes before this run, replayed faster than real time: not a freshness test
    cfg["ingest"]["freshness"].update(max_skew_s=3600.0, max_delay_s=3600.0)
    config, out = tmp / "cfg.yaml", tmp / "s.json"
    config.write_text(yaml.safe_dump(cfg))
    r = run_kontur(
        "demo", "--source", str(video), "--model", str(shared("models", "yolox_nano.onnx")),
        "--config", str(config), "--data-dir", str(data), "--json", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    events = [json.loads(x) for x in (data / "actions.jsonl").read_text().splitlines()]
    decisions = [e for e in events if e["type"] == "decision"]
    return json.loads(out.read_text())["cameras"][0], decisions, _verdicts(data)


def _verdicts(data: Path) -> list[dict]:
    import sqlite3

    with sqlite3.connect(f"file:{data / 'archive.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT payload FROM records WHERE kind = 'verdict' ORDER BY idx")
        return [json.loads(r[0]) for r in rows]


def test_verify_reports_the_stretched_container_retimed(site: tuple[Path, Path, Path]) -> None:
    data, signed, stretched = site
    for video, code, retimed in ((signed, 0, []), (stretched, 1, list(range(GOPS)))):
        r = run_kontur(
            "verify", str(video), "--camera", "cam1", "--data-dir", str(data), "--json", "-"
        )
        assert r.returncode == code, r.stdout + r.stderr
        report = json.loads(r.stdout)
        assert report["time"]["retimed"] == retimed
    assert report["summary"] == {"RETIMED": GOPS}
    assert "got 2.000 s in the container (+1.000 s" in report["gops"][5]["reason"]


def test_the_perimeter_never_allows_on_a_retimed_container(
    site: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    data, signed, stretched = site
    cam, decisions, verdicts = _demo(data, signed, tmp_path / "control")
    assert cam["gops"] == {"AUTHENTIC": GOPS}
    assert all(v["signature"]["time"]["status"] == "ok" for v in verdicts)
    assert cam["decisions"]["ALLOW"] > 0, cam  # the control: real dwells are allowed
    cam, decisions, verdicts = _demo(data, stretched, tmp_path / "retimed")
    assert cam["gops"] == {"RETIMED": GOPS}
    assert all(v["signature"]["time"]["status"] == "retimed" for v in verdicts)
    critical = [d for d in decisions if d["critical"]]
    assert critical, decisions  # the same people dwell: the rule fires
    assert all(d["outcome"] == "OPERATOR" for d in critical), critical
    assert any("RETIMED: container times disagree with the signed capture times" in why
               for d in critical for why in d["reasons"])  # fmt: skip
    assert cam["decisions"]["ALLOW"] == 0
