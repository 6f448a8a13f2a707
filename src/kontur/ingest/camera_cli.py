"""``kontur camera …``: the site CA and the camera inventory (ADR 0013).

Mounted by :mod:`kontur.cli` as ``app.add_typer(camera_app, name="camera")``. Every failure
prints one line ``kontur: error: …`` on stderr and exits non-zero, never a traceback: 2 for a
usage problem (bad id, profile, PEM file, options), 1 when the inventory refuses (duplicate
enrolment, unknown camera, second revocation, a chain that does not verify to the site CA).

Each change is committed to ``inventory.sqlite`` first (the running ingest sees it on its next
GOP), then appended to the archive as a ``camera`` record. When a running perimeter holds the
archive, the change stays in the inventory's outbox and the perimeter archives it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from kontur._cli import DataDirOpt, JsonOut, err, fail, human, write_json
from kontur.errors import KonturError

__all__ = ["camera_app"]

camera_app = typer.Typer(
    help="Camera inventory and site CA (signed video enrolment).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_T = TypeVar("_T")

DataDir = DataDirOpt
#: X.509 caps a common name at 64 (RFC 5280's ub-common-name; `cryptography` counts bytes).
CA_NAME_MAX = 64


def _guarded(action: Callable[[], _T]) -> _T:
    """Run ``action``; a kontur or SQLite error becomes one error line."""
    try:
        return action()
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    except sqlite3.Error as exc:
        fail(f"expected a usable inventory database, got {' '.join(str(exc).split())}", 1)
    except OSError as exc:
        fail(f"{exc.filename or 'file'}: {exc.strerror or exc}", 2)


def _data_dir(data_dir: Path | None) -> Path:
    from kontur.ingest.inventory import default_data_dir

    return data_dir if data_dir is not None else default_data_dir()


def _archive_changes(data_dir: Path) -> None:
    """Append the inventory's pending events to the archive, unless a perimeter holds it."""
    from kontur.archive import Archive, ArchiveError, ArchiveLocked
    from kontur.ingest.inventory import Inventory

    try:
        with Inventory.open(data_dir) as inv, Archive.open(data_dir) as archive:
            inv.drain_to_archive(archive)
    except ArchiveLocked:
        err.print(
            "note: the archive is held by a running perimeter; it archives this change itself",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    except ArchiveError as exc:
        fail(f"the change is in effect, but the archive did not record it: {exc}", 1)


@camera_app.command("init-ca")
def init_ca(
    data_dir: DataDir = None,
    name: Annotated[str, typer.Option(help="Common name of the site CA.")] = "kontur site CA",
    import_cert: Annotated[
        Path | None,
        typer.Option(
            "--import",
            help="Adopt an existing CA certificate (PEM, no key) instead: kontur then verifies "
            "camera chains to it but cannot issue camera keys.",
        ),
    ] = None,
    json_out: JsonOut = None,
) -> None:
    """Create the site CA (ECDSA P-256, self-signed; key file mode 0600), or import one."""
    from kontur.ingest.freshness import fingerprint
    from kontur.ingest.inventory import CA_CERT_NAME, Inventory

    ddir = _data_dir(data_dir)
    size = len(name.encode())  # X.509 counts the UTF-8 bytes
    if not 1 <= size <= CA_NAME_MAX or not name.isprintable():
        shown = repr(name[:40]) + ("…" if len(name) > 40 else "")
        fail(
            f"--name: expected printable text of 1 to {CA_NAME_MAX} bytes in UTF-8, got "
            f"{size} bytes: {shown}"
        )
    pem = _guarded(lambda: _read_file(import_cert, "--import")) if import_cert is not None else None

    def run() -> str:
        from cryptography.hazmat.primitives.serialization import Encoding

        with Inventory.open(ddir) as inv:
            cert = inv.import_ca(pem) if pem is not None else inv.init_ca(name=name)
        return fingerprint(cert.public_bytes(Encoding.DER))

    fp = _guarded(run)
    _guarded(lambda: _archive_changes(ddir))
    human(json_out).print(
        f"site CA {ddir / CA_CERT_NAME} sha256:{fp}", markup=False, highlight=False, soft_wrap=True
    )
    if json_out is not None:
        doc = {"data_dir": str(ddir), "ca_cert": str(ddir / CA_CERT_NAME), "ca_sha256": fp}
        write_json(json_out, {**doc, "imported": pem is not None})


@camera_app.command()
def enroll(
    camera_id: Annotated[str, typer.Argument(metavar="ID", help="Camera id [A-Za-z0-9_.-].")],
    cert: Annotated[
        Path | None, typer.Option("--cert", help="PEM chain, leaf first, to the site CA.")
    ] = None,
    issue: Annotated[
        bool, typer.Option("--issue", help="Issue a new camera key and leaf (needs --out).")
    ] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where --issue writes ID.key and ID.pem.")
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="Enrolled profile: codec,WxH,fps.")
    ] = None,
    signing_required: Annotated[
        bool, typer.Option("--signing-required", help="Unsigned GOPs are UNSIGNED (deny).")
    ] = False,
    critical: Annotated[bool, typer.Option("--critical", help="Mark the camera critical.")] = False,
    tls_pin: Annotated[
        str | None,
        typer.Option(
            "--tls-pin",
            help="RTSPS: pin the camera's TLS server certificate (sha256:HEX of its DER) "
            "instead of checking its chain to the site CA.",
        ),
    ] = None,
    tls_client: Annotated[
        bool,
        typer.Option(
            "--tls-client",
            help="RTSPS: issue kontur a client certificate for this camera (site CA; key "
            "0600 in DATA_DIR/rtsps), for cameras that demand mutual TLS.",
        ),
    ] = False,
    data_dir: DataDir = None,
    json_out: JsonOut = None,
) -> None:
    """Enrol a camera whose certificate chain verifies to the site CA."""
    from kontur.ingest.inventory import Inventory, check_camera_id, parse_profile
    from kontur.ingest.tls import parse_sha256

    if cert is not None and issue:
        fail("expected --cert CHAIN.pem or --issue, got both")
    if cert is None and not issue:
        fail("expected --cert CHAIN.pem or --issue --out DIR, got neither")
    if issue and out_dir is None:
        fail("--issue: expected --out DIR for the new key and certificate, got none")
    if not issue and out_dir is not None:
        fail("--out: expected only with --issue, got it with --cert")
    _guarded(lambda: check_camera_id(camera_id))
    prof = _guarded(lambda: parse_profile(profile)) if profile is not None else None
    if tls_pin is not None:
        try:
            parse_sha256(tls_pin)
        except ValueError as exc:
            fail(f"--tls-pin: {exc}")
    ddir = _data_dir(data_dir)

    def run() -> tuple[Any, Path | None]:
        with Inventory.open(ddir) as inv:
            key_path = None
            chain_path = cert
            if issue:
                assert out_dir is not None
                issued = inv.issue(camera_id, out_dir)
                key_path, chain_path = issued.key_path, issued.chain_path
            assert chain_path is not None
            pem = _read_file(chain_path, "--cert")
            cam = inv.enroll(
                camera_id, pem, profile=prof, signing_required=signing_required, critical=critical
            )
            if tls_pin is not None or tls_client:
                inv.set_rtsps(camera_id, server_sha256=tls_pin, issue_client=tls_client)
                rtsps.update(_rtsps_row(inv.rtsps_trust(camera_id)))
        return cam, key_path

    rtsps: dict[str, Any] = {}

    cam, key_path = _guarded(run)
    _guarded(lambda: _archive_changes(ddir))
    console = human(json_out)
    if key_path is not None:
        console.print(
            f"issued {key_path} (mode 0600)", markup=False, highlight=False, soft_wrap=True
        )
    console.print(
        f"enrolled {cam.camera_id} {cam.subject} key sha256:{cam.key_fingerprint}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if rtsps.get("client_cert"):
        console.print(
            f"issued RTSPS client certificate {rtsps['client_cert']} (key mode 0600)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if json_out is not None:
        issued = None if key_path is None else str(key_path)
        doc = {"data_dir": str(ddir), "camera": _row(cam), "issued_key": issued}
        write_json(json_out, {**doc, "rtsps": rtsps or None})


def _rtsps_row(trust: Any) -> dict[str, Any]:
    """The RTSPS settings shown for a camera: fingerprints and paths, never key bytes."""
    if trust is None:
        return {}
    return {
        "server_check": "pin" if trust.server_sha256 else "site-ca",
        "server_sha256": trust.server_sha256,
        "client_cert": str(trust.client_cert) if trust.client_cert else None,
    }


@camera_app.command("list")
def list_cameras(json_out: JsonOut = None, data_dir: DataDir = None) -> None:
    """List enrolled cameras (revoked ones included)."""
    from kontur.ingest.inventory import INVENTORY_DB, Inventory

    ddir = _data_dir(data_dir)

    def run() -> list[dict[str, Any]]:
        with Inventory.open(ddir) as inv:
            return [_row(c) for c in inv.cameras()]

    # a listing makes nothing: a mistyped --data-dir is said, not made into a new site
    absent = not ddir.exists() or (ddir.is_dir() and not (ddir / INVENTORY_DB).exists())
    rows = [] if absent else _guarded(run)
    if absent:
        human(json_out).print(
            f"no inventory in {ddir} (no camera was ever enrolled there)",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    else:
        _print_rows(rows, human(json_out))
    if json_out is not None:
        write_json(json_out, {"data_dir": str(ddir), "inventory": not absent, "cameras": rows})


def _print_rows(rows: list[dict[str, Any]], console: Console) -> None:
    if not rows:
        console.print("no cameras enrolled", markup=False, highlight=False, soft_wrap=True)
    for r in rows:
        state = (
            f"revoked {r['revoked_at']} ({r['revoked_reason']})" if r["revoked_at"] else "active"
        )
        flags = ",".join(f for f in ("signing_required", "critical") if r[f]) or "-"
        console.print(
            f"{r['id']}  {r['subject']}  sha256:{r['key_sha256'][:16]}  "
            f"{r['profile'] or '-'}  {flags}  {state}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@camera_app.command("tls")
def tls_settings(
    camera_id: Annotated[str, typer.Argument(metavar="ID", help="Camera id.")],
    pin: Annotated[
        str | None,
        typer.Option("--pin", help="Pin the camera's TLS server certificate: sha256:HEX."),
    ] = None,
    issue_client: Annotated[
        bool,
        typer.Option("--issue-client", help="Issue kontur's RTSPS client certificate for it."),
    ] = False,
    data_dir: DataDir = None,
    json_out: JsonOut = None,
) -> None:
    """Set a camera's RTSPS trust (ADR 0037): pin its certificate, issue kontur's client one.

    Without options, show it. The site CA is checked when no pin is set.
    """
    from kontur.ingest.inventory import Inventory, check_camera_id
    from kontur.ingest.tls import parse_sha256

    _guarded(lambda: check_camera_id(camera_id))
    if pin is not None:
        try:
            parse_sha256(pin)
        except ValueError as exc:
            fail(f"--pin: {exc}")
    ddir = _data_dir(data_dir)

    def run() -> dict[str, Any]:
        with Inventory.open(ddir) as inv:
            if pin is not None or issue_client:
                inv.set_rtsps(camera_id, server_sha256=pin, issue_client=issue_client)
            return _rtsps_row(inv.rtsps_trust(camera_id))

    row = _guarded(run)
    if pin is not None or issue_client:
        _guarded(lambda: _archive_changes(ddir))
    check = row.get("server_check") or "none (no site CA, no pin: rtsps:// is refused)"
    text = f"{camera_id} rtsps: server check {check}"
    if row.get("server_sha256"):
        text += f" sha256:{row['server_sha256']}"
    text += f", client certificate {row.get('client_cert') or 'none'}"
    human(json_out).print(text, markup=False, highlight=False, soft_wrap=True)
    if json_out is not None:
        write_json(json_out, {"data_dir": str(ddir), "camera_id": camera_id, "rtsps": row or None})


@camera_app.command()
def revoke(
    camera_id: Annotated[str, typer.Argument(metavar="ID", help="Camera id.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded).")] = None,
    data_dir: DataDir = None,
    json_out: JsonOut = None,
) -> None:
    """Revoke a camera, irreversibly: its next GOP is REVOKED."""
    from kontur.ingest.inventory import Inventory, check_camera_id

    if reason is None:
        fail("--reason: expected the reason for the revocation, got none")
    _guarded(lambda: check_camera_id(camera_id))
    ddir = _data_dir(data_dir)

    def run() -> Any:
        with Inventory.open(ddir) as inv:
            return inv.revoke(camera_id, reason)

    cam = _guarded(run)
    _guarded(lambda: _archive_changes(ddir))
    human(json_out).print(
        f"revoked {cam.camera_id} at {cam.revoked_at.isoformat()}: {cam.revoked_reason}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if json_out is not None:
        write_json(json_out, {"data_dir": str(ddir), "camera": _row(cam)})


def _row(cam: Any) -> dict[str, Any]:
    return {
        "id": cam.camera_id,
        "subject": cam.subject,
        "key_sha256": cam.key_fingerprint,
        "profile": str(cam.profile) if cam.profile else None,
        "signing_required": cam.signing_required,
        "critical": cam.critical,
        "enrolled_at": cam.enrolled_at.isoformat(),
        "revoked_at": cam.revoked_at.isoformat() if cam.revoked_at else None,
        "revoked_reason": cam.revoked_reason,
    }


def _read_file(path: Path, option: str) -> bytes:
    from kontur.ingest.inventory import InventoryInputError

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InventoryInputError(
            f"{option} {path}: expected a readable file, got {exc.strerror}"
        ) from None
    if len(data) > 1_000_000:
        raise InventoryInputError(
            f"{option} {path}: expected at most 1 MB of PEM, got {len(data)} bytes"
        )
    return data
