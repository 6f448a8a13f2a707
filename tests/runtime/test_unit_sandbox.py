"""Issue 15 §4: the sandboxes still work under the service unit's restrictions (ADR 0036).

systemd cannot run here (PID 1 is not systemd), so the unit is not started. Instead each
restriction the sandbox could trip over is applied the way systemd applies it:

- ``MemoryDenyWriteExecute=yes``: systemd 252 loads a seccomp filter refusing ``mmap`` with
  ``PROT_WRITE|PROT_EXEC``, ``mprotect``/``pkey_mprotect`` with ``PROT_EXEC`` and ``shmat``
  with ``SHM_EXEC`` (``src/shared/seccomp-util.c``); the same rules are loaded here, before
  the interpreter is executed, and the worker's sandbox probe runs a real model under them
  (ONNX Runtime copes; OpenVINO does not, hence ``--unsafe-write-execute``);
- ``User=`` an unprivileged account, ``CapabilityBoundingSet=`` empty, ``NoNewPrivileges``:
  ``setpriv`` gives a process exactly those credentials, and the sandbox is entered and
  measured under them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.service_user import SERVICE_UID
from tests.service_user import as_service_user as run_as_service_user

from kontur.worker.process import SANDBOX_PRELOAD

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or os.uname().machine not in ("x86_64", "aarch64"),
    reason="the sandbox and these seccomp rules are for Linux on x86_64 and aarch64",
)

#: Loads systemd's MemoryDenyWriteExecute= rules, then executes argv[1:].
_MDWE = r"""
import ctypes, errno, os, struct, sys
PROT_WRITE, PROT_EXEC, SHM_EXEC = 2, 4, 0o100000
ARCH = {"x86_64": (0xC000003E, dict(mmap=9, mprotect=10, pkey_mprotect=329, shmat=30)),
        "aarch64": (0xC00000B7, dict(mmap=222, mprotect=226, pkey_mprotect=288, shmat=196))}
audit, nr = ARCH[os.uname().machine]
LD, JEQ, JSET, AND, RET = 0x20, 0x15, 0x45, 0x54, 0x06
ALLOW, DENY = 0x7FFF0000, 0x00050000 | errno.EPERM
ARG2 = 16 + 2 * 8  # struct seccomp_data: nr, arch, ip, args[6]
def i(code, k, jt=0, jf=0):
    return struct.pack("=HBBI", code, jt, jf, k)
p = [i(LD, 4), i(JEQ, audit, jt=1), i(RET, ALLOW), i(LD, 0)]
p += [i(JEQ, nr["mmap"], jf=5), i(LD, ARG2), i(AND, PROT_WRITE | PROT_EXEC),
      i(JEQ, PROT_WRITE | PROT_EXEC, jf=1), i(RET, DENY), i(RET, ALLOW)]
for name, bit in (("mprotect", PROT_EXEC), ("pkey_mprotect", PROT_EXEC), ("shmat", SHM_EXEC)):
    p += [i(JEQ, nr[name], jf=4), i(LD, ARG2), i(JSET, bit, jf=1), i(RET, DENY), i(RET, ALLOW)]
p.append(i(RET, ALLOW))
raw = b"".join(p)
buf = ctypes.create_string_buffer(raw, len(raw))
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
libc = ctypes.CDLL(None, use_errno=True)
prog = Prog(len(p), ctypes.addressof(buf))
if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(prog), 0, 0):
    raise SystemExit(f"mdwe: the filter did not load: errno {ctypes.get_errno()}")
os.execv(sys.argv[1], sys.argv[1:])
"""

_WX_PROBE = """
import mmap
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("allowed")
except PermissionError:
    print("refused")
