"""Progress and the closing summary of ``kontur demo`` (rich)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["print_summary", "progress_display"]


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


def print_summary(s: dict[str, Any], console: Console) -> None:
    """The summary table a person reads at the end of a run."""
    det = s["detector"]
    label = " (FALLBACK: built-in HOG, no model given)" if det["fallback"] else ""
    console.print(f"detector: {det['name']} {det['model_id'][:23]}{label}", markup=False)
    t = Table(title="kontur demo: cameras")
    for col in (
        "camera",
        "frames",
        "GOP verdicts",
        "detections",
        "tracks",
        "verifier agree/disagree",
        "ALLOW",
        "RESTRICT",
        "OPERATOR",
        "DENY",
    ):
        t.add_column(col)
    for c in s["cameras"]:
        d = c["decisions"]
        t.add_row(
            c["id"],
            str(c["frames"]),
            ", ".join(f"{k} {v}" for k, v in c["gops"].items()),
            str(c["detections"]),
            str(c["tracks"]),
            f"{c['verifier']['agree']}/{c['verifier']['disagree']}",
            str(d["ALLOW"]),
            str(d["RESTRICT"]),
            str(d["OPERATOR"]),
            str(d["DENY"]),
        )
    console.print(t)
    p = Table(title="placement")
    for col in ("task", "platform", "risk R", "admissible", "reason"):
        p.add_column(col)
    for pl in s["placement"]:
        p.add_row(
            pl["task"],
            pl["platform"],
            ", ".join(f"{k} {v:.3f}" for k, v in pl["risk"].items()),
            ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in pl["admissible"].items()),
            pl["reason"],
        )
    console.print(p)
    deg = s["degradation"]
    console.print(
        f"degradation: final state {deg['state']}, {len(deg['transitions'])} transition(s)"
    )
    for tr in deg["transitions"]:
        console.print(f"  {tr['from']} → {tr['to']}  ({tr['trigger']})", markup=False)
    procs = ", ".join(f"{p['name']}[{p['pid']}]" for p in s["processes"])
    console.print(f"processes: {procs}", markup=False)
    a = s["archive"]
    console.print(
        f"archive: {a['records']} records, head {a['head'][:16]}…  at {a['path']}", markup=False
    )
    console.print(f"throughput: {s['fps']} fps over {s['elapsed_s']} s", markup=False)
    for n in s.get("notes", []):
        console.print(f"note: {n}", markup=False)
