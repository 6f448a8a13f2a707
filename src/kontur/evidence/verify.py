"""Verify an evidence bundle offline: the pure core of ``kontur archive verify-export``.

The core is fed the bundle's members through a :class:`BundleSource` (the shell opens the
zip), an optional pinned archive key and an explicit ``reference_time``; it reads no clock,
no network and nothing outside the bundle. Nothing the unsigned manifest says is believed:
each fact is re-derived from the signed checkpoint, the inclusion proofs, the hashes the
records carry, or the camera's own Media Signing.

Steps, in this order (a step that cannot be trusted stops the ones after it):

1. **manifest** parses (else :class:`~kontur.evidence.errors.BundleInputError`: exit 2);
   every file it lists is there with its size and SHA-256, and nothing else is
   (``manifest_mismatch``);
2. **key**: the manifest's archive key is the pinned one (``other_archive_key``, stop);
3. **checkpoint**: it carries a signature line by that key (else ``other_archive_key``,
   stop) and the signature verifies (else ``checkpoint_forged``, stop);
4. **records**: each record's leaf is the hash of its index, kind, time and payload bytes
   (``record_changed``) and its audit path leads to the checkpoint's root at the
   checkpoint's size (``proof_other_tree``); the range ``first..last`` holds every index,
   starts at record 0 or before the span and ends at the tree's end or after it
   and holds every segment and verdict record the clip names (``record_removed``: a removed
   record, e.g. a decision, leaves a gap or a cut edge);
5. **decisions**: every decision of the camera names GOPs whose verdict and segments are in
   the bundle, and a frame inside them (``decision_dangling``);
6. **bindings**: each segment of the clip is named by a proven ``segment`` record of that
   camera and GOP, and no segment record of the clip's GOPs is left out (``clip_swapped``);
   each span GOP has its proven verdict (``record_removed``);
7. **certificates**: the bundled site CA and camera leaf are those the proven ``camera``
   records name (``certificate_mismatch``);
8. **video**: the segments and ``clip.mp4`` are each validated with ONVIF Media Signing
   (:mod:`kontur.evidence.media`, the bundled site CA as trust anchor). A GOP whose result
   is worse than the one the archive logged is ``frame_changed``; video that validates but
   is not the logged video (other bytes than the logged segment, other NAL units than the
   segments, another GOP hash, counter or signing key) is ``clip_swapped``; a signer chain
   that no longer verifies to the bundled CA is ``certificate_mismatch``.

The report's ``reason`` is the first failure found, so the headline names the cause.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import IO, Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kontur.archive import (
    Checkpoint,
    CheckpointError,
    ProofError,
    VerifierKey,
    entry_leaf,
    note_signers,
    open_checkpoint,
    verify_inclusion,
)
from kontur.evidence.clip import CODECS, Mp4Clip, clip_stream, read_mp4, units_of_segments
from kontur.evidence.errors import BundleInputError, ExportError
from kontur.evidence.manifest import (
    CERT_DIR,
    CHECKPOINT_NAME,
    CLIP_NAME,
    KEY_NAME,
    MANIFEST_NAME,
    README_NAME,
    RECORDS_NAME,
    BundleRecord,
    GopEntry,
    GopRole,
    Manifest,
    RecordScope,
    segment_name,
)
from kontur.evidence.media import Unit, starts_gop, validate_clip
from kontur.ingest.oms.errors import OmsError
from kontur.ingest.oms.nal import Codec, parse_extradata
from kontur.ingest.oms.validator import SignedGopResult

__all__ = [
    "CAMERA_CERT",
    "SITE_CA_CERT",
    "BundleSource",
    "Failure",
    "GopCheck",
    "Reason",
    "VerifyReport",
    "verify_bundle",
]

SITE_CA_CERT = f"{CERT_DIR}site-ca.pem"
CAMERA_CERT = f"{CERT_DIR}camera.pem"

_SEVERITY = {"authentic": 0, "pending": 1, "missing": 2, "unsigned": 3, "not_authentic": 4}


class Reason(StrEnum):
    """Why a bundle does not check out; each attack the bundle is built to show has its own.

    Declared in order of precedence: the report's headline is the first that occurred (a
    swapped clip also fails Media Signing where its GOPs do not line up; the swap is the
    cause).
    """

    OTHER_ARCHIVE_KEY = "other_archive_key"
    CHECKPOINT_FORGED = "checkpoint_forged"
    RECORD_CHANGED = "record_changed"
    PROOF_OTHER_TREE = "proof_other_tree"
    RECORD_REMOVED = "record_removed"
    DECISION_DANGLING = "decision_dangling"
    CERTIFICATE_MISMATCH = "certificate_mismatch"
    CLIP_SWAPPED = "clip_swapped"
    FRAME_CHANGED = "frame_changed"
    MANIFEST_MISMATCH = "manifest_mismatch"


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed check: its reason code and what was expected and found."""

    reason: Reason
    detail: str

    def to_json(self) -> dict[str, str]:
        """The JSON form."""
        return {"reason": self.reason.value, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class GopCheck:
    """One GOP of the clip: what the archive logged and what Media Signing says now."""

    gop_index: int
    role: str
    logged: str | None
    """The logged verdict (``AUTHENTIC``, ``REPLAYED``…), None without a verdict record."""
    logged_signature: str | None
    """The logged Media Signing result (``authentic``…)."""
    segments: str | None
    """Media Signing of the segments now."""
    clip: str | None
    """Media Signing of ``clip.mp4`` now."""


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of verifying one bundle."""

    failures: tuple[Failure, ...]
    origin: str
    key: str
    key_pinned: bool
    checkpoint_size: int | None
    camera: str
    span: dict[str, Any]
    records: int
    gops: tuple[GopCheck, ...]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return not self.failures

    @property
    def reason(self) -> str | None:
        """The headline: the first failure's reason code, None when the bundle is intact."""
        return self.failures[0].reason.value if self.failures else None

    def reasons(self) -> set[str]:
        """Every reason code that occurred."""
        return {f.reason.value for f in self.failures}

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "ok": self.ok,
            "reason": self.reason,
            "failures": [f.to_json() for f in self.failures],
            "origin": self.origin,
            "key": self.key,
            "key_pinned": self.key_pinned,
            "checkpoint_size": self.checkpoint_size,
            "camera": self.camera,
            "span": self.span,
            "records": self.records,
            "gops": [
                {
                    "gop_index": g.gop_index,
                    "role": g.role,
                    "logged": g.logged,
                    "logged_signature": g.logged_signature,
                    "segments": g.segments,
                    "clip": g.clip,
                }
                for g in self.gops
            ],
            "notes": list(self.notes),
        }


