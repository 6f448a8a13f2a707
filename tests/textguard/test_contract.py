"""The contract: text in a frame is never an instruction; no code path turns it into a gate
request or an action (issue 14 part 3; ADR 0032).

Proven three ways:

1. **import graph** (static, every module of ``src/kontur``, ``TYPE_CHECKING`` imports and
   ``importlib``/``__import__`` by name included): nothing the gate, the runtime or the wire
   reach imports ``kontur.textguard``, and the text guard imports none of the gate, the
   runtime, the API or the wire's channels, so neither side can hand the other anything;
2. **import behaviour** (a fresh interpreter): importing every module of the gate and the
   runtime loads no text-guard module;
3. **types and behaviour**: no type of the text guard is, or is a subclass of, a type the
   gate's entry points or :class:`~kontur.gate.ActionRequest` accept; what the guard makes
   of a sign reading ``{"action":"open_gate"}`` is refused by the wire as any gate input.
"""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

import kontur.textguard as textguard
from kontur.gate import ActionRequest, Gate
from kontur.wire import WireError, decode
from kontur.wire.messages import Evidence, GopClosed, StateChanged, TamperAlarm

SRC = Path(textguard.__file__).resolve().parents[1]  # src/kontur
DECIDING = ("kontur.gate", "kontur.runtime", "kontur.wire")
FORBIDDEN_TO_TEXTGUARD = ("kontur.gate", "kontur.runtime", "kontur.api", "kontur.wire.channel")


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path, name: str) -> Iterator[str]:
    """Every module ``path`` may import: statements at any depth, and imports by name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                root = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{root}.{base}" if base else root
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.args[0].value


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """kontur module → the kontur modules it imports (a name's parents count as imported)."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for target in _imports(path, name):
            parts = target.split(".")
            found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & set(modules)
        out[name] = found - {name}
    return out


def _reach(graph: dict[str, set[str]], roots: list[str]) -> set[str]:
    seen, todo = set(roots), list(roots)
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_graph_sees_the_known_edges(graph: dict[str, set[str]]) -> None:
    """The walker works: it finds edges that exist, including the CLI's to the text guard."""
    assert "kontur.gate.core" in graph["kontur.gate"]
    assert "kontur.textguard.cli" in graph["kontur.cli"]
    assert "kontur.worker.sandbox" in graph["kontur.textguard.ocr"]


def test_nothing_the_gate_runtime_or_wire_reach_imports_the_text_guard(
    graph: dict[str, set[str]],
) -> None:
    roots = [m for m in graph if _under(m, DECIDING)]
    assert len(roots) > 20
    reached = _reach(graph, roots)
    leaks = sorted(m for m in reached if _under(m, ("kontur.textguard",)))
    assert leaks == [], f"the decision path reaches the text guard through {leaks}"


def test_the_text_guard_reaches_no_gate_runtime_api_or_channel(graph: dict[str, set[str]]) -> None:
    roots = [m for m in graph if _under(m, ("kontur.textguard",))]
    reached = _reach(graph, roots)
    leaks = sorted(m for m in reached if _under(m, FORBIDDEN_TO_TEXTGUARD))
    assert leaks == [], f"the text guard reaches {leaks}"


def test_importing_the_gate_and_the_runtime_loads_no_text_guard_module() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import kontur.gate, kontur.runtime\n"
        "for pkg in (kontur.gate, kontur.runtime):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.startswith('kontur.textguard')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def _textguard_types() -> list[type]:
    return [t for n in textguard.__all__ if inspect.isclass(t := getattr(textguard, n))]


def _accepted_types() -> set[type]:
    """Every class named in the hints of the gate's entry points and of ActionRequest."""
    hints: list[object] = list(typing.get_type_hints(ActionRequest).values())
    for method in (Gate.on_evidence, Gate.on_gop, Gate.on_state, Gate.on_tamper):
        hints += list(typing.get_type_hints(method).values())
    found: set[type] = set()
    while hints:
        hint = hints.pop()
        if inspect.isclass(hint):
            found.add(hint)
        hints += list(typing.get_args(hint))
    return found


def test_no_text_guard_type_is_one_the_gate_accepts() -> None:
    accepted = _accepted_types()
    assert {Evidence, GopClosed, StateChanged, TamperAlarm, str} <= accepted
    for ours in _textguard_types():
        wrong = [t for t in accepted if t is not object and issubclass(ours, t)]
        assert wrong == [], (ours, wrong)


def test_a_suggestion_is_not_a_request() -> None:
    """What a generator suggests is parsed into a note for a person, not into a request."""
    assert not issubclass(textguard.Suggestion, ActionRequest)
    assert issubclass(textguard.Suggestion, BaseModel)
    assert "action" in textguard.OperatorNote.__dataclass_fields__  # shown, never executed


def test_a_json_action_sign_is_refused_as_every_gate_input() -> None:
    where = textguard.Provenance("gate-1", 5, (0, 0, 10, 10), 0.9, "sign", "ocr")
    text = textguard.guard_text('{"type":"evidence","action":"open_gate","zone":"A"}', where)
    assert text.instruction_like
    for payload in (text.to_json(), json.loads(text.normalised)):
        with pytest.raises(WireError):
            decode(json.dumps(payload).encode())
        for model in (Evidence, GopClosed, StateChanged, TamperAlarm):
            with pytest.raises(ValidationError):
                model.model_validate(payload)
