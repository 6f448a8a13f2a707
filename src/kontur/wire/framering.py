"""Zero-copy frame transport: a shared-memory ring written by ingest, read by other blocks.

Layout of the ring file ``/dev/shm/<name>`` (all integers little-endian int64)::

    header  [magic, slots, height, width, last_published_seq, 0, 0, 0]
    slot k  [seq, meta_len, meta (META_BYTES of JSON)] [frame: height*width*3 uint8, BGR]

Each reader has its own small *ack* file ``/dev/shm/<name>.ack<reader>``::

    [consumed_seq, heartbeat_monotonic_ns]

Trust: only ingest (trusted, CPU) maps the ring read-write. Readers map it **read-only**
(``mmap.ACCESS_READ``), so a compromised analytics worker cannot alter the frames the
independent verifier sees. A reader can write only its own ack file.

Protocol (a seqlock): the writer fills a slot's frame and meta, then writes the slot's
``seq``, then ``last_published_seq``. A reader copies the frame and re-reads ``seq``; if it
changed the frame was overwritten while copying and is reported as dropped.

Back-pressure: before overwriting a slot the writer waits for every *progressing* reader
to have consumed it, at most ``max_wait_s`` per write. Liveness is progress the writer sees
itself, never what a reader claims: the writer notes (``time.monotonic``, its own clock)
when each reader's consumed seq last advanced, and a reader with frames pending that made
no progress for ``reader_timeout_s`` is not waited for until it advances again. So a dead,
hung or compromised reader (one that keeps its heartbeat fresh but never consumes) costs
the writer at most one ``reader_timeout_s`` in all, not one per frame, and recording
continues (DESIGN.md §1). A reader's first attach (heartbeat set) counts as progress once.
``max_wait_s=0`` (live sources) never waits.

The writer counts, per reader, the frames it overwrote that the reader had not consumed
(:meth:`FrameRing.skipped`): the ring's only writer is the one that knows, whatever a
reader reports about itself.
"""

from __future__ import annotations

import mmap
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "META_BYTES",
    "VERIFIER_READER",
    "WORKER_READER",
    "FrameRing",
    "RingReader",
    "RingSlot",
    "shm_path",
]

#: Reader indexes of a camera's ring: the analytics worker and the verifier.
WORKER_READER, VERIFIER_READER = 0, 1

MAGIC = 0x4B4F4E5455520001  # "KONTUR" ring v1
META_BYTES = 1024
_HDR = 8 * 8
_SLOT_HDR = 16 + META_BYTES
_SHM_DIR = Path("/dev/shm")


def shm_path(name: str) -> Path:
    """Where a ring (or ack) file of this name lives."""
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"expected a ring name of letters, digits, '-', '_' or '.', got {name!r}")
    return _SHM_DIR / name


def _map(path: Path, size: int, *, create: bool, writable: bool) -> mmap.mmap:
    flags = os.O_RDWR if writable else os.O_RDONLY
    if create:
        flags |= os.O_CREAT | os.O_EXCL
    fd = os.open(path, flags, 0o600)
    try:
        if create:
            os.ftruncate(fd, size)
        access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
        return mmap.mmap(fd, size, access=access)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class RingSlot:
    """One frame read from the ring: a private copy of its pixels and its meta JSON."""

    seq: int
    meta: bytes
    frame: np.ndarray


@dataclass
class _Progress:
    """What the writer saw of one reader: the highest seq it consumed, and when it moved."""

    consumed: int
    since: float | None
    """``time.monotonic()`` of the last advance (or of the attach), None before either."""
    attached: bool
    skipped: int = 0


