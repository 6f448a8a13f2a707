"""``kontur eval …``: measure analytics quality on ground truth.

Mounted by :mod:`kontur.cli` as ``app.add_typer(eval_app, name="eval")``. A failure prints
one line ``kontur: error: …`` on stderr and exits non-zero (the error's ``exit_code``);
no traceback reaches the operator.

``kontur eval mot`` runs a detector and the worker's tracker over a video with MOTChallenge
ground truth and prints MOTA, IDF1, precision, recall, ID switches (and HOTA). The detector
comes from a signed release (``--model DIR`` with ``--pub`` or ``--ca``), verified exactly as
the worker verifies it, or, for quick unsigned runs, from a bare ONNX file
(``--unsafe-onnx``, which warns).

``kontur eval tamper`` runs the camera tamper monitor (:mod:`kontur.tamper`) over a clip and
lists its events; with ``--inject KIND --at SECONDS`` it applies that seeded tampering to the
real clip from then on and says whether it was detected within 2 s (ADR 0024).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from kontur._cli import JsonOut, err, fail, human, write_json
from kontur.errors import KonturError

if TYPE_CHECKING:
    from kontur.config import MotionConfig
    from kontur.eval.mot import MotResult
    from kontur.tamper.evaluate import TamperRun
    from kontur.worker.detectors import Detector

__all__ = ["eval_app"]

eval_app = typer.Typer(
    help="Measure analytics quality on ground truth.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Output formats ``--unsafe-onnx`` can run (the SSD release is OpenVINO IR, not ONNX).
_UNSIGNED_FORMATS = ("yolox", "yolov8")


@eval_app.callback()
def _group() -> None:
    """Measure analytics quality on ground truth."""


def _release_detector(directory: Path, pub: Path | None, ca: list[Path], threads: int) -> Detector:
    """Verify a signed release and build its detector from the verified bytes."""
    from kontur.clock import SystemClock
    from kontur.release import verify_release
    from kontur.worker.runners import build_detector

    if (pub is None) == (not ca):
        fail(
            "--model: expected exactly one of --pub or --ca, got " + ("both" if pub else "neither")
        )
    release = verify_release(
        directory, public_key=pub, ca_certs=ca, platform="cpu", clock=SystemClock()
    )
    return build_detector(
        release.manifest.manifest,
        release.files,
        model_id=release.model_id,
        platform="cpu",
        intra_op_threads=threads,
    )


def _unsigned_detector(path: Path, output_format: str, threads: int) -> Detector:
    """UNSAFE: a bare ONNX file, read without any signature check (quick runs only)."""
    import hashlib

    from kontur.eval.errors import EvalInputError
    from kontur.release import ReleaseFiles, preset
    from kontur.worker.runners import build_detector

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvalInputError(
            f"--unsafe-onnx {path}: expected a readable ONNX file, got {exc.strerror}"
        ) from None
    err.print(
        f"kontur: warning: evaluating UNSIGNED model {path} (--unsafe-onnx); "
        "its bytes are not verified",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    files = ReleaseFiles(runtime="onnx", model="model.onnx")
    manifest = preset(output_format, name="unsigned", version=1, files=files)
    model_id = "sha256:" + hashlib.sha256(data).hexdigest()
    return build_detector(
        manifest, {"model.onnx": data}, model_id=model_id, platform="cpu", intra_op_threads=threads
    )


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _table(results: dict[str, MotResult]) -> Table:
    """One column per run, one row per measure: it fits 80 columns however many measures."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    table.add_column("measure", justify="left", no_wrap=True)
    for label in (r.label for r in results.values()):
        table.add_column(label, justify="right", no_wrap=True)
    rows: list[tuple[str, Callable[[MotResult], str]]] = [
        ("MOTA", lambda r: _pct(r.mota)),
        ("IDF1", lambda r: _pct(r.idf1)),
        ("precision", lambda r: _pct(r.precision)),
        ("recall", lambda r: _pct(r.recall)),
        ("ID switches", lambda r: str(r.id_switches)),
        ("mostly tracked", lambda r: f"{r.mostly_tracked}/{r.gt_ids}"),
        ("mostly lost", lambda r: f"{r.mostly_lost}/{r.gt_ids}"),
        ("HOTA", lambda r: _pct(r.hota.hota) if r.hota else "-"),
        ("detector calls", lambda r: str(r.detector_calls)),
        ("pixels analysed", lambda r: f"{100 * r.analysed_ratio:.0f}%"),
        ("fps", lambda r: f"{r.fps:.1f}"),
    ]
    for name, cell in rows:
        table.add_row(name, *(cell(r) for r in results.values()))
    return table


