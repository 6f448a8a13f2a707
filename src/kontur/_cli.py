"""What every ``kontur`` sub-command shares: the consoles, the one-line error, ``--json`` out.

Kept apart from :mod:`kontur.cli` so that the sub-command modules (``release/cli.py``,
``eval/cli.py``), which :mod:`kontur.cli` mounts, can use it without a circular import.

The ``--json`` convention (every command, :data:`JsonOut`): ``--json PATH`` writes the
result as JSON to PATH and the usual human output still shows; ``--json -`` writes it to
stdout, which then carries nothing else (the human output, if any, goes to stderr).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from kontur.redact import redact_url

__all__ = [
    "DataDirOpt",
    "JsonOut",
    "check_writable",
    "err",
    "error_line",
    "expect_json_stdout",
    "fail",
    "human",
    "json_error",
    "json_to_stdout",
    "out",
    "report_error",
    "write_json",
]

out = Console()
err = Console(stderr=True)


#: At most this many characters of an error line (a hostile file's bytes quoted in full
#: would make one line of megabytes).
MAX_ERROR_CHARS = 2000


class _JsonState:
    """Whether this command's ``--json`` is ``-`` and whether its JSON was written yet: an
    error then goes to stdout as JSON too (ADR 0060), unless the result is already there."""

    to_stdout = False
    written = False


def error_line(message: str) -> str:
    """``message`` as the one error line: URL credentials redacted (ADR 0019), whitespace
    folded, at most :data:`MAX_ERROR_CHARS`."""
    line = " ".join(redact_url(message).split())
    if len(line) > MAX_ERROR_CHARS:
        line = f"{line[: MAX_ERROR_CHARS - 30]}… ({len(line)} characters in all)"
    return line


def report_error(message: str, code: int) -> None:
    """Print ``kontur: error: …`` on stderr; with ``--json -``, ``{"error", "exit_code"}``
    on stdout too, so that stdout stays one JSON document whatever happens."""
    line = error_line(message)
    err.print(f"kontur: error: {line}", markup=False, highlight=False, soft_wrap=True)
    json_error(line, code)


def expect_json_stdout(args: list[str]) -> None:
    """Before the command line is parsed (its ``--json`` callback has not run): whether an
    error found now goes to stdout as JSON too."""
    pairs = itertools.pairwise(args)
    _JsonState.to_stdout = "--json=-" in args or any(a == "--json" and b == "-" for a, b in pairs)
    _JsonState.written = False


def json_error(line: str, code: int) -> None:
    """With ``--json -``, ``{"error": line, "exit_code": code}`` on stdout, unless the
    command's own JSON is already there."""
    if _JsonState.to_stdout and not _JsonState.written:
        _JsonState.written = True
        sys.stdout.write(json.dumps({"error": line, "exit_code": code}, indent=2) + "\n")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one error line ``kontur: error: …`` on stderr (see :func:`report_error`) and
    exit with ``code``."""
    report_error(message, code)
    raise typer.Exit(code)


def _json_target(value: Path | None) -> Path | None:
    """``--json``'s value; an option name there means the value was left out. A PATH that
    cannot be written is refused before the command does its work (a signed file written,
    then an exit 2 for the JSON, would read as a failed signing)."""
    _JsonState.to_stdout, _JsonState.written = value is not None and str(value) == "-", False
    if value is None or str(value) == "-":
        return value
    if str(value).startswith("-"):
        fail(f"--json: expected PATH or '-', got the option {str(value)!r}")
    check_writable(value, "--json")
    return value


def check_writable(path: Path, option: str) -> None:
    """A one-line error unless ``path`` (the value of ``option``) is a file that can be
    written: not a directory, in an existing directory, with write permission."""
    if path.is_dir():
        fail(f"{option} {path}: expected a file path, got a directory")
    parent = path.parent
    if not parent.is_dir():
        fail(f"{option} {path}: expected a path in an existing directory, found no {parent}")
    if not os.access(path if path.exists() else parent, os.W_OK):
        fail(f"{option} {path}: expected a writable path, got no write permission")


JsonOut = Annotated[
    Path | None,
    typer.Option(
        "--json",
        metavar="PATH|-",
        callback=_json_target,
        help="Also write the result as JSON to PATH; '-': to stdout, which then holds only "
        "the JSON (the human output goes to stderr).",
    ),
]
"""The ``--json PATH|-`` option every command declares (see the module)."""


DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Data dir (default: $KONTUR_DATA_DIR, else ~/.local/share/kontur)."
    ),
]
"""The ``--data-dir`` option of the commands that work on a site's data dir."""


def json_to_stdout(json_out: Path | None) -> bool:
    """True for ``--json -``: stdout belongs to the JSON."""
    return json_out is not None and str(json_out) == "-"


def human(json_out: Path | None) -> Console:
    """Where the human output goes: stdout, or stderr when ``--json -`` holds stdout."""
    return err if json_to_stdout(json_out) else out


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` (``-``: stdout); an unwritable path is a one-line error."""
    text = json.dumps(data, indent=2) + "\n"
    if str(path) == "-":
        _JsonState.written = True
        sys.stdout.write(text)
        return
    try:
        path.write_text(text)
    except OSError as exc:
        fail(f"--json {path}: expected a writable path, got {exc.strerror}")
