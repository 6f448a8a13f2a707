"""What a site service adds to a run (``kontur run``, ADR 0023): the API block, the operator
desk, the published run state, periodic retention, and a stop on request.

The :class:`~kontur.runtime.perimeter.Perimeter` owns one :class:`SiteServices` per run and
calls it at fixed points:

1. construction, right after the wiring: with ``api.enabled`` the API's listener is bound
   (:mod:`kontur.runtime.apiblock`), its row joins the table (with ``query_model``, the site's
   own detector for ``POST /v1/detect``), and an
   :class:`~kontur.gate.operator.OperatorDesk` is made (without the API nobody could answer
   an OPERATOR request, so none is queued: decisions go to the sinks as before);
2. :meth:`SiteServices.attach` once the recorder and the degradation machine exist: the
   run-state publisher (:mod:`kontur.runtime.publish`);
3. :meth:`SiteServices.tick` every turn of the supervisor's loop: requests past their
   deadline fail safe, the run state is published, and a run that lasts (``forever``)
   applies the archive's retention every :data:`RETENTION_EVERY_S`;
4. :meth:`SiteServices.close` after the blocks stopped: requests still waiting fail safe
   (archived, then to the sinks), exports under way finish (or fail), the last run state is
   written, the socket closed.

With the API, an :class:`~kontur.wire.messages.ExportRequest` from it goes to
:meth:`SiteServices.on_export`: the export desk (:mod:`kontur.runtime.exports`) builds the
bundle with the supervisor's own archive, and :meth:`SiteServices.tick` seals and publishes. An
:class:`~kontur.wire.messages.IncidentRequest` (the API's, or a ``kontur incident`` request
file) goes to the incident desk (:mod:`kontur.runtime.incidents`, ADR 0029), which the
perimeter sets as :attr:`SiteServices.incidents`; the export desk then exists without the API
too, for ``preserve``'s bundle.

A ``forever`` run ends only when ``stop()`` says so (SIGTERM or SIGINT in ``kontur run``):
the sources are then asked to stop, and the run ends once they did, or after
:data:`STOP_GRACE_S` whatever they do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kontur.archive import Archive
from kontur.clock import Clock
from kontur.config import Config
from kontur.degrade import DegradationMachine
from kontur.gate.operator import OperatorDesk
from kontur.runtime.apiblock import ApiListener, QueryModel, attach_api, listen
from kontur.runtime.exports import SiteExports
from kontur.runtime.incidents import IncidentDesk
from kontur.runtime.publish import StatePublisher
from kontur.runtime.recorder import CameraStats, Recorder
from kontur.runtime.supervisor import Supervisor
from kontur.runtime.wiring import Wiring
from kontur.wire.messages import ExportRequest, IncidentRequest

__all__ = ["RETENTION_EVERY_S", "STOP_GRACE_S", "SiteServices"]

log = logging.getLogger("kontur.site")

#: How often a lasting run removes expired segments (and once at start, as every run does).
RETENTION_EVERY_S = 3600.0
#: How long the sources get to stop after a stop was asked for.
STOP_GRACE_S = 30.0
#: Why requests still waiting when the run stops fail safe.
STOPPED = "kontur stopped before an operator answered: fails safe"


class SiteServices:
    """The site-service parts of one run (see the module for when each is called)."""

    def __init__(
        self,
        config: Config,
        data_dir: Path,
        clock: Clock,
        wiring: Wiring,
        *,
        forever: bool = False,
        stop: Callable[[], bool] | None = None,
        retention: Callable[[], None] = lambda: None,
        query_model: QueryModel | None = None,
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.clock = clock
        self.forever = forever
        self._stop = stop or (lambda: False)
        self._retention = retention
        self.listener: ApiListener | None = None
        self.desk: OperatorDesk | None = None
        self.recorder: Recorder | None = None
        self.publisher: StatePublisher | None = None
        self.exports: SiteExports | None = None
        self.incidents: IncidentDesk | None = None
        """The incident desk (ADR 0029), set by the perimeter once health exists."""
        self.stopping_since: float | None = None
        self._last_retention = time.monotonic()
        if config.api.enabled:
            self.listener = listen(config.api, data_dir)
            attach_api(wiring, self.listener, config, data_dir, query_model)
            op = config.operator
            self.desk = OperatorDesk(
                config.actions, op.deadline_s, clock, max_pending=op.max_pending
            )
            url, fingerprint = self.listener.url, self.listener.fingerprint
            fields = {"event": "api_listening", "url": url, "fingerprint": fingerprint}
            log.info("api listening on %s", url, extra={"fields": fields})

    def attach(
        self,
        recorder: Recorder,
        *,
        stats: dict[str, CameraStats],
        supervisor: Supervisor,
        machine: DegradationMachine,
        archive: Archive,
        wiring: Wiring,
        release: Callable[[], tuple[str | None, str | None]],
    ) -> None:
        """Step 2: the publisher (with the API, or for a lasting run), once the recorder and
        the machine exist."""
        self.recorder = recorder
        # with or without the API: `kontur incident preserve` builds its bundle here too
        self.exports = SiteExports(archive, self.data_dir, self.clock)
        if self.listener is None and not self.forever:
            return
        exports = self.exports
        self.publisher = StatePublisher(
            self.data_dir,
            self.config.site,
            self.clock.wall(),
            stats=stats,
            supervisor=supervisor,
            machine=machine,
            archive=archive,
            desk=self.desk,
            rings=wiring.rings,
            release=release,
            exports=(lambda: exports.status) if exports is not None else dict,
            incidents=lambda: self.incidents.status if self.incidents is not None else {},
        )

    def on_export(self, msg: ExportRequest) -> None:
        """An export request from the API (refused in the log when no export desk runs)."""
        if self.exports is None:
            log.warning("export %s: expected the API's export desk, got none", msg.request_id)
            return
        self.exports.submit(msg)
        if self.publisher is not None:
            self.publisher.publish(self.clock.wall())  # the API sees it pending at once

    def on_incident(self, msg: IncidentRequest) -> None:
        """An incident playbook asked through the API (ADR 0029): the desk runs it now."""
        if self.incidents is None:
            log.warning("incident %s: expected the incident desk, got none", msg.request_id)
            return
        self.incidents.submit(msg, via="api")
        if self.publisher is not None:
            self.publisher.publish(self.clock.wall())  # the API sees its outcome at once

    # ---- step 3 ---------------------------------------------------------------------------
    def tick(self, mono: float) -> None:
        """Deadlines, the run state, retention (see the module)."""
        if self.recorder is not None:
            self.recorder.expire_requests(self.clock.wall())
        if self.exports is not None and self.exports.tick() and self.publisher is not None:
            self.publisher.publish(self.clock.wall())
        changed = self.incidents is not None and self.incidents.tick(mono)
        if changed and self.publisher is not None:
            self.publisher.publish(self.clock.wall())
        if self.publisher is not None:
            self.publisher.tick(mono, self.clock.wall())
        if self.forever and mono - self._last_retention >= RETENTION_EVERY_S:
            self._last_retention = mono
            self._retention()

    def stop_now(self, mono: float) -> bool:
        """True once, when a stop was first asked for: the caller stops the sources."""
        if self.stopping_since is not None or not self._stop():
            return False
        self.stopping_since = mono
        log.info("stop asked for: stopping the sources, then every block")
        if self.incidents is not None:
            self.incidents.declining = "expected a running site, got one stopping"
        return True

    def may_end(self) -> bool:
        """Whether the run may end once its sources did: a lasting one only on request."""
        return not self.forever or self.stopping_since is not None

    def stop_overdue(self, mono: float) -> bool:
        """The sources had :data:`STOP_GRACE_S` to stop and some did not."""
        return self.stopping_since is not None and mono - self.stopping_since > STOP_GRACE_S

    # ---- step 4 ---------------------------------------------------------------------------
    def close(self) -> None:
        """Requests still waiting fail safe; the last run state; the socket closed."""
        if self.recorder is not None:
            self.recorder.close_requests(STOPPED)
        if self.exports is not None:
            self.exports.close()
        if self.incidents is not None:
            self.incidents.close()  # after the exports: a preserve's bundle is settled
        if self.publisher is not None:
            self.publisher.publish(self.clock.wall())
        if self.listener is not None:
            self.listener.close()

    def summary(self) -> dict[str, Any] | None:
        """``api`` in the JSON summary (None without the API)."""
        return self.listener.summary() if self.listener is not None else None
