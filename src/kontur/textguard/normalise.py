"""Pure string work on one OCR string: clean it for display, fold it for matching.

Order of steps (:func:`clean`, then :func:`keys`):

1. **strip** (:func:`clean`): invisible characters (zero-width, word joiners, BOM, soft
   hyphen, tags, variation selectors, other ``Cf``), bidi controls (embeddings, overrides,
   isolates, marks) and control characters (``Cc``), private-use, surrogate and unassigned
   code points are removed, and each kind found is recorded (:class:`Removed`). A line
   break or tab becomes a space: OCR lines are one line;
2. **NFKC** (Unicode normalisation form KC): fullwidth, mathematical and other compatibility
   forms become their plain letters; whether it changed anything is recorded. Whitespace
   runs become one space. This is the *display* text: Cyrillic stays Cyrillic;
3. **skeleton** (:func:`skeleton`), for matching only: NFD with combining marks dropped,
   each character folded to its confusables prototype (:mod:`kontur.textguard._confusables`),
   case folded, and folded again until nothing changes;
4. **keys** (:func:`keys`): the compact key (case folded, whitespace removed), the skeleton
   with whitespace removed, and the letters-and-digits-only skeleton. Phrases are compared on
   these (:mod:`kontur.textguard.phrases`).

Matching is case-insensitive, while UTS #39 confusables are case-sensitive (Cyrillic ``Т``
looks like ``T``, its small ``т`` like a small capital). So the built-in Cyrillic/Greek table
(:data:`~kontur.textguard._confusables.FALLBACK`) is applied before the Unicode table: each
small letter folds to the Latin letter its capital looks like. Small capitals fold to their
letter, and ``l`` to ``i`` (``I``, ``l``, ``1`` and ``|`` are one prototype in UTS #39, and
signs are written in capitals). Over-folding only makes a match likelier.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from kontur.textguard._confusables import FALLBACK, table

__all__ = ["Cleaned", "Keys", "Removed", "clean", "keys", "mixed_script_words", "skeleton"]

_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: Default-ignorable characters that are not ``Cf`` (fillers, CGJ, Mongolian and Khmer).
_INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f\u3164\uffa0")
_SPACES = frozenset("\t\n\r\x0b\x0c\x85\u2028\u2029")
_EXTRA = {"l": "i", "ĸ": "k", "ʍ": "m", "ƅ": "b"}


class Removed(StrEnum):
    """A kind of character :func:`clean` removes."""

    INVISIBLE = "invisible"
    BIDI = "bidi"
    CONTROL = "control"
    UNASSIGNED = "unassigned"


@dataclass(frozen=True)
class Cleaned:
    """A string made fit to display: what was removed (kind → code points), and NFKC."""

    text: str
    removed: tuple[tuple[Removed, tuple[str, ...]], ...]
    nfkc_changed: bool


@dataclass(frozen=True)
class Keys:
    """The forms phrases are compared on (see the module doc, step 4)."""

    compact: str
    skeleton: str
    letters: str


def _kind(ch: str) -> Removed | None:
    if ch in _BIDI:
        return Removed.BIDI
    cat = unicodedata.category(ch)
    if ch in _INVISIBLE or cat == "Cf" or 0xFE00 <= ord(ch) <= 0xFE0F or ord(ch) >= 0xE0000:
        return Removed.INVISIBLE
    if cat == "Cc":
        return Removed.CONTROL
    if cat in ("Co", "Cs", "Cn"):
        return Removed.UNASSIGNED
    return None


def _strip(raw: str) -> tuple[str, dict[Removed, list[str]]]:
    kept: list[str] = []
    found: dict[Removed, list[str]] = {}
    for ch in raw:
        kind = _kind(ch)
        if kind is None:
            kept.append(ch)
            continue
        points = found.setdefault(kind, [])
        if len(points) < 16 and f"U+{ord(ch):04X}" not in points:
            points.append(f"U+{ord(ch):04X}")
        if ch in _SPACES:
            kept.append(" ")
    return "".join(kept), found


def clean(raw: str) -> Cleaned:
    """Steps 1 and 2 of the module doc: the display text and what was removed from it."""
    stripped, found = _strip(raw)
    nfkc = unicodedata.normalize("NFKC", stripped)
    again, more = _strip(nfkc)  # NFKC can produce nothing to strip, but never trust that
    for kind, points in more.items():
        found.setdefault(kind, []).extend(p for p in points if p not in found.get(kind, []))
    text = " ".join(again.split())
    removed = tuple((k, tuple(found[k])) for k in Removed if k in found)
    return Cleaned(text, removed, nfkc != stripped)


@functools.lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    proto = table().mapping
    out = ch
    for _ in range(4):
        step = "".join(FALLBACK.get(c) or proto.get(c) or _small_capital(c) or c for c in out)
        step = "".join(_EXTRA.get(c, c) for c in step.casefold())
        if step == out:
            break
        out = step
    return out


def _small_capital(ch: str) -> str | None:
    name = unicodedata.name(ch, "")
    prefix = "LATIN LETTER SMALL CAPITAL "
    if name.startswith(prefix) and len(name) == len(prefix) + 1:
        return name[-1].lower()
    return None


def skeleton(text: str) -> str:
    """The matching form of ``text`` (step 3 of the module doc); never shown to a person."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(_fold_char(c) for c in decomposed if not unicodedata.combining(c))


def keys(text: str) -> Keys:
    """The three keys of an already :func:`clean` text (step 4 of the module doc)."""
    compact = "".join(text.casefold().split())
    skel = "".join(skeleton(text).split())
    return Keys(compact, skel, "".join(c for c in skel if c.isalnum()))


def _script(ch: str) -> str | None:
    name = unicodedata.name(ch, "")
    for script in ("LATIN", "CYRILLIC", "GREEK"):
        if name.startswith(script):
            return script
    return None


def mixed_script_words(text: str) -> tuple[str, ...]:
    """The words of ``text`` that mix Latin, Cyrillic and Greek letters (a homoglyph sign)."""
    found = []
    for word in text.split():
        scripts = {s for s in map(_script, word) if s is not None}
        if len(scripts) > 1 and word not in found:
            found.append(word)
    return tuple(found)
