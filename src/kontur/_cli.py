"""What every ``kontur`` sub-command shares: the consoles, the one-line error, ``--json`` out.

Kept apart from :mod:`kontur.cli` so that the sub-command modules (``release/cli.py``,
``eval/cli.py``), which :mod:`kontur.cli` mounts, can use it without a circular import.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

__all__ = ["err", "fail", "out", "write_json"]

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one error line ``kontur: error: …`` on stderr and exit with ``code``."""
    err.print(f"kontur: error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` (``-``: stdout); an unwritable path is a one-line error."""
    text = json.dumps(data, indent=2) + "\n"
    if str(path) == "-":
        sys.stdout.write(text)
        return
    try:
        path.write_text(text)
    except OSError as exc:
        fail(f"--json {path}: expected a writable path, got {exc.strerror}")
