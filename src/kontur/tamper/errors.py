"""Errors of the camera tamper monitors: one root, one leaf per check.

::

    KonturError
    └── TamperError                 (kontur.tamper.errors) the tamper monitor cannot run
        ├── TamperConfigError       a ``tamper:`` setting out of range (also a ConfigError)
        ├── TamperInputError        a frame, a time or a kind the monitor cannot use
        └── TamperOrderError        a time earlier than the last one observed

Messages say what was expected and what was found, on one line.
"""

from __future__ import annotations

from kontur.errors import ConfigError, KonturError

__all__ = ["TamperConfigError", "TamperError", "TamperInputError", "TamperOrderError"]


class TamperError(KonturError):
    """Root of the tamper monitor's errors."""


class TamperConfigError(TamperError, ConfigError):
    """A ``tamper:`` setting is unknown or out of range: says which, expected and found."""


class TamperInputError(TamperError):
    """A frame that is not a uint8 image, a time that is not finite, an unknown kind."""


class TamperOrderError(TamperError):
    """A frame whose time is earlier than the last frame observed for that camera."""
