"""``kontur sign``: sign H.264/H.265 video with ONVIF Media Signing (no re-encoding).

The coordinator mounts :func:`sign` as a command of the ``kontur`` app. The command reads
the camera's PEM key and certificate chain, takes the wall-clock time once at start (the
capture time of each access unit is that base time + its pts) and runs
:func:`kontur.ingest.oms.writer.sign_file`. Every failure is one ``kontur: error: ...`` line
and exit code 2; never a traceback.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from kontur._cli import JsonOut, check_writable, err, fail, human, write_json
from kontur.errors import KonturError

__all__ = ["sign"]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        fail(f"{what} {path}: expected an existing file, found nothing there")
    except IsADirectoryError:
        fail(f"{what} {path}: expected a file, got a directory")
    except OSError as exc:
        fail(f"{what} {path}: expected a readable file, got {exc.strerror}")


def _duration_s(source: Path) -> float:
    """The video's duration from its container (0 when it does not say or cannot be read)."""
    import av

    try:
        with av.open(str(source)) as container:
            stream = container.streams.video[0] if container.streams.video else None
            if stream is not None and stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            return float(container.duration or 0) / 1_000_000
    except (av.error.FFmpegError, OSError, IndexError):
        return 0.0


def _summary_lines(summary: dict[str, Any]) -> list[str]:
    growth = summary["output_bytes"] - summary["input_bytes"]
    return [
        f"signed {summary['input']} -> {summary['output']} "
        f"({summary['codec']}, {summary['container']})",
        f"  access units {summary['access_units']}, GOPs signed {summary['gops_signed']}, "
        f"SEIs {summary['seis']} ({summary['sei_bytes']} bytes)",
        f"  bytes in {summary['input_bytes']}, out {summary['output_bytes']} ({growth:+d})",
        f"  other streams copied {summary['copied_streams']}, dropped "
        + (", ".join(summary["dropped_streams"]) or "none"),
    ]


def sign(
    source: Annotated[Path, typer.Argument(metavar="INPUT", help="Video to sign (H.264/H.265).")],
    key: Annotated[Path, typer.Option(help="Camera private key (PEM, ECDSA P-256 or RSA).")],
    cert: Annotated[
        Path, typer.Option(help="Certificate chain (PEM): leaf first, trust anchor last.")
    ],
    output: Annotated[
        Path, typer.Option("--out", help="Signed output: .mp4, .mkv, .h264 or .h265.")
    ],
    certificate_sei: Annotated[
        bool,
        typer.Option(
            "--certificate-sei",
            help="Send the certificate chain once in a certificate SEI (reference -C 0).",
        ),
    ] = False,
    extensions: Annotated[
        bool,
        typer.Option(help="Add kontur's signed parameter-set claim and end-of-stream marker."),
    ] = True,
    json_out: JsonOut = None,
) -> None:
    """Sign a video with ONVIF Media Signing SEIs; pictures are passed through untouched."""
    from kontur.ingest.oms.keys import load_signing_identity
    from kontur.ingest.oms.signer import SignerOptions

    if source.is_dir():
        fail(f"input {source}: expected a video file, got a directory")
    if not source.is_file():
        fail(f"input {source}: expected an existing video file, found nothing there")
    if output.resolve() == source.resolve():
        fail(f"--out {output}: expected a path other than the input")
    check_writable(output, "--out")
    if output.exists():  # as `archive export`: a recording is never overwritten
        fail(f"--out {output}: expected a new file, got an existing one (remove it first)")
    key_pem = _read(key, "--key")
    chain = _read(cert, "--cert")
    # a recording is signed as if captured up to now: its last frame gets the signing time
    # (capture times in the future would be STALE for any receiver)
    base_time = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=_duration_s(source))
    try:
        identity = load_signing_identity(key_pem, chain, valid_at=base_time)
        options = SignerOptions(certificate_sei=certificate_sei, kontur_extensions=extensions)
        summary = _run(source, output, identity, base_time, options)
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    doc = {**summary, "base_time": base_time.isoformat()}
    console = human(json_out)
    for line in _summary_lines(doc):
        console.print(line, markup=False, highlight=False)
    if json_out is not None:
        write_json(json_out, doc)


def _run(
    source: Path, output: Path, identity: Any, base_time: dt.datetime, options: Any
) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    from kontur.ingest.oms.writer import sign_file

    columns = (*Progress.get_default_columns()[:2], BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(f"signing {source.name}", total=None)

        def on_au(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        summary = sign_file(source, output, identity, base_time, options, progress=on_au)
    return summary.to_dict()
