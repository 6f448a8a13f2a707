"""The incident desk: one-command playbooks, run by the archive's one writer (ADR 0029).

Two ways in, one desk. An :class:`~kontur.wire.messages.IncidentRequest` comes from the API
(its pipe to the supervisor: :meth:`IncidentDesk.submit`) or from ``kontur incident``, which
drops it in ``DATA_DIR/run/incidents`` (:mod:`kontur.incident.spool`, taken by
:meth:`IncidentDesk.tick`: parsed strictly, removed, then run; a bad file is archived as a
``refused`` incident). With no site running, ``kontur incident`` runs this same desk on its
own writer (no spool, no worker to move).

Each request goes through these steps, in the supervisor's loop:

1. accept: an ``incident`` record (``outcome: accepted``, who, why, which way it came) is
   committed, then the run state says ``pending``;
2. act:

   - ``revoke_camera``: the camera is revoked in ``inventory.sqlite`` and the revocation
     archived and sent to its ingest at once (:attr:`SiteHooks.revoke`), so its next GOP is
     REVOKED; what it sent last is preserved: a legal hold on its segments of the last
     ``preserve_s`` seconds (reason ``revoked: …``); its last archived GOP is reported;
   - ``failover_cpu``: the analytics worker is restarted on the CPU now (:attr:`SiteHooks.
     move_to_cpu`, the health block's restart path) unless it already runs there or the
     release forbids the CPU; nothing moves it back during the run;
   - ``preserve``: a legal hold of the span, then the export desk
     (:class:`~kontur.runtime.exports.SiteExports`, which lets a span reaching "now" wait
     for the GOP being judged) builds the bundle under the same request id
     (``DATA_DIR/exports/<id>.zip``); :meth:`IncidentDesk.tick` waits for it;
   - ``verify_archive``: the archive is committed, the witness's length noted (the loop is
     the only thread that appends to it), and a thread runs a full, read-only
     :func:`~kontur.archive.verify_archive` against that much of the witness; the JSON report
     goes to ``DATA_DIR/run/verify-<id>.json`` (0600); recording never waits for it;

3. settle: the closing ``incident`` record (``done`` or ``failed``, a one-line detail and the
   facts: record indexes, hashes, the report's path) is committed; only then the run state
   says ``done <detail>`` or ``failed <detail>``.

At most :data:`MAX_VERIFYING` verifications run at once; the export desk bounds exports.
Requests still under way when the run stops fail (``kontur stopped``).
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kontur._private import private_dir
from kontur.archive import Archive, WitnessError, verify_archive
from kontur.archive.retention import place_hold
from kontur.clock import Clock
from kontur.errors import KonturError
from kontur.incident.spool import Refused, take
from kontur.incident.steps import (
    append_incident,
    append_refused,
    last_gop,
    one_line,
    revocation_index,
    save_report,
    verify_line,
)
from kontur.runtime.exports import SiteExports, bundle_path
from kontur.runtime.outcomes import OutcomeTable
from kontur.wire.messages import ExportRequest, IncidentRequest

__all__ = ["MAX_VERIFYING", "SPOOL_EVERY_S", "IncidentDesk", "SiteHooks"]

log = logging.getLogger("kontur.incidents")

#: Verifications running at once, at most (each reads the whole archive).
MAX_VERIFYING = 2
#: How often the supervisor's loop looks for request files.
SPOOL_EVERY_S = 0.2
#: Why what is still under way at stop fails.
STOPPED = "kontur stopped before the incident was done"

Facts = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SiteHooks:
    """What the desk needs of the site around it (the perimeter, or the CLI on its own)."""

    revoke: Callable[[str, str], None]
    """Revoke ``camera`` for ``reason`` in the inventory, archive it, tell its ingest;
    raises a KonturError (unknown camera, already revoked)."""
    worker_platform: Callable[[], str | None]
    """Where the analytics worker runs now; None when no site runs one."""
    cpu_allowed: Callable[[], bool]
    """Whether the release lets the worker run on the CPU."""
    move_to_cpu: Callable[[str], None]
    """Restart the worker on the CPU now, recording why."""
    exports: SiteExports | None
    """The export desk that builds ``preserve``'s bundle (None: no bundle can be built)."""
    witness: Path | None = None
    """The configured witness file (``archive.witness``) a verification checks."""
    spool: bool = True
    """Take request files from ``DATA_DIR/run/incidents`` (the running site's desk only)."""


