"""The injection phrase list (``data/injection_phrases.json``) and the search for it.

Each entry has an ``id`` (the rule a finding names), a language, a ``kind`` and its text:

- ``phrase``: compared on letters and digits only (:attr:`Keys.letters`), so spacing,
  punctuation, case and homoglyphs do not hide it (``open-gate``, ``O P E N  G A T E``);
- ``token``: a role tag or special token, compared with whitespace removed and punctuation
  kept (``system:``, ``<|im_start|>``);
- ``pattern``: a regular expression over the compact key, quote-like characters made ``"``
  (the JSON action shapes ``{"action": …}``; OCR reads ``{`` as ``(`` often, so the patterns
  accept either).

The plain key is searched first, then the homoglyph skeleton; a match only the skeleton shows
says so. When the string carried a bidi control, its reversal is searched too (an override
shows ``etag eht nepo`` as ``open the gate``). A text that parses as a JSON object is an
action shape whatever its keys.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from kontur.textguard.errors import TextGuardError
from kontur.textguard.findings import FindingKind, TextFinding
from kontur.textguard.normalise import Keys, keys, skeleton

__all__ = ["Phrase", "PhraseList", "phrase_list"]

Kind = Literal["phrase", "token", "pattern"]
_QUOTES = str.maketrans(dict.fromkeys("'`´‘’‚‛“”„‟«»‹›″＂", '"'))
_KINDS = ("phrase", "token", "pattern")


@dataclass(frozen=True)
class Phrase:
    """One entry of the list, with its keys (plain and skeleton) precomputed."""

    id: str
    lang: str
    kind: Kind
    text: str
    plain: str
    folded: str
    regex: re.Pattern[str] | None = None

    @classmethod
    def from_json(cls, obj: Any) -> Phrase:
        """Parse one entry; TextGuardError on a malformed one."""
        if not isinstance(obj, dict) or set(obj) != {"id", "lang", "kind", "text"}:
            raise TextGuardError(f"phrase list: expected id, lang, kind, text, got {obj!r}")
        kind, text = obj["kind"], obj["text"]
        if kind not in _KINDS or not isinstance(text, str) or not text.strip():
            raise TextGuardError(f"phrase list: expected a kind in {_KINDS} and text, got {obj!r}")
        if kind == "pattern":
            return cls(obj["id"], obj["lang"], kind, text, "", "", re.compile(text))
        k = keys(text)
        if kind == "phrase":
            plain, folded = "".join(c for c in k.compact if c.isalnum()), k.letters
        else:
            plain, folded = k.compact, k.skeleton
        return cls(obj["id"], obj["lang"], kind, text, plain, folded)


@dataclass(frozen=True)
class PhraseList:
    """The loaded list; :meth:`search` finds its entries in one cleaned string."""

    phrases: tuple[Phrase, ...]
    version: int

    def search(self, text: str, *, reversed_too: bool = False) -> tuple[TextFinding, ...]:
        """The findings for ``text`` (already cleaned): phrases, tokens, patterns, JSON."""
        found = list(self._search(text))
        if reversed_too:
            seen = {f.rule for f in found}
            found += [
                TextFinding(f.kind, f"{f.detail}, read right to left", f.rule)
                for f in self._search(text[::-1])
                if f.rule not in seen
            ]
        return tuple(found)

    def _search(self, text: str) -> list[TextFinding]:
        k = keys(text)
        letters = "".join(c for c in k.compact if c.isalnum())
        quoted = k.compact.translate(_QUOTES)
        found: list[TextFinding] = []
        seen: set[tuple[str, str]] = set()
        for p in self.phrases:
            detail = _match(p, k, letters, quoted)
            if detail is None or (p.id, p.kind) in seen:
                continue
            seen.add((p.id, p.kind))
            kind = FindingKind.ACTION_SHAPE if p.kind == "pattern" else FindingKind.INJECTION
            found.append(TextFinding(kind, detail, p.id))
        if json_keys := _json_object(text.translate(_QUOTES)):
            found.append(
                TextFinding(
                    FindingKind.ACTION_SHAPE,
                    f"parses as a JSON object with keys {json_keys}",
                    "json",
                )
            )
        return found


def _match(p: Phrase, k: Keys, letters: str, quoted: str) -> str | None:
    if p.regex is not None:
        folded = re.sub('"+', '"', skeleton(quoted).translate(_QUOTES))
        hit = p.regex.search(quoted) or p.regex.search(folded)
        return None if hit is None else f"matches the {p.id} shape {hit.group(0)[:40]!r}"
    plain_in = letters if p.kind == "phrase" else k.compact
    if p.plain and p.plain in plain_in:
        return f"contains {p.text!r} ({p.lang})"
    folded_in = k.letters if p.kind == "phrase" else k.skeleton
    if p.folded and p.folded in folded_in:
        return f"contains {p.text!r} ({p.lang}) after folding homoglyphs"
    return None


def _json_object(text: str) -> list[str] | None:
    start = text.find("{")
    end = text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        obj = json.loads(text[start : end + 1])
    except ValueError:
        return None
    return [str(k)[:32] for k in list(obj)[:8]] if isinstance(obj, dict) else None


def _parse(raw: bytes) -> PhraseList:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise TextGuardError(f"phrase list: expected JSON, got {exc}") from None
    entries = doc.get("entries") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise TextGuardError("phrase list: expected a non-empty 'entries' list, got none")
    return PhraseList(tuple(Phrase.from_json(e) for e in entries), int(doc.get("version", 0)))


@functools.cache
def phrase_list() -> PhraseList:
    """The phrase list shipped in the package (parsed once per process)."""
    raw = (resources.files("kontur.textguard") / "data" / "injection_phrases.json").read_bytes()
    return _parse(raw)
