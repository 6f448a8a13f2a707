"""What the text guard found in a string: one :class:`TextFinding` per fact.

A finding flags the text for the person who reads it. It never changes what kontur does:
text in a frame is data, and no finding reaches the gate (ADR 0032).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = ["INJECTION_KINDS", "FindingKind", "TextFinding"]


class FindingKind(Enum):
    """The kinds of finding, from character hygiene up to instruction-like content.

    A plain :class:`~enum.Enum`, not a ``str``: no value of this package is a string the gate
    could take for a rule or an action name (``.value`` is the JSON form).
    """

    INVISIBLE = "invisible"
    """Zero-width, joiner, BOM, soft hyphen, tag or other invisible characters were removed."""
    BIDI = "bidi"
    """Bidi embedding, override, isolate or mark characters were removed."""
    CONTROL = "control"
    """Control characters were removed."""
    UNASSIGNED = "unassigned"
    """Private-use, surrogate or unassigned code points were removed."""
    NFKC = "nfkc"
    """NFKC changed the string (fullwidth, mathematical or other compatibility forms)."""
    MIXED_SCRIPT = "mixed_script"
    """A word mixes Latin, Cyrillic and Greek letters: the mark of homoglyphs."""
    INJECTION = "injection"
    """An instruction-like phrase or a role tag (the phrase list's ``phrase``/``token``)."""
    ACTION_SHAPE = "action_shape"
    """A tool-call or JSON action shape such as ``{"action": …}``."""
    TRUNCATED = "truncated"
    """The OCR's output was longer than the guard keeps (strings or lines): it was cut."""
    CLAMPED = "clamped"
    """The OCR's box lay outside the frame: it was clamped to it."""


#: The kinds that mean "this text reads as an instruction".
INJECTION_KINDS = frozenset({FindingKind.INJECTION, FindingKind.ACTION_SHAPE})


@dataclass(frozen=True)
class TextFinding:
    """One finding: its kind, the rule that found it (a phrase-list id, if any), a detail."""

    kind: FindingKind
    detail: str
    rule: str = ""

    def to_json(self) -> dict[str, Any]:
        """``{"kind", "rule", "detail"}``."""
        return {"kind": self.kind.value, "rule": self.rule, "detail": self.detail}
