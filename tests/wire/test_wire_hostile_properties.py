"""Property: whatever bytes a hostile worker writes, its pipe's Inbox enforces the edge table.

Issue 8 / ADR 0014: everything the analytics worker emits is hostile input. A real
``os.pipe()`` carries arbitrary bytes and arbitrary sequences of valid messages of every type
(forged decisions, verdicts, SourceEnded, foreign cameras), garbage, NaN and out-of-range
numbers, deep nesting, cut lines and floods of huge lines into an :class:`Inbox` built like
:func:`~kontur.runtime.wiring.build_wiring` builds the worker's inboxes. The model the
inbox is checked against is written here from the edge table's documented rows, not read back
from :mod:`kontur.wire.edges`, so a widened row fails too.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kontur.wire import (
    ControlMessage,
    Decision,
    DetectionBatch,
    Evidence,
    Finding,
    FrameReady,
    FrameStamp,
    GopClosed,
    Message,
    Outcome,
    ProtocolViolation,
    SegmentStored,
    SourceEnded,
    StateChanged,
    TrackedObject,
    TrackFrame,
    WireError,
    WorkerReady,
    decode,
    encode,
)
from kontur.wire.channel import MAX_VIOLATIONS_KEPT, Inbox, wait_readable
from kontur.wire.edges import edge
from kontur.wire.messages import MAX_FRAME_INDEX, MAX_MESSAGE_BYTES, TamperAlarm
from kontur.wire.verdict import GopVerdict, Verdict

#: The cameras the worker serves (what build_wiring passes as ``cameras``).
CAMERAS = frozenset({"cam1", "cam2"})
#: The worker's two rows of the edge table, as ADR 0014 and the table in edges.py state them.
WORKER_EDGES = {
    "supervisor": frozenset({"detection_batch", "worker_ready"}),
    "verifier": frozenset({"tracks"}),
}
#: Bytes one ``os.write`` of a test may put into an empty pipe without blocking.
CHUNK = 32 * 1024
#: What ``Inbox`` reads at most per ``drain`` (one ``os.read``).
READ_SIZE = 1 << 16

_cameras = st.sampled_from(["cam1", "cam2", "camX", "", "cam1 ", "CAM1", "cäm"])
_text = st.text(max_size=12)
_ints = st.integers(min_value=0, max_value=MAX_FRAME_INDEX)  # the wire's bound on indexes
_floats = st.floats(allow_nan=False, allow_infinity=False)
_sha = st.sampled_from(["0" * 64, "ab" * 32])


def _verdict(cam: str, gop: int, verdict: Verdict) -> GopVerdict:
    return GopVerdict(camera_id=cam, gop_index=gop, verdict=verdict, reasons=("forged",))


_objects = st.lists(
    st.builds(
        TrackedObject,
        track_id=st.integers(min_value=-MAX_FRAME_INDEX, max_value=MAX_FRAME_INDEX),
        class_id=_ints,
        class_name=_text,
        confidence=st.floats(min_value=0.0, max_value=1.0),
        xyxy=st.tuples(_floats, _floats, _floats, _floats),
    ),
    max_size=3,
).map(tuple)

_tracks = st.builds(
    TrackFrame,
    camera_id=_cameras,
    frame_index=_ints,
    pts_s=_floats,
    model_id=_text,
    config_id=_text,
    platform=_text,
    objects=_objects,
    detections=_ints,
)

_finding = st.builds(
    Finding,
    camera_id=_cameras,
    frame_index=_ints,
    agree=st.booleans(),
    reasons=st.lists(_text, max_size=2).map(tuple),
)

#: One valid message of every type of the wire, about any camera: most are forbidden.
MESSAGES: st.SearchStrategy[Message] = st.one_of(
    st.builds(
        FrameReady,
        camera_id=_cameras,
        seq=_ints,
        frame_index=_ints,
        pts_s=_floats,
        gop_index=_ints,
        slot=_ints,
        width=st.integers(1, 8192),
        height=st.integers(1, 8192),
    ),
    st.builds(
        GopClosed,
        verdict=st.builds(_verdict, _cameras, _ints, st.sampled_from(Verdict)),
        first_frame=_ints,
        last_frame=_ints,
        start_pts_s=_floats,
        end_pts_s=_floats,
        segment_sha256=_sha,
        segment_size=_ints,
    ),
    st.builds(
        SegmentStored,
        camera_id=_cameras,
        gop_index=_ints,
        segment_sha256=_sha,
        segment_size=_ints,
    ),
    st.builds(SourceEnded, camera_id=_cameras, frames=_ints, gops=_ints),
    _tracks,
    st.builds(
        DetectionBatch,
        camera_id=_cameras,
        gop_index=_ints,
        model_id=_text,
        config_id=_text,
        platform=_text,
        frames=_ints,
        detections=_ints,
        track_ids=st.lists(st.integers(), max_size=3).map(tuple),
    ),
    st.builds(
        WorkerReady,
        model_id=_text,
        platform=_text,
        detector=_text,
        isolation=st.none() | st.just({"level": "full", "forged": 1}),
    ),
    _finding,
    st.builds(
        Evidence,
        frame=st.builds(
            FrameStamp, camera_id=_cameras, frame_index=_ints, gop_index=_ints, pts_s=_floats
        ),
        tracks=_tracks,
        finding=_finding,
    ),
    st.builds(
        Decision,
        camera_id=_cameras,
        rule=_text,
        action=st.just("alarm"),
        critical=st.booleans(),
        track_id=st.none() | st.integers(),
        frame_index=_ints,
        outcome=st.sampled_from(Outcome),
        reasons=st.just(("forged by the worker",)),
        gops=st.lists(_ints, max_size=3).map(tuple),
        executed=st.none() | st.just("alarm"),
        at=_floats,
    ),
    st.builds(
        StateChanged, at=_floats, from_state=_text, to_state=st.just("NORMAL"), trigger=_text
    ),
    st.builds(
        ControlMessage,
        command=st.sampled_from(["stop", "analysis_stride"]),
        camera_id=st.none() | _cameras,
        value=st.none() | st.integers(),
    ),
    st.builds(ProtocolViolation, sender=_text, receiver=_text, message_type=_text, detail=_text),
    st.builds(
        TamperAlarm,
        camera_id=_cameras,
        transition=st.just("start"),
        kind=st.sampled_from(["covered", "frozen", "low_quality"]),
        score=st.just(2.0),
        reason=st.just("forged by the worker"),
        start_s=_floats,
        at_s=_floats,
        first_frame=_ints,
        quality_ok=st.booleans(),
    ),
)

_WR = b'{"type":"worker_ready","model_id":"m","platform":"p","detector":"d","isolation":%s}'
_DB = (
    b'{"type":"detection_batch","camera_id":"cam1","gop_index":%s,"model_id":"m",'
    b'"config_id":"c","platform":"p","frames":1,"detections":1,"track_ids":[]}'
)
_TF = (
    b'{"type":"tracks","camera_id":"cam1","frame_index":1,"pts_s":%s,"model_id":"m",'
    b'"config_id":"c","platform":"p","objects":[],"detections":0}'
)
_TF_AT = (
    b'{"type":"tracks","camera_id":"cam1","frame_index":%s,"pts_s":0.0,"model_id":"m",'
    b'"config_id":"c","platform":"p","objects":[],"detections":0}'
)
#: Lines a hostile writer crafts by hand: NaN and infinities (which JSON has no word for),
#: out-of-range numbers, deep nesting, duplicate keys, bad escapes, forged types with
#: missing fields, a BOM, whitespace.
CRAFTED: tuple[bytes, ...] = (
    _TF % b"NaN",
    _TF % b"Infinity",
    _TF % b"-Infinity",
    _TF % b"1e999",
    _TF % b'"0.5"',
    _TF_AT % str(MAX_FRAME_INDEX).encode(),
    _TF_AT % str(MAX_FRAME_INDEX + 1).encode(),
    _TF_AT % (b"1" + b"0" * 400),
    _TF_AT % b"-1",
    _DB % b"-1",
    _DB % (b"9" * 400),
    _DB % (b"9" * 5000),
    _DB % b"1.5",
    _DB % b"true",
    _WR % (b"[" * 100_000 + b"]" * 100_000),
    _WR % b'{"a": NaN, "b": [1e999, -Infinity]}',
    _WR % b'"\\ud800"',
    _WR % b"null" + b"garbage",
    b'{"type":"worker_ready","type":"decision","model_id":"m","platform":"p","detector":"d"}',
    b'{"type":"decision","type":"worker_ready","model_id":"m","platform":"p","detector":"d"}',
    b'{"type": "tracks", "pts_s": NaN}',
    b'{"type":"decision"}',
    b'{"type":"control","command":"format_disk"}',
    b'{"type":"gop"}',
    b"\xef\xbb\xbf" + _WR % b"null",
    _WR % b"null" + b"\r",
    b"\xff" * 1000,
    b"[]",
    b'"worker_ready"',
    b"null",
    b" ",
    b"\r",
    b"\x00",
)


def _mutate(data: bytes, at: int, byte: int, cut: bool) -> bytes:
    """One byte of an encoded message changed (or the line cut there)."""
    i = at % (len(data) + 1)
    return data[:i] if cut else data[:i] + bytes([byte]) + data[i + 1 :]


#: One line as written (without its newline).
LINES: st.SearchStrategy[bytes] = st.one_of(
    MESSAGES.map(encode),
    MESSAGES.map(encode).flatmap(
        lambda d: st.builds(
            _mutate, st.just(d), st.integers(0, 10_000), st.integers(0, 255), st.booleans()
        )
    ),
    st.sampled_from(CRAFTED),
    st.binary(max_size=300),
    st.just(b""),
).map(lambda line: line.replace(b"\n", b" "))


def _about(msg: Message) -> str | None:
    """The camera a message is about, by its documented owner field (not edges.camera_of)."""
    if isinstance(msg, GopClosed):
        return msg.verdict.camera_id
    if isinstance(msg, Evidence):
        return msg.frame.camera_id
    cam = getattr(msg, "camera_id", None)
    return cam if isinstance(cam, str) else None


@dataclass
class Model:
    """What the inbox must do with each complete line: yield it, or keep a violation."""

    allowed: frozenset[str]
    yielded: list[Message] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def line(self, line: bytes) -> None:
        if not line:
            return  # an empty line is skipped, neither a message nor a violation
        try:
            msg = decode(line)  # anything but a WireError fails the test: drain would raise it
        except WireError:
            self.violations.append("?")
            return
        cam = _about(msg)
        if msg.type not in self.allowed or (cam is not None and cam not in CAMERAS):
            self.violations.append(msg.type)
        else:
            self.yielded.append(msg)


@contextlib.contextmanager
def _pipe() -> Iterator[tuple[int, int]]:
    """A real pipe, its read end non-blocking as the processes set it (one per example:
    hypothesis runs every example inside one call of the test function)."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    try:
        yield r, w
    finally:
        for fd in (r, w):
            with contextlib.suppress(OSError):  # the test may have closed it already
                os.close(fd)