class BundleSource(Protocol):
    """Read-only access to the members of a bundle."""

    def names(self) -> list[str]:
        """Every member name."""
        ...

    def size(self, name: str) -> int:
        """A member's size in bytes (uncompressed)."""
        ...

    def read(self, name: str) -> bytes:
        """A member's bytes; KeyError when there is no such member."""
        ...

    def open(self, name: str) -> IO[bytes]:
        """A member as a seekable binary file."""
        ...


@dataclass
class _Acc:
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, reason: Reason, detail: str) -> None:
        self.failures.append(Failure(reason, detail))


def verify_bundle(
    source: BundleSource, *, pinned: VerifierKey | None, reference_time: datetime
) -> VerifyReport:
    """Run the steps of the module docstring; raises BundleInputError for a non-bundle."""
    if MANIFEST_NAME not in source.names():
        raise BundleInputError(f"expected {MANIFEST_NAME} in the bundle, got none")
    manifest = Manifest.from_json(source.read(MANIFEST_NAME))
    acc = _Acc()
    _files(source, manifest, acc)
    vkey = _key(source, manifest, pinned, acc)
    cp = _checkpoint(source, manifest, vkey, acc) if vkey is not None else None
    proven: dict[int, BundleRecord] = {}
    gops: list[GopCheck] = []
    if cp is not None:
        proven = _records(source, manifest, cp, acc)
        _range(manifest, proven, cp, acc)
        _decisions(manifest, proven, acc)
        verdicts = _bindings(manifest, proven, acc)
        anchors = _certificates(source, manifest, proven, acc)
        gops = _video(source, manifest, verdicts, anchors, reference_time, acc)
    if pinned is None:
        acc.notes.append(
            "archive key not pinned: the bundle is checked against the key it names; "
            "pass --pin-key with the key the site published to bind it to that archive"
        )
    order = list(Reason)
    return VerifyReport(
        failures=tuple(sorted(acc.failures, key=lambda f: order.index(f.reason))),
        origin=manifest.origin,
        key=manifest.key,
        key_pinned=pinned is not None,
        checkpoint_size=cp.size if cp is not None else None,
        camera=manifest.camera,
        span=manifest.span.to_json(),
        records=len(proven),
        gops=tuple(gops),
        notes=tuple(acc.notes),
    )


