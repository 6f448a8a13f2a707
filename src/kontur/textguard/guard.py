"""The guard's pure core: OCR lines in, :class:`GuardedFrame` out. No I/O, no clock.

Order of steps (:func:`guard_frame`):

1. bound what the OCR said (it is untrusted): keep :data:`~kontur.textguard.field.MAX_LINES`
   lines and :data:`~kontur.textguard.field.MAX_CHARS` characters of each, clamp each box to
   the frame and each confidence to 0..1, and record each cut as a finding;
2. per string (:func:`guard_text`): clean it (strip invisible, bidi and control characters;
   NFKC), fold it to its skeleton, look for words that mix scripts, search the phrase list;
3. over the whole frame: search the strings joined in reading order, for phrases that the
   OCR split across lines, and record those not already found in one string;
4. draw the frame's :class:`~kontur.textguard.field.DataMarker` over every text it holds.

Nothing here acts on a finding: the result is data for a person, and no code path turns
it into a gate request (ADR 0032).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kontur.textguard.field import MAX_CHARS, MAX_LINES, DataMarker, FrameText, Provenance
from kontur.textguard.findings import INJECTION_KINDS, FindingKind, TextFinding
from kontur.textguard.messages import OcrLine
from kontur.textguard.normalise import Removed, clean, mixed_script_words, skeleton
from kontur.textguard.phrases import PhraseList, phrase_list

__all__ = ["FrameFacts", "GuardedFrame", "guard_frame", "guard_text"]

_REMOVED_KIND = {
    Removed.INVISIBLE: FindingKind.INVISIBLE,
    Removed.BIDI: FindingKind.BIDI,
    Removed.CONTROL: FindingKind.CONTROL,
    Removed.UNASSIGNED: FindingKind.UNASSIGNED,
}


@dataclass(frozen=True)
class FrameFacts:
    """What the caller knows of the frame: its camera, index, size, source; the OCR engine."""

    camera: str
    frame_index: int
    width: int
    height: int
    source: str
    engine: str


@dataclass(frozen=True)
class GuardedFrame:
    """Every string of one frame as a :class:`FrameText`, the frame-wide findings, and the
    marker any rendering of them uses."""

    facts: FrameFacts
    texts: tuple[FrameText, ...]
    findings: tuple[TextFinding, ...]
    marker: DataMarker

    @property
    def instruction_like(self) -> bool:
        """True when any string, or the frame's strings read together, reads as one."""
        frame_wide = any(f.kind in INJECTION_KINDS for f in self.findings)
        return frame_wide or any(t.instruction_like for t in self.texts)

    def to_json(self) -> dict[str, Any]:
        """The frame and its texts as JSON, each text with its datamarked rendering."""
        f = self.facts
        return {
            "camera": f.camera,
            "frame_index": f.frame_index,
            "width": f.width,
            "height": f.height,
            "source": f.source,
            "engine": f.engine,
            "boundary": self.marker.boundary,
            "instruction_like": self.instruction_like,
            "findings": [x.to_json() for x in self.findings],
            "texts": [t.to_json(self.marker) for t in self.texts],
        }


def guard_text(raw: str, provenance: Provenance, phrases: PhraseList | None = None) -> FrameText:
    """Step 2 of the module doc for one string (already cut to its bound, or not)."""
    findings: list[TextFinding] = []
    if len(raw) > MAX_CHARS:
        findings.append(
            TextFinding(FindingKind.TRUNCATED, f"kept {MAX_CHARS} of {len(raw)} characters")
        )
        raw = raw[:MAX_CHARS]
    cleaned = clean(raw)
    for kind, points in cleaned.removed:
        findings.append(TextFinding(_REMOVED_KIND[kind], f"removed {', '.join(points)}"))
    if cleaned.nfkc_changed:
        findings.append(TextFinding(FindingKind.NFKC, "compatibility forms folded by NFKC"))
    if words := mixed_script_words(cleaned.text):
        shown = ", ".join(repr(w) for w in words[:4])
        findings.append(TextFinding(FindingKind.MIXED_SCRIPT, f"mixed-script words {shown}"))
    bidi = any(kind is Removed.BIDI for kind, _ in cleaned.removed)
    findings += (phrases or phrase_list()).search(cleaned.text, reversed_too=bidi)
    return FrameText(raw, cleaned.text, skeleton(cleaned.text), tuple(findings), provenance)


def _clamp(v: float, hi: int) -> int:
    return min(max(round(v), 0), hi)


def _box(line: OcrLine, facts: FrameFacts) -> tuple[tuple[int, int, int, int], bool]:
    xs = [p[0] for p in line.box]
    ys = [p[1] for p in line.box]
    raw = (min(xs), min(ys), max(xs), max(ys))
    box = (
        _clamp(raw[0], facts.width),
        _clamp(raw[1], facts.height),
        _clamp(raw[2], facts.width),
        _clamp(raw[3], facts.height),
    )
    return box, any(abs(a - b) > 1 for a, b in zip(box, raw, strict=True))


def _guard_line(line: OcrLine, facts: FrameFacts, phrases: PhraseList) -> FrameText:
    box, clamped = _box(line, facts)
    score = line.score if math.isfinite(line.score) else 0.0
    provenance = Provenance(
        facts.camera, facts.frame_index, box, min(max(score, 0.0), 1.0), facts.source, facts.engine
    )
    text = guard_text(line.text, provenance, phrases)
    if not clamped:
        return text
    found = TextFinding(FindingKind.CLAMPED, "box outside the frame, clamped to it")
    return FrameText(text.text, text.normalised, text.skeleton, (*text.findings, found), provenance)


def guard_frame(
    lines: Sequence[OcrLine], facts: FrameFacts, phrases: PhraseList | None = None
) -> GuardedFrame:
    """Steps 1 to 4 of the module doc."""
    plist = phrases or phrase_list()
    frame_findings: list[TextFinding] = []
    if len(lines) > MAX_LINES:
        frame_findings.append(
            TextFinding(FindingKind.TRUNCATED, f"kept {MAX_LINES} of {len(lines)} strings")
        )
    texts = tuple(_guard_line(line, facts, plist) for line in lines[:MAX_LINES])
    seen = {(f.kind, f.rule) for t in texts for f in t.findings}
    joined = " ".join(t.normalised for t in texts)
    for f in plist.search(joined):
        if (f.kind, f.rule) not in seen:
            frame_findings.append(TextFinding(f.kind, f"{f.detail}, across strings", f.rule))
    marker = DataMarker.fresh([facts.camera, facts.source, *(t.normalised for t in texts)])
    return GuardedFrame(facts, texts, tuple(frame_findings), marker)
