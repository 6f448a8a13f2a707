"""Incident reports written from structured data, and the generator plug-in contract.

:func:`write_report` fills a fixed template (``data/incident_report.md.tmpl``,
:class:`string.Template`): no network, no tools, no model. Every value is escaped for
Markdown; frame text goes in as a datamarked field (:meth:`FrameText.datamarked`) in an
indented code block, so neither Markdown nor the text's own content can change the report's
shape.

An optional :class:`ReportGenerator` may add a summary. Its contract (ADR 0032):

1. it is handed only datamarked fields (:meth:`IncidentFacts.datamarked_fields`): every
   value, structured facts included, inside the report's data markers;
2. its output must be JSON matching :data:`GENERATOR_SCHEMA` (checked with ``jsonschema``
   when installed, and always parsed into the frozen :class:`GeneratorOutput`); anything
   else is refused (:class:`~kontur.textguard.errors.PluginRefused`), and the report says so;
3. an action it suggests becomes an :class:`OperatorNote` on the report, for a person to
   weigh. The report has no path to the gate; nothing here builds a request.

The generator saw the report's boundary, so its summary is marked with a boundary drawn
after it answered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kontur.textguard.errors import PluginRefused
from kontur.textguard.field import DataMarker, FrameText
from kontur.textguard.normalise import clean

__all__ = [
    "GENERATOR_SCHEMA",
    "MAX_GENERATOR_BYTES",
    "GeneratorOutput",
    "IncidentFacts",
    "IncidentReport",
    "OperatorFact",
    "OperatorNote",
    "ReportGenerator",
    "Suggestion",
    "VerdictFact",
    "parse_generator_output",
    "write_report",
]

MAX_GENERATOR_BYTES = 64 * 1024
_MD_SPECIAL = "\\`*_{}[]()<>#+-.!|~"


def md(value: object) -> str:
    """``value`` as one line of Markdown text: cleaned, every special character escaped."""
    text = clean(str(value)).text
    return "".join(f"\\{c}" if c in _MD_SPECIAL else c for c in text) or "—"


@dataclass(frozen=True)
class VerdictFact:
    """One GOP's verdict from the archive."""

    gop: int
    verdict: str
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class OperatorFact:
    """What an operator answered on the decision's request."""

    outcome: str
    operator: str
    reason: str = ""
    at: str = ""


@dataclass(frozen=True)
class IncidentFacts:
    """The structured facts a report is written from (the archive's records)."""

    title: str
    camera: str
    rule: str
    action: str
    outcome: str
    executed: str
    at: str
    reasons: tuple[str, ...] = ()
    verdicts: tuple[VerdictFact, ...] = ()
    operator: tuple[OperatorFact, ...] = ()
    frame_texts: tuple[FrameText, ...] = ()

    def texts(self) -> list[str]:
        """Every string the report will hold (a marker's boundary must be in none)."""
        out = [self.title, self.camera, self.rule, self.action, self.outcome, self.executed]
        out += [self.at, *self.reasons, *(t.normalised for t in self.frame_texts)]
        out += [r for v in self.verdicts for r in (v.verdict, *v.reasons)]
        out += [s for o in self.operator for s in (o.outcome, o.operator, o.reason, o.at)]
        return out

    def datamarked_fields(self, marker: DataMarker) -> dict[str, str]:
        """Every fact as a datamarked string: all a generator plug-in is given."""
        plain: dict[str, object] = {
            "title": self.title,
            "camera": self.camera,
            "rule": self.rule,
            "action": self.action,
            "outcome": self.outcome,
            "executed": self.executed,
            "at": self.at,
        }
        plain |= {f"reason.{i}": r for i, r in enumerate(self.reasons)}
        plain |= {f"verdict.{v.gop}": f"{v.verdict} {'; '.join(v.reasons)}" for v in self.verdicts}
        plain |= {
            f"operator.{i}": f"{o.outcome} by {o.operator}: {o.reason}"
            for i, o in enumerate(self.operator)
        }
        fields = {k: marker.wrap(k.split(".")[0], clean(str(v)).text) for k, v in plain.items()}
        fields |= {f"frame_text.{i}": t.datamarked(marker) for i, t in enumerate(self.frame_texts)}
        return fields


class Suggestion(BaseModel):
    """An action a generator suggests: for the operator to weigh, never for the gate."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    action: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    reason: str = Field(max_length=500)


class GeneratorOutput(BaseModel):
    """What a generator may answer; :data:`GENERATOR_SCHEMA` is this model's JSON schema."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    summary: str = Field(min_length=1, max_length=2000)
    suggested_actions: tuple[Suggestion, ...] = Field(default=(), max_length=5)


#: The JSON schema a generator's output must match (published for plug-in authors).
GENERATOR_SCHEMA: Mapping[str, Any] = GeneratorOutput.model_json_schema()


class ReportGenerator(Protocol):
    """An optional plug-in that writes a summary from datamarked fields only."""

    name: str

    def generate(self, fields: Mapping[str, str]) -> str | bytes:
        """JSON matching :data:`GENERATOR_SCHEMA`, from ``fields`` (each datamarked)."""
        ...


@dataclass(frozen=True)
class OperatorNote:
    """A generator's suggested action, shown to the operator; kontur took no action on it."""

    source: str
    action: str
    reason: str