def _comparison(full: MotResult, gated: MotResult) -> dict[str, float]:
    """Motion-gated vs full-frame, measured in the same run on the same decoded frames."""
    return {
        "speedup": gated.fps / full.fps if full.fps else 0.0,
        "recall_cost": full.recall - gated.recall,
        "mota_change": gated.mota - full.mota,
        "idf1_change": gated.idf1 - full.idf1,
        "calls_ratio": gated.detector_calls / full.detector_calls if full.detector_calls else 0.0,
        "pixels_ratio": gated.analysed_ratio,
    }


def _summary(results: dict[str, MotResult], comparison: dict[str, float] | None) -> str:
    first = next(iter(results.values()))
    hota = first.hota.implementation if first.hota else "off"
    line = (
        f"{first.frames} frames, {first.gt_ids} gt identities, {first.gt_boxes} gt boxes; "
        f"detector {first.detector} ({first.model_id[:23]}); HOTA: {hota}"
    )
    if comparison is not None:
        c = comparison
        line += (
            f"\nmotion gating: speed-up x{c['speedup']:.2f}, "
            f"detector calls x{c['calls_ratio']:.2f}, "
            f"pixels analysed {100 * c['pixels_ratio']:.0f}%"
            f"\nmotion gating: recall cost {100 * c['recall_cost']:+.1f} pp, "
            f"MOTA {100 * c['mota_change']:+.1f} pp, IDF1 {100 * c['idf1_change']:+.1f} pp"
        )
    return line


def _detector(
    model: Path | None, pub: Path | None, ca: list[Path], onnx: Path | None, fmt: str, threads: int
) -> Detector:
    if (model is None) == (onnx is None):
        got = "both" if model is not None else "neither"
        fail(f"expected exactly one of --model RELEASE_DIR or --unsafe-onnx FILE, got {got}")
    if model is not None:
        return _release_detector(model, pub, ca, threads)
    assert onnx is not None
    if fmt not in _UNSIGNED_FORMATS:
        fail(f"--format: expected one of {', '.join(_UNSIGNED_FORMATS)}, got {fmt!r}")
    return _unsigned_detector(onnx, fmt, threads)


def _run(
    video: Path,
    gt: Path,
    detector: Detector,
    *,
    scale: float,
    frames: int | None,
    variants: tuple[str, ...],
    motion: MotionConfig,
    hota: bool,
) -> dict[str, MotResult]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from kontur.eval.mot import run_mot

    columns = (*Progress.get_default_columns()[:2], BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, TimeRemainingColumn(), console=err, transient=True, disable=not err.is_terminal
    ) as progress:
        task = progress.add_task(f"{video.name}: {' + '.join(variants)}", total=frames)
        return run_mot(
            video,
            gt,
            detector,
            scale=scale,
            frames=frames,
            variants=variants,
            motion=motion,
            hota=hota,
            on_frame=lambda n, total: progress.update(task, completed=n, total=total),
        )


@eval_app.command()
def mot(
    video: Annotated[Path, typer.Option(help="Video whose frames match the gt frame for frame.")],
    gt: Annotated[Path, typer.Option(help="MOTChallenge gt.txt (frame,id,x,y,w,h,conf,...).")],
    scale: Annotated[
        float, typer.Option(help="Multiply gt boxes by this (gt pixels -> video pixels).")
    ] = 1.0,
    model: Annotated[
        Path | None, typer.Option(help="Signed model release directory (with --pub or --ca).")
    ] = None,
    pub: Annotated[Path | None, typer.Option(help="Release public key (key mode).")] = None,
    ca: Annotated[
        list[Path] | None, typer.Option(help="CA certificate(s) to trust (certificate mode).")
    ] = None,
    unsafe_onnx: Annotated[
        Path | None, typer.Option(help="UNSAFE: an unsigned ONNX model, for quick runs.")
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="Output format of --unsafe-onnx: yolox|yolov8.")
    ] = "yolox",
    motion_gating: Annotated[
        bool,
        typer.Option(
            "--motion-gating", help="Run the detector only around motion (worker.motion)."
        ),
    ] = False,
    compare_motion: Annotated[
        bool,
        typer.Option(
            "--compare-motion", help="Run full-frame and motion-gated side by side and compare."
        ),
    ] = False,
    frames: Annotated[int | None, typer.Option(min=1, help="Only the first N frames.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="kontur config (worker threads, motion parameters).")
    ] = None,
    hota: Annotated[bool, typer.Option(help="Also compute HOTA.")] = True,
    json_out: JsonOut = None,
) -> None:
    """Tracking quality (MOTA, IDF1, precision, recall, ID switches) on MOTChallenge gt."""
    from kontur.config import load_config
    from kontur.eval.mot import FULL_FRAME, MOTION_GATED

    variants = (
        (FULL_FRAME, MOTION_GATED)
        if compare_motion
        else (MOTION_GATED,)
        if motion_gating
        else (FULL_FRAME,)
    )
    try:
        cfg = load_config(config).worker
        det = _detector(model, pub, ca or [], unsafe_onnx, output_format, cfg.intra_op_threads)
        results = _run(
            video, gt, det, scale=scale, frames=frames, variants=variants, motion=cfg.motion,
            hota=hota,
        )  # fmt: skip
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    comparison = _comparison(*results.values()) if compare_motion else None
    doc = {
        "video": str(video),
        "gt": str(gt),
        "scale": scale,
        "results": {k: r.to_json() for k, r in results.items()},
        "motion_comparison": comparison,
    }
    _report(results, comparison, doc, json_out)