def _worker_inbox(r: int, receiver: str) -> Inbox:
    return Inbox(r, "worker", edge=edge("worker", receiver), cameras=CAMERAS)


def _drain_to_eof(inbox: Inbox, timeout: float = 10.0) -> list[Message]:
    """Everything left until EOF; fails rather than hangs."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while not inbox.eof:
        assert time.monotonic() < deadline, "the inbox never reached EOF"
        if wait_readable([inbox], 1.0):
            got.extend(inbox.drain())
    return got


def _check_yielded(msgs: list[Message], allowed: frozenset[str]) -> None:
    for m in msgs:
        assert m.type in allowed, m
        cam = _about(m)
        assert cam is None or cam in CAMERAS, m


def _chunks(stream: bytes, cuts: list[int]) -> list[bytes]:
    """``stream`` cut at ``cuts`` (taken modulo its length), no piece over :data:`CHUNK`."""
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    pieces = [stream[a:b] for a, b in itertools.pairwise(points)]
    return [p[i : i + CHUNK] for p in pieces for i in range(0, len(p), CHUNK) if p]


@pytest.mark.parametrize("receiver", sorted(WORKER_EDGES))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(LINES, max_size=40),
    tail=st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"")),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_worker_pipe_yields_exactly_the_allowed_messages_and_counts_every_drop(
    receiver: str, lines: list[bytes], tail: bytes, cuts: list[int]
) -> None:
    """Arbitrary lines in arbitrary write chunks, then a line cut by EOF: drain never raises;
    after each chunk it has yielded exactly the complete lines that parse, are of the row's
    types and name a served camera (or none); every other non-empty line is one violation
    naming its type ("?" unparsable); the cut tail is counted as rejected, not a violation."""
    allowed = WORKER_EDGES[receiver]
    stream = b"".join(line + b"\n" for line in lines) + tail
    ends = [i for i, b in enumerate(stream) if b == 0x0A]
    model = Model(allowed)
    done = 0
    written = 0
    with _pipe() as (r, w):
        inbox = _worker_inbox(r, receiver)
        for chunk in _chunks(stream, cuts):
            os.write(w, chunk)
            written += len(chunk)
            got = list(inbox.drain())  # the pipe was empty: one read takes the whole chunk
            n_yielded, n_violations = len(model.yielded), len(model.violations)
            while done < len(ends) and ends[done] < written:
                model.line(lines[done])
                done += 1
            _check_yielded(got, allowed)
            # repr, not ==: an allowed free-form field (WorkerReady.isolation) may hold NaN
            assert [repr(m) for m in got] == [repr(m) for m in model.yielded[n_yielded:]]
            taken = inbox.take_violations()
            new = model.violations[n_violations:]
            assert [v.message_type for v in taken] == new[-MAX_VIOLATIONS_KEPT:]
            assert {(v.sender, v.receiver) for v in taken} <= {("worker", receiver)}
        os.close(w)
        assert _drain_to_eof(inbox) == []
        assert done == len(lines)
        assert inbox.violation_count == len(model.violations)
        assert inbox.rejected == len(model.violations) + (1 if tail else 0)
        assert inbox.take_violations() == []


@settings(max_examples=25, deadline=None)
@given(
    forged=st.lists(
        MESSAGES.filter(lambda m: m.type not in WORKER_EDGES["supervisor"]), min_size=1, max_size=5
    ),
    repeat=st.integers(MAX_VIOLATIONS_KEPT - 3, 3 * MAX_VIOLATIONS_KEPT),
    take_every=st.sampled_from([1, 2, None]),
    good=st.builds(WorkerReady, model_id=_text, platform=_text, detector=_text),
)
def test_a_flood_of_forged_messages_keeps_at_most_the_newest_violations(
    forged: list[Message], repeat: int, take_every: int | None, good: WorkerReady
) -> None:
    """Hundreds of forged messages between two allowed ones: both allowed ones arrive, the
    count covers every forgery, and no take returns more than MAX_VIOLATIONS_KEPT (the
    newest, in order) however rarely the owner takes them."""
    lines = [encode(good)] + [encode(forged[i % len(forged)]) for i in range(repeat)]
    lines.append(encode(good))
    types = [forged[i % len(forged)].type for i in range(repeat)]
    got: list[Message] = []
    taken: list[list[str]] = []
    with _pipe() as (r, w):
        inbox = _worker_inbox(r, "supervisor")
        stream = b"".join(line + b"\n" for line in lines)
        for n, chunk in enumerate(_chunks(stream, list(range(0, len(stream), 4096))), 1):
            os.write(w, chunk)
            got.extend(inbox.drain())
            if take_every is not None and n % take_every == 0:
                taken.append([v.message_type for v in inbox.take_violations()])
        os.close(w)
        got.extend(_drain_to_eof(inbox))
        taken.append([v.message_type for v in inbox.take_violations()])
    assert got == [good, good]
    assert inbox.violation_count == repeat == inbox.rejected
    assert all(len(t) <= MAX_VIOLATIONS_KEPT for t in taken)
    flat = [t for batch in taken for t in batch]
    if take_every is None:  # taken once, at the end: the newest MAX_VIOLATIONS_KEPT
        assert flat == types[-MAX_VIOLATIONS_KEPT:]
    else:  # taken every 4 or 8 KiB, fewer than MAX_VIOLATIONS_KEPT lines: none lost
        assert flat == types


def _huge(kind: str, extra: int) -> bytes:
    """A line over MAX_MESSAGE_BYTES: junk, or a message the row allows, padded to size."""
    size = MAX_MESSAGE_BYTES + extra
    if kind == "junk":
        return b"a" * size
    pad = "x" * size
    return encode(WorkerReady(model_id=pad, platform="cpu", detector="d"))


@settings(max_examples=6, deadline=None)
@given(
    plan=st.lists(
        st.tuples(
            st.sampled_from(["junk", "allowed"]),
            st.integers(2 * READ_SIZE, MAX_MESSAGE_BYTES // 2),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_a_flood_of_huge_lines_never_grows_the_buffer_past_one_message(
    plan: list[tuple[str, int]],
) -> None:
    """Lines over MAX_MESSAGE_BYTES (junk, or an allowed type padded past the limit), each
    followed by an allowed message, written as fast as the pipe takes them: the buffer never
    holds more than one message's worth plus one read, no huge line is ever yielded, each is
    one or two violations (refused while still growing, then its rest as garbage), and every
    small message after it arrives intact."""
    small = [
        WorkerReady(model_id=f"after-{i}", platform="cpu", detector="d") for i in range(len(plan))
    ]
    payload = b"".join(
        _huge(k, extra) + b"\n" + encode(m) + b"\n"
        for (k, extra), m in zip(plan, small, strict=True)
    )
    got: list[Message] = []
    peak = 0
    with _pipe() as (r, w):
        inbox = _worker_inbox(r, "supervisor")

        def write() -> None:
            with os.fdopen(os.dup(w), "wb") as f:
                f.write(payload)
            os.close(w)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        deadline = time.monotonic() + 60
        while not inbox.eof:
            assert time.monotonic() < deadline, "the inbox never reached EOF"
            if wait_readable([inbox], 1.0):
                got.extend(inbox.drain())
            peak = max(peak, len(inbox._buf))  # the buffer itself: what a flood would grow
        writer.join(10)
    assert peak <= MAX_MESSAGE_BYTES + READ_SIZE
    assert got == small
    assert len(plan) <= inbox.violation_count <= 2 * len(plan)
    assert inbox.rejected == inbox.violation_count
    assert all(v.message_type == "?" for v in inbox.take_violations())
