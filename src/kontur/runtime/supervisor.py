"""Starts kontur's process tree from a declarative table and stops it in reverse order.

Every block runs as ``python -m kontur.<block>.process SPEC.json`` in a fresh interpreter
(not a fork of the supervisor), so a block imports only what its own module imports: the
verifier and the gate never map an inference runtime (``/proc/<pid>/maps`` shows it).
A child's stderr goes to ``<run_dir>/logs/<name>.log``, never to the operator's console.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kontur._private import open_private, printable, private_dir

__all__ = ["Block", "Running", "Supervisor", "peak_rss_kb"]


def peak_rss_kb(pid: int | str = "self") -> int:
    """Peak resident set size (``VmHWM``) of process ``pid`` in kB; 0 when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def descendants(roots: set[int]) -> dict[int, int]:
    """Every live descendant of the processes ``roots``, as ``{pid: its root}`` (one pass
    over ``/proc``: the kernel here may not offer ``/proc/PID/task/TID/children``)."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out: dict[int, int] = {}
    for pid in parents:
        p = parents[pid]
        for _ in range(64):  # a bounded walk up: pids are reused, a loop is possible
            if p in roots:
                out[pid] = p
                break
            if p not in parents:
                break
            p = parents[p]
    return out


@dataclass
class Block:
    """One row of the process table."""

    name: str
    module: str
    spec: dict[str, Any]
    pass_fds: tuple[int, ...]
    platform: str = "cpu"
    stdin_data: bytes | None = None
    restartable: bool = False
    #: Start with only the variables a Python process needs, not the supervisor's whole
    #: environment (which may hold secrets, e.g. a webhook key): for the untrusted worker.
    minimal_env: bool = False
    log_path: Path | None = None
    """Where its stderr goes instead of ``<run_dir>/logs/<name>.log`` (the untrusted worker
    logs outside the data dir, bounded by its RLIMIT_FSIZE; :meth:`Supervisor.keep_log`
    copies the tail back at the end)."""


#: What an untrusted block inherits from the supervisor's environment.
MINIMAL_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "PYTHONPATH", "TZ")


@dataclass
class Running:
    """A started block."""

    block: Block
    proc: subprocess.Popen[bytes]
    started_at: float
    restarts: int = 0
    stop_asked: bool = False
    """The run asked this process to stop (:meth:`Supervisor.signal_stop`)."""
    pids: list[int] = field(default_factory=list)
    peak_rss_kb: int = 0
    """Highest VmHWM seen across this block's processes (read just before each stop)."""
    children_peak_kb: int = 0
    """The highest sum, over the samples, of the VmHWM of the processes the block started
    and still runs (ingest's sandboxed decoder, the RTSPS relay): what its children cost at
    once on top of it (a decoder restarted many times is not counted many times)."""


