"""Errors of the analytics worker.

::

    WorkerError (KonturError)
    ├── ModelError                 a model that cannot be used
    │   ├── ModelUnreadable        missing or unreadable file
    │   ├── ModelIntegrityError    bytes differ from the verified digest
    │   ├── ModelFormatError       not a model of the declared format
    │   ├── PlatformNotAllowed     (runners.errors) the release does not list the platform
    │   └── PlatformUnavailable    (runners.errors) no backend here for that platform
    ├── AcceleratorFault           the GPU/NPU execution provider failed while running
    └── SandboxError               (sandbox.errors) the sandbox could not be entered
        ├── SandboxPolicyError     malformed policy, or one exposing a denied path
        └── MechanismUnavailable   a required mechanism is missing
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = [
    "ACCELERATOR_FAULT_EXIT",
    "AcceleratorFault",
    "ModelError",
    "ModelFormatError",
    "ModelIntegrityError",
    "ModelUnreadable",
    "WorkerError",
]


class WorkerError(KonturError):
    """Root of analytics-worker errors."""


#: The worker's exit status after an :class:`AcceleratorFault`. It is only the worker's claim:
#: the supervisor raises ``accelerator_reset`` on it only when its own table placed the
#: worker on an accelerator, and the claim can only degrade, never restore (issue 13 §3).
ACCELERATOR_FAULT_EXIT = 75


class AcceleratorFault(WorkerError):
    """The model ran on an accelerator and its execution provider failed (a device lost, a
    driver reset, an illegal memory access): the worker exits with
    :data:`ACCELERATOR_FAULT_EXIT` and is restarted on the CPU."""


class ModelError(WorkerError):
    """A model that cannot be used."""


class ModelUnreadable(ModelError):
    """The model file is missing or unreadable."""


class ModelIntegrityError(ModelError):
    """The model bytes differ from the digest they were verified against."""


class ModelFormatError(ModelError):
    """The bytes are not a model of the declared format."""