@dataclass(frozen=True, slots=True)
class _Verified:
    rid: str
    outcome: str
    detail: str
    facts: Facts


class IncidentDesk(OutcomeTable):
    """The supervisor's incident desk (see the module for who runs which step)."""

    def __init__(self, archive: Archive, data_dir: Path, clock: Clock, hooks: SiteHooks) -> None:
        super().__init__()
        self.archive = archive
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.hooks = hooks
        self._open: dict[str, tuple[IncidentRequest, str]] = {}
        self._exporting: dict[str, Facts] = {}
        self._verified: queue.Queue[_Verified] = queue.Queue()
        self._threads: dict[str, threading.Thread] = {}
        self._stuck: set[str] = set()
        self._last_spool = float("-inf")
        self.declining: str | None = None
        """Set when the site stops: why new requests fail at once (no worker is moved while
        the blocks stop)."""

    # ---- steps 1 and 2 ----------------------------------------------------------------------
    def submit(self, request: IncidentRequest, via: str = "api") -> None:
        """Accept and run one request (a repeated id is ignored: ids are random); once
        :attr:`declining` says why, accept it and fail it at once."""
        rid = request.request_id
        if rid in self._status or rid in self._open:
            log.warning("incident %s: expected a new request id, got a known one", rid)
            return
        append_incident(self.archive, request, via, "accepted", f"accepted ({via})")
        self._open[rid] = (request, via)
        self._set(rid, "pending")
        log.info("incident %s: %s asked by %s (%s)", rid, request.kind, request.by, via)
        if self.declining is not None:
            self._settle(rid, "failed", self.declining)
            return
        playbook = {
            "revoke_camera": self._revoke,
            "failover_cpu": self._failover,
            "preserve": self._preserve,
            "verify_archive": self._verify,
        }[request.kind]
        try:
            playbook(request)
        except (KonturError, OSError, sqlite3.Error) as exc:  # the request's, not the loop's
            self._settle(rid, "failed", one_line(exc))
        except Exception as exc:  # a bug: the request fails, recording goes on
            log.exception("incident %s: %s failed unexpectedly", rid, request.kind)
            self._settle(rid, "failed", f"unexpected error: {one_line(exc)}")

    def _revoke(self, req: IncidentRequest) -> None:
        assert req.camera is not None and req.reason is not None
        camera = req.camera
        self.hooks.revoke(camera, req.reason)
        facts: Facts = {
            "revocation": revocation_index(self.archive, camera),
            "last_gop": last_gop(self.archive, camera),
        }
        now = self.clock.wall()
        start = max(0.0, now - req.preserve_s)
        try:
            hold, view = place_hold(
                self.archive, camera, start, now, f"revoked: {req.reason}", req.by
            )
        except KonturError as exc:
            why = f"revoked {camera} (record {facts['revocation']}), but the hold failed: {exc}"
            self._settle(req.request_id, "failed", one_line(why), facts)
            return
        held, _ = view.coverage(camera, hold.start, hold.end)
        facts |= {"hold": hold.index, "held_segments": held}
        last = facts["last_gop"]
        sent = (
            "no GOP of it archived yet"
            if last is None
            else f"its last archived GOP {last['gop_index']} was {last['verdict']} "
            f"(segment {str(last['segment_sha256'])[:16]}…)"
        )
        detail = (
            f"revoked {camera} (record {facts['revocation']}): its next GOP is REVOKED; "
            f"hold {hold.index} keeps its last {req.preserve_s:g} s ({held} segment(s)); {sent}"
        )
        self._settle(req.request_id, "done", detail, facts)

    def _failover(self, req: IncidentRequest) -> None:
        rid = req.request_id
        platform = self.hooks.worker_platform()
        if platform is None:
            self._settle(rid, "failed", "expected a running site to move to the CPU, got none")
            return
        facts: Facts = {"platform_before": platform, "moved": False}
        if platform == "cpu":
            detail = "the analytics worker already runs on the CPU: it stays there for the run"
            self._settle(rid, "done", detail, facts)
            return
        if not self.hooks.cpu_allowed():
            detail = (
                f"expected a release that allows the CPU, got one that forbids it: the "
                f"analytics worker stays on {platform}"
            )
            self._settle(rid, "failed", detail, facts)
            return
        self.hooks.move_to_cpu(f"incident {rid} by {req.by}: {req.reason}")
        facts["moved"] = True
        detail = f"moved the analytics worker from {platform} to the CPU for the rest of the run"
        self._settle(rid, "done", detail, facts)

    def _preserve(self, req: IncidentRequest) -> None:
        assert req.camera is not None and req.reason is not None
        assert req.from_at is not None and req.to_at is not None
        rid, camera, exports = req.request_id, req.camera, self.hooks.exports
        if exports is None:
            self._settle(rid, "failed", "expected the site's export desk, got none")
            return
        hold, view = place_hold(self.archive, camera, req.from_at, req.to_at, req.reason, req.by)
        held, removed = view.coverage(camera, hold.start, hold.end)
        facts: Facts = {"hold": hold.index, "held_segments": held, "already_removed": removed}
        if camera not in view.cameras():
            known = ", ".join(view.cameras()) or "none"
            detail = (
                f"expected a camera with footage in the archive ({known}), got {camera}: "
                f"hold {hold.index} holds nothing, no bundle"
            )
            self._settle(rid, "failed", detail, facts)
            return
        self.archive.flush()
        self._exporting[rid] = facts
        exports.submit(
            ExportRequest(
                request_id=rid, requested_by=req.by, camera=camera,
                from_at=req.from_at, to_at=req.to_at, at=self.clock.wall(),
            )
        )  # fmt: skip
        self._collect_exports()  # the export desk may have refused it at once

    def _verify(self, req: IncidentRequest) -> None:
        rid = req.request_id
        if len(self._threads) >= MAX_VERIFYING:
            detail = f"expected at most {MAX_VERIFYING} verifications under way, got more"
            self._settle(rid, "failed", detail)
            return
        self.archive.flush()  # what the thread reads is committed; the witness agrees with it
        cut = None
        witness = self.hooks.witness
        if witness is not None:
            cut = os.stat(witness).st_size if witness.exists() else 0
        thread = threading.Thread(
            target=self._verify_job, args=(rid, witness, cut), name=f"verify-{rid[:8]}"
        )
        thread.daemon = True
        self._threads[rid] = thread
        thread.start()

    # ---- the verification thread ----------------------------------------------------------
    def _verify_job(self, rid: str, witness: Path | None, cut: int | None) -> None:
        copy = self.data_dir / "run" / f".verify-{rid}.witness"
        try:
            private_dir(copy.parent)
            if witness is not None and cut is not None:
                _copy_prefix(witness, copy, cut)
            report = verify_archive(self.data_dir, witness=copy if witness is not None else None)
            doc: dict[str, Any] = dict(report.to_json())
            if witness is not None and isinstance(doc.get("witness"), dict):
                doc["witness"] = {**doc["witness"], "path": str(witness), "bytes_read": cut}
            path = save_report(self.data_dir, rid, doc)
            line = verify_line(report)
            facts: Facts = {"ok": report.ok, "records": report.records, "report": str(path)}
            if report.first_bad is not None:
                facts["first_bad"] = report.first_bad.index
            outcome = "done" if report.ok else "failed"
            result = _Verified(rid, outcome, f"{line}; report {path}", facts)
        except Exception as exc:  # the request's failure, never the supervisor's
            result = _Verified(rid, "failed", one_line(exc), {})
        finally:
            copy.unlink(missing_ok=True)
        self._verified.put(result)

    # ---- step 3 (the loop) ----------------------------------------------------------------
    def tick(self, mono: float) -> bool:
        """Take request files (every :data:`SPOOL_EVERY_S`), settle what finished; True if
        any outcome changed."""
        before = self.version
        if self.hooks.spool and mono - self._last_spool >= SPOOL_EVERY_S:
            self._last_spool = mono
            for item in take(self.data_dir, self.clock.wall(), frozenset(self._stuck)):
                if isinstance(item, Refused):
                    self._refuse(item)
                else:
                    self.submit(item, via="cli")
        self._collect_verifications()
        self._collect_exports()
        return self.version != before

    def _refuse(self, item: Refused) -> None:
        append_refused(self.archive, item)
        if not item.removed:
            self._stuck.add(item.entry)
        rid = item.request_id
        if rid is not None and rid not in self._status and rid not in self._open:
            self._set(rid, f"failed refused: {item.reason}")

    def _collect_verifications(self) -> None:
        while True:
            try:
                v = self._verified.get_nowait()
            except queue.Empty:
                return
            self._threads.pop(v.rid, None)
            self._settle(v.rid, v.outcome, v.detail, v.facts)

    def _collect_exports(self) -> None:
        exports = self.hooks.exports
        if exports is None:
            return
        status = exports.status
        for rid, facts in list(self._exporting.items()):
            state = status.get(rid, "failed the export desk forgot the request")
            word, _, rest = state.partition(" ")
            if word == "pending":
                continue
            del self._exporting[rid]
            if word == "ready":
                path = bundle_path(self.data_dir, rid)
                facts |= {"bundle": str(path), "bundle_sha256": rest}
                detail = (
                    f"hold {facts['hold']} keeps {facts['held_segments']} segment(s); "
                    f"bundle {path} sha256 {rest}"
                )
                self._settle(rid, "done", detail, facts)
            else:
                detail = f"hold {facts['hold']} placed, but the bundle failed: {rest}"
                self._settle(rid, "failed", one_line(detail), facts)

    def _settle(self, rid: str, outcome: str, detail: str, facts: Facts | None = None) -> None:
        """Archive the closing record, commit it, then publish the outcome."""
        self._exporting.pop(rid, None)
        if rid not in self._open:  # a bug: each request ends once
            log.error("incident %s: expected a request under way, got none", rid)
            return
        request, via = self._open.pop(rid)
        append_incident(self.archive, request, via, outcome, detail, facts)
        self._set(rid, f"{outcome} {detail}")
        log.info("incident %s: %s %s", rid, outcome, detail)

    # ---- stop -------------------------------------------------------------------------------
    def close(self, timeout_s: float = 60.0) -> None:
        """Let verifications finish (up to ``timeout_s``), settle what ended, fail the rest.

        Call it after the export desk's own ``close`` (which ends its exports)."""
        for thread in list(self._threads.values()):
            thread.join(timeout_s)
        self._collect_verifications()
        self._collect_exports()
        for rid in list(self._open):
            self._settle(rid, "failed", STOPPED)

    def pending(self) -> bool:
        """Whether a request is still under way."""
        return bool(self._open)


def _copy_prefix(src: Path, dst: Path, size: int) -> None:
    """The first ``size`` bytes of ``src`` (the witness) into a new private file ``dst``."""
    try:
        with open(src, "rb") as f:
            data = f.read(size)
    except OSError as exc:
        raise WitnessError(f"witness {src}: expected a readable file, got {exc.strerror}") from None
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
