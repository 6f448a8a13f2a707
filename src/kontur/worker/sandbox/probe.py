"""Enter the worker's sandbox exactly as the worker does, then try every forbidden act.

``python -m kontur.worker.sandbox.probe POLICY.json [options]``

Order of steps: parse the policy (the spec's ``sandbox`` dict, through the same
:meth:`SandboxPolicy.from_json` the worker uses); read the model file and list the archive
dir (as the worker reads its inputs: before the sandbox); :func:`enter`; try each act
(``--limits`` adds those that fill the limits: a file past ``max_file_mb``, scratch past
``scratch_max_mb``, threads and processes past ``max_tasks``; ``--orphan=S`` forks a
grandchild that sleeps S seconds, holding the probe's pipes); print one JSON line
``{"isolation": {...}, "acts": {act: outcome}}``; then ``--hold`` (sleep, so a test can
inspect ``/proc/PID`` from outside) or ``--spin`` (burn CPU until RLIMIT_CPU kills the
process).

An outcome is ``{"ok": true, "detail": ...}`` or ``{"ok": false, "error": "PermissionError",
"errno": "EPERM", "detail": ...}``, with ``"count"`` where an act was refused after some
successes (bytes written, threads or processes started). A policy the sandbox refuses prints
``{"error": ..., "type": ...}`` and exits 3.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kontur.worker.sandbox import IsolationReport, SandboxError, SandboxPolicy, _syscall, enter

__all__ = ["main"]

_PTRACE_ATTACH, _PTRACE_DETACH = 16, 17
_CLONE_NEWUSER = 0x10000000
_SIGCHLD = 17
_WALL = 0x40000000  # waitpid: any child, and a ptrace tracee
_MiB = 1 << 20


class _StoppedAfter(Exception):
    """An act refused after ``count`` successes; keeps the refusal's type and errno."""

    def __init__(self, cause: BaseException, count: int) -> None:
        super().__init__(f"{cause} (after {count})")
        self.cause, self.count = cause, count


def _outcome(act: Callable[[], object]) -> dict[str, Any]:
    try:
        return {"ok": True, "detail": repr(act())[:200]}
    except Exception as exc:  # every failure is an outcome to report, not a crash
        cause = exc.cause if isinstance(exc, _StoppedAfter) else exc
        code = getattr(cause, "errno", None)
        out = {
            "ok": False,
            "error": type(cause).__name__,
            "errno": errno.errorcode.get(code, None) if isinstance(code, int) else None,
            "detail": str(exc)[:200],
        }
        if isinstance(exc, _StoppedAfter):
            out["count"] = exc.count
        return out


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
    """Attach to ``pid`` and let it go at once. Where the attach succeeds (a control run with
    no sandbox) the kernel has sent the parent a SIGSTOP: wait for that stop, detach with no
    signal and continue it, or the parent (a test runner) stays stopped for good."""
    result = _syscall.syscall("ptrace", _PTRACE_ATTACH, pid, 0, 0)
    with contextlib.suppress(OSError):
        os.waitpid(pid, _WALL)
    try:
        _syscall.syscall("ptrace", _PTRACE_DETACH, pid, 0, 0)
    finally:
        os.kill(pid, signal.SIGCONT)
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


