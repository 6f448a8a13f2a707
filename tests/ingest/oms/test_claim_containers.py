"""The parameter-set claim is the same in every container (issue 9, item 5b).

libx265 puts its settings SEI in an SEI array of the hvcC. kontur's claim used to cover it,
so ``kontur sign --out x.h265`` (or a raw copy of a signed MP4) was NOT_AUTHENTIC for every
GOP at ``kontur verify``: read back from Annex-B, the SEI is no container parameter set. The
claim now covers VPS/SPS/PPS (H.265) and SPS/PPS (H.264) only, when signing and when
validating, and :func:`~kontur.ingest.oms.nal.parse_extradata` returns parameter sets only.

The H.265 clip is encoded here with PyAV's libx265 from the real PETS09 footage of
``../shared/data`` (there is no H.265 footage there; skipped when absent).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import pytest
from cryptography.hazmat.primitives import serialization
from tests.conftest import run_kontur
from tests.ingest.conftest import extract_annexb

from kontur.ingest.oms.keys import chain_pem, make_ca, make_camera_certificate, private_key_pem
from kontur.ingest.oms.nal import Codec, parse_extradata, parse_nal_header

PETS = "video/pets09_s2l1_480x360.avi"
FRAMES, KEYINT = 30, 10
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2126, 1, 1, tzinfo=dt.UTC)


def _x265(source: Path, target: Path) -> Path:
    """``FRAMES`` pictures of ``source`` as H.265 MP4 (libx265, its hvcC carries an SEI)."""
    try:
        av.codec.Codec("libx265", "w")
    except Exception:  # PyAV raises UnknownCodecError or ValueError by version
        pytest.skip("libx265 is not in this PyAV build")
    params = f"keyint={KEYINT}:min-keyint={KEYINT}:scenecut=0:bframes=0:log-level=error"
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream = dst.add_stream("libx265", rate=10)
        stream.width, stream.height, stream.pix_fmt = 480, 360, "yuv420p"
        stream.options = {"preset": "ultrafast", "x265-params": params}
        for i, frame in enumerate(src.decode(video=0)):
            if i == FRAMES:
                break
            out = frame.reformat(format="yuv420p")
            out.pts, out.time_base = i, Fraction(1, 10)
            for packet in stream.encode(out):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    return target


@pytest.fixture(scope="module")
def work(shared_file: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the libx265 clip, a camera key and chain, and their CA."""
    base = tmp_path_factory.mktemp("claim")
    _x265(shared_file(PETS), base / "x265.mp4")
    ca_key, ca = make_ca("claim test CA", T0, T1)
    key, cert = make_camera_certificate(ca_key, ca, "cam-x265", T0, T1)
    (base / "key.pem").write_bytes(private_key_pem(key))
    (base / "chain.pem").write_bytes(chain_pem(cert, ca))
    (base / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return base


def _sign(work: Path, suffix: str) -> Path:
    out = work / f"signed{suffix}"
    if not out.exists():
        r = run_kontur("sign", str(work / "x265.mp4"), "--key", str(work / "key.pem"),
                       "--cert", str(work / "chain.pem"), "--out", str(out))  # fmt: skip
        assert r.returncode == 0, r.stderr
    return out


def _verify(work: Path, path: Path) -> dict:  # type: ignore[type-arg]
    r = run_kontur("verify", str(path), "--ca", str(work / "ca.pem"), "--json", "-")
    doc = json.loads(r.stdout) if r.stdout.strip() else {}
    assert r.returncode == 0, (r.stderr, doc.get("gops"))
    return doc  # type: ignore[no-any-return]


def test_libx265_hvcc_sei_array_is_no_parameter_set(work: Path) -> None:
    with av.open(str(work / "x265.mp4")) as container:
        extradata = bytes(container.streams.video[0].codec_context.extradata)
    assert b"x265" in extradata, "expected libx265's settings SEI in the hvcC"
    _, nals = parse_extradata(extradata, Codec.H265)
    assert [parse_nal_header(n, Codec.H265).nal_type for n in nals] == [32, 33, 34]


@pytest.mark.parametrize("suffix", [".h265", ".mp4", ".mkv"])
def test_signed_libx265_clip_verifies_in_every_container(work: Path, suffix: str) -> None:
    doc = _verify(work, _sign(work, suffix))
    assert doc["summary"] == {"AUTHENTIC": FRAMES // KEYINT}
    assert doc["authentic"] is True


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_signed_container_copied_to_raw_annexb_still_verifies(work: Path, suffix: str) -> None:
    # FFmpeg's hevc_mp4toannexb (any `ffmpeg -c copy x.h265`) writes the hvcC's SEI in-band:
    # the pictures and parameter sets are the signed ones, so the claim must still hold
    raw = extract_annexb(_sign(work, suffix), work / f"copied_from{suffix.replace('.', '_')}.h265")
    doc = _verify(work, raw)
    assert doc["summary"] == {"AUTHENTIC": FRAMES // KEYINT}