def _files(source: BundleSource, manifest: Manifest, acc: _Acc) -> None:
    """Step 1: the files are the ones listed, with their sizes and hashes."""
    listed = {f.name for f in manifest.files}
    if len(listed) != len(manifest.files):
        acc.fail(Reason.MANIFEST_MISMATCH, "expected each file listed once, got duplicates")
    names = set(source.names())
    for entry in manifest.files:
        if entry.name not in names:
            acc.fail(Reason.MANIFEST_MISMATCH, f"{entry.name}: expected in the bundle, got none")
            continue
        size = source.size(entry.name)
        digest = _sha256(source.open(entry.name)) if size == entry.size else None
        if digest != entry.sha256:
            got = f"{size} bytes" if digest is None else f"sha256 {digest[:16]}…"
            acc.fail(
                Reason.MANIFEST_MISMATCH,
                f"{entry.name}: expected {entry.size} bytes, sha256 {entry.sha256[:16]}…, "
                f"got {got}",
            )
    for extra in sorted(names - listed - {MANIFEST_NAME, README_NAME}):
        acc.fail(Reason.MANIFEST_MISMATCH, f"{extra}: expected no file the manifest omits")


def _sha256(file: IO[bytes]) -> str:
    h = hashlib.sha256()
    with file:
        while chunk := file.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _key(
    source: BundleSource, manifest: Manifest, pinned: VerifierKey | None, acc: _Acc
) -> VerifierKey | None:
    """Step 2: the manifest's key parses, matches its origin and key file, and the pin."""
    try:
        vkey = VerifierKey.parse(manifest.key)
    except CheckpointError as exc:
        raise BundleInputError(f"manifest key: {exc}") from None
    if vkey.name != manifest.origin:
        acc.fail(
            Reason.MANIFEST_MISMATCH,
            f"manifest: expected the key named after origin {manifest.origin}, got {vkey.name}",
        )
    key_file = _text(source, KEY_NAME).strip()
    if key_file != manifest.key:
        acc.fail(
            Reason.MANIFEST_MISMATCH,
            f"{KEY_NAME}: expected the manifest's key, got {key_file[:60]!r}",
        )
    if pinned is not None and pinned != vkey:
        acc.fail(
            Reason.OTHER_ARCHIVE_KEY,
            f"expected archive key {pinned.name} (key id {pinned.key_id.hex()}), got "
            f"{vkey.name} (key id {vkey.key_id.hex()})",
        )
        return None
    return vkey


def _text(source: BundleSource, name: str) -> str:
    try:
        return source.read(name).decode("utf-8")
    except KeyError:
        return ""
    except UnicodeDecodeError:
        return "\ufffd"


def _signers(note: str) -> list[tuple[str, bytes]]:
    """``(key name, key id)`` of each signature line (none if the note is malformed)."""
    try:
        return [(name, key_id) for name, key_id, _ in note_signers(note)]
    except CheckpointError:
        return []


def _checkpoint(
    source: BundleSource, manifest: Manifest, vkey: VerifierKey, acc: _Acc
) -> Checkpoint | None:
    """Step 3: the checkpoint is signed by the key (another key's, or a forged one, stop)."""
    note = _text(source, CHECKPOINT_NAME)
    signers = _signers(note)
    if (vkey.name, vkey.key_id) not in signers:
        got = ", ".join(f"{n} (key id {i.hex()})" for n, i in signers) or "no signature line"
        acc.fail(
            Reason.OTHER_ARCHIVE_KEY,
            f"{CHECKPOINT_NAME}: expected a signature by {vkey.name} (key id "
            f"{vkey.key_id.hex()}), got {got}",
        )
        return None
    try:
        cp = open_checkpoint(note, vkey)
    except CheckpointError as exc:
        acc.fail(Reason.CHECKPOINT_FORGED, f"{CHECKPOINT_NAME}: {exc}")
        return None
    if (cp.size, cp.root.hex()) != (manifest.checkpoint.size, manifest.checkpoint.root):
        acc.fail(
            Reason.MANIFEST_MISMATCH,
            f"manifest checkpoint: expected size {cp.size} root {cp.root.hex()[:16]}… as "
            f"signed, got size {manifest.checkpoint.size} root {manifest.checkpoint.root[:16]}…",
        )
    return cp


