"""What still parses untrusted bytes in ingest (ADR 0038): the container demuxer. Seeded
mutants of real footage in MP4, Matroska and raw H.264 (bytes flipped, runs overwritten,
chunks cut out or repeated, the file cut short) go through ingest's demux path, the one
that feeds the segment store and Media Signing: each ends normally or with one of ingest's
one-line errors, never with another exception, never hanging. A sample also goes through
the sandboxed decoder, which may die on them: ingest must go on.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from tests.conftest import shared
from tests.hang import Hang, alarms_raise_hang

from kontur.decoder.client import DecoderSettings, SandboxedDecoder
from kontur.errors import KonturError
from kontur.ingest.source import probe, read_gops

MUTANTS = 40
FRAMES = 45


def _remux(out: Path, fmt: str) -> Path:
    """The car clip's first frames in ``fmt``, packets copied (no re-encode)."""
    with av.open(str(shared("video", "car_traffic_640x360.mp4"))) as inp:
        src = inp.streams.video[0]
        with av.open(str(out), "w", format=fmt) as dst:
            ost = dst.add_stream_from_template(src)
            for i, packet in enumerate(inp.demux(src)):
                if packet.dts is None or i >= FRAMES:
                    continue
                packet.stream = ost
                dst.mux(packet)
    return out


def _mutant(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    kind = int(rng.integers(5))
    at = int(rng.integers(len(buf)))
    if kind == 0:  # scattered bit flips
        for pos in rng.integers(0, len(buf), int(rng.integers(1, 64))):
            buf[int(pos)] ^= 1 << int(rng.integers(8))
    elif kind == 1:  # a run overwritten with noise
        n = int(rng.integers(1, 512))
        buf[at : at + n] = rng.integers(0, 256, min(n, len(buf) - at), dtype=np.uint8).tobytes()
    elif kind == 2:  # a chunk cut out
        del buf[at : at + int(rng.integers(1, 4096))]
    elif kind == 3:  # a chunk repeated
        buf[at:at] = buf[at : at + int(rng.integers(1, 4096))]
    else:  # cut short
        del buf[at:]
    return bytes(buf)


def _ingest(path: Path, decoder: SandboxedDecoder | None = None) -> None:
    """Ingest's demux path over ``path``; raises what ingest would see."""
    pr = probe(str(path))
    for _ in read_gops(str(path), pr, decode=decoder is not None, decoder=decoder):
        pass


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("demux-fuzz")
    return {
        fmt: _remux(root / f"car.{ext}", fmt).read_bytes()
        for fmt, ext in (("mp4", "mp4"), ("matroska", "mkv"), ("h264", "h264"))
    }


@pytest.fixture
def hang_guard() -> Iterator[None]:
    with alarms_raise_hang():
        yield


@pytest.mark.parametrize("fmt", ["mp4", "matroska", "h264"])
def test_malformed_containers_end_in_one_line_errors(
    tmp_path: Path, clips: dict[str, bytes], fmt: str, hang_guard: None
) -> None:
    ext = {"mp4": "mp4", "matroska": "mkv", "h264": "h264"}[fmt]
    rng = np.random.default_rng(20261205)
    outcomes: dict[str, int] = {}
    for i in range(MUTANTS):
        path = tmp_path / f"m{i}.{ext}"
        path.write_bytes(_mutant(clips[fmt], rng))
        signal.alarm(20)
        try:
            _ingest(path)
            outcome = "ok"
        except KonturError as exc:
            assert "\n" not in str(exc), (i, str(exc))
            outcome = type(exc).__name__
        except Hang:
            pytest.fail(f"mutant {i} of {fmt}: demuxing hung for 20 s")
        except Exception as exc:
            pytest.fail(f"mutant {i} of {fmt}: expected ok or a KonturError, got {exc!r}")
        finally:
            signal.alarm(0)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert sum(outcomes.values()) == MUTANTS
    if fmt != "h264":  # a raw Annex B stream has no structure a demuxer refuses
        assert len(outcomes) > 1, outcomes  # the mutants did reach the error paths


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason="decoder sandbox: root")
def test_malformed_streams_through_the_sandboxed_decoder(
    tmp_path: Path, clips: dict[str, bytes], hang_guard: None
) -> None:
    rng = np.random.default_rng(7)
    events: list[str] = []
    settings = DecoderSettings(sandbox={"scratch_dir": str(tmp_path / "dec")},
                               slot_bytes=3 * 1920 * 1080, timeout_s=5.0,
                               max_restarts=1000)  # fmt: skip
    decoder = SandboxedDecoder(settings, lambda kind, *_: events.append(kind))
    try:
        for i in range(12):
            path = tmp_path / f"d{i}.h264"
            path.write_bytes(_mutant(clips["h264"], rng))
            signal.alarm(60)
            try:
                _ingest(path, decoder)
            except KonturError as exc:
                assert "\n" not in str(exc)
            finally:
                signal.alarm(0)
        assert events[0] == "started"
        assert not decoder.given_up
    finally:
        decoder.close()
