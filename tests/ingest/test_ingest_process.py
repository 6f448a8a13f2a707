"""The ingest process end to end (``python -m kontur.ingest.process``, as the supervisor runs it).

Memory bounded by design: ingest holds no decoded frame of an open GOP, so its peak RSS does
not grow with the GOP's length (default and strict mode). Recording never waits on
analytics: a paced source never waits for a reader, a file source waits only for readers
that keep up, and the frames the worker missed are counted by ingest. One frame that cannot
be published never stops ingest: the GOP's verdict says why and recording goes on.

The clips are made here with PyAV/libx264 (tiny, synthetic); the ring lives in /dev/shm.
"""

from __future__ import annotations

import os
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from tests.ingest.ingest_harness import IngestRig, IngestRun

from kontur.ingest.process import IngestLoop
from kontur.ingest.source import GopDecoder, probe, read_gops
from kontur.ingest.verdict import Verdict
from kontur.wire.framering import FrameRing, RingReader
from kontur.wire.messages import FrameReady, GopClosed, SegmentStored, decode

if not Path("/dev/shm").is_dir():
    pytest.skip("no /dev/shm on this machine", allow_module_level=True)


def _clip(path: Path, width: int, height: int, frames: int, *, fps: int = 25, keyint: int) -> Path:
    """An H.264 MP4 of a moving block, a keyframe every ``keyint`` frames, no B-frames."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {
            "preset": "ultrafast",
            "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0",
        }
        for i in range(frames):
            img = np.full((height, width, 3), 60 + i % 100, np.uint8)
            x = (8 * i) % max(width - 16, 1)
            img[: height // 2, x : x + 16] = 250
            vf = av.VideoFrame.from_ndarray(img, format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for pkt in s.encode(vf):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    return path


def _clean(run: IngestRun, frames: int) -> None:
    """Ingest ended by itself, without an error or a traceback, having read every frame."""
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert run.ended.error is None
    assert run.ended.frames == frames


# --------------------------------------------------------------------------- memory


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_peak_memory_does_not_grow_with_the_gop(tmp_path: Path, strict: bool) -> None:
    # one GOP of 400 640x480 frames: the old ingest held every decoded image of the open GOP
    # (default mode until the GOP was cut, strict mode as one list after it verified), 350 MB
    # more than three 10-frame GOPs; now both hold only the frame being published.
    # (The short clip has several GOPs: a signed stream of one GOP under 300 NAL units fails
    # its end-of-stream signature, a signer quirk that has nothing to do with memory.)
    short = _clip(tmp_path / "short.mp4", 640, 480, 30, keyint=10)
    long = _clip(tmp_path / "long.mp4", 640, 480, 400, keyint=1000)
    peaks = {}
    for clip, frames in ((short, 30), (long, 400)):
        with IngestRig(tmp_path, clip, strict=strict, sign=strict) as rig:
            run = rig.run()
        _clean(run, frames)
        gops = run.of(GopClosed)
        assert len(gops) == (3 if frames == 30 else 1)
        assert all(g.decoded for g in gops) and gops[-1].last_frame == frames - 1
        want = Verdict.AUTHENTIC if strict else Verdict.UNSIGNED
        assert {g.verdict.verdict for g in gops} == {want}
        peaks[frames] = run.peak_mb
    growth = peaks[400] - peaks[30]
    assert growth < 60, f"peak RSS grew {growth:.0f} MB from a 30- to a 400-frame GOP ({peaks})"


def test_gops_handed_to_on_frame_keep_no_image(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "c.mp4", 64, 48, 120, keyint=1000)
    seen: list[float] = []
    (gop,) = read_gops(str(clip), probe(str(clip)), on_frame=lambda f: seen.append(f.pts_s))
    assert gop.frames == []
    assert gop.times.count == len(seen) == 120
    assert gop.times.start_pts_s == 0.0
    assert gop.times.end_pts_s == pytest.approx(119 / 25)
    assert gop.times.size == (64, 48)


def test_gop_decoder_streams_the_frames_that_decode_returns(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "c.mp4", 64, 48, 20, keyint=10)
    gops = list(read_gops(str(clip), probe(str(clip)), decode=False))
    header = gops[0].header

    def decoder() -> GopDecoder:
        extradata = bytes.fromhex(str(header["extradata"]))
        return GopDecoder("h264", extradata, str(header["time_base"]), 25.0)

    listed, streamed = decoder(), decoder()
    for gop in gops:
        pictures = [True] * len(gop.packets)
        want = listed.decode(gop.packets, pictures)
        got = streamed.frames(gop.packets, pictures)
        assert not isinstance(got, list)  # a generator: one frame at a time
        pairs = list(zip(want, got, strict=True))
        assert len(pairs) == 10
        for a, b in pairs:
            assert a.pts_s == b.pts_s
            assert a.image is not None and b.image is not None
            assert a.image.tobytes() == b.image.tobytes()


# --------------------------------------------------------------------------- unpublishable frames


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_frames_too_wide_for_the_wire_are_not_published_and_recording_goes_on(
    tmp_path: Path, strict: bool
) -> None:
    # FrameReady allows at most 8192x8192: an 8200 px wide stream used to kill ingest with a
    # ValidationError traceback, and recording stopped with it
    clip = _clip(tmp_path / "wide.mp4", 8200, 64, 12, fps=10, keyint=4)
    with IngestRig(tmp_path, clip, strict=strict, sign=strict) as rig:
        watcher = rig.reader(1)
        run = rig.run()
        assert watcher.published == -1  # nothing reached the ring
        assert watcher.read_next() is None
    _clean(run, 12)
    assert [m.gop_index for m in run.of(SegmentStored) if not m.end_of_stream] == [0, 1, 2]
    closed = run.of(GopClosed)
    assert [g.verdict.gop_index for g in closed] == [0, 1, 2]
    for gop in closed:
        assert gop.verdict.verdict is Verdict.PROFILE_CHANGED
        assert (
            "4 frame(s) not published for analysis: expected at most 8192x8192, got 8200x64"
            in gop.verdict.reasons
        ), gop.verdict.reasons


def test_a_frame_the_ring_refuses_is_counted_and_recording_goes_on(tmp_path: Path) -> None:
    # any error while publishing one frame (here a ring of another size than the profile:
    # a misconfiguration) costs that frame's analysis, never the recording
    clip = _clip(tmp_path / "c.mp4", 64, 48, 10, keyint=5)
    profile = probe(str(clip)).profile()
    with IngestRig(tmp_path, clip) as rig:
        pipes = [os.pipe() for _ in range(5)]
        spec = dict(
            rig.spec,
            wake_fds=[pipes[0][1], pipes[1][1]],
            supervisor_fd=pipes[2][1],
            gate_fd=pipes[3][1],
            control_fd=pipes[4][0],
        )
        loop = IngestLoop(spec)
        loop.ring.close(unlink=False)
        loop.ring = FrameRing(rig.ring.name + "-odd", 4, profile.height + 2, profile.width, 2)
        try:
            assert loop.run() is None
        finally:
            loop.ring.close(unlink=True)
        os.set_blocking(pipes[2][0], False)
        lines = os.read(pipes[2][0], 1 << 20).splitlines()
        for r, w in pipes:
            os.close(r)
            os.close(w)
    msgs = [decode(ln) for ln in lines]
    closed = [m for m in msgs if isinstance(m, GopClosed)]
    assert [m.gop_index for m in msgs if isinstance(m, SegmentStored)] == [0, 1]
    assert [g.verdict.gop_index for g in closed] == [0, 1]
    why = "5 frame(s) not published for analysis: expected a 50x64x3 uint8 frame, got 48x64x3 uint8"
    for gop in closed:
        assert gop.verdict.verdict is Verdict.PROFILE_CHANGED
        assert why in gop.verdict.reasons, gop.verdict.reasons
    assert loop.not_published == 10 and loop.frames == 10


# --------------------------------------------------------------------------- waiting on readers


def _keep_alive(reader: RingReader, stop: threading.Event) -> threading.Thread:
    """A compromised worker: its heartbeat stays fresh, it never consumes a frame."""

    def beat() -> None:
        while not stop.is_set():
            reader.heartbeat()
            time.sleep(0.01)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("realtime", [True, False], ids=["paced", "file"])
def test_a_worker_that_never_consumes_does_not_hold_recording(
    tmp_path: Path, realtime: bool
) -> None:
    # the old ring waited max_wait_s (5 s) on every write for a reader with a fresh heartbeat:
    # 24 x 5 s here. Now a paced source never waits, and a file source waits once, for one
    # reader_timeout_s; the frames the worker missed are counted exactly
    clip = _clip(tmp_path / "c.mp4", 64, 48, 40, fps=50, keyint=10)
    with IngestRig(tmp_path, clip, realtime=realtime, spec={"reader_timeout_s": 0.3}) as rig:
        stop = threading.Event()
        thread = _keep_alive(rig.reader(0), stop)
        try:
            run = rig.run(timeout=60)
        finally:
            stop.set()
            thread.join()
    _clean(run, 40)
    assert run.ended.frames_skipped == 40 - 16  # all but the ring's 16 newest
    assert len(run.of(GopClosed)) == 4
    assert run.wall_s < 15, f"ingest took {run.wall_s:.1f} s for 40 frames"


def test_a_file_source_waits_for_a_slow_worker_that_keeps_up(tmp_path: Path) -> None:
    # a worker slower than the file is read, but making progress, still gets every frame
    clip = _clip(tmp_path / "c.mp4", 64, 48, 60, keyint=10)
    got: list[FrameReady] = []
    with IngestRig(tmp_path, clip, slots=4, spec={"reader_timeout_s": 1.0}) as rig:
        reader = rig.reader(0)
        stop = threading.Event()

        def consume() -> None:
            while not stop.is_set():
                slot = reader.read_next()
                if slot is None:
                    time.sleep(0.001)
                    continue
                meta = decode(slot.meta)
                assert isinstance(meta, FrameReady)
                got.append(meta)
                time.sleep(0.01)  # "inference"

        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        try:
            run = rig.run(timeout=60)
            deadline = time.monotonic() + 5
            while len(got) < 60 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            stop.set()
            thread.join()
        dropped = reader.dropped
    _clean(run, 60)
    assert [m.frame_index for m in got] == list(range(60))
    assert dropped == 0
    assert run.ended.frames_skipped == 0
