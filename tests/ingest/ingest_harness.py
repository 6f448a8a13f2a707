"""Run the real ingest process the way the supervisor starts it, and collect what it says.

:class:`IngestRig` creates the camera's ring in ``/dev/shm`` (the supervisor's part), lets a
test attach readers to it, then starts ``python -m kontur.ingest.process SPEC`` with its
pipes, drains them until the process ends, and returns an :class:`IngestRun`: the messages
ingest sent the supervisor, its exit code, its stderr and its peak RSS (``VmHWM``, read by a
tiny wrapper as the process exits; ``ru_maxrss`` would also count the forked parent).
"""

from __future__ import annotations

import json
import os
import secrets
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from kontur.clock import SystemClock
from kontur.config import Profile
from kontur.ingest.democam import provision_demo_camera
from kontur.ingest.source import probe
from kontur.wire.framering import FrameRing, RingReader
from kontur.wire.messages import Message, SourceEnded, decode

__all__ = ["IngestRig", "IngestRun"]

M = TypeVar("M")

#: Runs the module as ``__main__``, then writes the process's VmHWM (KiB) to the file named
#: first on the command line.
_WRAP = """
import runpy, sys
out, module, *rest = sys.argv[1:]
sys.argv = [module, *rest]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as f:
        kb = next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:"))
    with open(out, "w") as f:
        f.write(str(kb))
"""


@dataclass(frozen=True)
class IngestRun:
    """What one ingest process did."""

    returncode: int
    stderr: str
    messages: tuple[Message, ...]
    """Everything it sent the supervisor, in order."""
    peak_mb: float
    """Its peak resident set (MiB), the ring's shared pages it touched included."""
    wall_s: float

    def of(self, kind: type[M]) -> list[M]:
        """The messages of one type."""
        return [m for m in self.messages if isinstance(m, kind)]

    @property
    def ended(self) -> SourceEnded:
        """Its one :class:`SourceEnded`."""
        ended = self.of(SourceEnded)
        assert len(ended) == 1, (ended, self.stderr)
        return ended[0]


class IngestRig:
    """One camera's ring and the ingest process that writes it (use as a context manager)."""

    def __init__(
        self,
        tmp: Path,
        source: Path,
        *,
        slots: int = 16,
        strict: bool = False,
        sign: bool = False,
        realtime: bool = False,
        profile: Profile | None = None,
        spec: dict[str, Any] | None = None,
    ) -> None:
        """Prepare the run: ``sign`` has the simulated demo camera sign the clip."""
        self.tmp, self.source = tmp, source
        self.profile = profile or probe(str(source)).profile()
        self.data_dir = tmp / f"data-{secrets.token_hex(3)}"
        self.ring = FrameRing(
            f"kontur-test-ingest-{secrets.token_hex(4)}",
            slots,
            self.profile.height,
            self.profile.width,
            2,
        )
        self.readers: list[RingReader] = []
        demo = None
        if sign:
            files = provision_demo_camera(self.data_dir, "cam", SystemClock())
            demo = {"key": str(files.key_path), "chain": str(files.chain_path)}
        self.spec: dict[str, Any] = {
            "camera_id": "cam",
            "source": str(source),
            "profile": self.profile.model_dump(),
            "ring": self.ring.name,
            "slots": slots,
            "readers": 2,
            "data_dir": str(self.data_dir),
            "realtime": realtime,
            "critical": strict,
            "demo_camera": demo,
            **(spec or {}),
        }

    def __enter__(self) -> IngestRig:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for reader in self.readers:
            reader.close()
        self.ring.close(unlink=True)

    def reader(self, index: int) -> RingReader:
        """Attach reader ``index`` (0 = worker, 1 = verifier) before ingest starts."""
        reader = RingReader(self.ring.name, index)
        self.readers.append(reader)
        return reader

    def run(self, timeout: float = 60.0) -> IngestRun:
        """Start ingest, drain its pipes until it ends; kills it after ``timeout`` seconds."""
        pipes = {k: os.pipe() for k in ("supervisor", "gate", "control", "wake0", "wake1")}
        child = [w for k, (_, w) in pipes.items() if k != "control"] + [pipes["control"][0]]
        for fd in child:
            os.set_inheritable(fd, True)
        spec = dict(
            self.spec,
            wake_fds=[pipes["wake0"][1], pipes["wake1"][1]],
            supervisor_fd=pipes["supervisor"][1],
            gate_fd=pipes["gate"][1],
            control_fd=pipes["control"][0],
        )
        spec_path = self.tmp / f"spec-{secrets.token_hex(3)}.json"
        spec_path.write_text(json.dumps(spec))
        hwm = self.tmp / f"hwm-{secrets.token_hex(3)}"
        cmd = [sys.executable, "-c", _WRAP, str(hwm), "kontur.ingest.process", str(spec_path)]
        started = time.monotonic()
        proc = subprocess.Popen(cmd, pass_fds=child, stderr=subprocess.PIPE)
        ours = [r for k, (r, _) in pipes.items() if k != "control"]
        try:
            for fd in child:
                os.close(fd)
            assert proc.stderr is not None
            got = _drain([*ours, proc.stderr.fileno()], proc, started + timeout)
            raw, stderr = got[ours[0]], got[proc.stderr.fileno()].decode()
            rc = proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stderr:
                proc.stderr.close()
            for fd in [*ours, pipes["control"][1]]:
                os.close(fd)
        lines = [ln for ln in raw.split(b"\n") if ln]
        peak = int(hwm.read_text()) / 1024 if hwm.exists() else float("nan")
        return IngestRun(
            rc, stderr, tuple(decode(ln) for ln in lines), peak, time.monotonic() - started
        )


def _drain(fds: list[int], proc: subprocess.Popen[bytes], deadline: float) -> dict[int, bytes]:
    """Read every pipe until all are at EOF; what came on each."""
    open_fds, out = list(fds), {fd: bytearray() for fd in fds}
    while open_fds:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"ingest did not end in time; it sent {bytes(out[fds[0]])!r}")
        ready, _, _ = select.select(open_fds, [], [], 0.5)
        for fd in ready:
            chunk = os.read(fd, 1 << 16)
            if chunk:
                out[fd] += chunk
            else:
                open_fds.remove(fd)
    return {fd: bytes(data) for fd, data in out.items()}
