"""Write an evidence bundle for one camera's time span, and log the export (the I/O shell).

:func:`export_bundle` takes these steps, in this order:

1. open the archive for writing (its flock: a running perimeter holds it, and the export is
   refused; one writer) and, next to it, read-only;
2. take the newest stored signed checkpoint (the export never signs one itself: the site
   service will export while the perimeter writes) and plan the span
   (:func:`~kontur.evidence.plan.plan_export`); no checkpoint covering the plan, no export;
3. prove every record against that one checkpoint, read every segment (a segment removed by
   retention stops the export), the camera's certificates from the inventory, and remux the
   segments into ``clip.mp4``;
4. write the zip to a temporary file next to ``--out`` and fsync it;
5. append the ``export`` record (who, camera, span, the bundle's SHA-256) and flush it;
6. only then move the bundle into place: no bundle exists that the archive does not name.

A crash between 5 and 6 leaves an export record without a bundle (the attempt stays on the
record); a crash before 5 leaves no bundle.

The running site (``POST /exports``, :mod:`kontur.runtime.exports`) cannot open the archive a
second time: its supervisor is the writer. It uses the same steps in pieces, with its own
open archive: :func:`prepare_export` (steps 2-3, on a read-only view, off the supervisor's
loop), :func:`bundle_bytes` and :func:`log_export` (the record's index is the next one, so
both run where the archive is appended to), then :func:`place_bundle` (step 6).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kontur._private import fsync_dir
from kontur.archive import (
    Archive,
    ArchiveCorrupt,
    Checkpoint,
    Record,
    Signing,
    open_checkpoint,
    verify_inclusion,
)
from kontur.evidence.clip import clip_stream, write_mp4
from kontur.evidence.errors import ExportError
from kontur.evidence.manifest import (
    CHECKPOINT_NAME,
    CLIP_NAME,
    KEY_NAME,
    MANIFEST_NAME,
    README_NAME,
    RECORDS_NAME,
    BundleRecord,
    CheckpointRef,
    FileEntry,
    FileRole,
    GopEntry,
    Manifest,
    RecordProof,
    RecordScope,
    Span,
    segment_name,
)
from kontur.evidence.plan import ExportPlan, plan_export
from kontur.evidence.readme import readme_text
from kontur.evidence.verify import CAMERA_CERT, SITE_CA_CERT

__all__ = [
    "ExportRequest",
    "ExportResult",
    "PreparedExport",
    "bundle_bytes",
    "export_bundle",
    "log_export",
    "place_bundle",
    "prepare_export",
]


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export, where to, and who asks."""

    data_dir: Path
    camera: str
    start: float
    end: float
    out: Path
    by: str
    key_path: Path | None = None
    """The archive's checkpoint key (the writer needs it), default ``DATA_DIR/archive.key``."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The bundle written and the record that logs it."""

    bundle: Path
    sha256: str
    size: int
    manifest: Manifest
    export_record: int

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        m = self.manifest
        return {
            "bundle": str(self.bundle),
            "sha256": self.sha256,
            "size": self.size,
            "camera": m.camera,
            "span": m.span.to_json(),
            "gops": [g.gop_index for g in m.gops],
            "records": len(m.records),
            "checkpoint_size": m.checkpoint.size,
            "origin": m.origin,
            "key": m.key,
            "export_record": self.export_record,
        }


@dataclass(frozen=True, slots=True)
class PreparedExport:
    """Steps 2-3 done: the manifest (its ``export_record`` not yet known) and the members."""

    manifest: Manifest
    members: dict[str, tuple[bytes, FileRole]]


def export_bundle(request: ExportRequest, now: float) -> ExportResult:
    """Export (the module's steps); raises ExportError, ArchiveLocked or another KonturError."""
    out = request.out
    if out.exists() or out.is_symlink():
        raise ExportError(f"--out {out}: expected no file there, got one")
    if not out.parent.is_dir():
        raise ExportError(f"--out {out}: expected an existing directory, got {out.parent}")
    if not (request.data_dir / "archive.sqlite").exists():
        raise ExportError(f"{request.data_dir}: expected an archive, got no archive.sqlite")
    signing = Signing(key_path=request.key_path)
    with Archive.open(request.data_dir, signing=signing) as writer:
        _remove_stale_temps(out)  # under the writer lock: no export of ours is mid-way
        with Archive.open_readonly(request.data_dir) as reader:
            prepared = prepare_export(reader, request, now)
        manifest = dataclasses.replace(prepared.manifest, export_record=writer.records)
        readme = readme_text(manifest, out.name).encode("utf-8")
        tmp = _write_zip(out, now, manifest, readme, prepared.members)
        try:
            sha, size = _digest(tmp)
            record = log_export(writer, request, manifest, sha, size)
            os.replace(tmp, out)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
    fsync_dir(out.parent)
    return ExportResult(out, sha, size, manifest, record.index)


