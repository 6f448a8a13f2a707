"""Fixtures for the gate's tests: a real HTTP peer for the webhook (http.server, 127.0.0.1:0)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from gate_sim import Peer, Received


@pytest.fixture
def peer() -> Iterator[Peer]:
    """Start a real HTTP server on a free port of 127.0.0.1; stop it after the test."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            box.received.append(Received(self.path, dict(self.headers.items()), body))
            self.send_response(box.status)
            if box.location:
                self.send_header("Location", box.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box = Peer(server)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()
    thread.join(5)
