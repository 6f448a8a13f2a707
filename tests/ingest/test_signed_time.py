"""Signed time over container time (ADR 0018).

- the pure check (:mod:`kontur.ingest.signedtime`) on the named vectors of
  ``vectors/signed_time.yaml``;
- the signed times the validator reads from the reference vectors (README quirks 2 and 3),
  and no reference stream (B-frames, MKV, signing frequency 2, RSA) flagged;
- the live ingest process, default and strict mode, on real footage signed by an enrolled
  camera: the container stretched after signing is RETIMED on every GOP and recorded so; the
  untouched clip is not (no false alarm);
- frame times from RTP timestamps (a real RTSP server on loopback) against signed times.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from tests.conftest import shared
from tests.ingest.attacks.streams import enrolled_signed_clip, read_clip
from tests.ingest.conftest import RtspServer
from tests.ingest.ingest_harness import IngestRig
from tests.ingest.test_ingest_rtsp import ONE_SHOT

from kontur.config import TimeCheckConfig, load_config
from kontur.ingest.checks import merge_findings
from kontur.ingest.oms.reader import validate_file
from kontur.ingest.recording import check_recording
from kontur.ingest.rtsp import SourceUnreachable
from kontur.ingest.signedtime import (
    TICKS_PER_S,
    FrameSpan,
    SignedTimeCheck,
    SignedTimes,
    TimeCheck,
    TimeCheckPolicy,
    TimeStatus,
)
from kontur.ingest.source import probe, read_gops
from kontur.ingest.trust import CameraTrust, GopTrust
from kontur.ingest.verdict import Verdict
from kontur.wire import GopClosed

VECTORS = yaml.safe_load((Path(__file__).parent / "vectors" / "signed_time.yaml").read_text())
#: Where a vector's signed clock stands at its time 0 (s since 1601): about 1975 (quirk 3).
DEFAULT_EPOCH_S = 11_800_000_000


def _signed(spec: Any, epoch_s: float) -> SignedTimes | str:
    if isinstance(spec, str):
        return spec
    start, nxt = spec

    def ticks(s: float) -> int:
        return round((epoch_s + s) * TICKS_PER_S)

    return SignedTimes(ticks(start), None if nxt is None else ticks(nxt))


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_time_vector(vector: dict[str, Any]) -> None:
    """Each GOP gets the expected status, and the reason names expected and found times."""
    check = SignedTimeCheck(TimeCheckPolicy(**vector.get("policy", {})))
    epoch = vector.get("epoch_s", DEFAULT_EPOCH_S)
    assert len(vector["gops"]) == len(vector["expect"])
    for pos, (gop, want) in enumerate(zip(vector["gops"], vector["expect"], strict=True)):
        if gop.get("resync"):
            check.resync()
        frames = None if gop["frames"] is None else FrameSpan(*gop["frames"])
        index = gop.get("index", pos)
        got = check.check(index, _signed(gop["signed"], epoch), frames)
        status, fragment = (want, None) if isinstance(want, str) else want
        assert got.gop_index == index
        assert got.status is TimeStatus(status), (pos, got)
        if fragment is not None:
            assert any(fragment in r for r in got.reasons), (fragment, got.reasons)


def test_findings_flag_only_a_retimed_gop() -> None:
    """RETIMED findings make the verdict; an unchecked GOP's note changes none; OK adds none."""
    retimed = TimeCheck(3, TimeStatus.RETIMED, ("expected 1.000 s, got 2.000 s",))
    unchecked = TimeCheck(3, TimeStatus.UNCHECKED, ("container times not checked: why",))
    ok = TimeCheck(3, TimeStatus.OK, ("container times match",))
    authentic = (Verdict.AUTHENTIC, "Media Signing: authentic")
    v = merge_findings("cam", 3, [authentic, *retimed.findings()])
    assert v.verdict is Verdict.RETIMED and v.reasons[0] == "expected 1.000 s, got 2.000 s"
    v = merge_findings("cam", 3, [(Verdict.UNSIGNED, "no signature"), *unchecked.findings()])
    assert v.verdict is Verdict.UNSIGNED and "container times not checked: why" in v.reasons
    assert ok.findings() == []
    assert retimed.record() == {"status": "retimed", "reasons": ["expected 1.000 s, got 2.000 s"]}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"tolerance_s": 0.0}, "expected a tolerance in (0, 10] s, got 0.0"),
        ({"tolerance_s": 11.0}, "expected a tolerance in (0, 10] s, got 11.0"),
        ({"max_drift": -0.1}, "expected a max drift in [0, 0.1], got -0.1"),
        ({"max_drift": 0.5}, "expected a max drift in [0, 0.1], got 0.5"),
    ],
)
def test_policy_refuses_out_of_range(kwargs: dict[str, float], fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        TimeCheckPolicy(**kwargs)


def test_config_defaults_are_the_policy_defaults() -> None:
    """``ingest.time_check`` in the embedded defaults is what the core assumes unconfigured."""
    assert TimeCheckPolicy(**load_config().ingest.time_check.model_dump()) == TimeCheckPolicy()
    assert TimeCheckConfig().model_dump() == {"tolerance_s": 0.1, "max_drift": 0.001}


# -- the reference vectors ------------------------------------------------------------------------

_STREAMS = [
    "pets_h264_default.mp4",
    "pets_h265_certsei.mp4",
    "pets_h264_rsa.mp4",
    "car_h264_default.mp4",
    "car_h265_sigfreq2.mp4",
    "car_h264_bframes.mp4",
    "car_h265_bframes.mp4",
    "car_h264_bframes_mkv.mkv",
    "car_h265_bframes_mkv.mkv",
]


def _anchors() -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(shared("oms", "keys", "ca_ec.pem").read_bytes())


@pytest.mark.parametrize("name", _STREAMS)
def test_reference_streams_are_never_retimed(name: str) -> None:
    """Reference-signed streams (1975-ish raw times, B-frames, MKV, signing frequency 2):
    every GOP's container times match its signed ones."""
    checked = check_recording(shared("oms", "streams", name), "cam", guard=None, anchors=_anchors())
    assert len(checked) == 10
    for g in checked:
        assert g.verdict.verdict is Verdict.AUTHENTIC, g.verdict.reasons
        assert g.time is not None and g.time.status is TimeStatus.OK, g.time


def test_final_sei_repeats_the_previous_times_and_only_its_end_is_used() -> None:
    """README quirk 2: the end-of-stream SEI repeats the previous SEI's times. Their end is the
    last GOP's first frame; the next GOP's start is not stated."""
    path = shared("oms", "streams", "pets_h264_default.mp4")
    results = validate_file(path, _anchors(), dt.datetime.now(dt.UTC))
    times = [r.signed_times for r in results]
    assert all(t is not None for t in times)
    *body, last = [t for t in times if t is not None]
    assert last == (body[-1][1], None)
    starts = [t[0] for t in body]
    # raw ticks, not the quirk-3 corrected times: GOPs of 20 frames at 10 fps are 2 s apart
    assert {b - a for a, b in itertools.pairwise(starts)} == {2 * TICKS_PER_S}


# -- the live ingest process ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """60 pictures of PETS09 (6 GOPs of 10 at 10 fps) signed by camera ``cam`` of a site
    inventory: (the data dir, the signed clip)."""
    avi = shared("video", "pets09_s2l1_480x360.avi")
    return enrolled_signed_clip(tmp_path_factory.mktemp("signedtime"), avi, 60, 10)


def _ingest(tmp: Path, site: Path, source: Path, strict: bool) -> list[GopClosed]:
    """The GOPs ingest closed on ``source``, with the site's inventory and a fresh replay
    state (the same footage twice on one state would be REPLAYED)."""
    # signed minutes before the last run, perhaps: not a freshness test
    spec = {"freshness": {"max_delay_s": 3600.0}}
    with IngestRig(tmp, source, strict=strict, spec=spec) as rig:
        rig.data_dir.mkdir()
        for name in ("inventory.sqlite", "site-ca.pem", "site-ca.key"):
            (rig.data_dir / name).write_bytes((site / name).read_bytes())
        run = rig.run()
    assert run.returncode == 0, run.stderr
    return run.of(GopClosed)


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_ingest_flags_a_stretched_container_and_not_the_original(
    signed_clip: tuple[Path, Path], tmp_path: Path, strict: bool
) -> None:
    data, signed = signed_clip
    original = _ingest(tmp_path, data, signed, strict)
    assert [g.verdict.verdict for g in original] == [Verdict.AUTHENTIC] * 6
    assert all(g.signature and g.signature["time"]["status"] == "ok" for g in original)
    clip = read_clip(signed)
    stretched = clip.with_times([2 * t for _, t in clip.times()]).write(tmp_path / "x2.mp4")
    closed = _ingest(tmp_path, data, stretched, strict)
    assert [g.verdict.verdict for g in closed] == [Verdict.RETIMED] * 6, [
        g.verdict.reasons for g in closed
    ]
    assert all(g.signature and g.signature["time"]["status"] == "retimed" for g in closed)
    assert (
        "expected GOP 1 to start 1.000 s after GOP 0 (signed capture times), got 2.000 s in the "
        "container (+1.000 s, tolerance 0.1 s)"
    ) in closed[1].verdict.reasons
    assert "Media Signing: authentic" in closed[1].verdict.reasons  # the bytes are genuine


def test_rtp_timestamps_of_a_signed_stream_match_its_signed_times(
    rtsp_server: Callable[..., RtspServer],
) -> None:
    """A reference-signed vector served by a real gst-rtsp-server: the frame times ingest
    derives from RTP timestamps (decoded, as the perimeter stamps them) pass the check on
    every GOP whose signature arrived; the last one's never does over RTSP (PENDING)."""
    path = shared("oms", "streams", "pets_h264_default.mp4")
    url = rtsp_server(path, "h264").url
    trust: CameraTrust | None = None
    decided: list[GopTrust] = []
    spans: dict[int, FrameSpan] = {}
    with pytest.raises(SourceUnreachable):  # one session: it ends with the file
        for index, gop in enumerate(read_gops(url, probe(url, policy=ONE_SHOT), policy=ONE_SHOT)):
            if trust is None:
                trust = CameraTrust(
                    "cam", gop.info.codec, gop.header, guard=None, anchors=_anchors()
                )
            decided += trust.push(index, gop.packets, gop.info)
            spans[index] = FrameSpan(gop.times.start_pts_s, gop.times.end_pts_s)
    assert trust is not None
    decided += trust.finish()
    check = SignedTimeCheck()
    statuses = [
        check.check(t.gop_index, t.signed_times(), spans.get(t.gop_index)).status
        for t in sorted(decided, key=lambda t: t.gop_index)
    ]
    assert statuses == [TimeStatus.OK] * 9 + [TimeStatus.UNCHECKED]
