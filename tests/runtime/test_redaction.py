"""Issue 9, item 3: no credential at rest — not in the archive, the summary, the logs.

The end-to-end test runs the real perimeter (``kontur demo``) on a real RTSP camera
(gst-rtsp-server on loopback) whose URL carries a password, with a webhook whose URL carries
a password and a token and whose HMAC key sits in an environment variable. Afterwards not one
byte of any of them is in an archive record, the ``--json`` summary, the command's output or
any file left in the data dir.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tests.ingest.conftest as ingest_fixtures
from tests.conftest import run_kontur, shared

from kontur.archive import Archive
from kontur.redact import MASK, is_secret_name, redact, redact_url

# the ingest tests' fixtures: a real gst-rtsp-server on loopback (skips without it)
gst_rtsp = ingest_fixtures.gst_rtsp
rtsp_server = ingest_fixtures.rtsp_server

CAMERA_PASSWORD = "CamPw4s9qZ"
HOOK_PASSWORD = "HookPw7x2L"
HOOK_TOKEN = "HookTok3v8N"
HOOK_KEY = "HmacKey5t1RwQ"
SECRETS = (CAMERA_PASSWORD, HOOK_PASSWORD, HOOK_TOKEN, HOOK_KEY)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("rtsp://admin:s3cret@10.0.0.7:554/live", "rtsp://***@10.0.0.7:554/live"),
        ("rtsp://admin@10.0.0.7/live", "rtsp://***@10.0.0.7/live"),
        ("rtsp://admin:p@ss@cam/live?x=1", "rtsp://***@cam/live?x=1"),
        ("https://h/in?token=abc&x=1&api_key=k#f", "https://h/in?token=***&x=1&api_key=***#f"),
        ("https://u:p@h/a?X-Amz-Signature=s1g", "https://***@h/a?X-Amz-Signature=***"),
        (
            "source rtsp://a:b@h1/x: expected video; also rtsp://c:d@h2/y",
            "source rtsp://***@h1/x: expected video; also rtsp://***@h2/y",
        ),
        ("/videos/a@b.mp4?token=x", "/videos/a@b.mp4?token=x"),  # a path, not a URL
        ("rtsp://cam/live?token=", "rtsp://cam/live?token="),
    ],
    ids=["user_pass", "user", "at_in_pass", "query", "signed_url", "message", "path", "empty"],
)
def test_redact_url(text: str, shown: str) -> None:
    assert redact_url(text) == shown


def test_redact_walks_mappings_and_keeps_variable_names() -> None:
    config = {
        "cameras": [{"id": "c", "source": "rtsp://u:pw@h/s"}],
        "sinks": {
            "webhook": {"url": "https://h/in?token=t", "secret_env": "HOOK_KEY", "secret": "s"}
        },
        "db": {"password": "pw", "api_key": None, "private_key": {"pem": "x"}, "keys": 3},
    }
    assert redact(config) == {
        "cameras": [{"id": "c", "source": "rtsp://***@h/s"}],
        "sinks": {
            "webhook": {"url": "https://h/in?token=***", "secret_env": "HOOK_KEY", "secret": MASK}
        },
        "db": {"password": MASK, "api_key": None, "private_key": MASK, "keys": 3},
    }
    assert config["db"]["password"] == "pw", "the input is not changed"


@pytest.mark.parametrize("name", ["password", "db_password", "client_secret", "access_token",
                                  "X-Amz-Signature", "apikey", "private-key", "auth"])  # fmt: skip
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["secret_env", "source", "keys", "monkey", "tokens_per_s", "id"])
def test_not_secret_names(name: str) -> None:
    assert not is_secret_name(name)


def _leaks(blob: bytes) -> list[str]:
    return [s for s in SECRETS if s.encode() in blob]


@pytest.mark.e2e
def test_no_credential_reaches_the_archive_the_summary_or_the_data_dir(
    rtsp_server: ingest_fixtures.RtspServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = rtsp_server(shared("video", "car_traffic_640x360.mp4"), "h264", fast=False)
    camera_url = server.url.replace("rtsp://", f"rtsp://viewer:{CAMERA_PASSWORD}@")
    hook_url = f"https://hook:{HOOK_PASSWORD}@127.0.0.1:9/in?token={HOOK_TOKEN}"
    monkeypatch.setenv("KONTUR_TEST_HOOK_KEY", HOOK_KEY)
    config = tmp_path / "site.yaml"  # only what differs from the embedded defaults (5d)
    config.write_text(
        f"cameras:\n  - id: gate\n    source: {camera_url}\n"
        f"sinks:\n  webhook:\n    url: {hook_url}\n    secret_env: KONTUR_TEST_HOOK_KEY\n"
    )
    data = tmp_path / "data"
    r = run_kontur(
        "demo", "--config", str(config), "--data-dir", str(data), "--seconds", "6", "--json", "-"
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["cameras"][0]["frames"] > 0, "the camera was really read"
    assert summary["cameras"][0]["source"] == server.url.replace("rtsp://", "rtsp://***@")
    assert not _leaks(r.stdout.encode() + r.stderr.encode())

    with Archive.open_readonly(data) as archive:
        records = list(archive.iter_records())
    kinds = {rec.kind for rec in records}
    assert {"config", "segment", "verdict"} <= kinds, kinds
    leaking = [(rec.index, rec.kind, _leaks(rec.payload_bytes)) for rec in records]
    assert not [x for x in leaking if x[2]], leaking
    [cfg] = [rec.payload["config"] for rec in records if rec.kind == "config"]
    assert cfg["cameras"][0]["source"] == server.url.replace("rtsp://", "rtsp://***@")
    webhook = cfg["sinks"]["webhook"]
    assert webhook["url"] == "https://***@127.0.0.1:9/in?token=***"
    assert webhook["secret_env"] == "KONTUR_TEST_HOOK_KEY"  # the variable's name, not its value

    assert not (data / "run" / "specs").exists(), "the blocks' specs held the URLs in clear"
    files = [p for p in data.rglob("*") if p.is_file()]
    assert files and not [(p, _leaks(p.read_bytes())) for p in files if _leaks(p.read_bytes())]
