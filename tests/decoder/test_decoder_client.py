"""Ingest's sandboxed decoder (ADR 0038): it decodes real footage exactly as FFmpeg does in
process, runs fully isolated, and everything it says is checked: a decoder that lies,
floods, hangs or dies is killed, reported, and replaced, and never stops ingest.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import shared

from kontur.decoder.client import DecodeFailed, DecoderLost, DecoderSettings, SandboxedDecoder
from kontur.ingest.source import probe, read_gops
from kontur.worker.sandbox import IsolationReport

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="memfd and /proc: Linux only")
needs_sandbox = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the decoder sandbox is the worker's; these tests run as root, as CI does",
)

HOSTILE = Path(__file__).with_name("hostile_decoder.py")
CLIPS = [
    ("video", "pets09_s2l1_480x360.avi"),
    ("video", "car_traffic_640x360.mp4"),
    ("mot15", "TUD-Campus", "TUD-Campus.mp4"),
]

Events = list[tuple[str, str, IsolationReport | None]]


def _decoder(tmp: Path, events: Events, **kw: Any) -> SandboxedDecoder:
    kw.setdefault("slot_bytes", 3 * 1920 * 1080)
    settings = DecoderSettings(
        sandbox={"scratch_dir": str(tmp / "decoder"), "deny": [str(tmp / "data")]}, **kw
    )
    return SandboxedDecoder(settings, lambda kind, why, iso: events.append((kind, why, iso)))


@pytest.fixture
def events() -> Events:
    return []


@pytest.fixture
def decoder(tmp_path: Path, events: Events) -> Iterator[SandboxedDecoder]:
    dec = _decoder(tmp_path, events)
    yield dec
    dec.close()


def _frames(src: str, decoder: SandboxedDecoder | None) -> list[np.ndarray]:
    return [
        f.image
        for gop in read_gops(src, probe(src), decoder=decoder)
        for f in gop.frames
        if f.image is not None
    ]


@needs_sandbox
@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: c[-1])
def test_frames_equal_the_in_process_decoder(clip: tuple[str, ...], decoder: SandboxedDecoder,
                                             events: Events) -> None:  # fmt: skip
    src = str(shared(*clip))
    want = _frames(src, None)
    got = _frames(src, decoder)
    assert len(got) == len(want) > 0
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert np.array_equal(a, b), f"frame {i} differs"
    assert [e[0] for e in events] == ["started"]


@needs_sandbox
def test_the_decoder_is_measured_fully_isolated(decoder: SandboxedDecoder, events: Events) -> None:
    src = str(shared("video", "pets09_s2l1_480x360.avi"))
    gop = next(iter(read_gops(src, probe(src), decode=False)))
    decoder.open(gop.info.codec, bytes.fromhex(str(gop.header.get("extradata") or "")))
    assert [f for p in gop.packets[:8] for f in decoder.decode(p.data, p.pts)]
    iso = events[0][2]
    assert iso is not None and iso.level == "full", iso
    status = Path(f"/proc/{decoder.pid}/status").read_text()
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Uid"].split()[0] == "65534"
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"
    assert os.readlink(f"/proc/{decoder.pid}/ns/net") != os.readlink("/proc/self/ns/net")


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("wrong-seq", "violation"),
        ("flood", "violation"),
        ("oversize", "violation"),
        ("garbage", "violation"),
        ("reuse-slot", "violation"),
        ("forged-pts", "violation"),
        ("hang", "hung"),
        ("trickle", "hung"),
        ("die", "crashed"),
        ("control-chars", "crashed"),
    ],
)
def test_a_hostile_decoder_is_lost_reported_and_replaced(
    tmp_path: Path, events: Events, mode: str, kind: str
) -> None:
    dec = _decoder(tmp_path, events, timeout_s=1.0, slots=2, slot_bytes=3 * 64 * 64,
                   command=(sys.executable, str(HOSTILE), mode))  # fmt: skip
    dec.open("h264", b"")
    try:
        with pytest.raises(DecoderLost) as lost:
            list(dec.decode(b"\x00\x00\x01\x65", 0))
        assert [e[0] for e in events] == ["started", kind]
        assert str(lost.value).isprintable() and events[1][1].isprintable()  # one line
        with pytest.raises(DecoderLost):  # the next packet goes to a fresh child
            list(dec.decode(b"\x00\x00\x01\x65", 1))
        assert dec.starts == 2 and dec.losses == 2
    finally:
        dec.close()


def test_an_honest_stand_in_passes_and_slots_are_handed_back(tmp_path: Path,
                                                              events: Events) -> None:  # fmt: skip
    dec = _decoder(tmp_path, events, slots=2, slot_bytes=3 * 64 * 64,
                   command=(sys.executable, str(HOSTILE), "honest"))  # fmt: skip
    dec.open("h264", b"")
    try:
        for seq in range(6):
            frames = list(dec.decode(b"\x00\x00\x01\x65", seq))
            assert [(f.image.shape, f.image.flags.writeable) for f in frames] == [
                ((8, 8, 3), False)
            ]
        assert dec.starts == 1 and dec.losses == 0
        assert events[0][2] is not None and events[0][2].level != "full"  # measured, not claimed
    finally:
        dec.close()


def test_after_max_restarts_the_decoder_is_given_up(tmp_path: Path, events: Events) -> None:
    dec = _decoder(tmp_path, events, max_restarts=2,
                   command=(sys.executable, str(HOSTILE), "die"))  # fmt: skip
    dec.open("h264", b"")
    try:
        for _ in range(3):
            with pytest.raises(DecoderLost):
                list(dec.decode(b"\x00", 0))
        assert dec.given_up and events[-1][0] == "given_up"
        with pytest.raises(DecoderLost, match="not restarted"):
            list(dec.decode(b"\x00", 0))
        assert dec.starts == 3  # no fourth child
    finally:
        dec.close()


@needs_sandbox
def test_a_killed_decoder_is_restarted_and_decodes_the_next_gop(
    decoder: SandboxedDecoder, events: Events
) -> None:
    src = str(shared("video", "car_traffic_640x360.mp4"))
    gops = list(read_gops(src, probe(src), decode=False))[:2]
    decoder.open(gops[0].info.codec, bytes.fromhex(str(gops[0].header.get("extradata") or "")))
    first = gops[0].packets[0]
    assert len(list(decoder.decode(first.data, first.pts))) <= 1
    assert decoder.inject_crash()
    with pytest.raises(DecodeFailed):
        list(decoder.decode(gops[0].packets[1].data, gops[0].packets[1].pts))
    assert [e[0] for e in events] == ["started", "crashed"]
    out = [f for p in gops[1].packets for f in decoder.decode(p.data, p.pts)]
    out += list(decoder.decode(None, None))
    assert len(out) == len(gops[1].packets)
    assert decoder.starts == 2


def _stand_in(tmp: Path, events: Events, mode: str, **kw: Any) -> SandboxedDecoder:
    dec = _decoder(tmp, events, slots=2, slot_bytes=3 * 64 * 64,
                   command=(sys.executable, str(HOSTILE), mode), **kw)  # fmt: skip
    dec.open("h264", b"")
    return dec


def test_more_frames_than_pictures_is_a_violation(tmp_path: Path, events: Events) -> None:
    dec = _stand_in(tmp_path, events, "multiply")
    try:
        for pts in (0, 1):  # 2 then 4 frames for 1 then 2 pictures: within the slack
            assert len(list(dec.decode(b"\x00\x00\x01\x65", pts))) == 2
        with pytest.raises(DecoderLost, match="at most 3 frame"):
            list(dec.decode(b"\x00\x00\x01\x65", 2))
        assert events[-1][0] == "violation"
    finally:
        dec.close()


def test_a_decoder_that_stops_reading_cannot_block_ingest(tmp_path: Path,
                                                         events: Events) -> None:  # fmt: skip
    dec = _stand_in(tmp_path, events, "stop-reading", timeout_s=1.0)
    try:
        assert len(list(dec.decode(b"\x00\x00\x01\x65", 0))) == 1
        began = time.monotonic()
        with pytest.raises(DecoderLost, match="read its input in time"):
            list(dec.decode(b"\x00" * (1 << 20), 1))  # far more than a pipe holds
        assert time.monotonic() - began < 5
        assert events[-1][0] == "hung"
    finally:
        dec.close()


def test_pictures_held_back_by_a_decoder_lost_at_the_drain_are_counted(
    tmp_path: Path, events: Events
) -> None:
    """Every picture of a GOP is a frame, decoded or not, even when the decoder that held
    them back dies at the GOP's end (ingest's count of frames must not shrink)."""
    dec = _stand_in(tmp_path, events, "die-at-drain", max_restarts=100)
    src = str(shared("video", "pets09_s2l1_480x360.avi"))
    try:
        gops = list(read_gops(src, probe(src), decoder=dec))
        assert [g.times.count for g in gops] == [len(g.packets) for g in gops]
        assert all(f.image is None for g in gops for f in g.frames)
        assert [e[0] for e in events].count("crashed") == len(gops)
    finally:
        dec.close()
