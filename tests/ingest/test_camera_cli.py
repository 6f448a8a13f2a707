"""``kontur camera …``: happy paths, and one error line with the right exit code for bad input."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kontur.archive import Archive
from kontur.ingest.camera_cli import camera_app
from kontur.ingest.inventory import Inventory

app = typer.Typer()
app.add_typer(camera_app, name="camera")


def kontur(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, result.stdout, result.stderr


def one_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("kontur: error: ") and "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    code, out, err = kontur("camera", "init-ca", "--data-dir", d)
    assert code == 0, err
    assert "site CA" in out and "sha256:" in out
    return d


def enrol_issued(data: Path, camera_id: str = "cam1", *extra: str) -> Path:
    keys = data.parent / "keys"
    code, out, err = kontur(
        "camera", "enroll", camera_id, "--issue", "--out", keys, "--data-dir", data, *extra
    )
    assert code == 0, err
    assert f"enrolled {camera_id} CN={camera_id} key sha256:" in out
    return keys


def test_init_enrol_list_revoke_and_archive(data: Path) -> None:
    keys = enrol_issued(data, "cam1", "--profile", "h264,1920x1080,25", "--critical")
    assert stat.S_IMODE((keys / "cam1.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "site-ca.key").stat().st_mode) == 0o600
    code, out, _ = kontur("camera", "list", "--data-dir", data)
    assert (
        code == 0
        and "cam1  CN=cam1  sha256:" in out
        and "h264,1920x1080,25  critical  active" in out
    )
    code, out, err = kontur("camera", "revoke", "cam1", "--reason", "stolen", "--data-dir", data)
    assert code == 0, err
    assert "revoked cam1 at " in out and out.rstrip().endswith(": stolen")
    code, out, _ = kontur("camera", "list", "--json", "-", "--data-dir", data)
    [cam] = json.loads(out)["cameras"]
    assert cam["id"] == "cam1" and cam["critical"] is True and cam["signing_required"] is False
    assert cam["revoked_reason"] == "stolen" and cam["revoked_at"]
    assert cam["profile"] == "h264,1920x1080,25" and len(cam["key_sha256"]) == 64
    with Archive.open_readonly(data) as archive:
        actions = [r.payload["action"] for r in archive.iter_records() if r.kind == "camera"]
    assert actions == ["init_ca", "enrol", "revoke"]


def test_enrol_with_an_existing_chain(data: Path, tmp_path: Path) -> None:
    with Inventory.open(data) as inv:
        issued = inv.issue("cam7", tmp_path / "vendor")
    code, out, err = kontur(
        "camera", "enroll", "cam7", "--cert", issued.chain_path, "--signing-required",
        "--data-dir", data,
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = kontur("camera", "list", "--data-dir", data)
    assert "cam7" in out and "signing_required" in out


def test_data_dir_from_the_environment(tmp_path: Path) -> None:
    env = {"KONTUR_DATA_DIR": str(tmp_path / "env-data")}
    code, _, err = kontur("camera", "init-ca", env=env)
    assert code == 0, err
    assert (tmp_path / "env-data" / "site-ca.pem").is_file()
    code, out, _ = kontur("camera", "list", env=env)
    assert code == 0 and "no cameras enrolled" in out


def test_locked_archive_leaves_the_change_for_the_perimeter(data: Path) -> None:
    enrol_issued(data)
    with Archive.open(data) as archive:  # a "running perimeter"
        code, out, err = kontur("camera", "revoke", "cam1", "--reason", "r", "--data-dir", data)
        assert code == 0, err
        assert "held by a running perimeter" in err and "revoked cam1" in out
        with Inventory.open(data) as inv:
            assert inv.camera("cam1").revoked_at is not None  # type: ignore[union-attr]
            assert inv.drain_to_archive(archive) == 1
        assert [r.payload["action"] for r in archive.iter_records()][-1] == "revoke"


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["enroll", "bad id", "--issue", "--out", "K"], 2, "camera id: expected [A-Za-z0-9_.-]"),
        (["enroll", "cam1"], 2, "expected --cert CHAIN.pem or --issue --out DIR, got neither"),
        (["enroll", "cam1", "--cert", "X", "--issue"], 2, "got both"),
        (["enroll", "cam1", "--issue"], 2, "--issue: expected --out DIR"),
        (["enroll", "cam1", "--cert", "X", "--out", "K"], 2, "--out: expected only with --issue"),
        (["enroll", "cam1", "--cert", "missing.pem"], 2, "expected a readable file"),
        (["enroll", "cam1", "--cert", "GARBAGE"], 2, "--cert: expected PEM certificates"),
        (["enroll", "cam1", "--issue", "--out", "K", "--profile", "h264"], 2, "profile: expected"),
        (["revoke", "cam1"], 2, "--reason: expected the reason for the revocation, got none"),
        (["revoke", "cam1", "--reason", " "], 2, "--reason: expected 1..500 characters"),
        (["revoke", "nope", "--reason", "x"], 1, "camera nope: expected an enrolled camera"),
        (["revoke", "a/b", "--reason", "x"], 2, "camera id: expected"),
        (["init-ca"], 1, "expected no site CA, got one"),
    ],
)
def test_bad_input_is_one_line(
    data: Path, tmp_path: Path, args: list[str], code: int, fragment: str
) -> None:
    (tmp_path / "GARBAGE").write_text("-----BEGIN CERTIFICATE-----\nnope\n")
    subs = {
        "K": str(tmp_path / "k"),
        "X": str(tmp_path / "x.pem"),
        "GARBAGE": str(tmp_path / "GARBAGE"),
    }
    args = [subs.get(a, a) for a in args]
    args = [str(tmp_path / a) if a == "missing.pem" else a for a in args]
    got, _, err = kontur("camera", *args, "--data-dir", data)
    assert got == code, err
    assert fragment in one_error(err)


def test_refusals_exit_1(data: Path, tmp_path: Path) -> None:
    keys = enrol_issued(data)
    code, _, err = kontur(
        "camera", "enroll", "cam1", "--cert", keys / "cam1.pem", "--data-dir", data
    )
    assert code == 1 and "expected a new camera id, got an enrolled one" in one_error(err)
    code, _, err = kontur(
        "camera", "enroll", "cam2", "--cert", keys / "cam1.pem", "--data-dir", data
    )
    assert code == 1 and "got the key of camera cam1" in one_error(err)
    kontur("camera", "revoke", "cam1", "--reason", "x", "--data-dir", data)
    code, _, err = kontur("camera", "revoke", "cam1", "--reason", "x", "--data-dir", data)
    assert code == 1 and "expected a camera not yet revoked" in one_error(err)
    rogue = tmp_path / "rogue"
    kontur("camera", "init-ca", "--data-dir", rogue)
    code, _, _ = kontur(
        "camera", "enroll", "cam3", "--issue", "--out", tmp_path / "rk", "--data-dir", rogue
    )
    assert code == 0
    code, _, err = kontur(
        "camera", "enroll", "cam3", "--cert", tmp_path / "rk" / "cam3.pem", "--data-dir", data
    )
    assert code == 1 and "expected a chain to the site CA" in one_error(err)


def test_enrol_before_init_ca(tmp_path: Path) -> None:
    code, _, err = kontur(
        "camera", "enroll", "cam1", "--issue", "--out", tmp_path / "k", "--data-dir", tmp_path / "d"
    )
    assert code == 1 and "expected a site CA, got none (run kontur camera init-ca)" in one_error(
        err
    )


def test_issue_refuses_to_overwrite_a_key(data: Path) -> None:
    keys = enrol_issued(data, "cam1")
    (keys / "cam2.key").write_text("precious")
    code, _, err = kontur("camera", "enroll", "cam2", "--issue", "--out", keys, "--data-dir", data)
    assert code == 2 and "cam2.key: expected no file there, got one" in one_error(err)
    assert (keys / "cam2.key").read_text() == "precious"


def test_unusable_data_dir(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    code, _, err = kontur("camera", "list", "--data-dir", tmp_path / "file")
    assert code == 2 and "expected a data dir, got a file" in one_error(err)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "inventory.sqlite").write_bytes(b"garbage" * 200)
    code, _, err = kontur("camera", "list", "--data-dir", tmp_path / "d")
    assert code == 1 and "expected a kontur store" in one_error(err)


def test_import_an_existing_site_ca_then_enrol_a_camera_of_that_pki(tmp_path: Path) -> None:
    import datetime as dt

    from kontur.ingest.oms.keys import chain_pem, make_ca, make_camera_certificate

    now = dt.datetime.now(dt.UTC)
    ca_key, ca = make_ca("site PKI", now - dt.timedelta(days=1), now + dt.timedelta(days=365))
    _, leaf = make_camera_certificate(
        ca_key, ca, "axis-1", now - dt.timedelta(days=1), now + dt.timedelta(days=90)
    )
    (tmp_path / "ca.pem").write_bytes(chain_pem(ca))
    (tmp_path / "cam.pem").write_bytes(chain_pem(leaf, ca))
    data = tmp_path / "data"
    code, out, err = kontur(
        "camera", "init-ca", "--import", tmp_path / "ca.pem", "--data-dir", data
    )
    assert code == 0, err
    assert not (data / "site-ca.key").exists()  # imported: kontur holds no key of it
    code, out, err = kontur("camera", "enroll", "axis-1", "--cert", tmp_path / "cam.pem",
                            "--data-dir", data)  # fmt: skip
    assert code == 0, err
    assert "enrolled axis-1 CN=axis-1" in out
    code, _, err = kontur("camera", "enroll", "cam2", "--issue", "--out", tmp_path / "k",
                          "--data-dir", data)  # fmt: skip
    assert code == 1
    assert "got an imported CA without one" in one_error(err)
    with Archive.open_readonly(data) as archive:
        actions = [r.payload["action"] for r in archive.iter_records() if r.kind == "camera"]
    assert actions == ["import_ca", "enrol"]


@pytest.mark.parametrize(
    ("what", "fragment"),
    [
        ("leaf", "expected a CA certificate (basicConstraints CA:TRUE)"),
        ("garbage", "expected one PEM CA certificate, got data that does not parse"),
        ("two", "expected one PEM CA certificate, got 2"),
        ("expired", "expected a CA certificate valid now"),
    ],
)
def test_import_refuses_what_is_not_one_valid_ca(tmp_path: Path, what: str, fragment: str) -> None:
    import datetime as dt

    from kontur.ingest.oms.keys import chain_pem, make_ca, make_camera_certificate

    now = dt.datetime.now(dt.UTC)
    ca_key, ca = make_ca("site PKI", now - dt.timedelta(days=1), now + dt.timedelta(days=365))
    _, leaf = make_camera_certificate(ca_key, ca, "c", now, now + dt.timedelta(days=1))
    _, old = make_ca("old", now - dt.timedelta(days=30), now - dt.timedelta(days=1))
    body = {
        "leaf": chain_pem(leaf),
        "garbage": b"not a certificate",
        "two": chain_pem(ca, old),
        "expired": chain_pem(old),
    }[what]
    (tmp_path / "x.pem").write_bytes(body)
    code, _, err = kontur("camera", "init-ca", "--import", tmp_path / "x.pem",
                          "--data-dir", tmp_path / "d")  # fmt: skip
    assert code == 2
    assert fragment in one_error(err)


def test_listing_a_data_dir_without_an_inventory_makes_none(tmp_path: Path) -> None:
    """``camera list --data-dir typo`` made typo/inventory.sqlite and said "no cameras"."""
    typo = tmp_path / "typo"
    code, out, _ = kontur("camera", "list", "--data-dir", typo, "--json", "-")
    assert code == 0 and json.loads(out) == {
        "data_dir": str(typo),
        "inventory": False,
        "cameras": [],
    }
    assert not typo.exists()
    code, out, _ = kontur("camera", "list", "--data-dir", typo)
    assert code == 0 and " ".join(out.split()) == (
        f"no inventory in {typo} (no camera was ever enrolled there)"
    )
