"""``kontur eval mot``: results as JSON, signed and unsigned models, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import run_kontur
from typer.testing import CliRunner

from kontur.eval.cli import eval_app

Shared = Callable[[str], Path]
runner = CliRunner()


@pytest.fixture(scope="module")
def tud(shared_file: Shared) -> list[str]:
    return [
        "--video",
        str(shared_file("mot15/TUD-Campus/TUD-Campus.mp4")),
        "--gt",
        str(shared_file("mot15/TUD-Campus/gt/gt.txt")),
    ]


@pytest.fixture(scope="module")
def yolox(shared_file: Shared) -> Path:
    return shared_file("models/yolox_nano.onnx")


def _mot(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(eval_app, ["mot", *args])
    return r.exit_code, r.stdout, r.stderr


def test_unsigned_quick_run_as_json(tud: list[str], yolox: Path) -> None:
    code, out, err = _mot(*tud, "--unsafe-onnx", str(yolox), "--frames", "20", "--json", "-")
    assert code == 0, err
    assert "evaluating UNSIGNED model" in err
    doc = json.loads(out)
    r = doc["results"]["full-frame"]
    assert r["frames"] == 20 and r["model_id"].startswith("sha256:")
    assert 0 < r["recall"] <= 1 and r["hota"] is not None
    assert doc["motion_comparison"] is None


def test_compare_motion_prints_both_runs(
    tud: list[str], yolox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both runs side by side, in 80 columns (piped output was forced to 120)."""
    monkeypatch.setenv("COLUMNS", "80")
    out_json = tmp_path / "r.json"
    code, out, err = _mot(
        *tud, "--unsafe-onnx", str(yolox), "--frames", "12", "--compare-motion", "--no-hota",
        "--json", str(out_json),
    )  # fmt: skip
    assert code == 0, err
    assert "full-frame" in out and "motion-gated" in out and "speed-up x" in out
    assert max(map(len, out.splitlines())) <= 80 and "…" not in out, out
    doc = json.loads(out_json.read_text())
    assert set(doc["results"]) == {"full-frame", "motion-gated"}
    assert set(doc["motion_comparison"]) >= {"speedup", "recall_cost", "pixels_ratio"}
    assert doc["results"]["motion-gated"]["hota"] is None


def test_signed_release_is_verified_then_evaluated(
    tud: list[str], yolox: Path, tmp_path: Path
) -> None:
    from kontur.clock import SystemClock
    from kontur.release import build_release, keygen

    keys = keygen(tmp_path / "key")
    rel = tmp_path / "rel"
    build_release(
        [yolox], "yolox", rel, name="yolox-nano", version=1, key=keys.private_key,
        clock=SystemClock(),
    )  # fmt: skip
    args = [*tud, "--model", str(rel), "--pub", str(keys.public_key), "--frames", "10"]
    code, out, err = _mot(*args, "--json", "-")
    assert code == 0, err
    r = json.loads(out)["results"]["full-frame"]
    assert r["detector"].startswith("yolox-nano-v1") and r["frames"] == 10
    # One flipped byte in the model: refused before anything runs, exit 1 (invalid release).
    model = rel / yolox.name
    data = bytearray(model.read_bytes())
    data[1000] ^= 1
    model.write_bytes(bytes(data))
    code, out, err = _mot(*args)
    assert code == 1 and out == ""
    assert err.startswith("kontur: error: ") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("no_video", "--video {tmp}/none.mp4: expected a video file, found nothing"),
        ("not_a_video", "--video {tmp}/bad.mp4: expected a video, got "),
        ("no_gt", "--gt {tmp}/gt.txt: expected a MOTChallenge gt.txt, found nothing"),
        ("wrong_gt", "expected 795 frames (as {pets_gt}), got 71 in the container header"),
        ("bad_gt_line", "gt.txt line 2: expected at least 7 comma-separated numbers"),
        ("no_model", "expected exactly one of --model RELEASE_DIR or --unsafe-onnx FILE, got"),
        ("no_trust", "--model: expected exactly one of --pub or --ca, got neither"),
        ("bad_frames", "--frames: expected 1..71, got 500"),
        ("bad_format", "--format: expected one of yolox, yolov8, got 'ssd'"),
    ],
)
def test_errors_are_one_line(
    case: str, fragment: str, tud: list[str], yolox: Path, tmp_path: Path, shared_file: Shared
) -> None:
    pets_gt = shared_file("mot15/PETS09-S2L1/gt/gt.txt")
    model = ["--unsafe-onnx", str(yolox)]
    args = {
        "no_video": ["--video", str(tmp_path / "none.mp4"), *tud[2:], *model],
        "not_a_video": ["--video", str(tmp_path / "bad.mp4"), *tud[2:], *model],
        "no_gt": [*tud[:2], "--gt", str(tmp_path / "gt.txt"), *model],
        "wrong_gt": [*tud[:2], "--gt", str(pets_gt), *model],
        "bad_gt_line": [*tud[:2], "--gt", str(tmp_path / "gt.txt"), *model],
        "no_model": tud,
        "no_trust": [*tud, "--model", str(tmp_path)],
        "bad_frames": [*tud, *model, "--frames", "500"],
        "bad_format": [*tud, *model, "--format", "ssd"],
    }[case]
    (tmp_path / "bad.mp4").write_text("not a video\n")
    if case == "bad_gt_line":
        (tmp_path / "gt.txt").write_text("1,1,1,1,5,5,1,-1,-1,-1\n2,1,oops\n")
    code, _, err = _mot(*args)
    assert code == 2
    lines = [ln for ln in err.splitlines() if not ln.startswith("kontur: warning:") and ln]
    assert len(lines) == 1 and lines[0].startswith("kontur: error: "), err
    assert fragment.format(tmp=tmp_path, pets_gt=pets_gt) in lines[0]


def test_mounted_as_kontur_eval(tud: list[str], tmp_path: Path) -> None:
    r = run_kontur("eval", "mot", *tud, "--unsafe-onnx", str(tmp_path / "none.onnx"), timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"kontur: error: --unsafe-onnx {tmp_path}/none.onnx: expected a readable ONNX file, "
        "got No such file or directory"
    )