class Supervisor:
    """Owns the child processes of one run."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        private_dir(run_dir / "logs")  # 0700 whatever the umask (ADR 0021)
        private_dir(run_dir / "specs")
        self.running: dict[str, Running] = {}
        self.order: list[str] = []
        self._children_sampled = -1e9

    def _spawn(self, block: Block) -> subprocess.Popen[bytes]:
        spec_path = self.run_dir / "specs" / f"{block.name.replace(':', '_')}.json"
        fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(block.spec, f)
        if block.log_path is not None and block.log_path.exists():
            # RLIMIT_FSIZE caps the file, not one life of the block: each spawn starts afresh
            block.log_path.replace(block.log_path.with_suffix(".log.1"))
        log = os.fdopen(open_private(block.log_path or self._log_path(block.name)), "ab")
        base = (
            {k: os.environ[k] for k in MINIMAL_ENV_KEYS if k in os.environ}
            if block.minimal_env
            else dict(os.environ)
        )
        env = dict(base, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
        proc = subprocess.Popen(
            [sys.executable, "-m", block.module, str(spec_path)],
            stdin=subprocess.PIPE if block.stdin_data is not None else subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=block.pass_fds,
            env=env,
            start_new_session=True,
        )
        log.close()
        if block.stdin_data is not None:
            assert proc.stdin is not None
            try:
                proc.stdin.write(len(block.stdin_data).to_bytes(8, "big") + block.stdin_data)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        return proc

    def _log_path(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name.replace(':', '_')}.log"

    def last_log_line(self, name: str, max_chars: int = 300) -> str | None:
        """The last non-empty line of block ``name``'s log, printable and cut to
        ``max_chars``: after a crash, its exception (None when there is no log)."""
        running = self.running.get(name)
        path = running.block.log_path if running is not None else None
        path = path or self._log_path(name)
        try:
            with open(path, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - 8192))
                tail = f.read().decode("utf-8", "replace")
        except OSError:
            return None
        lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
        if not lines:
            return None
        line = printable(lines[-1])
        return line if len(line) <= max_chars else line[: max_chars - 1] + "…"

    def keep_logs(self, max_bytes: int = 1 << 20) -> None:
        """Copy the last ``max_bytes`` of each log kept outside the run dir into it."""
        for r in self.running.values():
            src = r.block.log_path
            if src is None or not src.exists():
                continue
            with open(src, "rb") as f:
                f.seek(max(0, src.stat().st_size - max_bytes))
                tail = f.read()
            fd = open_private(self._log_path(r.block.name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            with os.fdopen(fd, "wb") as out:
                out.write(tail)

    def remove_specs(self) -> None:
        """Delete the blocks' spec files once every block has stopped.

        An ingest's spec holds its camera URL, the gate's the webhook URL, credentials
        included (the blocks need them in clear); they are mode 0600 while the run lasts and
        gone after it, so no credential stays at rest in the data dir (ADR 0019).
        """
        shutil.rmtree(self.run_dir / "specs", ignore_errors=True)

    def spawn_once(self, block: Block) -> subprocess.Popen[bytes]:
        """Start a one-shot block outside the table (the sandboxed probe and bench)."""
        return self._spawn(block)

    def reap_once(self, proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
        """Wait for a one-shot block to exit; stop it after ``grace_s``."""
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._terminate(proc, 1.0)

    def start(self, blocks: list[Block]) -> None:
        """Start the blocks in table order."""
        for b in blocks:
            proc = self._spawn(b)
            self.running[b.name] = Running(b, proc, time.monotonic(), pids=[proc.pid])
            self.order.append(b.name)

    def restart(self, name: str, **spec_updates: Any) -> Running:
        """Start a block again (after a crash or hang), optionally with a changed spec."""
        r = self.running[name]
        self.sample_memory(force=True)
        self._terminate(r.proc, grace_s=0.5)
        r.block.spec.update(spec_updates)
        if "platform" in spec_updates:
            r.block.platform = spec_updates["platform"]
        r.proc = self._spawn(r.block)
        r.started_at = time.monotonic()
        r.stop_asked = False
        r.restarts += 1
        r.pids.append(r.proc.pid)
        return r

    def exited(self) -> list[tuple[str, int]]:
        """Blocks whose process has exited since start, with their exit codes."""
        return [(name, rc) for name, r in self.running.items() if (rc := r.proc.poll()) is not None]

    def sample_memory(self, *, force: bool = False) -> None:
        """Record each live block's peak resident memory so far, and that of its
        descendants (at most once a second unless ``force``: a stop or restart forces it)."""
        for r in self.running.values():
            if r.proc.poll() is None:
                r.peak_rss_kb = max(r.peak_rss_kb, peak_rss_kb(r.proc.pid))
        now = time.monotonic()
        if not force and now - self._children_sampled < 1.0:
            return
        self._children_sampled = now
        by_root = {r.proc.pid: r for r in self.running.values() if r.proc.poll() is None}
        summed = dict.fromkeys(by_root, 0)
        for pid, root in descendants(set(by_root)).items():
            summed[root] += peak_rss_kb(pid)
        for root, kb in summed.items():
            by_root[root].children_peak_kb = max(by_root[root].children_peak_kb, kb)

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes], grace_s: float) -> None:
        if proc.poll() is not None:
            return
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass

    def signal_stop(self, name: str) -> None:
        """Ask one block to stop (SIGTERM) without waiting for it."""
        running = self.running[name]
        if running.proc.poll() is None:
            running.stop_asked = True
            running.proc.send_signal(signal.SIGTERM)

    def stop(self, name: str, grace_s: float = 5.0) -> None:
        """Stop one block (SIGTERM, then SIGKILL after ``grace_s``)."""
        self.sample_memory(force=True)
        self._terminate(self.running[name].proc, grace_s)

    def stop_all(self, grace_s: float = 5.0) -> None:
        """Stop every block, in the reverse of the start order."""
        for name in reversed(self.order):
            self.stop(name, grace_s)

    def table(self) -> list[dict[str, Any]]:
        """``processes`` for the summary: name, pid (the first), platform."""
        return [
            {
                "name": n,
                "pid": self.running[n].pids[0],
                "pids": list(self.running[n].pids),
                "platform": self.running[n].block.platform,
                "restarts": self.running[n].restarts,
                "peak_rss_mb": round(self.running[n].peak_rss_kb / 1024, 1),
                "children_peak_rss_mb": round(self.running[n].children_peak_kb / 1024, 1),
            }
            for n in self.order
        ]
