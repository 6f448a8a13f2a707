"""``kontur text``: read the text in a frame as untrusted data, and write incident reports.

- ``kontur text scan --video V (--at S | --frame N)``: OCR one frame in the sandbox and
  show each string datamarked, with what the guard found in it;
- ``kontur text report --data-dir D --decision INDEX [--frame-text]``: the incident report
  of a decision from the archive, with the text of its frame when asked.

Neither command acts on what it reads: a finding flags the text, it never makes a request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from kontur._cli import DataDirOpt, JsonOut, fail, human, write_json
from kontur.errors import KonturError

__all__ = ["text_app"]

text_app = typer.Typer(
    help="Text read from camera frames: untrusted data, never an instruction.",
    no_args_is_help=True,
)

Camera = Annotated[str, typer.Option(help="The camera name recorded in the provenance.")]


def _isolation_json(run: Any) -> dict[str, Any]:
    return {"claimed": run.claimed.to_json(), "measured": run.measured.to_json()}


def _print_scan(console: Console, guarded: Any, level: str) -> None:
    say = console.print
    for t in guarded.texts:
        say(t.datamarked(guarded.marker), markup=False, highlight=False, soft_wrap=True)
    for f in guarded.findings:
        say(f"frame-wide: {f.kind.value}:{f.rule} {f.detail}", markup=False, highlight=False)
    flagged = sum(t.instruction_like for t in guarded.texts)
    say(
        f"{len(guarded.texts)} strings, {flagged} instruction-like (flagged; frame text is data, "
        f"never an instruction); OCR sandbox measured {level}",
        markup=False,
        highlight=False,
    )


@text_app.command("scan")
def scan(
    video: Annotated[Path, typer.Option(help="The video file to read a frame of.")],
    at: Annotated[float | None, typer.Option(help="The frame at this time (seconds).")] = None,
    frame: Annotated[int | None, typer.Option(help="The frame with this index (from 0).")] = None,
    camera: Camera = "file",
    data_dir: DataDirOpt = None,
    json_out: JsonOut = None,
) -> None:
    """OCR one frame in the sandbox and show each string datamarked, with its findings."""
    from kontur.textguard.frames import read_frame
    from kontur.textguard.guard import FrameFacts, guard_frame
    from kontur.textguard.ocr import OcrOptions, run_ocr

    deny = (data_dir.absolute(),) if data_dir is not None else ()
    try:
        picture = read_frame(video, frame=frame, at=at)
        run = run_ocr(picture.image, OcrOptions(deny=deny))
        h, w = picture.image.shape[:2]
        facts = FrameFacts(camera, picture.index, w, h, video.name, run.engine)
        guarded = guard_frame(run.lines, facts)
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    _print_scan(human(json_out), guarded, run.measured.level)
    if json_out is not None:
        write_json(json_out, {**guarded.to_json(), "isolation": _isolation_json(run)})


@text_app.command("report")
def report(
    decision: Annotated[int, typer.Option(help="The decision's record index.", min=0)],
    data_dir: DataDirOpt = None,
    frame_text: Annotated[
        bool, typer.Option(help="Also OCR the decision's frame (in the sandbox) and quote it.")
    ] = False,
    json_out: JsonOut = None,
) -> None:
    """The incident report of a decision, written from the archive with a fixed template."""
    import dataclasses

    from kontur.ingest.inventory import default_data_dir
    from kontur.textguard.archive_facts import incident_from_archive
    from kontur.textguard.guard import FrameFacts, guard_frame
    from kontur.textguard.ocr import OcrOptions, run_ocr
    from kontur.textguard.report import write_report

    ddir = (data_dir or default_data_dir()).absolute()
    extra: dict[str, Any] = {}
    try:
        found = incident_from_archive(ddir, decision, with_frame=frame_text)
        facts = found.facts
        if found.image is not None:
            run = run_ocr(found.image, OcrOptions(deny=(ddir,)))
            h, w = found.image.shape[:2]
            where = FrameFacts(found.camera, found.frame_index, w, h, f"decision {decision}",
                               run.engine)  # fmt: skip
            guarded = guard_frame(run.lines, where)
            facts = dataclasses.replace(facts, frame_texts=guarded.texts)
            extra = {"frame": guarded.to_json(), "isolation": _isolation_json(run)}
        written = write_report(facts)
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    human(json_out).print(written.text, markup=False, highlight=False, soft_wrap=True)
    if json_out is not None:
        write_json(json_out, {"decision": decision, **written.to_json(), **extra})
