"""Errors of the release runners, under the worker's :class:`ModelError`.

::

    ModelError                     (kontur.worker.errors)
    ├── PlatformNotAllowed         the signed release does not list the platform asked for
    │                              (also a kontur.release.errors.PlatformNotAllowed)
    └── PlatformUnavailable        this machine has no backend for that platform

Together with :class:`~kontur.worker.errors.ModelFormatError` (the bytes, input or output
are not what the release declares) and :class:`~kontur.worker.errors.ModelUnreadable` (a
file the release names is not among the verified files).
"""

from __future__ import annotations

from kontur.release import errors as release_errors
from kontur.worker.errors import ModelError

__all__ = ["PlatformNotAllowed", "PlatformUnavailable"]


class PlatformNotAllowed(ModelError, release_errors.PlatformNotAllowed):
    """The release's ``platforms`` does not include the platform the dispatcher chose.

    The same refusal as the release verifier's, raised again at load time so that a worker
    handed a platform by mistake cannot run there; ``except`` either parent catches it.
    """


class PlatformUnavailable(ModelError):
    """The platform is allowed, but no runtime backend for it is installed here."""
