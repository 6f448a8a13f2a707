"""``kontur archive manifest``, registered on ``archive_app`` (as :mod:`kontur.evidence.cli`).

It lives here, not in ``kontur/archive/cli.py``, because it parses the run manifest and the
archive must not import upward; importing this module registers it (``kontur/cli.py`` does).

``kontur archive manifest DATA_DIR`` prints the latest start's manifest; ``--run N`` the
N-th start's (1 = the first start this archive recorded; ``--all`` every one). Each comes
with its change record (what changed since the start before, what the allow-list did not
approve). It reads the archive read-only and does not re-check it: ``kontur archive verify``
does. Exit codes: 0 printed, 1 a stored manifest does not parse or match its digest, 2 bad
input (no archive, no manifest in it, ``--run`` out of range).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kontur._cli import JsonOut, fail, human, write_json
from kontur.archive.cli import archive_app
from kontur.errors import KonturError

__all__ = ["archive_manifest"]


def _chosen(data_dir: Path, run: int | None, every: bool) -> list[Any]:
    from kontur.archive import Archive
    from kontur.runmanifest import ManifestNotFound, stored_manifests

    if not (data_dir / "archive.sqlite").exists():
        raise ManifestNotFound(f"{data_dir}: expected an archive, got no archive.sqlite")
    with Archive.open_readonly(data_dir) as arc:
        found = stored_manifests(arc)
        size = arc.records
    if not found:
        raise ManifestNotFound(
            f"{data_dir}: expected a run manifest (kontur demo/run archives one at every "
            f"start), got none in {size} record(s)"
        )
    if every:
        return found
    if run is None:
        return [found[-1]]
    if not 1 <= run <= len(found):
        raise ManifestNotFound(f"--run: expected 1..{len(found)}, got {run}")
    return [found[run - 1]]


def _table(stored: Any) -> Table:
    """Component | version, 80 columns wide; the changed components marked."""
    changed = {c["component"]: c for c in (stored.change or {}).get("changes", [])}
    table = Table(
        title=f"run {stored.run}: record {stored.index}, manifest {stored.digest[:16]}…",
        width=80,
    )
    table.add_column("component", no_wrap=True, max_width=34)
    table.add_column("version", overflow="fold")
    for name, version in sorted(stored.manifest.components().items()):
        mark = ""
        if name in changed:
            mark = f"  (was {changed[name]['before'] or 'none'})"
        table.add_row(name, f"{version if version is not None else '-'}{mark}")
    return table


def _print(con: Console, stored: Any) -> None:
    con.print(_table(stored))
    change = stored.change or {}
    previous = change.get("previous")
    if previous is not None:
        n = len(change.get("changes", []))
        con.print(f"{n} component(s) changed since run {previous['run']}", markup=False)
    for line in change.get("unapproved", []):
        con.print(f"UNAPPROVED: {line}", markup=False, highlight=False)


@archive_app.command("manifest")
def archive_manifest(
    data_dir: Annotated[Path, typer.Argument(help="The archive's data dir.")],
    run: Annotated[
        int | None,
        typer.Option("--run", metavar="N", help="The N-th start's manifest (1: the first)."),
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every start's manifest.")] = False,
    json_out: JsonOut = None,
) -> None:
    """Print the run manifest: every component version a start ran with (default: the
    latest)."""
    if run is not None and every:
        fail("expected at most one of --run or --all, got both")
    try:
        chosen = _chosen(data_dir, run, every)
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    con = human(json_out)
    for stored in chosen:
        _print(con, stored)
    if json_out is not None:
        if every:
            write_json(json_out, {"manifests": [s.to_json() for s in chosen]})
        else:
            write_json(json_out, chosen[0].to_json())
