"""Errors of the worker sandbox.

::

    WorkerError (kontur.worker.errors)
    └── SandboxError                  the sandbox could not be entered as the policy asks
        ├── SandboxPolicyError        a malformed policy, or one whose allowed paths expose
        │                             a path it must deny
        └── MechanismUnavailable      a mechanism the policy *requires* is missing or failed
                                      (kernel, account or architecture)
"""

from __future__ import annotations

from kontur.worker.errors import WorkerError

__all__ = ["MechanismUnavailable", "SandboxError", "SandboxPolicyError"]


class SandboxError(WorkerError):
    """Root of sandbox errors: the worker must not run with less isolation than required."""


class SandboxPolicyError(SandboxError):
    """The policy is malformed, or contradicts itself; says which key or path."""


class MechanismUnavailable(SandboxError):
    """A required isolation mechanism is missing here; says which and why."""

    def __init__(self, mechanism: str, reason: str) -> None:
        super().__init__(f"sandbox: expected {mechanism} (required by the policy), got {reason}")
        self.mechanism, self.reason = mechanism, reason