def _remove_stale_temps(out: Path) -> None:
    """Delete temporary bundles an export killed before its rename left next to ``out``.

    They are never evidence: a half zip, a bundle no record names, or (killed after its
    record) a copy the re-run replaces; the archive's ``export`` records say what was made.
    """
    for stale in out.parent.glob(f".{out.name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def bundle_bytes(
    prepared: PreparedExport, export_index: int, out_name: str, now: float
) -> tuple[bytes, Manifest]:
    """Step 4 in memory: the zip whose manifest names ``export_index`` as its record."""
    manifest = dataclasses.replace(prepared.manifest, export_record=export_index)
    readme = readme_text(manifest, out_name).encode("utf-8")
    buf = io.BytesIO()
    _zip_into(buf, now, manifest, readme, prepared.members)
    return buf.getvalue(), manifest


def log_export(
    writer: Archive, request: ExportRequest, manifest: Manifest, sha: str, size: int
) -> Record:
    """Step 5: append the ``export`` record and commit it."""
    record = writer.append("export", _log_payload(request, manifest, sha, size))
    writer.flush()
    return record


def place_bundle(data: bytes, out: Path, mode: int = 0o400) -> None:
    """Step 6 for a bundle built in memory: a temporary file next to ``out``, fsynced, given
    ``mode``, moved into place, the directory fsynced. Refuses to replace a file."""
    if out.exists() or out.is_symlink():
        raise ExportError(f"{out}: expected no file there, got one")
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(out.parent)


def _log_payload(request: ExportRequest, m: Manifest, sha: str, size: int) -> dict[str, Any]:
    return {
        "camera": m.camera,
        "from": m.span.start,
        "to": m.span.end,
        "by": request.by,
        "bundle": request.out.name,
        "bundle_sha256": sha,
        "bundle_size": size,
        "checkpoint_size": m.checkpoint.size,
        "first_index": m.span.first_index,
        "last_index": m.span.last_index,
        "gops": [g.gop_index for g in m.gops],
    }


def _checkpoint(reader: Archive) -> tuple[Checkpoint, str]:
    """The newest stored checkpoint, verified against this archive's key and tree."""
    stored = reader.checkpoints()
    if not stored:
        raise ExportError(
            f"{reader.data_dir}: expected a signed checkpoint, got none: stop the perimeter "
            "(closing the archive signs one) or wait for its first checkpoint"
        )
    size, _at, note = stored[-1]
    cp = open_checkpoint(note, reader.verifier_key)
    if cp.size != size or cp.root != reader.root_at(size):
        raise ArchiveCorrupt(
            f"checkpoint {size}: expected the root of the stored tree, got another "
            "(run `kontur archive verify`)"
        )
    return cp, note


def prepare_export(reader: Archive, request: ExportRequest, now: float) -> PreparedExport:
    """Steps 2-3: plan, prove, read, remux (``reader``: the archive, read-only suffices)."""
    cp, note = _checkpoint(reader)
    records = list(reader.iter_records())
    plan = plan_export(records, request.camera, request.start, request.end, cp.size)
    chosen = [records[i] for i in (*plan.anchors, *range(plan.first, plan.last + 1))]
    proofs = [_proof(reader, r, cp, plan) for r in chosen]
    lines = b"".join(
        BundleRecord(r.index, r.kind, r.at, r.payload_bytes, r.hash).to_json() for r in chosen
    )
    segments = _segments(reader, plan)
    per_gop = [[segments[s.sha256] for s in g.segments] for g in plan.gops]
    members: dict[str, tuple[bytes, FileRole]] = {
        CHECKPOINT_NAME: (note.encode("utf-8"), FileRole.CHECKPOINT),
        KEY_NAME: (f"{reader.verifier_key}\n".encode("ascii"), FileRole.KEY),
        RECORDS_NAME: (lines, FileRole.RECORDS),
        **_certificates(request.data_dir, request.camera),
        CLIP_NAME: (write_mp4(clip_stream(per_gop)), FileRole.CLIP),
        **{segment_name(sha): (data, FileRole.SEGMENT) for sha, data in segments.items()},
    }
    manifest = Manifest(
        origin=reader.origin,
        key=str(reader.verifier_key),
        checkpoint=CheckpointRef(cp.size, cp.root.hex()),
        camera=request.camera,
        span=Span(request.start, request.end, plan.first, plan.last),
        created_at=now,
        created_by=request.by,
        export_record=0,  # the record's index, filled in when it is known (step 4)
        gops=tuple(GopEntry(g.gop_index, g.role, g.segments, g.verdict) for g in plan.gops),
        files=tuple(_entry(name, data, role) for name, (data, role) in members.items()),
        records=tuple(proofs),
    )
    return PreparedExport(manifest, members)


