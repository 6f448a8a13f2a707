"""``kontur archive …``: create, verify and prove the tamper-evident archive (ADR 0015).

Every command takes ``--json PATH|-``. Exit codes: 0 success, 1 the archive (or proof) does
not check out, 2 bad input (a missing archive, a wrong size, an unreadable witness).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from kontur._cli import JsonOut, fail, human, write_json
from kontur.archive.witness import witness_line
from kontur.errors import KonturError

__all__ = ["archive_app"]

archive_app = typer.Typer(help="The tamper-evident archive.", no_args_is_help=True)

DataDir = Annotated[Path, typer.Argument(help="The archive's data dir.")]
KeyOpt = Annotated[
    Path | None,
    typer.Option("--key", help="The archive's checkpoint key (default: DATA_DIR/archive.key)."),
]


@archive_app.command("init")
def archive_init(data_dir: DataDir, key: KeyOpt = None, json_out: JsonOut = None) -> None:
    """Create an empty archive and its checkpoint key (0600); print the public key."""
    from kontur.archive import Archive, ArchiveKey, Signing

    if (data_dir / "archive.sqlite").exists():
        fail(f"{data_dir}: expected no archive, got an existing archive.sqlite")
    try:
        if key is not None and key.exists():  # a bad key is refused before anything is made
            ArchiveKey.load(key)
        elif key is not None and not key.parent.is_dir():
            fail(f"archive key {key}: expected its folder {key.parent} to exist, found none")
        with Archive.open(data_dir, signing=Signing(key_path=key)) as arc:
            result = {"data_dir": str(data_dir), "origin": arc.origin, "key": str(arc.verifier_key)}
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    con = human(json_out)
    con.print(f"archive {data_dir}: created, origin {result['origin']}", markup=False)
    con.print(f"verifier key (pin it, or keep a witness): {result['key']}", markup=False)
    if json_out is not None:
        write_json(json_out, result)


@archive_app.command("verify")
def archive_verify(
    data_dir: DataDir,
    witness: Annotated[
        Path | None, typer.Option(help="A witness file: the tree must agree with every line.")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--pin-key", help="The archive's verifier key (name+id+key) to insist on."),
    ] = None,
    json_out: JsonOut = None,
) -> None:
    """Re-check every record, node, checkpoint and segment. Exit 0 when intact, 1 if not."""
    from kontur.archive import VerifierKey, verify_archive

    try:
        pinned = VerifierKey.parse(key) if key is not None else None
        report = verify_archive(data_dir, witness=witness, key=pinned)
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    con = human(json_out)
    if report.ok:
        cp = report.checkpoint
        signed = "no signed checkpoint" if cp is None else f"signed up to {cp['size']}"
        con.print(
            f"archive {data_dir}: OK, {report.records} records ({signed}), "
            f"{report.segments} segments ({report.removed} removed by retention), "
            f"root {report.head[:16]}…",
            markup=False,
            highlight=False,
        )
        if report.witness is not None:
            con.print(witness_line(report.witness), markup=False)
    else:
        assert report.first_bad is not None
        con.print(
            f"archive {data_dir}: BROKEN at record {report.first_bad.index}: "
            f"{report.first_bad.reason}",
            markup=False,
            highlight=False,
        )
    if json_out is not None:
        write_json(json_out, report.to_json())
    raise typer.Exit(0 if report.ok else 1)


@archive_app.command("prove")
def archive_prove(
    data_dir: DataDir,
    index: Annotated[int | None, typer.Option(help="Prove record INDEX is in the tree.")] = None,
    size: Annotated[
        int | None, typer.Option(help="Against the tree of SIZE records (default: all).")
    ] = None,
    from_size: Annotated[int | None, typer.Option(help="Consistency: the older size.")] = None,
    to_size: Annotated[int | None, typer.Option(help="Consistency: the newer size.")] = None,
    json_out: JsonOut = None,
) -> None:
    """An RFC 9162 inclusion (--index) or consistency (--from-size/--to-size) proof."""
    from kontur.archive import Archive

    if (index is None) == (from_size is None):
        fail(
            "expected exactly one of --index or --from-size, got "
            + ("both" if index is not None else "neither")
        )
    try:
        with Archive.open_readonly(data_dir) as arc:
            result = (
                _inclusion(arc, index, size)
                if index is not None
                else _consistency(arc, from_size, to_size)
            )
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    except ValueError as exc:
        fail(str(exc))
    con = human(json_out)
    con.print(f"{result['kind']} proof, {len(result['proof'])} hash(es):", markup=False)
    for h in result["proof"]:
        con.print(f"  {h}", markup=False, highlight=False)
    if json_out is not None:
        write_json(json_out, result)


def _inclusion(arc: Any, index: int, size: int | None) -> dict[str, Any]:
    from kontur.archive import verify_inclusion

    if arc.records == 0:
        raise ValueError("--index: expected a record to prove, got an archive with none yet")
    size = arc.records if size is None else size
    if not 1 <= size <= arc.records:
        raise ValueError(f"--size: expected 1..{arc.records} (the archive's records), got {size}")
    if not 0 <= index < size:
        raise ValueError(f"--index: expected 0..{size - 1}, got {index}")
    proof = arc.inclusion_proof(index, size)
    record = next(arc.iter_records(index))
    root = arc.root_at(size)
    verify_inclusion(bytes.fromhex(record.hash), index, size, proof, root)  # never hand out junk
    return {
        "kind": "inclusion",
        "index": index,
        "tree_size": size,
        "leaf": record.hash,
        "root": root.hex(),
        "proof": [h.hex() for h in proof],
        "checkpoint": _covering_checkpoint(arc, size),
        "origin": arc.origin,
        "key": str(arc.verifier_key),
    }


def _consistency(arc: Any, old: int | None, new: int | None) -> dict[str, Any]:
    from kontur.archive import verify_consistency

    assert old is not None
    new = arc.records if new is None else new
    if not 0 < old <= new:
        raise ValueError(f"--from-size/--to-size: expected 0 < from <= to, got {old} and {new}")
    if new > arc.records:
        raise ValueError(
            f"--to-size: expected at most {arc.records} (the archive's records), got {new}"
        )
    proof = arc.consistency_proof(old, new)
    old_root, new_root = arc.root_at(old), arc.root_at(new)
    verify_consistency(old, new, old_root, new_root, proof)
    return {
        "kind": "consistency",
        "from_size": old,
        "to_size": new,
        "from_root": old_root.hex(),
        "to_root": new_root.hex(),
        "proof": [h.hex() for h in proof],
        "origin": arc.origin,
        "key": str(arc.verifier_key),
    }


def _covering_checkpoint(arc: Any, size: int) -> str | None:
    """The stored signed checkpoint at exactly ``size``, if there is one."""
    for cp_size, _at, note in arc.checkpoints():
        if cp_size == size:
            return str(note)
    return None


# Retention and legal hold (issue 10; kontur.archive.retention). These write to the archive,
# which has one writer: they work on a stopped archive, and a running site service offers
# holds through its API instead.

ReasonOpt = Annotated[str, typer.Option("--reason", help="Why; kept in the archive.")]
ByOpt = Annotated[
    str | None, typer.Option("--by", help="Who; kept in the archive (default: the login name).")
]


@archive_app.command("hold")
def archive_hold(
    data_dir: DataDir,
    camera: Annotated[str, typer.Option("--camera", help="The camera whose segments to hold.")],
    start: Annotated[
        str,
        typer.Option("--from", help="Start: ISO 8601 with a zone (…T03:00:00Z) or unix seconds."),
    ],
    end: Annotated[str, typer.Option("--to", help="End, inclusive (same forms as --from).")],
    reason: ReasonOpt,
    by: ByOpt = None,
    key: KeyOpt = None,
    json_out: JsonOut = None,
) -> None:
    """Place a legal hold: retention never removes CAMERA's segments overlapping [FROM, TO]."""
    from kontur.archive.retention import place_hold

    t0, t1 = _cli_time("--from", start), _cli_time("--to", end)
    who = by if by is not None else _whoami()
    hold, view = _with_writer(data_dir, key, lambda a: place_hold(a, camera, t0, t1, reason, who))
    stored, removed = view.coverage(hold.camera, hold.start, hold.end)
    known = hold.camera in view.cameras()
    con = human(json_out)
    con.print(
        f"hold {hold.index} placed: camera {hold.camera} from {_iso_z(hold.start)} "
        f"to {_iso_z(hold.end)}, by {hold.by}; covers {stored} stored segment(s), "
        f"{removed} already removed by retention",
        markup=False,
        highlight=False,
    )
    if not known:
        con.print(
            f"warning: camera {hold.camera!r} has no segment in this archive yet "
            f"(cameras: {', '.join(view.cameras()) or 'none'})",
            markup=False,
            highlight=False,
        )
    if json_out is not None:
        result = {"hold": hold.to_json(), "covered": stored, "already_removed": removed}
        write_json(json_out, {**result, "camera_known": known})


