"""Evidence bundles: one camera's time span, exported from the archive, verifiable offline.

``kontur archive export DATA_DIR --camera C --from T1 --to T2 --out BUNDLE.zip`` writes one
zip file (members stored, not compressed; read by name, never extracted, by the verifier)::

    README.txt               for the recipient: what each file is, how to verify
    manifest.json            format, version, origin, archive key, checkpoint (size, root),
                             camera, span (from, to, first..last record), who and when, the
                             export's own record index, the clip's GOPs (role, segment
                             SHA-256 + the record naming it, verdict record), every file
                             with its SHA-256 and size, every record with its audit path
    checkpoint.txt           the archive's signed checkpoint (C2SP signed note) the proofs
                             are against: the newest stored one covering the export
    archive-key.txt          the archive's public key (C2SP verifier key)
    records.jsonl            every record first..last (all kinds and cameras: a removed one
                             would leave a gap) and the camera's enrolment records before
                             them, each {index, kind, at, payload, leaf}, ``payload`` the
                             exact canonical JSON bytes that were hashed
    certificates/site-ca.pem the site CA (the Media Signing trust anchor)
    certificates/camera.pem  the camera's leaf and the CA, from the inventory
    clip.mp4                 the GOPs of the span and one lead-out GOP (it carries the SEI
                             that signs the last span GOP), remuxed without re-encoding:
                             playable, its ONVIF Media Signing SEIs intact
    segments/<sha256>.kseg   the archived segments of those GOPs, byte for byte

The export is then logged in the archive as an ``export`` record (who, camera, span, the
bundle's SHA-256) before the bundle is moved into place (:mod:`kontur.evidence.export`).
``kontur archive verify-export BUNDLE [--pin-key KEY]`` re-checks it with nothing but the
file (:mod:`kontur.evidence.verify`: its steps and reason codes; ADR 0020).

Public surface: :func:`export_bundle` (:class:`ExportRequest`, :class:`ExportResult`),
:func:`verify_file` / :func:`verify_bundle` (:class:`VerifyReport`, :class:`Failure`,
:class:`Reason`), :class:`Manifest`, and the errors :class:`EvidenceError`,
:class:`ExportError`, :class:`BundleInputError`.
"""

from __future__ import annotations

from kontur._private import lazy_exports

# Lazy (PEP 562): ``kontur.cli`` imports ``kontur.evidence.cli`` to register the commands,
# and ``kontur --help`` must not pay for PyAV and the Media Signing validator.
_HOME = {
    "ZipBundle": "bundle",
    "verify_file": "bundle",
    "BundleInputError": "errors",
    "EvidenceError": "errors",
    "ExportError": "errors",
    "ExportRequest": "export",
    "ExportResult": "export",
    "export_bundle": "export",
    "Manifest": "manifest",
    "Failure": "verify",
    "GopCheck": "verify",
    "Reason": "verify",
    "VerifyReport": "verify",
    "verify_bundle": "verify",
}

__all__ = sorted(_HOME)


__getattr__ = lazy_exports(__name__, _HOME)