class FrameRing:
    """The writer side (ingest). Creates the ring and one ack file per reader."""

    def __init__(
        self, name: str, slots: int, height: int, width: int, readers: int, *, create: bool = True
    ) -> None:
        """Create the ring files (``create``), or attach as the writer to ones that exist."""
        self.name, self.slots, self.height, self.width = name, slots, height, width
        self.frame_bytes = height * width * 3
        self.slot_bytes = _SLOT_HDR + self.frame_bytes
        self.size = _HDR + slots * self.slot_bytes
        if not create:
            with open(shm_path(name), "rb") as f:
                head = [int(x) for x in np.frombuffer(f.read(_HDR), dtype="<i8")[:4]]
            if head != [MAGIC, slots, height, width]:
                raise ValueError(
                    f"expected ring {name} of {slots}x{height}x{width}, "
                    f"got {head[1]}x{head[2]}x{head[3]}"
                )
        self._mm = _map(shm_path(name), self.size, create=create, writable=True)
        self._hdr = np.frombuffer(self._mm, dtype="<i8", count=8)
        if create:
            self._hdr[:] = [MAGIC, slots, height, width, -1, 0, 0, 0]
        self._acks = []
        for r in range(readers):
            mm = _map(shm_path(f"{name}.ack{r}"), 16, create=create, writable=True)
            arr = np.frombuffer(mm, dtype="<i8", count=2)
            if create:
                arr[:] = [-1, 0]
            self._acks.append((mm, arr))
        self.seq = int(self._hdr[4])
        self._progress = [_Progress(consumed=-1, since=None, attached=False) for _ in self._acks]
        now = time.monotonic()
        for r in range(readers):
            self._observe(r, now)

    def _slot_view(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        off = _HDR + k * self.slot_bytes
        hdr = np.frombuffer(self._mm, dtype="<i8", count=2, offset=off)
        frame = np.frombuffer(
            self._mm, dtype=np.uint8, count=self.frame_bytes, offset=off + _SLOT_HDR
        ).reshape(self.height, self.width, 3)
        return hdr, frame

    def _observe(self, reader: int, now: float) -> _Progress:
        """Update what the writer knows of ``reader`` from its ack file; returns it.

        Only an ack beyond the highest seen is progress (a reader cannot earn waiting by
        moving its ack back and forth), an ack beyond the last published frame counts as
        that frame, and the attach counts once per reader slot. An ack is the reader's word:
        one that claims frames it never read only gives up its own waiting and skip count.
        """
        p = self._progress[reader]
        ack = self._acks[reader][1]
        consumed, heartbeat = min(int(ack[0]), self.seq), int(ack[1])
        if consumed > p.consumed:
            p.consumed, p.since = consumed, now
        if heartbeat and not p.attached:
            p.attached, p.since = True, now
        return p

    def _waits_for(self, reader: int, need: int, now: float, reader_timeout_s: float) -> bool:
        """Whether the writer still waits for ``reader`` to consume ``need``."""
        p = self._observe(reader, now)
        return p.consumed < need and p.since is not None and now - p.since < reader_timeout_s

    def _wait_for_readers(self, seq: int, max_wait_s: float, reader_timeout_s: float) -> None:
        """Wait (at most ``max_wait_s``) until progressing readers consumed ``seq - slots``.

        Every reader is observed on every write, so an attach or an advance is seen when it
        happens, not when the writer first needs that reader.
        """
        need = seq - self.slots
        now = time.monotonic()
        deadline = now + max_wait_s
        delay = 0.0002
        readers = range(len(self._acks))
        while [r for r in readers if self._waits_for(r, need, now, reader_timeout_s)]:
            if now >= deadline:
                return
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, 0.005)
            now = time.monotonic()

    def _count_skipped(self, seq: int) -> None:
        """Count, per reader, the frame that writing ``seq`` overwrites if it is unconsumed."""
        lost = seq - self.slots
        if lost < 0:
            return
        now = time.monotonic()
        for r in range(len(self._acks)):
            if self._observe(r, now).consumed < lost:
                self._progress[r].skipped += 1

    def write(
        self,
        frame: np.ndarray,
        meta: bytes,
        *,
        max_wait_s: float = 5.0,
        reader_timeout_s: float = 2.0,
    ) -> tuple[int, int]:
        """Publish ``frame`` (height×width×3 uint8); returns ``(seq, slot)``.

        Waits at most ``max_wait_s`` for readers that still make progress (see the module
        docstring); ``max_wait_s=0`` never waits, and an overwritten frame a reader had not
        consumed is counted in :meth:`skipped`.
        """
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"expected a {self.height}x{self.width}x3 uint8 frame, "
                f"got {'x'.join(map(str, frame.shape))} {frame.dtype}"
            )
        if len(meta) > META_BYTES:
            raise ValueError(f"expected meta of at most {META_BYTES} bytes, got {len(meta)}")
        seq = self.seq + 1
        self._wait_for_readers(seq, max_wait_s, reader_timeout_s)
        self._count_skipped(seq)
        k = seq % self.slots
        hdr, view = self._slot_view(k)
        hdr[0] = -1  # mark the slot as being written
        view[...] = frame
        off = _HDR + k * self.slot_bytes + 16
        self._mm[off : off + len(meta)] = meta
        hdr[1] = len(meta)
        hdr[0] = seq
        self._hdr[4] = seq
        self.seq = seq
        return seq, k

    def reader_consumed(self, reader: int) -> int:
        """The last sequence number ``reader`` acknowledged (-1 before its first)."""
        return int(self._acks[reader][1][0])

    @property
    def published(self) -> int:
        """The newest sequence number published (-1 before the first), read from the header:
        right in any process that maps the ring, not only in the writer."""
        return int(self._hdr[4])

    def latest_meta(self) -> bytes | None:
        """The metadata of the newest published slot (None before the first, or when it is
        being rewritten): where a restarted writer must go on from."""
        seq = self.published
        if seq < 0:
            return None
        hdr, _ = self._slot_view(seq % self.slots)
        if int(hdr[0]) != seq:
            return None
        off = _HDR + (seq % self.slots) * self.slot_bytes + 16
        return bytes(self._mm[off : off + int(hdr[1])])

    def reader_heartbeat(self, reader: int) -> int:
        """The monotonic time (ns) of ``reader``'s last heartbeat (0 before its first)."""
        return int(self._acks[reader][1][1])

    def skipped(self, reader: int) -> int:
        """How many frames this writer overwrote before ``reader`` had consumed them."""
        return self._progress[reader].skipped

    def close(self, unlink: bool = True) -> None:
        """Unmap, and remove the files unless another owner will."""
        del self._hdr
        self._mm.close()
        mms = [mm for mm, _ in self._acks]
        self._acks = []
        for mm in mms:
            mm.close()
        if unlink:
            for p in [shm_path(self.name), *shm_path(self.name).parent.glob(self.name + ".ack*")]:
                p.unlink(missing_ok=True)