def _report(
    results: dict[str, MotResult],
    comparison: dict[str, float] | None,
    doc: dict[str, Any],
    json_out: Path | None,
) -> None:
    """The table and summary on stdout (stderr when the JSON goes there), then the JSON."""
    console = human(json_out)  # piped: as wide as COLUMNS says, else 80
    console.print(_table(results))
    console.print(_summary(results, comparison), markup=False, highlight=False)
    if json_out is not None:
        write_json(json_out, doc)


# --------------------------------------------------------------------------- kontur eval tamper


def _tamper_table(run: TamperRun) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    for col in ("kind", "start s", "end s", "score", "reason"):
        table.add_column(col, justify="left" if col in ("kind", "reason") else "right")
    for e in run.events:
        end = "open" if e.end_s is None else f"{e.end_s:.2f}"
        table.add_row(e.kind.value, f"{e.start_s:.2f}", end, f"{e.score:.2f}", e.reason)
    return table


def _tamper_summary(run: TamperRun) -> str:
    line = f"{run.frames} frames, {run.seconds:.1f} s, {len(run.events)} tamper event(s)"
    if run.injected is not None:
        inj = run.injected
        found = f"detected after {run.delay_s:.2f} s" if run.detected else "NOT detected within 2 s"
        line += f"\ninjected {inj.kind.value} at {inj.at_s:.2f} s (seed {inj.seed}): {found}"
    return line


@eval_app.command()
def tamper(
    video: Annotated[Path, typer.Option(help="Video to watch for camera tampering.")],
    inject: Annotated[
        str | None,
        typer.Option(
            help="Apply this tampering from --at on: covered, defocus, glare, low_light, "
            "shifted, frozen, screen."
        ),
    ] = None,
    at: Annotated[
        float | None, typer.Option(help="Seconds into the clip where --inject starts.")
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, help="Seed of the injected tampering's strength.")
    ] = 0,
    json_out: JsonOut = None,
) -> None:
    """Camera tamper events (kind, start, end, score, reason) found in a clip.

    With --inject KIND --at SECONDS, that tampering is applied to the real clip from then on
    and the result says whether it was detected within 2 s, and how late.
    """
    from rich.progress import BarColumn, Progress, TextColumn

    from kontur.tamper.evaluate import run_video
    from kontur.tamper.model import TamperKind

    try:
        if inject is not None:
            inject = TamperKind.parse(inject).value
    except KonturError as exc:
        fail(f"--inject: {exc}", exc.exit_code)
    if at is not None and not at >= 0:
        fail(f"--at: expected a time >= 0 seconds, got {at}")
    try:
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}"))
        with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task(f"{video.name}: tamper", total=None)
            run = run_video(
                video, inject=inject, at_s=at, seed=seed,
                on_frame=lambda n: bar.update(task, completed=n),
            )  # fmt: skip
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    if run.injected is not None and run.injected.at_s > run.seconds:
        fail(f"--at: expected a time within the clip's {run.seconds:.2f} s, got {at}")
    console = human(json_out)  # piped: as wide as COLUMNS says, else 80
    if run.events:
        console.print(_tamper_table(run))
    console.print(_tamper_summary(run), markup=False, highlight=False)
    if json_out is not None:
        write_json(json_out, {"video": str(video), **run.to_json()})