@dataclass(frozen=True)
class IncidentReport:
    """The report's text, its notes for the operator, and what became of a generator."""

    text: str
    marker: DataMarker
    notes: tuple[OperatorNote, ...] = ()
    generator: str = ""
    refused: str = ""

    def to_json(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "text": self.text,
            "boundary": self.marker.boundary,
            "generator": self.generator or None,
            "generator_refused": self.refused or None,
            "operator_notes": [
                {"source": n.source, "action": n.action, "reason": n.reason} for n in self.notes
            ],
        }


def _schema_errors(obj: object) -> str | None:
    try:
        import jsonschema
    except ImportError:  # pydantic below enforces the same model
        return None
    err = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(GENERATOR_SCHEMA).iter_errors(obj)
    )
    if err is None:
        return None
    where = "/".join(str(p) for p in err.absolute_path) or "(root)"
    return f"{where}: {err.message}"


def parse_generator_output(raw: str | bytes, name: str = "generator") -> GeneratorOutput:
    """The generator's answer, parsed; PluginRefused (one line) unless it matches the schema."""
    data = raw.encode() if isinstance(raw, str) else raw
    if not isinstance(data, bytes) or len(data) > MAX_GENERATOR_BYTES:
        size = len(data) if isinstance(data, bytes) else type(raw).__name__
        raise PluginRefused(f"{name}: expected JSON <= {MAX_GENERATOR_BYTES} bytes, got {size}")
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise PluginRefused(f"{name}: expected JSON matching the schema, got {exc}") from None
    if (why := _schema_errors(obj)) is not None:
        raise PluginRefused(f"{name}: expected output matching the schema, got {why}")
    try:
        return GeneratorOutput.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "/".join(str(p) for p in first["loc"]) or "(root)"
        raise PluginRefused(
            f"{name}: expected output matching the schema, got {where}: {first['msg']}"
        ) from None


def _run_generator(
    generator: ReportGenerator, facts: IncidentFacts, marker: DataMarker
) -> tuple[GeneratorOutput | None, str]:
    name = clean(str(getattr(generator, "name", "generator"))).text[:64] or "generator"
    try:
        raw = generator.generate(facts.datamarked_fields(marker))
        return parse_generator_output(raw, name), ""
    except PluginRefused as exc:
        return None, str(exc)
    except Exception as exc:  # a plug-in's failure is a refusal, never the report's
        return None, f"{name}: expected JSON output, got {type(exc).__name__}: {exc}"[:500]


def _block(lines: list[str]) -> str:
    return "\n".join(lines) if lines else "none"


def _code(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def _sections(facts: IncidentFacts, marker: DataMarker) -> dict[str, str]:
    texts = [_code(t.datamarked(marker)) for t in facts.frame_texts]
    verdicts = [
        f"- GOP {v.gop}: {md(v.verdict)}" + (f" ({md('; '.join(v.reasons))})" if v.reasons else "")
        for v in facts.verdicts
    ]
    operator = [
        f"- {md(o.outcome)} by {md(o.operator)}"
        + (f": {md(o.reason)}" if o.reason else "")
        + (f" ({md(o.at)})" if o.at else "")
        for o in facts.operator
    ]
    return {
        "reasons": _block([f"- {md(r)}" for r in facts.reasons]),
        "verdicts": _block(verdicts),
        "operator": _block(operator) if operator else "no operator answer archived",
        "frame_text": "\n\n".join(texts) if texts else "none read",
    }


def _generated(
    out: GeneratorOutput | None, refused: str, facts: IncidentFacts, marker: DataMarker, name: str
) -> tuple[str, DataMarker, tuple[OperatorNote, ...]]:
    avoid = [*facts.texts(), marker.boundary]
    if out is None:
        text = f"refused: {md(refused)}" if refused else "none (no generator)"
        return text, DataMarker.fresh(avoid), ()
    summary = clean(out.summary).text
    reasons = [clean(s.reason).text for s in out.suggested_actions]
    gen = DataMarker.fresh([*avoid, summary, *reasons])
    notes = tuple(
        OperatorNote(name, s.action, r) for s, r in zip(out.suggested_actions, reasons, strict=True)
    )
    return _code(gen.wrap("generated-summary", summary, {"by": name})), gen, notes


def write_report(facts: IncidentFacts, generator: ReportGenerator | None = None) -> IncidentReport:
    """The incident report of ``facts`` (with ``generator``'s summary, if it complies)."""
    marker = DataMarker.fresh(facts.texts())
    name, out, refused = "", None, ""
    if generator is not None:
        name = clean(str(getattr(generator, "name", "generator"))).text[:64] or "generator"
        out, refused = _run_generator(generator, facts, marker)
    generated, gen_marker, notes = _generated(out, refused, facts, marker, name)
    note_lines = [
        f"{md(n.source)} suggests `{n.action}` for you to consider; kontur took no action. "
        f"Its reason, as data:\n\n{_code(gen_marker.wrap('suggestion-reason', n.reason))}\n"
        for n in notes
    ]
    template = Template(
        (resources.files("kontur.textguard") / "data" / "incident_report.md.tmpl").read_text()
    )
    text = template.substitute(
        title=md(facts.title), camera=md(facts.camera), rule=md(facts.rule),
        action=md(facts.action), outcome=md(facts.outcome), executed=md(facts.executed),
        at=md(facts.at), boundary=marker.boundary, generated_boundary=gen_marker.boundary,
        generated=generated, notes=_block(note_lines), **_sections(facts, marker),
    )  # fmt: skip
    return IncidentReport(text, marker, notes, name, refused)
