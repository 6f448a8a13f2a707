"""The OCR process's sandbox: no network, no write outside its scratch, no new process.

The probe (:mod:`kontur.worker.sandbox.probe`) enters exactly the policy the OCR process
enters (:func:`kontur.textguard.ocr.sandbox_policy`, the OCR engine preloaded inside it) and
then tries each forbidden act; a control run with the sandbox's layers skipped shows each act
would succeed here. The targets are world-writable and a TCP port listens on loopback, so
every refusal comes from the sandbox, not from file permissions or an absent server.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kontur.textguard import OcrFailed, OcrOptions, run_ocr
from kontur.textguard.ocr import sandbox_policy

from .scene import PETS09, board, frame_of, need_ocr

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0,
    reason="the sandbox is Linux-only; these tests run as root, as CI does",
)
ALL_BUT_LIMITS = ["netns", "scratch", "landlock", "seccomp", "user"]


@dataclass
class Land:
    """A data dir to deny (archive, keys), an outside dir anyone may write, a listening port."""

    root: Path
    data: Path
    outside: Path
    port: int

    def probe(self, name: str, skip: list[str], preload: bool) -> dict[str, Any]:
        options = OcrOptions(deny=(self.data,), unsafe_skip=frozenset(skip))
        policy = sandbox_policy(options, self.root / f"scratch-{name}").to_json()
        if not preload:
            policy["preload"] = []
        path = self.root / f"policy-{name}.json"
        path.write_text(json.dumps(policy))
        args = [
            f"--data-dir={self.data}",
            f"--archive={self.data / 'archive'}",
            f"--secret={self.data / 'keys' / 'archive.key'}",
            f"--port={self.port}",
        ]
        proc = subprocess.run(
            [sys.executable, "-m", "kontur.worker.sandbox.probe", str(path), *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.stdout, f"probe printed nothing ({proc.returncode}): {proc.stderr[-2000:]}"
        result: dict[str, Any] = json.loads(proc.stdout.splitlines()[0])
        return result


@pytest.fixture(scope="module")
def land() -> Iterator[Land]:
    root = Path(tempfile.mkdtemp(prefix="kontur-ocr-sandbox-", dir="/tmp"))
    os.chmod(root, 0o755)
    data, outside = root / "data", root / "outside"
    for d in (data, data / "archive", data / "keys", data / "run", data / "run" / "logs", outside):
        d.mkdir()
        os.chmod(d, 0o777)
    (data / "keys" / "archive.key").write_text("not a real key\n")
    (data / "archive" / "records.jsonl").write_text('{"kind": "decision"}\n')
    for f in (data / "keys" / "archive.key", data / "archive" / "records.jsonl"):
        os.chmod(f, 0o644)
    server = socket.socket(socket.AF_INET)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield Land(root, data, outside, server.getsockname()[1])
    finally:
        server.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def acts(land: Land) -> dict[str, Any]:
    need_ocr()
    result = land.probe("full", [], preload=True)
    assert result["isolation"]["level"] == "full", result["isolation"]["missing"]
    acts: dict[str, Any] = result["acts"]
    return acts


def _refused(outcome: dict[str, Any]) -> None:
    assert outcome["ok"] is False, f"expected a refusal, the act succeeded: {outcome}"


def test_the_ocr_sandbox_refuses_the_network(acts: dict[str, Any]) -> None:
    _refused(acts["inet_connect"])
    _refused(acts["inet6_connect"])


def test_the_ocr_sandbox_refuses_writes_outside_its_scratch(acts: dict[str, Any]) -> None:
    assert acts["write_scratch"]["ok"], acts["write_scratch"]
    assert acts["write_scratch_relative"]["ok"], acts["write_scratch_relative"]
    for act in ("write_tmp", "write_data_dir", "write_data_logs", "mkdir_data_dir"):
        _refused(acts[act])
    for act in ("read_secret:" + next(k.split(":", 1)[1] for k in acts if k.startswith("read_s")),
                "read_archive", "list_archive", "write_archive"):  # fmt: skip
        _refused(acts[act])


def test_the_ocr_sandbox_refuses_new_processes_and_exec(acts: dict[str, Any]) -> None:
    for act in ("fork", "clone_process", "exec_binary", "execve", "setuid_root", "ptrace_parent"):
        _refused(acts[act])


def test_control_without_the_sandbox_each_act_succeeds(land: Land) -> None:
    acts = land.probe("control", ALL_BUT_LIMITS, preload=False)["acts"]
    for act in ("inet_connect", "write_tmp", "write_data_dir", "read_archive"):
        assert acts[act]["ok"], (act, acts[act])


def test_the_ocr_runs_in_the_sandbox_and_never_in_this_process(land: Land) -> None:
    need_ocr()
    image = board(frame_of(PETS09, 100), ["KONTUR 42"])
    run = run_ocr(image, OcrOptions(deny=(land.data,), scratch_root=land.outside))
    assert run.measured.source == "supervisor" and run.measured.level == "full"
    assert run.measured.network.startswith("netns")
    assert run.claimed.source == "worker" and run.claimed.level == "full"
    assert "kontur.textguard._engine" not in sys.modules
    assert "rapidocr_onnxruntime" not in sys.modules
    assert not list(land.outside.iterdir()), "the OCR's temp dir is removed"


def test_a_policy_exposing_the_data_dir_is_refused(land: Land) -> None:
    """A data dir under a path the OCR must read (here the interpreter's prefix) cannot be
    kept unreachable: the OCR process refuses to start, in one line."""
    need_ocr()
    exposed = Path(sys.prefix) / "kontur-data"
    with pytest.raises(OcrFailed, match=r"^ocr: expected OcrReady, got failure: Sandbox") as info:
        run_ocr(frame_of(PETS09, 100), OcrOptions(deny=(exposed,)))
    assert f"expected {exposed} unreachable" in str(info.value)


def test_a_child_over_its_time_is_killed(land: Land) -> None:
    need_ocr()
    with pytest.raises(OcrFailed, match=r"^ocr: expected the OCR process to answer in time"):
        run_ocr(frame_of(PETS09, 100), OcrOptions(timeout_s=0.5))
