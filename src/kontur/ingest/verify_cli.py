"""``kontur verify``: check a signed recording GOP by GOP, offline.

The same trust shell as the running perimeter (:class:`~kontur.ingest.trust.CameraTrust`)
over the same demuxer (:func:`~kontur.ingest.source.read_gops`, packets only: nothing is
decoded). Two ways to say whom to trust:

- ``--ca CA.pem``: the signing key must chain to one of these certificates at capture time;
- ``--camera ID``: the camera's inventory entry in ``--data-dir`` (site CA, enrolled key,
  revocation). A recording is checked for replays *within itself* (counters, GOP hashes) on
  a scratch state, never against or into the live replay state, and its capture times are
  not held to the live freshness window (it is a recording), only refused in the future.

Exit codes: 0 only when every GOP is AUTHENTIC; 1 otherwise; 2 on a usage error or input
that is not a video.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from kontur._cli import err, fail, out, write_json
from kontur.errors import KonturError

__all__ = ["verify"]

#: A recording may be old: only its claims about the future are held to the trusted clock.
RECORDING_MAX_AGE_S = 100 * 365 * 86400.0


def _anchors(paths: list[Path]) -> list[Any]:
    from cryptography import x509

    anchors: list[Any] = []
    for p in paths:
        try:
            data = p.read_bytes()
        except OSError as exc:
            fail(f"--ca {p}: expected a readable PEM file, got {exc.strerror or exc}")
        try:
            anchors += x509.load_pem_x509_certificates(data)
        except ValueError:
            fail(f"--ca {p}: expected PEM certificates, got data that does not parse")
    return anchors


def _check(source: Path, camera_id: str, guard: Any, anchors: list[Any]) -> list[dict[str, Any]]:
    from kontur.ingest.recording import check_recording

    return [g.row() for g in check_recording(source, camera_id, guard=guard, anchors=anchors)]


def _guard(data_dir: Path, camera_id: str, scratch: Path) -> Any:
    from kontur.clock import SystemClock
    from kontur.ingest.freshness import FreshnessPolicy
    from kontur.ingest.inventory import FreshnessGuard, FreshnessStore, Inventory

    inv = Inventory.open(data_dir, SystemClock())
    if inv.camera(camera_id) is None:
        fail(f"--camera {camera_id}: expected a camera enrolled in {data_dir}, found none")
    policy = FreshnessPolicy(max_delay_s=RECORDING_MAX_AGE_S)
    return FreshnessGuard(inv, FreshnessStore.open(scratch), policy, SystemClock())


def verify(
    source: Annotated[Path, typer.Argument(metavar="INPUT", help="Signed H.264/H.265 video.")],
    ca: Annotated[
        list[Path] | None, typer.Option(help="Trust anchor(s), PEM (repeatable).")
    ] = None,
    camera: Annotated[
        str | None, typer.Option(help="An enrolled camera id (uses the inventory).")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Data dir of the inventory (default: $KONTUR_DATA_DIR, else ~/.local…)."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the report as JSON here ('-': stdout).")
    ] = None,
) -> None:
    """Verify a Media-Signed recording GOP by GOP. Exit 0 only when every GOP is AUTHENTIC."""
    from kontur.ingest.inventory import default_data_dir

    if (ca is None) == (camera is None):
        fail("expected exactly one of --ca CA.pem or --camera ID")
    if source.is_dir():
        fail(f"{source}: expected a video file, got a directory")
    if not source.is_file():
        fail(f"{source}: expected a video file, found nothing there")
    quiet = json_out is not None and str(json_out) == "-"
    console = err if quiet else out
    try:
        with tempfile.TemporaryDirectory(prefix="kontur-verify-") as scratch:
            if camera is not None:
                guard = _guard(data_dir or default_data_dir(), camera, Path(scratch))
                rows = _check(source, camera, guard, [])
            else:
                rows = _check(source, "recording", None, _anchors(ca or []))
    except KonturError as exc:
        fail(str(exc), 2)
    summary = Counter(r["verdict"] for r in rows)
    authentic = bool(rows) and all(r["verdict"] == "AUTHENTIC" for r in rows)
    for r in rows:
        console.print(
            f"GOP {r['index']:>4}  {r['verdict']:<15} counter {r['counter']}  {r['reason']}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    parts = ", ".join(f"{k} {n}" for k, n in sorted(summary.items())) or "no GOP"
    console.print(
        f"{source}: {len(rows)} GOP(s): {parts} — {'AUTHENTIC' if authentic else 'NOT AUTHENTIC'}",
        markup=False,
        highlight=False,
    )
    if json_out is not None:
        write_json(
            json_out,
            {"gops": rows, "summary": dict(summary), "authentic": authentic},
        )
    if not authentic:
        raise typer.Exit(1)
