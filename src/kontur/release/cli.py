"""``kontur model …``: make keys, build, verify and install signed model releases.

Mounted by :mod:`kontur.cli` as ``app.add_typer(model_app, name="model")``. Every failure
prints one line ``kontur: error: …`` on stderr and exits non-zero, never a traceback:
1 when a release is invalid (bad signature, untrusted signer, rollback, expired, wrong
platform), 2 for a usage problem (a missing key file, no release there, bad options).

``verify`` and ``install`` take ``--name``, the release name to accept: a valid signature
over another model is refused ("expected release name X, got Y", exit 1), ADR 0016.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kontur._cli import JsonOut, fail, json_to_stdout, write_json
from kontur.errors import KonturError

if TYPE_CHECKING:
    from kontur.release.manifest import Thresholds
    from kontur.release.signing import Trust, VerifiedRelease

__all__ = ["model_app"]

model_app = typer.Typer(
    help="Signed model releases (OpenSSF model signing, ECDSA P-256).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _split(value: str, option: str) -> tuple[str, ...]:
    items = tuple(s.strip() for s in value.split(",") if s.strip())
    if not items:
        fail(f"{option}: expected a comma-separated list, got {value!r}")
    return items


def trust_from_options(pub: Path | None, ca: list[Path] | None) -> Trust:
    """The trust anchor ``--pub KEY`` or ``--ca CERT…`` name; exactly one is required."""
    from kontur.release.signing import Trust

    if (pub is None) == (not ca):
        fail("expected exactly one of --pub or --ca, got " + ("both" if pub else "neither"))
    for option, path in [("--pub", pub), *(("--ca", c) for c in ca or [])]:
        if path is not None and path.exists() and not path.is_file():
            fail(f"{option} {path}: expected a regular file, got a directory, pipe or device")
    return Trust.key(pub) if pub is not None else Trust.ca(*(ca or []))


def expected_name(name: str | None) -> tuple[str, ...]:
    """``--name N`` as the one release name to accept; required (a signature alone says
    nothing about *which* model it covers)."""
    if name is None or not name.strip():
        fail("--name: expected the release name to accept (e.g. --name yolox-nano), got none")
    return (name.strip(),)


_NAME_HELP = "Release name to accept; a release signed under another name is refused."


@model_app.command()
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Directory for the new key files.")],
    ca: Annotated[
        bool, typer.Option("--ca", help="Also make a private CA and a signing certificate.")
    ] = False,
    json_out: JsonOut = None,
) -> None:
    """Make an ECDSA P-256 signing key (and, with --ca, a private CA and a certificate)."""
    from kontur.release import keys

    try:
        if ca:
            authority = keys.make_ca(out)
            pair = keys.issue_signing_cert(authority, out)
        else:
            pair = keys.keygen(out)
    except KonturError as exc:
        fail(str(exc))
    files = {
        "private key": pair.private_key,
        "public key": pair.public_key,
        "certificate": pair.cert,
        "CA certificate": pair.ca_cert,
    }
    for label, path in files.items():
        if path is not None:
            typer.echo(f"{label}: {path}", err=json_to_stdout(json_out))
    if json_out is not None:
        write_json(json_out, {k.replace(" ", "_").lower(): _opt(p) for k, p in files.items()})


def _opt(path: Path | None) -> str | None:
    return None if path is None else str(path)


@model_app.command()
def release(
    models: Annotated[list[Path], typer.Argument(help="MODEL.onnx, or MODEL.xml MODEL.bin.")],
    output_format: Annotated[str, typer.Option("--format", help="yolox | yolov8 | ssd")],
    name: Annotated[str, typer.Option(help="Release name, e.g. yolox-nano.")],
    version: Annotated[int, typer.Option(help="Monotonic version (1 to 2**31 - 1).")],
    key: Annotated[Path, typer.Option(help="Private key (PEM, P-256).")],
    out: Annotated[Path, typer.Option(help="New release directory.")],
    cert: Annotated[
        Path | None, typer.Option(help="Signing certificate (certificate mode).")
    ] = None,
    chain: Annotated[
        list[Path] | None, typer.Option(help="Intermediate certificate(s), repeatable.")
    ] = None,
    score: Annotated[float | None, typer.Option(help="Score threshold.")] = None,
    nms: Annotated[float | None, typer.Option(help="NMS IoU threshold.")] = None,
    critical: Annotated[str, typer.Option(help="Classes that may feed critical decisions.")] = (
        "person"
    ),
    platforms: Annotated[str, typer.Option(help="Platforms the release may run on.")] = (
        "cpu,gpu,npu"
    ),
    valid_days: Annotated[
        float, typer.Option(min=0.001, max=36500, help="Days until expiry (at most 100 years).")
    ] = 365,
    json_out: JsonOut = None,
) -> None:
    """Copy the model into a new release directory, write release.json and sign it."""
    from kontur.clock import SystemClock
    from kontur.release.manifest import MAX_VERSION
    from kontur.release.signing import build_release

    if not 1 <= version <= MAX_VERSION:
        fail(f"--version: expected 1 to {MAX_VERSION}, got {version}")
    try:
        thresholds = _thresholds(output_format, score, nms)
        built = build_release(
            models,
            output_format,
            out,
            name=name,
            version=version,
            key=key,
            cert=cert,
            cert_chain=chain or (),
            thresholds=thresholds,
            critical_classes=_split(critical, "--critical"),
            platforms=_split(platforms, "--platforms"),
            valid_for=timedelta(days=valid_days),
            clock=SystemClock(),
        )
    except KonturError as exc:
        fail(str(exc))  # every failure here is a problem with the inputs: exit 2
    m = built.manifest.manifest
    line = f"release {m.name}@{m.version} {built.digest} -> {built.directory}"
    typer.echo(line, err=json_to_stdout(json_out))
    if json_out is not None:
        doc = {"name": m.name, "version": m.version, "digest": built.digest}
        write_json(json_out, {**doc, "directory": str(built.directory)})


def _thresholds(output_format: str, score: float | None, nms: float | None) -> Thresholds | None:
    from pydantic import ValidationError

    from kontur.release.manifest import Thresholds, preset_thresholds

    if score is None and nms is None:
        return None
    base = preset_thresholds(output_format)
    try:
        return Thresholds(
            score=base.score if score is None else score,
            nms_iou=base.nms_iou if nms is None else nms,
        )
    except ValidationError as exc:
        e = exc.errors()[0]
        fail(f"--score/--nms: expected {e['loc'][0]} in (0, 1), got {e['input']}")


def _report(release: VerifiedRelease) -> dict[str, Any]:
    m = release.manifest.manifest
    audit = m.robustness_audit
    return {
        "valid": True,
        "name": m.name,
        "version": m.version,
        "signer": release.signer,
        "digest": release.digest,
        "files": release.file_digests,
        "audit": None if audit is None else audit.model_dump(mode="json", by_alias=True),
        "error": None,
    }


def _invalid(error: str) -> dict[str, Any]:
    keys = ("name", "version", "signer", "digest", "audit")
    return {"valid": False, **dict.fromkeys(keys), "files": {}, "error": error}


@model_app.command()
def verify(
    directory: Annotated[Path, typer.Argument(help="Release directory.")],
    pub: Annotated[Path | None, typer.Option(help="Public key (key mode).")] = None,
    ca: Annotated[
        list[Path] | None, typer.Option(help="CA certificate(s) to trust (certificate mode).")
    ] = None,
    platform: Annotated[str | None, typer.Option(help="Require this platform.")] = None,
    json_out: JsonOut = None,
    name: Annotated[str | None, typer.Option(help=_NAME_HELP)] = None,
) -> None:
    """Verify a release; exit 0 only when it is valid (1 when invalid, 2 on usage errors)."""
    from kontur.clock import SystemClock
    from kontur.release.signing import verify_release

    trust = trust_from_options(pub, ca)
    names = expected_name(name)
    try:
        release = verify_release(
            directory,
            public_key=trust.public_key,
            ca_certs=trust.ca_certs,
            platform=platform,
            expected_names=names,
            signer_policy=trust.signer_policy,
            clock=SystemClock(),
        )
    except KonturError as exc:
        if json_out is not None:
            write_json(json_out, _invalid(str(exc)))
        fail(str(exc), exc.exit_code)
    except OSError as exc:
        fail(f"release {directory}: expected a readable directory, got {exc.strerror or exc}")
    line = f"valid: {release.model_id} {release.digest} signed by {release.signer}"
    typer.echo(line, err=json_to_stdout(json_out))
    if json_out is not None:
        write_json(json_out, _report(release))


@model_app.command()
def install(
    directory: Annotated[Path, typer.Argument(help="Release directory.")],
    pub: Annotated[Path | None, typer.Option(help="Public key (key mode).")] = None,
    ca: Annotated[
        list[Path] | None, typer.Option(help="CA certificate(s) to trust (certificate mode).")
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(help="Release store (default: $KONTUR_DATA_DIR/releases or XDG data)."),
    ] = None,
    platform: Annotated[str | None, typer.Option(help="Require this platform.")] = None,
    name: Annotated[str | None, typer.Option(help=_NAME_HELP)] = None,
    require_audit: Annotated[
        bool, typer.Option("--require-audit", help="Refuse a release without an audit.")
    ] = False,
    min_rpc: Annotated[
        float, typer.Option(min=0, max=1, help="Lowest audited rPC (mPC / clean AP50) accepted.")
    ] = 0.0,
    max_patch_drop: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Largest audited patch recall drop accepted."),
    ] = None,
    json_out: JsonOut = None,
) -> None:
    """Verify a release and install it write-once; refuses rollback and expired releases,
    and a release whose robustness audit is missing (--require-audit), flagged a trigger, or
    falls below --min-rpc / above --max-patch-drop."""
    from kontur.clock import SystemClock
    from kontur.release.audit import AuditPolicy
    from kontur.release.store import ReleaseStore, default_store_root

    trust = trust_from_options(pub, ca)
    names = expected_name(name)
    root = store or default_store_root()
    policy = AuditPolicy(required=require_audit, min_rpc=min_rpc, max_patch_drop=max_patch_drop)
    try:
        release = ReleaseStore(root).install(
            directory,
            trust,
            SystemClock(),
            expected_names=names,
            platform=platform,
            audit_policy=policy,
        )
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    except OSError as exc:
        fail(f"store {root}: expected a writable directory, got {exc.strerror or exc}")
    line = f"installed: {release.model_id} {release.digest} in {root}"
    typer.echo(line, err=json_to_stdout(json_out))
    if json_out is not None:
        write_json(json_out, {**_report(release), "installed": True, "store": str(root)})
