"""Structured logs of a site service (``kontur run``): one JSON object per line on stderr.

Every line holds ``ts`` (ISO 8601, UTC), ``level``, ``logger`` and ``msg``; a call may add
fields with ``extra={"fields": {...}}``. Credentials never reach a line: the message and the
fields go through :func:`kontur.redact.redact_url` / :func:`kontur.redact.redact` first
(ADR 0019). journald, Loki or ``jq`` read it as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import IO, Any

from kontur.redact import redact, redact_url

__all__ = ["JsonLineFormatter", "configure", "event"]

_LOGGER = "kontur"


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record (see the module)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_url(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(redact(fields))
        if record.exc_info:
            line["error"] = redact_url(self.formatException(record.exc_info).splitlines()[-1])
        return json.dumps(line, default=str)


def configure(stream: IO[str] | None = None, level: int = logging.INFO) -> logging.Handler:
    """Send every ``kontur.*`` logger's records to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger(_LOGGER)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    return handler


def event(name: str, msg: str, **fields: Any) -> None:
    """Log one named event (``event`` field) of the run at INFO, with its fields."""
    logging.getLogger("kontur.run").info(msg, extra={"fields": {"event": name, **fields}})
