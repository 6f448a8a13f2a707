"""The API block's process: ``python -m kontur.api.process SPEC.json`` (issue 11 §2, ADR 0023).

Started by the supervisor from its table like every block, in a fresh interpreter, with two
inherited descriptors only: the listening socket the supervisor bound (so the port is fixed
before the block starts and survives its restarts) and the write end of its pipe to the
supervisor (``api -> supervisor: audit, operator_verdict, export_request``). It holds no
ring and no channel to the worker, the verifier or the gate; it reads the archive read-only
and the supervisor's run-state snapshot (:mod:`kontur.wire.runstate`).

Order of steps: read the spec; ask to die with the supervisor; open the user store; build
the app (:func:`kontur.api.app.create_app`) on an :class:`~kontur.api.context.ApiContext`;
serve it with uvicorn on the inherited socket, TLS when the spec names a certificate (the
supervisor decided: :mod:`kontur.runtime.apiblock`). SIGTERM (from the supervisor, or sent
by the kernel when the supervisor dies) shuts uvicorn down gracefully.
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "server_config"]

log = logging.getLogger("kontur.api")

#: Connections served at once; beyond it uvicorn answers 503 (bounded memory).
MAX_CONNECTIONS = 200


def server_config(app: Any, spec: dict[str, Any]) -> Any:
    """The uvicorn configuration for ``app`` under ``spec`` (no bind: the socket is given)."""
    import uvicorn

    return uvicorn.Config(
        app,
        ssl_certfile=spec.get("tls_cert"),
        ssl_keyfile=spec.get("tls_key"),
        log_config=None,  # the block's stderr is its log file (DATA_DIR/run/logs/api.log)
        access_log=False,  # who did what is the audit trail, in the archive
        proxy_headers=False,  # no X-Forwarded-For: a local client must not pick its address
        server_header=False,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_graceful_shutdown=5,
    )


def _build_app(spec: dict[str, Any]) -> Any:
    from kontur.api.app import create_app
    from kontur.api.context import ApiContext
    from kontur.api.outbox import PipeOutbox
    from kontur.api.users import UserStore
    from kontur.clock import SystemClock

    data_dir = Path(spec["data_dir"])
    clock = SystemClock()
    context = ApiContext(
        data_dir=data_dir,
        users=UserStore.open(data_dir, clock),
        outbox=PipeOutbox(spec["supervisor_fd"]),
        clock=clock,
    )
    return create_app(context)


def main() -> int:
    """Entry point: serve until SIGTERM."""
    import uvicorn

    from kontur.runtime.spec import install_stop_handler, read_spec, stop_requested

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    spec = read_spec()
    install_stop_handler()  # dies with the supervisor; uvicorn then takes SIGTERM over
    if stop_requested():
        return 0  # the supervisor is already gone
    sock = socket.socket(fileno=spec["socket_fd"])
    server = uvicorn.Server(server_config(_build_app(spec), spec))
    log.info("api serving %s", spec["url"])
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
