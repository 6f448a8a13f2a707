"""``kontur model audit`` end to end on a real signed release and real footage: the report,
the HTML page, the re-signed release carrying the audit, and install enforcing its floor."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from tests.conftest import run_kontur, shared

from kontur.clock import SystemClock
from kontur.release import build_release, keygen, verify_release

PETS = ("video", "pets09_s2l1_480x360.avi")
PETS_GT = ("mot15", "PETS09-S2L1", "gt", "gt.txt")
#: Small enough for the suite: 16 frames, 2 corruptions x 5 severities, tiny attack budgets.
QUICK = (
    "--frames", "16", "--corruptions", "gaussian_noise,rotation",
    "--patch-queries", "24", "--trigger-budget", "200", "--threads", "1",
)  # fmt: skip


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A signed YOLOX-Nano release v1, its public key and private key."""
    root = tmp_path_factory.mktemp("audit")
    pair = keygen(root / "key")
    built = build_release(
        [shared("models", "yolox_nano.onnx")],
        "yolox",
        root / "yolox-v1",
        name="yolox-nano",
        version=1,
        key=pair.private_key,
        clock=SystemClock(),
    )
    return built.directory, pair.public_key, pair.private_key


def test_audit_signs_a_new_version_that_install_checks(
    signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    release, pub, key = signed
    out, html = tmp_path / "audited", tmp_path / "report.html"
    common = ("--pub", str(pub), "--name", "yolox-nano")
    r = run_kontur(
        "model", "audit", str(release), "--video", str(shared(*PETS)),
        "--gt", str(shared(*PETS_GT)), "--scale", "0.625", *common, *QUICK,
        "--html", str(html), "--key", str(key), "--out", str(out), "--json", "-",
        timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    rep, rec = doc["report"], doc["record"]
    assert rep["frames"] == 16 and len(rep["corruptions"]) == 10
    assert 0.5 < rep["clean"]["ap50"] <= 1.0, rep["clean"]
    # noise at severity 5 costs AP; the audit's mPC sits below the clean AP
    noise = {c["severity"]: c["ap50"] for c in rep["corruptions"] if c["name"] == "gaussian_noise"}
    assert noise[5] < rep["clean"]["ap50"]
    assert rec["rpc"] == pytest.approx(rep["mpc"] / rep["clean"]["ap50"], rel=1e-4)
    assert rec["trigger"] == "pass"  # the clean YOLOX-Nano
    assert (rec["corruptions"], rec["trigger_budget"]) == (10, 200)
    assert rep["patch"]["queries"] <= 24
    # the new release: version 2, the report signed beside the model
    v2 = verify_release(out, public_key=pub, clock=SystemClock())
    audit = v2.manifest.manifest.robustness_audit
    assert v2.manifest.manifest.version == 2 and audit is not None
    assert hashlib.sha256(v2.files["audit.json"]).hexdigest() == audit.report_sha256
    assert json.loads(v2.files["audit.json"])["rpc"] == rep["rpc"]
    # the HTML page is self-contained: plots inline, nothing fetched
    page = html.read_text()
    assert page.count('src="data:image/png;base64,') == 3
    assert not re.search(r"""(src|href)=["']?https?:""", page)
    # install enforces the floor the site sets
    store = ("--store", str(tmp_path / "store"))
    too_high = f"{audit.rpc + 0.01:.3f}"
    r = run_kontur("model", "install", str(out), *common, *store, "--min-rpc", too_high)
    assert r.returncode == 1 and f"expected rPC >= {too_high}" in r.stderr
    r = run_kontur("model", "install", str(out), *common, *store, "--require-audit")
    assert r.returncode == 0, r.stderr


def test_audit_input_errors_are_one_line(signed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    release, pub, _ = signed
    common = ("--pub", str(pub), "--name", "yolox-nano", *QUICK)
    video, gt = str(shared(*PETS)), str(shared(*PETS_GT))
    cases = {
        "missing video": ("--video", str(tmp_path / "none.avi"), "--gt", gt, "--scale", "0.625"),
        "gt a directory": ("--video", video, "--gt", str(tmp_path)),
        "wrong scale": ("--video", video, "--gt", gt, "--scale", "3"),
        "unknown corruption": ("--video", video, "--gt", gt, "--corruptions", "acid"),
        # found before the long run, not after it
        "html nowhere": ("--video", video, "--gt", gt, "--html", str(tmp_path / "no" / "r.html")),
        "out not empty": (
            "--video", video, "--gt", gt, "--key", str(signed[2]), "--out", str(release),
        ),
        "key unreadable": (
            "--video", video, "--gt", gt, "--key", str(tmp_path / "none.key"),
            "--out", str(tmp_path / "new"),
        ),
    }  # fmt: skip
    messages: dict[str, str] = {}
    for why, args in cases.items():
        r = run_kontur("model", "audit", str(release), *common, *args, timeout=300)
        assert r.returncode == 2, (why, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kontur: error: "), (why, r.stderr)
        assert "expected" in lines[0], (why, lines[0])
        messages[why] = lines[0]
    assert messages["missing video"].endswith("none.avi: expected a video file, found nothing")
    assert messages["gt a directory"].endswith(": expected a gt.txt, found a directory")
    r = run_kontur(
        "model", "audit", str(release), "--video", video, "--gt", gt, "--pub", str(pub),
        "--name", "other-model", *QUICK,
    )  # fmt: skip
    assert r.returncode == 1 and "expected release name other-model" in r.stderr
