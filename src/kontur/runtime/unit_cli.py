"""``kontur service unit``: write the least-privilege systemd unit for a site (ADR 0036).

The thin shell around :mod:`kontur.runtime.unit`: read and validate the site config (it
decides whether a capability is needed), render the unit, write it (``--out PATH``, or
``-`` for stdout), and measure its exposure with ``systemd-analyze security --offline=yes``
where that tool is installed. ``--json`` reports what the unit grants and the score.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import typer

from kontur._cli import JsonOut, err, fail, human, json_to_stdout, write_json
from kontur.errors import KonturError

__all__ = ["service_app", "unit"]

service_app = typer.Typer(help="Run kontur as a system service.", no_args_is_help=True)


def _measure(text: str) -> tuple[float, str] | None:
    from kontur.runtime.unit import measure_exposure

    with tempfile.TemporaryDirectory(prefix="kontur-unit-") as tmp:
        path = Path(tmp) / "kontur.service"  # systemd-analyze wants the unit's own suffix
        path.write_text(text)
        return measure_exposure(path)


def _write(text: str, out: Path) -> None:
    if str(out) == "-":
        sys.stdout.write(text)
        return
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
    except OSError as exc:
        fail(f"--out {out}: expected a writable path, got {exc.strerror}")


@service_app.command("unit")
def unit(
    site: Annotated[
        Path,
        typer.Option(
            help="The site's YAML config, at the path the service will read it from (read "
            "now: the API's port decides whether a capability is needed)."
        ),
    ],
    data_dir: Annotated[
        Path, typer.Option(help="The data dir: the only path the service may write.")
    ] = Path("/var/lib/kontur"),
    user: Annotated[str, typer.Option(help="The unprivileged account it runs as.")] = "kontur",
    group: Annotated[str | None, typer.Option(help="Its group (default: --user).")] = None,
    kontur: Annotated[Path, typer.Option(help="The kontur executable on the target.")] = Path(
        "/opt/kontur/bin/kontur"
    ),
    release: Annotated[Path | None, typer.Option(help="A signed release dir to run.")] = None,
    pub: Annotated[Path | None, typer.Option(help="The release's public key.")] = None,
    ca: Annotated[Path | None, typer.Option(help="The release signers' CA.")] = None,
    ip_allow: Annotated[
        list[str] | None,
        typer.Option(
            "--ip-allow",
            help="A network the service may talk to besides localhost (repeat); given, "
            "every other address is denied.",
        ),
    ] = None,
    device: Annotated[
        list[Path] | None,
        typer.Option(help="A device node the accelerator worker opens (repeat)."),
    ] = None,
    unsafe_write_execute: Annotated[
        bool,
        typer.Option(
            "--unsafe-write-execute",
            help="Allow writable and executable memory (MemoryDenyWriteExecute=no): OpenVINO "
            "releases need it. Off by default.",
        ),
    ] = False,
    out: Annotated[
        Path, typer.Option(metavar="PATH|-", help="Where to write the unit; '-': stdout.")
    ] = Path("-"),
    json_out: JsonOut = None,
) -> None:
    """Write a hardened systemd unit that runs `kontur run` for this site."""
    from kontur.config import load_config
    from kontur.runtime.unit import EXPOSURE_GOAL, SiteFacts, UnitOptions, render_unit

    if str(out) == "-" and json_to_stdout(json_out):
        fail("--out and --json: expected at most one of them on stdout ('-'), got both")
    if not site.is_file():
        fail(f"--site: expected the site config file (read to derive the unit), got {site}")
    opts_paths = {"site": site, "data_dir": data_dir, "kontur": kontur}
    try:
        facts = SiteFacts.from_config(load_config(site))
        opts = UnitOptions(
            **{k: PurePosixPath(os.path.abspath(v)) for k, v in opts_paths.items()},
            user=user,
            group=group,
            release=PurePosixPath(os.path.abspath(release)) if release else None,
            release_pub=PurePosixPath(os.path.abspath(pub)) if pub else None,
            release_ca=PurePosixPath(os.path.abspath(ca)) if ca else None,
            ip_allow=tuple(ip_allow or ()),
            devices=tuple(PurePosixPath(d) for d in device or ()),
            unsafe_write_execute=unsafe_write_execute,
            generated_from=f"--site {os.path.abspath(site)}",
        )
        if unsafe_write_execute:
            err.print(
                "kontur: warning: --unsafe-write-execute: the unit allows writable and "
                "executable memory (MemoryDenyWriteExecute=no)",
                markup=False,
                highlight=False,
            )
        text = render_unit(opts, facts)
        score = _measure(text)
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    if score is not None and score[0] > EXPOSURE_GOAL:
        fail(f"unit: expected an exposure of {EXPOSURE_GOAL} or lower, measured {score[0]}", 1)
    _write(text, out)
    result = _result(text, out, score, EXPOSURE_GOAL)
    if str(out) != "-":
        shown = "not measured (no systemd-analyze)" if score is None else f"{score[0]} {score[1]}"
        human(json_out).print(f"unit written to {out}; exposure {shown}", highlight=False)
    if json_out is not None:
        write_json(json_out, result)


def _result(text: str, out: Path, score: tuple[float, str] | None, goal: float) -> dict[str, Any]:
    """The ``--json`` facts: where the unit went, what it grants, its measured exposure."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and line[0] not in "#[" and "=" in line:
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    caps = " ".join(settings.get("CapabilityBoundingSet", [""])).split()
    return {
        "unit": str(out),
        "user": settings["User"][0],
        "capabilities": caps,
        "namespaces": " ".join(settings.get("RestrictNamespaces", [])).split(),
        "system_call_filter": settings.get("SystemCallFilter", []),
        "read_write_paths": " ".join(settings.get("ReadWritePaths", [])).split(),
        "memory_deny_write_execute": settings.get("MemoryDenyWriteExecute") == ["yes"],
        "exposure": None if score is None else score[0],
        "exposure_rating": None if score is None else score[1],
        "exposure_goal": goal,
    }
