"""``kontur model audit``: audit a signed release on footage with ground truth, write the
report (JSON, HTML) and, given a signing key, re-sign the release as a new version that
carries the audit (ADR 0033).

Mounted by :mod:`kontur.cli` on ``kontur model``. Errors are one line and exit non-zero:
1 when the release is invalid, 2 for a usage or input problem.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kontur._cli import JsonOut, err, fail, human, json_to_stdout, write_json
from kontur.errors import KonturError

if TYPE_CHECKING:
    from kontur.release.manifest import AuditRecord
    from kontur.release.signing import VerifiedRelease
    from kontur.robustness.audit import AuditReport, AuditSettings

__all__ = ["REPORT_NAME", "audit"]

#: The report's file name inside an audited release.
REPORT_NAME = "audit.json"
#: Detections down to this score reach the audit: AP needs the ranking, the black-box
#: attacks a signal below the release's threshold.
_LOW_SCORE = 0.01


def _detector(release: VerifiedRelease, threads: int) -> Any:
    from kontur.release.manifest import Thresholds
    from kontur.worker.runners import build_detector

    m = release.manifest.manifest
    low = Thresholds(score=min(_LOW_SCORE, m.thresholds.score), nms_iou=m.thresholds.nms_iou)
    return build_detector(
        m.model_copy(update={"thresholds": low}),
        release.files,
        model_id=release.model_id,
        platform="cpu",
        intra_op_threads=threads,
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _run(release: VerifiedRelease, frames: Any, settings: AuditSettings, threads: int) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from kontur.robustness.audit import run_audit

    m = release.manifest.manifest
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal
    ) as progress:
        tasks: dict[str, Any] = {}

        def tell(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        return run_audit(
            _detector(release, threads),
            frames,
            score_threshold=m.thresholds.score,
            settings=settings,
            progress=tell,
        )


def _record(report: AuditReport, release: VerifiedRelease, raw: bytes, clip: str) -> AuditRecord:
    from kontur.release.manifest import AuditRecord

    m = release.manifest.manifest
    return AuditRecord.model_validate(
        {
            "schema": "kontur.audit/1",
            "report": REPORT_NAME,
            "report_sha256": hashlib.sha256(raw).hexdigest(),
            "model_digest": m.model_digest(release.file_digests),
            "audited": datetime.now(UTC),
            "clip": clip,
            "frames": report.frames,
            "corruptions": len(report.corruptions),
            "patch_queries": report.patch.queries,
            "trigger_budget": report.settings.trigger_budget,
            "clean_ap50": report.clean.ap50,
            "mpc": report.mpc,
            "rpc": min(report.rpc, 10.0),
            "trigger": report.trigger.verdict,
            "patch_recall_drop": max(-1.0, min(1.0, report.patch.drop)),
        },
        strict=False,
    )


def _summary(report: AuditReport) -> str:
    p, t = report.patch, report.trigger
    worst = sorted(report.by_family().items(), key=lambda kv: kv[1])[:3]
    lines = [
        f"clean: AP50 {report.clean.ap50:.3f}, precision {report.clean.precision:.3f}, "
        f"recall {report.clean.recall:.3f} on {report.frames} frames",
        f"corruptions: mPC {report.mpc:.3f}, rPC {report.rpc:.3f}",
        "  weakest: " + ", ".join(f"{k} {v:.2f}" for k, v in worst),
        f"patch: recall {p.recall_clean:.2f} clean, {p.recall_control:.2f} control, "
        f"{p.recall_patch:.2f} adversarial: drop {p.drop:.3f} ({p.queries} queries)",
        f"trigger scan: {t.verdict} (suppression {t.suppression:.2f}, control "
        f"{t.control:.2f}, threshold {t.threshold:.2f})",
    ]
    return "\n".join(lines)


def _settings(frames: int, seed: int, corruptions: str | None, queries: int, budget: int) -> Any:
    from kontur.robustness.audit import AuditSettings
    from kontur.robustness.corruptions import CORRUPTIONS

    names = tuple(s.strip() for s in (corruptions or "").split(",") if s.strip())
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown:
        fail(f"--corruptions: expected names among {', '.join(CORRUPTIONS)}, got {unknown}")
    return AuditSettings(
        frames=frames,
        corruptions=names,
        patch_queries=queries,
        trigger_budget=budget,
        seed=seed,
    )


def audit(
    release_dir: Annotated[Path, typer.Argument(help="Signed release directory to audit.")],
    video: Annotated[Path, typer.Option(help="Footage whose frames match the gt.")],
    gt: Annotated[Path, typer.Option(help="MOTChallenge gt.txt of the persons in --video.")],
    scale: Annotated[float, typer.Option(help="gt pixels -> video pixels.")] = 1.0,
    pub: Annotated[Path | None, typer.Option(help="Release public key (key mode).")] = None,
    ca: Annotated[list[Path] | None, typer.Option(help="CA certificate(s) to trust.")] = None,
    name: Annotated[str | None, typer.Option(help="Release name to accept.")] = None,
    frames: Annotated[int, typer.Option(min=8, help="Frames of the clip, evenly spaced.")] = 200,
    corruptions: Annotated[str | None, typer.Option(help="Only these, comma-separated.")] = None,
    patch_queries: Annotated[int, typer.Option(min=1, help="Patch query budget.")] = 2000,
    trigger_budget: Annotated[int, typer.Option(min=1, help="Trigger scan budget.")] = 2000,
    seed: Annotated[int, typer.Option(min=0, help="Seed of every random choice.")] = 0,
    threads: Annotated[int, typer.Option(min=1, max=64, help="Inference threads.")] = 2,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write the HTML report.")] = None,
    key: Annotated[Path | None, typer.Option(help="Sign the audited release with it.")] = None,
    cert: Annotated[Path | None, typer.Option(help="Signing certificate (cert mode).")] = None,
    chain: Annotated[list[Path] | None, typer.Option(help="Intermediate certificate(s).")] = None,
    out: Annotated[Path | None, typer.Option(help="New directory for the audited release.")] = (
        None
    ),
    version: Annotated[int | None, typer.Option(help="Its version (default: +1).")] = None,
    json_out: JsonOut = None,
) -> None:
    """Audit a release's robustness (corruptions, black-box patch, trigger scan); with --key
    and --out, re-sign it as a new version carrying the audit."""
    from kontur.release.cli import expected_name, trust_from_options

    _preflight(key, out, html_out, video, gt)
    trust = trust_from_options(pub, ca)
    names = expected_name(name)
    settings = _settings(frames, seed, corruptions, patch_queries, trigger_budget)
    # after every check of the arguments: the frame loader alone imports for a second
    from kontur.clock import SystemClock
    from kontur.release.signing import build_audited_release, verify_release
    from kontur.robustness.frames import load_audit_frames
    from kontur.robustness.report import report_html, report_json

    started = time.monotonic()
    try:
        release = verify_release(
            release_dir,
            public_key=trust.public_key,
            ca_certs=trust.ca_certs,
            expected_names=names,
            signer_policy=trust.signer_policy,
            clock=SystemClock(),
        )
        if version is not None and version <= release.manifest.manifest.version:
            fail(
                f"--version: expected more than {release.manifest.manifest.version}, got {version}"
            )
        picked = load_audit_frames(video, gt, scale=scale, count=frames)
        report = _run(release, picked, settings, threads)
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    except Exception as exc:  # the model failing mid-run (onnxruntime): one line, no traceback
        first = (str(exc).strip().splitlines() or [""])[0]
        fail(
            f"audit: expected the model to run on every audit frame, got "
            f"{type(exc).__name__}: {first}"
        )
    m = release.manifest.manifest
    report.extra.update(
        release={"name": m.name, "version": m.version, "digest": release.digest},
        clip=video.name,
        clip_sha256=_sha256(video),
        gt_sha256=_sha256(gt),
        scale=scale,
        seconds=round(time.monotonic() - started, 1),
    )
    raw = report_json(report)
    record = _record(report, release, raw, video.name)
    built = None
    if key is not None and out is not None:
        try:
            built = build_audited_release(
                release, record, raw, out, key=key, cert=cert, cert_chain=chain or (),
                version=version, clock=SystemClock(),
            )  # fmt: skip
        except KonturError as exc:
            fail(str(exc), exc.exit_code)
    if html_out is not None:
        try:
            html_out.write_text(report_html(report), encoding="utf-8")
        except OSError as exc:
            fail(f"--html {html_out}: expected a writable file, got {exc.strerror or exc}")
    _finish(report, record, built, json_out)


def _preflight(
    key: Path | None, out: Path | None, html_out: Path | None, video: Path, gt: Path
) -> None:
    """What would fail only after a long run fails now: the inputs, the signing key, the
    output places (the release's signature is checked next, the frames' contents after it)."""
    from kontur.release.keys import load_private_key

    for flag, path, what in (("--video", video, "a video file"), ("--gt", gt, "a gt.txt")):
        if not path.is_file():
            found = "a directory" if path.is_dir() else "nothing"
            fail(f"{flag} {path}: expected {what}, found {found}")
    if (key is None) != (out is None):
        fail("--key/--out: expected both (to sign the audited release) or neither, got one")
    if key is not None:
        try:
            load_private_key(key)
        except KonturError as exc:
            fail(str(exc), exc.exit_code)
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        fail(f"--out {out}: expected a new or empty directory, got entries")
    if html_out is not None and not html_out.parent.is_dir():
        fail(f"--html {html_out}: expected an existing directory for it, got none")


def _finish(report: AuditReport, record: AuditRecord, built: Any, json_out: Path | None) -> None:
    console = human(json_out)
    console.print(_summary(report), markup=False, highlight=False)
    if built is not None:
        m = built.manifest.manifest
        line = f"audited release {m.name}@{m.version} {built.digest} -> {built.directory}"
        typer.echo(line, err=json_to_stdout(json_out))
    if json_out is not None:
        doc: dict[str, Any] = {
            "record": record.model_dump(mode="json", by_alias=True),
            "report": report.to_json(),
            "release": None,
        }
        if built is not None:
            m = built.manifest.manifest
            doc["release"] = {
                "name": m.name,
                "version": m.version,
                "digest": built.digest,
                "directory": str(built.directory),
            }
        write_json(json_out, doc)
