"""Enter the worker's sandbox exactly as the worker does, then try every forbidden act.

``python -m kontur.worker.sandbox.probe POLICY.json [options]``

Order of steps: parse the policy (the spec's ``sandbox`` dict, through the same
:meth:`SandboxPolicy.from_json` the worker uses); read the model file and list the archive
dir (as the worker reads its inputs: before the sandbox); :func:`enter`; try each act;
print one JSON line ``{"isolation": {...}, "acts": {act: outcome}}``; then ``--hold``
(sleep, so a test can inspect ``/proc/PID`` from outside) or ``--spin`` (burn CPU until
RLIMIT_CPU kills the process).

An outcome is ``{"ok": true, "detail": ...}`` or ``{"ok": false, "error": "PermissionError",
"errno": "EPERM", "detail": ...}``. A policy the sandbox refuses prints
``{"error": ..., "type": ...}`` and exits 3.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import functools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kontur.worker.sandbox import SandboxError, SandboxPolicy, _syscall, enter

__all__ = ["main"]

_PTRACE_ATTACH, _PTRACE_DETACH = 16, 17
_CLONE_NEWUSER = 0x10000000


def _outcome(act: Callable[[], object]) -> dict[str, Any]:
    try:
        return {"ok": True, "detail": repr(act())[:200]}
    except Exception as exc:  # every failure is an outcome to report, not a crash
        code = getattr(exc, "errno", None)
        return {
            "ok": False,
            "error": type(exc).__name__,
            "errno": errno.errorcode.get(code, None) if isinstance(code, int) else None,
            "detail": str(exc)[:200],
        }


def _connect(family: socket.AddressFamily, host: str, port: int) -> str:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(2.0)
        s.connect((host, port))
        return "connected"


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _vm_read(pid: int) -> int:
    """process_vm_readv 8 bytes from ``pid`` (our own buffer's address: valid in ourselves)."""
    src, dst = ctypes.create_string_buffer(8), ctypes.create_string_buffer(8)
    local = _Iovec(ctypes.addressof(dst), 8)
    remote = _Iovec(ctypes.addressof(src), 8)
    args = (pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    return _syscall.syscall("process_vm_readv", *args)


def _ptrace_attach(pid: int) -> int:
    result = _syscall.syscall("ptrace", _PTRACE_ATTACH, pid, 0, 0)
    _syscall.syscall("ptrace", _PTRACE_DETACH, pid, 0, 0)
    return result


def _read(path: Path) -> int:
    return len(path.read_bytes())


def _write(path: Path) -> int:
    with open(path, "w") as f:
        return f.write("written from inside the sandbox\n")


def _write_and_remove(path: Path) -> int:
    """A write where none should succeed: if it does, leave nothing behind."""
    try:
        return _write(path)
    finally:
        path.unlink(missing_ok=True)


def _pair() -> int:
    a, b = socket.socketpair()
    a.close()
    b.close()
    return 2


def _acts(
    policy: SandboxPolicy, args: argparse.Namespace, archive_files: list[Path]
) -> dict[str, dict[str, Any]]:
    ppid, port = os.getppid(), args.port
    acts: dict[str, Callable[[], object]] = {
        "inet_connect": lambda: _connect(socket.AF_INET, "127.0.0.1", port),
        "inet6_connect": lambda: _connect(socket.AF_INET6, "::1", port),
        "unix_socket": lambda: socket.socket(socket.AF_UNIX).detach(),
        "socketpair": _pair,
        "write_scratch": lambda: _write(policy.scratch_dir / "probe-abs.txt"),
        "write_scratch_relative": lambda: _write(Path("probe-rel.txt")),
        "write_tmp": lambda: _write_and_remove(Path("/tmp") / f"kontur-probe-{os.getpid()}"),
        "alloc_small": lambda: len(bytearray(32 << 20)),
        "setuid_root": lambda: os.setuid(0),
        "ptrace_parent": lambda: _ptrace_attach(ppid),
        "process_vm_readv_parent": lambda: _vm_read(ppid),
        "process_vm_readv_self": lambda: _vm_read(os.getpid()),
        "signal_parent": lambda: os.kill(ppid, 0),
        "unshare_user": lambda: _syscall.syscall("unshare", _CLONE_NEWUSER),
        "exec_binary": lambda: subprocess.run(["/bin/true"], check=True).returncode,
        "read_proc1_environ": lambda: len(Path("/proc/1/environ").read_bytes()),
        "read_etc_passwd": lambda: len(Path("/etc/passwd").read_bytes()),
    }
    if policy.memory_bytes is not None:
        acts["alloc_over_limit"] = lambda: len(bytearray(policy.memory_bytes or 0))
    for secret in args.secret:
        acts[f"read_secret:{secret}"] = functools.partial(_read, Path(secret))
    if args.archive:
        archive = Path(args.archive)
        acts["list_archive"] = lambda: os.listdir(archive)
        acts["write_archive"] = lambda: _write_and_remove(archive / "probe-write.txt")
        if archive_files:
            acts["read_archive"] = lambda: len(archive_files[0].read_bytes())
    return {name: _outcome(act) for name, act in acts.items()}


def _model_check(model: bytes) -> dict[str, Any]:
    """Build the YOLOX detector from bytes inside the sandbox and run it once."""
    import numpy as np

    from kontur.worker.detectors import YoloxOnnxDetector

    det = YoloxOnnxDetector(model, intra_op_threads=1)
    n = len(det.infer(np.zeros((360, 480, 3), np.uint8)))
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(line.split()[1] for line in status if line.startswith("VmPeak:"))
    return {"ok": True, "detail": f"{n} detections", "vm_peak_kb": int(peak)}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m kontur.worker.sandbox.probe")
    ap.add_argument("policy", type=Path, help="the spec's sandbox dict, as JSON")
    ap.add_argument(
        "--secret", action="append", default=[], help="a file that must stay unreadable (keys)"
    )
    ap.add_argument("--archive", help="a directory that must stay unreadable and unwritable")
    ap.add_argument("--port", type=int, default=9, help="a TCP port listening on localhost")
    ap.add_argument("--model", type=Path, help="an ONNX model to build and run inside")
    ap.add_argument("--hold", type=float, default=0.0, help="sleep this long after the acts")
    ap.add_argument("--spin", action="store_true", help="burn CPU until RLIMIT_CPU kills us")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parse(argv)
    default_scratch = Path(tempfile.gettempdir()) / f"kontur-probe-{os.getpid()}"
    model = args.model.read_bytes() if args.model else None
    archive_files = sorted(p for p in Path(args.archive).iterdir()) if args.archive else []
    try:
        obj = json.loads(args.policy.read_text())
        policy = SandboxPolicy.from_json(obj, default_scratch=default_scratch)
        report = enter(policy)
    except SandboxError as exc:
        print(json.dumps({"error": str(exc), "type": type(exc).__name__}), flush=True)
        return 3
    if args.spin:
        print(json.dumps({"isolation": report.to_json()}), flush=True)
        while True:
            pass
    acts = _acts(policy, args, [p for p in archive_files if p.is_file()])
    if model is not None:
        try:
            acts["model_inference"] = _model_check(model)
        except Exception as exc:  # reported, so a test sees what the sandbox broke
            acts["model_inference"] = {"ok": False, "error": type(exc).__name__, "detail": str(exc)}
    print(json.dumps({"isolation": report.to_json(), "acts": acts}), flush=True)
    if args.hold:
        time.sleep(args.hold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
