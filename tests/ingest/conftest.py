"""Fixtures of the ingest tests: raw Annex-B files made from real footage, and a real RTSP
server (GStreamer's gst-rtsp-server, run by Debian's system Python) on loopback.

Without the server's system packages the RTSP tests skip, with the reason; under CI (the
``CI`` environment variable set) they fail instead, so CI cannot go green by skipping.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import av.bitstream
import pytest

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).resolve().parents[1] / "rtsp_server.py"
_GI_CHECK = """
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst
Gst.init(None)
need = ("filesrc", "qtdemux", "h264parse", "h265parse", "rtph264pay", "rtph265pay")
missing = [e for e in need if Gst.ElementFactory.find(e) is None]
if missing:
    raise SystemExit("missing GStreamer elements: " + ", ".join(missing))
"""
_APT = (
    "apt-get install -y python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
)


def extract_annexb(src: Path, dst: Path) -> Path:
    """Write ``src``'s video stream as a raw Annex-B elementary stream (``*_mp4toannexb``)."""
    with av.open(str(src)) as container, open(dst, "wb") as out:
        stream = container.streams.video[0]
        name = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}[stream.codec_context.name]
        bsf = av.bitstream.BitStreamFilterContext(name, stream)
        for packet in container.demux(stream):
            for filtered in bsf.filter(packet if packet.size else None):
                out.write(bytes(filtered))
    return dst


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RtspServer:
    """One gst-rtsp-server process serving ``file`` at ``rtsp://127.0.0.1:PORT/stream``."""

    extra: tuple[str, ...] = ()
    """More arguments for tests/rtsp_server.py (the RTSPS tests' --tls-cert, --client-ca)."""

    def __init__(self, file: Path, codec: str, fast: bool) -> None:
        self.file, self.codec, self.fast = file, codec, fast
        self.port = _free_port()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        """The stream's URL."""
        return f"rtsp://127.0.0.1:{self.port}/stream"

    def start(self, fast: bool | None = None, timeout: float = 10.0) -> None:
        """Start the server (on the same port as before) and wait until the port answers."""
        args = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port)]
        args += ["--file", str(self.file), "--codec", self.codec]
        if self.fast if fast is None else fast:
            args.append("--fast")
        args += self.extra
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"RTSP server exited {self.proc.returncode}: {err.strip()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"RTSP server did not answer on port {self.port} in {timeout} s")

    def stop(self) -> None:
        """Kill the server (SIGKILL: a camera that drops off the network says nothing)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=10)
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()


def _gst_rtsp_available() -> str | None:
    """None when the system Python can load GstRtspServer, else why not."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} is absent"
    run = subprocess.run(
        [SYSTEM_PYTHON, "-c", _GI_CHECK], capture_output=True, text=True, timeout=30, check=False
    )
    if run.returncode:
        last = (run.stderr.strip().splitlines() or ["failed"])[-1]
        return f"{SYSTEM_PYTHON} cannot run gst-rtsp-server ({last})"
    return None


@pytest.fixture(scope="session")
def gst_rtsp() -> None:
    """Skip (fail under CI) when the GStreamer RTSP server is not installed."""
    why = _gst_rtsp_available()
    if why is None:
        return
    message = f"needs the GStreamer RTSP server: {why}; install with `{_APT}`"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the RTSP tests: {message}")
    pytest.skip(message)


@pytest.fixture
def rtsp_server(gst_rtsp: None) -> Iterator[Callable[..., RtspServer]]:
    """A factory: ``rtsp_server(file, codec="h264", fast=True)`` starts a server on loopback.

    ``fast`` turns the server's rate control off (the file arrives as fast as it is read);
    otherwise it streams in real time. Every server is killed at teardown.
    """
    servers: list[RtspServer] = []

    def start(file: Path, codec: str = "h264", fast: bool = True) -> RtspServer:
        server = RtspServer(file, codec, fast)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