@archive_app.command("release")
def archive_release(
    data_dir: DataDir,
    hold_index: Annotated[
        str, typer.Option("--hold", metavar="N", help="The hold record's index.")
    ],
    reason: ReasonOpt,
    by: ByOpt = None,
    key: KeyOpt = None,
    json_out: JsonOut = None,
) -> None:
    """Release legal hold N; retention may then remove its segments on its next run."""
    from kontur.archive.retention import release_hold

    if not hold_index.isdigit():
        fail(f"--hold: expected a record index (an integer >= 0), got {hold_index!r}")
    who = by if by is not None else _whoami()
    hold, record = _with_writer(
        data_dir, key, lambda a: release_hold(a, int(hold_index), reason, who)
    )
    human(json_out).print(
        f"hold {hold.index} released by record {record.index}: camera {hold.camera} "
        f"from {_iso_z(hold.start)} to {_iso_z(hold.end)}, by {who}",
        markup=False,
        highlight=False,
    )
    if json_out is not None:
        release = {"index": record.index, "reason": reason, "by": who, "at": record.at}
        write_json(json_out, {"hold": hold.to_json(), "release": release})


@archive_app.command("retention")
def archive_retention(
    data_dir: DataDir,
    days: Annotated[
        str, typer.Option("--days", metavar="N", help="Keep segment bytes N days (default).")
    ],
    camera: Annotated[
        list[str] | None,
        typer.Option("--camera", metavar="C=DAYS", help="Per-camera days (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would go (read-only).")
    ] = False,
    key: KeyOpt = None,
    json_out: JsonOut = None,
) -> None:
    """Remove expired segment bytes now, a tombstone record each; held segments stay.

    Exit 0; 1 when an expired segment file was already missing or corrupt (it is left for
    `kontur archive verify` to name, never tombstoned); 2 on bad input or a locked archive.
    """
    import time

    from kontur.archive import Archive
    from kontur.archive.retention import RetentionPolicy, apply_retention

    per_camera: dict[str, float] = {}
    for item in camera or []:
        name, sep, value = item.partition("=")
        if not sep or not name or name in per_camera:
            fail(f"--camera: expected CAMERA=DAYS, each camera once, got {item!r}")
        per_camera[name] = _cli_days(f"--camera {name}", value)
    policy = RetentionPolicy(_cli_days("--days", days), per_camera)
    now = time.time()
    if dry_run:
        try:
            with Archive.open_readonly(data_dir) as arc:
                report = apply_retention(arc, policy, now, dry_run=True)
        except KonturError as exc:
            fail(str(exc), exc.exit_code)
    else:
        report = _with_writer(data_dir, key, lambda a: apply_retention(a, policy, now))
    _print_retention(data_dir, report, json_out)
    raise typer.Exit(0 if report.ok else 1)


