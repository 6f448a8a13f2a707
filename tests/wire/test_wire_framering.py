"""The shared-memory frame ring: round trip, read-only readers, drops, back-pressure, cleanup.

Back-pressure follows progress, not heartbeats: a reader that keeps its heartbeat fresh but
never consumes costs the writer one ``reader_timeout_s`` in all; a slow reader that keeps
consuming is waited for; ``max_wait_s=0`` never waits; overwritten unconsumed frames are
counted per reader, exactly.

Every test uses its own ring name and removes its /dev/shm files, whatever happens.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from kontur.wire.framering import META_BYTES, FrameRing, RingReader, shm_path

H, W = 6, 8

if not Path("/dev/shm").is_dir():
    pytest.skip("no /dev/shm on this machine", allow_module_level=True)


def _img(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def _meta(i: int) -> bytes:
    return f'{{"frame_index":{i}}}'.encode()


@pytest.fixture
def ring_name() -> Iterator[str]:
    """A fresh ring name; its files are removed after the test."""
    name = f"kontur-test-{uuid.uuid4().hex[:12]}"
    yield name
    for p in [shm_path(name), *Path("/dev/shm").glob(name + ".ack*")]:
        p.unlink(missing_ok=True)


@pytest.fixture
def make_ring(ring_name: str) -> Iterator[Callable[..., FrameRing]]:
    """Create the writer side; it is closed (and unlinked) after the test."""
    rings: list[FrameRing] = []

    def make(slots: int = 4, readers: int = 1) -> FrameRing:
        ring = FrameRing(ring_name, slots, H, W, readers)
        rings.append(ring)
        return ring

    yield make
    for ring in rings:
        if ring._acks or hasattr(ring, "_hdr"):
            ring.close(unlink=True)


@pytest.fixture
def make_reader(ring_name: str) -> Iterator[Callable[[int], RingReader]]:
    readers: list[RingReader] = []

    def make(index: int = 0) -> RingReader:
        reader = RingReader(ring_name, index)
        readers.append(reader)
        return reader

    yield make
    for reader in readers:
        if hasattr(reader, "_hdr"):
            reader.close()


def test_round_trip_is_byte_identical(make_ring: Callable[..., FrameRing], make_reader) -> None:
    ring = make_ring(slots=4)
    reader = make_reader(0)
    for i in range(10):
        seq, slot = ring.write(_img(i), _meta(i), max_wait_s=1.0)
        assert (seq, slot) == (i, i % 4)
        got = reader.read_next()
        assert got is not None
        assert got.seq == i
        assert got.meta == _meta(i)
        assert got.frame.tobytes() == _img(i).tobytes()
    assert reader.read_next() is None
    assert reader.dropped == 0
    assert ring.reader_consumed(0) == 9


def test_frame_read_is_a_private_copy(make_ring, make_reader) -> None:
    ring = make_ring(slots=2)
    reader = make_reader(0)
    ring.write(_img(0), _meta(0))
    slot = reader.read_next()
    assert slot is not None
    ring.write(_img(1), _meta(1))
    ring.write(_img(2), _meta(2), max_wait_s=0.0)  # reuses slot 0
    assert slot.frame.tobytes() == _img(0).tobytes()


def test_reader_maps_the_ring_read_only(make_ring, make_reader) -> None:
    ring = make_ring()
    reader = make_reader(0)
    ring.write(_img(0), _meta(0))
    with pytest.raises(TypeError, match="readonly"):
        reader._mm[0:8] = b"\x00" * 8
    with pytest.raises(ValueError, match="read-only"):
        reader._hdr[4] = 99  # cannot fake "last published" either
    slot = reader.read_next()
    assert slot is not None and slot.frame.tobytes() == _img(0).tobytes()


def test_lagging_reader_counts_overwritten_frames_as_dropped(make_ring, make_reader) -> None:
    ring = make_ring(slots=4)
    reader = make_reader(0)
    for i in range(10):
        ring.write(_img(i), _meta(i), max_wait_s=0.001)
    seqs = []
    while (slot := reader.read_next()) is not None:
        seqs.append(slot.seq)
        assert slot.frame.tobytes() == _img(slot.seq).tobytes()
    assert seqs == [6, 7, 8, 9]  # the four newest; 0..5 were overwritten
    assert reader.dropped == 6


def test_live_reader_that_does_not_consume_holds_the_writer(make_ring, make_reader) -> None:
    ring = make_ring(slots=2)
    make_reader(0)  # alive (fresh heartbeat), never reads
    ring.write(_img(0), _meta(0), max_wait_s=0.3)
    ring.write(_img(1), _meta(1), max_wait_s=0.3)
    t0 = time.monotonic()
    ring.write(_img(2), _meta(2), max_wait_s=0.3)  # would overwrite unread seq 0
    waited = time.monotonic() - t0
    assert waited >= 0.2, f"writer did not wait for a live reader ({waited:.3f} s)"
    assert waited < 3.0, f"writer waited far past max_wait_s ({waited:.3f} s)"


def test_reader_that_consumes_releases_the_writer(make_ring, make_reader) -> None:
    ring = make_ring(slots=2)
    reader = make_reader(0)
    ring.write(_img(0), _meta(0))
    ring.write(_img(1), _meta(1))
    assert reader.read_next() is not None  # consumes seq 0
    t0 = time.monotonic()
    ring.write(_img(2), _meta(2), max_wait_s=2.0)
    assert time.monotonic() - t0 < 1.0


def test_reader_with_stale_heartbeat_is_ignored(make_ring, make_reader) -> None:
    ring = make_ring(slots=2)
    make_reader(0)  # heartbeat once, then hangs
    time.sleep(0.15)
    ring.write(_img(0), _meta(0))
    ring.write(_img(1), _meta(1))
    t0 = time.monotonic()
    ring.write(_img(2), _meta(2), max_wait_s=2.0, reader_timeout_s=0.05)
    assert time.monotonic() - t0 < 1.0


def test_reader_that_never_attached_is_ignored(make_ring) -> None:
    ring = make_ring(slots=2, readers=2)
    t0 = time.monotonic()
    for i in range(5):
        ring.write(_img(i), _meta(i), max_wait_s=2.0)
    assert time.monotonic() - t0 < 1.0
    assert ring.reader_consumed(1) == -1
    assert ring.reader_heartbeat(1) == 0


def test_restarted_reader_does_not_replay_old_slots(make_ring, make_reader) -> None:
    ring = make_ring(slots=4)
    first = make_reader(0)
    ring.write(_img(0), _meta(0))
    assert first.read_next() is not None
    first.close()  # the worker died
    for i in range(1, 6):
        ring.write(_img(i), _meta(i), max_wait_s=0.001)
    again = make_reader(0)
    assert again.next_seq == 5  # the newest frame, not the stale ones before it
    newest = again.read_next()
    assert newest is not None and newest.seq == 5
    assert again.read_next() is None
    ring.write(_img(6), _meta(6), max_wait_s=0.001)
    slot = again.read_next()
    assert slot is not None and slot.seq == 6
    assert slot.frame.tobytes() == _img(6).tobytes()


def test_restarted_reader_that_skipped_ahead_does_not_hold_the_writer(
    make_ring, make_reader
) -> None:
    ring = make_ring(slots=4)
    first = make_reader(0)
    ring.write(_img(0), _meta(0))
    assert first.read_next() is not None  # acked seq 0
    first.close()
    for i in range(1, 6):
        ring.write(_img(i), _meta(i), max_wait_s=0.001)
    again = make_reader(0)  # alive, polling; reads the newest frame, then nothing
    assert again.read_next() is not None
    assert again.read_next() is None
    t0 = time.monotonic()
    ring.write(_img(6), _meta(6), max_wait_s=1.0)
    waited = time.monotonic() - t0
    assert waited < 0.5, f"writer waited {waited:.3f} s on a reader that is not behind"


def test_restarted_reader_starts_at_the_newest_frame(make_ring, make_reader) -> None:
    ring = make_ring(slots=4)
    for i in range(6):
        ring.write(_img(i), _meta(i), max_wait_s=0.001)
    reader = make_reader(0)
    slot = reader.read_next()
    assert slot is not None and slot.seq == 5


def test_restarted_reader_reports_what_it_missed(make_ring, make_reader) -> None:
    ring = make_ring(slots=4)
    first = make_reader(0)
    ring.write(_img(0), _meta(0))
    assert first.read_next() is not None  # acked seq 0
    first.close()
    for i in range(1, 6):
        ring.write(_img(i), _meta(i), max_wait_s=0.001)
    again = make_reader(0)
    while again.read_next() is not None:
        pass
    assert again.dropped >= 4  # seq 1..4 at least (1..5 if the newest is skipped too)


def test_close_with_unlink_removes_the_shm_files(ring_name: str, make_reader) -> None:
    ring = FrameRing(ring_name, 2, H, W, readers=2)
    files = [shm_path(ring_name), shm_path(f"{ring_name}.ack0"), shm_path(f"{ring_name}.ack1")]
    assert all(p.exists() for p in files)
    reader = make_reader(0)
    reader.close()
    ring.close(unlink=True)
    assert not any(p.exists() for p in files)


def test_close_without_unlink_leaves_the_files_for_their_owner(ring_name: str) -> None:
    ring = FrameRing(ring_name, 2, H, W, readers=1)
    ring.write(_img(0), _meta(0))
    ring.close(unlink=False)
    assert shm_path(ring_name).exists() and shm_path(f"{ring_name}.ack0").exists()
    attached = FrameRing(ring_name, 2, H, W, readers=1, create=False)
    assert attached.seq == 0  # a writer re-attaching continues the sequence
    attached.close(unlink=True)
    assert not shm_path(ring_name).exists()


def test_writer_attaching_with_smaller_geometry_is_refused(ring_name: str, make_ring) -> None:
    make_ring(slots=2)
    with pytest.raises(ValueError, match=f"expected ring {ring_name} of 2x6x4, got 2x6x8"):
        FrameRing(ring_name, 2, H, 4, readers=1, create=False)


def test_writer_attaching_with_larger_geometry_is_refused(ring_name: str, make_ring) -> None:
    make_ring(slots=2)
    with pytest.raises(ValueError, match=f"expected ring {ring_name} of 2x6x16, got 2x6x8"):
        FrameRing(ring_name, 2, H, 16, readers=1, create=False)


def test_creating_a_ring_that_exists_is_refused(ring_name: str, make_ring) -> None:
    make_ring()
    with pytest.raises(FileExistsError):
        FrameRing(ring_name, 4, H, W, readers=1)


def test_reader_of_a_file_that_is_not_a_ring_is_refused(ring_name: str) -> None:
    shm_path(ring_name).write_bytes(b"\x00" * 64)
    with pytest.raises(
        ValueError, match=r"expected ring magic 0x4b4f4e5455520001 in \S+, got 0x0$"
    ):
        RingReader(ring_name, 0)


@pytest.mark.parametrize(
    ("frame", "fragment"),
    [
        (np.zeros((H, W + 1, 3), np.uint8), "expected a 6x8x3 uint8 frame, got 6x9x3 uint8"),
        (np.zeros((H, W), np.uint8), "expected a 6x8x3 uint8 frame, got 6x8 uint8"),
        (np.zeros((H, W, 3), np.float32), "expected a 6x8x3 uint8 frame, got 6x8x3 float32"),
    ],
    ids=["too_wide", "grey", "float"],
)
def test_wrong_frame_is_refused(make_ring, frame: np.ndarray, fragment: str) -> None:
    ring = make_ring()
    with pytest.raises(ValueError, match=fragment):
        ring.write(frame, b"{}")
    assert ring.seq == -1  # nothing was published


def test_oversize_meta_is_refused(make_ring) -> None:
    ring = make_ring()
    with pytest.raises(ValueError, match=f"expected meta of at most {META_BYTES} bytes, got"):
        ring.write(_img(0), b"x" * (META_BYTES + 1))


@pytest.mark.parametrize("name", ["../etc/passwd", "ring/1", "ring name", ""])
def test_ring_name_that_escapes_dev_shm_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="expected a ring name of letters, digits"):
        shm_path(name)


# ------------------------------------------------------------------ progress, not heartbeat


def _fresh_heartbeat(reader: RingReader, stop: threading.Event, toggle_ack: bool = False) -> None:
    """A compromised reader: heartbeat always fresh, never consumes; may fiddle its ack."""
    flip = False
    while not stop.is_set():
        reader.heartbeat()
        if toggle_ack:  # an ack moved back and forth must not read as progress
            reader._ack[0] = 0 if flip else -1
            flip = not flip
        time.sleep(0.002)


@pytest.mark.parametrize("toggle_ack", [False, True], ids=["still", "ack_toggled"])
def test_fresh_heartbeat_without_progress_costs_one_reader_timeout(
    make_ring: Callable[..., FrameRing], make_reader: Callable[[int], RingReader], toggle_ack: bool
) -> None:
    # the old ring waited max_wait_s on every write for a reader whose heartbeat was fresh:
    # 196 x 5 s here. Now the reader is waited for until it has made no progress for
    # reader_timeout_s, once, and not again until it consumes
    ring = make_ring(slots=4)
    reader = make_reader(0)
    stop = threading.Event()
    thread = threading.Thread(target=_fresh_heartbeat, args=(reader, stop, toggle_ack))
    thread.start()
    try:
        t0 = time.monotonic()
        for i in range(200):
            ring.write(_img(i), _meta(i), max_wait_s=5.0, reader_timeout_s=0.2)
            if time.monotonic() - t0 > 3.0:
                pytest.fail(f"200 writes took over 3 s (stuck at write {i})")
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        thread.join()
    assert elapsed >= 0.15, f"the writer never waited for the reader ({elapsed:.3f} s)"
    # every frame it overwrote (a toggled ack may claim seq 0 at the moment it goes)
    assert 0 <= 200 - 4 - ring.skipped(0) <= (1 if toggle_ack else 0)


def test_no_wait_at_all_for_a_live_source(
    make_ring: Callable[..., FrameRing], make_reader: Callable[[int], RingReader]
) -> None:
    ring = make_ring(slots=4)
    reader = make_reader(0)  # attached and fresh, never consumes
    t0 = time.monotonic()
    for i in range(100):
        ring.write(_img(i), _meta(i), max_wait_s=0.0)
        reader.heartbeat()
    assert time.monotonic() - t0 < 1.0
    assert ring.skipped(0) == 96


def test_skipped_counts_are_exact_per_reader(
    make_ring: Callable[..., FrameRing], make_reader: Callable[[int], RingReader]
) -> None:
    ring = make_ring(slots=4, readers=3)
    partial = make_reader(0)  # reads the first three frames, then stops
    full = make_reader(1)  # reads every frame as it comes
    # reader 2 never attaches
    for i in range(10):
        ring.write(_img(i), _meta(i), max_wait_s=0.0)
        if i < 3:
            assert partial.read_next() is not None
        assert full.read_next() is not None
    # writes 4..9 overwrote seq 0..5: reader 0 had consumed 0..2, reader 1 all, reader 2 none
    assert [ring.skipped(r) for r in range(3)] == [3, 0, 6]
    seqs = []
    while (slot := partial.read_next()) is not None:
        seqs.append(slot.seq)
    assert seqs == [6, 7, 8, 9]
    assert partial.dropped == ring.skipped(0)  # the reader's own count agrees


def test_slow_reader_that_keeps_progressing_gets_every_frame(
    make_ring: Callable[..., FrameRing], make_reader: Callable[[int], RingReader]
) -> None:
    # a file source in a demo: the worker is slower than the decoder but makes progress, so
    # the writer waits for it and every frame is analysed
    ring = make_ring(slots=4)
    reader = make_reader(0)
    got: list[int] = []
    done = threading.Event()

    def consume() -> None:
        while len(got) < 40 and not done.is_set():
            slot = reader.read_next()
            if slot is None:
                time.sleep(0.001)
                continue
            assert slot.frame.tobytes() == _img(slot.seq).tobytes()
            got.append(slot.seq)
            time.sleep(0.02)  # slower than the writer

    thread = threading.Thread(target=consume)
    thread.start()
    try:
        t0 = time.monotonic()
        for i in range(40):
            ring.write(_img(i), _meta(i), max_wait_s=5.0, reader_timeout_s=0.2)
        elapsed = time.monotonic() - t0
        thread.join(timeout=10)
    finally:
        done.set()
        thread.join()
    assert got == list(range(40))
    assert reader.dropped == 0 and ring.skipped(0) == 0
    assert elapsed >= 0.5, f"the writer did not wait for the slow reader ({elapsed:.3f} s)"


def test_stalled_reader_is_waited_for_again_once_it_progresses(
    make_ring: Callable[..., FrameRing], make_reader: Callable[[int], RingReader]
) -> None:
    ring = make_ring(slots=2)
    reader = make_reader(0)
    ring.write(_img(0), _meta(0))
    ring.write(_img(1), _meta(1))
    t0 = time.monotonic()
    ring.write(_img(2), _meta(2), max_wait_s=5.0, reader_timeout_s=0.2)  # stalls: one timeout
    assert 0.1 <= time.monotonic() - t0 < 1.0
    t0 = time.monotonic()
    ring.write(_img(3), _meta(3), max_wait_s=5.0, reader_timeout_s=0.2)  # stalled: no wait
    assert time.monotonic() - t0 < 0.1
    assert reader.read_next() is not None  # progress (it skips to seq 2, acks it)
    t0 = time.monotonic()
    ring.write(_img(4), _meta(4), max_wait_s=5.0, reader_timeout_s=0.2)  # needs seq 2: done
    ring.write(_img(5), _meta(5), max_wait_s=5.0, reader_timeout_s=0.2)  # needs seq 3: waits
    waited = time.monotonic() - t0
    assert 0.1 <= waited < 1.0, f"a reader that progressed again was not waited for ({waited})"
    assert ring.skipped(0) == 3  # seq 0, 1 (stalled) and 3 (timed out again)
