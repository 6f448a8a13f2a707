"""Evidence export through the running site (``POST /exports``, ADR 0020 and 0023).

``kontur archive export`` opens the archive as its writer, so it cannot run while ``kontur
run`` holds it. Through the site, the supervisor (the one writer) exports with its own open
archive. An :class:`~kontur.wire.messages.ExportRequest` from the API goes through these
steps; recording never waits on the slow ones:

1. :meth:`SiteExports.submit` (the supervisor's loop): the request is ``pending``; once the
   span's GOPs have their verdicts (a span reaching "now" waits for the GOP being judged, at
   most :data:`SETTLE_S`) the archive commits and signs a checkpoint (the writer's own job,
   so a span recorded a moment ago is covered), and the job goes to the export thread;
2. the export thread, holding no lock of the writer: a read-only view of the archive (its own
   SQLite connection), plan, proofs against the newest stored checkpoint, segments, remux
   (:func:`~kontur.evidence.export.prepare_export`);
3. :meth:`SiteExports.tick` (the loop again): the ``export`` record's index is the next one
   only where records are appended, so the loop seals it: the zip in memory with that index,
   its SHA-256, the ``export`` record (who: the API principal) appended and committed. This
   costs one copy and one hash of the bundle and one commit;
4. the export thread writes ``DATA_DIR/exports/<request_id>.zip`` (a temporary file, fsync,
   mode 0400, rename): no bundle exists that the archive does not name;
5. the loop publishes ``ready <sha256>`` (or ``failed <one-line reason>``) in the run state.

One export at a time, in order; at most :data:`MAX_QUEUED` wait, more are refused. Requests
still waiting at stop fail (``kontur stopped``).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

from kontur._private import private_dir
from kontur.archive import Archive
from kontur.clock import Clock
from kontur.errors import KonturError
from kontur.evidence.export import (
    ExportRequest as BundleRequest,
)
from kontur.evidence.export import (
    PreparedExport,
    bundle_bytes,
    log_export,
    place_bundle,
    prepare_export,
)
from kontur.incident.steps import span_decided
from kontur.runtime.outcomes import OutcomeTable
from kontur.wire.messages import ExportRequest
from kontur.wire.runstate import export_bundle_path

__all__ = ["MAX_QUEUED", "SiteExports", "bundle_path"]

log = logging.getLogger("kontur.exports")

#: Export requests waiting for the export thread, at most.
MAX_QUEUED = 8
#: How long a request whose span reaches the GOP being judged waits for its verdict.
SETTLE_S = 60.0


def bundle_path(data_dir: Path, request_id: str) -> Path:
    """``DATA_DIR/exports/<request_id>.zip`` (``request_id`` is hex, checked by the wire)."""
    return export_bundle_path(data_dir, request_id)


@dataclass(frozen=True, slots=True)
class _Built:
    rid: str
    request: BundleRequest
    prepared: PreparedExport


@dataclass(frozen=True, slots=True)
class _Write:
    rid: str
    data: bytes
    sha: str


@dataclass(frozen=True, slots=True)
class _Done:
    rid: str
    status: str


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


class SiteExports(OutcomeTable):
    """The supervisor's export desk (see the module for who runs which step)."""

    def __init__(
        self, archive: Archive, data_dir: Path, clock: Clock, settle_s: float = SETTLE_S
    ) -> None:
        super().__init__()
        self.archive = archive
        self.settle_s = settle_s
        """How long a span reaching the GOP being judged waits for its verdict (0 where
        nothing records, as ``kontur incident preserve`` with no site running)."""
        self.data_dir = Path(data_dir)
        self.clock = clock
        self._jobs: queue.Queue[BundleRequest | _Write | None] = queue.Queue()
        self._results: queue.Queue[_Built | _Done] = queue.Queue()
        self._queued = 0
        self._settling: list[tuple[ExportRequest, float]] = []
        self._thread: threading.Thread | None = None

    # ---- step 1 (the supervisor's loop) ------------------------------------------------------
    def submit(self, msg: ExportRequest) -> None:
        """Queue one request (a repeated id is ignored: the API chose it at random).

        A span reaching the GOP still being judged waits (``pending``) for that GOP's verdict,
        at most :data:`SETTLE_S`: a bundle needs every span GOP's verdict, and a GOP's comes
        when the next one begins (:func:`kontur.incident.steps.span_decided`)."""
        rid = msg.request_id
        if rid in self._status:
            log.warning("export %s: expected a new request id, got a known one", rid)
            return
        if self._queued + len(self._settling) >= MAX_QUEUED:
            self._set(rid, f"failed expected at most {MAX_QUEUED} exports waiting, got more")
            return
        if not msg.to_at > msg.from_at:
            self._set(rid, f"failed expected to after from ({msg.from_at}), got {msg.to_at}")
            return
        self._set(rid, "pending")
        if self.settle_s <= 0 or span_decided(self.archive, msg.camera, msg.to_at):
            self._begin(msg)
        else:
            self._settling.append((msg, self.clock.monotonic() + self.settle_s))

    def _settle(self) -> None:
        """Begin the waiting requests whose span is decided now, or waited long enough (the
        export then names the GOP that lacks its verdict)."""
        now, still = self.clock.monotonic(), []
        for msg, until in self._settling:
            if now >= until or span_decided(self.archive, msg.camera, msg.to_at):
                self._begin(msg)
            else:
                still.append((msg, until))
        self._settling = still

    def _begin(self, msg: ExportRequest) -> None:
        rid = msg.request_id
        out = bundle_path(self.data_dir, rid)
        request = BundleRequest(
            self.data_dir, msg.camera, msg.from_at, msg.to_at, out, msg.requested_by
        )
        try:
            private_dir(out.parent)
            self.archive.checkpoint()  # covers what was recorded until now (the writer's job)
        except (OSError, KonturError) as exc:
            self._set(rid, f"failed {_one_line(exc)}")
            return
        self._queued += 1
        self._start()
        self._jobs.put(request)
        log.info("export %s of %s asked by %s", rid, msg.camera, msg.requested_by)

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="exports", daemon=True)
            self._thread.start()

    # ---- steps 2 and 4 (the export thread) ---------------------------------------------------
    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if isinstance(job, _Write):
                self._results.put(self._place(job))
                continue
            rid = job.out.stem
            try:
                with Archive.open_readonly(self.data_dir) as reader:
                    prepared = prepare_export(reader, job, self.clock.wall())
                self._results.put(_Built(rid, job, prepared))
            except Exception as exc:  # any failure is the request's, never the supervisor's
                log.warning("export %s failed: %s", rid, _one_line(exc))
                self._results.put(_Done(rid, f"failed {_one_line(exc)}"))

    def _place(self, job: _Write) -> _Done:
        try:
            place_bundle(job.data, bundle_path(self.data_dir, job.rid))
        except Exception as exc:
            log.error("export %s: logged, but the bundle was not written: %s", job.rid, exc)
            return _Done(job.rid, f"failed logged but not written: {_one_line(exc)}")
        return _Done(job.rid, f"ready {job.sha}")

    # ---- steps 3 and 5 (the supervisor's loop) -----------------------------------------------
    def tick(self) -> bool:
        """Seal what the export thread prepared, publish what ended; True if anything did."""
        self._settle()
        changed = False
        while True:
            try:
                result = self._results.get_nowait()
            except queue.Empty:
                return changed
            changed = True
            if isinstance(result, _Done):
                self._queued -= 1
                self._set(result.rid, result.status)
            else:
                self._seal(result)

    def _seal(self, built: _Built) -> None:
        try:
            index = self.archive.records + self.archive.pending
            data, manifest = bundle_bytes(
                built.prepared, index, built.request.out.name, self.clock.wall()
            )
            sha = hashlib.sha256(data).hexdigest()
            record = log_export(self.archive, built.request, manifest, sha, len(data))
        except (
            Exception
        ) as exc:  # the request's failure; the archive's own is seen at its next append
            log.error("export %s: not sealed: %s", built.rid, _one_line(exc))
            self._queued -= 1
            self._set(built.rid, f"failed {_one_line(exc)}")
            return
        if record.index != index:  # only this thread appends: a bug, and the bundle would lie
            log.error("export %s: expected record %d, got %d", built.rid, index, record.index)
        self._jobs.put(_Write(built.rid, data, sha))

    # ---- stop --------------------------------------------------------------------------------
    def close(self, timeout_s: float = 30.0) -> None:
        """Let the export thread finish what it has, then fail what is still waiting."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout_s)
        self.tick()  # seals what the thread prepared last: its bundle is written here
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if isinstance(job, _Write):
                self._results.put(self._place(job))
        self.tick()
        for rid, status in list(self._status.items()):
            if status == "pending":
                self._set(rid, "failed kontur stopped before the export was done")
