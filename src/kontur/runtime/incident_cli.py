"""``kontur incident …``: one command per incident playbook, each archived (ADR 0029).

Mounted by :mod:`kontur.cli` as ``app.add_typer(incident_app, name="incident")``:

- ``revoke-camera ID --reason TEXT``: revoke the camera, refuse its next GOP, hold what it
  sent last (``--preserve-s``, 600 s);
- ``failover-cpu --reason TEXT``: move the analytics worker to the CPU now, for the run;
- ``preserve --camera C --from T1 --to T2 --reason TEXT``: a legal hold plus an evidence
  bundle (``DATA_DIR/exports/<id>.zip``);
- ``verify-archive``: a full verification with the witness; the report in
  ``DATA_DIR/run/verify-<id>.json``.

Two ways, one desk (:mod:`kontur.runtime.incidents`). When ``kontur run`` holds the archive
(its writer lock), the command drops its request in ``DATA_DIR/run/incidents``
(:mod:`kontur.incident.spool`), waits up to ``--wait-s`` for the outcome in the run state,
then reads the closing ``incident`` record from the archive; a request not taken by then is
withdrawn. When no site runs, the command runs the same desk on the archive as its own writer
(there is then no worker to move: ``failover-cpu`` fails). ``verify-archive`` also works on an
archive that cannot be opened for writing (read-only, not archived). ``by`` is
``cli:<login name>``. Each prints what it did; ``--json`` gives the same facts (the closing
record's payload). Exit codes: 0 done, 1 failed, 2 bad input.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from kontur._cli import DataDirOpt, JsonOut, fail, human, write_json
from kontur.errors import KonturError

if TYPE_CHECKING:  # the commands import what they use: `kontur --help` stays fast
    from rich.console import Console

    from kontur.archive import Archive, Record, Signing
    from kontur.wire.messages import IncidentRequest

__all__ = ["incident_app"]

incident_app = typer.Typer(
    help="One-command incident playbooks (revoke a camera, move to the CPU, preserve, "
    "verify), each archived.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Kind = Literal["revoke_camera", "failover_cpu", "preserve", "verify_archive"]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (archived).")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="The site's YAML config: its archive key and witness (default: the embedded "
        "defaults). Used when no site runs; a running site uses its own.",
    ),
]
WaitOpt = Annotated[
    float,
    typer.Option("--wait-s", min=0.1, help="How long to wait for a running site's answer."),
]
_POLL_S = 0.2
_OPTION = {
    "camera": "--camera",
    "reason": "--reason",
    "from_at": "--from",
    "to_at": "--to",
    "preserve_s": "--preserve-s",
}


# ---- the commands ---------------------------------------------------------------------------
@incident_app.command("revoke-camera")
def revoke_camera(
    camera_id: Annotated[str, typer.Argument(metavar="ID", help="The camera to revoke.")],
    reason: ReasonOpt = None,
    preserve_s: Annotated[
        float, typer.Option("--preserve-s", help="Hold the camera's last this many seconds.")
    ] = 600.0,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    wait_s: WaitOpt = 60.0,
    json_out: JsonOut = None,
) -> None:
    """Revoke camera ID now (its next GOP is REVOKED) and hold what it sent last."""
    req = _request("revoke_camera", camera=camera_id, reason=_why(reason), preserve_s=preserve_s)
    _play(req, data_dir, config, wait_s, json_out)


@incident_app.command("failover-cpu")
def failover_cpu(
    reason: ReasonOpt = None,
    data_dir: DataDirOpt = None,
    wait_s: WaitOpt = 60.0,
    json_out: JsonOut = None,
) -> None:
    """Move the running site's analytics worker to the CPU now, for the rest of the run."""
    _play(_request("failover_cpu", reason=_why(reason)), data_dir, None, wait_s, json_out)


@incident_app.command("preserve")
def preserve(
    camera: Annotated[str, typer.Option("--camera", help="The camera whose span to keep.")],
    start: Annotated[
        str,
        typer.Option("--from", help="Start: ISO 8601 with a zone (…T03:00:00Z) or unix seconds."),
    ],
    end: Annotated[str, typer.Option("--to", help="End, inclusive (same forms as --from).")],
    reason: ReasonOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    wait_s: WaitOpt = 60.0,
    json_out: JsonOut = None,
) -> None:
    """A legal hold of CAMERA's span plus an evidence bundle (at most an hour)."""
    t0, t1 = _when("--from", start), _when("--to", end)
    req = _request("preserve", camera=camera, from_at=t0, to_at=t1, reason=_why(reason))
    _play(req, data_dir, config, wait_s, json_out)


