"""Lazy packages (ADR 0063): mounting the command line imports no package whole.

``kontur.cli`` imports every package's ``cli`` module to register its commands, and a
submodule import runs its package's ``__init__``. The packages below export their names on
first use (PEP 562), so ``kontur version`` or a refused argument does not import numpy, the
placement dispatcher, the release's signing code or the text guard's models first.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

LAZY = (
    "kontur.evidence",
    "kontur.placement",
    "kontur.release",
    "kontur.runmanifest",
    "kontur.textguard",
)


@pytest.mark.parametrize("name", LAZY)
def test_every_exported_name_resolves_from_its_submodule(name: str) -> None:
    package = importlib.import_module(name)
    home = package._HOME
    assert sorted(package.__all__) == sorted(home)
    # a name that is also a submodule would be rebound to the module on its first import
    submodules = {p.stem for p in Path(package.__file__).parent.glob("*.py")}
    assert not submodules & set(home), submodules & set(home)
    for export, module in home.items():
        got = getattr(package, export)
        assert got is getattr(importlib.import_module(f"{name}.{module}"), export)
    with pytest.raises(AttributeError, match=rf"module '{name}' has no attribute 'nothing'"):
        package.nothing  # noqa: B018


def test_mounting_the_command_line_imports_none_of_what_only_commands_need() -> None:
    heavy = (
        "numpy",
        "kontur.placement.risk",
        "kontur.runmanifest.collector",
        "kontur.release.signing",
        "kontur.textguard.report",
    )
    code = f"import sys, kontur.cli; print([m for m in {heavy!r} if m in sys.modules])"
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert r.stdout.strip() == "[]", r.stdout
