"""The API block's process: ``python -m kontur.api.process SPEC.json`` (issue 11 §2, ADR 0023).

Started by the supervisor from its table like every block, in a fresh interpreter, with two
inherited descriptors only: the listening socket the supervisor bound (so the port is fixed
before the block starts and survives its restarts) and the write end of its pipe to the
supervisor (``api -> supervisor: audit, operator_verdict, export_request``). It holds no
ring and no channel to the worker, the verifier or the gate; it reads the archive read-only
and the supervisor's run-state snapshot (:mod:`kontur.wire.runstate`).

Order of steps: read the spec; with a ``query_worker`` of the ``release`` kind, read the
verified release bundle from stdin (an 8-byte big-endian length, then the bytes: the worker's
framing) and re-check every part's SHA-256 against the spec's index
(:func:`kontur.worker.bundle.unpack`); ask to die with the supervisor; open the user store;
build the app (:func:`kontur.api.app.create_app`) on an :class:`~kontur.api.context.ApiContext`
whose ``detector`` is a :class:`~kontur.extraction.client.SandboxedDetector` over those bytes
(started at the first query; the model never runs in this process) and whose ``extraction``
is the spec's (``api.extraction``); serve it with uvicorn on the inherited socket, TLS when
the spec names a certificate (the supervisor decided: :mod:`kontur.runtime.apiblock`). SIGTERM
(from the supervisor, or sent by the kernel when the supervisor dies) shuts uvicorn down
gracefully. A bundle whose digests differ leaves the query path without a model (503, and
the log says why); the rest of the API serves.
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from kontur.extraction.client import SandboxedDetector

__all__ = ["main", "query_detector", "server_config"]

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


def _read_bundle(stdin: BinaryIO, index: list[dict[str, Any]]) -> bytes:
    """The verified release bundle from stdin, every part's digest re-checked."""
    from kontur.worker.bundle import MAX_BUNDLE_BYTES, BundlePart, unpack
    from kontur.worker.errors import ModelIntegrityError

    parts = tuple(BundlePart.from_json(p) for p in index)
    size = int.from_bytes(stdin.read(8), "big")
    expected = sum(p.size for p in parts)
    if size != expected or size > MAX_BUNDLE_BYTES:
        raise ModelIntegrityError(f"release bundle: expected {expected} bytes, got {size}")
    blob = stdin.read(size)
    unpack(blob, parts)  # raises on the first part whose SHA-256 differs
    return blob


def query_detector(
    entry: dict[str, Any] | None, stdin: BinaryIO, data_dir: Path
) -> SandboxedDetector | None:
    """The sandboxed detector of the spec's ``query_worker`` (None without one, or when its
    bundle fails its digests: logged, and ``POST /v1/detect`` answers 503). The bundle is
    read first: the supervisor waits on this pipe while it writes it."""
    from kontur.worker.errors import ModelIntegrityError

    if entry is None:
        return None
    blob = b""
    if entry["detector"] == "release":
        try:
            blob = _read_bundle(stdin, entry["bundle"])
        except ModelIntegrityError as exc:
            log.error("query path without a model: %s", exc)
            return None
    from kontur.extraction.client import QueryWorkerSpec, SandboxedDetector

    sandbox = dict(entry["sandbox"])
    spec = QueryWorkerSpec(
        entry["detector"],
        scratch_dir=Path(sandbox["scratch_dir"]),
        deny=(data_dir,),
        model_id=entry["model_id"],
        bundle=tuple(entry["bundle"]),
        platform=entry["platform"],
        score_threshold=entry["score_threshold"],
        nms_threshold=entry["nms_threshold"],
        intra_op_threads=entry["intra_op_threads"],
        sandbox=sandbox,
    )
    return SandboxedDetector(spec, blob)


def _build_app(spec: dict[str, Any], detector: SandboxedDetector | None) -> Any:
    from kontur.api.app import create_app
    from kontur.api.context import ApiContext
    from kontur.api.outbox import PipeOutbox
    from kontur.api.users import UserStore
    from kontur.clock import SystemClock
    from kontur.extraction.defence import ExtractionSettings

    data_dir = Path(spec["data_dir"])
    clock = SystemClock()
    context = ApiContext(
        data_dir=data_dir,
        users=UserStore.open(data_dir, clock),
        outbox=PipeOutbox(spec["supervisor_fd"]),
        clock=clock,
        extraction=ExtractionSettings.from_mapping(spec.get("extraction")),
        detector=detector,
    )
    return create_app(context)


def main() -> int:
    """Entry point: serve until SIGTERM."""
    from kontur.runtime.spec import install_stop_handler, read_spec, stop_requested

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    spec = read_spec()
    detector = query_detector(spec.get("query_worker"), sys.stdin.buffer, Path(spec["data_dir"]))
    import uvicorn

    install_stop_handler()  # dies with the supervisor; uvicorn then takes SIGTERM over
    if stop_requested():
        return 0  # the supervisor is already gone
    sock = socket.socket(fileno=spec["socket_fd"])
    server = uvicorn.Server(server_config(_build_app(spec, detector), spec))
    log.info("api serving %s", spec["url"])
    try:
        server.run(sockets=[sock])
    finally:
        if detector is not None:
            detector.close()  # the query worker dies with this process anyway (PDEATHSIG)
    return 0


if __name__ == "__main__":
    sys.exit(main())