@incident_app.command("verify-archive")
def verify_archive(
    witness: Annotated[
        Path | None,
        typer.Option(help="The witness file to check against (default: archive.witness)."),
    ] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    wait_s: WaitOpt = 600.0,
    json_out: JsonOut = None,
) -> None:
    """Verify every record, checkpoint, segment and the witness (exit 1 if broken)."""
    _play(_request("verify_archive"), data_dir, config, wait_s, json_out, witness)


# ---- the request ----------------------------------------------------------------------------
def _why(reason: str | None) -> str:
    if reason is None or not reason.strip():
        fail("--reason: expected why (it is archived), got none")
    return reason


def _when(option: str, text: str) -> float:
    from kontur.archive.retention import parse_time

    try:
        return parse_time(text)
    except KonturError as exc:
        fail(f"{option}: {exc}", exc.exit_code)


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:128]
    except (OSError, KeyError):
        return "cli:unknown"


def _request(kind: Kind, **fields: Any) -> IncidentRequest:
    """The request, checked by the wire's own model; a bad field is one line, exit 2."""
    from pydantic import ValidationError

    from kontur.wire.messages import IncidentRequest

    try:
        return IncidentRequest(
            request_id=secrets.token_hex(16), kind=kind, by=_who(), at=time.time(), **fields
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        msg = str(first["msg"]).removeprefix("Value error, ")
        msg = msg.replace("from_at", "--from").replace("to_at", "--to")
        if field in _OPTION:
            fail(f"{_OPTION[field]}: expected a valid value ({msg}), got {first['input']!r}")
        fail(msg)


# ---- which way ------------------------------------------------------------------------------
def _play(
    req: IncidentRequest,
    data_dir: Path | None,
    config: Path | None,
    wait_s: float,
    json_out: Path | None,
    witness: Path | None = None,
) -> None:
    """Through the running site when one holds the archive, else on the archive itself."""
    from kontur.archive import Archive, ArchiveLocked
    from kontur.ingest.inventory import default_data_dir

    ddir = (data_dir if data_dir is not None else default_data_dir()).absolute()
    if not (ddir / "archive.sqlite").exists():
        fail(f"{ddir}: expected an archive, got no archive.sqlite")
    signing = _signing(config, witness)
    con = human(json_out)
    try:
        writer = Archive.open(ddir, signing=signing)
    except ArchiveLocked:
        result = _through_site(ddir, req, wait_s, con)
    except KonturError as exc:
        if req.kind != "verify_archive":
            fail(str(exc), exc.exit_code)
        result = _read_only_verify(ddir, req, signing.witness, f"not archived: {exc}")
    else:
        with writer:
            result = _on_own(writer, ddir, req, signing.witness, con)
    _show(result, con, json_out)


def _signing(config: Path | None, witness: Path | None) -> Signing:
    """The archive's key, cadence and witness from the config (``--witness`` wins)."""
    from kontur.archive import Signing
    from kontur.config import load_config

    try:
        cfg = load_config(config).archive
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    chosen = witness if witness is not None else (Path(cfg.witness) if cfg.witness else None)
    return Signing(
        key_path=Path(cfg.key) if cfg.key else None,
        every_records=cfg.checkpoint_every_records,
        every_s=cfg.checkpoint_every_s,
        witness=chosen,
    )


@contextlib.contextmanager
def _progress(con: Console, text: str) -> Iterator[Callable[[str], None]]:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    if not con.is_terminal:  # a log or a pipe: the outcome alone
        yield lambda line: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=con, transient=True) as progress:
        task = progress.add_task(text)
        yield lambda line: progress.update(task, description=line)


def _through_site(ddir: Path, req: IncidentRequest, wait_s: float, con: Console) -> dict[str, Any]:
    """Drop the request, wait for the site's outcome, read its closing record."""
    from kontur.incident.spool import drop, withdraw

    rid = req.request_id
    try:
        drop(ddir, req)
    except OSError as exc:
        fail(f"{ddir}/run/incidents: expected a writable dir, got {exc.strerror}")
    deadline = time.monotonic() + wait_s
    with _progress(con, f"{req.kind}: handed to the running site…") as show:
        turn = 0
        while time.monotonic() < deadline:
            status = _published(ddir, rid)
            show(f"{req.kind} {rid[:8]}: {status or 'waiting for the site to take it'}")
            if (status is not None and status != "pending") or turn % 5 == 4:
                found = _final(ddir, rid)
                if found is not None:
                    return _result(found, "site")
                if status is not None and status.startswith("failed refused"):
                    fail(status.removeprefix("failed "), 1)
            turn += 1
            time.sleep(_POLL_S)
    if withdraw(ddir, rid):
        fail(f"expected the running site to take incident {rid} within {wait_s:g} s, got "
             "nothing: the request was withdrawn", 1)  # fmt: skip
    fail(f"expected incident {rid} to end within {wait_s:g} s, got it still under way "
         f"(GET /incidents/{rid} or the archive's incident records will say)", 1)  # fmt: skip


