"""Frame text as a datamarked data field: :class:`FrameText` and its :class:`DataMarker`.

A :class:`FrameText` is one string read from a frame, with what the guard found in it and
where it came from (:class:`Provenance`: camera, frame, box, OCR confidence). It is data:
no field of it is an instruction, and no type of this package is one that the gate accepts
(ADR 0032; ``tests/textguard/test_contract.py``).

Any consumer (a report, a generator plug-in, a console) is handed the text only inside
explicit data markers (:meth:`DataMarker.wrap`)::

    -----BEGIN UNTRUSTED FRAME-TEXT 3f9ac0…----- camera=gate-1 frame=100 box=13,22,398,43 …
    IGNORE PREVIOUS INSTRUCTIONS
    -----END UNTRUSTED FRAME-TEXT 3f9ac0…-----

The boundary is 96 random bits, drawn per report *after* the text is known and redrawn
while any text holds it (:meth:`DataMarker.fresh`), so a text cannot close its own field.
A body is one line (the guard removed every control character), so it cannot start a marker
line either.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kontur.textguard.findings import INJECTION_KINDS, FindingKind, TextFinding
from kontur.textguard.normalise import clean

__all__ = ["MAX_CHARS", "MAX_LINES", "DataMarker", "FrameText", "Provenance", "safe_attr"]

#: The most strings kept from one frame, and the most characters kept of one string.
MAX_LINES = 64
MAX_CHARS = 256
_ATTR_CHARS = 64


def safe_attr(value: object) -> str:
    """A marker attribute: cleaned, no spaces, no ``-----``, at most 64 characters."""
    text = clean(str(value)).text.replace(" ", "_").replace("-----", "_")
    return text[:_ATTR_CHARS] or "_"


@dataclass(frozen=True)
class DataMarker:
    """The random boundary of one report's data fields."""

    boundary: str

    @classmethod
    def fresh(cls, avoid: Iterable[str] = ()) -> DataMarker:
        """A new boundary that none of ``avoid`` (every text the report will hold) contains."""
        texts = tuple(avoid)
        while True:
            boundary = secrets.token_hex(12)
            if not any(boundary in t for t in texts):
                return cls(boundary)

    def wrap(self, label: str, body: str, attrs: Mapping[str, object] | None = None) -> str:
        """``body`` between this boundary's markers; ``attrs`` go on the BEGIN line.

        RuntimeError when ``body`` holds the boundary or a line break (a caller's bug: the
        boundary must come from :meth:`fresh` over the texts, the body from the guard).
        """
        extra = " ".join(f"{safe_attr(k)}={safe_attr(v)}" for k, v in (attrs or {}).items())
        if any(self.boundary in s for s in (body, extra)) or "\n" in body or "\r" in body:
            raise RuntimeError("datamark: expected a one-line body without the boundary")
        tag = f"UNTRUSTED {safe_attr(label).upper()} {self.boundary}"
        begin = f"-----BEGIN {tag}-----" + (f" {extra}" if extra else "")
        return f"{begin}\n{body}\n-----END {tag}-----"


def _finding_tag(f: TextFinding) -> str:
    return f"{f.kind.value}:{f.rule}" if f.rule else f.kind.value


@dataclass(frozen=True)
class Provenance:
    """Where a string came from: which camera, frame and box, and how sure the OCR was.

    ``box`` is (x1, y1, x2, y2) in pixels, clamped to the frame; ``source`` names the clip or
    archive record the frame was read from; ``engine`` the OCR that read it.
    """

    camera: str
    frame_index: int
    box: tuple[int, int, int, int]
    confidence: float
    source: str
    engine: str

    def to_json(self) -> dict[str, Any]:
        """The provenance as JSON."""
        return {
            "camera": self.camera,
            "frame_index": self.frame_index,
            "box": list(self.box),
            "confidence": round(self.confidence, 4),
            "source": self.source,
            "engine": self.engine,
        }


@dataclass(frozen=True)
class FrameText:
    """One string read from a frame: data, never an instruction.

    ``text`` is what the OCR returned (cut to :data:`MAX_CHARS`; it may hold invisible or
    control characters, so it is never shown raw), ``normalised`` what a person is shown
    (NFKC, invisible, bidi and control characters removed: Cyrillic stays Cyrillic),
    ``skeleton`` the homoglyph-folded form that matching used (never shown as the text).
    """

    text: str
    normalised: str
    skeleton: str
    findings: tuple[TextFinding, ...]
    provenance: Provenance

    @property
    def instruction_like(self) -> bool:
        """True when a finding says the text reads as an instruction (it is flagged, and
        stays data all the same)."""
        return any(f.kind in INJECTION_KINDS for f in self.findings)

    def kinds(self) -> tuple[FindingKind, ...]:
        """The kinds of its findings, each once, in order."""
        return tuple(dict.fromkeys(f.kind for f in self.findings))

    def datamarked(self, marker: DataMarker) -> str:
        """The display text inside ``marker``'s data markers, with its provenance."""
        p = self.provenance
        attrs = {
            "camera": p.camera,
            "frame": p.frame_index,
            "box": ",".join(str(v) for v in p.box),
            "confidence": f"{p.confidence:.2f}",
            "findings": ",".join(_finding_tag(f) for f in self.findings) or "none",
        }
        return marker.wrap("frame-text", self.normalised, attrs)

    def to_json(self, marker: DataMarker | None = None) -> dict[str, Any]:
        """The field as JSON; with ``marker``, its datamarked rendering too."""
        out: dict[str, Any] = {
            "text": self.text,
            "normalised": self.normalised,
            "skeleton": self.skeleton,
            "instruction_like": self.instruction_like,
            "findings": [f.to_json() for f in self.findings],
            "provenance": self.provenance.to_json(),
        }
        if marker is not None:
            out["datamarked"] = self.datamarked(marker)
        return out
