"""The ``README.txt`` a bundle's recipient reads first."""

from __future__ import annotations

import datetime as dt

from kontur.evidence.manifest import (
    CHECKPOINT_NAME,
    CLIP_NAME,
    KEY_NAME,
    MANIFEST_NAME,
    RECORDS_NAME,
    SEGMENT_DIR,
    GopRole,
    Manifest,
)

__all__ = ["readme_text"]


def _iso(at: float) -> str:
    try:
        return dt.datetime.fromtimestamp(at, dt.UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return repr(at)


def readme_text(m: Manifest, bundle_name: str) -> str:
    """The README for ``m``, written into the bundle named ``bundle_name``."""
    span = [g.gop_index for g in m.gops if g.role is GopRole.SPAN]
    lead = [g.gop_index for g in m.gops if g.role is GopRole.LEAD_OUT]
    return f"""kontur evidence bundle
======================

Camera {m.camera}, from {_iso(m.span.start)} to {_iso(m.span.end)} (the archive's clock),
exported {_iso(m.created_at)} by {m.created_by} from archive {m.origin}.
This export is itself recorded in that archive as record {m.export_record}, with this
file's SHA-256: ask the site for `kontur archive prove --index {m.export_record}`.

How to check it (offline; needs only this file and kontur):

    kontur archive verify-export {bundle_name} --pin-key '{m.key}'

Obtain the archive key from the site through a channel you trust (not from this file) and
pin it: without --pin-key the bundle is only checked against the key it names itself.
Exit 0: every check passed. Exit 1: the bundle does not check out; each failure is named
(frame_changed, record_removed, clip_swapped, checkpoint_forged, proof_other_tree,
other_archive_key, decision_dangling, record_changed, certificate_mismatch,
manifest_mismatch). Exit 2: not a bundle.

What is in here:

  {CLIP_NAME:<22} the video, playable, remuxed from the segments without re-encoding;
  {"":<22} its ONVIF Media Signing SEIs are intact, so any Media Signing
  {"":<22} validator can check it against certificates/site-ca.pem
  {SEGMENT_DIR + "*.kseg":<22} the archived GOPs (kontur segment format), byte for byte:
  {"":<22} GOP(s) {span} of the span, then {lead or "no"} lead-out GOP (it carries the
  {"":<22} signature of the span's last GOP)
  {"certificates/":<22} the site CA and the camera's certificate chain
  {RECORDS_NAME:<22} every archive record {m.span.first_index}..{m.span.last_index} (verdicts,
  {"":<22} detections, verifier findings, decisions, state, of every camera) and
  {"":<22} the camera's enrolment records, each with the exact bytes that were hashed
  {CHECKPOINT_NAME:<22} the archive's signed checkpoint (C2SP signed note) of tree size
  {"":<22} {m.checkpoint.size}: every record's inclusion proof leads to its root
  {KEY_NAME:<22} the archive's public key (C2SP verifier key)
  {MANIFEST_NAME:<22} where everything is, the proofs, and each file's SHA-256

The verifier re-derives everything from the signed checkpoint, the inclusion proofs, the
record hashes and the camera's Media Signing; the manifest itself is not trusted.
"""
