"""``kontur run``: the perimeter as a site service, until SIGTERM or SIGINT (ADR 0023).

Order of steps: check that every camera of the site config names its source; send the
``kontur.*`` logs to stderr as JSON lines (:mod:`kontur.runtime.runlog`); install the stop
handlers; run the :class:`~kontur.runtime.perimeter.Perimeter` with ``forever=True``; log
the end. The first SIGTERM or SIGINT asks for a clean stop (sources stopped, every block
stopped in reverse order, requests still waiting fail safe, the archive flushed and a
checkpoint signed); a second one interrupts at once (``KeyboardInterrupt``: the same
cleanup, unwinding).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from typing import Any

from kontur.config import Config
from kontur.errors import ConfigError
from kontur.redact import redact_url
from kontur.runtime import runlog
from kontur.runtime.perimeter import Perimeter, RunOptions

__all__ = ["STATUS_EVERY_S", "StopFlag", "check_sources", "run_service"]

log = logging.getLogger("kontur.run")

#: Seconds between two ``status`` log lines.
STATUS_EVERY_S = 60.0


def check_sources(config: Config) -> None:
    """A site names every camera's source (the demo's default clip is for ``kontur demo``)."""
    for cam in config.cameras:
        if not cam.source:
            raise ConfigError(
                f"config: key cameras.{cam.id}.source: expected a file or rtsp:// URL for "
                "kontur run, got none"
            )


class StopFlag:
    """SIGTERM/SIGINT: the first asks for a clean stop, a second one interrupts."""

    def __init__(self) -> None:
        self.asked: str | None = None

    def install(self) -> None:
        """Take SIGTERM and SIGINT over (main thread only)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.asked is not None:
            raise KeyboardInterrupt  # a second signal: unwind now (blocks still stopped)
        self.asked = signal.Signals(signum).name

    def __call__(self) -> bool:
        """True once a stop was asked for."""
        return self.asked is not None


def _progress() -> Callable[[dict[str, Any]], None]:
    """State changes as log events, and a status line every :data:`STATUS_EVERY_S`."""
    last = [time.monotonic()]

    def progress(update: dict[str, Any]) -> None:
        if "trigger" in update:
            camera = update.get("camera")  # a camera's own transition (ADR 0040)
            where = f"{update['trigger']} on camera {camera}" if camera else update["trigger"]
            runlog.event(
                "state_changed",
                f"degradation: now {update['state']} ({where})",
                state=update["state"],
                trigger=update["trigger"],
                camera=camera,
            )
        elif time.monotonic() - last[0] >= STATUS_EVERY_S:
            last[0] = time.monotonic()
            runlog.event(
                "status", "running", frames=update.get("frames"), state=update.get("state")
            )

    return progress


def run_service(opts: RunOptions) -> dict[str, Any]:
    """Run the site (see the module); returns the summary. Raises KonturError on bad input."""
    check_sources(opts.config)
    stop = StopFlag()
    stop.install()
    opts.forever, opts.stop, opts.sign = True, stop, False
    opts.progress = _progress()
    cams = {c.id: redact_url(str(c.source)) for c in opts.config.cameras}
    runlog.event(
        "starting",
        f"site {opts.config.site}: {len(cams)} camera(s)",
        site=opts.config.site,
        data_dir=str(opts.data_dir),
        cameras=cams,
        api=opts.config.api.enabled,
    )
    summary = Perimeter(opts).run()
    runlog.event(
        "stopped",
        f"stopped ({stop.asked or 'sources ended'}): archive flushed and checkpoint signed",
        signal=stop.asked,
        records=summary["archive"]["records"],
        head=summary["archive"]["head"],
        verifier=summary["archive"]["verifier_key"],
    )
    return summary