def _record_lines(source: BundleSource) -> dict[int, BundleRecord]:
    lines: dict[int, BundleRecord] = {}
    for raw in _text(source, RECORDS_NAME).encode("utf-8", "replace").splitlines():
        if not raw.strip():
            continue
        rec = BundleRecord.from_json(raw)
        if rec.index in lines:
            raise BundleInputError(f"{RECORDS_NAME}: expected record {rec.index} once, got twice")
        lines[rec.index] = rec
    return lines


def _records(
    source: BundleSource, manifest: Manifest, cp: Checkpoint, acc: _Acc
) -> dict[int, BundleRecord]:
    """Step 4a: each record hashes to its leaf, and its proof reaches the signed root."""
    lines = _record_lines(source)
    proven: dict[int, BundleRecord] = {}
    for p in manifest.records:
        rec = lines.pop(p.index, None)
        if rec is None:
            acc.fail(
                Reason.RECORD_REMOVED,
                f"record {p.index} ({p.kind}): expected its line in {RECORDS_NAME}, got none",
            )
            continue
        leaf = entry_leaf(rec.index, rec.kind, rec.at, rec.payload).hex()
        if leaf != rec.leaf or leaf != p.leaf:
            acc.fail(
                Reason.RECORD_CHANGED,
                f"record {p.index} ({rec.kind}): expected leaf {p.leaf[:16]}…, got {leaf[:16]}… "
                "from its index, kind, time and payload",
            )
            continue
        try:
            path = [bytes.fromhex(h) for h in p.proof]
            verify_inclusion(bytes.fromhex(leaf), p.index, cp.size, path, cp.root)
        except ProofError as exc:
            acc.fail(
                Reason.PROOF_OTHER_TREE,
                f"record {p.index} ({rec.kind}): expected a proof for the tree of {cp.size} "
                f"records, got one that does not reach its root ({exc})",
            )
            continue
        proven[p.index] = rec
    for index in sorted(lines):
        acc.fail(Reason.MANIFEST_MISMATCH, f"record {index}: expected a proof, got none")
    return proven


def _range(manifest: Manifest, proven: dict[int, BundleRecord], cp: Checkpoint, acc: _Acc) -> None:
    """Step 4b: every record of the range is there, and the range covers the span."""
    span = manifest.span
    scoped = {p.index for p in manifest.records if p.scope is RecordScope.RANGE}
    wanted = set(range(span.first_index, span.last_index + 1))
    missing = sorted(wanted - scoped)
    if missing:
        acc.fail(
            Reason.RECORD_REMOVED,
            f"expected every record of {span.first_index}..{span.last_index}, got none at "
            f"{_ranges(missing)}",
        )
    outside = sorted(scoped - wanted)
    if outside:
        acc.fail(Reason.MANIFEST_MISMATCH, f"records {_ranges(outside)} lie outside the range")
    needed = {s.record for g in manifest.gops for s in g.segments}
    needed |= {g.verdict for g in manifest.gops if g.role is GopRole.SPAN and g.verdict is not None}
    cut = sorted(i for i in needed if i not in wanted)
    if cut:
        acc.fail(
            Reason.RECORD_REMOVED,
            f"expected the range to hold record(s) {_ranges(cut)}, which the clip needs, got "
            f"it ending at {span.last_index}",
        )
    first, last = proven.get(span.first_index), proven.get(span.last_index)
    if first is not None and span.first_index > 0 and first.at >= span.start:
        acc.fail(
            Reason.RECORD_REMOVED,
            f"expected the range to start before the span ({span.start}), got record "
            f"{first.index} at {first.at}: records of the span before it are not in the bundle",
        )
    if last is not None and last.index < cp.size - 1 and last.at <= span.end:
        acc.fail(
            Reason.RECORD_REMOVED,
            f"expected the range to end after the span ({span.end}), got record "
            f"{last.index} at {last.at}: records of the span after it are not in the bundle",
        )


