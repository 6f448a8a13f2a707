"""The decoder's sandbox, proven from inside: the worker's probe enters the very policy the
site gives each camera's decoder (``ingest.decoder`` through ``decoder_spec``, then the
client's preload), then tries each forbidden act. The targets are world-readable and
world-writable, so every refusal comes from the sandbox, not from file permissions.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kontur.config import load_config
from kontur.decoder.client import DecoderSettings, SandboxedDecoder
from kontur.runtime.wiring import decoder_spec

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0,
    reason="the decoder sandbox is the worker's (Linux); these tests run as root, as CI does",
)

REFUSED = (
    "inet_connect",
    "unix_socket",
    "write_tmp",
    "setuid_root",
    "ptrace_parent",
    "signal_parent",
    "exec_binary",
    "fork",
    "clone_process",
    "write_data_dir",
    "mkdir_data_dir",
)


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kontur-decoder-", dir="/tmp"))  # traversable by all
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_site_decoder_policy_refuses_every_forbidden_act(root: Path) -> None:
    data = root / "data"
    data.mkdir()
    os.chmod(data, 0o777)
    secret = data / "site-ca.key"
    secret.write_text("not a real key\n")
    os.chmod(secret, 0o644)
    spec = decoder_spec(load_config(), data, root / "run" / "decoder-cam1")
    settings = DecoderSettings(sandbox=spec["sandbox"], slot_bytes=3 * 64 * 64)
    decoder = SandboxedDecoder(settings, lambda *_: None)
    try:
        policy = decoder.sandbox_for(root / "run" / "decoder-cam1" / "probe")
    finally:
        decoder.close()
    assert policy["preload"][:2] == ["numpy", "av"] and policy["required"] == "all"
    path = root / "policy.json"
    path.write_text(json.dumps(policy))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        args = [str(path), "--secret", str(secret), "--data-dir", str(data),
                "--port", str(server.getsockname()[1])]  # fmt: skip
        run = subprocess.run(
            [sys.executable, "-m", "kontur.worker.sandbox.probe", *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.splitlines()[-1])
    assert out["isolation"]["level"] == "full", out["isolation"]
    acts = out["acts"]
    assert acts["write_scratch"]["ok"], acts["write_scratch"]
    for act in (*REFUSED, f"read_secret:{secret}"):
        assert not acts[act]["ok"], (act, acts[act])
