"""ONVIF Media Signing over RTSP: the SEIs survive the RTP path and the verdicts match the file's.

A real gst-rtsp-server on loopback serves a reference-signed vector unchanged; kontur pulls it
with PyAV over RTSP/TCP and runs the same trust shell (:func:`check_recording` over the file,
:class:`CameraTrust` over the RTSP GOPs). The RTSP packets are Annex-B and carry the OMS SEIs
*without* emulation prevention, so the split must follow the SEI's declared size
(:func:`kontur.ingest.oms.nal.split_annexb`), not a start-code scan.

The server ends the session before the last picture and the final SEI-only access unit are
sent (see test_ingest_rtsp.py), so over RTSP the last GOP stays PENDING: it never got its
signature. Every other GOP must get exactly the file's verdict.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography import x509
from tests.conftest import shared
from tests.ingest.conftest import RtspServer
from tests.ingest.test_ingest_rtsp import ONE_SHOT

from kontur.ingest.checks import merge_findings
from kontur.ingest.recording import check_recording
from kontur.ingest.rtsp import SourceUnreachable
from kontur.ingest.source import probe, read_gops
from kontur.ingest.trust import CameraTrust
from kontur.ingest.verdict import Verdict

Server = Callable[..., RtspServer]


def _rtsp_verdicts(url: str, anchors: list[x509.Certificate]) -> list[Verdict]:
    trust: CameraTrust | None = None
    decided = []
    index = 0
    with pytest.raises(SourceUnreachable):  # one session, no reconnect: it ends with the file
        for gop in read_gops(url, probe(url, policy=ONE_SHOT), policy=ONE_SHOT, decode=False):
            if trust is None:
                trust = CameraTrust("cam", gop.info.codec, gop.header, guard=None, anchors=anchors)
            decided += trust.push(index, gop.packets, gop.info)
            index += 1
    assert trust is not None
    decided += trust.finish()
    return [
        merge_findings("cam", t.gop_index, list(t.findings)).verdict
        for t in sorted(decided, key=lambda t: t.gop_index)
    ]


@pytest.mark.parametrize(
    ("vector", "codec"),
    [("pets_h264_default.mp4", "h264"), ("pets_h265_default.mp4", "h265")],
)
def test_rtsp_verdicts_match_the_file(rtsp_server: Server, vector: str, codec: str) -> None:
    path = shared("oms", "streams", vector)
    anchors = x509.load_pem_x509_certificates(shared("oms", "keys", "ca_ec.pem").read_bytes())
    from_file = [
        g.verdict.verdict for g in check_recording(path, "cam", guard=None, anchors=anchors)
    ]
    assert from_file == [Verdict.AUTHENTIC] * 10
    server = rtsp_server(path, codec)
    over_rtsp = _rtsp_verdicts(server.url, anchors)
    assert len(over_rtsp) == len(from_file)
    assert over_rtsp[:-1] == from_file[:-1]
    assert over_rtsp[-1] is Verdict.PENDING  # the server never sent the last GOP's signature


def test_a_tampered_stream_over_rtsp_is_caught(rtsp_server: Server) -> None:
    path = shared("oms", "tampered", "pets_h264_flip_byte_p.mp4")
    anchors = x509.load_pem_x509_certificates(shared("oms", "keys", "ca_ec.pem").read_bytes())
    over_rtsp = _rtsp_verdicts(rtsp_server(path, "h264").url, anchors)
    assert over_rtsp[4] is Verdict.NOT_AUTHENTIC
    assert over_rtsp[:4] == [Verdict.AUTHENTIC] * 4