def _ranges(indexes: Sequence[int]) -> str:
    """``3, 7..9`` for [3, 7, 8, 9] (at most a few runs shown)."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    shown = [str(a) if a == b else f"{a}..{b}" for a, b in runs[:5]]
    return ", ".join(shown) + (" …" if len(runs) > 5 else "")


def _camera(rec: BundleRecord) -> str | None:
    p = rec.parsed()
    cam = p.get("verdict", {}).get("camera_id") if rec.kind == "verdict" else p.get("camera_id")
    return cam if isinstance(cam, str) else None


def _verdict_gop(rec: BundleRecord) -> int | None:
    g = rec.parsed().get("verdict", {}).get("gop_index")
    return g if isinstance(g, int) and not isinstance(g, bool) else None


def _decisions(manifest: Manifest, proven: dict[int, BundleRecord], acc: _Acc) -> None:
    """Step 5: each decision of the camera has its GOPs' verdicts and segments here."""
    cam = manifest.camera
    verdicts: dict[int, dict[str, Any]] = {}
    for rec in proven.values():
        g = _verdict_gop(rec) if rec.kind == "verdict" and _camera(rec) == cam else None
        if g is not None:
            verdicts[g] = rec.parsed()
    clip = {g.gop_index for g in manifest.gops if g.role is GopRole.SPAN}
    for rec in sorted(proven.values(), key=lambda r: r.index):
        if rec.kind == "decision" and _camera(rec) == cam:
            why = _dangling(rec.parsed(), verdicts, clip)
            if why is not None:
                acc.fail(Reason.DECISION_DANGLING, f"decision {rec.index}: {why}")


def _dangling(
    decision: dict[str, Any], verdicts: dict[int, dict[str, Any]], clip: set[int]
) -> str | None:
    """Why a decision is not backed by the bundle (its GOPs, or its frame in them)."""
    named = [g for g in decision.get("gops") or [] if isinstance(g, int)]
    absent = [g for g in named if g not in verdicts or g not in clip]
    if not named or absent:
        return (
            f"expected a verdict and the video of GOP(s) {named or '(none named)'} in the "
            f"bundle, got none for {absent or named}"
        )
    frame = decision.get("frame_index")
    spans = [(verdicts[g].get("first_frame"), verdicts[g].get("last_frame")) for g in named]
    inside = isinstance(frame, int) and any(
        isinstance(lo, int) and isinstance(hi, int) and lo <= frame <= hi for lo, hi in spans
    )
    if not inside:
        return f"expected frame {frame!r} inside GOP(s) {named} (frames {spans}), got it outside"
    return None


def _bindings(
    manifest: Manifest, proven: dict[int, BundleRecord], acc: _Acc
) -> list[dict[str, Any] | None]:
    """Step 6: proven segment records name the clip's segments; returns each clip GOP's
    logged verdict payload (None where the bundle has none)."""
    cam = manifest.camera
    verdicts = {
        _verdict_gop(r): r.parsed()
        for r in proven.values()
        if r.kind == "verdict" and _camera(r) == cam and _verdict_gop(r) is not None
    }
    seg_records = {
        r.index: r.parsed() for r in proven.values() if r.kind == "segment" and _camera(r) == cam
    }
    if not manifest.gops:
        acc.fail(Reason.CLIP_SWAPPED, "expected at least one GOP in the clip, got none")
        return []
    order = [g.gop_index for g in manifest.gops]
    if order != list(range(order[0], order[0] + len(order))):
        acc.fail(Reason.CLIP_SWAPPED, f"expected consecutive GOPs in the clip, got {order}")
    for gop in manifest.gops:
        _bind_gop(gop, seg_records, verdicts.get(gop.gop_index), acc)
        if gop.role is GopRole.SPAN and gop.gop_index not in verdicts:
            acc.fail(
                Reason.RECORD_REMOVED,
                f"GOP {gop.gop_index}: expected its verdict record in the bundle, got none",
            )
    listed = {s.record for g in manifest.gops for s in g.segments}
    for index, p in sorted(seg_records.items()):
        if p.get("gop_index") in order and index not in listed:
            acc.fail(
                Reason.CLIP_SWAPPED,
                f"segment record {index} of GOP {p.get('gop_index')}: expected its segment "
                "in the clip, got the clip without it",
            )
    return [verdicts.get(g) for g in order]


