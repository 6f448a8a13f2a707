"""``kontur model …``: exit 0 only when valid, 1 when invalid, 2 on usage errors; one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from tests.release.conftest import MODEL_NAME
from typer.testing import CliRunner

from kontur.release.cli import model_app

app = typer.Typer()
app.add_typer(model_app, name="model")


def kontur(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("kontur: error: ")
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    code, out, _ = kontur("model", "keygen", "--out", tmp_path / "keys")
    assert code == 0, out
    return tmp_path / "keys"


@pytest.fixture
def release(tmp_path: Path, model: Path, keys: Path) -> Path:
    code, out, err = kontur(
        "model", "release", model, "--format", "yolox", "--name", "tiny", "--version", "2",
        "--score", "0.4", "--critical", "person,car", "--platforms", "cpu",
        "--key", keys / "release-signing.key", "--out", tmp_path / "rel",
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("release tiny@2 sha256:")
    return tmp_path / "rel"


def test_verify_valid(release: Path, keys: Path) -> None:
    code, out, _ = kontur(
        "model", "verify", release, "--name", "tiny", "--pub", keys / "release-signing.pub"
    )
    assert code == 0
    assert out.startswith("valid: tiny@2 sha256:")


def test_verify_json(release: Path, keys: Path) -> None:
    code, out, _ = kontur(
        "model",
        "verify",
        release,
        "--name",
        "tiny",
        "--pub",
        keys / "release-signing.pub",
        "--json",
        "-",
    )
    assert code == 0
    report = json.loads(out)
    assert report["valid"] is True and report["error"] is None
    assert (report["name"], report["version"]) == ("tiny", 2)
    assert report["signer"].startswith("key sha256:")
    assert set(report["files"]) == {"release.json", MODEL_NAME}
    manifest = json.loads((release / "release.json").read_bytes())
    assert manifest["thresholds"]["score"] == 0.4
    assert manifest["critical_classes"] == ["person", "car"]


def test_verify_tampered_exits_1_with_one_line(release: Path, keys: Path) -> None:
    (release / "extra.txt").write_text("x")
    code, _, err = kontur(
        "model", "verify", release, "--name", "tiny", "--pub", keys / "release-signing.pub"
    )
    assert code == 1
    assert "extra file extra.txt" in _one_error_line(err)


def test_verify_tampered_json(release: Path, keys: Path) -> None:
    (release / MODEL_NAME).write_bytes(b"changed")
    code, out, _ = kontur(
        "model",
        "verify",
        release,
        "--name",
        "tiny",
        "--pub",
        keys / "release-signing.pub",
        "--json",
        "-",
    )
    assert code == 1
    report = json.loads(out)
    assert report["valid"] is False
    assert f"changed file {MODEL_NAME}" in report["error"]


def test_verify_wrong_platform_exits_1(release: Path, keys: Path) -> None:
    code, _, err = kontur(
        "model",
        "verify",
        release,
        "--name",
        "tiny",
        "--pub",
        keys / "release-signing.pub",
        "--platform",
        "gpu",
    )
    assert code == 1
    assert "expected platform gpu" in _one_error_line(err)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--pub", "/nonexistent.pub"), "expected a readable file"),
        ((), "expected exactly one of --pub or --ca, got neither"),
    ],
    ids=["key_missing", "no_trust"],
)
def test_verify_usage_errors_exit_2(release: Path, args: tuple[str, ...], fragment: str) -> None:
    code, _, err = kontur("model", "verify", release, "--name", "tiny", *args)
    assert code == 2
    assert fragment in _one_error_line(err)


def test_verify_missing_directory_exits_2(tmp_path: Path, keys: Path) -> None:
    code, _, err = kontur(
        "model", "verify", tmp_path / "no", "--name", "tiny", "--pub", keys / "release-signing.pub"
    )
    assert code == 2
    assert "expected a directory, got none" in _one_error_line(err)


def test_certificate_mode(tmp_path: Path, model: Path) -> None:
    code, out, _ = kontur("model", "keygen", "--out", tmp_path / "pki", "--ca")
    assert code == 0 and "CA certificate:" in out
    pki = tmp_path / "pki"
    code, _, err = kontur(
        "model", "release", model, "--format", "yolox", "--name", "tiny", "--version", "1",
        "--key", pki / "release-signing.key", "--cert", pki / "release-signing.pem",
        "--out", tmp_path / "rel",
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = kontur(
        "model", "verify", tmp_path / "rel", "--name", "tiny", "--ca", pki / "ca.pem"
    )
    assert code == 0 and "signed by cert CN=kontur release signer" in out


def test_install_then_rollback(tmp_path: Path, model: Path, release: Path, keys: Path) -> None:
    store = tmp_path / "store"
    pub = keys / "release-signing.pub"
    code, out, _ = kontur(
        "model", "install", release, "--name", "tiny", "--pub", pub, "--store", store
    )
    assert code == 0 and out.startswith("installed: tiny@2")
    code, _, err = kontur(
        "model", "release", model, "--format", "yolox", "--name", "tiny", "--version", "1",
        "--key", keys / "release-signing.key", "--out", tmp_path / "old",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = kontur(
        "model", "install", tmp_path / "old", "--name", "tiny", "--pub", pub, "--store", store
    )
    assert code == 1
    assert "expected version >= 2 (installed), got 1" in _one_error_line(err)


def test_install_uses_kontur_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, release: Path, keys: Path
) -> None:
    monkeypatch.setenv("KONTUR_DATA_DIR", str(tmp_path / "data"))
    code, _, err = kontur(
        "model", "install", release, "--name", "tiny", "--pub", keys / "release-signing.pub"
    )
    assert code == 0, err
    assert (tmp_path / "data" / "releases" / "tiny" / "2" / MODEL_NAME).is_file()


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (("--score", "1.5"), "--score/--nms: expected score in (0, 1), got 1.5"),
        (("--format", "detr"), "expected one of"),
        (("--platforms", "tpu"), "platforms"),
        (("--critical", "unicorn"), "critical classes"),
        # 10**23 installed would have refused every later version of the name
        (("--version", str(10**23)), f"--version: expected 1 to 2147483647, got {10**23}"),
    ],
    ids=["score_out_of_range", "unknown_format", "unknown_platform", "unknown_class", "huge"],
)
def test_release_usage_errors_exit_2(
    tmp_path: Path, model: Path, keys: Path, extra: tuple[str, ...], fragment: str
) -> None:
    args = ["--format", "yolox", "--name", "tiny", "--version", "1"]
    if "--format" in extra:
        args = args[2:]
    if "--version" in extra:
        args = args[:-2]
    code, _, err = kontur(
        "model", "release", model, *args, *extra,
        "--key", keys / "release-signing.key", "--out", tmp_path / "rel",
    )  # fmt: skip
    assert code == 2
    assert fragment in _one_error_line(err)


def test_keygen_refuses_to_overwrite(keys: Path) -> None:
    code, _, err = kontur("model", "keygen", "--out", keys)
    assert code == 2
    assert "not overwritten" in _one_error_line(err)
