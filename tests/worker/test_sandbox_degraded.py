"""On a kernel that lacks a mechanism the sandbox says so, and ``required`` makes it an error.

The older kernels are simulated at the system-call boundary: in the probe's process, before
``enter()``, ``kontur.worker.sandbox._syscall.syscall`` is wrapped so the named calls fail
as such a kernel fails them (ENOSYS for Landlock before 5.13 or seccomp() before 3.17, ABI 3
for Landlock before 6.7). Everything else reaches the real kernel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0,
    reason="the worker sandbox is Linux-only; these tests run as root, as CI does",
)

#: Fake kernels: which system call answers what (``errno`` to fail with, or a value).
KERNELS: dict[str, dict[str, Any]] = {
    "kernel_without_landlock": {"landlock_": {"errno": "ENOSYS"}},
    "kernel_with_landlock_abi_3": {"landlock_create_ruleset:version": {"value": 3}},
    "kernel_without_seccomp": {"seccomp": {"errno": "ENOSYS"}, "prctl:22": {"errno": "EINVAL"}},
    # a container without CAP_SYS_ADMIN over its mounts (or mount denied by its own filter)
    "mount_refused": {"mount": {"errno": "EPERM"}},
}

_CHILD = """
import errno, json, sys
from kontur.worker.sandbox import _syscall
from kontur.worker.sandbox.probe import main

fake, real = json.loads(sys.argv[1]), _syscall.syscall

def answer(name, *args):
    keys = [name, name.split("_")[0] + "_", f"{name}:{args[0] if args else ''}"]
    if name == "landlock_create_ruleset" and args and args[0] is None:
        keys.append(name + ":version")
    for key in keys:
        if key in fake:
            if "errno" in fake[key]:
                code = getattr(errno, fake[key]["errno"])
                raise OSError(code, name + ": simulated kernel")
            return fake[key]["value"]
    return real(name, *args)

_syscall.syscall = answer
sys.exit(main(sys.argv[2:]))
"""


def _probe(kernel: str, policy: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="kontur-degraded-") as tmp:
        os.chmod(tmp, 0o755)
        path = Path(tmp) / "policy.json"
        path.write_text(json.dumps({"scratch_dir": f"{tmp}/scratch", **policy}))
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(KERNELS[kernel]), str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert out.stdout, out.stderr[-2000:]
    return out.returncode, json.loads(out.stdout.splitlines()[0])


@pytest.mark.parametrize(
    ("kernel", "field", "missing", "network"),
    [
        ("kernel_without_landlock", "filesystem", "landlock", "netns+seccomp"),
        ("kernel_with_landlock_abi_3", None, "landlock-net", "netns+seccomp"),
        ("kernel_without_seccomp", "syscalls", "seccomp", "netns+landlock-net"),
        ("mount_refused", "scratch", "scratch", "netns+seccomp+landlock-net"),
    ],
)
def test_missing_mechanism_is_reported_as_degraded(
    kernel: str, field: str | None, missing: str, network: str
) -> None:
    rc, result = _probe(kernel, {})
    report = result["isolation"]
    assert rc == 0
    assert report["level"] == "degraded"
    assert [m.split(":")[0] for m in report["missing"]] == [missing]
    assert report["network"] == network
    if field is not None:
        assert report[field].startswith("unavailable: ")
    if kernel == "kernel_with_landlock_abi_3":
        assert report["filesystem"] == "landlock-abi-3"
        assert result["acts"]["write_tmp"]["errno"] == "EACCES", "ABI 3 still confines files"
    if kernel == "mount_refused":  # scratch on the disk: each file still capped, writable
        assert report["scratch"] == "unavailable: mount: simulated kernel (EPERM)"
        assert result["acts"]["write_scratch"]["ok"] is True


def test_kernel_without_landlock_is_said_to_leave_files_open() -> None:
    """The report does not claim what is not there: /etc/passwd really is readable now."""
    _, result = _probe("kernel_without_landlock", {})
    assert result["isolation"]["filesystem"] == (
        "unavailable: landlock: expected ABI >= 1, the kernel reports none (ENOSYS)"
    )
    assert result["acts"]["read_etc_passwd"]["ok"] is True


@pytest.mark.parametrize(
    ("kernel", "mechanism", "why"),
    [
        ("kernel_without_landlock", "landlock", "expected ABI >= 1, the kernel reports none"),
        ("kernel_without_seccomp", "seccomp", "prctl: simulated kernel (EINVAL)"),
        ("mount_refused", "scratch", "mount: simulated kernel (EPERM)"),
    ],
)
def test_required_mechanism_missing_is_an_error(kernel: str, mechanism: str, why: str) -> None:
    rc, result = _probe(kernel, {"required": [mechanism]})
    assert rc == 3
    assert result["type"] == "MechanismUnavailable"
    assert result["error"].startswith(f"sandbox: expected {mechanism} (required by the policy)")
    assert why in result["error"]
