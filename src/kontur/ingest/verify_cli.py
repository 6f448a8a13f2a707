"""``kontur verify``: check a signed recording GOP by GOP, offline.

The same trust shell as the running perimeter (:class:`~kontur.ingest.trust.CameraTrust`)
over the same demuxer (:func:`~kontur.ingest.source.read_gops`, packets only: nothing is
decoded). Two ways to say whom to trust:

- ``--ca CA.pem``: the signing key must chain to one of these certificates at capture time;
- ``--camera ID``: the camera's inventory entry in ``--data-dir`` (site CA, enrolled key,
  revocation), and the revocations the data dir's archive records: the archive is the
  authority, so a camera it shows revoked is REVOKED even if ``inventory.sqlite`` was edited
  to forget it, and the disagreement is reported (ADR 0021). A recording is checked for
  replays *within itself* (counters, GOP hashes) on a scratch state, never against or into
  the live replay state, and its capture times are not held to the live freshness window
  (it is a recording), only refused in the future.

Either way each GOP's frame times (the container's presentation times, which the perimeter's
decisions would run on) are checked against its signed capture times (ADR 0018): a retimed
container is RETIMED, named per GOP and under ``time`` in the JSON report; a GOP without a
verified signature is reported unchecked, never flagged.

Exit codes: 0 only when every GOP is AUTHENTIC; 1 otherwise; 2 on a usage error or input
that is not a video.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from kontur._cli import JsonOut, fail, human, write_json
from kontur.errors import KonturError

__all__ = ["verify"]

#: A recording may be old: only its claims about the future are held to the trusted clock.
RECORDING_MAX_AGE_S = 100 * 365 * 86400.0

TimeTolerance = Annotated[
    float,
    typer.Option(
        "--time-tolerance",
        min=0.001,
        max=10.0,
        help="Seconds the container's frame times may stray from the signed capture times.",
    ),
]


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


def _check(
    source: Path, camera_id: str, guard: Any, anchors: list[Any], tolerance_s: float
) -> list[dict[str, Any]]:
    from kontur.ingest.recording import check_recording
    from kontur.ingest.signedtime import TimeCheckPolicy

    policy = TimeCheckPolicy(tolerance_s=tolerance_s)
    rows = check_recording(source, camera_id, guard=guard, anchors=anchors, time_policy=policy)
    return [g.row() for g in rows]


def _times(rows: list[dict[str, Any]], tolerance_s: float) -> dict[str, Any]:
    """The report's ``time`` part (ADR 0018): GOPs whose container was retimed, and those
    that could not be checked (no verified signature)."""

    def having(status: str) -> list[int]:
        return [r["index"] for r in rows if (r["time"] or {}).get("status") == status]

    return {
        "tolerance_s": tolerance_s,
        "retimed": having("retimed"),
        "unchecked": having("unchecked"),
    }


def _headline(source: Path, summary: Counter[str], times: dict[str, Any], authentic: bool) -> str:
    """The summary line: verdict counts, retimed GOPs, and whether the whole file passed."""
    parts = ", ".join(f"{k} {n}" for k, n in sorted(summary.items())) or "no GOP"
    if times["retimed"]:
        parts += f"; container retimed at GOP(s) {', '.join(map(str, times['retimed']))}"
    total = sum(summary.values())
    return f"{source}: {total} GOP(s): {parts} — {'AUTHENTIC' if authentic else 'NOT AUTHENTIC'}"


def _archived_revocations(data_dir: Path) -> tuple[Any, str | None]:
    """The revocations the data dir's archive records, and the archive read (None if none).

    The archive, not ``inventory.sqlite``, is the authority on revocation (ADR 0021).
    """
    from kontur.archive import Archive, ArchiveNotFound
    from kontur.ingest.revocation import Revocations, scan

    try:
        archive = Archive.open_readonly(data_dir)
    except ArchiveNotFound:
        return Revocations(), None
    with archive:
        return scan(archive.iter_records(kind="camera")), str(data_dir / "archive.sqlite")


def _guard(data_dir: Path, camera_id: str, scratch: Path) -> tuple[Any, dict[str, Any]]:
    """The trust shell's freshness guard for ``camera_id``, and the report's ``revocation``."""
    from kontur.clock import SystemClock
    from kontur.ingest.freshness import FreshnessPolicy
    from kontur.ingest.inventory import FreshnessGuard, FreshnessStore, Inventory

    inv = Inventory.open(data_dir, SystemClock())
    revocations, archive = _archived_revocations(data_dir)
    camera = inv.camera(camera_id)
    if camera is None and revocations.find(camera_id) is None:
        fail(f"--camera {camera_id}: expected a camera enrolled in {data_dir}, found none")
    tampered = [r.describe() for _, r in revocations.disagreements({camera_id: camera})]
    policy = FreshnessPolicy(max_delay_s=RECORDING_MAX_AGE_S)
    guard = FreshnessGuard(inv, FreshnessStore.open(scratch), policy, SystemClock(), revocations)
    return guard, {"archive": archive, "inventory_tampered": tampered}


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
    json_out: JsonOut = None,
    time_tolerance: TimeTolerance = 0.1,
) -> None:
    """Verify a Media-Signed recording GOP by GOP. Exit 0 only when every GOP is AUTHENTIC."""
    from kontur.ingest.inventory import default_data_dir

    if (ca is None) == (camera is None):
        fail("expected exactly one of --ca CA.pem or --camera ID")
    if source.is_dir():
        fail(f"{source}: expected a video file, got a directory")
    if not source.is_file():
        fail(f"{source}: expected a video file, found nothing there")
    console = human(json_out)
    revocation: dict[str, Any] | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="kontur-verify-") as scratch:
            if camera is not None:
                guard, revocation = _guard(data_dir or default_data_dir(), camera, Path(scratch))
                rows = _check(source, camera, guard, [], time_tolerance)
            else:
                rows = _check(source, "recording", None, _anchors(ca or []), time_tolerance)
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
    times = _times(rows, time_tolerance)
    for line in (revocation or {}).get("inventory_tampered", []):
        console.print(
            f"inventory tampered: {line}, not in the inventory",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    console.print(_headline(source, summary, times, authentic), markup=False, highlight=False)
    if json_out is not None:
        doc = {"gops": rows, "summary": dict(summary), "authentic": authentic, "time": times}
        write_json(json_out, doc if revocation is None else {**doc, "revocation": revocation})
    if not authentic:
        raise typer.Exit(1)