"""


def under_mdwe(*argv: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _MDWE, sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_emulated_rules_refuse_write_and_execute() -> None:
    """The filter is really in force in the executed interpreter (else the rest proves nothing)."""
    assert under_mdwe("-c", _WX_PROBE).stdout.strip() == "refused"
    plain = subprocess.run([sys.executable, "-c", _WX_PROBE], capture_output=True, text=True)
    assert plain.stdout.strip() == "allowed"


def test_the_worker_sandbox_and_onnxruntime_run_under_memory_deny_write_execute(
    tmp_path: Path, shared_file: Callable[[str], Path]
) -> None:
    """numpy, OpenCV and ONNX Runtime import inside the full sandbox, and YOLOX infers."""
    model = shared_file("models/yolox_nano.onnx")
    os.chmod(tmp_path, 0o755)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"scratch_dir": str(tmp_path / "s"), "preload": SANDBOX_PRELOAD}))
    out = under_mdwe("-m", "kontur.worker.sandbox.probe", str(policy), f"--model={model}")
    assert out.stdout, out.stderr[-2000:]
    result = json.loads(out.stdout.splitlines()[0])
    assert result["isolation"]["level"] == "full", result["isolation"]["missing"]
    assert result["acts"]["model_inference"]["ok"], result["acts"]["model_inference"]


_OPENVINO = """
import sys
from pathlib import Path
import numpy as np
import openvino as ov
core = ov.Core()
xml, weights = Path(sys.argv[1]).read_bytes(), Path(sys.argv[2]).read_bytes()
compiled = core.compile_model(core.read_model(xml, ov.Tensor(np.frombuffer(weights, np.uint8))))
compiled([np.zeros(tuple(compiled.input(0).shape), np.float32)])
print("inferred")
"""


def test_openvino_does_not_run_under_memory_deny_write_execute(
    shared_file: Callable[[str], Path],
) -> None:
    """OpenVINO's CPU plugin generates code at run time and cannot make it executable: why an
    OpenVINO release needs ``kontur service unit --unsafe-write-execute`` (ADR 0036)."""
    pytest.importorskip("openvino")
    xml = shared_file("models/pedestrian-detection-adas-0002.xml")
    weights = shared_file("models/pedestrian-detection-adas-0002.bin")
    refused = under_mdwe("-c", _OPENVINO, str(xml), str(weights))
    assert refused.returncode != 0 and "can't protect" in refused.stderr, refused.stderr[-2000:]
    plain = subprocess.run(
        [sys.executable, "-c", _OPENVINO, str(xml), str(weights)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert plain.stdout.strip() == "inferred", plain.stderr[-2000:]


# --- the unit's credentials: an unprivileged user, no capabilities, no_new_privs ------------


_AS_SERVICE = """
import json, subprocess, sys
from pathlib import Path
from kontur.worker.sandbox import SandboxPolicy, measure
root = Path(sys.argv[1])
obj = {"scratch_dir": str(root / "s"), "scratch_max_mb": 4}
(root / "p.json").write_text(json.dumps(obj))
policy = SandboxPolicy.from_json(obj, default_scratch=root / "unused")
worker = subprocess.Popen(
    [sys.executable, "-m", "kontur.worker.sandbox.probe", str(root / "p.json"), "--hold=30"],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
claim = json.loads(worker.stdout.readline())["isolation"]
try:
    measured = measure(worker.pid, policy, claimed=claim).to_json()
except OSError as exc:
    measured = {"level": "error", "missing": [f"{type(exc).__name__}: {exc}"]}
worker.kill()
print(json.dumps({"claim": claim, "measured": measured}))
"""


@pytest.fixture(scope="module")
def as_service_user() -> Iterator[dict[str, Any]]:
    with run_as_service_user(lambda root: ["-c", _AS_SERVICE, str(root)],
                             prefix="kontur-unit-", timeout=120) as out:  # fmt: skip
        yield out


def test_the_sandbox_is_full_with_the_units_credentials(as_service_user: dict[str, Any]) -> None:
    """No capability and an empty bounding set: netns and the scratch tmpfs come from the
    unprivileged user namespace, Landlock and seccomp need nothing."""
    claim = as_service_user["claim"]
    assert claim["level"] == "full", claim["missing"]
    assert claim["network"].startswith("netns+seccomp")
    assert claim["scratch"] == "tmpfs 4 MiB"
    assert claim["user"] == f"uid {SERVICE_UID} gid {SERVICE_UID} (not root: nothing to drop)"


def test_the_supervisor_measures_the_sandbox_with_the_units_credentials(
    as_service_user: dict[str, Any],
) -> None:
    """The non-dumpable worker's /proc/PID/ns/* needs PTRACE_MODE_READ, which the unit's
    supervisor lacks (no CAP_SYS_PTRACE): the namespaces are measured from what it can read."""
    measured = as_service_user["measured"]
    assert measured["level"] == "full", measured["missing"]
    assert measured["network"] == "netns+seccomp"
    assert measured["scratch"] == "tmpfs 4 MiB"
    assert measured["user"] == f"uid {SERVICE_UID} gid {SERVICE_UID} (not root: nothing to drop)"
    [evidence] = [n for n in measured["notes"] if n.startswith("namespaces measured: ")]
    assert "net from inode of net/dev (/proc/PID/ns/net: Permission denied)" in evidence
    assert "mnt from mount ids in mountinfo" in evidence


# --- the unit's own seccomp filters and the supervisor's measurement -----------------------

_PLAIN_UNDER_FILTERS = """
import json, subprocess, sys
from pathlib import Path
from kontur.worker.sandbox import SandboxPolicy, measure
policy = SandboxPolicy.from_json({"scratch_dir": sys.argv[1]}, default_scratch=Path(sys.argv[1]))
plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
try:
    report = measure(plain.pid, policy)
finally:
    plain.kill()
print(json.dumps({"missing": list(report.missing), "syscalls": report.syscalls}))
"""


def test_a_worker_without_its_own_filter_is_caught_under_the_units_filters(
    tmp_path: Path,
) -> None:
    """Supervisor and worker both start under systemd-like filters (here the W^X rules); the
    'worker' is a plain process that never entered the sandbox: its one filter is inherited."""
    out = under_mdwe("-c", _PLAIN_UNDER_FILTERS, str(tmp_path / "scratch"))
    assert out.stdout, out.stderr[-2000:]
    report = json.loads(out.stdout.splitlines()[-1])
    assert (
        "seccomp: expected a seccomp filter of its own, got 1 filter(s), no more than the "
        "supervisor has (inherited)" in report["missing"]
    ), report
    assert report["syscalls"] == "unavailable: only the 1 filter(s) inherited from the supervisor"