def _bind_gop(
    gop: GopEntry,
    seg_records: dict[int, dict[str, Any]],
    verdict: dict[str, Any] | None,
    acc: _Acc,
) -> None:
    for seg in gop.segments:
        p = seg_records.get(seg.record)
        named = None if p is None else (p.get("sha256"), p.get("gop_index"))
        if named != (seg.sha256, gop.gop_index):
            acc.fail(
                Reason.CLIP_SWAPPED,
                f"GOP {gop.gop_index}: expected segment {seg.sha256[:16]}… named by a proven "
                f"segment record {seg.record} of that GOP, got {named or 'no such record'}",
            )
    logged = None if verdict is None else verdict.get("segment_sha256")
    if logged is not None and logged != gop.segments[0].sha256:
        acc.fail(
            Reason.CLIP_SWAPPED,
            f"GOP {gop.gop_index}: expected the segment its verdict names ({str(logged)[:16]}…), "
            f"got {gop.segments[0].sha256[:16]}…",
        )


def _load_certs(source: BundleSource, name: str, acc: _Acc) -> list[x509.Certificate]:
    if name not in source.names():
        return []
    try:
        return x509.load_pem_x509_certificates(source.read(name))
    except ValueError:
        acc.fail(Reason.CERTIFICATE_MISMATCH, f"{name}: expected PEM certificates, got other data")
        return []


def _certificates(
    source: BundleSource, manifest: Manifest, proven: dict[int, BundleRecord], acc: _Acc
) -> list[x509.Certificate]:
    """Step 7: the bundled CA and leaf are those the proven camera records name; returns
    the trust anchors for Media Signing."""
    ca, chain = _load_certs(source, SITE_CA_CERT, acc), _load_certs(source, CAMERA_CERT, acc)
    logged_ca = logged_leaf = None
    for rec in sorted(proven.values(), key=lambda r: r.index):
        p = rec.parsed() if rec.kind == "camera" else {}
        if p.get("action") in ("init_ca", "import_ca"):
            logged_ca = p.get("ca_sha256")
        elif p.get("action") == "enrol" and p.get("camera_id") == manifest.camera:
            logged_leaf = p.get("leaf_sha256")
        elif p.get("action") == "revoke" and p.get("camera_id") == manifest.camera:
            acc.notes.append(f"camera {manifest.camera} was revoked ({p.get('reason')!r})")
    for what, certs, logged in (("site CA", ca, logged_ca), ("camera leaf", chain, logged_leaf)):
        if not certs:
            acc.notes.append(f"no {what} certificate in the bundle")
        elif logged is None:
            acc.notes.append(f"the {what} certificate is not bound by a proven camera record")
        elif _der_sha(certs[0]) != logged:
            acc.fail(
                Reason.CERTIFICATE_MISMATCH,
                f"{what}: expected the certificate the archive enrolled (sha256 "
                f"{str(logged)[:16]}…), got {_der_sha(certs[0])[:16]}…",
            )
    return ca[:1]