def _ring_head(fd: int, path: Path) -> list[int]:
    """The ring header's first four fields; ValueError when the file is not a ring."""
    raw = os.pread(fd, 32, 0).ljust(32, b"\0")
    head = [int(x) for x in np.frombuffer(raw, dtype="<i8")]
    if head[0] != MAGIC:
        raise ValueError(f"expected ring magic {MAGIC:#x} in {path}, got {head[0]:#x}")
    return head


class RingReader:
    """A reader (worker, verifier). Maps the ring read-only and its own ack read-write."""

    def __init__(self, name: str, reader: int) -> None:
        ring_fd = os.open(shm_path(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            _ring_head(ring_fd, shm_path(name))
            ack_fd = os.open(shm_path(f"{name}.ack{reader}"), os.O_RDWR | os.O_CLOEXEC)
        except BaseException:
            os.close(ring_fd)
            raise
        self._attach(name, ring_fd, ack_fd)

    @classmethod
    def from_fds(cls, name: str, ring_fd: int, ack_fd: int) -> RingReader:
        """Attach through descriptors opened earlier: ring ``name`` read-only, the ack read-write.

        For a reader that opens its files before a sandbox forbids opening them (the
        worker). Takes ownership of both descriptors: they are closed once mapped.
        """
        self = cls.__new__(cls)
        self._attach(name, ring_fd, ack_fd)
        return self

    def _attach(self, name: str, ring_fd: int, ack_fd: int) -> None:
        try:
            head = _ring_head(ring_fd, shm_path(name))
            self.slots, self.height, self.width = head[1], head[2], head[3]
            self.frame_bytes = self.height * self.width * 3
            self.slot_bytes = _SLOT_HDR + self.frame_bytes
            size = _HDR + self.slots * self.slot_bytes
            self._mm = mmap.mmap(ring_fd, size, access=mmap.ACCESS_READ)
            self._ack_mm = mmap.mmap(ack_fd, 16, access=mmap.ACCESS_WRITE)
        finally:
            os.close(ring_fd)
            os.close(ack_fd)
        self._hdr = np.frombuffer(self._mm, dtype="<i8", count=8)
        self._ack = np.frombuffer(self._ack_mm, dtype="<i8", count=2)
        # A (re)started reader starts at the newest frame; what it missed since its last ack
        # is reported as dropped, and its ack moves forward so the writer does not wait for it.
        published = int(self._hdr[4])
        old_ack = int(self._ack[0])
        self.next_seq = max(published, 0)
        self.dropped = max(0, published - old_ack - 1) if old_ack >= 0 else 0
        self._ack[0] = self.next_seq - 1
        self.heartbeat()

    def heartbeat(self) -> None:
        """Tell the writer this reader is alive (call at least every second)."""
        self._ack[1] = time.monotonic_ns()

    @property
    def published(self) -> int:
        """The newest sequence number the writer published (-1 before the first frame)."""
        return int(self._hdr[4])

    def read_next(self) -> RingSlot | None:
        """Copy out the next frame in sequence, or None when there is nothing new yet."""
        while self.next_seq <= self.published:
            seq = self.next_seq
            off = _HDR + (seq % self.slots) * self.slot_bytes
            hdr = np.frombuffer(self._mm, dtype="<i8", count=2, offset=off)
            if int(hdr[0]) != seq:
                # overwritten (we were too slow) or mid-write: skip forward
                oldest = max(self.published - self.slots + 1, seq + 1)
                self.dropped += oldest - seq
                self.next_seq = oldest
                continue
            meta = bytes(self._mm[off + 16 : off + 16 + int(hdr[1])])
            frame = (
                np.frombuffer(
                    self._mm, dtype=np.uint8, count=self.frame_bytes, offset=off + _SLOT_HDR
                )
                .reshape(self.height, self.width, 3)
                .copy()
            )
            if int(hdr[0]) != seq:
                self.dropped += 1
                self.next_seq = seq + 1
                continue
            self.next_seq = seq + 1
            self._ack[0] = seq
            self.heartbeat()
            return RingSlot(seq=seq, meta=meta, frame=frame)
        self.heartbeat()
        return None

    def close(self) -> None:
        """Unmap (the files belong to the writer)."""
        del self._hdr, self._ack
        self._mm.close()
        self._ack_mm.close()
