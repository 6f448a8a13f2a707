"""A forged container keyframe flag must not shift GOP boundaries (and verdicts) in ingest.

The keyframe flag of a demuxed packet is unsigned container metadata: a 9-byte recovery-point
SEI before a P-frame makes FFmpeg's raw H.264 parser flag that frame as a keyframe. If ingest
cut GOPs there while the validator (rightly) cuts at IDR slices, every later verdict would be
attached to the packets of another GOP: a tampered GOP's bytes under an AUTHENTIC verdict, and
decoded in strict mode. Ingest cuts where the bitstream starts a GOP, and a disagreement that
remains refuses both GOPs.
"""

from __future__ import annotations

from pathlib import Path

from tests.ingest.attacks.conftest import Lab
from tests.ingest.conftest import extract_annexb

from kontur.ingest.source import probe, read_gops
from kontur.ingest.verdict import Verdict

RECOVERY_POINT_SEI = b"\x00\x00\x00\x01\x06\x06\x01\xc4\x80"


def _access_units(raw: bytes) -> list[int]:
    """Offsets of the access units' first slice NAL (H.264, start code included)."""
    out, pos = [], 0
    while (pos := raw.find(b"\x00\x00\x01", pos)) >= 0:
        nal_type = raw[pos + 3] & 0x1F
        start = pos - 1 if pos > 0 and raw[pos - 1] == 0 else pos
        if nal_type in (1, 5) and raw[pos + 4] & 0x80:  # first_mb_in_slice == 0
            out.append(start)
        pos += 3
    return out


def _forge(lab: Lab, tmp: Path) -> tuple[Path, int]:
    """Recording A as raw H.264 with a recovery-point SEI before GOP 1's 5th frame and one
    flipped byte in GOP 2's 5th frame; returns the file and the tampered GOP."""
    raw = extract_annexb(lab.signed["a"], tmp / "a.h264").read_bytes()
    aus = _access_units(raw)
    gop = 10  # recording A: 10-frame GOPs
    flip = aus[2 * gop + 4] + 40
    data = bytearray(raw)
    data[flip] ^= 0x01
    at = aus[gop + 4]
    forged = bytes(data[:at]) + RECOVERY_POINT_SEI + bytes(data[at:])
    out = tmp / "forged.h264"
    out.write_bytes(forged)
    return out, 2


def test_a_forged_keyframe_flag_is_not_a_gop_boundary(lab: Lab, tmp_path: Path) -> None:
    path, _ = _forge(lab, tmp_path)
    gops = list(read_gops(str(path), probe(str(path)), decode=False))
    assert len(gops) == 12  # as signed: 12 GOPs of 10 frames, the flag changes nothing
    assert [len([p for p in g.packets if p.keyframe]) for g in gops][1] == 2  # flag is there
    assert any("container keyframe flag without an IDR/IRAP slice" in n for n in gops[1].notes)


def test_the_tampered_gop_keeps_its_own_verdict(lab: Lab, tmp_path: Path) -> None:
    path, tampered = _forge(lab, tmp_path)
    checked = lab.check(path)
    verdicts = [c.verdict.verdict for c in checked]
    assert verdicts[tampered] is Verdict.NOT_AUTHENTIC
    assert any(
        "does not match the signed hash list" in r for r in checked[tampered].verdict.reasons
    )
    others = [v for i, v in enumerate(verdicts) if i != tampered]
    assert others == [Verdict.AUTHENTIC] * (len(verdicts) - 1)
    assert not any("GOP boundaries disagree" in r for c in checked for r in c.verdict.reasons)


def test_gops_cut_differently_from_the_bitstream_are_refused_not_swapped(lab: Lab) -> None:
    # the safety net behind the cut: feed CameraTrust a cut that disagrees with the bitstream
    # (GOP 1's first two frames labelled as GOP 0); neither GOP may come out AUTHENTIC
    from kontur.ingest.checks import merge_findings
    from kontur.ingest.trust import CameraTrust

    path = str(lab.signed["a"])
    gops = list(read_gops(path, probe(path), decode=False))
    from cryptography import x509

    ca = x509.load_der_x509_certificate(lab.inventory.site_ca_der())
    trust = CameraTrust("cam-1", gops[0].info.codec, gops[0].header, guard=None, anchors=[ca])
    decided = []
    for index, gop in enumerate(gops):
        for n, packet in enumerate(gop.packets):
            label = 0 if index == 1 and n < 2 else index
            decided += trust.push_packet(label, packet, gop.info)
    decided += trust.finish()
    verdicts = {
        t.gop_index: merge_findings("cam-1", t.gop_index, list(t.findings)) for t in decided
    }
    for index in (0, 1):
        assert verdicts[index].verdict is Verdict.NOT_AUTHENTIC
        assert any("GOP boundaries disagree" in r for r in verdicts[index].reasons)
    assert verdicts[2].verdict is Verdict.AUTHENTIC  # the cut agrees again from GOP 2 on


def test_the_trust_shell_keeps_no_state_for_decided_gops(lab: Lab) -> None:
    # a live camera runs for months: what CameraTrust keeps per GOP must go once it is decided
    from kontur.ingest.trust import CameraTrust

    path = str(lab.signed["a"])
    gops = list(read_gops(path, probe(path), decode=False))
    trust = CameraTrust("cam-1", gops[0].info.codec, gops[0].header, guard=None)
    for index, gop in enumerate(gops):
        trust.push(index, gop.packets, gop.info)
        trust.set_info(index, gop.info)
    assert len(trust._info) <= 2  # the open GOP (and the one waiting for its SEI)
    trust.finish()
    assert trust._info == {} and trust._errors == {}