def _published(ddir: Path, rid: str) -> str | None:
    from kontur.wire.messages import WireError
    from kontur.wire.runstate import read_run_state

    try:
        state = read_run_state(ddir)
    except WireError:
        return None  # mid-replace, or not ours to judge: the archive decides
    return state.incidents.get(rid) if state is not None else None


def _final(ddir: Path, rid: str) -> Record | None:
    from kontur.archive import Archive, ArchiveError
    from kontur.incident.steps import final_record

    try:
        with Archive.open_readonly(ddir) as arc:
            return final_record(arc, rid)
    except ArchiveError:
        return None


# ---- no site runs ---------------------------------------------------------------------------
def _on_own(
    writer: Archive, ddir: Path, req: IncidentRequest, witness: Path | None, con: Console
) -> dict[str, Any]:
    """The site's desk on our own writer: no spool, no worker to move."""
    from kontur.clock import SystemClock
    from kontur.incident.steps import final_record
    from kontur.runtime.exports import SiteExports
    from kontur.runtime.incidents import IncidentDesk, SiteHooks

    clock = SystemClock()
    exports = SiteExports(writer, ddir, clock, settle_s=0.0)  # nothing records: no verdict
    hooks = SiteHooks(
        revoke=lambda camera, reason: _revoke(ddir, writer, camera, reason),
        worker_platform=lambda: None,
        cpu_allowed=lambda: False,
        move_to_cpu=lambda why: None,
        exports=exports,
        witness=witness,
        spool=False,
    )
    desk = IncidentDesk(writer, ddir, clock, hooks)
    with _progress(con, f"{req.kind}: no site runs, on {ddir} itself…"):
        desk.submit(req, via="cli")
        while desk.pending():
            exports.tick()
            desk.tick(time.monotonic())
            time.sleep(0.05)
    exports.close()
    desk.close()
    record = final_record(writer, req.request_id)
    assert record is not None  # the desk settled it above
    return _result(record, "offline")


def _revoke(ddir: Path, writer: Archive, camera: str, reason: str) -> None:
    """``kontur camera revoke``'s path: the inventory, then its record in the archive."""
    from kontur.ingest.inventory import Inventory

    with Inventory.open(ddir) as inv:
        inv.revoke(camera, reason)
        inv.drain_to_archive(writer)


def _read_only_verify(
    ddir: Path, req: IncidentRequest, witness: Path | None, note: str
) -> dict[str, Any]:
    """The archive cannot be written (a broken one): verify it read-only, archive nothing."""
    from kontur.archive import verify_archive
    from kontur.incident.steps import save_report, verify_line

    try:
        report = verify_archive(ddir, witness=witness)
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    path = save_report(ddir, req.request_id, report.to_json())
    payload = {
        "request_id": req.request_id,
        "kind": req.kind,
        "by": req.by,
        "outcome": "done" if report.ok else "failed",
        "detail": f"{verify_line(report)}; report {path}; {note}",
        "report": str(path),
        "ok": report.ok,
    }
    return {"mode": "read-only", "record": None, "incident": payload, "report": report.to_json()}


# ---- the answer -----------------------------------------------------------------------------
def _result(record: Record, mode: str) -> dict[str, Any]:
    payload = dict(record.payload)
    out: dict[str, Any] = {"mode": mode, "record": record.index, "incident": payload}
    report = payload.get("report")
    if payload.get("kind") == "verify_archive" and isinstance(report, str):
        with contextlib.suppress(OSError, ValueError):
            out["report"] = json.loads(Path(report).read_text())
    return out


def _show(result: dict[str, Any], con: Console, json_out: Path | None) -> None:
    """Print what was done (a failure: one error line), write ``--json``, exit 0 or 1."""
    p = result["incident"]
    if json_out is not None:
        write_json(json_out, result)
    if p["outcome"] != "done":
        fail(str(p["detail"]), 1)
    where = {"site": "through the running site", "offline": "no site runs"}.get(
        result["mode"], "read-only"
    )
    record = f", record {result['record']}" if result["record"] is not None else ""
    con.print(
        f"incident {p['request_id']} {p['kind']} by {p['by']} ({where}{record}): done",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    con.print(str(p["detail"]), markup=False, highlight=False, soft_wrap=True)
