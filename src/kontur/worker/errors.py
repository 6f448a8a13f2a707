"""Errors of the analytics worker.

::

    WorkerError (KonturError)
    ├── ModelError                 a model that cannot be used
    │   ├── ModelUnreadable        missing or unreadable file
    │   ├── ModelIntegrityError    bytes differ from the verified digest
    │   ├── ModelFormatError       not a model of the declared format
    │   ├── PlatformNotAllowed     (runners.errors) the release does not list the platform
    │   └── PlatformUnavailable    (runners.errors) no backend here for that platform
    └── SandboxError               (sandbox.errors) the sandbox could not be entered
        ├── SandboxPolicyError     malformed policy, or one exposing a denied path
        └── MechanismUnavailable   a required mechanism is missing
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = [
    "ModelError",
    "ModelFormatError",
    "ModelIntegrityError",
    "ModelUnreadable",
    "WorkerError",
]


class WorkerError(KonturError):
    """Root of analytics-worker errors."""


class ModelError(WorkerError):
    """A model that cannot be used."""


class ModelUnreadable(ModelError):
    """The model file is missing or unreadable."""


class ModelIntegrityError(ModelError):
    """The model bytes differ from the digest they were verified against."""


class ModelFormatError(ModelError):
    """The bytes are not a model of the declared format."""
