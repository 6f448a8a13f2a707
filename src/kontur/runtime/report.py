"""Progress and the closing summary of ``kontur demo`` (rich)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.padding import Padding
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["NARROW_BELOW", "print_summary", "progress_display"]


@contextmanager
def progress_display(console: Console) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A live line: frames through the perimeter and the degradation state."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting the perimeter…")
        seen: dict[str, Any] = {"frames": 0, "state": "NORMAL"}

        def update(event: dict[str, Any]) -> None:
            seen.update(event)
            if "trigger" in event:
                console.print(
                    f"degradation: → {event['state']} ({event['trigger']})",
                    markup=False,
                    highlight=False,
                )
            progress.update(task, description=f"frames {seen['frames']}  state {seen['state']}")

        yield update


#: Below this many columns (and whenever a table would have to squeeze a cell) the tables
#: give way to one ``key  value`` block per camera and per placement: a ten-column table
#: squeezed into 80 columns cut its headers ("veri…", "OPER…").
NARROW_BELOW = 100

_DECISIONS = ("ALLOW", "RESTRICT", "OPERATOR", "DENY")


def _camera_rows(c: dict[str, Any]) -> list[tuple[str, str]]:
    d = c["decisions"]
    rows = [
        ("frames", str(c["frames"])),
        ("GOP verdicts", ", ".join(f"{k} {v}" for k, v in c["gops"].items()) or "none"),
        ("detections", str(c["detections"])),
        ("tracks", str(c["tracks"])),
        ("verifier agree/disagree", f"{c['verifier']['agree']}/{c['verifier']['disagree']}"),
        *((k, str(d[k])) for k in _DECISIONS),
    ]
    if "state" in c:  # ADR 0040: the camera's effective state at the end
        rows.append(("state", str(c["state"])))
    if c.get("tamper"):  # ADR 0030: each tamper or low-quality event, open or ended
        rows.append(("tamper", ", ".join(_tamper_event(e) for e in c["tamper"])))
    if c.get("error"):
        rows.append(("error", str(c["error"])))
    return rows


def _tamper_event(e: dict[str, Any]) -> str:
    end = "open" if e["end_s"] is None else f"{e['end_s']:.1f} s"
    return f"{e['kind']} {e['start_s']:.1f} s to {end} (score {e['score']:.2f})"


def _placement_rows(pl: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("platform", pl["platform"]),
        ("risk R", ", ".join(f"{k} {v:.3f}" for k, v in pl["risk"].items())),
        (
            "admissible",
            ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in pl["admissible"].items()),
        ),
        ("reason", pl["reason"]),
    ]


def _table(title: str, first: str, items: list[tuple[str, list[tuple[str, str]]]]) -> Table:
    """One row per item; cells wrap at spaces and fold, never end in an ellipsis."""
    t = Table(title=title)
    keys = list(dict.fromkeys(k for _, rows in items for k, _ in rows))  # e.g. "error": some
    for col in (first, *keys):
        t.add_column(col, overflow="fold")
    for name, rows in items:
        cells = dict(rows)
        t.add_row(name, *(cells.get(k, "") for k in keys))
    return t


def _print_block(console: Console, title: str, rows: list[tuple[str, str]]) -> None:
    """A title, then one ``key  value`` line per row: a table as a narrow console shows it."""
    console.print(title, markup=False, highlight=False)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(overflow="fold")
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(key, value)
    console.print(Padding(grid, (0, 0, 0, 2), expand=False))


def _fits(console: Console, table: Table) -> bool:
    """The console is not narrow and the table fits without wrapping a cell.

    Rich narrows a table that is too wide by folding its widest columns, mid-word.
    """
    if console.width < NARROW_BELOW:
        return False
    unbounded = console.options.update_width(1 << 16)  # a measure is capped at the width
    return Measurement.get(console, unbounded, table).maximum <= console.width


def print_summary(s: dict[str, Any], console: Console) -> None:
    """The summary a person reads at the end of a run: tables, or blocks when narrow."""
    det = s["detector"]
    label = " (FALLBACK: built-in HOG, no model given)" if det["fallback"] else ""
    console.print(f"detector: {det['name']} {det['model_id'][:23]}{label}", markup=False)
    cams = [(c["id"], _camera_rows(c)) for c in s["cameras"]]
    places = [(p["task"], _placement_rows(p)) for p in s["placement"]]
    for title, first, block, items in (
        ("kontur demo: cameras", "camera", "camera", cams),
        ("placement", "task", "placement", places),
    ):
        table = _table(title, first, items)
        if _fits(console, table):
            console.print(table)
            continue
        for name, rows in items:
            _print_block(console, f"{block} {name}", rows)
    _print_tail(s, console)


def _print_tail(s: dict[str, Any], console: Console) -> None:
    deg = s["degradation"]
    console.print(
        f"degradation: final state {deg['state']}, {len(deg['transitions'])} transition(s)"
    )
    for tr in deg["transitions"]:
        on = f" on {tr['camera']}" if tr.get("camera") else ""  # a camera's own (ADR 0040)
        console.print(f"  {tr['from']} → {tr['to']}  ({tr['trigger']}{on})", markup=False)
    procs = ", ".join(f"{p['name']}[{p['pid']}]" for p in s["processes"])
    console.print(f"processes: {procs}", markup=False)
    a = s["archive"]
    console.print(f"archive: {a['records']} records at {a['path']}", markup=False)
    console.print(f"archive head: {a['head']}", markup=False, highlight=False)
    console.print(f"throughput: {s['fps']} fps over {s['elapsed_s']} s", markup=False)
    for n in s.get("notes", []):
        console.print(f"note: {n}", markup=False)
