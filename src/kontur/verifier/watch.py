"""What the policies watch: which zones of which camera, and which classes.

The verifier judges the worker for the gate, and the gate only acts on the classes and zones
its policies name (issue 13 §2: "a policy only cares whether its own class is stable"). A class
flip between two classes no policy names (car ↔ truck under a person-only policy) changes no
decision, so it is no disagreement; a flip into or out of a watched class is. Unexplained
foreground (:mod:`kontur.verifier.evasion`) is looked for inside the watched zones only.

:meth:`Watch.everything` (every class, the whole frame of every camera) is what a verifier
told nothing about the policies uses: it disagrees more often, never less.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kontur.config import PolicyConfig, ZoneConfig
from kontur.geometry import point_in_polygon

__all__ = ["WHOLE_FRAME", "ClassGroups", "Watch", "WatchedZone"]

WHOLE_FRAME: tuple[tuple[float, float], ...] = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
#: Answers :meth:`ClassGroups.watched` remembers (a site's detector has tens of classes; a
#: worker that invents names only finds the rest asked afresh).
MAX_REMEMBERED = 1024


@dataclass(frozen=True, slots=True)
class WatchedZone:
    """A policy zone: its id, its camera (``"*"``: every camera), its normalised polygon."""

    zone_id: str
    camera: str
    polygon: tuple[tuple[float, float], ...]
    classes: frozenset[str] | None
    """The classes the zone's policies name (None: every class)."""

    def contains(self, x: float, y: float) -> bool:
        """True when the normalised point ``(x, y)`` is inside the polygon or on its edge
        (as the gate's rules count it: :func:`kontur.geometry.point_in_polygon`)."""
        return point_in_polygon(x, y, self.polygon)


@dataclass(frozen=True, slots=True)
class Watch:
    """The policy zones and classes the verifier judges for."""

    zones: tuple[WatchedZone, ...]
    classes: frozenset[str] | None
    """Every class any policy names (None: every class is watched)."""

    @classmethod
    def everything(cls) -> Watch:
        """Every class, and the whole frame of every camera."""
        return cls((WatchedZone("whole-frame", "*", WHOLE_FRAME, None),), None)

    @classmethod
    def from_policies(cls, zones: Iterable[ZoneConfig], policies: Iterable[PolicyConfig]) -> Watch:
        """The zones the policies name, with their classes; refuses a policy on no zone."""
        by_id = {z.id: z for z in zones}
        named: dict[str, set[str]] = {}
        for p in policies:
            if p.when.zone not in by_id:
                raise ValueError(
                    f"policy {p.rule}: expected a zone among {sorted(by_id)}, got {p.when.zone!r}"
                )
            named.setdefault(p.when.zone, set()).update(p.when.classes)
        watched = tuple(
            WatchedZone(z, by_id[z].camera, tuple(by_id[z].polygon), frozenset(c))
            for z, c in named.items()
        )
        return cls(watched, frozenset(c for cs in named.values() for c in cs))

    def zones_for(self, camera_id: str) -> tuple[WatchedZone, ...]:
        """The watched zones of ``camera_id``."""
        return tuple(z for z in self.zones if z.camera in ("*", camera_id))


class ClassGroups:
    """Classes a small detector confuses with each other, as groups (issue 13 §2).

    A class named in no group is a group of its own. Two classes in one group are "the same"
    for class stability: a person on a bicycle is detected as either, a van as car or truck.
    """

    def __init__(self, groups: Sequence[Sequence[str]]) -> None:
        self._of: dict[str, int] = {}
        for i, group in enumerate(groups):
            for name in group:
                if name in self._of:
                    raise ValueError(f"expected class {name!r} in one group, got it in two")
                self._of[name] = i
        self._groups = tuple(frozenset(g) for g in groups)
        self._keys = {name: "|".join(sorted(self._groups[i])) for name, i in self._of.items()}
        self._watched: dict[tuple[str, frozenset[str] | None], bool] = {}
        """:meth:`watched`'s answers (asked several times per box and frame), at most
        :data:`MAX_REMEMBERED`: class names come from the worker."""

    def key(self, class_name: str) -> str:
        """A name for the group of ``class_name`` (the class itself when in no group)."""
        return self._keys.get(class_name, class_name)

    def members(self, class_name: str) -> frozenset[str]:
        """Every class in the group of ``class_name``."""
        i = self._of.get(class_name)
        return frozenset((class_name,)) if i is None else self._groups[i]

    def watched(self, class_name: str, classes: frozenset[str] | None) -> bool:
        """True when a policy watching ``classes`` (None: all) cares about ``class_name``'s
        group: the group holds a watched class."""
        known = self._watched.get((class_name, classes))
        if known is None:
            known = classes is None or not classes.isdisjoint(self.members(class_name))
            if len(self._watched) < MAX_REMEMBERED:
                self._watched[class_name, classes] = known
        return known
