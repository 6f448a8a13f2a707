"""The threat catalogue behind R_j(p) (paper, Tables 1 and 3 and "Модель адаптивного
доверенного контура видеоаналитики").

Each threat *i* carries the terms of ``R_j(p) = Σ_i w_i · a_ij · e_ip · (1 − m_ip)``:
``w`` (weight of consequences), ``a`` (applicability, optionally per task class in
``a_by_task``), ``e`` (exposure per platform) and ``m`` (effectiveness of the measures in
place per platform). Every number is in [0, 1] and every threat names all three platforms.

A threat with ``exposure_from: sla_headroom`` takes its exposure from the measured latency
(``e = clamp(L_p / Lmax, 0, 1)``, see :mod:`kontur.placement.risk`); its ``e`` is then only
the prior used for a platform that has no measurement.

:func:`load_catalogue` is the only way in; a malformed catalogue raises
:class:`~kontur.placement.errors.CatalogueError` naming the threat id and the key.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kontur.placement._platforms import Platform
from kontur.placement.errors import CatalogueError, UnknownTaskClass

__all__ = [
    "CONTOURS",
    "Catalogue",
    "Contour",
    "PlatformValues",
    "Threat",
    "load_catalogue",
    "parse_catalogue",
]

#: A number in [0, 1]; strings, booleans, NaN and infinities are refused.
Unit = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, strict=True)]

Contour = Literal[
    "scene/sensor",
    "camera/firmware",
    "network",
    "model/data",
    "compute node",
    "archive/management",
]

#: The contours of the paper's Table 1, in its order.
CONTOURS: tuple[str, ...] = typing.get_args(Contour)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlatformValues(_Frozen):
    """One value per platform; all three are required."""

    cpu: Unit
    gpu: Unit
    npu: Unit

    def of(self, platform: Platform) -> float:
        """The value for ``platform``."""
        value: float = getattr(self, platform)
        return value


class Threat(_Frozen):
    """One threat *i* and its terms."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    title: str = Field(min_length=1)
    contour: Contour
    source: str = Field(min_length=1)
    """Where in the paper the threat comes from, e.g. ``"Table 3: memory isolation"``."""
    w: Unit
    a: Unit
    a_by_task: dict[str, Unit] = Field(default_factory=dict)
    e: PlatformValues
    m: PlatformValues
    exposure_from: Literal["catalogue", "sla_headroom"] = "catalogue"
    rationale: str = Field(min_length=1)

    def applicability(self, task_class: str) -> float:
        """``a_ij``: the per-task override when there is one, else the default ``a``."""
        return self.a_by_task.get(task_class, self.a)


class Catalogue(_Frozen):
    """A validated threat catalogue: the task classes it knows and its threats."""

    version: Literal[1]
    task_classes: tuple[str, ...] = Field(min_length=1)
    threats: tuple[Threat, ...] = Field(min_length=1)
    """Never empty: an empty catalogue would make every platform look risk-free."""

    def check_task_class(self, task_class: str) -> None:
        """Raise :class:`UnknownTaskClass` unless ``task_class`` is declared."""
        if task_class not in self.task_classes:
            raise UnknownTaskClass(
                f"expected a task class among {list(self.task_classes)}, got {task_class!r}"
            )


def _builtin_text() -> str:
    return resources.files("kontur.placement").joinpath("threats.yaml").read_text("utf-8")


def _read(path: Path | None) -> tuple[str, str]:
    if path is None:
        return "built-in", _builtin_text()
    where = str(path)
    try:
        return where, Path(path).read_text("utf-8")
    except FileNotFoundError:
        raise CatalogueError(
            f"catalogue {where}: expected a readable YAML file, found nothing"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(
            f"catalogue {where}: expected a readable YAML file, got {exc}"
        ) from None


def _describe(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "<root>"
    found = err.get("input")
    shown = "a mapping" if isinstance(found, Mapping) else repr(found)
    return f"key {loc}: {err['msg']} (found {shown[:80]})"


def _parse_threat(where: str, index: int, raw: Any) -> Threat:
    if not isinstance(raw, Mapping):
        raise CatalogueError(
            f"catalogue {where}: threat #{index}: expected a mapping, got {type(raw).__name__}"
        )
    tid = raw.get("id", f"#{index}")
    try:
        return Threat.model_validate(raw)
    except ValidationError as exc:
        raise CatalogueError(f"catalogue {where}: threat {tid!r}: {_describe(exc)}") from None


def _cross_check(where: str, catalogue: Catalogue) -> None:
    seen: set[str] = set()
    for t in catalogue.threats:
        if t.id in seen:
            raise CatalogueError(
                f"catalogue {where}: threat {t.id!r}: key id: expected unique ids, got a duplicate"
            )
        seen.add(t.id)
        for task in t.a_by_task:
            if task not in catalogue.task_classes:
                raise CatalogueError(
                    f"catalogue {where}: threat {t.id!r}: key a_by_task.{task}: expected a task "
                    f"class among {list(catalogue.task_classes)}"
                )


def parse_catalogue(text: str, where: str = "<text>") -> Catalogue:
    """Parse YAML ``text`` into a :class:`Catalogue`; ``where`` names it in error messages."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise CatalogueError(
            f"catalogue {where}: expected valid YAML, found a syntax error{at}"
        ) from None
    if not isinstance(raw, Mapping):
        raise CatalogueError(
            f"catalogue {where}: expected a mapping at top level, got {type(raw).__name__}"
        )
    threats = raw.get("threats")
    if isinstance(threats, list):
        parsed = [_parse_threat(where, i, t) for i, t in enumerate(threats)]
        raw = {**raw, "threats": parsed}
    try:
        catalogue = Catalogue.model_validate(raw)
    except ValidationError as exc:
        raise CatalogueError(f"catalogue {where}: {_describe(exc)}") from None
    _cross_check(where, catalogue)
    return catalogue


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Load the catalogue at ``path``, or the built-in one (paper Tables 1 and 3) when None."""
    where, text = _read(path)
    return parse_catalogue(text, where)
