"""``kontur archive export`` and ``kontur archive verify-export``, registered on ``archive_app``.

They live here, not in ``kontur/archive/cli.py``, because they need ingest (the inventory's
certificates, the Media Signing validator) and the archive must not import upward; importing
this module registers them (``kontur/cli.py`` does).

Exit codes: ``export`` 0 written and logged, 2 bad input, a locked archive or nothing to
export; ``verify-export`` 0 every check passed, 1 the bundle does not check out (each
failure named by its reason code), 2 not a bundle or bad input.
"""

from __future__ import annotations

import getpass
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from kontur._cli import JsonOut, fail, human, write_json
from kontur._private import unsafe_char
from kontur.archive.cli import archive_app
from kontur.errors import KonturError

__all__ = ["archive_export", "archive_verify_export"]

#: The longest ``--by`` an export takes (it is kept in the archive and the bundle).
MAX_BY = 200


def _when(option: str, text: str) -> float:
    from kontur.archive.retention import parse_time

    try:
        return parse_time(text)
    except KonturError as exc:
        fail(f"{option}: {exc}", exc.exit_code)


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


@archive_app.command("export")
def archive_export(
    data_dir: Annotated[Path, typer.Argument(help="The archive's data dir.")],
    camera: Annotated[str, typer.Option("--camera", help="The camera to export.")],
    start: Annotated[
        str,
        typer.Option("--from", help="Start: ISO 8601 with a zone (…T03:00:00Z) or unix seconds."),
    ],
    end: Annotated[str, typer.Option("--to", help="End, inclusive (same forms as --from).")],
    out: Annotated[Path, typer.Option("--out", help="The bundle file to write (a zip).")],
    by: Annotated[
        str | None, typer.Option("--by", help="Who exports; logged (default: the login name).")
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="The archive's checkpoint key (default: DATA_DIR/archive.key)."),
    ] = None,
    json_out: JsonOut = None,
) -> None:
    """Write an evidence bundle of CAMERA's span, verifiable offline; log the export."""
    from kontur.archive import ArchiveLocked
    from kontur.evidence.export import ExportRequest, export_bundle

    t0, t1 = _when("--from", start), _when("--to", end)
    if t0 > t1:
        fail(f"--from/--to: expected from <= to, got {start} after {end}")
    who = by if by is not None else _whoami()
    if not who.strip() or len(who) > MAX_BY or unsafe_char(who) is not None:
        fail(
            f"--by: expected a name of 1 to {MAX_BY} characters without control or format "
            f"characters, got {who[:60]!r}"
        )
    request = ExportRequest(data_dir, camera, t0, t1, out, who, key)
    try:
        result = export_bundle(request, time.time())
    except ArchiveLocked as exc:
        fail(f"{exc} (stop kontur first: the archive has one writer)", exc.exit_code)
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    m = result.manifest
    human(json_out).print(
        f"bundle {out}: camera {m.camera}, GOP(s) {m.gops[0].gop_index}..{m.gops[-1].gop_index}, "
        f"records {m.span.first_index}..{m.span.last_index} proven against the checkpoint of "
        f"{m.checkpoint.size}; sha256 {result.sha256}; logged as record {result.export_record}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if json_out is not None:
        write_json(json_out, result.to_json())


@archive_app.command("verify-export")
def archive_verify_export(
    bundle: Annotated[Path, typer.Argument(help="The bundle file (kontur archive export).")],
    pin_key: Annotated[
        str | None,
        typer.Option("--pin-key", help="The archive's verifier key (name+id+key) to insist on."),
    ] = None,
    json_out: JsonOut = None,
) -> None:
    """Check a bundle offline: Media Signing, proofs, checkpoint, decisions. Exit 0 when OK."""
    from kontur.archive import CheckpointError, VerifierKey
    from kontur.evidence.bundle import verify_file

    try:
        pinned = VerifierKey.parse(pin_key) if pin_key is not None else None
    except CheckpointError as exc:
        fail(f"--pin-key: {exc}")
    if not bundle.exists():
        fail(f"{bundle}: expected a bundle file, found nothing there")
    try:
        report = verify_file(bundle, pinned, datetime.now(UTC))
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    con = human(json_out)
    for f in report.failures:
        con.print(f"FAIL {f.reason.value}: {f.detail}", markup=False, highlight=False)
    for g in report.gops:
        con.print(
            f"GOP {g.gop_index:>5} {g.role:<8} logged {g.logged or '-':<13} "
            f"segments {g.segments or '-':<13} clip {g.clip or '-'}",
            markup=False,
            highlight=False,
        )
    for note in report.notes:
        con.print(f"note: {note}", markup=False, highlight=False)
    verdict = "OK" if report.ok else f"FAILED ({report.reason})"
    proven = (
        "no record proven (the checkpoint is not trusted)"
        if report.checkpoint_size is None
        else f"{report.records} records proven against the checkpoint of "
        f"{report.checkpoint_size} signed by {report.origin}"
        f"{' (pinned key)' if report.key_pinned else ''}"
    )
    con.print(
        f"bundle {bundle}: {verdict}: camera {report.camera}, {proven}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if json_out is not None:
        write_json(json_out, report.to_json())
    raise typer.Exit(0 if report.ok else 1)
