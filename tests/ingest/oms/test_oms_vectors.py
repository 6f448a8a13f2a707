"""Reference parity: kontur's OMS validator against the ONVIF reference verdicts.

For every entry of ``../shared/data/oms/expected.json`` the file is validated and each
reference report (``validator.continuous.reports``) is compared with the kontur GOP results
decided by the same signed SEI (``sei_ordinal``): kontur's result must be the same, or
stricter where listed in ``STRICTER`` with the reason. Where the reference is stricter only
because of its own demuxer (README quirk 10) the entry is listed in ``DEMUX_ARTEFACTS``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from tests.conftest import SHARED_DATA, shared

from kontur.ingest.oms.provenance import Provenance, derive_capture_time
from kontur.ingest.oms.reader import validate_file
from kontur.ingest.oms.sei import filetime_to_datetime
from kontur.ingest.oms.validator import OmsResult, SignedGopResult

OMS = SHARED_DATA / "oms"
#: The trusted clock of the parity run (after every vector was made, before 2027).
REFERENCE_TIME = datetime(2026, 11, 30, tzinfo=UTC)

SEVERITY = {
    OmsResult.AUTHENTIC: 0,
    OmsResult.PENDING: 1,
    OmsResult.MISSING: 2,
    OmsResult.UNSIGNED: 3,
    OmsResult.NOT_AUTHENTIC: 4,
}
REFERENCE = {
    "valid": OmsResult.AUTHENTIC,
    "missing": OmsResult.MISSING,
    "invalid": OmsResult.NOT_AUTHENTIC,
    "unsigned": OmsResult.UNSIGNED,
}

#: (entry, report) pairs where kontur is legitimately stricter: none are needed per report.
STRICTER: dict[tuple[str, int], str] = {}

#: Entries where the reference verdict is an artefact of GStreamer's qtdemux (quirk 10):
#: it is not handed the first IDR slice + SPS/PPS (H.264) or one frame near the end
#: (H.265) of the B-frame MP4s. PyAV delivers every sample, so kontur validates all GOPs;
#: the MKV twins of these files (same bitstream) are VALID in the reference too.
DEMUX_ARTEFACTS = {
    "car_h264_bframes": "quirk 10: qtdemux drops the first IDR + SPS/PPS; MKV twin is VALID",
    "car_h265_bframes": "quirk 10: qtdemux drops one frame near the end; MKV twin is VALID",
}

#: The final GOP of the signer's own MP4s: the reference never sees the last samples
#: (quirk 1) and leaves it pending; kontur reads them and decides it. In low-bitrate mode
#: the end-of-stream SEI carries a stale GOP hash (quirk 2), so that GOP is NOT_AUTHENTIC,
#: exactly what the reference reports once it sees that SEI (``*_lowbitrate_remux_intact``).
LAST_GOP_LOWBITRATE = "quirk 2: stale GOP hash in the low-bitrate end-of-stream SEI"


def _entries() -> list[dict[str, Any]]:
    path = OMS / "expected.json"
    if not path.exists():
        return []
    data: dict[str, Any] = json.loads(path.read_text())
    return list(data["entries"])


ENTRIES = {e["name"]: e for e in _entries()}


@pytest.fixture(scope="module")
def results() -> dict[str, list[SignedGopResult]]:
    """Validate every vector once (files are shared between validator variants)."""
    shared("oms", "expected.json")
    out: dict[str, list[SignedGopResult]] = {}
    for name, entry in ENTRIES.items():
        anchors = (
            x509.load_pem_x509_certificates((OMS / entry["ca"]).read_bytes()) if entry["ca"] else []
        )
        out[name] = validate_file(OMS / entry["file"], anchors, REFERENCE_TIME)
    return out


def _reports(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Reference reports decided by a signed non-certificate SEI, in order."""
    reports = list(entry["validator"]["continuous"]["reports"])
    if entry["bitstream"]["oms_certificate_seis"]:
        reports = reports[1:]  # the certificate SEI gets a report of its own (quirk 8)
    return [r for r in reports if r["result"] != "signed"]  # not yet validated (quirk 9)


def _worst(gops: list[SignedGopResult]) -> OmsResult:
    return max((g.result for g in gops), key=SEVERITY.__getitem__)


@pytest.mark.parametrize("name", sorted(ENTRIES) or ["expected.json absent"])
def test_reports_match_reference(name: str, results: dict[str, list[SignedGopResult]]) -> None:
    entry = ENTRIES[name]
    got = results[name]
    reports = _reports(entry)
    assert [g.index for g in got] == list(range(len(got)))
    if name in DEMUX_ARTEFACTS:
        assert all(g.result is OmsResult.AUTHENTIC for g in got), DEMUX_ARTEFACTS[name]
        assert len(got) == entry["bitstream"]["gops"]
        return
    for k, report in enumerate(reports):
        gops = [g for g in got if g.sei_ordinal == k]
        assert gops, f"{name}: no kontur GOP for reference report {k}"
        want = REFERENCE[report["result"]]
        have = _worst(gops)
        if have is not want:
            assert SEVERITY[have] > SEVERITY[want], (
                f"{name} report {k}: {have} less strict than {want}"
            )
            assert (name, k) in STRICTER, f"{name} report {k}: {have} vs {want} undocumented"
        ref_name = {"missing": "valid_with_missing"}.get(report["result"], report["result"])
        assert ref_name in {g.reference_result for g in gops}


