"""The I/O shell: demuxing containers and raw Annex-B files into access units."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from tests.conftest import shared

from kontur.ingest.oms.errors import OmsReadError
from kontur.ingest.oms.nal import Codec, add_emulation_prevention
from kontur.ingest.oms.reader import read_access_units, validate_file
from kontur.ingest.oms.validator import OmsResult, OmsValidator, SignedGopResult

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def test_read_mp4_access_units() -> None:
    codec, ps, units = read_access_units(shared("oms", "streams", "pets_h264_default.mp4"))
    aus = list(units)
    assert codec is Codec.H264 and len(ps) == 2
    assert len(aus) == 201  # PyAV delivers the final SEI-only sample (README quirk 1)
    assert aus[0].keyframe and aus[0].pts == 0
    assert len(aus[-1].nals) == 1


def test_raw_annexb_file_validates(tmp_path: Path) -> None:
    """The same signed bitstream as an Annex-B .h264 file (SEIs escaped for transport)."""
    codec, ps, units = read_access_units(shared("oms", "tampered", "pets_h264_remux_intact.mp4"))
    raw = b"".join(b"\x00\x00\x00\x01" + add_emulation_prevention(n) for n in ps)
    for au in units:
        raw += b"".join(b"\x00\x00\x00\x01" + add_emulation_prevention(n) for n in au.nals)
    path = tmp_path / "signed.h264"
    path.write_bytes(raw)
    anchors = x509.load_pem_x509_certificates(shared("oms", "keys", "ca_ec.pem").read_bytes())
    results = validate_file(path, anchors, NOW)
    assert codec is Codec.H264
    assert len(results) == 10
    assert {r.result for r in results} == {OmsResult.AUTHENTIC}


def test_validate_file_over_views_matches_copies() -> None:
    """validate_file reads packets as memoryviews; the decisions equal those over copies."""
    path = shared("oms", "streams", "car_h265_sigfreq2.mp4")
    anchors = x509.load_pem_x509_certificates(shared("oms", "keys", "ca_ec.pem").read_bytes())
    codec, ps, units = read_access_units(path)
    aus = list(units)
    assert all(type(n) is bytes for au in aus for n in au.nals)
    validator = OmsValidator(codec, anchors, reference_time=NOW)
    validator.set_parameter_sets(ps)
    copied: list[SignedGopResult] = []
    for au in aus:
        copied += validator.push(au)
    copied += validator.finish(NOW)
    assert validate_file(path, anchors, NOW) == sorted(copied, key=lambda r: r.index)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OmsReadError, match="cannot open"):
        read_access_units(tmp_path / "absent.mp4")


def test_not_video(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(b"not a container at all" * 10)
    with pytest.raises(OmsReadError, match="cannot open"):
        read_access_units(path)
