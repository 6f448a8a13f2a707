"""The decision gate process: the only component that may trigger an action.

Order of steps for each message: parse it and check it against its edge (anything
malformed, or of a type or camera its sender may not send, is dropped and reported to the
supervisor as a :class:`ProtocolViolation`); feed it to the pure :class:`Gate` core; send
each decision the core returns to the supervisor, which archives it durably and only then
fires the sinks (decide, record, act: :mod:`kontur.runtime.recorder`). On stop, the core is
flushed: held requests whose GOP verdicts never arrived are decided (never silently dropped).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from kontur.clock import SystemClock
from kontur.config import Config
from kontur.gate.core import Gate
from kontur.gate.errors import GateError
from kontur.runtime.spec import install_stop_handler, read_spec, stop_requested, wait_or_stop
from kontur.wire import Decision, Evidence, GopClosed, StateChanged
from kontur.wire.channel import Inbox, Outbox, forward_violations
from kontur.wire.edges import edge
from kontur.wire.messages import TamperAlarm

__all__ = ["main"]

log = logging.getLogger("kontur.gate")


class GateLoop:
    """Feeds the gate core from its inboxes."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.config = Config.model_validate(spec["config"])
        self.core = Gate(self.config, SystemClock())
        for cam in spec["cameras"]:
            self.core.set_frame_size(cam["camera_id"], cam["width"], cam["height"])
        cams = [c["camera_id"] for c in spec["cameras"]]
        self.inboxes = []
        for name, fd in spec["inbox_fds"].items():
            os.set_blocking(fd, False)
            mine = [name.split(":", 1)[1]] if name.startswith("ingest:") else cams
            self.inboxes.append(Inbox(fd, name, edge=edge(name, "gate"), cameras=mine))
        self.to_supervisor = Outbox(spec["supervisor_fd"])
        self.refused = 0

    def _emit(self, decisions: list[Decision]) -> None:
        for d in decisions:
            self.to_supervisor.send(d)

    def _drain(self, timeout: float) -> None:
        for inbox in wait_or_stop([i for i in self.inboxes if not i.eof], timeout):
            for msg in inbox.drain():
                try:
                    if isinstance(msg, GopClosed):
                        self._emit(self.core.on_gop(msg))
                    elif isinstance(msg, Evidence):
                        self._emit(self.core.on_evidence(msg))
                    elif isinstance(msg, StateChanged):
                        self._emit(self.core.on_state(msg))
                    elif isinstance(msg, TamperAlarm):
                        self._emit(self.core.on_tamper(msg))
                except GateError as exc:
                    # bad evidence is refused, never acted on; the gate keeps deciding
                    log.warning("gate refused %s from %s: %s", msg.type, inbox.name, exc)
                    self.refused += 1
            forward_violations(inbox, "gate", self.to_supervisor)

    def run(self) -> None:
        """Decide until asked to stop, then flush."""
        while not stop_requested():
            self._drain(0.2)
        self._drain(0.0)
        self._emit(self.core.flush())


def main() -> int:
    """Entry point: ``python -m kontur.gate.process SPEC.json``."""
    install_stop_handler()
    GateLoop(read_spec()).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