def _proof(reader: Archive, record: Record, cp: Checkpoint, plan: ExportPlan) -> RecordProof:
    path = reader.inclusion_proof(record.index, cp.size)
    verify_inclusion(bytes.fromhex(record.hash), record.index, cp.size, path, cp.root)
    scope = RecordScope.RANGE if plan.first <= record.index <= plan.last else RecordScope.ANCHOR
    return RecordProof(record.index, record.kind, record.hash, tuple(h.hex() for h in path), scope)


def _segments(reader: Archive, plan: ExportPlan) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for gop in plan.gops:
        for seg in gop.segments:
            if seg.sha256 in out:
                continue
            try:
                out[seg.sha256] = reader.segments.read(seg.sha256)
            except ArchiveCorrupt as exc:
                raise ExportError(
                    f"GOP {gop.gop_index} of camera {plan.camera}: expected its segment "
                    f"(record {seg.record}), got: {exc} (removed by retention, or damaged: "
                    "see `kontur archive verify`)"
                ) from None
    return out


def _certificates(data_dir: Path, camera: str) -> dict[str, tuple[bytes, FileRole]]:
    """The site CA and the camera's leaf + CA chain from the inventory (none if absent)."""
    from kontur.ingest.inventory import INVENTORY_DB, Inventory, SiteCaMissing

    if not (data_dir / INVENTORY_DB).exists():
        return {}
    with Inventory.open(data_dir) as inv:
        cam = inv.camera(camera)
        try:
            ca_der: bytes | None = inv.site_ca_der()
        except SiteCaMissing:
            ca_der = None
    out: dict[str, tuple[bytes, FileRole]] = {}
    ca_pem = _pem(ca_der) if ca_der is not None else b""
    if ca_pem:
        out[SITE_CA_CERT] = (ca_pem, FileRole.CERTIFICATE)
    if cam is not None:
        out[CAMERA_CERT] = (_pem(cam.leaf_der) + ca_pem, FileRole.CERTIFICATE)
    return out


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def _entry(name: str, data: bytes, role: FileRole) -> FileEntry:
    return FileEntry(name, hashlib.sha256(data).hexdigest(), len(data), role)


def _write_zip(
    out: Path,
    now: float,
    manifest: Manifest,
    readme: bytes,
    members: dict[str, tuple[bytes, FileRole]],
) -> Path:
    """The bundle in a temporary file next to ``out``, fsynced (see :func:`_zip_into`)."""
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            _zip_into(f, now, manifest, readme, members)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _zip_into(
    f: IO[bytes],
    now: float,
    manifest: Manifest,
    readme: bytes,
    members: dict[str, tuple[bytes, FileRole]],
) -> None:
    """The zip (stored, not compressed: video does not compress): README first, then the
    manifest, then the listed files."""
    when = dt.datetime.fromtimestamp(max(now, 315532800.0), dt.UTC)  # zip starts at 1980
    stamp = (when.year, when.month, when.day, when.hour, when.minute, when.second)
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        entries = [(README_NAME, readme), (MANIFEST_NAME, manifest.to_bytes())]
        entries += [(n, data) for n, (data, _) in members.items()]
        for member, data in entries:
            info = zipfile.ZipInfo(member, date_time=stamp)
            info.external_attr = 0o444 << 16
            zf.writestr(info, data)


def _digest(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size
