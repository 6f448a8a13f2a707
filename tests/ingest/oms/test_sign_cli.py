"""``kontur sign`` (the typer command function, mounted here on a local app)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from typer.testing import CliRunner

from kontur.ingest.oms.keys import chain_pem, make_ca, make_camera_certificate, private_key_pem
from kontur.ingest.oms.reader import validate_file
from kontur.ingest.oms.validator import OmsResult
from kontur.ingest.sign_cli import sign

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2126, 1, 1, tzinfo=dt.UTC)

app = typer.Typer()
app.command()(sign)


@app.command()
def _other() -> None:
    """Keep ``sign`` a sub-command, as under ``kontur``."""


@dataclass(frozen=True)
class Files:
    ca: x509.Certificate
    key: Path
    chain: Path
    other_key: Path
    ed25519_key: Path
    expired_key: Path
    expired_chain: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    base = tmp_path_factory.mktemp("keys")
    ca_key, ca = make_ca("site CA", T0, T1)
    key, cert = make_camera_certificate(ca_key, ca, "cam-7", T0, T1)
    other, _ = make_camera_certificate(ca_key, ca, "cam-8", T0, T1)
    ed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    old_key, old = make_camera_certificate(
        ca_key, ca, "cam-old", T0 - dt.timedelta(days=400), T0 - dt.timedelta(days=35)
    )
    names = ("key.pem", "chain.pem", "other.pem", "ed.pem", "old.pem", "old_chain.pem")
    blobs = (
        private_key_pem(key),
        chain_pem(cert, ca),
        private_key_pem(other),
        ed,
        private_key_pem(old_key),
        chain_pem(old, ca),
    )
    paths = [base / n for n in names]
    for path, data in zip(paths, blobs, strict=True):
        path.write_bytes(data)
    return Files(ca, *paths)


def mpeg4_video(path: Path) -> Path:
    """A tiny MPEG-4 part 2 clip (a codec kontur cannot sign)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(3):
            frame = av.VideoFrame(64, 48, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["sign", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, stderr: str, fragment: str) -> None:
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kontur: error: "), stderr
    assert fragment in lines[0]
    assert "Traceback" not in stderr


def test_signs_real_footage_with_summary_and_json(
    shared_file: Callable[[str], Path], files: Files, tmp_path: Path
) -> None:
    source = shared_file("video/car_traffic_640x360.mp4")
    target = tmp_path / "car.mkv"
    report = tmp_path / "sign.json"
    code, stdout, stderr = run(
        source, "--key", files.key, "--cert", files.chain, "--out", target, "--json", report
    )
    assert code == 0, stderr
    assert "GOPs signed" in stdout and "SEIs" in stdout
    doc = json.loads(report.read_text())
    assert doc["access_units"] == 917 and doc["container"] == "matroska"
    assert doc["copied_streams"] == 0 and doc["dropped_streams"] == []  # video only
    assert doc["seis"] == doc["gops_signed"] and doc["output_bytes"] == target.stat().st_size
    now = dt.datetime.now(dt.UTC)
    assert abs(dt.datetime.fromisoformat(doc["base_time"]) - now) < dt.timedelta(minutes=5)
    results = validate_file(target, [files.ca], now, require_parameter_set_claim=True)
    assert {r.result for r in results} == {OmsResult.AUTHENTIC}
    assert results[0].capture_start is not None
    assert abs(results[0].capture_start - now) < dt.timedelta(minutes=5)


def test_json_to_stdout_with_certificate_sei(
    shared_file: Callable[[str], Path], files: Files, tmp_path: Path
) -> None:
    source = shared_file("video/car_traffic_640x360.mp4")
    target = tmp_path / "car.h264"
    code, stdout, stderr = run(
        source, "--key", files.key, "--cert", files.chain, "--out", target,
        "--certificate-sei", "--json", "-",
    )  # fmt: skip
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert doc["certificate_sei"] is True and doc["container"] == "raw"
    assert doc["seis"] == doc["gops_signed"] + 1  # plus the certificate SEI


def test_errors_are_one_line(
    shared_file: Callable[[str], Path],
    files: Files,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    video = shared_file("video/car_traffic_640x360.mp4")
    signed = shared_file("oms/streams/pets_h264_default.mp4")
    mpeg4 = mpeg4_video(tmp_path_factory.mktemp("in") / "mpeg4.mp4")
    truncated = tmp_path_factory.mktemp("in") / "truncated.mp4"
    truncated.write_bytes(video.read_bytes()[:300_000])  # moov first: samples run short
    out = tmp_path / "o.mp4"
    base = ("--key", files.key, "--cert", files.chain, "--out", out)
    cases = [
        ((tmp_path / "missing.mp4", *base), "expected an existing video file"),
        ((files.chain, *base), "expected a readable video file"),
        ((signed, *base), "input is already signed"),
        ((mpeg4, *base), "expected H.264 or H.265 video"),
        ((truncated, *base), "expected well-formed NAL units in access unit"),
        ((video, "--key", files.ed25519_key, "--cert", files.chain, "--out", out),
         "expected an ECDSA P-256 or RSA key, got Ed25519PrivateKey"),
        ((video, "--key", files.other_key, "--cert", files.chain, "--out", out),
         "expected the private key to match the leaf certificate (CN=cam-7)"),
        ((video, "--key", tmp_path / "nokey.pem", "--cert", files.chain, "--out", out),
         "expected an existing file"),
        ((video, "--key", files.expired_key, "--cert", files.expired_chain, "--out", out),
         "expected certificate 0 (CN=cam-old) to be valid at"),
        ((video, "--key", files.key, "--cert", files.chain, "--out", files.key / "x.mp4"),
         "expected a path in an existing directory"),
        ((video, "--key", files.key, "--cert", files.chain, "--out", tmp_path),
         "expected a file path, got a directory"),
        ((video, "--key", files.key, "--cert", files.chain, "--out", tmp_path / "o.avi"),
         "expected an output suffix among"),
        ((video, "--key", files.key, "--cert", files.chain, "--out", video),
         "expected a path other than the input"),
    ]  # fmt: skip
    for args, fragment in cases:
        code, _, stderr = run(*args)
        assert_one_line_error(code, stderr, fragment)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == []
    out.write_bytes(b"a recording someone kept")  # never overwritten (it was, and chmod 0600)
    out.chmod(0o644)
    code, _, stderr = run(video, *base)
    assert_one_line_error(code, stderr, f"--out {out}: expected a new file, got an existing one")
    assert out.read_bytes() == b"a recording someone kept" and out.stat().st_mode & 0o777 == 0o644