@pytest.mark.parametrize("name", sorted(ENTRIES) or ["expected.json absent"])
def test_gops_beyond_the_reference(name: str, results: dict[str, list[SignedGopResult]]) -> None:
    """GOPs the reference left pending (quirk 1) are decided by kontur's end-of-stream SEI."""
    entry = ENTRIES[name]
    if name in DEMUX_ARTEFACTS:
        pytest.skip(DEMUX_ARTEFACTS[name])
    got = results[name]
    extra = [g for g in got if g.sei_ordinal is None or g.sei_ordinal >= len(_reports(entry))]
    pending = entry["validator"]["summary"]["pending_frames"]
    if not pending:
        assert not extra
        return
    assert extra, f"{name}: reference has {pending} pending frames, kontur decided nothing more"
    assert extra[-1].end_of_stream
    lowbitrate = entry["signer"]["low_bitrate_mode"] if entry.get("signer") else False
    for gop in extra:
        if lowbitrate and gop is extra[-1]:
            assert gop.result is OmsResult.NOT_AUTHENTIC, LAST_GOP_LOWBITRATE
            assert "GOP hash does not match" in gop.reasons[0]
        else:
            assert gop.result is OmsResult.AUTHENTIC


@pytest.mark.parametrize("name", sorted(ENTRIES) or ["expected.json absent"])
def test_provenance_not_weaker(name: str, results: dict[str, list[SignedGopResult]]) -> None:
    entry = ENTRIES[name]
    ref = entry["validator"]["summary"]["provenance"]
    signed = [g for g in results[name] if g.gop_counter is not None]
    statuses = {g.provenance.status for g in signed}
    if ref == "OMS_PROVENANCE_OK":
        assert statuses == {Provenance.OK}, [g.provenance.reason for g in signed][:1]
    else:
        assert Provenance.OK not in statuses
        assert statuses <= {Provenance.NOT_OK, Provenance.NO_ANCHOR}
    if entry["ca"] is None:
        assert statuses == {Provenance.NO_ANCHOR}


def test_expired_leaf_is_not_ok_at_capture_time(results: dict[str, list[SignedGopResult]]) -> None:
    """car_h264_expired_cert: raw SEI times decode to 1975 (quirk 3); kontur corrects them
    to the signing time (2026), when the leaf (valid 2020..2021) had expired."""
    for gop in results.get("car_h264_expired_cert", []):
        assert gop.provenance.status is Provenance.NOT_OK
        assert "expired at capture time 2026-" in gop.provenance.reason
        assert gop.capture_start is not None and gop.capture_start.year == 2026
        assert any("quirk 3" in r for r in gop.reasons)


@pytest.mark.parametrize("name", sorted(ENTRIES) or ["expected.json absent"])
def test_counters_and_nalu_counts(name: str, results: dict[str, list[SignedGopResult]]) -> None:
    entry = ENTRIES[name]
    signed = [g for g in results[name] if g.gop_counter is not None]
    assert [g.gop_counter for g in signed] == entry["bitstream"]["gop_counters"]
    assert [g.sei_num_nalus for g in signed] == entry["bitstream"]["sei_num_nalus"]


@pytest.mark.parametrize("name", sorted(ENTRIES) or ["expected.json absent"])
def test_capture_times_and_key(name: str, results: dict[str, list[SignedGopResult]]) -> None:
    entry = ENTRIES[name]
    signed = [g for g in results[name] if g.gop_counter is not None]
    first = signed[0]
    assert first.capture_start is not None
    raw = filetime_to_datetime(entry["bitstream"]["first_sei_start_timestamp"])
    assert raw is not None and raw.year == 1975  # the reference signer app's x10 bug (quirk 3)
    assert first.capture_start == derive_capture_time(raw, REFERENCE_TIME)[0]
    assert first.capture_start.year == 2026
    assert first.signer_key_der is not None and first.certificate_chain
    assert not first.parameter_sets_covered  # reference signer: no kontur claim


def _reference_gop_string(validation: str) -> str:
    """A report's validation string without '_' (unhashed NALs), its own SEI (last) and the
    pending first slice of the next GOP ('P' before it), i.e. the GOP's NAL units only."""
    chars = validation.replace("_", "")[:-1]
    return chars[:-1] if chars.endswith("P") else chars


@pytest.mark.parametrize("name", sorted(ENTRIES) or ["expected.json absent"])
def test_validation_strings(name: str, results: dict[str, list[SignedGopResult]]) -> None:
    """Per report, kontur's validation strings (GOPs of that SEI, '_' removed) equal the
    reference's for the same NAL units; kontur never sees GStreamer's AUDs and in-band
    parameter sets ('_' in the reference), so those are removed on both sides."""
    entry = ENTRIES[name]
    if name in DEMUX_ARTEFACTS:
        pytest.skip(DEMUX_ARTEFACTS[name])
    for k, report in enumerate(_reports(entry)):
        gops = [g for g in results[name] if g.sei_ordinal == k]
        mine = "".join(g.validation_string for g in gops).replace("_", "")
        if gops[-1].end_of_stream:
            mine = mine[:-1]  # the end-of-stream SEI arrives inside the GOP it signs
        assert mine == _reference_gop_string(report["validation"]), f"{name} report {k}"
