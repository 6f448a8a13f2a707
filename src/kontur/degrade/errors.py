"""Errors of the safe-degradation package.

::

    KonturError
    └── DegradationError            (kontur.degrade) root of this package's errors
        ├── UnknownTriggerError     a trigger name that is not in the trigger table
        ├── ScopeError              a site-wide trigger raised for one camera (ADR 0040)
        └── MonitorSetupError       a health monitor given an impossible setting

Conditions the monitors detect (a swapped model, a stepped clock, a hung worker) are not
errors: they are triggers fed to :class:`~kontur.degrade.DegradationMachine`. These errors
are for a caller that names a trigger that does not exist or configures a monitor that could
never work. Messages say what was expected and what was found.
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = ["DegradationError", "MonitorSetupError", "ScopeError", "UnknownTriggerError"]


class DegradationError(KonturError):
    """Root of every error :mod:`kontur.degrade` raises on purpose."""


class UnknownTriggerError(DegradationError):
    """A trigger name that is not in the trigger table (e.g. a typo in a caller)."""


class ScopeError(DegradationError):
    """A trigger that concerns the whole site (the model, the clock, the worker...) raised
    for one camera, or an empty camera id (ADR 0040)."""


class MonitorSetupError(DegradationError):
    """A monitor given an impossible setting: a malformed digest, a non-positive interval."""
