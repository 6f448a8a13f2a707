"""The confusables table behind :func:`kontur.textguard.normalise.skeleton`.

Source: Unicode's ``confusables.txt`` (UTS #39 §4), as the ``confusable-homoglyphs`` package
ships it (``confusables.json``, MIT). That file stores each ``source → prototype`` line in
both directions, so the direction is rebuilt here: the characters confusable with one another
form a star around their prototype (every source maps to exactly one prototype, and a
prototype maps to nothing), so each connected group is folded to its centre, the member with
the most neighbours, ties broken towards ASCII, then the shorter string, then the smaller
code point. Only single characters are mapped; the result may be several (``m`` → ``rn``).

The file is read with :mod:`importlib.resources`, never through the package's own loader
(which honours a ``CONFUSABLE_DATA`` environment variable: a data path the environment could
redirect). When the package is absent, :data:`FALLBACK` is used: the Cyrillic and Greek
letters that look like Latin ones (fullwidth and mathematical letters need no table: NFKC
folds them first). Either way the table must cover :data:`FALLBACK`, which a test checks.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

__all__ = ["FALLBACK", "Table", "table"]

_log = logging.getLogger(__name__)

#: The floor: Cyrillic and Greek lookalikes of Latin letters (lower case: matching casefolds
#: first). Each value is the Latin letter the UTS #39 skeleton gives.
FALLBACK: Mapping[str, str] = MappingProxyType(
    {
        # Cyrillic
        "а": "a",
        "в": "b",
        "е": "e",
        "һ": "h",
        "і": "i",
        "ј": "j",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "ѕ": "s",
        "ԁ": "d",
        "ԛ": "q",
        "ԝ": "w",
        "ь": "b",
        # Greek
        "α": "a",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "γ": "y",
        "ε": "e",
    }
)


@dataclass(frozen=True)
class Table:
    """Single character → its prototype; ``source`` says where the table came from."""

    mapping: Mapping[str, str]
    source: str


def _centre(group: set[str], degree: dict[str, int]) -> str:
    return min(group, key=lambda s: (-degree[s], not s.isascii(), len(s), [ord(c) for c in s]))


def _from_pairs(pairs: Mapping[str, list[str]]) -> dict[str, str]:
    """Fold each connected group of confusable strings to its centre (see the module doc)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    degree: dict[str, int] = {}
    for a, others in pairs.items():
        degree[a] = degree.get(a, 0) + len(others)
        for b in others:
            degree.setdefault(b, 0)
            parent[find(a)] = find(b)
    groups: dict[str, set[str]] = {}
    for s in degree:
        groups.setdefault(find(s), set()).add(s)
    mapping: dict[str, str] = {}
    for group in groups.values():
        centre = _centre(group, degree)
        mapping.update({s: centre for s in group if len(s) == 1 and s != centre})
    return mapping


def _load_package() -> Table | None:
    try:
        import confusable_homoglyphs

        raw = (resources.files("confusable_homoglyphs") / "confusables.json").read_bytes()
        data = json.loads(raw)
    except (ImportError, OSError, ValueError) as exc:
        _log.warning("textguard: confusables table from a built-in list (%s)", exc)
        return None
    # the file stores some characters with bidi marks around them (Hebrew): strip those
    marks = str.maketrans("", "", "\u200e\u200f")
    pairs = {
        str(k).translate(marks): [str(e["c"]).translate(marks) for e in v] for k, v in data.items()
    }
    version = getattr(confusable_homoglyphs, "__version__", "?")
    return Table(
        MappingProxyType(_from_pairs(pairs)),
        f"Unicode confusables.txt via confusable-homoglyphs {version}",
    )


@functools.cache
def table() -> Table:
    """The confusables table (built once per process)."""
    return _load_package() or Table(FALLBACK, "built-in Cyrillic/Greek table (ADR 0032)")