def _print_retention(data_dir: Path, report: Any, json_out: Path | None) -> None:
    con = human(json_out)
    verb = "would remove" if report.dry_run else "removed"
    con.print(
        f"retention {data_dir}{' (dry run: nothing changed)' if report.dry_run else ''}: "
        f"{verb} {len(report.removed)} segment file(s), {report.bytes_removed} bytes, "
        f"{report.tombstones} new tombstone(s); {report.kept_by_hold} kept by legal hold, "
        f"{report.kept_shared} kept for a younger or held record of the same bytes; "
        f"{report.holds} active hold(s)",
        markup=False,
        highlight=False,
    )
    for what, shas in (("missing", report.missing), ("corrupt", report.corrupt)):
        for sha in shas:
            con.print(
                f"segment {sha[:12]}…: expected an intact file, got it {what}; not tombstoned "
                "(run `kontur archive verify`)",
                markup=False,
                highlight=False,
            )
    if json_out is not None:
        write_json(json_out, report.to_json())


def _with_writer(data_dir: Path, key: Path | None, action: Any) -> Any:
    """Open the archive for writing (it must exist), run ``action(archive)``, close it."""
    from kontur.archive import Archive, ArchiveLocked, Signing

    if not (data_dir / "archive.sqlite").exists():
        fail(f"{data_dir}: expected an archive, got no archive.sqlite")
    try:
        with Archive.open(data_dir, signing=Signing(key_path=key)) as arc:
            return action(arc)
    except ArchiveLocked as exc:
        fail(f"{exc} (stop kontur first: the archive has one writer)", exc.exit_code)
    except KonturError as exc:
        fail(str(exc), exc.exit_code)


def _cli_time(option: str, text: str) -> float:
    from kontur.archive.retention import parse_time

    try:
        return parse_time(text)
    except KonturError as exc:
        fail(f"{option}: {exc}", exc.exit_code)


def _cli_days(option: str, text: str) -> float:
    import math

    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or days <= 0:
        fail(f"{option}: expected a number of days > 0, got {text!r}")
    return days


def _iso_z(at: float) -> str:
    from kontur.archive.retention import format_time

    return format_time(at)


def _whoami() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
