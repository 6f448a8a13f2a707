"""Errors of the run manifest.

One root, one leaf per check::

    ManifestError (KonturError)
    ├── ManifestInvalid     a stored manifest that does not parse, or whose digest does not
    │                       match its content (exit 1: the archive holds something else)
    └── ManifestNotFound    no run manifest where one was asked for (exit 2): an archive no
                            ``kontur demo``/``kontur run`` has started on, a ``--run`` out of
                            range

Messages say what was expected and what was found, on one line.
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = ["ManifestError", "ManifestInvalid", "ManifestNotFound"]


class ManifestError(KonturError):
    """Root of the run manifest's errors."""


class ManifestInvalid(ManifestError):
    """A stored manifest is malformed or does not match its digest."""

    exit_code = 1


class ManifestNotFound(ManifestError):
    """No run manifest where one was asked for."""
