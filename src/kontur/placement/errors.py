"""Errors of the placement dispatcher (paper, "Модель адаптивного доверенного контура").

One root, one leaf per check::

    PlacementError(KonturError)
    ├── CatalogueError      a threat catalogue that is malformed (names the threat id and key)
    ├── UnknownTaskClass    a task class the catalogue does not define
    ├── UnknownPlatform     a platform other than cpu, gpu, npu
    ├── MeasurementError    a measurement that is malformed or belongs to another platform
    ├── BenchError          a bench run that could not produce a measurement
    ├── TieMarginError      a tie margin outside [0, 1]
    └── NoCandidates        a choice asked for with no candidate platform at all

Messages say what was expected and what was found, on one line.
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = [
    "BenchError",
    "CatalogueError",
    "MeasurementError",
    "NoCandidates",
    "PlacementError",
    "TieMarginError",
    "UnknownPlatform",
    "UnknownTaskClass",
]


class PlacementError(KonturError):
    """Root of every error the placement dispatcher raises on purpose."""


class CatalogueError(PlacementError):
    """The threat catalogue is malformed: names the threat id, the key and what was found."""


class UnknownTaskClass(PlacementError):
    """The task class is not among the catalogue's ``task_classes``."""


class UnknownPlatform(PlacementError):
    """A platform name other than ``cpu``, ``gpu`` or ``npu``."""


class MeasurementError(PlacementError):
    """A measurement is malformed, or was filed under the wrong platform."""


class BenchError(PlacementError):
    """A bench run failed (no frames, the callable raised, the timer did not advance)."""


class TieMarginError(PlacementError):
    """The relative tie margin is not a finite number in [0, 1]."""


class NoCandidates(PlacementError):
    """``choose`` was given no candidate platform at all (an empty list never means "ok")."""