def _der_sha(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass
class _Stream:
    """One validated video of the clip: per-GOP units and Media Signing results."""

    gop_units: list[list[Unit]]
    results: list[SignedGopResult]


def _segment_stream(
    source: BundleSource,
    manifest: Manifest,
    anchors: Sequence[x509.Certificate],
    reference_time: datetime,
    acc: _Acc,
) -> tuple[_Stream | None, set[int], tuple[bytes, ...]]:
    """The segments in clip order, validated; the GOP positions whose bytes are not the
    logged ones; the stream's parameter sets."""
    changed: set[int] = set()
    per_gop: list[list[bytes]] = []
    for i, gop in enumerate(manifest.gops):
        datas = []
        for seg in gop.segments:
            try:
                data = source.read(segment_name(seg.sha256))
            except KeyError:
                acc.fail(
                    Reason.CLIP_SWAPPED,
                    f"GOP {gop.gop_index}: expected segment file "
                    f"{segment_name(seg.sha256)}, got none",
                )
                return None, changed, ()
            changed |= {i} if hashlib.sha256(data).hexdigest() != seg.sha256 else set()
            datas.append(data)
        per_gop.append(datas)
    try:
        stream = clip_stream(per_gop)
        codec = CODECS[stream.codec]
        ps = _parameter_sets(stream.extradata, codec)
        units = units_of_segments(stream)
        results, _ = validate_clip(codec, ps, units, anchors, reference_time)
    except (ExportError, OmsError) as exc:
        acc.fail(Reason.FRAME_CHANGED, f"segments: expected signed video, got {exc}")
        return None, changed, ()
    return _Stream(_split_gops(units, stream.gop_packets), results), changed, tuple(ps)


def _parameter_sets(extradata: bytes, codec: Codec) -> list[bytes]:
    return parse_extradata(extradata, codec)[1] if extradata else []


def _split_gops(units: Sequence[Unit], sizes: Iterable[int]) -> list[list[Unit]]:
    out, pos = [], 0
    for n in sizes:
        out.append(list(units[pos : pos + n]))
        pos += n
    return out


def _mp4_stream(
    source: BundleSource,
    anchors: Sequence[x509.Certificate],
    reference_time: datetime,
    acc: _Acc,
) -> tuple[_Stream | None, Mp4Clip | None]:
    """``clip.mp4`` validated, its samples split into GOPs where a GOP starts."""
    try:
        mp4 = read_mp4(source.open(CLIP_NAME))
        results, _ = validate_clip(
            mp4.codec, mp4.parameter_sets, mp4.units, anchors, reference_time
        )
    except KeyError:
        acc.fail(Reason.CLIP_SWAPPED, f"{CLIP_NAME}: expected the clip, got none")
        return None, None
    except (BundleInputError, OmsError) as exc:
        acc.fail(Reason.FRAME_CHANGED, f"{CLIP_NAME}: expected signed video, got {exc}")
        return None, None
    starts = [i for i, u in enumerate(mp4.units) if i == 0 or starts_gop(u, mp4.codec)]
    sizes = [b - a for a, b in zip(starts, [*starts[1:], len(mp4.units)], strict=True)]
    return _Stream(_split_gops(mp4.units, sizes), results), mp4


def _worse(result: SignedGopResult | None, logged: dict[str, Any] | None, role: GopRole) -> bool:
    """Whether Media Signing now says less than the archive logged for this GOP."""
    now = "pending" if result is None else result.result.value
    was = (logged or {}).get("signature", {}).get("oms_result") if logged else None
    if role is GopRole.LEAD_OUT and now == "pending":
        return False  # its own SEI rides in the GOP after it, which the clip does not hold
    if was is None:
        return role is GopRole.SPAN and logged is not None
    return _SEVERITY.get(now, 4) > _SEVERITY.get(str(was), 4)


def _other_identity(result: SignedGopResult | None, logged: dict[str, Any] | None) -> str | None:
    """What differs between a validated GOP and the logged signature facts, if anything."""
    sig = (logged or {}).get("signature") or {}
    if result is None or result.result.value not in ("authentic", "missing") or not sig:
        return None
    key = hashlib.sha256(result.signer_key_der).hexdigest() if result.signer_key_der else None
    now = {
        "gop_hash": result.gop_hash.hex() if result.gop_hash else None,
        "gop_counter": result.gop_counter,
        "signer_key_sha256": key,
    }
    for name, value in now.items():
        if sig.get(name) is not None and sig.get(name) != value:
            return f"{name} {str(value)[:16]}, logged {str(sig.get(name))[:16]}"
    return None


def _video(
    source: BundleSource,
    manifest: Manifest,
    logged: list[dict[str, Any] | None],
    anchors: Sequence[x509.Certificate],
    reference_time: datetime,
    acc: _Acc,
) -> list[GopCheck]:
    """Step 8: Media Signing of the segments and of the MP4, against the logged verdicts."""
    seg, changed, ps = _segment_stream(source, manifest, anchors, reference_time, acc)
    mp4, clip = _mp4_stream(source, anchors, reference_time, acc)
    if seg is not None and clip is not None and clip.parameter_sets != ps:
        acc.fail(Reason.CLIP_SWAPPED, f"{CLIP_NAME}: expected the segments' parameter sets")
    checks = []
    for i, gop in enumerate(manifest.gops):
        log = logged[i] if i < len(logged) else None
        s_res = _nth(seg, i)
        m_res = _nth(mp4, i)
        where = f"GOP {gop.gop_index}"
        if seg is not None:
            _classify(f"segment of {where}", s_res, log, gop.role, i in changed, acc)
            _provenance(where, s_res, log, anchors, acc)
        if mp4 is not None:
            absent = i >= len(mp4.gop_units)
            differs = seg is not None and i not in changed and _differs(seg, mp4, i)
            if absent:
                acc.fail(Reason.CLIP_SWAPPED, f"{CLIP_NAME}: expected {where}, got no such GOP")
            else:
                _classify(f"{CLIP_NAME} {where}", m_res, log, gop.role, differs, acc)
        _note_logged_failure(gop, log, acc)
        checks.append(
            GopCheck(
                gop_index=gop.gop_index,
                role=gop.role.value,
                logged=(log or {}).get("verdict", {}).get("verdict") if log else None,
                logged_signature=(log or {}).get("signature", {}).get("oms_result"),
                segments=s_res.result.value if s_res is not None else None,
                clip=m_res.result.value if m_res is not None else None,
            )
        )
    if mp4 is not None and len(mp4.gop_units) > len(manifest.gops):
        acc.fail(
            Reason.CLIP_SWAPPED,
            f"{CLIP_NAME}: expected {len(manifest.gops)} GOPs, got {len(mp4.gop_units)}",
        )
    return checks


def _note_logged_failure(gop: GopEntry, logged: dict[str, Any] | None, acc: _Acc) -> None:
    verdict = (logged or {}).get("verdict", {}).get("verdict") if logged else None
    if verdict is not None and verdict != "AUTHENTIC":
        acc.notes.append(
            f"GOP {gop.gop_index}: the archive logged {verdict} when it arrived; the bundle "
            "carries that GOP as it arrived (evidence of the failure, not of a tampered bundle)"
        )


def _nth(stream: _Stream | None, i: int) -> SignedGopResult | None:
    if stream is None:
        return None
    return next((r for r in stream.results if r.index == i), None)


def _differs(seg: _Stream, mp4: _Stream, i: int) -> bool:
    return i >= len(seg.gop_units) or seg.gop_units[i] != mp4.gop_units[i]


def _classify(
    what: str,
    result: SignedGopResult | None,
    logged: dict[str, Any] | None,
    role: GopRole,
    differs: bool,
    acc: _Acc,
) -> None:
    """frame_changed when Media Signing now says less than was logged; clip_swapped when
    validly signed video is not the logged video."""
    if _worse(result, logged, role):
        was = (logged or {}).get("signature", {}).get("oms_result")
        now = "no result" if result is None else result.result.value
        why = "" if result is None else "; ".join(result.reasons[:2])
        acc.fail(
            Reason.FRAME_CHANGED,
            f"{what}: expected Media Signing {was or 'a result'} as logged, got {now} ({why})",
        )
    elif differs:
        acc.fail(
            Reason.CLIP_SWAPPED,
            f"{what}: expected the logged video, got other video that is validly signed",
        )
    elif (other := _other_identity(result, logged)) is not None:
        acc.fail(Reason.CLIP_SWAPPED, f"{what}: expected the logged signature, got {other}")


def _provenance(
    where: str,
    result: SignedGopResult | None,
    logged: dict[str, Any] | None,
    anchors: Sequence[x509.Certificate],
    acc: _Acc,
) -> None:
    """A GOP the archive accepted must chain to the bundled site CA at capture time."""
    accepted = (logged or {}).get("verdict", {}).get("verdict") in ("AUTHENTIC", "MISSING")
    if not anchors or result is None or not accepted:
        return
    if result.result.value in ("authentic", "missing") and result.provenance.status.value != "ok":
        acc.fail(
            Reason.CERTIFICATE_MISMATCH,
            f"{where}: expected the signer's chain to verify to the bundled site CA at capture "
            f"time, got {result.provenance.status.value} ({result.provenance.reason})",
        )