def _fork() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _clone_process() -> int:
    """A raw ``clone(SIGCHLD)``: a new process, as glibc's ``fork`` asks for it."""
    pid = _syscall.syscall("clone", _SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _thread() -> str:
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
    return "started and joined"


def _orphan(seconds: float) -> str:
    """Fork a child that forks a grandchild sleeping ``seconds``, then exits: an orphan."""
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            time.sleep(seconds)
        os._exit(0)
    os.waitpid(pid, 0)
    return "the grandchild outlives its parent"


def _execve() -> None:
    os.execv("/bin/true", ["true"])  # replaces the probe if nothing refuses it


def _acts(
    policy: SandboxPolicy,
    args: argparse.Namespace,
    archive_files: list[Path],
    report: IsolationReport,
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
        "fork": _fork,
        "clone_process": _clone_process,
        "clone3": lambda: _syscall.syscall("clone3", None, 0),
        "thread": _thread,
        "write_stderr": lambda: os.write(2, b"probe: one line on the inherited stderr\n"),
        "read_proc1_environ": lambda: len(Path("/proc/1/environ").read_bytes()),
        "read_etc_passwd": lambda: len(Path("/etc/passwd").read_bytes()),
    }
    if report.syscalls == "seccomp-bpf" or report.filesystem.startswith("landlock"):
        acts["execve"] = _execve  # never where nothing would refuse it: the probe would be gone
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
    if args.data_dir:
        data = Path(args.data_dir)
        acts["write_data_dir"] = lambda: _write_and_remove(data / "probe-write.txt")
        acts["write_data_logs"] = lambda: _write_and_remove(data / "run" / "logs" / "probe.log")
        acts["mkdir_data_dir"] = lambda: (data / "probe-dir").mkdir()
    if args.limits:
        acts.update(_limit_acts(policy))
    if args.orphan:
        acts["orphan"] = functools.partial(_orphan, args.orphan)
    return {name: _outcome(act) for name, act in acts.items()}


def _write_bytes(path: Path, size: int, done: list[int]) -> None:
    """Write ``size`` zero bytes to ``path`` (relative: the scratch dir), counting in ``done``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        while size > 0:
            n = os.write(fd, bytes(min(size, _MiB)))
            done[0], size = done[0] + n, size - n
    finally:
        os.close(fd)


def _write_past_file_cap(cap: int) -> int:
    """One file one byte longer than ``cap``: RLIMIT_FSIZE stops it with EFBIG."""
    done = [0]
    try:
        _write_bytes(Path("probe-big.bin"), cap + 1, done)
    except OSError as exc:
        raise _StoppedAfter(exc, done[0]) from exc
    finally:
        Path("probe-big.bin").unlink(missing_ok=True)
    return done[0]


def _fill_scratch(cap: int, per_file: int) -> int:
    """Files of ``per_file`` bytes until the scratch holds 2 MiB more than ``cap``."""
    done, paths = [0], [Path(f"probe-fill-{i}.bin") for i in range((cap + 2 * _MiB) // per_file)]
    try:
        for path in paths:
            _write_bytes(path, per_file, done)
    except OSError as exc:
        raise _StoppedAfter(exc, done[0]) from exc
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
    return done[0]


def _many_threads(limit: int) -> int:
    """Start up to ``limit`` threads (they wait, then all are joined)."""
    stop, started = threading.Event(), []
    try:
        for _ in range(limit):
            t = threading.Thread(target=stop.wait, daemon=True)
            t.start()
            started.append(t)
    except RuntimeError as exc:  # "can't start new thread": clone failed with EAGAIN
        raise _StoppedAfter(exc, len(started)) from exc
    finally:
        stop.set()
        for t in started:
            t.join()
    return len(started)


def _many_processes(limit: int) -> int:
    """Fork up to ``limit`` children that wait on a pipe; all are reaped."""
    r, w = os.pipe()
    pids: list[int] = []
    try:
        for _ in range(limit):
            pid = os.fork()
            if pid == 0:
                os.close(w)
                os.read(r, 1)
                os._exit(0)
            pids.append(pid)
    except OSError as exc:
        raise _StoppedAfter(exc, len(pids)) from exc
    finally:
        os.close(w)
        os.close(r)
        for pid in pids:
            os.waitpid(pid, 0)
    return len(pids)


def _limit_acts(policy: SandboxPolicy) -> dict[str, Callable[[], object]]:
    over = policy.max_tasks + 8
    return {
        "write_past_file_cap": lambda: _write_past_file_cap(policy.max_file_bytes),
        "fill_scratch": lambda: _fill_scratch(
            policy.scratch_max_bytes, min(policy.max_file_bytes, _MiB)
        ),
        "many_threads": lambda: _many_threads(over),
        "many_processes": lambda: _many_processes(over),
    }


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
    ap.add_argument("--data-dir", help="the data dir (archive, run, logs): no write under it")
    ap.add_argument("--limits", action="store_true", help="also fill every limit (see above)")
    ap.add_argument("--orphan", type=float, default=0.0, help="fork a grandchild sleeping S s")
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
    acts = _acts(policy, args, [p for p in archive_files if p.is_file()], report)
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
