"""Root of kontur's error tree.

Every domain has one root error derived from :class:`KonturError` and one leaf per check::

    KonturError
    ├── ConfigError                 malformed or inconsistent configuration
    ├── DataDirUnsafe               (kontur._private) a data dir kontur may not make its own
    ├── SourceError                 (kontur.ingest.errors) a source that cannot be read
    ├── ModelError                  (kontur.worker.errors) a model that cannot be loaded
    ├── ArchiveError                (kontur.archive.errors) archive store and verification
    ├── PlacementError              (kontur.placement.errors)
    ├── GateError                   (kontur.gate.errors)
    └── WireError                   (kontur.wire) a message that does not parse

Messages say what was expected and what was found. The CLI prints ``str(error)`` as one
line and exits non-zero; it never shows a traceback for a :class:`KonturError`.
"""

from __future__ import annotations

__all__ = ["ConfigError", "KonturError"]


class KonturError(Exception):
    """Base of every error kontur raises on purpose."""

    exit_code: int = 2


class ConfigError(KonturError):
    """The configuration is malformed: says which key, what was expected and what was found."""
